"""ResNet generators: the CycleGAN ResNet (6/9 blocks) and its depthwise-separable mobile variant.

Layer order and parameter names follow the CycleGAN/pix2pix repository (`model.N.*`,
`conv_block.N.*`) so that checkpoints trained there load unchanged, and so that CUT's
encoder-layer indices (0, 4, 8, 12, 16) address the same modules.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .layers import NormFactory
from .warp import AffineWarp, flow_resample


class ResnetBlock(nn.Module):
    """Two reflection-padded 3×3 convolutions with a residual connection."""

    def __init__(self, dim: int, norm: NormFactory, use_dropout: bool, use_bias: bool, separable: bool = False):
        super().__init__()
        conv = (
            (lambda: SeparableConv2d(dim, dim, norm, use_bias))
            if separable
            else (lambda: nn.Conv2d(dim, dim, kernel_size=3, bias=use_bias))
        )
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


def _binomial_filter(size: int) -> torch.Tensor:
    row = torch.tensor([1.0, 2.0, 1.0]) if size == 3 else torch.tensor([1.0, 3.0, 3.0, 1.0])
    kernel = row[:, None] * row[None, :]
    return kernel / kernel.sum()


class BlurDownsample(nn.Module):
    """Anti-aliased stride-2 downsampling (Zhang 2019, as in CUT): reflect-pad by 1, then a
    depthwise 3×3 binomial blur with stride 2. `filt` is a buffer, as in CUT's checkpoints."""

    def __init__(self, channels: int):
        super().__init__()
        self.register_buffer("filt", _binomial_filter(3)[None, None].repeat(channels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), self.filt, stride=2, groups=x.shape[1])


class BlurUpsample(nn.Module):
    """Anti-aliased ×2 upsampling (CUT): replicate-pad by 1, depthwise transposed conv with a
    4×4 binomial kernel (×4 to keep the mean), cropped back to exactly twice the size."""

    def __init__(self, channels: int):
        super().__init__()
        self.register_buffer("filt", (_binomial_filter(4) * 4)[None, None].repeat(channels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.conv_transpose2d(
            F.pad(x, (1, 1, 1, 1), mode="replicate"), self.filt, stride=2, padding=2, groups=x.shape[1]
        )
        return y[:, :, 1:-1, 1:-1]


class ResnetGenerator(nn.Module):
    """c7s1-ngf, two stride-2 downsamplings, n residual blocks, two ×2
    upsamplings, c7s1-output with tanh (Johnson et al. 2016, as used by CycleGAN).

    `antialias` gives CUT's stride-1 conv + blur-downsample. `upsample` "blur" gives CUT's
    blur-upsample + stride-1 conv instead of the transposed conv, "nearest" / "bilinear" a
    resize + stride-1 conv (Odena et al. 2016): every output pixel then gets the same number of
    kernel taps, so no checkerboard is built in. `residual` makes the network
    predict a change to its input, clamp(x + tanh(...), -1, 1), with the last conv zeroed so
    that it starts as the identity (see GeneratorConfig.residual); a pixel can move by less than
    half the value range, which suits style, palette and texture, not night-to-day tone changes.
    `affine_warp` puts a learned global affine warp in front; `flow_warp` > 0 makes a residual
    generator's head also predict a displacement per pixel of at most that many pixels, through
    which the input is resampled before the change is added (see warp.py)."""

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
        antialias: bool = False,
        upsample: str = "transpose",
        residual: bool = False,
        affine_warp: bool = False,
        flow_warp: int = 0,
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
            channels = ngf * 2 ** (i + 1)
            layers += [
                nn.Conv2d(
                    channels // 2, channels, kernel_size=3, stride=1 if antialias else 2, padding=1, bias=use_bias
                ),
                norm(channels),
                nn.ReLU(True),
            ]
            if antialias:
                layers.append(BlurDownsample(channels))
        layers += [ResnetBlock(ngf * 4, norm, use_dropout, use_bias, separable) for _ in range(n_blocks)]
        for i in range(2):
            channels = ngf * 2 ** (2 - i)
            if upsample == "transpose":
                layers.append(
                    nn.ConvTranspose2d(
                        channels, channels // 2, kernel_size=3, stride=2, padding=1, output_padding=1, bias=use_bias
                    )
                )
            elif upsample == "blur":
                layers += [
                    BlurUpsample(channels),
                    nn.Conv2d(channels, channels // 2, kernel_size=3, stride=1, padding=1, bias=use_bias),
                ]
            else:  # reflect-padded, like the other stride-1 convs: zero padding draws a frame line
                layers += [
                    nn.Upsample(scale_factor=2, mode=upsample),
                    nn.ReflectionPad2d(1),
                    nn.Conv2d(channels, channels // 2, kernel_size=3, bias=use_bias),
                ]
            layers += [norm(channels // 2), nn.ReLU(True)]
        # With a flow warp the head draws two more planes: the displacement's x and y.
        head_channels = output_nc + (2 if flow_warp else 0)
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, head_channels, kernel_size=7), nn.Tanh()]
        self.model = nn.Sequential(*layers)
        self.residual, self.output_nc, self.flow_warp = residual, output_nc, flow_warp
        self.warp = AffineWarp(input_nc) if affine_warp else None
        if residual and input_nc < output_nc:
            raise ValueError(
                f"a residual generator adds its input to its output: {input_nc} input channels cannot give {output_nc}"
            )
        if flow_warp and not residual:
            raise ValueError("a flow warp resamples the input a residual generator adds its change to")

    def reset_parameters_after_init(self) -> None:
        """Zero the residual head after a generic initialisation: the identity is the start."""
        if self.residual:
            head = self.model[-2]
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.warp is not None:
            x = self.warp(x)
        out = self.model(x)
        if not self.residual:
            return out
        # Class-conditional generators get condition planes after the image: add the image.
        image, change = x[:, : self.output_nc], out[:, : self.output_nc]
        if self.flow_warp:
            image = flow_resample(image, out[:, self.output_nc :], self.flow_warp)
        return (image + change).clamp(-1, 1)
