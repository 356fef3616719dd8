"""Rewrite a generator's module tree to run on the fused Triton kernels.

Each run of [ReflectionPad2d] → Conv2d/ConvTranspose2d → [InstanceNorm2d] → [ReLU |
LeakyReLU | Tanh] becomes one FusedConv: the padding is folded into the conv's indexing,
the norm statistics come from the conv epilogue, and the activation (or, at the end of a
residual block, the skip addition) is applied while normalizing. Anything else (grouped
convs of the mobile ResNet, U-Net concatenations, dropout) stays a torch module, so every
generator family runs; the fused model shares the original's parameters.

On a CUDA GPU each FusedConv asks a LayerTuner (kernels/tuning.py) which implementation to run
for its input shape: the Triton conv with one of its tiles, or cuDNN's conv followed by the
fused Triton instance norm, whichever measured faster there.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn import functional as F

from i2i.errors import ConfigError
from i2i.nets.resnet import ResnetBlock
from i2i.nets.unet import UnetSkipConnectionBlock

from .conv import ConvTile, candidate_tiles, conv2d
from .instance_norm import instance_norm
from .reference import apply_activation
from .tuning import CUDNN, LayerTuner


class FusedConv(nn.Module):
    """conv (+ fused padding) → optional instance norm → activation → optional residual add."""

    def __init__(
        self,
        conv: nn.Conv2d | nn.ConvTranspose2d,
        reflect_pad: int,
        norm: nn.InstanceNorm2d | None,
        activation: str,
        negative_slope: float,
        tuner: LayerTuner | None = None,
    ):
        super().__init__()
        self.conv = conv
        self.transposed = isinstance(conv, nn.ConvTranspose2d)
        self.padding = reflect_pad or conv.padding[0]
        self.pad_mode = "reflect" if reflect_pad else "zeros"
        self.norm = norm
        self.activation = activation
        self.negative_slope = negative_slope
        self.tuner = tuner
        self._choices: dict[tuple, str] = {}  # input signature → candidate name, so keys are built once

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        if self.tuner is None:
            return self.run_triton(x, residual)
        signature = (x.shape, x.dtype, x.stride(), residual is None)
        name = self._choices.get(signature)
        if name is None:
            candidates = self.candidates(x, residual)
            name = self._choices[signature] = self.tuner.choose(self.layer_key(x, residual), candidates)
        return self.run_torch_conv(x, residual) if name == CUDNN else self.run_triton(x, residual, self._tiles(x)[name])

    def _tiles(self, x: torch.Tensor) -> dict[str, ConvTile]:
        c_in, c_out = (self.conv.in_channels, self.conv.out_channels)
        return {tile.name: tile for tile in candidate_tiles(x.dtype, c_in, c_out)}

    def candidates(self, x: torch.Tensor, residual: torch.Tensor | None) -> dict:
        """Name → zero-argument run of every implementation of this layer on `x`, default first."""
        runs = {name: (lambda tile=tile: self.run_triton(x, residual, tile)) for name, tile in self._tiles(x).items()}
        runs[CUDNN] = lambda: self.run_torch_conv(x, residual)
        return runs

    def layer_key(self, x: torch.Tensor, residual: torch.Tensor | None) -> str:
        """What the speed of this layer depends on: dtype, layout, shapes, conv and epilogue."""
        conv = self.conv
        layout = "channels_last" if x.is_contiguous(memory_format=torch.channels_last) and x.shape[1] > 1 else "nchw"
        kind = f"convT op{conv.output_padding[0]}" if self.transposed else f"conv {self.pad_mode}"
        return (
            f"{str(x.dtype).removeprefix('torch.')} {layout} {'x'.join(map(str, x.shape))}->{conv.out_channels} "
            f"{kind} k{conv.kernel_size[0]} s{conv.stride[0]} p{self.padding} norm={self.norm is not None} "
            f"act={self.activation} residual={residual is not None}"
        )

    def run_triton(self, x: torch.Tensor, residual: torch.Tensor | None = None, tile: ConvTile | None = None):
        conv = self.conv
        y, moments = conv2d(
            x,
            conv.weight,
            conv.bias,
            stride=conv.stride[0],
            padding=self.padding,
            pad_mode=self.pad_mode,
            transposed=self.transposed,
            output_padding=conv.output_padding[0] if self.transposed else 0,
            activation="none" if self.norm is not None else self.activation,
            negative_slope=self.negative_slope,
            with_moments=self.norm is not None,
            tile=tile,
        )
        if self.norm is None:
            return y if residual is None else y + residual
        return instance_norm(
            y,
            self.norm.weight,
            self.norm.bias,
            self.norm.eps,
            self.activation,
            self.negative_slope,
            residual,
            partials=moments,
        )

    def run_torch_conv(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        """torch's conv (cuDNN on CUDA), then the fused Triton instance norm + activation + residual."""
        conv = self.conv
        if self.transposed:
            y = F.conv_transpose2d(x, conv.weight, conv.bias, conv.stride, conv.padding, conv.output_padding)
        elif self.pad_mode == "reflect":
            y = F.conv2d(F.pad(x, (self.padding,) * 4, mode="reflect"), conv.weight, conv.bias, conv.stride)
        else:
            y = F.conv2d(x, conv.weight, conv.bias, conv.stride, self.padding)
        if self.norm is not None:
            return instance_norm(
                y, self.norm.weight, self.norm.bias, self.norm.eps, self.activation, self.negative_slope, residual
            )
        y = apply_activation(y, self.activation, self.negative_slope)
        return y if residual is None else y + residual

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
    return (
        isinstance(module, (nn.Conv2d, nn.ConvTranspose2d))
        and module.groups == 1
        and module.dilation == (1, 1)
        and module.padding_mode == "zeros"
        and module.stride[0] == module.stride[1]
        and module.padding[0] == module.padding[1]
        and module.kernel_size[0] == module.kernel_size[1]
    )


