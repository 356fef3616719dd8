"""Translate a folder tree, list file or glob of images with a predictor: synthetic datasets.

- Output keeps each input's path relative to the input root (class folders stay class
  folders); a labelled dataset (a root with paths.txt, bbox or mask layout) gets its label
  files and paths.txt copied, so the result trains a detector or segmenter as it is.
- Decoding, inference and encoding overlap: images are decoded by a thread pool ahead of
  the model, and outputs are encoded and written by another while the next chunk runs.
- Every output is written atomically and recorded in a JSON-lines manifest as it lands;
  `resume` skips outputs that exist; `shard=(i, n)` takes every n-th input from the i-th,
  so n processes or machines split the work deterministically, each with its own manifest.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from i2i.errors import DataError
from i2i.io import IMAGE_EXTENSIONS, atomic_write_bytes, list_images, read_image, write_image

from .predictor import Predictor

MANIFEST = "manifest.jsonl"


@dataclass
class GenerateReport:
    written: int = 0
    skipped_existing: int = 0
    failed: list[str] = field(default_factory=list)
    seconds: float = 0.0
    manifest: Path | None = None

    @property
    def images_per_second(self) -> float:
        return self.written / self.seconds if self.seconds else 0.0


@dataclass
class InputSet:
    root: Path
    images: list[Path]
    label_files: list[Path] = field(default_factory=list)  # copied as they are (bbox/mask datasets)


def collect_inputs(source: str | Path) -> InputSet:
    """A folder (recursive; a paths.txt in it selects images and their label files), a list
    file of image paths (relative to the list's folder), or a glob pattern."""
    text = str(source)
    path = Path(text)
    if path.is_dir():
        listing = path / "paths.txt"
        if listing.is_file():
            return _labelled_inputs(path, listing)
        images = list_images(path)
    elif path.is_file() and path.suffix.lower() in (".txt", ".lst"):
        images = []
        for line in path.read_text().splitlines():
            if line.strip():
                entry = Path(line.strip())
                images.append(entry if entry.is_absolute() else path.parent / entry)
        missing = [p for p in images if not p.is_file()]
        if missing:
            raise DataError(f"{path}: {len(missing)} listed file(s) do not exist, first {missing[0]}; fix the list")
    elif any(ch in text for ch in "*?["):
        images = sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).suffix.lower() in IMAGE_EXTENSIONS)
    else:
        raise DataError(f"{source}: no such folder, list file (.txt) or glob pattern")
    if not images:
        raise DataError(f"{source}: no images found; pass a folder, list file or glob of png/jpg/... images")
    if path.is_dir():
        return InputSet(path, images)
    images = [p.resolve() for p in images]
    return InputSet(Path(os.path.commonpath([p.parent for p in images])), images)


