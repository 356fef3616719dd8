"""Image decoding of odd formats, atomic writes, checkpoints."""

import numpy as np
import pytest
import torch
from PIL import Image

from i2i.errors import CheckpointError, DataError
from i2i.io import (
    atomic_write_bytes,
    latest_checkpoint,
    load_tensors,
    read_image,
    remove_orphaned_temporaries,
    save_checkpoint,
    write_image,
)


def test_real_images_decode(photos, digits):
    photo = read_image(next((photos / "trainA").iterdir()))
    assert photo.shape == (256, 256, 3) and photo.dtype == np.uint8
    digit = read_image(next((digits / "trainB").iterdir()), channels=1)
    assert digit.shape == (16, 16, 1)
    assert read_image(next((digits / "trainB").iterdir()), channels=3).shape == (16, 16, 3)


def test_sixteen_bit_is_scaled(tmp_path):
    values = np.array([[0, 257 * 128, 65535]], np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    assert read_image(tmp_path / "deep.png", channels=1)[0, :, 0].tolist() == [0, 128, 255]


def test_rgba_is_composited_over_white(tmp_path):
    pixels = np.array([[[255, 0, 0, 255], [0, 0, 255, 0], [0, 0, 0, 128]]], np.uint8)
    Image.fromarray(pixels, "RGBA").save(tmp_path / "alpha.png")
    image = read_image(tmp_path / "alpha.png")
    assert image[0, 0].tolist() == [255, 0, 0]
    assert image[0, 1].tolist() == [255, 255, 255]
    assert image[0, 2].tolist() == [127, 127, 127]


def test_palette_image_expands_to_rgb(tmp_path):
    image = Image.new("P", (3, 2))
    image.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    image.putpixel((1, 0), 1)
    image.save(tmp_path / "palette.png")
    decoded = read_image(tmp_path / "palette.png")
    assert decoded[0, 0].tolist() == [10, 20, 30] and decoded[0, 1].tolist() == [200, 100, 50]


def test_gif_decodes_through_pillow_or_opencv(tmp_path):
    Image.fromarray(np.full((5, 7, 3), 90, np.uint8)).save(tmp_path / "flat.gif")
    assert read_image(tmp_path / "flat.gif").shape == (5, 7, 3)


@pytest.mark.parametrize("content, message", [(b"", "empty"), (b"this is not an image", "not a readable image")])
def test_unreadable_files_are_named(tmp_path, content, message):
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as info:
        read_image(path)
    assert str(path) in str(info.value)


def test_write_image_round_trip(tmp_path):
    image = np.random.default_rng(0).integers(0, 255, (9, 11, 3), dtype=np.uint8)
    write_image(tmp_path / "sub" / "x.png", image)
    assert np.array_equal(read_image(tmp_path / "sub" / "x.png"), image)
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["x.png"]  # no temp files left


def test_atomic_write_keeps_old_file_when_interrupted(tmp_path, monkeypatch):
    path = tmp_path / "a.txt"
    path.write_bytes(b"old")
    monkeypatch.setattr("os.replace", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"old" and list(tmp_path.iterdir()) == [path]


def test_checkpoints_rotate_and_latest_points_at_newest(tmp_path):
    for step in (1, 2, 3, 4):
        save_checkpoint(
            tmp_path / "checkpoints", step, {"net": {"w": torch.full((2,), float(step))}}, {"step": step}, keep=2
        )
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("step_*")) == ["step_000003", "step_000004"]
    folder = latest_checkpoint(tmp_path)
    assert folder.name == "step_000004"
    assert load_tensors(folder / "net.safetensors")["w"].tolist() == [4.0, 4.0]


def test_truncated_checkpoint_is_reported(tmp_path):
    folder = save_checkpoint(tmp_path / "checkpoints", 1, {"net": {"w": torch.ones(1000)}}, {"step": 1}, keep=1)
    data = (folder / "net.safetensors").read_bytes()
    (folder / "net.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_tensors(folder / "net.safetensors")
    with pytest.raises(CheckpointError, match="no complete checkpoint"):
        latest_checkpoint(tmp_path / "elsewhere")


def test_orphaned_temporaries_of_finished_files_go_whatever_their_host(tmp_path):
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "a.png").write_bytes(b"done")
    (tmp_path / "c.png").write_bytes(b"done, not this job's")
    orphan = sub / ".a.png.i2i-another-host-4242.x1y2.tmp"  # a lost node's writer; the retry wrote a.png
    unfinished = sub / ".b.png.i2i-another-host-4242.x1y2.tmp"  # b.png not written (yet): kept
    not_ours = tmp_path / ".c.png.i2i-another-host-4242.x1y2.tmp"  # c.png is not in the job: kept
    for path in (orphan, unfinished, not_ours):
        path.write_bytes(b"half")
    finished = {str(sub / "a.png"), str(sub / "b.png")}  # absolute paths, as a job's targets are
    assert remove_orphaned_temporaries(tmp_path, finished) == 1
    assert not orphan.exists() and unfinished.exists() and not_ours.exists()
    assert (sub / "a.png").read_bytes() == b"done"
