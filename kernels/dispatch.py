"""Rewrite a generator's module tree to run on the fused Triton kernels.

Each run of [ReflectionPad2d] → Conv2d/ConvTranspose2d → [InstanceNorm2d] → [ReLU |
LeakyReLU | Tanh] becomes one FusedConv: the padding is folded into the conv's indexing,
the norm statistics come from the conv epilogue, and the activation (or, at the end of a
residual block, the skip addition) is applied while normalizing. Anything else (grouped
convs of the mobile ResNet, U-Net concatenations, dropout) stays a torch module, so every
generator family runs; the fused model shares the original's parameters.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from i2i.errors import ConfigError
from i2i.nets.resnet import ResnetBlock
from i2i.nets.unet import UnetSkipConnectionBlock

from .conv import conv2d
from .instance_norm import instance_norm


class FusedConv(nn.Module):
    """conv (+ fused padding) → optional instance norm → activation → optional residual add."""

    def __init__(self, conv: nn.Conv2d | nn.ConvTranspose2d, reflect_pad: int, norm: nn.InstanceNorm2d | None,
                 activation: str, negative_slope: float):
        super().__init__()
        self.conv = conv
        self.transposed = isinstance(conv, nn.ConvTranspose2d)
        self.padding = reflect_pad or conv.padding[0]
        self.pad_mode = "reflect" if reflect_pad else "zeros"
        self.norm = norm
        self.activation = activation
        self.negative_slope = negative_slope

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        conv = self.conv
        y, moments = conv2d(
            x, conv.weight, conv.bias, stride=conv.stride[0], padding=self.padding, pad_mode=self.pad_mode,
            transposed=self.transposed, output_padding=conv.output_padding[0] if self.transposed else 0,
            activation="none" if self.norm is not None else self.activation, negative_slope=self.negative_slope,
            with_moments=self.norm is not None,
        )
        if self.norm is None:
            return y if residual is None else y + residual
        return instance_norm(y, self.norm.weight, self.norm.bias, self.norm.eps, self.activation,
                             self.negative_slope, residual, partials=moments)

    def extra_repr(self) -> str:
        kind = "conv_transpose" if self.transposed else "conv"
        norm = "+instance_norm" if self.norm is not None else ""
        return f"{kind}(pad={self.padding} {self.pad_mode}){norm}+{self.activation}"


class FusedResnetBlock(nn.Module):
    """A ResnetBlock whose last conv adds the skip connection inside the norm kernel."""

    def __init__(self, body: nn.Sequential, last: FusedConv):
        super().__init__()
        self.body = body
        self.last = last

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.last(self.body(x), residual=x)


def _supported_conv(module: nn.Module) -> bool:
    return (isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)) and module.groups == 1
            and module.dilation == (1, 1) and module.padding_mode == "zeros"
            and module.stride[0] == module.stride[1] and module.padding[0] == module.padding[1]
            and module.kernel_size[0] == module.kernel_size[1])


def _fuse_layers(layers: list[nn.Module]) -> list[nn.Module]:
    fused: list[nn.Module] = []
    i = 0
    while i < len(layers):
        reflect = 0
        if (isinstance(layers[i], nn.ReflectionPad2d) and i + 1 < len(layers) and isinstance(layers[i + 1], nn.Conv2d)
                and _supported_conv(layers[i + 1]) and layers[i + 1].padding == (0, 0)
                and len(set(layers[i].padding)) == 1):
            reflect = layers[i].padding[0]
            i += 1
        if not _supported_conv(layers[i]):
            fused.append(fuse_module(layers[i]))
            i += 1
            continue
        conv = layers[i]
        i += 1
        norm = None
        if i < len(layers) and isinstance(layers[i], nn.InstanceNorm2d) and not layers[i].track_running_stats:
            norm = layers[i]
            i += 1
        activation, slope = "none", 0.2
        if i < len(layers) and isinstance(layers[i], nn.ReLU):
            activation = "relu"
        elif i < len(layers) and isinstance(layers[i], nn.LeakyReLU):
            activation, slope = "leaky_relu", layers[i].negative_slope
        elif i < len(layers) and isinstance(layers[i], nn.Tanh) and norm is None:
            activation = "tanh"
        i += activation != "none"
        fused.append(FusedConv(conv, reflect, norm, activation, slope))
    return fused


def fuse_module(module: nn.Module) -> nn.Module:
    """The fused equivalent of one module (recursing into containers it knows)."""
    if isinstance(module, ResnetBlock):
        layers = _fuse_layers(list(module.conv_block))
        last = layers[-1]
        if isinstance(last, FusedConv) and last.norm is not None and last.activation == "none":
            return FusedResnetBlock(nn.Sequential(*layers[:-1]), last)
        return module
    if isinstance(module, UnetSkipConnectionBlock):
        block = copy.copy(module)  # shallow: shares parameters, gets its own module dict
        block._modules = dict(module._modules)
        block.model = nn.Sequential(*_fuse_layers(list(module.model)))
        return block
    if isinstance(module, nn.Sequential):
        return nn.Sequential(*_fuse_layers(list(module)))
    if type(module).__module__.startswith("i2i.nets") and hasattr(module, "model"):
        wrapper = copy.copy(module)
        wrapper._modules = dict(module._modules)
        wrapper.model = fuse_module(module.model)
        return wrapper
    return module


def _has_fused_layers(net: nn.Module) -> bool:
    return any(isinstance(m, FusedConv) for m in net.modules())


def can_fuse(net: nn.Module) -> bool:
    """Whether fuse_generator rewrites any layer of `net` onto the kernels."""
    return _has_fused_layers(fuse_module(net))


def fuse_generator(net: nn.Module) -> nn.Module:
    """A copy-free rewrite of `net` (ResNet, mobile ResNet or U-Net generator, in eval mode)
    that runs on the Triton kernels. Only for inference: the kernels have no backward."""
    if net.training:
        raise ValueError("fuse_generator is for inference; call net.eval() first")
    fused = fuse_module(net)
    if not _has_fused_layers(fused):
        raise ConfigError(f"the triton backend rewrites resnet_*/unet_* generators, not {type(net).__name__}; "
                          "use --backend torch or an exported .onnx")
    return fused
