import numpy as np
import pytest
import torch
from PIL import Image

from i2i.config import DataConfig
from i2i.errors import DataError
from i2i.training.datasets import UnalignedDataset


def _domain(root, name, images):
    folder = root / name
    folder.mkdir(parents=True)
    for file_name, content in images.items():
        path = folder / file_name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            Image.fromarray(content).save(path)


def test_every_A_image_is_seen_once_per_epoch(tmp_path):
    for domain, offset in (("trainA", 0), ("trainB", 3)):
        _domain(tmp_path, domain, {f"{i}.png": np.full((8, 8), 40 * i + offset, np.uint8) for i in range(5)})
    data = DataConfig(input_nc=1, output_nc=1, load_size=8, crop_size=8, flip=False)
    dataset = UnalignedDataset(tmp_path, data, seed=0)
    seen = sorted(round(float(dataset[k]["A"].mean()), 4) for k in range(5, 10))  # the second epoch
    assert seen == sorted(round(40 * i / 127.5 - 1, 4) for i in range(5))


def test_real_photos_become_normalized_crops(photos):
    data = DataConfig(load_size=72, crop_size=64)
    sample = UnalignedDataset(photos, data, seed=0)[5]
    assert sample["A"].shape == sample["B"].shape == (3, 64, 64)
    assert sample["A"].dtype == torch.float32
    assert -1.0 <= sample["A"].min() < 0 < sample["A"].max() <= 1.0


def test_grayscale_digits(digits):
    data = DataConfig(input_nc=1, output_nc=1, load_size=36, crop_size=32)
    sample = UnalignedDataset(digits, data, seed=0)[0]
    assert sample["A"].shape == sample["B"].shape == (1, 32, 32)


def test_samples_are_a_pure_function_of_seed_and_number(digits):
    data = DataConfig(input_nc=1, output_nc=1, load_size=36, crop_size=32)
    first, again = UnalignedDataset(digits, data, seed=3), UnalignedDataset(digits, data, seed=3)
    other = UnalignedDataset(digits, data, seed=4)
    assert torch.equal(first[17]["A"], again[17]["A"]) and torch.equal(first[17]["B"], again[17]["B"])
    assert not torch.equal(first[17]["B"], other[17]["B"])


GOOD = np.full((40, 40, 3), 128, np.uint8)


@pytest.mark.parametrize(
    "layout, message",
    [
        ({"trainA": {"a.png": GOOD}}, "trainB: folder missing"),
        ({"trainA": {"a.png": GOOD}, "trainB": {}}, "trainB: no images found"),
        ({"trainA": {"a.png": GOOD, "b.jpg": b""}, "trainB": {"a.png": GOOD}}, "b.jpg: file is empty"),
        ({"trainA": {"a.png": GOOD}, "trainB": {"c.png": b"\x89PNG garbage"}}, "c.png: not a readable image"),
    ],
)
def test_bad_layouts_name_the_problem(tmp_path, layout, message):
    for name, images in layout.items():
        _domain(tmp_path, name, images)
    with pytest.raises(DataError, match=message):
        UnalignedDataset(tmp_path, DataConfig(load_size=36, crop_size=32), seed=0)


def test_images_smaller_than_crop_without_resize(tmp_path):
    _domain(tmp_path, "trainA", {"a.png": GOOD})
    _domain(tmp_path, "trainB", {"small.png": np.zeros((20, 50, 3), np.uint8)})
    data = DataConfig(load_size=32, crop_size=32, preprocess="crop")
    with pytest.raises(DataError, match="small.png: 50x20 is smaller than the crop size 32"):
        UnalignedDataset(tmp_path, data, seed=0)
    data.preprocess = "resize_and_crop"  # resizing makes any size usable
    assert UnalignedDataset(tmp_path, data, seed=0)[0]["B"].shape == (3, 32, 32)


def test_each_epoch_walks_a_in_a_new_shuffle_and_a_sample_draws_the_same_every_time():
    from i2i.training.datasets import draw_pair

    draws = [draw_pair(3, sample, 7, 5) for sample in range(14)]
    first, second = [a for a, _, _ in draws[:7]], [a for a, _, _ in draws[7:]]
    assert sorted(first) == sorted(second) == list(range(7)) and first != second
    assert {b for _, b, _ in draws} <= set(range(5))
    again = draw_pair(3, 9, 7, 5)
    assert again[:2] == draws[9][:2] and again[2].random() == draws[9][2].random()
    assert draw_pair(4, 9, 7, 5)[2].random() != draw_pair(3, 9, 7, 5)[2].random()
