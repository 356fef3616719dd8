"""One evaluation for every caller: translated images measured once (features under one extractor,
lattice spectra) and scored against a reference measured once (the real target images, optionally
the untranslated sources and the target's training images). `i2i eval`, training's periodic
evaluation, the export quality gate and the benchmarks all call `evaluate`, so that a figure means
the same wherever it is printed."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from itertools import islice
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from i2i.errors import DataError
from i2i.io import list_images, read_image

from .metrics import (
    MIFID_EPSILON,
    feature_statistics,
    frechet_distance,
    image_features,
    kernel_inception_distance,
    make_extractor,
    memorization_distance,
    mifid,
)
from .spectral import artifact_summary, lattice_ratio_table

Extract = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class Measured:
    """What an evaluation keeps of a set of images: one feature row per image, the images' median
    shorter side in pixels and, unless it was skipped, one lattice-ratio row per image (the
    artifact score's spectra)."""

    features: np.ndarray
    side: float
    lattice: np.ndarray | None = None

    @cached_property
    def statistics(self) -> tuple[np.ndarray, np.ndarray]:
        return feature_statistics(self.features)


def measure_images(
    images: Iterable[np.ndarray], extract: Extract, lattice: bool = True, batch_size: int = 32, progress=None
) -> Measured:
    """`Measured` of uint8 HWC images, read in chunks so that a folder never sits in memory whole."""
    images = iter(images)
    features, ratios, sides = [], [], []
    while chunk := list(islice(images, batch_size)):
        features.append(image_features(chunk, extract, batch_size))
        sides += [min(image.shape[:2]) for image in chunk]
        if lattice:
            ratios.append(lattice_ratio_table(chunk))
        if progress is not None:
            progress.update(len(chunk))
    if sum(len(f) for f in features) < 2:  # a covariance needs two samples
        raise DataError("Fréchet distance and KID need at least 2 images per set")
    return Measured(np.concatenate(features), float(np.median(sides)), np.concatenate(ratios) if lattice else None)


def measure_folder(folder: Path, extract: Extract, lattice: bool = True) -> Measured:
    """`Measured` of every image under `folder`, read in colour, in one pass."""
    paths = list_images(folder)
    if len(paths) < 2:
        raise DataError(f"{folder}: {len(paths)} image(s); Fréchet distance and KID need at least 2 per folder")
    with tqdm(total=len(paths), unit="img", desc=f"measuring {Path(folder).name}", dynamic_ncols=True) as progress:
        return measure_images((read_image(path, 3) for path in paths), extract, lattice, progress=progress)


@dataclass
class Reference:
    """What translations are compared with, measured once by the extractor named."""

    real: Measured
    extractor: str
    sources: Measured | None = None  # the untranslated inputs: the baseline a translation should beat
    training: Measured | None = None  # the target domain's training images: memorization, MiFID
    _baselines: dict[int, dict] = field(default_factory=dict, init=False, repr=False)

    def baseline(self, kid_subsets: int) -> dict:
        """The untranslated sources' FD and KID to the real images: the same for every translation
        scored against this reference (periodic evaluation scores many), so computed once."""
        cache = self._baselines
        if kid_subsets not in cache and self.sources is not None:
            sources, real = self.sources, self.real
            cache[kid_subsets] = {
                "sources": len(sources.features),
                "sources_frechet_distance": frechet_distance(*sources.statistics, *real.statistics),
                "sources_kid": kernel_inception_distance(sources.features, real.features, subsets=kid_subsets)[0],
            }
        return cache.get(kid_subsets, {})


def evaluate(generated: Measured, reference: Reference, kid_subsets: int = 100) -> dict:
    """Fréchet distance and KID of `generated` to the reference's real images, both sets' median
    shorter side (`resolution_warning` reads them), the same figures of the untranslated sources,
    the artifact score (where both sides have spectra) and the memorization distance with MiFID
    (where the training images are given)."""
    real = reference.real
    fd = frechet_distance(*generated.statistics, *real.statistics)
    kid, kid_std = kernel_inception_distance(generated.features, real.features, subsets=kid_subsets)
    result = {
        "extractor": reference.extractor,
        "generated": len(generated.features),
        "real": len(real.features),
        "frechet_distance": fd,
        "kid": kid,
        "kid_std": kid_std,
        "generated_side": generated.side,
        "real_side": real.side,
    }
    result |= reference.baseline(kid_subsets)
    if generated.lattice is not None and real.lattice is not None:
        sources = reference.sources
        result |= artifact_summary(generated.lattice, real.lattice, None if sources is None else sources.lattice)
    if reference.training is not None:
        distance = memorization_distance(generated.features, reference.training.features)
        result |= {"memorization_distance": distance, "mifid": mifid(fd, distance), "mifid_epsilon": MIFID_EPSILON}
    return result


def evaluate_folders(
    generated: Path,
    real: Path,
    training: Path | None = None,
    extractor: str = "efficientnet-lite0",
    device: str = "cpu",
    kid_subsets: int = 100,
    sources: Path | None = None,
) -> dict:
    """`evaluate` of the images under `generated` against those under `real` (and `sources`,
    `training` where given)."""
    extract = make_extractor(extractor, device)
    reference = Reference(
        measure_folder(real, extract),
        extractor,
        sources=None if sources is None else measure_folder(sources, extract),
        training=None if training is None else measure_folder(training, extract, lattice=False),
    )
    return evaluate(measure_folder(generated, extract), reference, kid_subsets)
