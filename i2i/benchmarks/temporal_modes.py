"""Tune `i2i video`'s temporal modes on one clip and compare them on held-out clips.

    python -m i2i.benchmarks.temporal_modes RUN --tune cup.mp4 --held-out carphone.mp4 vtest.mp4 \
        --max-frames 40 --out temporal_modes.json

Each clip is decoded and translated once and the input's motion estimated once per frame pair
and flow; then every mode runs through the same blenders and metrics as `i2i video --report`
(runtime/video.TemporalStep: warping error and flicker along DIS's flow). The warping error is
also reported along Farnebäck's flow, the one the `flow` and `hybrid` modes warp with, to show
how much a shared flow flatters them. Each mode's (strength, cutoff), and the hybrid's forecast
cutoff, are chosen on the tuning clip only: the lowest warping error whose deviation from the
per-frame output stays at or below the flow baseline's there. The flow baseline is the issue's:
the previous output warped along the flow, mixed in with weight α·exp(−(d/σ)²) at α 0.7, σ 24
(`i2i video`'s flow mode before the `Limit` rule), scaled by the flow's consistency. The
held-out clips then run every mode at its chosen values, plus "hybrid, no predictor": the hybrid
at its chosen values with the forecast replaced by the previous output held in place (what the
residual predictor forecasts before it learns anything) — whether the predictor earns anything
beyond filling the flow's gaps — and "hybrid, oracle forecast": the forecast replaced by the
previous output warped along the metric's own flow, the most any forecast can add there (not a
mode: it needs the flow that judges it).
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np

from i2i.evaluation.flicker import InputMotion, blending_flow, measuring_flow, warping_error
from i2i.runtime import load
from i2i.runtime.temporal import SCENE_CUT, FlowBlender, HybridBlender, Limit, make_blender
from i2i.runtime.video import FrameSource, TemporalStep, VideoReport

STRENGTHS, CUTOFFS, FORECAST_CUTOFFS = (0.3, 0.4, 0.5, 0.6, 0.7), (60.0, 120.0), (20.0, 40.0, 120.0)
BASELINE_ALPHA, BASELINE_SIGMA = 0.7, 24.0
TUNED = ("recycle", "flow", "hybrid")


def exp_blend(guess: np.ndarray, styled: np.ndarray, trust: np.ndarray) -> np.ndarray:
    """The baseline's rule: α·exp(−(d/σ)²)·trust-weighted mix of the guess into `styled`, d the
    mean disagreement over channels in grey levels."""
    distance = np.abs(guess.astype(np.float32) - styled.astype(np.float32)).mean(axis=2, keepdims=True)
    weight = BASELINE_ALPHA * np.exp(-((distance / BASELINE_SIGMA) ** 2)) * trust[:, :, None]
    return np.clip(np.round(weight * guess + (1 - weight) * styled), 0, 255).astype(np.uint8)


class Clip:
    """A clip's frames, their per-frame translations and the input's motion, computed once."""

    def __init__(self, path: Path, predictor, max_frames: int):
        self.name = path.name
        self.frames = list(itertools.islice(FrameSource(path, predictor.input_channels), max_frames))
        self.styled = predictor(self.frames)
        self.motions = {}

    def estimate(self, previous, current, flow) -> InputMotion:
        key = (id(previous), id(current), flow)
        if key not in self.motions:
            self.motions[key] = InputMotion.estimate(previous, current, flow)
        return self.motions[key]

    def run(self, blender, mode: str) -> dict:
        result = VideoReport(temporal=mode, frames=len(self.frames))
        step = TemporalStep(blender, result, True, self.estimate)
        outputs = [step(frame, styled) for frame, styled in zip(self.frames, self.styled)]
        summary = result.summary()
        keys = ("warping_error", "warping_error_per_frame_baseline", "warping_error_reduction", "flicker")
        row = {key: summary[key] for key in (*keys, "flicker_reduction", "mean_deviation_from_per_frame")}
        motions = [self.estimate(a, b, blending_flow) for a, b in zip(self.frames, self.frames[1:])]
        out, base = (
            np.mean([warping_error(m, a, b) for m, a, b in zip(motions, series, series[1:])])
            for series in (outputs, self.styled)
        )
        return row | {"warping_error_farneback": float(out), "warping_error_farneback_reduction": float(1 - out / base)}


def settings(mode: str) -> list[dict]:
    """The tuning grid of `mode`: make_blender's keyword arguments."""
    grid = [{"strength": s, "cutoff": c} for s, c in itertools.product(STRENGTHS, CUTOFFS)]
    return [g | {"forecast_cutoff": f} for g in grid for f in FORECAST_CUTOFFS] if mode == "hybrid" else grid


