"""Temporal consistency of a stylized video, measured against the motion of its input.

Flow is estimated on the *input* frames, once per pair of consecutive frames and estimator
(`InputMotion`), so a method cannot lower its score by inventing its own motion. Two estimators,
on purpose: the `flow` and `hybrid` modes warp with Farnebäck (`blending_flow`), the metrics
with OpenCV's DIS (`measuring_flow`, Kroeger et al. 2016). A metric that warps with the same
flow as a method shares that flow's errors and favours it (on cup.mp4 the exp-blended flow
baseline scored −59 % warping error against the per-frame output with Farnebäck as the
metric's flow, −37 % with DIS; benchmarks/results/video.md); Lai et al. likewise measure with a flow
(FlowNet 2) that the methods they compare do not use. Two figures compare output t with
output t−1 warped to t along the metric's flow:
- `warping_error`: the standard one (Lai et al. 2018, "Learning Blind Video Temporal
  Consistency", eq. 7): mean squared difference, intensities in [0, 1], over the pixels that
  Ruder et al. 2016 ("Artistic style transfer for videos", sec. 3.2) mark as reliably
  visible — forward–backward consistent, off motion boundaries, and warped from inside the
  frame. Lai et al. estimate flow with FlowNet 2; here it is DIS, so compare figures from
  this tool with each other, not with the paper's tables.
- `flicker`: i2i's earlier figure, mean absolute difference in grey levels (0..255) over a
  looser consistency mask; kept as a second view (figures measured before the metrics moved
  to DIS used Farnebäck's flow and differ).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np


def _gray(frame: np.ndarray) -> np.ndarray:
    return frame[:, :, 0] if frame.shape[2] == 1 else cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


def blending_flow(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Farnebäck's flow F with target(p) ≈ source(p + F(p)), HxWx2 in pixels: the temporal modes' motion."""
    return cv2.calcOpticalFlowFarneback(_gray(target), _gray(source), None, 0.5, 3, 15, 3, 5, 1.2, 0)


def measuring_flow(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """DIS's flow, in the same convention: the metrics' motion, independent of the modes'."""
    return cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM).calc(_gray(target), _gray(source), None)


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Sample `image` at p + flow(p) (bilinear, border replicated)."""
    height, width = flow.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    warped = cv2.remap(
        image, grid_x + flow[..., 0], grid_y + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    return warped.reshape(image.shape)


@dataclass
class InputMotion:
    """The motion between input frames t−1 and t, estimated once per estimator (`blending_flow`
    for the temporal modes, `measuring_flow` for both metrics). `backward`: current(p) ≈
    previous(p + backward(p)); `forward`: previous(q) ≈ current(q + forward(q))."""

    backward: np.ndarray
    forward: np.ndarray

    @classmethod
    def estimate(cls, previous: np.ndarray, current: np.ndarray, flow=blending_flow) -> InputMotion:
        return cls(flow(previous, current), flow(current, previous))

    def warp(self, previous_output: np.ndarray) -> np.ndarray:
        """Output t−1 moved to frame t along the input's motion."""
        return warp(previous_output, self.backward)

    @cached_property
    def _round_trip(self) -> tuple[np.ndarray, np.ndarray]:
        """(squared length of backward + forward-at-the-arrival-point, of the two flows summed)."""
        arrived = warp(self.forward, self.backward)
        return (self.backward + arrived), (self.backward**2).sum(2) + (arrived**2).sum(2)

    @cached_property
    def consistency(self) -> np.ndarray:
        """Ruder et al.'s forward–backward test as a weight in (0, 1]: exp(−|w + ŵ|² / (0.01(|w|² +
        |ŵ|²) + 0.5)), 1/e at the threshold `reliable` uses."""
        round_trip, lengths = self._round_trip
        return np.exp(-(round_trip**2).sum(2) / (0.01 * lengths + 0.5))

    @cached_property
    def visible(self) -> np.ndarray:
        """i2i's earlier mask (of `flicker`): round trip under 1 px + 5 % of the two flows' lengths."""
        round_trip = np.linalg.norm(self._round_trip[0], axis=2)
        lengths = np.linalg.norm(self.backward, axis=2) + np.linalg.norm(self.forward, axis=2)
        return round_trip < 1.0 + 0.05 * lengths

    @cached_property
    def reliable(self) -> np.ndarray:
        """Ruder et al.'s mask (of `warping_error`): |w + ŵ|² < 0.01(|w|² + |ŵ|²) + 0.5 (w the
        backward flow, ŵ the forward flow at its arrival point), |∇u|² + |∇v|² ≤ 0.01|w|² +
        0.002 (no motion boundary), and the arrival point inside the frame (within half a pixel)."""
        consistent = self.consistency > np.exp(-1.0)
        u_y, u_x = np.gradient(self.backward[..., 0])
        v_y, v_x = np.gradient(self.backward[..., 1])
        boundary = u_x**2 + u_y**2 + v_x**2 + v_y**2 > 0.01 * (self.backward**2).sum(2) + 0.002
        height, width = self.backward.shape[:2]
        grid_y, grid_x = np.mgrid[0:height, 0:width]
        x, y = grid_x + self.backward[..., 0], grid_y + self.backward[..., 1]
        inside = (x > -0.5) & (x < width - 0.5) & (y > -0.5) & (y < height - 0.5)  # within the border pixels
        return consistent & ~boundary & inside


def warping_error(motion: InputMotion, previous_output: np.ndarray, output: np.ndarray) -> float:
    """Lai et al.'s E_warp for one pair: mean over reliable pixels and channels of (o_t − ô_{t−1})²,
    intensities in [0, 1]; 0 when no pixel is reliable."""
    difference = (output.astype(np.float32) - motion.warp(previous_output.astype(np.float32))) / 255.0
    mask = motion.reliable
    return float((difference[mask] ** 2).mean()) if mask.any() else 0.0


def flicker(motion: InputMotion, previous_output: np.ndarray, output: np.ndarray) -> float:
    """i2i's earlier figure: mean |o_t − ô_{t−1}| in grey levels over `motion.visible`."""
    difference = np.abs(output.astype(np.float32) - motion.warp(previous_output.astype(np.float32))).mean(axis=2)
    mask = motion.visible
    return float(difference[mask].mean()) if mask.any() else 0.0
