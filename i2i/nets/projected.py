"""A discriminator on frozen pretrained features (Projected GAN, Sauer et al. 2021).

Images go through a frozen ImageNet EfficientNet-Lite1 (not the evaluation's Lite0, so the
network that scores a run is not the one it was trained against); its feature pyramid is mixed by
fixed random projections (cross-channel 1×1, then cross-scale top-down 3×3) and judged by a light
trainable head per scale. Only the heads learn: from a thousand images and a few thousand steps a
discriminator trained from scratch sees colour statistics and periodic texture, pretrained
features see objects and parts.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import spectral_norm

from .efficientnet_lite import STAGES as EFFICIENTNET_STAGES
from .efficientnet_lite import imagenet_normalize, pretrained_efficientnet_lite

# EfficientNet stages judged (strides 4, 8, 16, 32 of the input; 24, 40, 112, 320 channels), and
# the width each is projected to (Projected GAN's "expand" widths, halved for CPU budgets).
STAGES = (1, 2, 4, 6)
PROJECTED_WIDTHS = (32, 64, 128, 256)
# The low-pass before the features: binomial, 7 taps (gain 0 at period 2, 1/8 at period 4).
BINOMIAL_7 = (1, 6, 15, 20, 15, 6, 1)


class ProjectedDiscriminator(nn.Module):
    """[N, C, H, W] images in [-1, 1] → [N, scales, H/4, W/4] patch logits, one channel per scale
    (coarser scales repeated to the finest grid, so that each weighs the same in a mean loss).
    The random projections are buffers: saved with the heads, never trained."""

    def __init__(self, input_nc: int, ndf: int, lowpass: bool = False):
        super().__init__()
        self.input_nc = input_nc
        taps = torch.tensor(BINOMIAL_7, dtype=torch.float32) / sum(BINOMIAL_7)
        # Not saved: a constant of the design, so checkpoints are the same with and without it.
        self.register_buffer("lowpass", taps.view(1, 1, 1, -1).repeat(3, 1, 1, 1) if lowpass else None, False)
        # Not a submodule: its 4.6 M frozen weights install with their package, so they stay out of
        # every checkpoint and out of the parameters the trainer toggles and optimizes.
        self.__dict__["backbone"] = pretrained_efficientnet_lite("lite1")
        channels = [EFFICIENTNET_STAGES[stage][3] for stage in STAGES]
        for index, (inputs, width) in enumerate(zip(channels, PROJECTED_WIDTHS, strict=True)):
            self.register_buffer(f"mix_channels_{index}", _kaiming((width, inputs, 1, 1)))
            self.register_buffer(f"mix_scales_{index}", _kaiming((width, width, 3, 3)))
        for index, (width, coarser) in enumerate(zip(PROJECTED_WIDTHS, PROJECTED_WIDTHS[1:])):
            self.register_buffer(f"mix_down_{index}", _kaiming((width, coarser, 1, 1)))
        self.heads = nn.ModuleList(_head(width, ndf) for width in PROJECTED_WIDTHS)

    def _apply(self, fn, recurse: bool = True):
        self.backbone._apply(fn, recurse)
        return super()._apply(fn, recurse)

    def train(self, mode: bool = True) -> "ProjectedDiscriminator":
        super().train(mode)
        self.backbone.eval()  # its batch statistics are ImageNet's, frozen
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.input_nc == 1:
            images = images.expand(-1, 3, -1, -1)
        if self.lowpass is not None:
            images = _separable(images, self.lowpass)
        features = self.backbone.pyramid(imagenet_normalize(images), STAGES)
        projected = [F.conv2d(x, getattr(self, f"mix_channels_{i}")) for i, x in enumerate(features)]
        mixed, above = [], None
        for index in reversed(range(len(projected))):  # top-down: each scale gets the coarser ones
            x = projected[index]
            if above is not None:
                above = F.interpolate(above, size=x.shape[-2:], mode="bilinear", align_corners=False)
                x = x + F.conv2d(above, getattr(self, f"mix_down_{index}"))
            above = F.conv2d(x, getattr(self, f"mix_scales_{index}"), padding=1)
            mixed.append(above)
        mixed.reverse()
        finest = mixed[0].shape[-2:]
        logits = [F.interpolate(head(x), size=finest, mode="nearest") for head, x in zip(self.heads, mixed)]
        return torch.cat(logits, dim=1)


def _separable(images: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """`images` filtered by the 1-D `taps` (3, 1, 1, K) along x, then y, per channel, edges reflected."""
    half = taps.shape[-1] // 2
    x = F.conv2d(F.pad(images, (half, half, 0, 0), mode="reflect"), taps, groups=3)
    return F.conv2d(F.pad(x, (0, 0, half, half), mode="reflect"), taps.transpose(2, 3), groups=3)


def _kaiming(shape: tuple[int, ...]) -> torch.Tensor:
    """A fixed random projection, drawn from torch's generator like every other initial weight."""
    fan_in = shape[1] * shape[2] * shape[3]
    return torch.randn(shape) * (2 / fan_in) ** 0.5


def _head(width: int, ndf: int) -> nn.Sequential:
    """A light patch classifier with spectral norm (the heads are all that learns)."""
    return nn.Sequential(
        spectral_norm(nn.Conv2d(width, ndf, 3, padding=1)),
        nn.LeakyReLU(0.2, True),
        spectral_norm(nn.Conv2d(ndf, 1, 3, padding=1)),
    )


class PatchAndProjected(nn.Module):
    """A PatchGAN beside a projected discriminator: both verdicts, the PatchGAN's repeated to the
    projected grid, as channels of one map (so one GAN loss trains both)."""

    def __init__(self, patch: nn.Module, projected: ProjectedDiscriminator):
        super().__init__()
        self.patch, self.projected = patch, projected

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        projected = self.projected(images)
        patch = F.interpolate(self.patch(images), size=projected.shape[-2:], mode="nearest")
        return torch.cat([patch, projected], dim=1)
