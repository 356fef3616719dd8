"""Translate a folder tree, list file or glob of images with a predictor: synthetic datasets.

- Output keeps each input's path relative to the input root (class folders stay class
  folders); a labelled dataset (a root with paths.txt, bbox or mask layout) gets its label
  files and paths.txt copied, so the result trains a detector or segmenter as it is.
- Decoding, inference and encoding overlap: images are decoded by a thread pool ahead of
  the model, and outputs are encoded and written by another while the next chunk runs.
- Every output is written atomically and recorded in a JSON-lines manifest as it lands;
  `resume` skips outputs that exist; `shard=(i, n)` takes every n-th input from the i-th,
  so n processes or machines split the work deterministically, each with its own manifest.
- Every output path stays inside the output folder (a list line with `..`, an absolute
  path or a symlink leading out is refused) and is none of the inputs; at each start the
  manifest is reconciled with the outputs on disk (a kill can land between an output's rename
  and its manifest line) and the temporaries of killed runs are removed. One job (or one
  process per shard) writes an output folder at a time.
"""

from __future__ import annotations

import fnmatch
import functools
import glob
import hashlib
import json
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from i2i.config import RunConfig
from i2i.errors import ConfigError, DataError
from i2i.io import (
    DEFAULT_MAX_PIXELS,
    IMAGE_EXTENSIONS,
    append_line,
    atomic_write_bytes,
    check_name_lengths,
    list_images,
    path_inside,
    read_image,
    read_json_lines,
    read_text_lines,
    writable_path,
    write_image,
)
from i2i.outputs import claim_folder, refuse_writing_inputs

from .pipeline import WriteBehind, read_ahead
from .predictor import Predictor

MANIFEST = "manifest.jsonl"


@dataclass
class GenerateReport:
    written: int = 0
    skipped_existing: int = 0
    failed: list[str] = field(default_factory=list)
    seconds: float = 0.0
    manifest: Path | None = None
    sides: tuple[int, int] = (0, 0)  # shortest and longest image side translated

    @property
    def images_per_second(self) -> float:
        return self.written / self.seconds if self.seconds else 0.0

    def describe(self) -> str:
        """One line: what was written, how fast, what was skipped, where the manifest is."""
        return (
            f"{self.written} images in {self.seconds:.1f} s ({self.images_per_second:.1f} images/s{self.context()}), "
            f"{self.skipped_existing} already there, {len(self.failed)} unreadable skipped; "
            f"manifest {self.manifest.name}"
        )

    def context(self) -> str:
        """What else the rate depended on (a Ray job's start-up and cluster)."""
        return ""

    def scale_note(self, config: RunConfig) -> str | None:
        """A note when the images are far larger or smaller than the crops the model was trained
        on: a fully convolutional generator keeps the pixel size of what it learned, so relative to
        the image its textures shrink or grow (an imported model's training size is unknown: no note)."""
        crop, (shortest, longest) = config.data.crop_size, self.sides
        if not config.data.dataroot or not longest or crop / 2 <= shortest and longest <= 2 * crop:
            return None
        sizes = f"{shortest} px" if shortest == longest else f"{shortest}–{longest} px"
        finer = "finer" if longest > 2 * crop else "coarser"
        return (
            f"note: the model was trained on images resized to {config.data.load_size} px ({crop} px crops); these "
            f"are {sizes}, translated at their own size, so its textures come out relatively {finer}; resize the "
            f"inputs to about {config.data.load_size} px for the training scale"
        )


@dataclass
class InputSet:
    root: Path
    images: list[Path]
    label_files: list[Path] = field(default_factory=list)  # copied as they are (bbox/mask datasets)
    folder: bool = True  # a folder read whole (not a list or a glob): no output may go inside it
    pattern: str = ""  # a glob's, absolute: no output may match it (its next reading would take it)


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
        for line in read_text_lines(path):
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
    pattern = "" if path.is_file() else os.path.abspath(text)
    return InputSet(Path(os.path.commonpath([p.parent for p in images])), images, folder=False, pattern=pattern)


