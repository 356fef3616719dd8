"""Pictures for people: labelled image grids and loss-curve plots, written as PNG."""

from __future__ import annotations

import io
import json
from pathlib import Path

import cv2
import numpy as np
import torch

from .image import to_channels, to_image_arrays
from .io import atomic_write_bytes, write_image


def tensor_to_uint8(images: torch.Tensor) -> np.ndarray:
    """float NCHW in [-1, 1] → uint8 NHWC with 3 channels (gray is repeated for display)."""
    return np.stack([to_channels(image, 3) for image in to_image_arrays(images.detach())])


def image_grid(rows: dict[str, np.ndarray], cell: int | None = None) -> np.ndarray:
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
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for axis, group, title in (
        (axes[0], generator, "generator losses"),
        (axes[1], discriminator, "discriminator losses"),
    ):
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
