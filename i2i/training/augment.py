"""DiffAugment (Zhao et al. 2020): random, differentiable transforms of every image a
discriminator judges, real and fake alike, so that with little data and few steps D cannot
memorize the training images or key on pixel-exact positions (its stride grid), and G is
still trained through the same transforms.

The transforms are drawn from (seed, step, salt), not from a global generator: a resumed run
draws what the uninterrupted run drew.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from i2i.config import diff_augment_ops


class DiffAugment:
    """`policy`: comma-separated "color", "translation" (up to 1/8 of the size, zero filled),
    "cutout" (a zeroed square of half the size); "" leaves images unchanged. Images in [-1, 1]."""

    def __init__(self, policy: str, seed: int):
        self.ops = diff_augment_ops(policy)
        self.seed = seed

    def __call__(self, images: torch.Tensor, step: int, salt: int) -> torch.Tensor:
        """The augmented batch; `salt` tells apart the batches augmented within one step."""
        if not self.ops:
            return images
        rng = np.random.default_rng([self.seed, step, salt])
        for op in self.ops:
            images = getattr(self, f"_{op}")(images, rng)
        return images

    @staticmethod
    def _uniform(rng: np.random.Generator, images: torch.Tensor, low: float, high: float) -> torch.Tensor:
        values = rng.uniform(low, high, size=(images.shape[0], 1, 1, 1))
        return torch.as_tensor(values, dtype=images.dtype, device=images.device)

    def _color(self, images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """Brightness ±0.5, saturation ×[0, 2], contrast ×[0.5, 1.5] (the paper's ranges)."""
        images = images + self._uniform(rng, images, -0.5, 0.5)
        grey = images.mean(dim=1, keepdim=True)
        images = (images - grey) * self._uniform(rng, images, 0.0, 2.0) + grey
        mean = images.mean(dim=(1, 2, 3), keepdim=True)
        return (images - mean) * self._uniform(rng, images, 0.5, 1.5) + mean

    @staticmethod
    def _translation(images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        height, width = images.shape[2:]
        limit_y, limit_x = int(height * 0.125 + 0.5), int(width * 0.125 + 0.5)
        padded = F.pad(images, (limit_x, limit_x, limit_y, limit_y))
        shifted = []
        for index in range(images.shape[0]):
            dy, dx = rng.integers(-limit_y, limit_y + 1), rng.integers(-limit_x, limit_x + 1)
            top, left = limit_y - dy, limit_x - dx
            shifted.append(padded[index, :, top : top + height, left : left + width])
        return torch.stack(shifted)

    @staticmethod
    def _cutout(images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        height, width = images.shape[2:]
        cut_y, cut_x = int(height * 0.5 + 0.5), int(width * 0.5 + 0.5)
        keep = torch.ones(images.shape[0], 1, height, width, dtype=images.dtype, device=images.device)
        for index in range(images.shape[0]):
            # The square's centre anywhere in the image; it may reach past the border.
            y, x = rng.integers(0, height), rng.integers(0, width)
            keep[
                index,
                :,
                max(0, y - cut_y // 2) : y + cut_y - cut_y // 2,
                max(0, x - cut_x // 2) : x + cut_x - cut_x // 2,
            ] = 0
        return images * keep
