"""Property-based fuzzing of the parsers that read user files: bbox lines and files, mask PNGs,
paths.txt (training and generate), output paths and the config loader. Whatever the input, the
only failure allowed is the one-line error (LabelProblem / DataError / ConfigError).

10,000 cases in all (per test: the EXAMPLES table), run in-process and derandomized, so CI
sees the same cases every time."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from i2i.cli import _read_json
from i2i.config import RunConfig
from i2i.errors import ConfigError, DataError, one_line
from i2i.io import path_inside
from i2i.runtime.generate import collect_inputs
from i2i.training.labels import LabelProblem, parse_box_line, parse_paths_line, read_boxes, read_mask, scan_paths_file

EXAMPLES = {
    "box_line": 2500,
    "box_file": 1000,
    "paths_line": 1000,
    "train_paths_file": 1000,
    "generate_paths_file": 1000,
    "mask": 1000,
    "config_dict": 1000,
    "config_file": 500,
    "output_path": 1000,
}
assert sum(EXAMPLES.values()) == 10_000


def _printable(error: Exception) -> bool:
    """The CLI prints the first line of a user error (i2i.errors.one_line): it must say something.
    (Only a line break from the user's own input can make a message longer than that line.)"""
    return bool(one_line(error).strip())


def fuzz(name: str):
    return settings(
        max_examples=EXAMPLES[name],
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# Text made of the pieces these formats are built from, plus anything at all.
NUMBER = st.one_of(
    st.integers(-5, 300).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["nan", "inf", "-0", "1e999", "0x10", "1_0", "١", "+3", ".5", "5."]),
)
TOKEN = st.one_of(NUMBER, st.text(max_size=6), st.sampled_from(["../x.png", "/etc/passwd", "a.png", "m.png", "b.txt"]))
LINE = st.one_of(st.lists(TOKEN, max_size=7).map(" ".join), st.text(max_size=40))
FILE_BYTES = st.one_of(
    st.lists(LINE, max_size=6).map(lambda lines: "\n".join(lines).encode("utf-8", "surrogatepass")),
    st.binary(max_size=80),
)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """A domain folder with one real 16x12 image, a matching mask and a bbox file."""
    root = tmp_path_factory.mktemp("fuzz")
    cv2.imwrite(str(root / "a.png"), np.full((12, 16, 3), 128, np.uint8))
    cv2.imwrite(str(root / "m.png"), np.ones((12, 16), np.uint8))
    (root / "b.txt").write_text("1 1 1 5 5\n")
    return root


@fuzz("box_line")
@given(LINE)
def test_box_line(line):
    try:
        cls, x0, y0, x1, y1 = parse_box_line(line)
    except LabelProblem:
        return
    assert cls >= 1 and all(math.isfinite(v) and v >= 0 for v in (x0, y0, x1, y1)) and x1 > x0 and y1 > y0


@fuzz("box_file")
@given(FILE_BYTES, st.integers(1, 64), st.integers(1, 64), st.integers(2, 5))
def test_box_file(data, width, height, classes):
    with tempfile.NamedTemporaryFile(suffix=".txt") as handle:
        handle.write(data)
        handle.flush()
        try:
            boxes = read_boxes(Path(handle.name), width, height, classes)
        except LabelProblem as problem:
            assert _printable(problem)
            return
    for cls, x0, y0, x1, y1 in boxes:
        assert 1 <= cls < classes and 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height


@fuzz("paths_line")
@given(LINE)
def test_paths_line(line):
    try:
        image, label = parse_paths_line(line)
    except LabelProblem:
        return
    assert image and label and not any(ch.isspace() for ch in image + label)


@fuzz("train_paths_file")
@given(FILE_BYTES, st.sampled_from(["bbox", "mask"]), st.booleans())
def test_training_paths_file(dataset, data, mode, skip_bad):
    (dataset / "paths.txt").write_bytes(data)
    try:
        scan = scan_paths_file(dataset, mode, 3, skip_bad)
    except DataError as error:
        assert _printable(error)
        return
    assert scan.samples and all(sample.image.is_file() for sample in scan.samples)


@fuzz("generate_paths_file")
@given(FILE_BYTES)
def test_generate_paths_file(dataset, data):
    (dataset / "paths.txt").write_bytes(data)
    try:
        inputs = collect_inputs(dataset)
    except DataError as error:
        assert _printable(error)
        return
    for path in inputs.images + inputs.label_files:  # every output path generate derives stays inside
        target = path_inside(dataset / "out", path.relative_to(dataset))
        assert target.resolve().is_relative_to((dataset / "out").resolve())


PNG_SHAPES = st.tuples(st.integers(1, 20), st.integers(1, 20), st.sampled_from([None, 1, 3, 4]))


@fuzz("mask")
@given(
    st.one_of(
        st.binary(max_size=200),
        PNG_SHAPES.map(lambda s: _png(*s)),
        st.tuples(PNG_SHAPES.map(lambda s: _png(*s)), st.integers(0, 200)).map(lambda p: p[0][: p[1]]),
    ),
    st.integers(1, 20),
    st.integers(1, 20),
)
def test_mask(data, width, height):
    with tempfile.NamedTemporaryFile(suffix=".png") as handle:
        handle.write(data)
        handle.flush()
        try:
            mask = read_mask(Path(handle.name), width, height, 3)
        except LabelProblem as problem:
            assert _printable(problem)
            return
    assert mask.shape == (height, width) and mask.dtype == np.uint8 and mask.max() < 3


def _png(height: int, width: int, channels: int | None) -> bytes:
    shape = (height, width) if channels is None else (height, width, channels)
    labels = np.random.default_rng(height * width).integers(0, 4, shape, dtype=np.uint8)
    return cv2.imencode(".png", labels)[1].tobytes()


def _section(kind: type) -> st.SearchStrategy:
    """Objects with a dataclass's real keys (plus the odd unknown one) and any JSON values."""
    keys = [f.name for f in dataclasses.fields(kind)] + ["unknown"]
    return st.dictionaries(st.sampled_from(keys), JSON, max_size=4)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**20), 10**20) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
