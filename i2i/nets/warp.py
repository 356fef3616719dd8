"""Learned warps of a generator's input, for domains that differ in where things are and how
large or thick they are, which convolutions that translate appearance in place learn slowly if
at all.

`AffineWarp` (spatial transformer, Jaderberg et al. 2015) puts one global affine warp in front of
the generator: moving or rescaling the whole content (MNIST's small centred digits vs USPS's
frame-filling ones). A small localisation network predicts six affine parameters per image; its
last layer starts at zero with the identity as its bias, so the warp starts as the identity and a
global rescaling is a change of six biases, which the adversarial loss finds quickly.

`flow_resample` is the local counterpart a residual generator uses (G.flow_warp): two more output
channels of its head are a displacement per pixel, of at most a set number of pixels, and the
input is resampled through it before the predicted change is added — an object can grow, shrink,
thicken or move while the pixels around it stay where they are. The head starts at zero, so the
displacement starts at zero.

Sampling grids are built from `arange` over the input's own height and width (instead of
`F.affine_grid`) so that the ONNX export keeps dynamic shapes with opset-16 GridSample.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


class AffineWarp(nn.Module):
    def __init__(self, channels: int, width: int = 16):
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(3):
            layers += [
                nn.Conv2d(channels if i == 0 else width * 2 ** (i - 1), width * 2**i, 3, stride=2, padding=1),
                nn.ReLU(True),
            ]
        self.localise = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.theta = nn.Linear(width * 4, 6)
        self.reset_parameters_after_init()

    def reset_parameters_after_init(self) -> None:
        """The identity warp, whatever generic initialisation ran before."""
        nn.init.zeros_(self.theta.weight)
        with torch.no_grad():
            self.theta.bias.copy_(torch.tensor(IDENTITY))

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        """The (N, 2, 3) affine matrices, mapping output to input coordinates in [-1, 1]."""
        return self.theta(self.localise(x)).view(-1, 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return affine_resample(x, self.transform(x))


def affine_resample(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """`x` (N, C, H, W) resampled through the (N, 2, 3) affine matrices `theta`, which map
    output to input coordinates in [-1, 1], as F.affine_grid + F.grid_sample would."""
    height, width = x.shape[-2:]
    grid_x, grid_y = pixel_centres(x)
    base = torch.stack([grid_x, grid_y, torch.ones_like(grid_x)], dim=-1).reshape(1, -1, 3)
    grid = (base @ theta.transpose(1, 2)).reshape(x.shape[0], height, width, 2)
    return _resample(x, grid)


def flow_resample(x: torch.Tensor, flow: torch.Tensor, max_shift: float) -> torch.Tensor:
    """`x` (N, C, H, W) resampled through the displacement `flow` (N, 2, H, W; x then y, in
    [-1, 1] for ±`max_shift` pixels): output pixel (i, j) reads input position
    (i + max_shift · flow_y, j + max_shift · flow_x), bilinearly."""
    height, width = x.shape[-2:]
    grid_x, grid_y = pixel_centres(x)
    # One pixel is 2 / size in grid units.
    grid = torch.stack(
        [grid_x + flow[:, 0] * (2 * max_shift / width), grid_y + flow[:, 1] * (2 * max_shift / height)], dim=-1
    )
    return _resample(x, grid)


def pixel_centres(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The x and y grid coordinates (H, W) of `x`'s pixel centres in [-1, 1] (align_corners=False),
    as F.affine_grid places them."""
    height, width = x.shape[-2:]
    ys = (torch.arange(height, device=x.device, dtype=x.dtype) * 2 + 1) / height - 1
    xs = (torch.arange(width, device=x.device, dtype=x.dtype) * 2 + 1) / width - 1
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return grid_x, grid_y


def _resample(x: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    # border padding: content moved in from outside the frame repeats the edge (background),
    # where zeros would paint mid-grey in the [-1, 1] range.
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