def _labelled_inputs(root: Path, listing: Path) -> InputSet:
    images, labels = [], []
    for number, line in enumerate(read_text_lines(listing), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2:
            raise DataError(f"{listing}:{number}: expected 'image_path label_path'")
        for name in fields:
            relative = Path(os.path.normpath(name))
            if relative.is_absolute() or relative.parts[:1] == ("..",):
                raise DataError(
                    f"{listing}:{number}: {name} is outside the dataset folder {root}; "
                    "list paths relative to it, without '..'"
                )
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
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> GenerateReport:
    """Translate every input image (see module doc); returns counts, failures and timing.
    Images above `max_pixels` are refused from their header, before decoding."""
    if workers < 1:
        raise ConfigError(f"--workers {workers}: must be at least 1")
    inputs = collect_inputs(source)
    output_dir = Path(output_dir)
    check_output_dir(inputs, output_dir)
    index, count = shard
    if not 0 <= index < count:
        raise DataError(f"shard {index}/{count}: the index must be in 0..{count - 1}")
    todo = inputs.images[index::count]
    report = GenerateReport(manifest=manifest_path(output_dir, shard))
    targets = distinct_targets({path: output_path(inputs.root, path, output_dir) for path in inputs.images})
    refuse_overwriting(inputs, [*targets.values(), report.manifest], output_dir)
    with claim_folder(output_dir, None if count == 1 else f"shard {index} of {count}", nested=True):
        records = _reconcile_manifest(report.manifest, [targets[p] for p in todo], resume, predictor.input_channels)
        if resume:
            done = {p for p in todo if targets[p].is_file()}
            report.skipped_existing = len(done)
            todo = [p for p in todo if p not in done]
        atomic_write_bytes(report.manifest, "".join(json.dumps(r) + "\n" for r in records).encode())
        if index == 0:
            copy_labels(inputs, output_dir)
        classes = classes_from_folders(predictor, inputs.root, todo) if predictor.class_conditional else None

        started = time.perf_counter()
        manifest_lock = threading.Lock()
        with (
            ThreadPoolExecutor(workers) as decoders,
            WriteBehind(workers, "generate-encode") as writes,
            tqdm(
                total=len(todo),
                unit="img",
                desc=f"generate {index + 1}/{count}" if count > 1 else "generate",
                dynamic_ncols=True,
            ) as progress,
        ):

            def decode(path: Path) -> np.ndarray | None:
                try:
                    return read_image(path, predictor.input_channels, max_pixels)
                except DataError as error:
                    if strict:
                        raise
                    report.failed.append(str(error))
                    with manifest_lock:
                        append_line(report.manifest, json.dumps(failure_record(path, error)))
                    return None

            def encode(path: Path, image: np.ndarray, seconds: float) -> None:
                record = write_output(path, targets[path], image, model_name, predictor.backend, seconds)
                with manifest_lock:
                    append_line(report.manifest, json.dumps(record))

            def written(previous: int) -> None:  # a chunk is done when its outputs are written
                progress.update(previous)
                progress.set_postfix(failed=len(report.failed), refresh=False)

            spans = [range(s, min(s + chunk, len(todo))) for s in range(0, len(todo), chunk)]
            previous = 0
            for span, decoded in read_ahead(
                spans, lambda span: list(decoders.map(decode, todo[span.start : span.stop]))
            ):
                usable = [k for k, image in enumerate(decoded) if image is not None]
                for k in usable:
                    shortest, longest = sorted(decoded[k].shape[:2])
                    report.sides = (min(report.sides[0] or shortest, shortest), max(report.sides[1], longest))
                tick = time.perf_counter()
                images = [decoded[k] for k in usable]
                labels = [classes[span.start + k] for k in usable] if classes else None
                outputs = predictor(images, labels) if usable else []
                per_image = (time.perf_counter() - tick) / max(1, len(usable))
                paths = todo[span.start : span.stop]
                writes.submit([functools.partial(encode, paths[k], out, per_image) for k, out in zip(usable, outputs)])
                written(previous)
                previous = len(span)
            writes.close()
            written(previous)
            report.written = writes.written
        report.seconds = time.perf_counter() - started
        for message in report.failed:
            tqdm.write(f"skipped: {message}")
        return report


def shard_of(text: str | None) -> tuple[int, int]:
    """`--shard i/n` (ASCII digits, 0 <= i < n) as (i, n); without it, torchrun's RANK/WORLD_SIZE,
    or the whole job."""
    if text is None and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        text = f"{os.environ.get('RANK', '0')}/{os.environ['WORLD_SIZE']}"
    parts = re.fullmatch(r"([0-9]{1,9})/([0-9]{1,9})", text or "0/1")
    if not parts or not int(parts[1]) < int(parts[2]):
        raise ConfigError(f"--shard {text}: expected i/n with 0 <= i < n in digits 0-9, e.g. 0/4")
    return int(parts[1]), int(parts[2])


def manifest_path(output_dir: Path, shard: tuple[int, int] = (0, 1)) -> Path:
    """The manifest a shard (or the whole job) writes into `output_dir`."""
    index, count = shard
    return Path(output_dir) / (MANIFEST if count == 1 else f"manifest.shard-{index}-of-{count}.jsonl")


def recorded_backend(output_dir: Path, shard: tuple[int, int] = (0, 1)) -> str | None:
    """The one backend the outputs already in the manifest were made with, if they agree: a
    resumed `--backend auto` job keeps it, so all its outputs come from the same numerics
    (auto picks by timing, which can differ from one process to the next)."""
    manifest = manifest_path(output_dir, shard)
    records = read_json_lines(manifest)[0] if manifest.is_file() else []
    backends = {r["backend"] for r in records if isinstance(r.get("backend"), str)}
    return backends.pop() if len(backends) == 1 else None


def _reconcile_manifest(manifest: Path, targets: list[Path], resume: bool, channels: int) -> list[dict]:
    """The manifest records to keep before this run appends its own: one per output on disk.

    A kill can land between an output's rename and its manifest line, or cut a line short.
    With `resume`, an output without its line is decoded and recorded, or deleted to be
    redone; without it, records of the outputs about to be rewritten are dropped."""
    records, damaged = read_json_lines(manifest) if manifest.is_file() else ([], [])
    if damaged:
        tqdm.write(f"{manifest}: dropped {len(damaged)} incomplete line(s) left by an interrupted run")
    by_output = {Path(str(r.get("output"))).resolve(): r for r in records if r.get("output")}
    wanted = {target.resolve(): target for target in targets}
    if not resume:
        return [r for key, r in by_output.items() if key not in wanted]
    for key, target in wanted.items():
        if key in by_output or not target.is_file():
            continue
        try:
            read_image(target, channels)
        except DataError:
            target.unlink()
            continue
        by_output[key] = {
            "output": str(target),
            "sha256": hashlib.sha256(target.read_bytes()).hexdigest(),
            "reconciled": True,
        }
    return [r for key, r in by_output.items() if key not in wanted or wanted[key].is_file()]


def check_output_dir(inputs: InputSet, output_dir: Path) -> None:
    """DataError unless `output_dir` can be a folder of its own, outside an input folder (whose
    next reading would take the outputs for inputs); a list's or a glob's files only must not be
    written over (refuse_overwriting)."""
    check_name_lengths([output_dir])
    if output_dir.exists() and not output_dir.is_dir():
        raise DataError(f"{output_dir}: exists and is not a folder; choose another output folder")
    if inputs.folder and output_dir.resolve().is_relative_to(Path(inputs.root).resolve()):
        raise DataError(f"{output_dir}: output folder is inside the input folder {inputs.root}; choose another output")


def refuse_overwriting(inputs: InputSet, targets: list[Path], output_dir: Path) -> None:
    """WriteError if one of `targets` or a label copy cannot be named (a name above NAME_MAX) or is
    one of the inputs (an output folder above the input folder can map an image onto another
    input), before anything is written."""
    labels = [label_target(inputs, label, output_dir) for label in inputs.label_files]
    check_name_lengths([*targets, *labels])
    refuse_writing_inputs([*targets, *labels], [*inputs.images, *inputs.label_files])
    if inputs.pattern:
        pattern = Path(inputs.pattern).parts
        taken = next((t for t in targets if _glob_matches(Path(os.path.abspath(t)).parts, pattern)), None)
        if taken is not None:
            raise DataError(
                f"{output_dir}: the glob {inputs.pattern} would read its output {taken} as an input next time; "
                "choose an output folder the glob does not reach"
            )


def _glob_matches(parts: tuple[str, ...], pattern: tuple[str, ...]) -> bool:
    """Whether a path (its parts) matches a glob (its parts) as glob.glob(recursive=True) reads it:
    `**` takes any number of folders, other parts one name each; hidden names only by a part that
    starts with a dot."""
    if not pattern:
        return not parts
    if pattern[0] == "**":
        hidden = next((index for index, part in enumerate(parts) if part.startswith(".")), len(parts))
        return any(_glob_matches(parts[start:], pattern[1:]) for start in range(hidden + 1))
    if not parts or parts[0].startswith(".") and not pattern[0].startswith("."):
        return False
    return fnmatch.fnmatchcase(parts[0], pattern[0]) and _glob_matches(parts[1:], pattern[1:])


def label_target(inputs: InputSet, label: Path, output_dir: Path) -> Path:
    """Where a labelled dataset's label file (or its paths.txt) is copied."""
    return path_inside(output_dir, label.relative_to(inputs.root))


def output_path(input_root: Path, path: Path, output_dir: Path) -> Path:
    """Where an input's translation goes: its path relative to the input root, under output_dir
    (DataError if that would lead outside it), as PNG where its format cannot hold the output."""
    return writable_path(path_inside(output_dir, path.relative_to(input_root)))


def distinct_targets(targets: dict[Path, Path]) -> dict[Path, Path]:
    """`targets` (input → output), unless two inputs would be written to one output (a.pgm and
    a.png both become a.png)."""
    seen: dict[Path, Path] = {}
    for source, target in targets.items():
        if target in seen:
            raise DataError(f"{source} and {seen[target]} would both be written to {target}; rename one of them")
        seen[target] = source
    return targets


def write_output(
    path: Path | str, target: Path, image: np.ndarray, model_name: str, backend: str, seconds: float
) -> dict:
    """Write one translation atomically; returns its manifest record."""
    encoded = write_image(target, image)  # hashed from memory, not read back from disk
    return {
        "input": str(path),
        "output": str(target),
        "sha256": hashlib.sha256(encoded).hexdigest(),
        "model": model_name,
        "backend": backend,
        "seconds": round(seconds, 4),
    }


def failure_record(path: Path | str, error: Exception) -> dict:
    """The manifest line of an input that could not be translated, with the reason."""
    return {"input": str(path), "failed": str(error)}


def recorded_outputs(manifest: Path) -> set[str]:
    """Outputs the manifest lists as written; a line cut short by a kill is ignored."""
    records = read_json_lines(manifest)[0] if manifest.is_file() else []
    return {record["output"] for record in records if "sha256" in record}


def copy_labels(inputs: InputSet, output_dir: Path) -> None:
    """Copy a labelled dataset's label files (and paths.txt) to their places under output_dir."""
    for label in inputs.label_files:
        if not label.is_file():
            raise DataError(f"{label}: listed in {inputs.root / 'paths.txt'} but missing; fix the list or add the file")
        atomic_write_bytes(label_target(inputs, label, output_dir), label.read_bytes())


def merge_manifests(output_dir: Path) -> Path:
    """Merge the per-shard manifests of `output_dir` into one manifest.jsonl, sorted by input."""
    records = []
    for part in sorted(Path(output_dir).glob("manifest.shard-*.jsonl")):
        part_records, damaged = read_json_lines(part)
        if damaged:
            raise DataError(
                f"{part}: {len(damaged)} damaged line(s), first {damaged[0][:60]!r}; rerun that shard "
                "with --resume to repair its manifest"
            )
        records += part_records
    if not records:
        raise DataError(f"{output_dir}: no shard manifests (manifest.shard-*.jsonl) to merge")
    records.sort(key=lambda r: str(r.get("input", r.get("output"))))
    target = Path(output_dir) / MANIFEST
    with claim_folder(output_dir):  # refused while a shard still writes
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
            raise DataError(
                f"{path}: this model is class-conditional; put images in INPUT/<class>/ with class one of "
                f"{', '.join(names)}"
            )
        classes.append(names.index(top))
    return classes
