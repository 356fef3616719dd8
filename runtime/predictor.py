"""One callable predictor over a trained generator: uint8 images in, uint8 images out.

It pads each image to the generator's size multiple (reflection, so borders look natural),
batches images of equal padded size, runs the network and crops the padding off again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from i2i.config import RunConfig
from i2i.errors import ConfigError
from i2i.nets import size_multiple
from i2i.rundir import generator_channels, load_generator

BACKENDS = ("auto", "torch")


@dataclass
class Predictor:
    net: nn.Module
    config: RunConfig
    direction: str
    device: torch.device
    batch_size: int = 8

    @property
    def input_channels(self) -> int:
        return generator_channels(self.config, self.direction)[0]

    @property
    def size_multiple(self) -> int:
        return size_multiple(self.config.G)

    def __call__(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Translate uint8 HWC images of any sizes; returns them in the same order."""
        results: list[np.ndarray | None] = [None] * len(images)
        by_shape: dict[tuple[int, int], list[int]] = {}
        for index, image in enumerate(images):
            by_shape.setdefault(image.shape[:2], []).append(index)
        for indexes in by_shape.values():
            for start in range(0, len(indexes), self.batch_size):
                chunk = indexes[start:start + self.batch_size]
                for index, output in zip(chunk, self._run([images[i] for i in chunk])):
                    results[index] = output
        return results  # type: ignore[return-value]

    @torch.inference_mode()
    def _run(self, images: list[np.ndarray]) -> list[np.ndarray]:
        batch = torch.from_numpy(np.stack(images)).to(self.device).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)
        height, width = batch.shape[2:]
        padded = pad_to_multiple(batch, self.size_multiple)
        output = self.net(padded)[:, :, :height, :width]
        output = ((output.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        return list(output.permute(0, 2, 3, 1).cpu().numpy())


def pad_to_multiple(batch: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad bottom/right so H and W are multiples of `multiple` (a power of two) and at least
    8: the ResNet blocks reflection-pad the 1/4-size features by 1, which needs 2 pixels.
    Reflection where the image is large enough for it, edge replication otherwise."""
    height, width = batch.shape[2:]
    pad_h = max(-height % multiple, 8 - height)
    pad_w = max(-width % multiple, 8 - width)
    if not pad_h and not pad_w:
        return batch
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    return F.pad(batch, (0, pad_w, 0, pad_h), mode=mode)


def load(path: Path, backend: str = "auto", device: str = "cpu", direction: str = "AtoB", batch_size: int = 8) -> Predictor:
    """A predictor for the generator in a run directory."""
    if backend not in BACKENDS:
        raise ConfigError(f"backend '{backend}' is not available; choose one of {', '.join(BACKENDS)}")
    try:
        torch_device = torch.device(device)
    except RuntimeError:
        raise ConfigError(f"device '{device}' is not a torch device name (cpu, cuda, cuda:1)") from None
    if torch_device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device cuda was requested but no CUDA GPU is available; use --device cpu")
    net, config = load_generator(path, direction)
    return Predictor(net.to(torch_device), config, direction, torch_device, batch_size)
