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
from torch.utils.data import Dataset

from i2i.config import DataConfig
from i2i.errors import DataError
from i2i.image import array_to_model_input
from i2i.io import (
    IMAGE_EXTENSIONS,
    VIDEO_EXTENSIONS,
    count_video_frames,
    image_size,
    list_images,
    read_image,
    read_video_frames,
)

from .labels import LabelProblem, LabelScan, load_label, scan_classes, scan_paths_file


def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 HWC → float CHW in [-1, 1]."""
    return array_to_model_input(image)[0]


def draw_pair(seed: int, sample: int, n_a: int, n_b: int) -> tuple[int, int, np.random.Generator]:
    """Sample number → (index into A, index into B, the generator for its augmentation): A in a
    fresh shuffle each epoch, B at random, all from (seed, sample) alone, so every worker and a
    resumed run draw the same."""
    epoch, position = divmod(sample, n_a)
    order = np.random.default_rng([seed, epoch]).permutation(n_a)
    rng = np.random.default_rng([seed, 1, sample])
    return int(order[position]), int(rng.integers(n_b)), rng


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
        width, height = image_size(path)  # refuses decompression bombs before any worker decodes one
        if min_size is not None and min(width, height) < min_size:
            raise DataError(
                f"{path}: {width}x{height} is smaller than the crop size {min_size}; "
                "remove it, lower --size, or use preprocess resize_and_crop"
            )
    return paths


class UnalignedDataset(Dataset):
    """Sample k pairs A[k-th of a per-epoch shuffle of A] with a random B image. `extra` adds
    folders of images to a domain ("A" or "B" → folders), e.g. unlabelled photos to distil on."""

    def __init__(
        self, root: Path, data: DataConfig, seed: int, phase: str = "train", extra: dict[str, list[Path]] | None = None
    ):
        self.root = Path(root)
        self.data = data
        self.seed = seed
        min_size = data.crop_size if data.preprocess == "crop" else None
        folders = {domain: [self.root / f"{phase}{domain}", *(extra or {}).get(domain, [])] for domain in "AB"}
        self.paths_A, self.paths_B = (
            [path for folder in folders[domain] for path in check_image_folder(Path(folder), min_size)]
            for domain in "AB"
        )

    def __len__(self) -> int:
        # Sampling is driven by sample numbers, not epochs; this is the epoch length for logs.
        return max(len(self.paths_A), len(self.paths_B))

    def __getitem__(self, sample: int) -> dict[str, torch.Tensor]:
        index_A, index_B, rng = draw_pair(self.seed, sample, len(self.paths_A), len(self.paths_B))
        path_A, path_B = self.paths_A[index_A], self.paths_B[index_B]
        return {
            "A": image_to_tensor(self._augment(read_image(path_A, self.data.input_nc), rng)),
            "B": image_to_tensor(self._augment(read_image(path_B, self.data.output_nc), rng)),
        }

    def _augment(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return augment([image], self.data, rng)[0]


def augment(
    images: list[np.ndarray], data: DataConfig, rng: np.random.Generator, labels: tuple[bool, ...] = ()
) -> list[np.ndarray]:
    """Resize (resize_and_crop), random crop and random flip — one draw for all `images`, so
    frames of a clip (or an image and its mask) stay aligned. Images flagged in `labels`
    are label maps: resized with nearest neighbour, so no new label values appear."""
    size, crop = data.load_size, data.crop_size
    if data.preprocess == "resize_and_crop":
        small = images[0].shape[0] < size
        smooth = cv2.INTER_CUBIC if small else cv2.INTER_AREA
        images = [
            cv2.resize(
                image, (size, size), interpolation=cv2.INTER_NEAREST if i < len(labels) and labels[i] else smooth
            )
            for i, image in enumerate(images)
        ]
        images = [image[:, :, None] if image.ndim == 2 else image for image in images]
    height, width = images[0].shape[:2]
    top = int(rng.integers(height - crop + 1))
    left = int(rng.integers(width - crop + 1))
    flip = data.flip and rng.random() < 0.5
    out = []
    for image in images:
        image = image[top : top + crop, left : left + crop]
        out.append(np.ascontiguousarray(image[:, ::-1] if flip else image))
    return out


class FrameSequence:
    """One clip of a domain: a video file or a folder of frames ordered by file name."""

    def __init__(self, path: Path):
        self.path = path
        self.frames = list_images(path) if path.is_dir() else None
        self.length = len(self.frames) if self.frames is not None else count_video_frames(path)

    def read(self, indices: list[int], channels: int) -> list[np.ndarray]:
        if self.frames is not None:
            return [read_image(self.frames[i], channels) for i in indices]
        return read_video_frames(self.path, indices, channels)


def find_sequences(folder: Path) -> list[FrameSequence]:
    """Videos anywhere under `folder`, and every folder that directly holds images."""
    if not folder.is_dir():
        raise DataError(
            f"{folder}: folder missing; a temporal dataset needs trainA/ and trainB/ with videos or frame folders"
        )
    sequences = [
        FrameSequence(p) for p in sorted(folder.rglob("*")) if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file()
    ]
    for directory in sorted({p.parent for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS}):
        sequences.append(FrameSequence(directory))
    if not sequences:
        raise DataError(f"{folder}: no videos or frame folders found; add clips (mp4/avi/...) or folders of frames")
    return sequences


class TemporalDataset(Dataset):
    """Triplets of frames (t, t+s, t+2s) from each domain's clips, decoded on demand, with
    one crop/flip per triplet. Sample k uses the k-th triplet of a per-epoch shuffle of A's
    triplets and a random triplet of B, drawn from (seed, k) as in UnalignedDataset."""

    def __init__(self, root: Path, data: DataConfig, seed: int, frame_step: int = 1, phase: str = "train"):
        self.data, self.seed, self.step = data, seed, frame_step
        self.triplets = {domain: self._index(Path(root) / f"{phase}{domain}") for domain in "AB"}

    def _index(self, folder: Path) -> list[tuple[FrameSequence, int]]:
        span = 2 * self.step
        triplets = [(seq, start) for seq in find_sequences(folder) for start in range(max(0, seq.length - span))]
        if not triplets:
            raise DataError(f"{folder}: no clip has more than {span} frames (frame step {self.step}); add longer clips")
        return triplets

    def __len__(self) -> int:
        return max(len(t) for t in self.triplets.values())

    def __getitem__(self, sample: int) -> dict[str, torch.Tensor]:
        index_A, index_B, rng = draw_pair(self.seed, sample, len(self.triplets["A"]), len(self.triplets["B"]))
        chosen = {"A": self.triplets["A"][index_A], "B": self.triplets["B"][index_B]}
        out = {}
        for domain, (sequence, start) in chosen.items():
            channels = self.data.input_nc if domain == "A" else self.data.output_nc
            frames = sequence.read([start, start + self.step, start + 2 * self.step], channels)
            out[domain] = torch.stack([image_to_tensor(f) for f in augment(frames, self.data, rng)])
        return out


class LabeledDataset(Dataset):
    """Unpaired images with labels (JoliGEN formats, see training/labels.py): a class index per
    image, or a label mask (rasterized boxes, or a mask PNG) cropped and flipped with it.
    Sampling is that of UnalignedDataset; every label is checked before training starts."""

    def __init__(self, root: Path, data: DataConfig, seed: int, phase: str = "train"):
        self.data, self.seed, self.mode = data, seed, data.dataset_mode
        self.scans: dict[str, LabelScan] = {}
        for domain in "AB":
            folder = Path(root) / f"{phase}{domain}"
            if self.mode == "class":
                self.scans[domain] = scan_classes(folder, data.class_names)
            else:
                if not folder.is_dir():
                    raise DataError(
                        f"{folder}: folder missing; a {self.mode} dataset needs trainA/ and trainB/ with paths.txt"
                    )
                self.scans[domain] = scan_paths_file(folder, self.mode, data.semantic_nc, data.skip_bad)

    @property
    def skipped(self) -> list[str]:
        return self.scans["A"].skipped + self.scans["B"].skipped

    def __len__(self) -> int:
        return max(len(scan.samples) for scan in self.scans.values())

    def __getitem__(self, sample: int) -> dict[str, torch.Tensor]:
        samples_A, samples_B = self.scans["A"].samples, self.scans["B"].samples
        index_A, index_B, rng = draw_pair(self.seed, sample, len(samples_A), len(samples_B))
        chosen = {"A": samples_A[index_A], "B": samples_B[index_B]}
        out = {}
        for domain, item in chosen.items():
            image = read_image(item.image, self.data.input_nc if domain == "A" else self.data.output_nc)
            if self.mode == "class":
                out[domain] = image_to_tensor(augment([image], self.data, rng)[0])
                out[f"{domain}_label"] = torch.tensor(item.label, dtype=torch.long)
                continue
            try:
                mask = load_label(item, self.mode, image.shape[1], image.shape[0], self.data.semantic_nc)
            except LabelProblem as problem:  # the file changed since the scan
                raise DataError(str(problem)) from None
            image, mask = augment([image, mask], self.data, rng, labels=(False, True))
            out[domain] = image_to_tensor(image)
            out[f"{domain}_label"] = torch.from_numpy(mask.reshape(mask.shape[:2]).astype(np.int64))
        return out