def hybrid_arguments(setting: dict) -> tuple:
    """HybridBlender's arguments after the forecast, at a hybrid `setting` of the grid."""
    return Limit(setting["strength"], setting["cutoff"]), SCENE_CUT, setting["forecast_cutoff"]


class OracleHybrid(HybridBlender):
    """The hybrid at `setting` whose forecast is the previous output warped along the metric's (DIS) flow."""

    def __init__(self, clip: Clip, setting: dict):
        super().__init__(self.warped_along_measuring_flow, *hybrid_arguments(setting))
        self.clip, self.frames = clip, (None, None)  # the previous and the current input frame

    def __call__(self, frame, styled, motion):
        self.frames = (self.frames[1], frame)
        return super().__call__(frame, styled, motion)

    def warped_along_measuring_flow(self, earlier: np.ndarray, previous: np.ndarray) -> np.ndarray:
        return self.clip.estimate(*self.frames, measuring_flow).warp(previous.astype(np.float32))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("--tune", type=Path, required=True)
    parser.add_argument("--held-out", type=Path, nargs="+", required=True)
    parser.add_argument("--max-frames", type=int, default=40)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    predictor = load(args.run, backend="torch")

    def rows(clip: Clip, chosen: dict) -> dict:
        """none, the baseline, each tuned mode at `chosen[mode]`, the hybrid without its predictor, the oracle."""
        hold = HybridBlender(lambda earlier, previous: previous, *hybrid_arguments(chosen["hybrid"]))
        found = {"none": clip.run(None, "none"), "flow baseline": clip.run(FlowBlender(exp_blend, SCENE_CUT), "flow")}
        for mode in TUNED:
            found[mode] = clip.run(make_blender(mode, args.run, predictor, **chosen[mode]), mode)
        oracle = OracleHybrid(clip, chosen["hybrid"])
        return found | {
            "hybrid, no predictor": clip.run(hold, "hybrid"),
            "hybrid, oracle forecast": clip.run(oracle, "hybrid"),
        }

    tune = Clip(args.tune, predictor, args.max_frames)
    baseline = tune.run(FlowBlender(exp_blend, SCENE_CUT), "flow")
    grid, chosen = {}, {}
    for mode in TUNED:
        grid[mode] = [
            setting | tune.run(make_blender(mode, args.run, predictor, **setting), mode) for setting in settings(mode)
        ]
        allowed = [
            row
            for row in grid[mode]
            if row["mean_deviation_from_per_frame"] <= baseline["mean_deviation_from_per_frame"]
        ]
        best = min(allowed or grid[mode], key=lambda row: row["warping_error"])
        chosen[mode] = {key: best[key] for key in settings(mode)[0]}
        print(f"tuned on {tune.name}: {mode} at {chosen[mode]} ({best})", flush=True)
    results = {
        "run": str(args.run),
        "max_frames": args.max_frames,
        "baseline": {"rule": "exp", "alpha": BASELINE_ALPHA, "sigma": BASELINE_SIGMA},
        "tuning": {
            "clip": tune.name,
            "flow baseline": baseline,
            "grid": grid,
            "chosen": chosen,
        },
        "held_out": {},
    }
    for path in args.held_out:
        clip = Clip(path, predictor, args.max_frames)
        results["held_out"][clip.name] = rows(clip, chosen)
        for mode, row in results["held_out"][clip.name].items():
            print(
                f"{clip.name:32} {mode:28} warping error {row['warping_error']:.5f} "
                f"({-100 * row['warping_error_reduction']:+.0f} % vs per-frame; Farnebäck's flow "
                f"{-100 * row['warping_error_farneback_reduction']:+.0f} %), flicker {row['flicker']:.2f} "
                f"({-100 * row['flicker_reduction']:+.0f} %), deviation {row['mean_deviation_from_per_frame']:.2f}",
                flush=True,
            )
        if args.out:  # after each clip, so that a long run leaves what it measured
            args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
