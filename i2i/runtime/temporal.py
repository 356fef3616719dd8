"""Temporal modes of `i2i video`: what guess of each frame its per-frame translation is held to.

- `none`: y_t = G(x_t), the per-frame baseline.
- `recycle`: RecycleGAN's predictor of the output domain forecasts ŷ_t = P(o_{t−2}, o_{t−1})
  from the two previous *outputs*; that forecast is the guess, trusted everywhere; a scene cut
  (large input change) restarts the history. The predictor comes from a run directory's
  checkpoint or, for an exported generator, from the predictor file its metadata links to, run
  by the same backend.
- `flow`: a cheap baseline — the previous output warped along the input's optical flow is the
  guess, trusted where the flow is forward–backward consistent.
- `hybrid`: the flow mode, with the predictor's forecast as the guess wherever the flow is not
  trusted (occlusions, fast or textureless motion), where `flow` falls back to the per-frame
  output; the forecast is frame t−1's output plus the predictor's correction, so at worst it holds
  the previous output there. It is trusted only where it disagrees with the per-frame output by
  less than FORECAST_CUTOFF: a larger disagreement where the flow failed is mostly motion the
  forecast missed, and holding it leaves a ghost of the moving object. The warping error counts
  such pixels whenever its own flow follows them (benchmarks/results/video.md measures the gain against
  holding the previous output).

Every mode holds y_t to its guess g by one rule (`Limit`): where the guess is trusted and
disagrees with y_t by less than `cutoff` grey levels, o_t = g + clip(y_t − g, −s, +s) per
channel; elsewhere o_t = y_t. The step s is chosen for each frame so that the output removes a
share `strength` of the frame's total disagreement with its guess (Σ|o − y| = strength·Σ|y − g|
over those pixels), the largest disagreements first: 0 keeps the per-frame output, 1 the guess.
Small changes pass unchanged, a large jump is spread over frames, and a disagreement beyond
`cutoff` (a missed occlusion or a real change) keeps the per-frame output. For a fixed guess
this is the output with the least squared difference from the guess (what the warping error
measures) for its total absolute deviation from y_t: the Lagrange condition of that problem
gives |o − g| = min(|y − g|, s). A share rather than a fixed step in grey levels, because a
step tuned on one generator let most of a less flickery one's flicker through
(benchmarks/results/video.md); the clipping replaced an α·exp(−(d/σ)²) mix of the guess, which at the
same deviation removed less of the warping error. Being a squared-error rule, it leaves the
many small changes as they are, so the mean *absolute* difference (`flicker`) falls less.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from i2i.errors import ConfigError
from i2i.evaluation.flicker import InputMotion
from i2i.export.formats import FILE_BACKENDS
from i2i.image import pad_to_multiple
from i2i.rundir import load_predictor, predicted_domain, predictor_multiple
from i2i.runners import TorchRunner, torch_device

from .predictor import Predictor, Runner, load_file

TEMPORAL_MODES = ("none", "recycle", "flow", "hybrid")
# (strength, cutoff) of each blending mode, chosen on cup.mp4 by benchmarks/temporal_modes.py with a 1500-step
# RecycleGAN: the lowest warping error at no more deviation than the exp-blended flow baseline's there; held out on
# two clips (benchmarks/results/video.md). recycle: its grid's lowest warping error, within that deviation too.
TEMPORAL_DEFAULTS = {"recycle": (0.5, 120.0), "flow": (0.5, 120.0), "hybrid": (0.5, 120.0)}
SCENE_CUT = 40.0  # mean input change (grey levels) from one frame to the next that restarts the history
TRUSTED = 0.5  # flow consistency above which a pixel's warped previous output is a trusted guess
# mean disagreement (grey levels) with the per-frame output under which the hybrid's forecast is trusted, tuned with
# the hybrid's (strength, cutoff) on cup.mp4 (benchmarks/results/video.md)
FORECAST_CUTOFF = 20.0


def make_blender(
    temporal: str,
    model: Path | None,
    predictor: Predictor,
    strength: float | None = None,
    cutoff: float | None = None,
    scene_cut: float = SCENE_CUT,
    device: str = "cpu",
    forecast_cutoff: float = FORECAST_CUTOFF,
):
    """The blender of mode `temporal` (None for `none`), strength/cutoff defaulting to
    TEMPORAL_DEFAULTS: called as blender(frame, per-frame output, motion) → output, in frame order."""
    if temporal not in TEMPORAL_MODES:
        raise ConfigError(f"--temporal {temporal}: choose one of {', '.join(TEMPORAL_MODES)}")
    if temporal == "none":
        return None
    default_strength, default_cutoff = TEMPORAL_DEFAULTS[temporal]
    rule = Limit(default_strength if strength is None else strength, default_cutoff if cutoff is None else cutoff)
    if not 0 <= rule.strength <= 1 or rule.cutoff < 0:
        raise ConfigError(
            f"--strength {rule.strength}, --cutoff {rule.cutoff}: the strength is a share from 0 to 1, "
            "the cutoff grey levels from 0"
        )
    if temporal == "flow":
        return FlowBlender(rule, scene_cut)
    if model is None:
        raise ConfigError(f"--temporal {temporal} needs MODEL: a recycle_gan run directory or its exported generator")
    forecaster = load_forecaster(model, predictor, device)
    if temporal == "recycle":
        return RecycleBlender(forecaster, rule, scene_cut)
    return HybridBlender(forecaster, rule, scene_cut, forecast_cutoff)


class Forecaster:
    """Frame t from frames t−2, t−1 (uint8 H×W×C each) through a predictor runner, which takes
    the pair stacked on channels, padded to the predictor's size multiple."""

    def __init__(self, run: Runner, multiple: int):
        self.run, self.multiple = run, multiple

    def __call__(self, earlier: np.ndarray, previous: np.ndarray) -> np.ndarray:
        pair = np.concatenate([earlier, previous], axis=2)[None]
        height, width = pair.shape[1:3]
        return self.run(pad_to_multiple(pair, self.multiple))[0, :height, :width]


