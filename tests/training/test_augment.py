"""DiffAugment: each transform does what it says, draws from (seed, step, salt), and lets
gradients through to the generator."""

import numpy as np
import pytest
import torch

from i2i.errors import ConfigError
from i2i.training.augment import DiffAugment

from ..conftest import tiny_config


def textured(batch: int = 3, size: int = 32) -> torch.Tensor:
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(1)) * 1.6 - 0.8


def test_no_policy_leaves_images_alone():
    images = textured()
    assert DiffAugment("", 0)(images, 5, 0) is images


def test_translation_is_an_integer_shift_within_an_eighth_with_zero_fill():
    images, size = textured(), 32
    shifted = DiffAugment("translation", 0)(images, 7, 0)
    limit = size // 8
    for original, moved in zip(images, shifted):
        matches = []
        for dy in range(-limit, limit + 1):
            for dx in range(-limit, limit + 1):
                expected = torch.zeros_like(original)
                ys, xs = slice(max(0, dy), size + min(0, dy)), slice(max(0, dx), size + min(0, dx))
                expected[:, ys, xs] = original[:, max(0, -dy) : size - max(0, dy), max(0, -dx) : size - max(0, dx)]
                if torch.equal(moved, expected):
                    matches.append((dy, dx))
        assert len(matches) == 1
    # Each image draws its own shift: not all three the same.
    assert not (torch.equal(shifted[0], shifted[1]) and torch.equal(shifted[1], shifted[2]))


def test_cutout_zeroes_one_square_of_at_most_half_the_side_and_keeps_the_rest():
    images = textured()
    cut = DiffAugment("cutout", 0)(images, 3, 1)
    for original, out in zip(images, cut):
        zeroed = (out == 0).all(dim=0)
        assert torch.equal(out[:, ~zeroed], original[:, ~zeroed])
        rows, cols = zeroed.any(dim=1).nonzero(), zeroed.any(dim=0).nonzero()
        height, width = int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)
        assert 0 < height <= 16 and 0 < width <= 16
        assert int(zeroed.sum()) == height * width  # a rectangle (a square cut by the border)


def test_color_is_an_affine_map_per_image_within_the_papers_ranges():
    """Brightness, then saturation, then contrast: for a grey image (saturation has nothing to
    act on) the result is c·(x + b − m) + m, an affine function of x with slope c in [0.5, 1.5]."""
    grey = textured(batch=4)[:, :1].expand(-1, 3, -1, -1)
    out = DiffAugment("color", 3)(grey, 11, 0)
    for x, y in zip(grey.double(), out.double()):
        slope, intercept = np.polyfit(x.flatten().numpy(), y.flatten().numpy(), 1)
        assert np.allclose(y.numpy(), slope * x.numpy() + intercept, atol=1e-5)
        assert 0.5 <= slope <= 1.5 and abs(intercept) <= 1.5 * 0.5 + 1


def test_draws_depend_on_seed_step_and_salt_only():
    images = textured()
    augment = DiffAugment("color,translation,cutout", 0)
    first = augment(images, 4, 0)
    assert torch.equal(first, DiffAugment("color,translation,cutout", 0)(images, 4, 0))
    for other in (
        augment(images, 5, 0),
        augment(images, 4, 1),
        DiffAugment("color,translation,cutout", 1)(images, 4, 0),
    ):
        assert not torch.equal(first, other)


def test_gradients_reach_the_images():
    images = textured().requires_grad_()
    DiffAugment("color,translation,cutout", 0)(images, 2, 0).square().sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0


@pytest.mark.parametrize("policy", ["color,flip", "zoom"])
def test_unknown_operations_are_a_config_error(digits, policy):
    config = tiny_config(digits)
    config.train.diff_augment = policy
    with pytest.raises(ConfigError, match="train.diff_augment"):
        config.validate()
