"""The upsampling-lattice artifact score: the spectrum against its closed form, synthetic lattices
on a real photo, and the measured range of real photos and Monet paintings."""

import cv2
import numpy as np
import pytest
import torch

from i2i.config import RunConfig
from i2i.errors import DataError
from i2i.evaluation.evaluate import measure_folder
from i2i.evaluation.spectral import (
    artifact_score,
    artifact_summary,
    lattice_ratio_table,
    lattice_ratios,
    power_spectrum,
)
from i2i.image import array_to_model_input, to_image_arrays
from i2i.io import list_images, read_image
from i2i.nets import build_generator
from i2i.nets.layers import init_weights

SIZE = 128
ROWS, COLUMNS = np.mgrid[:SIZE, :SIZE]
# ±1 grey level at the crossings: period 4 along x and y (a transposed convolution's footprint)
PERIOD_4 = (np.cos(np.pi * COLUMNS / 2) + np.cos(np.pi * ROWS / 2)) / 2
CHECKERBOARD = np.where((ROWS + COLUMNS) % 2, 1.0, -1.0)  # period 2 along the diagonals


def photos_at_128(folder, count):
    return [
        cv2.resize(read_image(path, 3), (SIZE, SIZE), interpolation=cv2.INTER_AREA)
        for path in list_images(folder)[:count]
    ]


def with_lattice(image, lattice, grey_levels):
    return np.clip(np.round(image + grey_levels * np.asarray(lattice)), 0, 255).astype(np.uint8)


def test_power_spectrum_of_a_cosine_against_its_closed_form():
    amplitude = 5.0
    image = 100 + amplitude * np.cos(np.pi * COLUMNS / 2)  # 1/4 cycle per pixel along x: bin 32 of 128
    spectrum = power_spectrum(image)
    # the periodic Hann window sums to N/2 along each axis; cos = two half-amplitude exponentials; 3 channels
    peak = 3 * (amplitude / 2 * (SIZE / 2) ** 2) ** 2
    assert spectrum[0, 32] == pytest.approx(peak, rel=1e-9)
    side = [spectrum[0, 33], spectrum[1, 32], spectrum[0, 31]]  # the window's side bins
    assert side == pytest.approx([peak / 4] * 3, rel=1e-9)
    assert spectrum[0, 34] < 1e-12 * peak and spectrum[5, 32] < 1e-12 * peak
    # a larger image is averaged over tiles: the same peak, not one four times larger
    assert power_spectrum(np.tile(image, (2, 2)))[0, 32] == pytest.approx(peak, rel=1e-9)


def test_flat_images_are_scored_against_the_rounding_noise_floor():
    flat = np.full((SIZE, SIZE, 3), 120, np.uint8)
    assert max(lattice_ratios(flat).values()) < 1e-20  # no lattice, and no 0 / 0
    # a ±2 checkerboard peaks at (1/2, 1/2) with power 3·(2·(N/2)²)² against the floor of uint8
    # rounding, 3·(1/12)·(3N/8)²; the period-2 ratio averages it with the two empty peaks
    peak, floor = 3 * (2 * (SIZE / 2) ** 2) ** 2, 3 / 12 * (3 * SIZE / 8) ** 2
    assert lattice_ratios(with_lattice(flat, CHECKERBOARD[..., None], 2))[2] == pytest.approx(peak / floor / 3)


def test_a_faint_lattice_on_a_real_photo_is_found_at_its_period(photos):
    photo = photos_at_128(photos / "testA", 1)[0].astype(np.float64)
    paintings = lattice_ratio_table(photos_at_128(photos / "testB", 16))
    typical = np.median(paintings.max(axis=1))
    clean = artifact_score(photo.astype(np.uint8))[0]
    period_4, found_4 = artifact_score(with_lattice(photo, PERIOD_4[..., None], 3))
    period_2, found_2 = artifact_score(with_lattice(photo, CHECKERBOARD[..., None], 2))
    # measured 1.63, inside the paintings' own 10-90 % range (0.59-1.72)
    assert clean / typical < 2
    assert found_4 == 4 and period_4 / typical > 12  # measured 22.4
    assert found_2 == 2 and period_2 / typical > 100  # measured 401


