"""Direct convolution with fused padding and epilogues against torch in float64."""

import pytest
import torch

from i2i.kernels.conv import conv2d, launch_tiles
from i2i.kernels.instance_norm import instance_norm
from i2i.kernels.reference import (
    apply_activation,
    conv2d_reference,
    conv_transpose2d_reference,
    instance_norm_reference,
)

TOLERANCE = {torch.float32: 1e-4, torch.float16: 3e-3, torch.bfloat16: 3e-2}


def tensors(shape, c_out, kernel, transposed=False, dtype=torch.float32, channels_last=False, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=generator).to(dtype)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    weight_shape = (shape[1], c_out, kernel, kernel) if transposed else (c_out, shape[1], kernel, kernel)
    weight = (torch.randn(weight_shape, generator=generator) / (shape[1] * kernel) ** 0.5).to(dtype)
    return x, weight, torch.randn(c_out, generator=generator).to(dtype)


def assert_close(actual, expected, dtype):
    assert actual.shape == expected.shape
    error = (actual.double() - expected).abs().max().item()
    assert error <= TOLERANCE[dtype] * max(1.0, expected.abs().max().item()), error


@pytest.mark.parametrize(
    "shape, c_out, kernel, stride, padding, pad_mode",
    [
        ((2, 3, 11, 13), 5, 7, 1, 3, "reflect"),  # generator stem
        ((1, 6, 9, 10), 7, 3, 2, 1, "zeros"),  # downsampling
        ((1, 20, 7, 6), 19, 3, 1, 1, "reflect"),  # residual block
        ((1, 3, 16, 18), 6, 4, 2, 1, "zeros"),  # U-Net / PatchGAN 4×4
        ((2, 4, 9, 9), 3, 7, 1, 3, "zeros"),
    ],
)
@pytest.mark.parametrize("channels_last", [False, True])
def test_conv_matches_torch(shape, c_out, kernel, stride, padding, pad_mode, channels_last):
    x, weight, bias = tensors(shape, c_out, kernel, channels_last=channels_last)
    y, moments = conv2d(x, weight, bias, stride, padding, pad_mode)
    assert moments is None
    assert_close(
        y, conv2d_reference(x.double(), weight.double(), bias.double(), stride, padding, pad_mode), torch.float32
    )


@pytest.mark.parametrize("shape, kernel, padding, output_padding", [((2, 5, 6, 7), 3, 1, 1), ((1, 4, 5, 8), 4, 1, 0)])
def test_transposed_conv_matches_torch(shape, kernel, padding, output_padding):
    x, weight, bias = tensors(shape, 4, kernel, transposed=True)
    y, _ = conv2d(x, weight, bias, 2, padding, transposed=True, output_padding=output_padding)
    expected = conv_transpose2d_reference(x.double(), weight.double(), bias.double(), 2, padding, output_padding)
    assert_close(y, expected, torch.float32)


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "tanh"])
def test_activation_epilogue(activation):
    x, weight, bias = tensors((1, 8, 9, 7), 3, 7, seed=1)
    y, _ = conv2d(x, weight * 4, bias, 1, 3, "reflect", activation=activation)
    expected = conv2d_reference(x.double(), weight.double() * 4, bias.double(), 1, 3, "reflect")
    expected = apply_activation(expected, activation)
    assert_close(y, expected, torch.float32)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision(dtype):
    x, weight, bias = tensors((1, 17, 8, 9), 18, 3, dtype=dtype, channels_last=True)
    y, _ = conv2d(x, weight, bias, 1, 1, "reflect")
    assert y.dtype == dtype
    assert_close(y, conv2d_reference(x.double(), weight.double(), bias.double(), 1, 1, "reflect"), dtype)


@pytest.mark.parametrize("tile", launch_tiles(torch.float16), ids=lambda tile: tile.name)
def test_every_launchable_tile_computes_the_same_conv(tile):
    x, weight, bias = tensors((1, 20, 9, 7), 24, 3, dtype=torch.float16, channels_last=True, seed=4)
    y, moments = conv2d(x, weight, bias, 2, 1, "zeros", with_moments=True, tile=tile)
    expected = conv2d_reference(x.double(), weight.double(), bias.double(), 2, 1, "zeros")
    assert_close(y, expected, torch.float16)
    assert_close(instance_norm(y.float(), partials=moments), instance_norm_reference(expected), torch.float16)


@pytest.mark.parametrize("shape", [(2, 6, 9, 10), (1, 3, 80, 90)])  # the second has > 64 tiles: merged first
def test_moments_from_the_epilogue_feed_instance_norm(shape):
    x, weight, bias = tensors(shape, 5, 3, seed=2)
    y, moments = conv2d(x, weight, bias, 1, 1, "reflect", with_moments=True)
    skip = torch.randn(y.shape)
    z = instance_norm(y, activation="none", residual=skip, partials=moments)
    conv = conv2d_reference(x.double(), weight.double(), bias.double(), 1, 1, "reflect")
    assert_close(z, instance_norm_reference(conv, residual=skip.double()), torch.float32)


def test_argument_errors():
    x, weight, bias = tensors((1, 4, 3, 3), 2, 3)
    with pytest.raises(ValueError, match="reflection padding 3"):
        conv2d(x, weight, bias, padding=3, pad_mode="reflect")
    with pytest.raises(ValueError, match="grouped conv"):
        conv2d(x, weight[:, :2], bias)
