"""Label preservation: does a translated image still show what its source showed? And its
counterpart for synthetic training data: do classifiers trained on translations read real
target images?

A classifier is trained on real, labelled images of the target domain (labels from file
names `<anything>_<label>.<ext>`, as in MNIST/USPS exports), then reads the translated
images, whose labels are those of their sources. Its accuracy on real target test images is
the ceiling; its accuracy on the untranslated sources is the baseline translation must beat.
The transfer check turns this around (the protocol of pixel-level domain adaptation papers):
classifiers are trained on the translations and read real target test images.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from i2i.errors import DataError
from i2i.image import array_to_model_input
from i2i.io import list_images, read_image
from i2i.nets.classifier import JudgeClassifier
from i2i.nets.warp import affine_resample

SIZE = 32
Augmentation = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


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
    images = [
        cv2.resize(read_image(path, channels), (size, size), interpolation=cv2.INTER_AREA).reshape(size, size, channels)
        for path, _ in labelled
    ]
    x = array_to_model_input(np.stack(images))
    return x, torch.tensor(labels)


def random_affine(
    x: torch.Tensor,
    generator: torch.Generator,
    zoom: tuple[float, float] = (0.65, 1.1),
    max_angle: float = 0.2,
    max_shift: float = 0.15,
) -> torch.Tensor:
    """Each image resampled through a random affine map: sampling-grid scale drawn from `zoom`
    (0.65 enlarges the content 1.5×, 1.1 shrinks it to 0.9×), rotation up to ±max_angle
    radians, shift up to ±max_shift of the half-size."""
    n = len(x)
    scale = torch.empty(n).uniform_(*zoom, generator=generator)
    angle = torch.empty(n).uniform_(-max_angle, max_angle, generator=generator)
    shift = torch.empty(n, 2).uniform_(-max_shift, max_shift, generator=generator)
    cos, sin = scale * torch.cos(angle), scale * torch.sin(angle)
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    return affine_resample(x, theta)


def slight_affine(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Handwriting's own variation: ±10 % size, ±9° slant, ±4 % shift."""
    return random_affine(x, generator, zoom=(0.9, 1.1), max_angle=0.15, max_shift=0.08)


def small_shifts(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The whole batch rolled by up to two pixels each way."""
    return torch.roll(x, shifts=tuple(torch.randint(-2, 3, (2,), generator=generator).tolist()), dims=(2, 3))


def train_classifier(
    build: Callable[[], nn.Module],
    x: torch.Tensor,
    y: torch.Tensor,
    epochs: int = 15,
    seed: int = 0,
    augment: Augmentation = small_shifts,
) -> nn.Module:
    """A network from `build`, with PyTorch's default initialisation under `seed`, trained on
    labelled images in [-1, 1] (batches of 64, one-cycle learning rate), each batch passed
    through `augment` first; returned in eval mode."""
    torch.manual_seed(seed)
    net = build()
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    batches_per_epoch = -(-len(x) // 64)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, 3e-3, total_steps=epochs * batches_per_epoch)
    net.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), 64):
            batch = order[start : start + 64]
            loss = F.cross_entropy(net(augment(x[batch], generator)), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    return net.eval()


@torch.inference_mode()
def accuracy(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return float((net(x).argmax(1) == y).float().mean())


def judged_accuracies(
    x: torch.Tensor, y: torch.Tensor, readings: dict[str, tuple[torch.Tensor, torch.Tensor]], epochs: int, judges: int
) -> dict[str, float]:
    """Judges trained on (x, y) with seeds 0 … judges−1 read each labelled set of `readings`:
    mean accuracy per key, and its standard deviation as key_std when judges > 1."""
    accuracies: dict[str, list[float]] = {key: [] for key in readings}
    for seed in range(judges):
        net = train_classifier(
            partial(JudgeClassifier, x.shape[1], int(y.max()) + 1), x, y, epochs, seed, slight_affine
        )
        for key, labelled in readings.items():
            accuracies[key].append(accuracy(net, *labelled))
    result = {}
    for key, values in accuracies.items():
        result[key] = float(np.mean(values))
        if judges > 1:
            result[f"{key}_std"] = float(np.std(values))
    return result


def describe_judges(judges: int, channels: int, epochs: int) -> str:
    return f"JudgeClassifier × {judges} ({'colour' if channels == 3 else 'grey'}), {epochs} epochs"


def label_preservation(
    translated: Path,
    target_train: Path,
    target_test: Path,
    sources: Path | None = None,
    epochs: int = 15,
    judges: int = 1,
    channels: int = 1,
) -> dict:
    """Accuracies of judges trained on target_train, averaged: on target_test (the ceiling), on
    the translations and on their sources (the baseline). Every image is read with `channels`
    channels (1: grey, 3: RGB) at 32 × 32."""
    x, y = labelled_images(target_train, channels)
    folders = {"classifier_accuracy_on_real_target_test": target_test, "accuracy_on_translated": translated}
    if sources is not None:
        folders["accuracy_on_untranslated_sources"] = sources
    readings = {key: labelled_images(folder, channels) for key, folder in folders.items()}
    return {
        "label_classifier": f"{describe_judges(judges, channels, epochs)} on the {len(x)} images of {target_train}",
        **judged_accuracies(x, y, readings, epochs, judges),
    }


def synthetic_data_transfer(
    translated: Path,
    target_test: Path,
    sources: Path | None = None,
    epochs: int = 15,
    judges: int = 1,
    channels: int = 1,
) -> dict:
    """The domain-adaptation protocol: judges trained on the translations (with their sources'
    labels) read real target_test images; trained on the untranslated sources instead, they
    give the baseline that translation must beat."""
    test = labelled_images(target_test, channels)
    training_sets = {"transfer_accuracy_on_real_target_test": translated}
    if sources is not None:
        training_sets["transfer_accuracy_from_untranslated_sources"] = sources
    result: dict = {"transfer_classifier": f"{describe_judges(judges, channels, epochs)}, tested on {target_test}"}
    for key, folder in training_sets.items():
        result |= judged_accuracies(*labelled_images(folder, channels), {key: test}, epochs, judges)
    return result
