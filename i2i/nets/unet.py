"""U-Net generator built recursively from skip-connection blocks, as in pix2pix/CycleGAN.

`unet_128` has 7 downsamplings and `unet_256` 8, so inputs must be multiples of 128 / 256
(the innermost feature map is 1×1 at those sizes).
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import NormFactory


class UnetSkipConnectionBlock(nn.Module):
    """down → [submodule] → up, concatenated with its input unless it is the outermost block."""

    def __init__(
        self,
        outer_nc: int,
        inner_nc: int,
        norm: NormFactory,
        input_nc: int | None = None,
        submodule: nn.Module | None = None,
        outermost: bool = False,
        innermost: bool = False,
        use_dropout: bool = False,
    ):
        super().__init__()
        self.outermost = outermost
        use_bias = norm.uses_bias
        input_nc = outer_nc if input_nc is None else input_nc
        downconv = nn.Conv2d(input_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
        downrelu = nn.LeakyReLU(0.2, True)
        uprelu = nn.ReLU(True)
        if outermost:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1)
            layers = [downconv, submodule, uprelu, upconv, nn.Tanh()]
        elif innermost:
            upconv = nn.ConvTranspose2d(inner_nc, outer_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
            layers = [downrelu, downconv, uprelu, upconv, norm(outer_nc)]
        else:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
            layers = [downrelu, downconv, norm(inner_nc), submodule, uprelu, upconv, norm(outer_nc)]
            if use_dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    def __init__(
        self, input_nc: int, output_nc: int, num_downs: int, ngf: int, norm: NormFactory, use_dropout: bool = False
    ):
        super().__init__()
        self.size_multiple = 2**num_downs
        block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, norm, innermost=True)
        for _ in range(num_downs - 5):
            block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, norm, submodule=block, use_dropout=use_dropout)
        block = UnetSkipConnectionBlock(ngf * 4, ngf * 8, norm, submodule=block)
        block = UnetSkipConnectionBlock(ngf * 2, ngf * 4, norm, submodule=block)
        block = UnetSkipConnectionBlock(ngf, ngf * 2, norm, submodule=block)
        self.model = UnetSkipConnectionBlock(output_nc, ngf, norm, input_nc=input_nc, submodule=block, outermost=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class ResidualFramePredictor(UnetGenerator):
    """Frame t from frames t−2, t−1 stacked on channels: frame t−1 plus the U-Net's correction.
    The same parameters as the U-Net, so its checkpoints keep their keys."""

    def reset_parameters_after_init(self) -> None:
        """A zero correction to start from: the forecast begins as frame t−1 held, not as frame
        t−1 plus the noise of a randomly initialised last layer (tens of grey levels)."""
        last = self.model.model[-2]  # the outermost up-convolution, before the tanh
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        previous = x[:, x.shape[1] // 2 :]
        return previous + self.model(x)