def load_forecaster(model: Path, predictor: Predictor, device: str = "cpu") -> Forecaster:
    """The predictor of `predictor`'s output domain: a run directory's, on the torch backend, or the
    file an exported generator `model` links to (metadata), on `predictor`'s backend."""
    model = Path(model)
    if model.is_dir():
        net, config = load_predictor(model, predicted_domain(predictor.direction))
        device_here = torch_device(device)
        runner = TorchRunner(net.to(device_here), device_here, torch.float32, False)
        return Forecaster(runner, predictor_multiple(config))
    path = linked_predictor(model, predictor.metadata)
    backends = FILE_BACKENDS[model.suffix]
    backend = predictor.backend if predictor.backend in backends else backends[0]
    run, config, _ = load_file(path, backend, torch_device(device))
    return Forecaster(run, predictor_multiple(config))


def linked_predictor(model: Path, metadata: dict[str, str]) -> Path:
    """The predictor file beside an exported generator, named in its `metadata`; ConfigError if none."""
    from i2i.export.onnx import PREDICTOR_KEY

    if PREDICTOR_KEY not in metadata:
        raise ConfigError(
            f"{model}: links no temporal predictor (not a recycle_gan export); --temporal recycle needs a "
            "recycle_gan run directory or its generator exported by `i2i export`"
        )
    path = model.parent / f"{metadata[PREDICTOR_KEY]}{model.suffix}"
    if not path.is_file():
        raise ConfigError(
            f"{model}: its temporal predictor {path.name} is missing beside it; copy it along or re-export"
        )
    return path


class SceneCuts:
    """Tells, frame by frame, whether the input changed by more than `cut` grey levels on
    average since the previous frame: a scene cut, after which no earlier output is a guess."""

    def __init__(self, cut: float):
        self.cut = cut
        self.previous: np.ndarray | None = None

    def __call__(self, frame: np.ndarray) -> bool:
        values = frame.astype(np.float32)
        cut = self.previous is not None and np.abs(values - self.previous).mean() > self.cut
        self.previous = values
        return cut


Rule = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]  # (guess, per-frame output, trust) → output


