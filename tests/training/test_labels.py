"""Labelled dataset formats: parsers (fuzzed), rasterization, alignment under augmentation,
errors naming file and line, --skip-bad, and the losses they drive."""

import json
import math
import shutil

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from i2i.cli import cli
from i2i.config import DataConfig
from i2i.errors import DataError
from i2i.io import list_images
from i2i.training.datasets import LabeledDataset
from i2i.training.labels import LabelProblem, parse_box_line, parse_paths_line, rasterize, read_boxes, read_mask
from i2i.training.models import MODELS

from ..conftest import tiny_config


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_box_parser_only_raises_label_problems(text):
    try:
        cls, x0, y0, x1, y1 = parse_box_line(text)
    except LabelProblem:
        return
    assert cls >= 1 and 0 <= x0 < x1 and 0 <= y0 < y1


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 9), st.floats(0, 500), st.floats(0, 500), st.floats(0.5, 100), st.floats(0.5, 100))
def test_box_parser_reads_valid_lines(cls, x, y, w, h):
    assert parse_box_line(f"{cls} {x} {y} {x + w} {y + h}") == (cls, x, y, x + w, y + h)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_paths_parser_only_raises_label_problems(text):
    try:
        image, label = parse_paths_line(text)
    except LabelProblem:
        return
    assert image and label


def test_rasterize_and_clip(tmp_path):
    mask = rasterize([(1, 2.0, 1.0, 5.0, 3.0), (2, 4.0, 0.0, 6.0, 1.0)], 4, 6)
    expected = np.zeros((4, 6), np.uint8)
    expected[1:3, 2:5] = 1
    expected[0:1, 4:6] = 2
    assert np.array_equal(mask, expected)
    (tmp_path / "b.txt").write_text("1 3 2 50 60\n")
    assert read_boxes(tmp_path / "b.txt", 10, 8, 2) == [(1, 3.0, 2.0, 10, 8)]  # clipped to the image


@pytest.mark.parametrize(
    "line, message",
    [
        ("1 2 3", "got 3 field"),
        ("x 1 1 2 2", "class must be an integer"),
        ("0 1 1 2 2", "class 0 must be >= 1"),
        ("1 -1 1 2 2", "negative coordinate"),
        ("1 5 1 2 2", "inverted"),
        ("1 20 1 30 2", "outside the 10x8 image"),
        ("3 1 1 2 2", "class 3 >= the 3 classes"),
        ("1 nan 1 2 2", "finite"),
    ],
)
def test_bad_box_lines_name_file_and_line(tmp_path, line, message):
    (tmp_path / "b.txt").write_text("1 0 0 2 2\n" + line + "\n")
    with pytest.raises(LabelProblem, match=rf"b.txt:2: .*{message}"):
        read_boxes(tmp_path / "b.txt", 10, 8, 3)


def test_bad_masks(tmp_path):
    Image.fromarray(np.zeros((4, 5), np.uint8)).save(tmp_path / "small.png")
    with pytest.raises(LabelProblem, match="mask is 5x4, its image 6x4"):
        read_mask(tmp_path / "small.png", 6, 4, 3)
    Image.fromarray(np.full((4, 6), 7, np.uint8)).save(tmp_path / "labels.png")
    with pytest.raises(LabelProblem, match="label 7 >= the 3 classes"):
        read_mask(tmp_path / "labels.png", 6, 4, 3)


def write_bbox_domain(folder, photos, count=4, offset=0):
    """Real photos with a synthetic box each: the box region painted white, so alignment can
    be read off the pixels."""
    (folder / "imgs").mkdir(parents=True)
    (folder / "bbox").mkdir()
    lines = []
    for i, path in enumerate(list_images(photos)[offset : offset + count]):
        image = np.asarray(Image.open(path).convert("RGB").resize((64, 48))).copy()
        x0, y0, x1, y1 = 8 + 2 * i, 6 + i, 40 + i, 30 + 2 * i
        image[y0:y1, x0:x1] = 255
        Image.fromarray(image).save(folder / "imgs" / f"{i}.png")
        (folder / "bbox" / f"{i}.txt").write_text(f"1 {x0} {y0} {x1} {y1}\n")
        lines.append(f"imgs/{i}.png bbox/{i}.txt")
    (folder / "paths.txt").write_text("\n".join(lines) + "\n")


@pytest.fixture()
def bbox_data(tmp_path, photos):
    write_bbox_domain(tmp_path / "trainA", photos / "trainA")
    write_bbox_domain(tmp_path / "trainB", photos / "trainB")
    return tmp_path


