"""Training datasets. `unaligned`: two folders of unpaired images (DATA/trainA, DATA/trainB).

Every random choice of a sample (which B image, crop offsets, flip) is drawn from a
generator seeded by (seed, sample number), so the stream of batches is a pure function of
the seed and the step: a resumed run sees exactly the batches an uninterrupted one would,
whatever the number of data-loader workers or processes.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from i2i.config import DataConfig
from i2i.errors import DataError
from i2i.io import list_images, read_image


def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 HWC → float CHW in [-1, 1]."""
    return torch.from_numpy(image).permute(2, 0, 1).float().div_(127.5).sub_(1.0)


def check_image_folder(folder: Path, min_size: int | None) -> list[Path]:
    """List a domain folder's images, checking each header; DataError names the first bad file.

    Headers are cheap to read (no pixel decoding), so a dataset of thousands of images is
    checked in seconds, before anything is written to the run directory.
    """
    if not folder.is_dir():
        raise DataError(f"{folder}: folder missing; a dataset needs trainA/ and trainB/ with images inside")
    paths = list_images(folder)
    if not paths:
        raise DataError(f"{folder}: no images found (looked for png/jpg/bmp/tif/webp recursively); add images")
    for path in paths:
        if path.stat().st_size == 0:
            raise DataError(f"{path}: file is empty (0 bytes); delete or replace it")
        try:
            with Image.open(path) as img:
                width, height = img.size
        except (UnidentifiedImageError, OSError, SyntaxError) as exc:
            raise DataError(f"{path}: not a readable image ({exc.__class__.__name__}); delete or replace it") from None
        if min_size is not None and min(width, height) < min_size:
            raise DataError(
                f"{path}: {width}x{height} is smaller than the crop size {min_size}; "
                "remove it, lower --size, or use preprocess resize_and_crop"
            )
    return paths


class UnalignedDataset(Dataset):
    """Sample k pairs A[k-th of a per-epoch shuffle of A] with a random B image."""

    def __init__(self, root: Path, data: DataConfig, seed: int, phase: str = "train"):
        self.root = Path(root)
        self.data = data
        self.seed = seed
        min_size = data.crop_size if data.preprocess == "crop" else None
        self.paths_A = check_image_folder(self.root / f"{phase}A", min_size)
        self.paths_B = check_image_folder(self.root / f"{phase}B", min_size)

    def __len__(self) -> int:
        # Sampling is driven by sample numbers, not epochs; this is the epoch length for logs.
        return max(len(self.paths_A), len(self.paths_B))

    def __getitem__(self, sample: int) -> dict[str, torch.Tensor]:
        n_a = len(self.paths_A)
        epoch, position = divmod(sample, n_a)
        order = np.random.default_rng([self.seed, epoch]).permutation(n_a)
        rng = np.random.default_rng([self.seed, 1, sample])
        path_A = self.paths_A[order[position]]
        path_B = self.paths_B[rng.integers(len(self.paths_B))]
        return {
            "A": image_to_tensor(self._augment(read_image(path_A, self.data.input_nc), rng)),
            "B": image_to_tensor(self._augment(read_image(path_B, self.data.output_nc), rng)),
        }

    def _augment(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        size, crop = self.data.load_size, self.data.crop_size
        if self.data.preprocess == "resize_and_crop":
            image = cv2.resize(image, (size, size), interpolation=cv2.INTER_CUBIC if image.shape[0] < size else cv2.INTER_AREA)
            if image.ndim == 2:
                image = image[:, :, None]
        height, width = image.shape[:2]
        top = int(rng.integers(height - crop + 1))
        left = int(rng.integers(width - crop + 1))
        image = image[top:top + crop, left:left + crop]
        if self.data.flip and rng.random() < 0.5:
            image = image[:, ::-1]
        return np.ascontiguousarray(image)
