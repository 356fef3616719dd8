"""Temporal modes of `i2i video`: what each frame's per-frame translation is blended with.

- `none`: y_t = G(x_t), the per-frame baseline.
- `recycle`: RecycleGAN's predictor of the output domain forecasts ŷ_t = P(o_{t−2}, o_{t−1})
  from the two previous *outputs*; o_t blends ŷ_t into y_t with weight α·exp(−(d/σ)²), d the
  per-pixel disagreement |ŷ_t − y_t|, so the forecast steadies what it agrees on and the
  per-frame output wins at occlusions; a scene cut (large input change) restarts the history.
  The predictor comes from a run directory's checkpoint or, for an exported generator, from
  the predictor file its metadata links to, run by the same backend.
- `flow`: a cheap baseline — the previous output warped along the input's optical flow,
  blended the same way where the flow is consistent.
- `hybrid`: both guesses at once. Per pixel, the flow-warped previous output counts by the
  flow's forward–backward consistency and the predictor's forecast by how well the predictor
  forecast the previous frame there (its residual, carried along the flow); their weighted
  mean is blended into y_t like the others, by agreement, where either guess is trusted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch

from i2i.errors import ConfigError
from i2i.image import pad_to_multiple
from i2i.rundir import load_predictor, predicted_domain, predictor_multiple
from i2i.runners import TorchRunner

from .flicker import InputMotion
from .predictor import FILE_BACKENDS, Predictor, Runner, load_file

TEMPORAL_MODES = ("none", "recycle", "flow", "hybrid")
# (alpha, sigma) of the blending modes. recycle: chosen on carphone_pristine.mp4 and checked on
# cup.mp4 (benchmarks/RESULTS.md); flow: the baseline's own, which already halves the flicker.
# hybrid: chosen on cup.mp4 by benchmarks/temporal_modes.py (lowest warping error at no more deviation than flow).
TEMPORAL_DEFAULTS = {"recycle": (0.9, 40.0), "flow": (0.7, 24.0), "hybrid": (0.7, 15.0)}
RESIDUAL_SIGMA = 5.0  # hybrid: the predictor's miss (grey levels) at which its forecast's weight falls to 1/e


def make_blender(
    temporal: str,
    model: Path | None,
    predictor: Predictor,
    alpha: float | None = None,
    sigma: float | None = None,
    cut: float = 40.0,
    device: str = "cpu",
):
    """The blender of mode `temporal` (None for `none`), alpha/sigma defaulting to TEMPORAL_DEFAULTS:
    called as blender(frame, per-frame output, motion) → output, in frame order."""
    if temporal not in TEMPORAL_MODES:
        raise ConfigError(f"--temporal {temporal}: choose one of {', '.join(TEMPORAL_MODES)}")
    if temporal == "none":
        return None
    default_alpha, default_sigma = TEMPORAL_DEFAULTS[temporal]
    alpha, sigma = default_alpha if alpha is None else alpha, default_sigma if sigma is None else sigma
    if temporal == "flow":
        return FlowBlender(alpha, sigma, cut)
    if model is None:
        raise ConfigError(f"--temporal {temporal} needs MODEL: a recycle_gan run directory or its exported generator")
    blender = RecycleBlender if temporal == "recycle" else HybridBlender
    return blender(load_forecaster(model, predictor, device), alpha, sigma, cut)


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
        torch_device = torch.device(device)
        runner = TorchRunner(net.to(torch_device), torch_device, torch.float32, False)
        return Forecaster(runner, predictor_multiple(config))
    path = linked_predictor(model)
    backends = FILE_BACKENDS[model.suffix]
    backend = predictor.backend if predictor.backend in backends else backends[0]
    run, config, _ = load_file(path, backend, torch.device(device))
    return Forecaster(run, predictor_multiple(config))


def linked_predictor(model: Path) -> Path:
    """The predictor file beside an exported generator, named in its metadata; ConfigError if none."""
    from i2i.export.onnx import PREDICTOR_KEY

    metadata = exported_metadata(model)
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


def exported_metadata(path: Path) -> dict[str, str]:
    """i2i's metadata of an exported .onnx, .xml (OpenVINO IR) or .engine (from its sidecar)."""
    if path.suffix == ".engine":
        from i2i.export.tensorrt import EngineSidecar

        return EngineSidecar.read(path).metadata
    if path.suffix == ".xml":
        from i2i.export.openvino import read_ir

        return read_ir(path)[1]
    from i2i.export.onnx import read_metadata

    from .onnxruntime_backend import read_model

    return read_metadata(read_model(path), path)


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


