"""Labels of the JoliGEN dataset formats: class folders, bbox files and mask PNGs.

Layouts, per domain folder (trainA, trainB, ...):
- class: `<class name>/...images` — classes are the sorted folder names, the same in A and B;
- bbox:  `paths.txt` with lines `image_path bbox_path` (relative to the domain folder); each
  bbox file has lines `cls minx miny maxx maxy` in pixels, cls >= 1 (0 is background);
- mask:  `paths.txt` with lines `image_path mask_path`; masks are PNGs of labels 0..n-1.
Problems raise DataError naming the file and line, or, with skip_bad, are returned as
warnings and the sample is left out.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from i2i.errors import DataError
from i2i.io import image_size, list_images, read_text_lines

Box = tuple[int, float, float, float, float]


@dataclass
class LabeledSample:
    image: Path
    label: Path | int  # bbox/mask file, or class index


@dataclass
class LabelScan:
    samples: list[LabeledSample]
    skipped: list[str] = field(default_factory=list)  # one message per sample left out


class LabelProblem(ValueError):
    """A defect in one label file or line; becomes a DataError or a skip warning."""


def class_names(domain: Path) -> list[str]:
    if not domain.is_dir():
        raise DataError(f"{domain}: folder missing; class datasets need trainA/<class>/ and trainB/<class>/")
    names = sorted(p.name for p in domain.iterdir() if p.is_dir() and list_images(p))
    if len(names) < 2:
        raise DataError(
            f"{domain}: found {len(names)} class folder(s) with images; class mode needs at least 2 (<class>/image.png)"
        )
    return names


def scan_classes(domain: Path, names: list[str]) -> LabelScan:
    found = class_names(domain)
    if found != names:
        raise DataError(
            f"{domain}: class folders {found} differ from {names} of the other domain; use the same class names"
        )
    return LabelScan(
        [LabeledSample(path, index) for index, name in enumerate(names) for path in list_images(domain / name)]
    )


def parse_box_line(line: str) -> Box:
    fields = line.split()
    if len(fields) != 5:
        raise LabelProblem(f"expected 'cls minx miny maxx maxy', got {len(fields)} field(s)")
    try:
        cls = int(fields[0])
        x0, y0, x1, y1 = (float(v) for v in fields[1:])
    except ValueError:
        raise LabelProblem("class must be an integer and coordinates numbers") from None
    if not all(np.isfinite(v) for v in (x0, y0, x1, y1)):
        raise LabelProblem("coordinates must be finite numbers")
    if cls < 1:
        raise LabelProblem(f"class {cls} must be >= 1 (0 is the background)")
    if min(x0, y0, x1, y1) < 0:
        raise LabelProblem("negative coordinate")
    if x1 <= x0 or y1 <= y0:
        raise LabelProblem("inverted or empty box (max <= min)")
    return cls, x0, y0, x1, y1


def read_boxes(path: Path, width: int, height: int, n_classes: int) -> list[Box]:
    """Boxes of one bbox file, clipped to the image; LabelProblem names the line."""
    boxes = []
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise LabelProblem(f"{path}: unreadable ({exc.__class__.__name__})") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            cls, x0, y0, x1, y1 = parse_box_line(line)
            if x0 >= width or y0 >= height:
                raise LabelProblem(f"box starts outside the {width}x{height} image")
            if cls >= n_classes:
                raise LabelProblem(f"class {cls} >= the {n_classes} classes of the dataset (data.semantic_nc)")
        except LabelProblem as problem:
            raise LabelProblem(f"{path}:{number}: {problem}") from None
        boxes.append((cls, x0, y0, min(x1, width), min(y1, height)))
    return boxes


def rasterize(boxes: list[Box], height: int, width: int) -> np.ndarray:
    """uint8 label mask; later boxes paint over earlier ones; pixel centres inside a box take its class."""
    mask = np.zeros((height, width), np.uint8)
    for cls, x0, y0, x1, y1 in boxes:
        mask[int(np.ceil(y0 - 0.5)) : int(np.ceil(y1 - 0.5)), int(np.ceil(x0 - 0.5)) : int(np.ceil(x1 - 0.5))] = cls
    return mask


def read_mask(path: Path, width: int, height: int, n_classes: int) -> np.ndarray:
    data = np.fromfile(path, np.uint8) if path.is_file() else np.zeros(0, np.uint8)
    try:  # the header first: a mask declaring another size than its image (a bomb) is never decoded
        header = image_size(path, sys.maxsize, data.tobytes()) if data.size else None
    except DataError:
        header = None
    if header is not None and header != (width, height):
        raise LabelProblem(f"{path}: mask is {header[0]}x{header[1]}, its image {width}x{height}")
    mask = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if header is not None else None
    if mask is None:
        raise LabelProblem(f"{path}: not a readable mask image")
    if mask.ndim != 2:
        raise LabelProblem(f"{path}: masks must be single-channel label images, got {mask.shape[2]} channels")
    if mask.shape != (height, width):
        raise LabelProblem(f"{path}: mask is {mask.shape[1]}x{mask.shape[0]}, its image {width}x{height}")
    top = int(mask.max())
    if top >= n_classes:
        raise LabelProblem(f"{path}: label {top} >= the {n_classes} classes of the dataset (data.semantic_nc)")
    return mask.astype(np.uint8)


def parse_paths_line(line: str) -> tuple[str, str]:
    fields = line.split()
    if len(fields) != 2:
        raise LabelProblem(f"expected 'image_path label_path', got {len(fields)} field(s)")
    return fields[0], fields[1]


def scan_paths_file(domain: Path, mode: str, n_classes: int, skip_bad: bool) -> LabelScan:
    """Check every line of domain/paths.txt and its files (image size, labels, boxes)."""
    listing = domain / "paths.txt"
    if not listing.is_file():
        raise DataError(f"{listing}: missing; {mode} datasets list 'image_path {mode}_path' pairs in paths.txt")
    scan = LabelScan([])
    for number, line in enumerate(read_text_lines(listing), start=1):
        if not line.strip():
            continue
        try:
            image_name, label_name = parse_paths_line(line)
            image, label = domain / image_name, domain / label_name
            for path in (image, label):
                if not path.is_file():
                    raise LabelProblem(f"{path} does not exist")
            try:
                width, height = image_size(image)
            except DataError as error:
                raise LabelProblem(str(error)) from None
            if mode == "bbox":
                read_boxes(label, width, height, n_classes)
            else:
                read_mask(label, width, height, n_classes)
        except LabelProblem as problem:
            message = f"{listing}:{number}: {problem}"
            if not skip_bad:
                raise DataError(f"{message}; fix it, or pass --skip-bad to leave such samples out") from None
            scan.skipped.append(message)
            continue
        scan.samples.append(LabeledSample(image, label))
    if not scan.samples:
        raise DataError(f"{listing}: no usable samples")
    return scan


def load_label(sample: LabeledSample, mode: str, width: int, height: int, n_classes: int) -> np.ndarray:
    """The label of a checked sample as an HxW uint8 mask."""
    if mode == "bbox":
        return rasterize(read_boxes(sample.label, width, height, n_classes), height, width)
    return read_mask(sample.label, width, height, n_classes)
