"""How close image folders' colours are to a real folder's, with no learned network in the figure.

A discriminator on pretrained features can lower a Fréchet distance computed on related features
without making the images more like the target (issue 31): this is a check none of them can
flatter. Two figures per folder against REAL: the Fréchet distance of the per-image Lab means and
standard deviations (6 numbers an image: palette and contrast), and the Hellinger distance between
the pooled RGB histograms of the two folders (16 levels a channel; 0 = the same colours in the same
proportions, 1 = no colour in common).

    python -m i2i.benchmarks.colour REAL FOLDER [FOLDER ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from i2i.errors import DataError, UserError
from i2i.evaluation.metrics import feature_statistics, frechet_distance
from i2i.io import list_images, read_image

LEVELS = 16


def colour_statistics(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """(one row of Lab means and standard deviations per image, the folder's pooled RGB histogram
    as proportions of LEVELS³ bins)."""
    rows, histogram = [], np.zeros((LEVELS,) * 3)
    for path in list_images(folder):
        image = read_image(path, 3)
        lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).reshape(-1, 3).astype(np.float64)
        rows.append(np.concatenate([lab.mean(axis=0), lab.std(axis=0)]))
        bins = image.reshape(-1, 3) // (256 // LEVELS)
        np.add.at(histogram, tuple(bins.T), 1)
    if len(rows) < 2:
        raise DataError(f"{folder}: {len(rows)} image(s); a Fréchet distance needs at least 2, give a folder of images")
    return np.array(rows), histogram / histogram.sum()


def colour_distances(real: Path, folders: list[Path]) -> dict[str, dict[str, float]]:
    """{folder: {"lab_frechet_distance", "histogram_hellinger"}} of each folder against `real`."""
    real_rows, real_histogram = colour_statistics(real)
    result = {}
    for folder in folders:
        rows, histogram = colour_statistics(folder)
        hellinger = np.sqrt(0.5 * ((np.sqrt(histogram) - np.sqrt(real_histogram)) ** 2).sum())
        result[str(folder)] = {
            "lab_frechet_distance": frechet_distance(*feature_statistics(rows), *feature_statistics(real_rows)),
            "histogram_hellinger": float(hellinger),
        }
    return result


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("real", type=Path, help="the real target images")
    parser.add_argument("folders", type=Path, nargs="+", help="translations (and untranslated sources) to score")
    args = parser.parse_args(argv)
    try:
        result = colour_distances(args.real, args.folders)
    except UserError as error:
        parser.exit(2, f"error: {error}\n")
    for folder, figures in result.items():
        print(
            f"{folder}: Lab Fréchet distance {figures['lab_frechet_distance']:.1f}, "
            f"histogram Hellinger {figures['histogram_hellinger']:.3f}"
        )
    return result


if __name__ == "__main__":
    main()
