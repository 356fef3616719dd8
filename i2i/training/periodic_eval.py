"""Evaluation during training: every `train.eval_every` steps, translate held-out A images
with the current A→B generator and log their Fréchet distance and KID to real B images
(EfficientNet-Lite0 features, offline) and their upsampling-lattice artifact score (in units of
the real B images), beside the untranslated A images' figures, to TensorBoard and RUN/eval.jsonl:
the same `evaluate` as `i2i eval`, on images held in memory."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import torch

from i2i.config import RunConfig
from i2i.evaluation.evaluate import Reference, evaluate, measure_images
from i2i.evaluation.metrics import make_extractor
from i2i.evaluation.visualize import tensor_to_uint8
from i2i.image import to_model_input
from i2i.io import append_line, list_images, read_image

EVAL_LOG = "eval.jsonl"
EXTRACTOR = "efficientnet-lite0"


def _held_out(root: Path, domain: str, count: int, channels: int, size: int) -> list[np.ndarray]:
    for split in ("test", "train"):
        folder = root / f"{split}{domain}"
        if folder.is_dir():
            images = [read_image(p, channels) for p in list_images(folder)[:count]]
            return [
                cv2.resize(i, (size, size), interpolation=cv2.INTER_AREA).reshape(size, size, channels) for i in images
            ]
    return []


class PeriodicEvaluator:
    def __init__(self, config: RunConfig, device: torch.device):
        data, count = config.data, config.train.eval_images
        root = Path(data.dataroot)
        self.sources = _held_out(root, "A", count, data.input_nc, data.crop_size)
        self.device = device
        self.extract = make_extractor(EXTRACTOR, str(device))
        real = _held_out(root, "B", count, data.output_nc, data.crop_size)
        self.reference = Reference(
            measure_images(real, self.extract), EXTRACTOR, sources=measure_images(self.sources, self.extract)
        )

    @torch.no_grad()
    def __call__(self, translate, step: int, run_dir: Path, writer) -> dict:
        """`translate` maps a float NCHW batch in [-1, 1] to its translation."""
        outputs = []
        for start in range(0, len(self.sources), 16):
            batch = np.stack(self.sources[start : start + 16])
            x = to_model_input(torch.from_numpy(batch).to(self.device))
            outputs += list(tensor_to_uint8(translate(x)))
        record = {"step": step, **evaluate(measure_images(outputs, self.extract), self.reference, kid_subsets=20)}
        append_line(run_dir / EVAL_LOG, json.dumps(record))
        writer.add_scalar("eval/frechet_distance_lite0", record["frechet_distance"], step)
        writer.add_scalar("eval/kid_lite0", record["kid"], step)
        writer.add_scalar("eval/artifact_score", record["artifact_score"], step)
        return record
