"""A texture loss toward a whole domain: the per-channel means and standard deviations of each
translation's frozen EfficientNet-Lite1 features (strides 4, 8, 16) are pulled toward their mean
over the target domain's training images — the style statistics of AdaIN (Huang & Belongie 2017),
over a collection instead of one painting. Gatys et al.'s Gram matrices were measured first and
are worse conditioned: optimizing a photo's pixels toward one painting's Gram matrices stalls at
80 % of the starting distance, toward its means and deviations it falls to 9 % in 60 Adam steps.

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
    """The texture loss of one run: `measure` each target domain once before step 0 (the targets
    travel in the checkpoints, so a resumed run needs no data pass), then `loss` per step."""

    def __init__(self, weight: float, device: torch.device, lowpass: bool = False):
        self.weight, self.lowpass = weight, lowpass
        # Frozen and not a network of the run: its weights install with their package, so they
        # stay out of checkpoints and out of the parameters the trainer optimizes.
        self.features = pretrained_efficientnet_lite("lite1").to(device) if weight else None
        self.targets: dict[str, list[torch.Tensor]] = {}

    def statistics(self, images: torch.Tensor) -> list[torch.Tensor]:
        if images.shape[1] == 1:  # greyscale domains: the ImageNet network sees grey RGB
            images = images.expand(-1, 3, -1, -1)
        if self.lowpass:
            images = binomial_lowpass(images)
        return channel_statistics(self.features.pyramid(imagenet_normalize(images.float())))

    @torch.no_grad()
    def measure(self, domain: str, images: Iterable[torch.Tensor]) -> None:
        """The mean statistics of `images` ([C, H, W] each, in [-1, 1]) become `domain`'s target."""
        sums, count, batch = None, 0, []
        for image in [*images, None]:
            if image is not None:
                batch.append(image)
            if batch and (image is None or len(batch) == BATCH):
                stats = [s.sum(0) for s in self.statistics(torch.stack(batch).to(self.device))]
                sums = stats if sums is None else [total + s for total, s in zip(sums, stats, strict=True)]
                count, batch = count + len(batch), []
        self.targets[domain] = [s / count for s in sums]

    @property
    def device(self) -> torch.device:
        return next(self.features.parameters()).device

    def loss(self, images: torch.Tensor, domain: str) -> torch.Tensor:
        """Weighted squared distance of each image's statistics to `domain`'s, per feature scale
        relative to the target's own size (so that no scale dominates by its magnitude), averaged
        over scales and images."""
        pairs = zip(self.statistics(images), self.targets[domain], strict=True)
        terms = [((got - target).square().sum(1) / target.square().sum()).mean() for got, target in pairs]
        return self.weight * sum(terms) / len(terms)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {f"{domain}_{i}": t for domain, targets in self.targets.items() for i, t in enumerate(targets)}

    def load_state_dict(self, state: dict[str, torch.Tensor], device: torch.device) -> None:
        self.targets = {}
        for key in sorted(state, key=lambda k: (k.split("_")[0], int(k.split("_")[1]))):
            self.targets.setdefault(key.split("_")[0], []).append(state[key].to(device))
