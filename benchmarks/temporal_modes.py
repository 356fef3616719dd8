"""Tune `i2i video`'s temporal modes on one clip and compare them on held-out clips.

    python -m i2i.benchmarks.temporal_modes RUN --tune cup.mp4 --held-out carphone.mp4 vtest.mp4 \
        --max-frames 40 --out temporal_modes.json

Each clip is decoded and translated once and the input's motion estimated once per frame pair;
then every mode runs through the same blenders and metrics as `i2i video --report`
(runtime/video.TemporalStep). The `hybrid` mode's alpha/sigma/residual sigma are chosen on the tuning clip
only: the lowest warping error whose deviation from the per-frame output stays at or below the
flow baseline's there. The held-out clips then run every mode at its defaults and hybrid at
the chosen values (`hybrid (tuned)`).
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

from i2i.runtime import load
from i2i.runtime.flicker import InputMotion
from i2i.runtime.temporal import TEMPORAL_MODES, make_blender
from i2i.runtime.video import FrameSource, TemporalStep, VideoReport

ALPHAS, SIGMAS, RESIDUAL_SIGMAS = (0.7, 0.8), (15.0, 24.0), (5.0, 10.0)


class Clip:
    """A clip's frames, their per-frame translations and the input's motion, computed once."""

    def __init__(self, path: Path, predictor, max_frames: int):
        self.name = path.name
        self.frames = list(itertools.islice(FrameSource(path, predictor.input_channels), max_frames))
        self.styled = predictor(self.frames)
        self.motions = {}

    def estimate(self, previous, current) -> InputMotion:
        key = (id(previous), id(current))
        if key not in self.motions:
            self.motions[key] = InputMotion.estimate(previous, current)
        return self.motions[key]

    def run(self, blender, mode: str) -> dict:
        result = VideoReport(temporal=mode, frames=len(self.frames))
        step = TemporalStep(blender, result, True, self.estimate)
        for frame, styled in zip(self.frames, self.styled):
            step(frame, styled)
        summary = result.summary()
        keys = ("warping_error", "warping_error_per_frame_baseline", "warping_error_reduction", "flicker")
        return {key: summary[key] for key in (*keys, "flicker_reduction", "mean_deviation_from_per_frame")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("--tune", type=Path, required=True)
    parser.add_argument("--held-out", type=Path, nargs="+", required=True)
    parser.add_argument("--max-frames", type=int, default=40)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    predictor = load(args.run, backend="torch")

    def blender(mode: str, alpha=None, sigma=None, residual_sigma=None):
        made = make_blender(mode, args.run, predictor, alpha, sigma)
        if residual_sigma is not None:
            made.residual_sigma = residual_sigma
        return made

    tune = Clip(args.tune, predictor, args.max_frames)
    flow = tune.run(blender("flow"), "flow")
    grid = {k: tune.run(blender("hybrid", *k), "hybrid") for k in itertools.product(ALPHAS, SIGMAS, RESIDUAL_SIGMAS)}
    allowed = {
        k: v for k, v in grid.items() if v["mean_deviation_from_per_frame"] <= flow["mean_deviation_from_per_frame"]
    }
    chosen = min(allowed or grid, key=lambda k: (allowed or grid)[k]["warping_error"])
    results = {
        "run": str(args.run),
        "max_frames": args.max_frames,
        "tuning": {
            "clip": tune.name,
            "flow": flow,
            "hybrid_grid": [{"alpha": a, "sigma": s, "residual_sigma": r, **v} for (a, s, r), v in grid.items()],
            "chosen": dict(zip(("alpha", "sigma", "residual_sigma"), chosen)),
        },
        "held_out": {},
    }
    print(f"tuned on {tune.name}: hybrid alpha, sigma, residual sigma {chosen} ({grid[chosen]}); flow {flow}")
    for path in args.held_out:
        clip = Clip(path, predictor, args.max_frames)
        rows = {mode: clip.run(blender(mode), mode) for mode in TEMPORAL_MODES if mode != "hybrid"}
        rows["hybrid (tuned)"] = clip.run(blender("hybrid", *chosen), "hybrid")
        results["held_out"][clip.name] = rows
        for mode, row in rows.items():
            print(
                f"{clip.name:32} {mode:18} warping error {row['warping_error']:.5f} "
                f"({-100 * row['warping_error_reduction']:+.0f} % vs per-frame), flicker {row['flicker']:.2f} "
                f"({-100 * row['flicker_reduction']:+.0f} %), deviation {row['mean_deviation_from_per_frame']:.2f}"
            )
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
