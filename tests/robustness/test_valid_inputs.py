"""Valid inputs are neither refused nor altered: formats the output cannot take, long names,
lists spanning two trees, odd sizes."""

from __future__ import annotations

import json
import os
import socket
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from i2i import io
from i2i.errors import WriteError
from i2i.io import (
    read_image,
    remove_orphaned_temporaries,
    remove_stale_temporaries,
    temporary_prefix,
    write_image,
)
from i2i.runtime import load

from .conftest import assert_ok, assert_user_error, invoke


def _image(height=17, width=33, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_a_pgm_input_is_translated_to_png_and_recorded(tmp_path, run):
    (tmp_path / "in").mkdir()
    cv2.imwrite(str(tmp_path / "in" / "grey.pgm"), _image()[..., 0])
    assert_ok(invoke("generate", run, tmp_path / "in", tmp_path / "out"))
    record = json.loads((tmp_path / "out" / "manifest.jsonl").read_text().splitlines()[0])
    assert record["output"] == str(tmp_path / "out" / "grey.png")
    assert read_image(tmp_path / "out" / "grey.png", 1).shape[:2] == (17, 33)  # odd sizes kept


def test_two_inputs_that_would_share_an_output_are_one_line(tmp_path, run):
    write_image(tmp_path / "in" / "a.png", _image())
    cv2.imwrite(str(tmp_path / "in" / "a.pgm"), _image(seed=1)[..., 0])
    assert_user_error(invoke("generate", run, tmp_path / "in", tmp_path / "out"), "a.png", "rename one")
    assert not (tmp_path / "out").exists()


def test_a_file_name_near_name_max_is_written(tmp_path, run):
    name = "x" * 240 + ".png"
    write_image(tmp_path / "in" / name, _image())
    assert_ok(invoke("generate", run, tmp_path / "in", tmp_path / "out"))
    assert (tmp_path / "out" / name).is_file()
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("name", ["x" * 251 + ".png", "é" * 125 + ".png"])  # 255 and 254 bytes
def test_temporaries_of_names_up_to_name_max_fit_and_are_cleaned(tmp_path, monkeypatch, name):
    write_image(tmp_path / name, _image())
    assert read_image(tmp_path / name).shape == (17, 33, 3) and [p.name for p in tmp_path.iterdir()] == [name]
    monkeypatch.setattr(os, "getpid", lambda: 4_194_305)  # above Linux's largest pid: a dead writer
    leftover = Path(tempfile.mkstemp(prefix=temporary_prefix(name), suffix=".tmp", dir=tmp_path)[1])
    assert leftover.name.startswith("." + name[:10]) and len(os.fsencode(leftover.name)) <= 255
    assert remove_stale_temporaries(tmp_path) == 1 and not leftover.exists()
    leftover.write_bytes(b"half")  # a lost node's: found from the final name it stands for
    assert remove_orphaned_temporaries(tmp_path, {str(tmp_path / name)}) == 1 and not leftover.exists()


@pytest.mark.parametrize("length", [1, 40, 41, 143, 255])
def test_a_temporary_fits_the_smallest_name_max_whatever_its_host(monkeypatch, length):
    monkeypatch.setattr(socket, "gethostname", lambda: "h" * 64)  # Linux's longest host name
    monkeypatch.setattr(os, "getpid", lambda: 4_194_304)  # and largest pid
    name = "é" * (length // 2) + "x" * (length % 2)
    temporary = temporary_prefix(name) + "a1b2c3d4.tmp"  # mkstemp's 8 random characters
    assert len(os.fsencode(temporary)) <= 143  # eCryptfs's NAME_MAX, the smallest in common use
    assert temporary.startswith("." + name[:10])


def test_a_name_the_output_file_system_cannot_hold_is_one_line(tmp_path, run, monkeypatch):
    name = "x" * 240 + ".png"
    write_image(tmp_path / "in" / name, _image())
    # the inputs' file system takes 255 bytes, the output's fewer (eCryptfs takes 143)
    monkeypatch.setattr(io, "_name_max", lambda folder: 200)
    line = assert_user_error(invoke("generate", run, tmp_path / "in", tmp_path / "out"), name, "244 bytes", "shorter")
    assert "above the 200" in line and not (tmp_path / "out").exists()


def test_a_report_name_above_name_max_is_one_line_before_any_work(tmp_path, run, data):
    output = tmp_path / ("v" * 245 + ".avi")  # the video's name fits; OUTPUT.report.json does not
    result = invoke("video", run, data / "testA", output, "--report")
    assert_user_error(result, "v" * 245 + ".report.json", "257 bytes")
    assert list(tmp_path.iterdir()) == []


def test_a_write_to_a_name_above_name_max_says_so(tmp_path):
    with pytest.raises(WriteError, match="is 304 bytes, above the 255 its file system takes; choose a shorter name"):
        write_image(tmp_path / ("x" * 300 + ".png"), _image())
    assert list(tmp_path.iterdir()) == []


def test_odd_sized_images_keep_their_size(tmp_path, run):
    sizes = [(17, 33), (33, 17), (3, 5), (31, 64)]  # the generator takes multiples of 4: padded, cropped back
    for index, (height, width) in enumerate(sizes):
        write_image(tmp_path / "in" / f"{index}.png", _image(height, width, seed=index))
    assert_ok(invoke("generate", run, tmp_path / "in", tmp_path / "out"))
    predictor = load(run)
    for index, size in enumerate(sizes):
        written = read_image(tmp_path / "out" / f"{index}.png", 1)
        assert written.shape[:2] == size
        assert np.array_equal(written, predictor(read_image(tmp_path / "in" / f"{index}.png", 1)))


def test_a_list_of_absolute_paths_from_two_trees_writes_beside_them(tmp_path, run):
    for tree in ("t1", "t2"):
        write_image(tmp_path / tree / f"{tree}.png", _image())
    listing = tmp_path / "list.txt"
    listing.write_text(f"{tmp_path / 't1' / 't1.png'}\n{tmp_path / 't2' / 't2.png'}\n")
    assert_ok(invoke("generate", run, listing, tmp_path / "out"))  # inside their common folder, in neither tree
    assert (tmp_path / "out" / "t1" / "t1.png").is_file() and (tmp_path / "out" / "t2" / "t2.png").is_file()
    assert_user_error(invoke("generate", run, tmp_path / "t1", tmp_path / "t1" / "out"), "inside the input folder")


def _smooth_frame(index, height=17, width=33):
    """A gradient moving with `index`: little for MJPEG to lose, so the output is comparable."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([(x * 7 + index * 5) % 256, y * 15, (x + y) * 5], -1).astype(np.uint8)


def _decoded(path):
    capture, frames = cv2.VideoCapture(str(path)), []
    while (frame := capture.read())[0]:
        frames.append(frame[1][..., 0])  # the run is greyscale: every channel holds it
    return frames


def test_a_glob_refuses_only_outputs_its_next_reading_would_take(tmp_path, run):
    for tree in ("t1", "t2"):
        write_image(tmp_path / tree / f"{tree}.png", _image())
    # any depth: a second run would translate the translations
    line = assert_user_error(invoke("generate", run, tmp_path / "**" / "t?.png", tmp_path / "t2" / "out"), "next time")
    assert str(tmp_path / "t2" / "out" / "t1" / "t1.png") in line and not (tmp_path / "t2" / "out").exists()
    # one level deep: t1/out/t1/t1.png is out of its reach
    assert_ok(invoke("generate", run, tmp_path / "t*" / "*.png", tmp_path / "t1" / "out"))
    assert (tmp_path / "t1" / "out" / "t1" / "t1.png").is_file()
    # ...unless in a hidden folder, which `**` does not enter
    assert_ok(invoke("generate", run, tmp_path / "t[12]" / "**" / "*.png", tmp_path / "t2" / ".out"))


def test_odd_sized_video_frames_keep_their_size_in_avi(tmp_path, run):
    for index in range(3):
        write_image(tmp_path / "frames" / f"{index:03d}.png", _smooth_frame(index))
    result = invoke("video", run, tmp_path / "frames", tmp_path / "out.avi")
    assert_ok(result)
    assert "padded" not in result.output
    expected = load(run)([read_image(tmp_path / "frames" / f"{index:03d}.png", 1) for index in range(3)])
    frames = _decoded(tmp_path / "out.avi")
    assert len(frames) == 3 and frames[0].shape == (17, 33)
    for frame, translated in zip(frames, expected):
        # the same as each frame's translation, last row and column included (MJPEG loses ~2 levels)
        assert np.abs(frame.astype(int) - translated[..., 0]).mean() < 4
        assert np.abs(frame[-1].astype(int) - translated[-1, :, 0]).mean() < 6
        assert np.abs(frame[:, -1].astype(int) - translated[:, -1, 0]).mean() < 6


def test_odd_sized_video_frames_are_padded_for_mp4_and_said_so(tmp_path, run):
    for index in range(3):
        write_image(tmp_path / "frames" / f"{index:03d}.png", _smooth_frame(index))
    result = invoke("video", run, tmp_path / "frames", tmp_path / "out.mp4")
    assert_ok(result)
    assert "33x17 → 34x18" in result.output  # its encoder takes even sizes: padded by the edge, none dropped
    frames = _decoded(tmp_path / "out.mp4")
    assert len(frames) == 3 and frames[0].shape == (18, 34)
