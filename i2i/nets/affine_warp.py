"""A learned global affine warp (spatial transformer, Jaderberg et al. 2015) put in front of a
generator, for domains that differ in where and how large things are.

Convolutional generators translate appearance locally; moving or rescaling the whole content
(MNIST's small centred digits vs USPS's frame-filling ones) is a global change they learn
slowly if at all. A small localisation network predicts six affine parameters per image and
the input is resampled before the generator sees it. The last layer starts at zero with the
identity as its bias, so the warp starts as the identity; a global rescaling is then a change
of six biases, which the adversarial loss finds quickly.

The sampling grid is built from `arange` over the input's own height and width (instead of
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
    # Pixel centres in [-1, 1] (align_corners=False), as F.affine_grid places them.
    ys = (torch.arange(height, device=x.device, dtype=x.dtype) * 2 + 1) / height - 1
    xs = (torch.arange(width, device=x.device, dtype=x.dtype) * 2 + 1) / width - 1
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    base = torch.stack([grid_x, grid_y, torch.ones_like(grid_x)], dim=-1).reshape(1, -1, 3)
    grid = (base @ theta.transpose(1, 2)).reshape(x.shape[0], height, width, 2)
    # border padding: content moved in from outside the frame repeats the edge (background),
    # where zeros would paint mid-grey in the [-1, 1] range.
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
