"""Pictures for people: labelled image grids, contact sheets of translations and loss-curve
plots, written as PNG."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch

from i2i.errors import ConfigError, DataError
from i2i.image import to_channels, to_image_arrays
from i2i.io import atomic_write_bytes, list_images, read_image, write_image

SHEET_IMAGES = 8
SHEET_ZOOM = 4


def tensor_to_uint8(images: torch.Tensor) -> np.ndarray:
    """float NCHW in [-1, 1] → uint8 NHWC with 3 channels (gray is repeated for display)."""
    return np.stack([to_channels(image, 3) for image in to_image_arrays(images.detach())])


def image_grid(rows: dict[str, Sequence[np.ndarray]], cell: int | None = None) -> np.ndarray:
    """One labelled row per entry; each entry is uint8 NHWC (3 channels). Cells are resized
    to `cell` pixels (default: the first image's height, at least 64 so labels fit)."""
    first = next(iter(rows.values()))
    cell = cell or max(64, first.shape[1])
    label_width = 8 * max(len(name) for name in rows) + 12
    lines = []
    for name, images in rows.items():
        label = np.full((cell, label_width, 3), 255, np.uint8)
        cv2.putText(label, name, (4, cell // 2 + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        cells = [
            cv2.resize(np.ascontiguousarray(image), (cell, cell), interpolation=cv2.INTER_NEAREST) for image in images
        ]
        lines.append(np.concatenate([label, *cells], axis=1))
    return np.concatenate(lines, axis=0)


def save_image_grid(path: Path, rows: dict[str, np.ndarray], cell: int | None = None) -> np.ndarray:
    grid = image_grid(rows, cell)
    write_image(path, grid)
    return grid


def centre_crop_zoomed(image: np.ndarray, side: int, zoom: int = SHEET_ZOOM) -> np.ndarray:
    """The central side × side pixels of `image` (fewer if it is smaller), each repeated zoom × zoom
    times: nearest neighbour, so a lattice of single pixels stays visible instead of blurred away."""
    height, width = image.shape[:2]
    side_y, side_x = min(side, height), min(side, width)
    top, left = (height - side_y) // 2, (width - side_x) // 2
    crop = np.ascontiguousarray(image[top : top + side_y, left : left + side_x])
    return cv2.resize(crop, (side_x * zoom, side_y * zoom), interpolation=cv2.INTER_NEAREST)


def paired_sources(generated: Path, translations: list[Path], sources: Path) -> list[Path]:
    """The input of each translation: the file under `sources` with the same relative path up to
    the extension (how `i2i generate` names its outputs)."""
    by_name = {path.relative_to(sources).with_suffix(""): path for path in list_images(sources)}
    pairs = []
    for path in translations:
        name = path.relative_to(generated).with_suffix("")
        if name not in by_name:
            raise DataError(
                f"{path}: no input named {name}.* under {sources}; give --sources the folder it was translated from"
            )
        pairs.append(by_name[name])
    return pairs


def contact_sheet(generated: Path, sources: Path | None = None, count: int = SHEET_IMAGES) -> np.ndarray:
    """A labelled sheet of the first `count` translations by name: their inputs (when `sources` is
    given), the translations, and the centre of each zoomed SHEET_ZOOM× (see centre_crop_zoomed)."""
    paths = list_images(generated)[:count]
    if not paths:
        raise DataError(f"{generated}: no images to put on a contact sheet")
    translations = [read_image(path, 3) for path in paths]
    cell = max(64, translations[0].shape[0]) // SHEET_ZOOM * SHEET_ZOOM
    rows = {} if sources is None else {"input": [read_image(p, 3) for p in paired_sources(generated, paths, sources)]}
    rows["translation"] = translations
    rows[f"centre x{SHEET_ZOOM}"] = [centre_crop_zoomed(image, cell // SHEET_ZOOM) for image in translations]
    return image_grid(rows, cell)


def check_sheet_path(path: Path, read_folders: list[Path]) -> None:
    """ConfigError unless `path` is a .png outside every folder the evaluation reads (a sheet there
    would be read as one more image by the next evaluation)."""
    if Path(path).suffix.lower() != ".png":
        raise ConfigError(
            f"{path}: a contact sheet is written as PNG (lossless, so a lattice stays visible); name it .png"
        )
    for folder in read_folders:
        if Path(path).resolve().is_relative_to(Path(folder).resolve()):
            raise ConfigError(
                f"{path}: inside the evaluated folder {folder}, where it would count as an image; write it elsewhere"
            )


def plot_loss_curves(log_path: Path, png_path: Path) -> None:
    """Plot every loss in a losses.jsonl log against the step, one panel per loss family."""
    plt = pyplot()
    records = [json.loads(line) for line in Path(log_path).read_text().splitlines() if line.strip()]
    if not records:
        return
    names = [key for key in records[0] if key not in ("step", "lr", "time")]
    generator = [n for n in names if not n.startswith("D")]
    discriminator = [n for n in names if n.startswith("D")]
    steps = [r["step"] for r in records]
    panels = [
        (group, title)
        for group, title in ((generator, "generator losses"), (discriminator, "discriminator losses"))
        if group
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
    for axis, (group, title) in zip(axes[0], panels):
        for name in group:
            axis.plot(steps, [r[name] for r in records], label=name)
        axis.set_title(title)
        axis.set_xlabel("step")
        axis.legend(fontsize=8)
        axis.grid(alpha=0.3)
    save_figure(fig, png_path)


def plot_latency(results: list[dict], png_path: Path) -> None:
    """Grouped bars: median latency per backend, one group per (size, batch) configuration."""
    plt = pyplot()
    backends = [row["backend"] for row in results[0]["rows"]]
    fig, axis = plt.subplots(figsize=(10, 4))
    width = 0.8 / len(backends)
    for b, backend in enumerate(backends):
        values = [next((r["median_ms"] for r in res["rows"] if r["backend"] == backend), 0) for res in results]
        axis.bar([i + b * width for i in range(len(results))], values, width, label=backend)
    axis.set_xticks([i + 0.4 - width / 2 for i in range(len(results))])
    axis.set_xticklabels([f"{r['input'][0]}x{r['input'][2]}²" for r in results])
    axis.set_ylabel("median latency (ms)")
    axis.set_title(results[0]["generator"])
    axis.legend(fontsize=7)
    save_figure(fig, png_path)


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    return plt


def save_figure(fig, png_path: Path) -> None:
    """Write a figure as PNG atomically and release it."""
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    pyplot().close(fig)
    atomic_write_bytes(png_path, buffer.getvalue())
