"""Images for int8 calibration and for the quality gate, kept apart.

Calibration images come from `--calib DIR` or, by default, a fixed sample of the run's own
training images of the source domain; the gate's held-out images come from the test split
(never a calibration image), and the gate's real target images from the other domain's test
split. Every image is resized and center-cropped to one square side, so they batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from i2i.config import RunConfig
from i2i.errors import DataError
from i2i.io import list_images, read_image
from i2i.rundir import generator_channels

SIDE = 256  # calibration / gate crop: the resolution the generators are usually deployed at
CALIBRATION_COUNT = 32


@dataclass
class ImageSet:
    folder: Path
    paths: list[Path]
    images: list[np.ndarray]  # uint8 HWC, SIDE × SIDE

    def batches(self) -> list[np.ndarray]:
        """One uint8 NHWC batch per image."""
        return [image[None] for image in self.images]


def square(image: np.ndarray, side: int) -> np.ndarray:
    """Resize the shorter side to `side` and center-crop to side × side."""
    h, w = image.shape[:2]
    scale = side / min(h, w)
    size = (max(side, round(w * scale)), max(side, round(h * scale)))
    resized = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    top, left = (resized.shape[0] - side) // 2, (resized.shape[1] - side) // 2
    crop = resized[top : top + side, left : left + side]
    return crop[:, :, None] if crop.ndim == 2 else np.ascontiguousarray(crop)


def read_set(
    folder: Path,
    channels: int,
    count: int,
    side: int = SIDE,
    exclude: set[Path] = frozenset(),
    role: str = "calibration",
) -> ImageSet:
    """Up to `count` images of `folder` (an even, fixed sample when there are more), each
    checked for the generator's channel count; DataError naming the folder or file otherwise."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: {role} folder does not exist; pass a folder of images")
    paths = [p for p in list_images(folder) if p.resolve() not in exclude]
    if not paths:
        raise DataError(f"{folder}: no {role} images in it (png/jpg/...); pass a folder of images of the source domain")
    if len(paths) > count:
        paths = [paths[i] for i in np.linspace(0, len(paths) - 1, count).round().astype(int)]
    images = []
    for path in paths:
        native = read_image(path, channels=0)  # channels=0: as stored (alpha composited)
        if native.shape[2] != channels:
            raise DataError(
                f"{path}: {native.shape[2]}-channel image, the generator takes {channels}; "
                f"use {role} images of the source domain"
            )
        images.append(square(native, side))
    return ImageSet(folder, paths, images)


def _split(config: RunConfig, split: str, domain: str) -> Path:
    if not config.data.dataroot:
        raise DataError(f"the run's config names no dataset; pass the {split} images explicitly")
    return Path(config.data.dataroot) / f"{split}{domain}"


def calibration_set(
    config: RunConfig, direction: str, folder: Path | None = None, count: int = CALIBRATION_COUNT
) -> ImageSet:
    source = "A" if direction == "AtoB" else "B"
    return read_set(folder or _split(config, "train", source), generator_channels(config, direction)[0], count)


def holdout_sets(
    config: RunConfig, direction: str, calibration: ImageSet, folder: Path | None, count: int
) -> tuple[ImageSet, ImageSet]:
    """(held-out source images, real target images) for the quality gate; calibration
    images are left out of the held-out ones."""
    source, target = ("A", "B") if direction == "AtoB" else ("B", "A")
    in_nc, out_nc = generator_channels(config, direction)
    exclude = {p.resolve() for p in calibration.paths}
    held_out = read_set(folder or _split(config, "test", source), in_nc, count, exclude=exclude, role="held-out")
    target_folder = _split(config, "test", target)
    if not target_folder.is_dir():
        target_folder = _split(config, "train", target)
    return held_out, read_set(target_folder, out_nc, 4 * count, role="real target")
