"""A texture loss toward a whole domain: the per-channel means and standard deviations of each
translation's frozen EfficientNet-Lite1 features (strides 4, 8, 16) are pulled toward their mean
over the target domain's training images, or toward the nearest image's — the style statistics
of AdaIN (Huang & Belongie 2017), over a collection instead of one painting. Gatys et al.'s Gram
matrices were measured first and are worse conditioned: optimizing a photo's pixels toward one
painting's Gram matrices stalls at 80 % of the starting distance, toward its means and deviations
it falls to 9 % in 60 Adam steps.

A discriminator has to learn what differs before it can teach it, and from a thousand images in
a few thousand batch-1 steps it learns colour and coarse texture (benchmarks/results/quality.md);
the texture statistics of the target collection are known before step 0, so the generator gets
that signal from its first step. Lite1, not the evaluation's Lite0 (see quality.md on which
network each figure uses).
"""

from __future__ import annotations

from typing import Iterable

import torch

from i2i.nets.efficientnet_lite import imagenet_normalize, pretrained_efficientnet_lite
from i2i.nets.projected import binomial_lowpass

BATCH = 16  # images per forward pass while measuring a domain


VARIANCE_FLOOR = 1e-5  # keeps the deviation's gradient finite on a constant channel


def channel_statistics(features: list[torch.Tensor]) -> list[torch.Tensor]:
    """[N, C, H, W] feature maps → [N, 2C]: each channel's mean, then its standard deviation, over
    positions (so that they do not depend on the image size)."""
    return [torch.cat([f.mean((2, 3)), (f.var((2, 3), correction=0) + VARIANCE_FLOOR).sqrt()], dim=1) for f in features]


class DomainTexture:
    """The texture loss of one run: `measure` each target domain once before step 0 (the
    statistics travel in the checkpoints, so a resumed run needs no data pass), then `loss` per
    step. `nearest`: each image is pulled toward the statistics of the target image nearest to
    its own, not toward the domain's mean — a photo of a night sky toward a dark painting, not
    toward the average bright one, so that translations keep the spread of the domain."""

    def __init__(self, weight: float, device: torch.device, lowpass: bool = False, nearest: bool = False):
        self.weight, self.lowpass, self.nearest = weight, lowpass, nearest
        # Frozen and not a network of the run: its weights install with their package, so they
        # stay out of checkpoints and out of the parameters the trainer optimizes.
        self.features = pretrained_efficientnet_lite("lite1").to(device) if weight else None
        self.measured: dict[str, list[torch.Tensor]] = {}  # domain → per scale [images, 2C]

    def statistics(self, images: torch.Tensor) -> list[torch.Tensor]:
        if images.shape[1] == 1:  # greyscale domains: the ImageNet network sees grey RGB
            images = images.expand(-1, 3, -1, -1)
        if self.lowpass:
            images = binomial_lowpass(images)
        return channel_statistics(self.features.pyramid(imagenet_normalize(images.float())))

    @torch.no_grad()
    def measure(self, domain: str, images: Iterable[torch.Tensor]) -> None:
        """The statistics of `images` ([C, H, W] each, in [-1, 1]) become `domain`'s."""
        images = list(images)
        batches = [
            self.statistics(torch.stack(images[i : i + BATCH]).to(self.device)) for i in range(0, len(images), BATCH)
        ]
        self.measured[domain] = [torch.cat(scale) for scale in zip(*batches, strict=True)]

    @property
    def device(self) -> torch.device:
        return next(self.features.parameters()).device

    def loss(self, images: torch.Tensor, domain: str) -> torch.Tensor:
        """Weighted squared distance of each image's statistics to its target's (the domain's mean,
        or the nearest measured image's), per feature scale relative to the size of the domain's
        mean statistics (so that no scale dominates by its magnitude), averaged over scales, then
        over images."""
        measured = self.measured[domain]
        targets = measured if self.nearest else [scale.mean(0, keepdim=True) for scale in measured]
        distances = sum(
            (got[:, None] - target[None]).square().sum(2) / scale.mean(0).square().sum()
            for got, target, scale in zip(self.statistics(images), targets, measured, strict=True)
        )
        return self.weight * distances.amin(1).mean() / len(measured)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {f"{domain}_{i}": scale for domain, scales in self.measured.items() for i, scale in enumerate(scales)}

    def load_state_dict(self, state: dict[str, torch.Tensor], device: torch.device) -> None:
        self.measured = {}
        for key in sorted(state, key=lambda k: (k.split("_")[0], int(k.split("_")[1]))):
            self.measured.setdefault(key.split("_")[0], []).append(state[key].to(device))
