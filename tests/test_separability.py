"""The separability probe: a discriminator trained on real B against real A tells MNIST from USPS
(frame-filling digits), and cannot tell two halves of one domain apart."""

from __future__ import annotations

import json
import shutil

from i2i.benchmarks.separability import main
from i2i.io import list_images

DIGITS = ["--model", "cycle_gan", "--size", "32", "--steps", "150", "--every", "150", "--held-out", "60"]


def small_grey_config(tmp_path) -> str:
    """A config file for a small discriminator on one-channel images."""
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"D": {"ndf": 8}, "data": {"input_nc": 1, "output_nc": 1}}))
    return str(path)


def test_mnist_and_usps_are_told_apart(tmp_path, digits):
    scores = main([str(digits), "--config", small_grey_config(tmp_path), *DIGITS, "--json", str(tmp_path / "s.json")])
    assert [s["step"] for s in scores] == [0, 150] and (tmp_path / "s.json").exists()
    assert scores[-1]["accuracy"] >= 0.9


def test_two_halves_of_one_domain_are_not(tmp_path, digits):
    data = tmp_path / "halves"
    for split in ("train", "test"):
        images = list_images(digits / f"{split}A")[:240]
        for domain, half in (("A", images[::2]), ("B", images[1::2])):
            (data / f"{split}{domain}").mkdir(parents=True)
            for image in half:
                shutil.copy(image, data / f"{split}{domain}" / image.name)
    scores = main([str(data), "--config", small_grey_config(tmp_path), *DIGITS])
    assert scores[-1]["accuracy"] < 0.75
