"""Hostile and broken inputs, made here: decompression bombs, paths that lead out of the output
folder, outputs inside inputs, bad options and files. Each is one line and exit 2 (exit 0 where
the input is legal), without a traceback, and nothing is written outside the output folder."""

from __future__ import annotations

import shutil
import struct
import zlib

import cv2
import numpy as np
import pytest

from i2i.errors import DataError
from i2i.io import image_size, read_image

from .conftest import TINY_TRAIN, assert_ok, assert_user_error, invoke, make_images, tree


def png_declaring(width: int, height: int, rows: int = 1) -> bytes:
    """A small grey PNG whose header declares width × height; only `rows` rows of zeros are
    actually stored (a decoder that trusts the header allocates the whole image first); with
    rows=0 the pixel data is not even a zlib stream, so decoding fails at once."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    pixels = zlib.compress(b"\0" * (rows * (width + 1)), 9) if rows else b"\xff not zlib"
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", pixels)
        + chunk(b"IEND", b"")
    )


def test_bombs_are_refused_from_the_header(tmp_path, data, run):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_declaring(100_000, 100_000))  # 10 gigapixels in a 100-kB file
    for read in (image_size, read_image):
        with pytest.raises(DataError, match="10000.0 megapixels"):
            read(bomb)

    dataset = tmp_path / "data"
    shutil.copytree(data, dataset)
    shutil.copy(bomb, dataset / "trainA" / "zz_bomb.png")
    assert_user_error(
        invoke("train", dataset, "--out", tmp_path / "run", *TINY_TRAIN, "--steps", "1"),
        "zz_bomb.png",
        "megapixels",
        "--max-pixels",
    )

    source = tmp_path / "images"
    make_images(source, 3)
    (source / "bomb.png").write_bytes(png_declaring(8000, 8000, rows=8000))  # 64 MP of real zeros, 70 kB
    assert_user_error(invoke("generate", run, source, tmp_path / "strict", "--strict"), "bomb.png", "megapixels")
    result = invoke("generate", run, source, tmp_path / "out")
    assert_ok(result)
    assert "1 unreadable skipped" in result.output and sorted(tree(tmp_path / "out")) == [
        "000.png",
        "001.png",
        "002.png",
        "manifest.jsonl",
    ]

    # --max-pixels lowers the limit; --tile raises the default (tiles keep the network's memory small)
    assert_user_error(
        invoke("generate", run, source / "00*.png", tmp_path / "small", "--max-pixels", "1000", "--strict"),
        "32x32",
        "--max-pixels",
    )
    (source / "bomb.png").write_bytes(png_declaring(8000, 8000, rows=0))  # with --tile: decoded, found corrupt
    line = assert_user_error(
        invoke("generate", run, source, tmp_path / "tiled", "--tile", "16", "--overlap", "4", "--strict"), "bomb.png"
    )
    assert "megapixels" not in line and "not a readable image" in line


def test_bomb_masks_and_videos_are_refused(tmp_path, run):
    domain = tmp_path / "data" / "trainA"
    make_images(domain, 1)
    (domain / "m.png").write_bytes(png_declaring(100_000, 100_000))
    (domain / "paths.txt").write_text("000.png m.png\n")
    shutil.copytree(domain, tmp_path / "data" / "trainB")
    assert_user_error(
        invoke(
            "train",
            tmp_path / "data",
            "--out",
            tmp_path / "run",
            *TINY_TRAIN,
            "--steps",
            "1",
            "--dataset-mode",
            "mask",
            "--semantic-nc",
            "2",
        ),
        "m.png",
        "100000x100000",
    )

    clip = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10, (32, 32))
    for _ in range(3):
        writer.write(np.zeros((32, 32, 3), np.uint8))
    writer.release()
    assert_user_error(invoke("video", run, clip, tmp_path / "out.avi", "--max-pixels", "1000"), "32x32", "--max-pixels")
    assert not (tmp_path / "out.avi").exists()


def test_output_paths_stay_inside_the_output_folder(tmp_path, run):
    dataset = tmp_path / "dataset"
    make_images(dataset, 2)
    (dataset / "a.txt").write_text("1 1 1 5 5\n")
    make_images(tmp_path, 1)  # tmp_path/000.png: a file just outside the dataset
    before = tree(tmp_path)
    for line in ("../000.png ../victim_label.txt", f"{tmp_path / '000.png'} a.txt", "000.png ../../x.txt"):
        (dataset / "paths.txt").write_text(f"000.png a.txt\n{line}\n")
        assert_user_error(invoke("generate", run, dataset, tmp_path / "out"), "paths.txt:2", "outside")
        assert tree(tmp_path) == before | {"dataset/paths.txt"} - {"out"}

    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "sub").symlink_to(tmp_path / "elsewhere")  # a link inside the output leading out
    make_images(tmp_path / "nested" / "sub", 1)
    assert_user_error(invoke("generate", run, tmp_path / "nested", tmp_path / "out"), "symlink")
    assert not any((tmp_path / "elsewhere").iterdir())

    listing = tmp_path / "lists" / "inputs.txt"  # a list may name images anywhere; outputs map inside
    listing.parent.mkdir()
    listing.write_text("../dataset/000.png\n../dataset/001.png\n")
    assert_ok(invoke("generate", run, listing, tmp_path / "from_list"))
    assert tree(tmp_path / "from_list") == {"000.png", "001.png", "manifest.jsonl"}


def test_outputs_inside_inputs_are_refused(tmp_path, data, run):
    assert_user_error(
        invoke("train", data, "--out", data / "trainA" / "run", *TINY_TRAIN, "--steps", "1"), "trainA", "inside"
    )
    assert not (data / "trainA" / "run").exists()
    assert_user_error(invoke("generate", run, data / "testA", data / "testA" / "out"), "inside")
    assert_user_error(invoke("video", run, data / "testA", data / "testA" / "clip.avi"), "frame folder")
    assert not (data / "testA" / "out").exists() and not (data / "testA" / "clip.avi").exists()


def test_bad_options_and_files_are_one_line(tmp_path, data, run):
    out = tmp_path / "run"
    train = ("train", data, "--out", out, *TINY_TRAIN, "--steps", "1")
    assert_user_error(invoke(*train, "--workers", "-1"), "--workers")
    assert_user_error(invoke(*train, "--batch-size", "0"), "batch_size")
    assert_user_error(invoke(*train, "--lr", "1e999"), "--lr")
    (tmp_path / "list.json").write_text("[1, 2]")
    assert_user_error(invoke(*train, "--config", tmp_path / "list.json"), "list.json", "JSON object")
    (tmp_path / "latin1.json").write_bytes('{"train": {"lr": "é"}}'.encode("latin-1"))
    assert_user_error(invoke(*train, "--config", tmp_path / "latin1.json"), "latin1.json", "UTF-8")
    (tmp_path / "file").write_text("x")
    assert_user_error(invoke("train", data, "--out", tmp_path / "file", *TINY_TRAIN), "file", "not a folder")

    for option in ("--batch-size", "--workers"):
        assert_user_error(invoke("generate", run, data / "testA", tmp_path / "g", option, "0"), option)
    assert_user_error(invoke("generate", run, data / "testA", tmp_path / "file"), "not a folder")
    (tmp_path / "list.txt").write_bytes(b"\xff\xfe000.png\n")
    assert_user_error(invoke("generate", run, tmp_path / "list.txt", tmp_path / "g"), "list.txt", "UTF-8")
    assert_user_error(invoke("video", run, data / "testA", tmp_path / "v.avi", "--max-frames", "0"), "--max-frames")
    assert_user_error(invoke("video", run, data / "testA", tmp_path), "is a folder")

    (tmp_path / "empty.pth").write_bytes(b"")
    assert_user_error(
        invoke("import", tmp_path / "empty.pth", "--from", "cyclegan", "--out", tmp_path / "imp"), "empty.pth"
    )
    single = tmp_path / "single"
    make_images(single, 1)
    assert_user_error(invoke("eval", single, data / "testB"), "single", "at least 2")

    shards = tmp_path / "shards"
    shards.mkdir()
    (shards / "manifest.shard-0-of-2.jsonl").write_text('{"input": "a", "output": "b"}\n{"input": "c", "out')
    assert_user_error(invoke("merge-manifests", shards), "shard-0-of-2", "damaged")
    assert not out.exists()


@pytest.mark.parametrize(
    ("command", "option", "value"),
    [
        ("generate", "--shard", "\u0663/4"),  # Arabic-Indic three: str.isdigit() says yes
        ("generate", "--shard", "\u00b2/4"),  # superscript two: isdigit, yet int() refuses it
        ("generate", "--shard", "1" * 5000 + "/2"),  # beyond int()'s digit limit
        ("generate", "--shard", "4/4"),
        ("video", "--cutoff", "nan"),
        ("video", "--strength", "inf"),
        ("bench", "--batches", "0"),
        ("bench", "--batches", "-1"),
        ("bench", "--batches", "x"),
        ("bench", "--repeats", "0"),
        ("bench", "--ngf", "-8"),
        ("bench", "--efficiency", "nan"),
        ("bench", "--efficiency", "-0.5"),
        ("export", "--max-fd-change", "nan"),
        ("train", "--lr", "nan"),
        ("train", "--ngf", "0"),
    ],
)
def test_option_values_are_range_checked_at_the_command_line(tmp_path, data, run, command, option, value):
    arguments = {
        "generate": ("generate", run, data / "testA", tmp_path / "out"),
        "video": ("video", run, data / "testA", tmp_path / "v.avi"),
        "bench": ("bench", "--out", tmp_path / "bench"),
        "export": ("export", run, "--out", tmp_path / "export"),
        "train": ("train", data, "--out", tmp_path / "run", *TINY_TRAIN),
    }[command]
    assert_user_error(invoke(*arguments, option, value), option)
    assert not [p for p in tmp_path.iterdir() if p.name not in ("data",)]  # nothing written