def _fuse_layers(layers: list[nn.Module], tuner: LayerTuner | None) -> list[nn.Module]:
    fused: list[nn.Module] = []
    i = 0
    while i < len(layers):
        reflect = 0
        if (
            isinstance(layers[i], nn.ReflectionPad2d)
            and i + 1 < len(layers)
            and isinstance(layers[i + 1], nn.Conv2d)
            and _supported_conv(layers[i + 1])
            and layers[i + 1].padding == (0, 0)
            and len(set(layers[i].padding)) == 1
        ):
            reflect = layers[i].padding[0]
            i += 1
        if not _supported_conv(layers[i]):
            fused.append(fuse_module(layers[i], tuner))
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
        fused.append(FusedConv(conv, reflect, norm, activation, slope, tuner))
    return fused


def fuse_module(module: nn.Module, tuner: LayerTuner | None = None) -> nn.Module:
    """The fused equivalent of one module (recursing into containers it knows)."""
    if isinstance(module, ResnetBlock):
        layers = _fuse_layers(list(module.conv_block), tuner)
        last = layers[-1]
        if isinstance(last, FusedConv) and last.norm is not None and last.activation == "none":
            return FusedResnetBlock(nn.Sequential(*layers[:-1]), last)
        return module
    if isinstance(module, UnetSkipConnectionBlock):
        block = copy.copy(module)  # shallow: shares parameters, gets its own module dict
        block._modules = dict(module._modules)
        block.model = nn.Sequential(*_fuse_layers(list(module.model), tuner))
        return block
    if isinstance(module, nn.Sequential):
        return nn.Sequential(*_fuse_layers(list(module), tuner))
    if type(module).__module__.startswith("i2i.nets") and hasattr(module, "model"):
        wrapper = copy.copy(module)
        wrapper._modules = dict(module._modules)
        wrapper.model = fuse_module(module.model, tuner)
        return wrapper
    return module


def _has_fused_layers(net: nn.Module) -> bool:
    return any(isinstance(m, FusedConv) for m in net.modules())


def can_fuse(net: nn.Module) -> bool:
    """Whether fuse_generator rewrites any layer of `net` onto the kernels."""
    return _has_fused_layers(fuse_module(net))


def fuse_generator(net: nn.Module, tuner: LayerTuner | None = None) -> nn.Module:
    """A copy-free rewrite of `net` (ResNet, mobile ResNet or U-Net generator, in eval mode)
    that runs on the Triton kernels. Only for inference: the kernels have no backward.
    `tuner` chooses each layer's implementation; by default the cache of the GPU that holds
    `net` (none on the CPU: default tiles, Triton conv everywhere)."""
    if net.training:
        raise ValueError("fuse_generator is for inference; call net.eval() first")
    if tuner is None:
        tuner = LayerTuner.for_device(next(net.parameters()).device)
    fused = fuse_module(net, tuner)
    if not _has_fused_layers(fused):
        raise ConfigError(
            f"the triton backend rewrites resnet_*/unet_* generators, not {type(net).__name__}; "
            "use --backend torch or an exported .onnx"
        )
    return fused
