"""The object-level benchmark: its dataset (digits drawn onto photos, with masks) and its change
inside and outside the masks, checked against direct computations."""

from __future__ import annotations

import cv2
import numpy as np

from i2i.benchmarks import objects
from i2i.io import list_images, read_image, write_image

from .conftest import untrained_run


def test_prepare_draws_each_labelled_digit_into_its_masked_square(tmp_path, digits):
    # On black photos the image is the digit alone: white strokes in the mask's square, black elsewhere.
    photos = tmp_path / "photos"
    for split in ("train", "test"):
        for index in range(3):
            write_image(photos / f"{split}A" / f"{index}.png", np.zeros((200, 180, 3), np.uint8))
    objects.prepare(digits, photos, tmp_path / "data", counts={"train": 4, "test": 3})
    for split, count in (("train", 4), ("test", 3)):
        for domain in "AB":
            images = list_images(tmp_path / "data" / f"{split}{domain}")
            sources = list_images(digits / f"{split}{domain}")[:count]
            assert [p.stem.split("_")[1] for p in images] == [p.stem.split("_")[1] for p in sources]
            for image, source in zip(images, sources, strict=True):
                pixels = read_image(image, 3).astype(int)
                mask = read_image(tmp_path / "data" / f"{split}{domain}_masks" / image.name, 1)[..., 0] > 127
                rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
                assert pixels.shape == (128, 128, 3) and mask.sum() == 48 * 48
                assert rows[-1] - rows[0] == cols[-1] - cols[0] == 47
                digit = cv2.resize(read_image(source, 1), (48, 48), interpolation=cv2.INTER_LINEAR).astype(int)
                square = pixels[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
                assert np.abs(square - digit[..., None]).max() <= 1
                assert pixels[~mask].max() == 0


def test_change_inside_and_outside_the_masks(tmp_path):
    rng = np.random.default_rng(0)
    expected_in, expected_out = [], []
    for index in range(3):
        source = rng.integers(20, 200, (16, 16, 3), dtype=np.uint8)
        mask = np.zeros((16, 16), np.uint8)
        mask[2 : 2 + 4 + index, 3:9] = 255
        output = source.astype(np.int16) + rng.integers(-20, 21, source.shape)
        write_image(tmp_path / "in" / f"{index}_1.png", source)
        write_image(tmp_path / "masks" / f"{index}_1.png", mask)
        write_image(tmp_path / "out" / f"{index}_1.jpg.png", output.astype(np.uint8))  # another suffix is fine
        change = np.abs(output - source).mean(axis=2)
        expected_in.append(change[mask > 0])
        expected_out.append(change[mask == 0])
    for path in (tmp_path / "out").iterdir():  # outputs keep the source's stem
        path.rename(path.with_name(path.name.replace(".jpg", "")))
    result = objects.change_inside_outside(tmp_path / "in", tmp_path / "out", tmp_path / "masks")
    inside, outside = np.concatenate(expected_in).mean(), np.concatenate(expected_out).mean()
    assert np.isclose(result["change_inside"], inside) and np.isclose(result["change_outside"], outside)
    assert np.isclose(result["ratio"], inside / outside)


def test_measure_scores_a_run_on_the_benchmark(tmp_path, digits, photos):
    data = tmp_path / "data"
    objects.prepare(digits, photos, data, counts={"train": 20, "test": 6})
    run = untrained_run(tmp_path / "run", data, channels=3)
    result = objects.measure(run, data, tmp_path / "scores")
    assert result["change_inside"] > 0 and result["change_outside"] > 0
    assert 0 <= result["accuracy_on_translated"] <= 1 and result["frechet_distance"] > 0
    assert (tmp_path / "scores" / "contact_sheet.png").stat().st_size > 0
    assert len(list_images(tmp_path / "scores" / "squares" / "translated")) == 6