CONFIG = st.one_of(
    JSON,
    st.fixed_dictionaries(
        {},
        optional={
            "model": st.sampled_from(["cycle_gan", "cut", "fastcut", "recycle_gan", "x"]) | JSON,
            "schema": st.integers(-2, 3) | JSON,
            "G": _section(RunConfig().G.__class__),
            "D": _section(RunConfig().D.__class__),
            "data": _section(RunConfig().data.__class__),
            "train": _section(RunConfig().train.__class__),
            "alg": st.dictionaries(
                st.sampled_from(["cut", "recycle_gan", "semantic", "x"]),
                JSON
                | st.dictionaries(
                    st.sampled_from(
                        ["nce_layers", "num_patches", "nce_T", "frame_step", "predictor_ngf", "lambda_source_class"]
                    ),
                    JSON,
                    max_size=3,
                ),
                max_size=2,
            ),
        },
    ),
)


@fuzz("config_dict")
@given(CONFIG)
def test_config_dict(raw):
    try:
        config = RunConfig.from_dict(raw)
    except ConfigError as error:
        assert _printable(error)
        return
    assert RunConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config  # what loads, round-trips


@fuzz("config_file")
@given(st.one_of(st.binary(max_size=60), CONFIG.map(lambda raw: json.dumps(raw).encode())))
def test_config_file(data):
    with tempfile.NamedTemporaryFile(suffix=".json") as handle:
        handle.write(data)
        handle.flush()
        try:
            raw = _read_json(Path(handle.name))
        except ConfigError as error:
            assert _printable(error)
            return
    assert isinstance(raw, dict)


@fuzz("output_path")
@given(st.lists(st.sampled_from(["..", ".", "a", "b.png", "", "/", "link", "~", "c d"]), min_size=1, max_size=5))
def test_output_path(dataset, parts):
    out = dataset / "out"
    (out / "sub").mkdir(parents=True, exist_ok=True)
    if not (out / "link").is_symlink():
        os.symlink(dataset.parent, out / "link")  # a symlink leading out of the output folder
    try:
        target = path_inside(out, "/".join(parts))
    except DataError:
        return
    assert target.parent.resolve().is_relative_to(out.resolve())
