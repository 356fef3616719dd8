"""The texture loss (training/texture.py): feature statistics and the distances to a domain's mean
or nearest image against float64 references, its zero and its gradient, the low-pass, and which
models take it."""

import pytest
import torch

from i2i.errors import ConfigError
from i2i.io import read_image
from i2i.training.datasets import image_to_tensor
from i2i.training.models.base import TranslationModel
from i2i.training.models.cycle_gan import CycleGANModel
from i2i.training.texture import BATCH, VARIANCE_FLOOR, DomainTexture, channel_statistics

from ..conftest import tiny_config


def images(folder, count: int, size: int = 64) -> list[torch.Tensor]:
    import cv2

    paths = sorted(folder.iterdir())[:count]
    return [image_to_tensor(cv2.resize(read_image(p, 3), (size, size), interpolation=cv2.INTER_AREA)) for p in paths]


@pytest.fixture(scope="module")
def texture():
    return DomainTexture(1.0, torch.device("cpu"))


def test_channel_statistics_match_a_float64_reference():
    features = torch.randn(2, 5, 3, 4)
    (got,) = channel_statistics([features])
    flat = features.double().flatten(2)
    for n in range(2):
        for c in range(5):
            values = flat[n, c].tolist()
            mean = sum(values) / 12
            deviation = (sum((v - mean) ** 2 for v in values) / 12 + VARIANCE_FLOOR) ** 0.5
            assert float(got[n, c]) == pytest.approx(mean, abs=1e-6)
            assert float(got[n, 5 + c]) == pytest.approx(deviation, rel=1e-5)


def test_the_loss_is_the_distance_to_the_domains_mean_or_to_the_nearest_image(photos):
    paintings = images(photos / "trainB", BATCH + 3)  # a full batch and a partial one
    photo = torch.stack(images(photos / "trainA", 2))
    with torch.no_grad():
        for nearest in (False, True):
            texture = DomainTexture(2.0, torch.device("cpu"), nearest=nearest)
            texture.measure("B", paintings)
            each = [[s[0].double() for s in texture.statistics(image[None])] for image in paintings]
            for scale, measured in enumerate(texture.measured["B"]):  # every image's, in order
                torch.testing.assert_close(
                    measured.double(), torch.stack([e[scale] for e in each]), rtol=1e-4, atol=1e-5
                )
            targets = each if nearest else [[torch.stack(scales).mean(0) for scales in zip(*each)]]
            sizes = [torch.stack(scales).mean(0).square().sum() for scales in zip(*each)]
            minima = []
            for got in zip(*(s.double() for s in texture.statistics(photo))):  # per photo
                distances = [
                    sum((g - t).square().sum() / size for g, t, size in zip(got, target, sizes)) / len(sizes)
                    for target in targets
                ]
                minima.append(min(distances))
            mean_of_minima = float(sum(minima)) / len(minima)
            assert float(texture.loss(photo, "B")) == pytest.approx(2.0 * mean_of_minima, rel=1e-4)
            if nearest:  # a measured image is its own nearest target
                assert float(texture.loss(paintings[5][None], "B")) == pytest.approx(0.0, abs=1e-6)


def test_the_loss_is_zero_at_the_target_and_its_gradient_moves_a_photo_toward_it(texture, photos):
    (painting,) = images(photos / "trainB", 1)
    texture.measure("B", [painting])
    assert float(texture.loss(painting[None], "B")) == pytest.approx(0.0, abs=1e-6)
    (photo,) = images(photos / "trainA", 1)
    pixels = photo[None].clone().requires_grad_(True)
    optimizer = torch.optim.Adam([pixels], lr=0.02)
    start = float(texture.loss(pixels, "B").detach())
    for _ in range(40):
        optimizer.zero_grad()
        texture.loss(pixels, "B").backward()
        optimizer.step()
    assert start > 0.1
    assert float(texture.loss(pixels, "B").detach()) < 0.3 * start


def test_greyscale_images_are_seen_as_grey_rgb(texture):
    grey = torch.rand(1, 1, 32, 32) * 2 - 1
    for got, expected in zip(texture.statistics(grey), texture.statistics(grey.expand(-1, 3, -1, -1)), strict=True):
        torch.testing.assert_close(got, expected)


def test_only_models_that_translate_into_a_domain_take_it(digits):
    config = tiny_config(digits)
    config.alg.texture.lambda_texture = 1.0
    CycleGANModel.check_config(config)

    class NoTargetDomain(TranslationModel):
        pass

    with pytest.raises(ConfigError, match="alg.texture.lambda_texture: cycle_gan has no texture loss"):
        NoTargetDomain.check_config(config)


def test_with_the_lowpass_a_painted_period_2_lattice_does_not_move_the_statistics(texture, photos):
    (photo,) = images(photos / "trainA", 1)
    rows, cols = torch.meshgrid(torch.arange(64), torch.arange(64), indexing="ij")
    lattice = photo[None] + 0.3 * ((rows + cols) % 2 * 2 - 1).float()
    lowpassed = DomainTexture(1.0, torch.device("cpu"), lowpass=True)
    with torch.no_grad():
        for plain, painted in zip(lowpassed.statistics(photo[None]), lowpassed.statistics(lattice), strict=True):
            torch.testing.assert_close(painted, plain, rtol=1e-4, atol=1e-4)
        changes = [(a - b).abs().max() for a, b in zip(texture.statistics(photo[None]), texture.statistics(lattice))]
    assert max(changes) > 0.1  # without it, the features see the lattice
