"""An object-level translation benchmark with known masks: does a translation change what differs
between the domains and leave the rest alone?

Domain A: MNIST digits drawn onto random crops of photos; domain B: USPS digits drawn onto other
crops of the same photos. The domains differ only in the digits' handwriting, so an ideal
translator redraws the digit and copies the photo. Measured on the held-out split: the mean
change inside the digit's square and outside it (grey levels; no feature network can flatter it),
the digit's label as read by classifiers trained on B's digit squares, FD/KID to B, a contact sheet.

    python -m i2i.benchmarks.objects prepare OUT --digits mnist2usps --photos photo2monet
    python -m i2i.benchmarks.objects measure RUN OUT --out DIR
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from i2i.evaluation.evaluate import evaluate_folders
from i2i.evaluation.label_preservation import label_preservation
from i2i.evaluation.visualize import contact_sheet
from i2i.io import atomic_write_bytes, list_images, read_image, write_image
from i2i.runtime.generate import generate_dataset
from i2i.runtime.predictor import load

SIZE, DIGIT = 128, 48
# Images per domain: enough for a short run, few enough to prepare in seconds.
COUNTS = {"train": 1000, "test": 200}


def composite(photo: np.ndarray, digit: np.ndarray, top: int, left: int) -> np.ndarray:
    """`digit` (grey, white on black) drawn in white onto `photo` at (top, left), DIGIT × DIGIT."""
    alpha = cv2.resize(digit, (DIGIT, DIGIT), interpolation=cv2.INTER_LINEAR).astype(np.float32)[..., None] / 255
    out = photo.astype(np.float32)
    window = out[top : top + DIGIT, left : left + DIGIT]
    out[top : top + DIGIT, left : left + DIGIT] = window * (1 - alpha) + 255 * alpha
    return np.rint(out).astype(np.uint8)


def prepare(digits: Path, photos: Path, out: Path, seed: int = 0, counts: dict[str, int] = COUNTS) -> None:
    """Write OUT/{train,test}{A,B}/<index>_<label>.png (SIZE² RGB) and OUT/{split}{A,B}_masks/
    (255 on the digit's square). A and B draw their backgrounds from alternate photos of the split."""
    rng = np.random.default_rng(seed)
    for split, count in counts.items():
        backgrounds = list_images(photos / f"{split}A")
        for index, domain in enumerate("AB"):
            sources = list_images(digits / f"{split}{domain}")[:count]
            own = backgrounds[index::2]
            for number, source in enumerate(sources):
                photo = read_image(own[rng.integers(len(own))], 3)
                y, x = (rng.integers(dim - SIZE + 1) for dim in photo.shape[:2])
                photo = photo[y : y + SIZE, x : x + SIZE]
                top, left = (int(v) for v in rng.integers(SIZE - DIGIT + 1, size=2))
                name = f"{number:05d}_{source.stem.rsplit('_', 1)[-1]}.png"
                mask = np.zeros((SIZE, SIZE), np.uint8)
                mask[top : top + DIGIT, left : left + DIGIT] = 255
                write_image(out / f"{split}{domain}" / name, composite(photo, read_image(source, 1)[..., 0], top, left))
                write_image(out / f"{split}{domain}_masks" / name, mask)


def change_inside_outside(sources: Path, outputs: Path, masks: Path) -> dict[str, float]:
    """Mean absolute change (grey levels, RGB) from each source to its output, inside and outside
    its mask, over all pixels of the folder."""
    inside, outside, n_in, n_out = 0.0, 0.0, 0, 0
    for source in list_images(sources):
        mask = read_image(masks / source.name, 1)[..., 0] > 127
        output = next(outputs.glob(f"{source.stem}.*"))
        change = np.abs(read_image(output, 3).astype(np.float64) - read_image(source, 3)).mean(axis=2)
        inside, n_in = inside + change[mask].sum(), n_in + int(mask.sum())
        outside, n_out = outside + change[~mask].sum(), n_out + int((~mask).sum())
    return {
        "change_inside": inside / n_in,
        "change_outside": outside / n_out,
        "ratio": inside / n_in / (outside / n_out),
    }


def digit_squares(images: Path, masks: Path, out: Path) -> Path:
    """Each image's masked square, cut out under the same name (for the digit classifiers)."""
    for path in list_images(images):
        mask = read_image(masks / f"{path.stem}.png", 1)[..., 0] > 127
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        square = read_image(path, 3)[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        write_image(out / f"{path.stem}.png", square)
    return out


def measure(run: Path, data: Path, out: Path, backend: str = "auto") -> dict:
    translated = out / "translated"
    generate_dataset(load(run, backend=backend), data / "testA", translated)
    squares = out / "squares"
    for folder, masks in (
        ("trainB", "trainB_masks"),
        ("testB", "testB_masks"),
        ("testA", "testA_masks"),
    ):
        digit_squares(data / folder, data / masks, squares / folder)
    digit_squares(translated, data / "testA_masks", squares / "translated")
    result = {
        "run": str(run),
        **change_inside_outside(data / "testA", translated, data / "testA_masks"),
        **label_preservation(
            squares / "translated", squares / "trainB", squares / "testB", squares / "testA", channels=3
        ),
        **evaluate_folders(translated, data / "testB", sources=data / "testA"),
    }
    atomic_write_bytes(out / "objects.json", (json.dumps(result, indent=2) + "\n").encode())
    write_image(out / "contact_sheet.png", contact_sheet(translated, data / "testA"))
    return result


def main(argv: list[str] | None = None) -> dict | None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("prepare", help="Build the dataset.")
    make.add_argument("out", type=Path)
    make.add_argument("--digits", type=Path, required=True, help="mnist2usps (trainA/testA MNIST, trainB/testB USPS).")
    make.add_argument("--photos", type=Path, required=True, help="photo2monet (backgrounds from trainA/testA).")
    score = commands.add_parser("measure", help="Translate testA with RUN and score it.")
    score.add_argument("run", type=Path)
    score.add_argument("data", type=Path)
    score.add_argument("--out", type=Path, required=True)
    score.add_argument("--backend", default="auto")
    args = parser.parse_args(argv)
    if args.command == "prepare":
        prepare(args.digits, args.photos, args.out)
        return None
    result = measure(args.run, args.data, args.out, args.backend)
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