def _labelled_inputs(root: Path, listing: Path) -> InputSet:
    images, labels = [], []
    for number, line in enumerate(listing.read_text().splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2:
            raise DataError(f"{listing}:{number}: expected 'image_path label_path'")
        images.append(root / fields[0])
        labels.append(root / fields[1])
    labels.append(listing)
    return InputSet(root, images, labels)


def generate_dataset(
    predictor: Predictor,
    source: str | Path,
    output_dir: Path,
    model_name: str = "",
    resume: bool = False,
    strict: bool = False,
    shard: tuple[int, int] = (0, 1),
    chunk: int = 64,
    workers: int = 2,
) -> GenerateReport:
    """Translate every input image (see module doc); returns counts, failures and timing."""
    inputs = collect_inputs(source)
    output_dir = Path(output_dir)
    check_output_dir(inputs.root, output_dir)
    index, count = shard
    if not 0 <= index < count:
        raise DataError(f"shard {index}/{count}: the index must be in 0..{count - 1}")
    todo = inputs.images[index::count]
    report = GenerateReport(manifest=output_dir / (MANIFEST if count == 1 else f"manifest.shard-{index}-of-{count}.jsonl"))
    targets = {path: output_path(inputs.root, path, output_dir) for path in todo}
    if resume:
        done = [p for p in todo if targets[p].is_file()]
        report.skipped_existing = len(done)
        todo = [p for p in todo if not targets[p].is_file()]
    output_dir.mkdir(parents=True, exist_ok=True)
    if index == 0:
        copy_labels(inputs, output_dir)
    classes = classes_from_folders(predictor, inputs.root, todo) if predictor.class_conditional else None

    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as decoders, ThreadPoolExecutor(workers) as encoders, \
            open(report.manifest, "a") as manifest, \
            tqdm(total=len(todo), unit="img", desc=f"generate {index + 1}/{count}" if count > 1 else "generate",
                 dynamic_ncols=True) as progress:

        def decode(path: Path) -> np.ndarray | None:
            try:
                return read_image(path, predictor.input_channels)
            except DataError as error:
                if strict:
                    raise
                report.failed.append(str(error))
                manifest.write(json.dumps(failure_record(path, error)) + "\n")
                return None

        def encode(path: Path, image: np.ndarray, seconds: float) -> None:
            record = write_output(path, targets[path], image, model_name, predictor.backend, seconds)
            manifest.write(json.dumps(record) + "\n")
            manifest.flush()

        def finish(writes: list, done: int) -> None:
            for write in writes:
                write.result()  # surfaces write errors (disk full, permissions) with the file named
            report.written += len(writes)
            progress.update(done)
            progress.set_postfix(failed=len(report.failed), refresh=False)

        chunks = [todo[s:s + chunk] for s in range(0, len(todo), chunk)]
        chunk_classes = [classes[s:s + chunk] for s in range(0, len(todo), chunk)] if classes else None
        pending_decode = decoders.map(decode, chunks[0]) if chunks else iter(())
        previous: tuple[list, int] = ([], 0)
        for number, paths in enumerate(chunks):
            decoded = list(pending_decode)
            if number + 1 < len(chunks):  # decode the next chunk while this one runs
                pending_decode = decoders.map(decode, chunks[number + 1])
            usable = [k for k, image in enumerate(decoded) if image is not None]
            tick = time.perf_counter()
            outputs = predictor([decoded[k] for k in usable],
                                [chunk_classes[number][k] for k in usable] if chunk_classes else None) if usable else []
            per_image = (time.perf_counter() - tick) / max(1, len(usable))
            finish(*previous)  # the last chunk's writes ran while this chunk was inferred
            previous = ([encoders.submit(encode, paths[k], output, per_image) for k, output in zip(usable, outputs)],
                        len(paths))
        finish(*previous)
    report.seconds = time.perf_counter() - started
    for message in report.failed:
        tqdm.write(f"skipped: {message}")
    return report


def check_output_dir(input_root: Path, output_dir: Path) -> None:
    if output_dir.resolve().is_relative_to(input_root.resolve()):
        raise DataError(f"{output_dir}: output folder is inside the input folder {input_root}; choose another output")


def output_path(input_root: Path, path: Path, output_dir: Path) -> Path:
    """Where an input's translation goes: its path relative to the input root, under output_dir."""
    return output_dir / path.relative_to(input_root)


def write_output(path: Path | str, target: Path, image: np.ndarray, model_name: str, backend: str,
                 seconds: float) -> dict:
    """Write one translation atomically; returns its manifest record."""
    encoded = write_image(target, image)  # hashed from memory, not read back from disk
    return {"input": str(path), "output": str(target), "sha256": hashlib.sha256(encoded).hexdigest(),
            "model": model_name, "backend": backend, "seconds": round(seconds, 4)}


def failure_record(path: Path | str, error: Exception) -> dict:
    """The manifest line of an input that could not be translated, with the reason."""
    return {"input": str(path), "failed": str(error)}


def recorded_outputs(manifest: Path) -> set[str]:
    """Outputs the manifest lists as written; a line cut short by a kill is ignored."""
    outputs = set()
    if manifest.is_file():
        for line in manifest.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if "sha256" in record:
                outputs.add(record["output"])
    return outputs


def copy_labels(inputs: InputSet, output_dir: Path) -> None:
    for label in inputs.label_files:
        target = output_dir / label.relative_to(inputs.root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(label, target)


def merge_manifests(output_dir: Path) -> Path:
    """Merge the per-shard manifests of `output_dir` into one manifest.jsonl, sorted by input."""
    records = []
    for part in sorted(Path(output_dir).glob("manifest.shard-*.jsonl")):
        records += [json.loads(line) for line in part.read_text().splitlines() if line.strip()]
    if not records:
        raise DataError(f"{output_dir}: no shard manifests (manifest.shard-*.jsonl) to merge")
    records.sort(key=lambda r: r["input"])
    target = Path(output_dir) / MANIFEST
    atomic_write_bytes(target, "".join(json.dumps(r) + "\n" for r in records).encode())
    return target


def classes_from_folders(predictor: Predictor, input_dir: Path, paths: list[Path]) -> list[int]:
    """Class-conditional models read each image's class from its top folder, as in training
    (INPUT/<class>/image.png), so the output tree keeps the labels."""
    names = predictor.config.data.class_names
    classes = []
    for path in paths:
        top = path.relative_to(input_dir).parts[0]
        if top not in names:
            raise DataError(f"{path}: this model is class-conditional; put images in INPUT/<class>/ with class one of "
                            f"{', '.join(names)}")
        classes.append(names.index(top))
    return classes
