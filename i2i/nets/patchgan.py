"""PatchGAN discriminator: a fully convolutional net whose outputs each judge one patch
(70×70 receptive field with the default 3 layers, Isola et al. 2017)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as with_spectral_norm

from .layers import NormFactory


class NLayerDiscriminator(nn.Module):
    """`spectral_norm` divides each convolution's weight by its largest singular value (one
    power iteration per training forward), as in Miyato et al. 2018."""

    def __init__(self, input_nc: int, ndf: int, n_layers: int, norm: NormFactory, spectral_norm: bool = False):
        super().__init__()
        use_bias = norm.uses_bias
        layers: list[nn.Module] = [
            nn.Conv2d(input_nc, ndf, kernel_size=4, stride=2, padding=1),
            nn.LeakyReLU(0.2, True),
        ]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [
                nn.Conv2d(ndf * prev, ndf * mult, kernel_size=4, stride=stride, padding=1, bias=use_bias),
                norm(ndf * mult),
                nn.LeakyReLU(0.2, True),
            ]
        layers.append(nn.Conv2d(ndf * mult, 1, kernel_size=4, stride=1, padding=1))
        if spectral_norm:
            layers = [with_spectral_norm(m) if isinstance(m, nn.Conv2d) else m for m in layers]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)