@pytest.mark.parametrize("preprocess", ["crop", "resize_and_crop"])
def test_masks_follow_their_images_through_augmentation(bbox_data, preprocess):
    data = DataConfig(dataset_mode="bbox", semantic_nc=2, load_size=40, crop_size=32, preprocess=preprocess)
    dataset = LabeledDataset(bbox_data, data, seed=0)
    for k in range(12):
        sample = dataset[k]
        white = (sample["A"] > 0.99).all(dim=0)
        labelled = sample["A_label"] == 1
        assert sample["A_label"].shape == (32, 32) and set(sample["A_label"].unique().tolist()) <= {0, 1}
        overlap = (white & labelled).sum() / (white | labelled).sum().clamp_min(1)
        assert overlap > (0.99 if preprocess == "crop" else 0.85), (k, float(overlap))


def test_dataset_errors_and_skip_bad(bbox_data):
    with open(bbox_data / "trainA" / "paths.txt", "a") as handle:
        handle.write("imgs/0.png bbox/missing.txt\nonly_one_field\n")
    data = DataConfig(dataset_mode="bbox", semantic_nc=2, load_size=40, crop_size=32)
    with pytest.raises(DataError, match=r"trainA/paths.txt:5: .*missing.txt does not exist; .*--skip-bad"):
        LabeledDataset(bbox_data, data, seed=0)
    data.skip_bad = True
    dataset = LabeledDataset(bbox_data, data, seed=0)
    assert len(dataset.skipped) == 2 and "paths.txt:6" in dataset.skipped[1]
    assert len(dataset.scans["A"].samples) == 4


@pytest.mark.parametrize("model_name, expected", [("cycle_gan", {"out_mask_A", "out_mask_B"}), ("cut", {"out_mask_A"})])
def test_out_of_mask_loss_in_training(bbox_data, model_name, expected):
    config = tiny_config(bbox_data, channels=3, size=32, steps=3, pool_size=0)
    config.model, config.alg.cut.num_patches = model_name, 32
    config.data.dataset_mode, config.data.semantic_nc = "bbox", 2
    model = MODELS[model_name](config.validate(), torch.device("cpu"), None)
    dataset = LabeledDataset(bbox_data, config.data, seed=0)
    batch = {k: torch.stack([dataset[i][k] for i in range(2)]) for k in ("A", "B", "A_label", "B_label")}
    with torch.no_grad():  # the translation the step's generator loss sees (weights not yet stepped)
        fake = model.networks["G_A" if model_name == "cycle_gan" else "G"](batch["A"]).numpy()
    real, outside = batch["A"].numpy(), (batch["A_label"] == 0).numpy()[:, None].repeat(3, 1)
    assert 0 < outside.mean() < 1  # the boxes cover part of each image
    expected_out_mask = 10.0 * np.abs(fake - real)[outside].mean()  # λ_out_mask · L1 over unlabelled pixels
    losses = model.training_step(batch, 0)
    assert expected <= set(losses) and all(math.isfinite(v) for v in losses.values())
    assert losses["out_mask_A"] == pytest.approx(expected_out_mask, rel=1e-4)
    rows = model.sample_rows(batch)
    assert {"mask(A)", "G_A(A) outside mask"} <= set(rows)


@pytest.mark.slow
def test_class_mode_end_to_end(digits, tmp_path):
    """MNIST → USPS digits 0 and 1 as class folders: trains with the class plane and class
    losses, generates into the same class folders, exports with the class channel."""
    for domain, source in (("trainA", "trainA"), ("trainB", "trainB"), ("testA", "testA")):
        for label, name in (("0", "zero"), ("1", "one")):
            (tmp_path / "data" / domain / name).mkdir(parents=True)
            for path in [p for p in sorted((digits / source).iterdir()) if p.stem.endswith(f"_{label}")][:15]:
                shutil.copy(path, tmp_path / "data" / domain / name)
    run = tmp_path / "run"
    runner = CliRunner()
    result = runner.invoke(
        cli,
        [
            "train",
            str(tmp_path / "data"),
            "--dataset-mode",
            "class",
            "--out",
            str(run),
            "--size",
            "32",
            "--ngf",
            "8",
            "--ndf",
            "8",
            "--channels",
            "1",
            "--steps",
            "3",
            "--workers",
            "0",
            "--save-every",
            "3",
        ],
    )
    assert result.exit_code == 0, result.output
    config = json.loads((run / "train_config.json").read_text())
    assert config["data"]["class_names"] == ["one", "zero"] and config["data"]["semantic_nc"] == 2
    losses = json.loads((run / "losses.jsonl").read_text().splitlines()[-1])
    assert {"class_A", "class_B", "C"} <= set(losses)
    result = runner.invoke(cli, ["generate", str(run), str(tmp_path / "data" / "testA"), str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert sorted(p.parent.name for p in list_images(tmp_path / "out")) == ["one"] * 15 + ["zero"] * 15
    result = runner.invoke(cli, ["export", str(run)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["generate", str(run), str(digits / "testA"), str(tmp_path / "flat")])
    assert result.exit_code == 2 and "class-conditional" in result.output