class RecycleBlender:
    def __init__(self, forecast: Forecaster, alpha: float, sigma: float, cut: float):
        self.forecast, self.alpha, self.sigma, self.cuts = forecast, alpha, sigma, SceneCuts(cut)
        self.history: list[np.ndarray] = []

    def __call__(self, frame: np.ndarray, styled: np.ndarray, motion: Callable[[], InputMotion]) -> np.ndarray:
        if self.cuts(frame):
            self.history.clear()
        out = styled
        if len(self.history) >= 2:
            out = blend(self.forecast(*self.history), styled, np.ones(styled.shape[:2], bool), self.alpha, self.sigma)
        self.history = (self.history + [out])[-2:]
        return out


class FlowBlender:
    def __init__(self, alpha: float, sigma: float, cut: float):
        self.alpha, self.sigma, self.cuts = alpha, sigma, SceneCuts(cut)
        self.previous_output: np.ndarray | None = None

    def __call__(self, frame: np.ndarray, styled: np.ndarray, motion: Callable[[], InputMotion]) -> np.ndarray:
        out = styled
        if not self.cuts(frame) and self.previous_output is not None:
            moved = motion()
            out = blend(
                moved.warp(self.previous_output.astype(np.float32)), styled, moved.visible, self.alpha, self.sigma
            )
        self.previous_output = out
        return out


class HybridBlender:
    def __init__(self, forecast: Forecaster, alpha: float, sigma: float, cut: float):
        self.forecast, self.alpha, self.sigma, self.cuts = forecast, alpha, sigma, SceneCuts(cut)
        self.residual_sigma = RESIDUAL_SIGMA
        self.history: list[np.ndarray] = []  # the last two outputs
        self.residual: np.ndarray | None = None  # |forecast − per-frame output| at the previous frame

    def __call__(self, frame: np.ndarray, styled: np.ndarray, motion: Callable[[], InputMotion]) -> np.ndarray:
        if self.cuts(frame):
            self.history, self.residual = [], None
        out, forecast = styled, None
        if self.history:
            moved = motion()
            guesses, trust = [moved.warp(self.history[-1].astype(np.float32))], [moved.consistency]
            if len(self.history) == 2:
                forecast = self.forecast(*self.history).astype(np.float32)
                missed = moved.warp(self.residual) if self.residual is not None else np.full(trust[0].shape, 1e9)
                guesses.append(forecast)
                trust.append(np.exp(-((missed / self.residual_sigma) ** 2)))
            total = np.maximum(sum(trust), 1e-6)
            guess = sum(t[:, :, None] * g for t, g in zip(trust, guesses)) / total[:, :, None]
            out = blend(guess, styled, np.maximum.reduce(trust), self.alpha, self.sigma)
        if forecast is not None:
            self.residual = np.abs(forecast - styled).mean(axis=2)
        self.history = (self.history + [out])[-2:]
        return out


def blend(guess: np.ndarray, styled: np.ndarray, usable: np.ndarray, alpha: float, sigma: float) -> np.ndarray:
    """α·exp(−(d/σ)²)-weighted mix of `guess` into `styled` (d in grey levels), only where `usable`
    (a mask, or a trust in 0..1 that scales the weight)."""
    distance = np.abs(guess.astype(np.float32) - styled.astype(np.float32)).mean(axis=2, keepdims=True)
    weight = alpha * np.exp(-((distance / sigma) ** 2)) * usable[:, :, None]
    return np.clip(np.round(weight * guess + (1 - weight) * styled), 0, 255).astype(np.uint8)