@dataclass(frozen=True)
class Limit:
    """The blending rule of every mode (module docstring): where the guess is trusted (trust over
    TRUSTED) and the mean disagreement over channels is under `cutoff`, the per-frame output
    `styled` moved from the guess by at most the step that removes `strength` of the frame's
    total disagreement there; `styled` elsewhere."""

    strength: float
    cutoff: float

    def __call__(self, guess: np.ndarray, styled: np.ndarray, trust: np.ndarray) -> np.ndarray:
        guess, per_frame = guess.astype(np.float32), styled.astype(np.float32)
        difference = per_frame - guess
        magnitude = np.abs(difference)
        held = (trust > TRUSTED) & (magnitude.mean(axis=2) < self.cutoff)
        step = step_removing(magnitude[held], self.strength)
        out = np.where(held[:, :, None], guess + np.clip(difference, -step, step), per_frame)
        return np.clip(np.round(out), 0, 255).astype(np.uint8)


def step_removing(disagreements: np.ndarray, share: float) -> float:
    """The step s at which clipping each disagreement d (≥ 0) to s removes `share` of their total:
    Σ max(d − s, 0) = share·Σ d. At share 0 that is the largest disagreement (nothing removed);
    with no disagreements, 0."""
    descending = np.sort(disagreements, axis=None)[::-1].astype(np.float64)
    if descending.size == 0:
        return 0.0
    total_of_largest = np.cumsum(descending)  # [k]: the k+1 largest
    # removed at s = descending[k]: the k larger ones down to it; non-decreasing in k
    removed = total_of_largest - np.arange(1, descending.size + 1) * descending
    target = share * total_of_largest[-1]
    above = int(np.searchsorted(removed, target))  # disagreements above s: on that piece, removed is linear in s
    if above == 0:
        return float(descending[0])
    return float((total_of_largest[above - 1] - target) / above)


class RecycleBlender:
    def __init__(self, forecast: Forecaster, rule: Rule, scene_cut: float):
        self.forecast, self.rule, self.cuts = forecast, rule, SceneCuts(scene_cut)
        self.history: list[np.ndarray] = []

    def __call__(self, frame: np.ndarray, styled: np.ndarray, motion: Callable[[], InputMotion]) -> np.ndarray:
        if self.cuts(frame):
            self.history.clear()
        out = styled
        if len(self.history) >= 2:
            out = self.rule(self.forecast(*self.history), styled, np.ones(styled.shape[:2], np.float32))
        self.history = (self.history + [out])[-2:]
        return out


class FlowBlender:
    def __init__(self, rule: Rule, scene_cut: float):
        self.rule, self.cuts = rule, SceneCuts(scene_cut)
        self.previous_output: np.ndarray | None = None

    def __call__(self, frame: np.ndarray, styled: np.ndarray, motion: Callable[[], InputMotion]) -> np.ndarray:
        out = styled
        if not self.cuts(frame) and self.previous_output is not None:
            moved = motion()
            out = self.rule(moved.warp(self.previous_output.astype(np.float32)), styled, moved.consistency)
        self.previous_output = out
        return out


class HybridBlender:
    def __init__(
        self,
        forecast: Callable[[np.ndarray, np.ndarray], np.ndarray],
        rule: Rule,
        scene_cut: float,
        forecast_cutoff: float = FORECAST_CUTOFF,
    ):
        self.forecast, self.rule, self.cuts = forecast, rule, SceneCuts(scene_cut)
        self.forecast_cutoff = forecast_cutoff
        self.history: list[np.ndarray] = []  # the last two outputs

    def __call__(self, frame: np.ndarray, styled: np.ndarray, motion: Callable[[], InputMotion]) -> np.ndarray:
        if self.cuts(frame):
            self.history = []
        out = styled
        if self.history:
            moved = motion()
            guess, trust = moved.warp(self.history[-1].astype(np.float32)), moved.consistency
            untrusted = trust <= TRUSTED
            if len(self.history) == 2 and untrusted.any():  # the forecast (a network pass) only where it is used
                forecast = self.forecast(*self.history).astype(np.float32)
                close = np.abs(forecast - styled).mean(axis=2) < self.forecast_cutoff
                guess = np.where(untrusted[:, :, None], forecast, guess)
                trust = np.where(untrusted, close.astype(np.float32), trust)
            out = self.rule(guess, styled, trust)
        self.history = (self.history + [out])[-2:]
        return out
