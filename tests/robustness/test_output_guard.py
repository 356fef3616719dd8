"""No command writes onto one of its inputs, however the two paths are spelled (relative,
absolute, through a symlink, a hard link): each refuses with one line before writing anything,
and the input keeps its bytes."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from i2i.config import GeneratorConfig
from i2i.nets import build_generator

from .conftest import assert_ok, assert_user_error, invoke, make_images, tree


def make_clip(path: Path, frames: int = 6) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (32, 32))
    rng = np.random.default_rng(0)
    for _ in range(frames):
        writer.write(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    writer.release()
    return path


def spellings(tmp_path: Path, target: Path) -> dict[str, Path]:
    """Other names of the file `target`: relative, through a symlinked folder, a symlink, a hard link."""
    (tmp_path / "linked").symlink_to(target.parent, target_is_directory=True)
    (tmp_path / "alias").mkdir()
    (tmp_path / "alias" / "symlink").symlink_to(target)
    os.link(target, tmp_path / "alias" / "hardlink")
    return {
        "same": target,
        "relative": Path(os.path.relpath(target)),
        "via a symlinked folder": tmp_path / "linked" / target.name,
        "symlink": tmp_path / "alias" / "symlink",
        "hard link": tmp_path / "alias" / "hardlink",
    }


@pytest.mark.parametrize("spelling", ["same", "relative", "via a symlinked folder", "symlink", "hard link"])
def test_video_refuses_to_overwrite_its_clip(tmp_path, run, spelling, monkeypatch):
    monkeypatch.chdir(tmp_path)
    clip = make_clip(tmp_path / "clip.avi")
    before = clip.read_bytes()
    output = spellings(tmp_path, clip)[spelling]
    assert_user_error(invoke("video", run, clip, output), str(output), "one of the inputs")
    assert clip.read_bytes() == before
    assert not [p for p in tmp_path.rglob(".*.tmp")]


def test_generate_into_a_parent_of_its_input_folder_touches_no_input(tmp_path, run):
    # the input root is data/a (the inputs' common folder): written under data, the translation of
    # the input data/a/a/000.png would land on the input data/a/000.png
    images = make_images(tmp_path / "data" / "a", 2) + make_images(tmp_path / "data" / "a" / "a", 2, seed=1)
    before = {p: p.read_bytes() for p in images}
    listing = tmp_path / "data" / "a" / "list.txt"
    listing.write_text("".join(f"{p.relative_to(listing.parent)}\n" for p in images))
    contents = tree(tmp_path)
    result = invoke("generate", run, listing, tmp_path / "data")
    assert_user_error(result, "one of the inputs", "000.png")
    assert {p: p.read_bytes() for p in images} == before and tree(tmp_path) == contents


@pytest.mark.parametrize("link", ["symlink", "hard link"])
def test_generate_refuses_an_output_that_is_an_input_by_a_link(tmp_path, run, link):
    images = make_images(tmp_path / "in", 2)
    out = tmp_path / "out"
    out.mkdir()
    (out / "001.png").symlink_to(images[0]) if link == "symlink" else os.link(images[0], out / "001.png")
    before = images[0].read_bytes()
    assert_user_error(invoke("generate", run, tmp_path / "in", out, "--resume"), str(out / "001.png"), "inputs")
    assert images[0].read_bytes() == before and tree(out) == {"001.png"}


@pytest.mark.parametrize("link", ["symlink", "hard link"])
def test_export_refuses_to_overwrite_the_checkpoint_it_reads(tmp_path, run, link):
    weights = next((run / "checkpoints").glob("step_*")) / "G_A.safetensors"
    before = weights.read_bytes()
    out = tmp_path / "out"
    out.mkdir()
    target = out / "generator_AtoB.onnx"
    target.symlink_to(weights) if link == "symlink" else os.link(weights, target)
    assert_user_error(invoke("export", run, "--out", out), str(target), "one of the inputs")
    assert weights.read_bytes() == before and tree(out) == {"generator_AtoB.onnx"}


def test_import_refuses_to_write_over_its_checkpoint(tmp_path):
    out = tmp_path / "imported"
    saved = out / "checkpoints" / "latest"  # the name the import writes its pointer to
    saved.parent.mkdir(parents=True)
    torch.save(build_generator(GeneratorConfig("resnet_6blocks", ngf=4), 1, 1).state_dict(), saved)
    before = saved.read_bytes()
    assert_user_error(invoke("import", saved, "--from", "cyclegan", "--out", out), str(saved), "inputs")
    assert saved.read_bytes() == before and tree(out) == {"checkpoints", "checkpoints/latest"}
    inside = out / "checkpoints" / "step_000000" / "g.pth"  # in the folder the import replaces whole
    inside.parent.mkdir()
    saved.rename(inside)
    assert_user_error(invoke("import", inside, "--from", "cyclegan", "--out", out), "step_000000", "holds")
    assert inside.read_bytes() == before
    assert_ok(invoke("import", inside, "--from", "cyclegan", "--out", tmp_path / "elsewhere"))


def test_eval_refuses_to_write_its_figures_over_an_image(tmp_path):
    generated, real = make_images(tmp_path / "gen", 2), make_images(tmp_path / "real", 2, seed=1)
    os.link(real[1], tmp_path / "figures.json")
    before = real[1].read_bytes()
    for json_path in (real[0], tmp_path / "figures.json"):
        assert_user_error(invoke("eval", tmp_path / "gen", tmp_path / "real", "--json", json_path), str(json_path))
    assert real[1].read_bytes() == before and generated[0].is_file()
