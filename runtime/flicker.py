"""Temporal consistency of a stylized video, measured against the motion of its input.

Flow is estimated on the *input* frames (OpenCV Farnebäck), so a method cannot lower its
score by inventing its own motion. For consecutive frames t−1, t: warp output t−1 to t along
the flow, mask pixels whose forward and backward flows disagree (occlusions, cuts), and take
the mean absolute difference to output t on the rest — the warping error (Lai et al. 2018).
"""

from __future__ import annotations

import cv2
import numpy as np


def _gray(frame: np.ndarray) -> np.ndarray:
    return frame[:, :, 0] if frame.shape[2] == 1 else cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


def optical_flow(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Flow F with target(p) ≈ source(p + F(p)), HxWx2 in pixels."""
    return cv2.calcOpticalFlowFarneback(_gray(target), _gray(source), None, 0.5, 3, 15, 3, 5, 1.2, 0)


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Sample `image` at p + flow(p) (bilinear, border replicated)."""
    height, width = flow.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    warped = cv2.remap(
        image, grid_x + flow[..., 0], grid_y + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    return warped.reshape(image.shape)


def occlusion_mask(previous: np.ndarray, current: np.ndarray, threshold: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(flow current→previous, mask of pixels visible in both), by forward-backward consistency."""
    backward = optical_flow(previous, current)  # current(p) ≈ previous(p + backward(p))
    forward = optical_flow(current, previous)  # previous(q) ≈ current(q + forward(q))
    round_trip = backward + warp(forward, backward)
    visible = np.linalg.norm(round_trip, axis=2) < threshold + 0.05 * (
        np.linalg.norm(backward, axis=2) + np.linalg.norm(forward, axis=2)
    )
    return backward, visible


def warping_error(inputs: tuple[np.ndarray, np.ndarray], outputs: tuple[np.ndarray, np.ndarray]) -> float:
    """Occlusion-masked mean |o_t − warp(o_{t−1})| in 0..255 units, flow from the inputs."""
    flow, visible = occlusion_mask(*inputs)
    previous = warp(outputs[0].astype(np.float32), flow)
    difference = np.abs(outputs[1].astype(np.float32) - previous).mean(axis=2)
    return float(difference[visible].mean()) if visible.any() else 0.0
