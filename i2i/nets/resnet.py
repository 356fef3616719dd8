"""ResNet generators: the CycleGAN ResNet (6/9 blocks) and its depthwise-separable mobile variant.

Layer order and parameter names follow the CycleGAN/pix2pix repository (`model.N.*`,
`conv_block.N.*`) so that checkpoints trained there load unchanged, and so that CUT's
encoder-layer indices (0, 4, 8, 12, 16) address the same modules.
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import NormFactory


class ResnetBlock(nn.Module):
    """Two reflection-padded 3×3 convolutions with a residual connection."""

    def __init__(self, dim: int, norm: NormFactory, use_dropout: bool, use_bias: bool, separable: bool = False):
        super().__init__()
        conv = (lambda: SeparableConv2d(dim, dim, norm, use_bias)) if separable else (
            lambda: nn.Conv2d(dim, dim, kernel_size=3, bias=use_bias))
        layers: list[nn.Module] = [nn.ReflectionPad2d(1), conv(), norm(dim), nn.ReLU(True)]
        if use_dropout:
            layers.append(nn.Dropout(0.5))
        layers += [nn.ReflectionPad2d(1), conv(), norm(dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class SeparableConv2d(nn.Module):
    """Depthwise 3×3 → norm → pointwise 1×1, the building block of the mobile ResNet
    (GAN Compression, Li et al. 2020): about 8× fewer multiply-adds than a dense 3×3."""

    def __init__(self, in_channels: int, out_channels: int, norm: NormFactory, use_bias: bool):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, in_channels, kernel_size=3, groups=in_channels, bias=use_bias),
            norm(in_channels),
            nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=use_bias),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class ResnetGenerator(nn.Module):
    """c7s1-ngf, two stride-2 downsamplings, n residual blocks, two transposed-conv
    upsamplings, c7s1-output with tanh (Johnson et al. 2016, as used by CycleGAN)."""

    size_multiple = 4

    def __init__(
        self,
        input_nc: int,
        output_nc: int,
        ngf: int,
        norm: NormFactory,
        n_blocks: int = 9,
        use_dropout: bool = False,
        separable: bool = False,
    ):
        super().__init__()
        use_bias = norm.uses_bias
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(input_nc, ngf, kernel_size=7, bias=use_bias),
            norm(ngf),
            nn.ReLU(True),
        ]
        for i in range(2):
            mult = 2**i
            layers += [
                nn.Conv2d(ngf * mult, ngf * mult * 2, kernel_size=3, stride=2, padding=1, bias=use_bias),
                norm(ngf * mult * 2),
                nn.ReLU(True),
            ]
        layers += [ResnetBlock(ngf * 4, norm, use_dropout, use_bias, separable) for _ in range(n_blocks)]
        for i in range(2):
            mult = 2 ** (2 - i)
            layers += [
                nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, kernel_size=3, stride=2, padding=1,
                                   output_padding=1, bias=use_bias),
                norm(ngf * mult // 2),
                nn.ReLU(True),
            ]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, kernel_size=7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)
