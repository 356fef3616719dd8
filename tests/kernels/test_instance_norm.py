"""Fused instance norm against the torch reference in float64 (Triton interpreter on CPU)."""

import pytest
import torch

from i2i.kernels.instance_norm import MAX_SPLITS, NormTile, instance_norm, plan
from i2i.kernels.reference import instance_norm_reference

TOLERANCE = {torch.float32: 2e-5, torch.float16: 4e-3, torch.bfloat16: 3e-2}


def check(
    shape,
    dtype=torch.float32,
    channels_last=False,
    activation="none",
    affine=False,
    residual=False,
    offset=0.0,
    scale=1.0,
    seed=0,
    tile=None,
):
    generator = torch.Generator().manual_seed(seed)
    x = (torch.randn(shape, generator=generator) * scale + offset).to(dtype)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    weight = torch.randn(shape[1], generator=generator) if affine else None
    bias = torch.randn(shape[1], generator=generator) if affine else None
    skip = torch.randn(shape, generator=generator).to(dtype) if residual else None
    y = instance_norm(x, weight, bias, activation=activation, residual=skip, tile=tile)
    expected = instance_norm_reference(
        x.double(),
        None if weight is None else weight.double(),
        None if bias is None else bias.double(),
        activation=activation,
        residual=None if skip is None else skip.double(),
    )
    assert y.dtype == dtype and y.shape == x.shape
    assert y.is_contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    error = (y.double() - expected).abs().max().item()
    assert error <= TOLERANCE[dtype] * max(1.0, expected.abs().max().item()), error


@pytest.mark.parametrize("shape", [(1, 1, 1, 7), (2, 3, 7, 9), (3, 5, 13, 1), (1, 37, 11, 10)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_shapes_and_layouts(shape, channels_last):
    check(shape, channels_last=channels_last)


@pytest.mark.parametrize("activation", ["none", "relu", "leaky_relu"])
@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("residual", [False, True])
def test_epilogues(activation, affine, residual):
    check((2, 6, 5, 9), activation=activation, affine=affine, residual=residual, seed=3)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_storage_accumulates_in_fp32(dtype):
    check((2, 20, 9, 11), dtype=dtype, channels_last=True, activation="relu", residual=True)


@pytest.mark.parametrize("tile", [NormTile(32, 16, 2), NormTile(128, 8, 4)])
def test_other_tiles_are_exact_too(tile):
    """What gpu-check's bandwidth sweep launches: a channel block past C, pixels past a chunk."""
    assert plan(torch.empty(1, 40, 9, 11).to(memory_format=torch.channels_last), tile)["tile"] == tile
    check((2, 40, 9, 11), dtype=torch.float16, channels_last=True, activation="relu", residual=True, tile=tile)


def test_large_offset_has_no_cancellation():
    # E[x²] − E[x]² in fp32 loses every digit here (x ≈ 1e4, σ = 0.1: it gives variances of
    # 8 and 16 instead of 0.01). Moments of x − x[0], merged with Chan's formula, keep them,
    # and normalizing (x − x[0]) − mean keeps the low digits that torch's fp32 (x − mean)
    # loses to the rounding of a mean near 1e4 (half an ulp, 5e-4, is 5e-3 after dividing by σ).
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(1, 2, 37, 41, generator=generator) * 0.1 + 1e4
    assert plan(x)["n_splits"] > 1  # partials from several programs are merged
    error = (instance_norm(x).double() - instance_norm_reference(x.double())).abs().max().item()
    torch_error = (instance_norm_reference(x).double() - instance_norm_reference(x.double())).abs().max().item()
    assert error <= TOLERANCE[torch.float32] and torch_error > 1e-3, (error, torch_error)


def test_large_planes_are_split_across_programs():
    """Partials the apply pass merges itself (up to MAX_SPLITS), and more, merged by a kernel first."""
    assert 1 < plan(torch.empty(1, 2, 100, 101))["n_splits"] <= MAX_SPLITS
    assert plan(torch.empty(1, 2, 300, 301))["n_splits"] > MAX_SPLITS
    check((1, 2, 100, 101), activation="relu", offset=3.0)
    check((1, 2, 300, 301), activation="relu", offset=3.0)


def test_argument_errors():
    with pytest.raises(ValueError, match="NCHW"):
        instance_norm(torch.zeros(3, 4, 5))
    with pytest.raises(ValueError, match="both weight and bias"):
        instance_norm(torch.zeros(1, 2, 3, 3), weight=torch.ones(2))
    with pytest.raises(ValueError, match="unsupported strides"):
        instance_norm(torch.zeros(1, 2, 6, 6)[:, :, :3, :3])
