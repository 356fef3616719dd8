"""Label preservation: does a translated image still show what its source showed?

A classifier is trained on real, labelled images of the target domain (labels from file
names `<anything>_<label>.<ext>`, as in MNIST/USPS exports), then reads the translated
images, whose labels are those of their sources. Its accuracy on real target test images is
the ceiling; its accuracy on the untranslated sources is the baseline translation must beat.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from torch.nn import functional as F

from .errors import DataError
from .io import list_images, read_image
from .nets.affine_warp import affine_resample
from .nets.classifier import DomainClassifier

SIZE = 32


def file_name_label(path: Path) -> int:
    suffix = path.stem.rsplit("_", 1)[-1]
    if not suffix.isdigit():
        raise DataError(f"{path}: no label in the name; expected <name>_<label>{path.suffix}")
    return int(suffix)


def labelled_paths(folder: Path) -> list[tuple[Path, int]]:
    """A folder's images with the labels in their names; DataError when it has none."""
    labelled = [(path, file_name_label(path)) for path in list_images(folder)]
    if not labelled:
        raise DataError(f"{folder}: no images")
    return labelled


def labelled_images(folder: Path, channels: int = 1, size: int = SIZE) -> tuple[torch.Tensor, torch.Tensor]:
    """Images resized to size × size in [-1, 1] and the integer labels after the last '_' of their names."""
    labelled = labelled_paths(folder)
    labels = [label for _, label in labelled]
    images = [cv2.resize(read_image(path, channels), (size, size), interpolation=cv2.INTER_AREA).reshape(size, size, channels)
              for path, _ in labelled]
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 127.5 - 1
    return x, torch.tensor(labels)


def random_affine(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each image zoomed in up to 1.5× or out to 0.9×, rotated up to ±11° and shifted up to ±15 %."""
    n = len(x)
    scale = torch.empty(n).uniform_(0.65, 1.1, generator=generator)
    angle = torch.empty(n).uniform_(-0.2, 0.2, generator=generator)
    shift = torch.empty(n, 2).uniform_(-0.15, 0.15, generator=generator)
    cos, sin = scale * torch.cos(angle), scale * torch.sin(angle)
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    return affine_resample(x, theta)


def train_classifier(x: torch.Tensor, y: torch.Tensor, epochs: int = 15, seed: int = 0, ndf: int = 32,
                     n_classes: int | None = None, affine_invariant: bool = False) -> DomainClassifier:
    """A DomainClassifier trained on labelled images in [-1, 1], with small random shifts, or
    with random affine transforms when it must read the class whatever the position and scale."""
    torch.manual_seed(seed)
    net = DomainClassifier(x.shape[1], n_classes or int(y.max()) + 1, ndf=ndf)
    optimizer = torch.optim.Adam(net.parameters(), lr=2e-3)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), 64):
            batch = order[start:start + 64]
            if affine_invariant:
                moved = random_affine(x[batch], generator)
            else:  # the classifier must not depend on exact centring
                moved = torch.roll(x[batch], shifts=tuple(torch.randint(-2, 3, (2,), generator=generator).tolist()), dims=(2, 3))
            loss = F.cross_entropy(net(moved), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return net.eval()


@torch.inference_mode()
def accuracy(net: DomainClassifier, x: torch.Tensor, y: torch.Tensor) -> float:
    return float((net(x).argmax(1) == y).float().mean())


def label_preservation(translated: Path, target_train: Path, target_test: Path, sources: Path | None = None,
                       epochs: int = 15) -> dict:
    net = train_classifier(*labelled_images(target_train), epochs=epochs)
    result = {"classifier_accuracy_on_real_target_test": accuracy(net, *labelled_images(target_test)),
              "accuracy_on_translated": accuracy(net, *labelled_images(translated))}
    if sources is not None:
        result["accuracy_on_untranslated_sources"] = accuracy(net, *labelled_images(sources))
    return result