def test_coloured_lattices_count_per_channel(photos):
    """Magenta/green fringes: the lattice's luminance nearly cancels, its colour does not."""
    photo = photos_at_128(photos / "testA", 1)[0].astype(np.float64)
    fringes = with_lattice(photo, PERIOD_4[..., None] * np.array([-1, 1, -1]), 3)
    in_colour, period = artifact_score(fringes)
    in_grey = artifact_score(cv2.cvtColor(fringes, cv2.COLOR_RGB2GRAY))[0]
    assert period == 4 and in_colour > 30 and in_grey < 3  # measured 37.3 and 2.6 (2.5 without the lattice)


def test_real_photos_and_paintings_score_in_the_measured_range(photos):
    photo_scores = lattice_ratio_table(photos_at_128(photos / "testA", 16)).max(axis=1)
    painting_scores = lattice_ratio_table(photos_at_128(photos / "testB", 16)).max(axis=1)
    # measured: photos 0.67-5.58 (median 2.10), paintings 0.86-7.64 (median 1.55)
    assert 1.5 < np.median(photo_scores) < 3 and 1 < np.median(painting_scores) < 2.5
    assert 0.4 < min(photo_scores.min(), painting_scores.min())
    assert max(photo_scores.max(), painting_scores.max()) < 10


def test_artifact_summary_is_in_units_of_real_images(photos, tmp_path):
    paintings = photos_at_128(photos / "testB", 16)
    sources = photos_at_128(photos / "testA", 8)
    for index, image in enumerate(sources):
        cv2.imwrite(str(tmp_path / f"{index}.png"), with_lattice(image, CHECKERBOARD[..., None], 2)[:, :, ::-1])
    real = lattice_ratio_table(paintings)
    written = lattice_ratio_table(read_image(path, 3) for path in list_images(tmp_path))
    summary = artifact_summary(written, real, lattice_ratio_table(sources))
    assert summary["artifact_period"] == 2 and summary["artifact_score"] > 30
    assert 0.5 < summary["sources_artifact_score"] < 2.5
    low, high = summary["artifact_score_real_range"]
    assert low < 1 < high  # the real images' own spread around their median
    assert artifact_summary(real, real)["artifact_score"] == pytest.approx(1.0)


def test_bad_input_is_a_one_line_error(tmp_path):
    with pytest.raises(DataError, match="0 image"):
        measure_folder(tmp_path, extract=None)
    with pytest.raises(DataError, match="too small"):
        artifact_score(np.zeros((8, 40, 3), np.uint8))


@pytest.mark.parametrize(
    ("upsample", "low", "high"), [("transpose", 20, np.inf), ("blur", 0, 3), ("nearest", 0, 3), ("bilinear", 0, 3)]
)
def test_fresh_generators_transposed_convolutions_leave_a_lattice_the_other_upsamplings_do_not(
    photos, upsample, low, high
):
    """Odena et al. 2016: stride-2 transposed convolutions paint a checkerboard from the first step;
    CUT's blur-upsampling and resize-then-convolve do not."""
    config = RunConfig().G
    config.netG, config.ngf, config.antialias, config.upsample = "resnet_6blocks", 8, True, upsample
    torch.manual_seed(0)
    generator = init_weights(build_generator(config, 3, 3)).eval()  # the training's normal(0, 0.02) init
    inputs = photos_at_128(photos / "testA", 4)
    with torch.no_grad():
        outputs = to_image_arrays(generator(array_to_model_input(np.stack(inputs))))
    paintings = lattice_ratio_table(photos_at_128(photos / "testB", 16))
    score = artifact_summary(lattice_ratio_table(outputs), paintings)["artifact_score"]
    assert low < score < high  # measured 66.1 (period 2) with transposed convolutions, 1.08 with blur
