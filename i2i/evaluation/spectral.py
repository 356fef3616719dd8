"""Upsampling-lattice artifact score: spectral power of images at the periods a generator's
stride-2 upsampling layers leave (2 and 4 px), relative to the spectrum around them.

Two stride-2 upsamplings (×2 then ×2) repeat their kernel footprint every 4 output pixels, so a
lattice shows as peaks of the 2-D power spectrum at every frequency (a/4, b/4) cycles per pixel:
along x, y and the diagonals, with the harmonics of 1/4 included. The peaks at (a/2, b/2) are the
period-2 lattice of the last layer alone; the other twelve are period 4. Each peak's power is
divided by the median power of the bins around it, so smooth image content, whose spectrum
varies slowly, scores about 1 and a lattice scores far above. A period's ratio is the mean over
its peaks (one strong peak is enough to show a lattice); an image's score is its strongest
period's. Compare scores of images of similar size, in units of real target-domain images
(`artifact_summary`): real images are not all at 1 (JPEG's 8-px blocks and periodic textures put
power at the same frequencies).
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from i2i.errors import DataError
from i2i.image import to_channels

PERIODS = (2, 4)
# Welch's method: power is averaged over half-overlapping tiles, which steadies the spectrum of
# large images and keeps the score comparable across image sizes. A lattice's peak grows with
# the square of a tile's area, broadband content only with the area, so the tile is as long as
# 128 px images allow (measured on photo2monet: 128 px tiles separate a 1.5-grey-level period-4
# lattice from clean photos better than 64 px ones); every lattice frequency is an exact bin.
TILE = 128
SMALLEST_TILE = 16
# A Hann window spreads an on-bin sinusoid over the bin and its 8 neighbours; the reference is
# the ring of bins beyond them, up to 3 bins away (40 bins).
LEAKAGE_BINS = 1
NEIGHBOURHOOD_BINS = 3


def power_spectrum(image: np.ndarray) -> np.ndarray:
    """Welch power spectrum (tile × tile, unshifted) of a uint8 HWC or HW image, Hann-windowed,
    averaged over half-overlapping tiles and summed over the colour channels."""
    # Per channel, not grey: the lattices of real generators are often coloured (magenta/green
    # fringes), which a luminance weighting largely cancels; power adds over the channels.
    pixels = to_channels(image if image.ndim == 3 else image[:, :, None], 3).astype(np.float64)
    height, width = pixels.shape[:2]
    tile = min(TILE, min(height, width) // 4 * 4)
    if tile < SMALLEST_TILE:
        raise DataError(f"a {width}×{height} image is too small for the artifact score (at least 16×16 pixels)")
    step = tile // 2
    tiles = np.lib.stride_tricks.sliding_window_view(pixels, (tile, tile), axis=(0, 1))[::step, ::step]
    # The periodic Hann window (not numpy's symmetric np.hanning): its transform is exactly three
    # bins wide, so an on-bin peak leaks only into its 8 neighbours.
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(tile) / tile)
    window = np.outer(hann, hann)
    total = np.zeros((tile, tile))
    for row in tiles:  # one row of tiles at a time: a 12-megapixel photo holds thousands of tiles
        total += (np.abs(np.fft.fft2(row * window, axes=(-2, -1))) ** 2).sum(axis=(0, 1))
    return total / (tiles.shape[0] * tiles.shape[1])


def _lattice_points(tile: int, period: int) -> list[tuple[int, int]]:
    """Frequency bins (row, column) of a period-`period` lattice that no shorter period has."""
    bins = range(0, tile, tile // 4)
    points = [(u, v) for u in bins for v in bins if (u, v) != (0, 0)]
    shorter = [(u, v) for u, v in points if u % (tile // 2) == 0 and v % (tile // 2) == 0]
    return shorter if period == 2 else [p for p in points if p not in shorter]


def _ring_offsets() -> np.ndarray:
    span = np.arange(-NEIGHBOURHOOD_BINS, NEIGHBOURHOOD_BINS + 1)
    du, dv = np.meshgrid(span, span, indexing="ij")
    ring = np.maximum(abs(du), abs(dv)) > LEAKAGE_BINS
    return np.stack([du[ring], dv[ring]], axis=1)


def lattice_ratios(image: np.ndarray) -> dict[int, float]:
    """{period: mean over that period's lattice frequencies of peak power / median power of the
    ring around the peak}; about 1 without a lattice."""
    spectrum = power_spectrum(image)
    tile = len(spectrum)
    ring = _ring_offsets()
    # No uint8 image is smoother than its rounding: white noise of variance 1/12 grey level², whose
    # windowed power is (1/12)·(Σw²)² per channel with Σw² = 3·tile/8. Flat regions and flat images
    # then score their lattice against that floor instead of dividing by (almost) zero.
    floor = 3 / 12 * (3 * tile / 8) ** 2
    ratios = {}
    for period in PERIODS:
        peaks = [
            spectrum[u, v] / max(np.median(spectrum[(u + ring[:, 0]) % tile, (v + ring[:, 1]) % tile]), floor)
            for u, v in _lattice_points(tile, period)
        ]
        ratios[period] = float(np.mean(peaks))
    return ratios


def artifact_score(image: np.ndarray) -> tuple[float, int]:
    """(score, period): the image's strongest lattice ratio and the period it is at."""
    ratios = lattice_ratios(image)
    period = max(ratios, key=ratios.get)
    return ratios[period], period


def lattice_ratio_table(images: Iterable[np.ndarray]) -> np.ndarray:
    """One row of `lattice_ratios` per image, one column per period of PERIODS."""
    return np.array([list(lattice_ratios(image).values()) for image in images]).reshape(-1, len(PERIODS))


def artifact_summary(generated: np.ndarray, real: np.ndarray, sources: np.ndarray | None = None) -> dict:
    """The artifact figures of an evaluation, from `lattice_ratio_table`s. Scores are in units of
    the median score of the real target-domain images (1.0 = like real images): the median over
    the translations, the 10th-90th percentile range of the real images themselves and, when
    given, the median of the untranslated sources."""
    real_scores = real.max(axis=1)  # an image's score is its strongest period's ratio (artifact_score)
    unit = np.median(real_scores)
    result = {
        "artifact_score": float(np.median(generated.max(axis=1)) / unit),
        "artifact_period": PERIODS[int(np.argmax(np.median(generated, axis=0)))],
        "artifact_score_real_range": [float(q) for q in np.percentile(real_scores / unit, (10, 90))],
    }
    if sources is not None:
        result["sources_artifact_score"] = float(np.median(sources.max(axis=1)) / unit)
    return result
