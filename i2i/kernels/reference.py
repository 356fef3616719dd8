"""Plain torch versions of every fused kernel: the definition the Triton kernels must match.

They compose the unfused ops exactly as the generators do, so comparing a kernel with its
reference in float64 checks the fusion, not a re-derivation of it.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

ACTIVATIONS = ("none", "relu", "leaky_relu", "tanh")


def instance_norm_reference(
    x: torch.Tensor,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    eps: float = 1e-5,
    activation: str = "none",
    negative_slope: float = 0.2,
    residual: torch.Tensor | None = None,
) -> torch.Tensor:
    """InstanceNorm2d (biased variance, as torch) → optional affine → activation → + residual."""
    y = F.instance_norm(x, weight=weight, bias=bias, eps=eps)
    y = apply_activation(y, activation, negative_slope)
    return y if residual is None else y + residual


def apply_activation(y: torch.Tensor, activation: str, negative_slope: float = 0.2) -> torch.Tensor:
    if activation == "relu":
        return F.relu(y)
    if activation == "leaky_relu":
        return F.leaky_relu(y, negative_slope)
    if activation == "tanh":
        return torch.tanh(y)
    return y


def conv2d_reference(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    stride: int = 1,
    padding: int = 0,
    pad_mode: str = "zeros",
) -> torch.Tensor:
    """Padding (zeros or reflect) followed by an unpadded convolution, as ReflectionPad2d + Conv2d."""
    if pad_mode == "reflect" and padding:
        return F.conv2d(F.pad(x, (padding,) * 4, mode="reflect"), weight, bias, stride=stride)
    return F.conv2d(x, weight, bias, stride=stride, padding=padding)


def conv_transpose2d_reference(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride: int, padding: int, output_padding: int
) -> torch.Tensor:
    return F.conv_transpose2d(x, weight, bias, stride=stride, padding=padding, output_padding=output_padding)
