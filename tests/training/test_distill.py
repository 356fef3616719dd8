"""Distillation: a student learns its teacher's translation, resumes exactly, carries its teacher,
and its export is gated against the teacher's outputs."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from i2i.errors import ConfigError
from i2i.io import list_images, load_tensors, read_image
from i2i.rundir import load_generator, load_predictor, load_teacher
from i2i.training.distill import distill_config
from i2i.training.models.distill import tapped_blocks
from i2i.training.trainer import resume, train

from ..conftest import tiny_config


@pytest.fixture(scope="module")
def teacher(digits, tmp_path_factory) -> Path:
    """A CUT teacher on real digits with a residual ResNet-6 (ngf 16), trained 30 steps: it
    changes the images (a non-zero head), so a student has something to learn."""
    config = tiny_config(digits, steps=30)
    config.model, config.G.ngf, config.G.residual, config.G.upsample = "fastcut", 16, True, "nearest"
    config.train.save_every = 30
    run = tmp_path_factory.mktemp("teacher") / "run"
    train(config.validate(), run)
    return run


def student_config(teacher: Path, steps: int, **raw_train):
    return distill_config(
        teacher, ngf=4, raw={"train": {"steps": steps, "save_every": 1, "sample_every": 1000, **raw_train}}
    )


def held_out_batch(digits: Path, count: int = 8) -> torch.Tensor:
    images = [read_image(path, 1)[:28, :28] for path in list_images(digits / "testA")[:count]]
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 127.5 - 1
    return torch.nn.functional.pad(x, (2, 2, 2, 2), mode="reflect")  # 32 px, a multiple of 4


def test_the_student_config_follows_the_teacher(teacher):
    config = distill_config(teacher)
    t = json.loads((teacher / "train_config.json").read_text())
    assert config.model == "distill"
    assert (config.G.netG, config.G.ngf, config.G.residual, config.G.upsample) == ("resnet_6blocks", 8, True, "nearest")
    assert config.data.dataroot == t["data"]["dataroot"] and config.data.crop_size == t["data"]["crop_size"]
    alg = config.alg.distill
    assert (alg.teacher, alg.teacher_model, alg.teacher_step) == (str(teacher.resolve()), "fastcut", 30)
    assert alg.teacher_G == t["G"]


def test_the_student_learns_the_teachers_translation(teacher, digits, tmp_path):
    """After 150 steps the student's outputs on held-out digits are clearly closer to the teacher's
    than the identity it starts from (a residual student starts as the identity)."""
    run = tmp_path / "student"
    train(student_config(teacher, 150, lr=5e-4), run)
    x = held_out_batch(digits)
    t_net, _ = load_generator(teacher)
    s_net, _ = load_generator(run)
    with torch.no_grad():
        target = t_net(x)
        start = (x - target).abs().mean()
        learned = (s_net(x) - target).abs().mean()
    assert start > 0.02  # the teacher does change the digits
    assert learned < 0.7 * start  # measured 0.58 (0.51 with 400 steps)


def test_resume_continues_exactly_and_the_checkpoint_carries_the_teacher(teacher, tmp_path):
    whole, halves = tmp_path / "whole", tmp_path / "halves"
    config = student_config(teacher, 4, keep_checkpoints=10)
    config.alg.distill.lambda_GAN = 0.5  # the discriminator's state resumes too
    train(config, whole)
    config.train.steps = 2
    train(config, halves)
    moved = tmp_path / "teacher_moved_away"
    shutil.copytree(teacher, moved)
    shutil.rmtree(teacher)
    try:
        resume(halves, {"train.steps": 4})  # the teacher's folder is gone: its weights are in the checkpoint
    finally:
        shutil.move(str(moved), str(teacher))
    for name in ("G", "M", "D", "T"):
        a = load_tensors(whole / "checkpoints" / "step_000004" / f"{name}.safetensors")
        b = load_tensors(halves / "checkpoints" / "step_000004" / f"{name}.safetensors")
        assert all(torch.equal(a[k], b[k]) for k in a), name
    t_net, _ = load_generator(teacher)
    carried, _ = load_teacher(halves)
    assert all(torch.equal(a, b) for a, b in zip(t_net.state_dict().values(), carried.state_dict().values()))


def test_feature_distillation_taps_evenly_spaced_blocks():
    from i2i.config import GeneratorConfig
    from i2i.nets import build_generator

    nine = build_generator(GeneratorConfig(netG="resnet_9blocks", ngf=4), 3, 3)
    six = build_generator(GeneratorConfig(netG="mobile_resnet_9blocks", ngf=4), 3, 3)
    blocks = [m for m in nine.model if type(m).__name__ == "ResnetBlock"]
    assert tapped_blocks(nine) == [blocks[2], blocks[5], blocks[8]]
    assert len(tapped_blocks(six)) == 3


def test_refusals(teacher, tmp_path):
    with pytest.raises(ConfigError, match="translates AtoB"):
        distill_config(teacher, direction="BtoA")
    with pytest.raises(ConfigError, match="lambda_feature"):
        distill_config(teacher, net_g="unet_128")
    with pytest.raises(ConfigError, match="no such folder"):
        distill_config(teacher, extra_sources=(tmp_path / "missing",))
    student = tmp_path / "student"
    train(student_config(teacher, 1), student)
    with pytest.raises(ConfigError, match="itself a student"):
        distill_config(student)


def test_extra_sources_join_the_source_domain(teacher, digits, tmp_path):
    from i2i.training.models import MODELS

    config = distill_config(teacher, extra_sources=(digits / "testA",))
    dataset = MODELS["distill"].build_dataset(config)
    assert len(dataset.paths_A) == len(list_images(digits / "trainA")) + len(list_images(digits / "testA"))


@pytest.mark.slow
def test_a_recycle_gan_student_keeps_the_teachers_predictors(tmp_path):
    from ..conftest import shared_dataset

    video = shared_dataset("video")
    clips = tmp_path / "clips"
    for domain, clip in (("A", "carphone_pristine.mp4"), ("B", "vtest_first50_384x288.mp4")):
        (clips / f"train{domain}").mkdir(parents=True)
        (clips / f"train{domain}" / clip).symlink_to(video / clip)
    config = tiny_config(clips, channels=3, steps=2)
    config.model, config.data.dataset_mode = "recycle_gan", "temporal"
    config.alg.recycle_gan.predictor_ngf = 4
    teacher_run = tmp_path / "teacher"
    train(config.validate(), teacher_run)
    student = tmp_path / "student"
    train(distill_config(teacher_run, ngf=4, raw={"train": {"steps": 2, "save_every": 2}}), student)
    for domain in "AB":
        kept, _ = load_predictor(teacher_run, domain)
        carried, _ = load_predictor(student, domain)
        assert all(torch.equal(a, b) for a, b in zip(kept.state_dict().values(), carried.state_dict().values()))


@pytest.mark.slow
def test_the_students_export_is_gated_against_its_teacher(teacher, tmp_path):
    from i2i.export.exporter import ExportRequest, export
    from i2i.export.quality import QualityGateError

    student = tmp_path / "student"
    train(student_config(teacher, 2), student)
    report = export(ExportRequest(student, gate_images=8)).quality
    assert report.teacher is not None and report.precision == "fp32"
    t = report.teacher
    assert t.fd_teacher > 0 and t.fd_to_teacher > 0 and t.change == pytest.approx(t.fd_to_teacher / t.fd_teacher)
    metadata = json.loads((student / "generator_AtoB.quality.json").read_text())
    assert metadata["teacher"]["fd_to_teacher"] == pytest.approx(t.fd_to_teacher)
    (student / "generator_AtoB.onnx").unlink()
    with pytest.raises(QualityGateError, match="vs teacher"):
        export(ExportRequest(student, gate_images=8, max_teacher_change=t.change / 2))
    assert not (student / "generator_AtoB.onnx").exists()


@pytest.mark.slow
def test_the_trade_off_benchmark_measures_teacher_and_students(teacher, digits, tmp_path):
    from i2i.benchmarks.distillation import main

    student = tmp_path / "student"
    train(student_config(teacher, 2), student)
    photos, targets = tmp_path / "photos", tmp_path / "targets"
    for folder, source, count in ((photos, "testA", 6), (targets, "testB", 12)):
        folder.mkdir()
        for path in list_images(digits / source)[:count]:
            shutil.copy(path, folder)
    result = main(
        [
            str(teacher),
            str(student),
            "--photos",
            str(photos),
            "--targets",
            str(targets),
            "--out",
            str(tmp_path / "bench"),
            "--rounds",
            "1",
            "--max-teacher-change",
            "100",
        ]
    )
    rows = result["rows"]
    assert rows["teacher"]["gmacs"] > 4 * rows["student1"]["gmacs"] > 0  # ngf 16 vs 4: 16x, less the fixed ends
    for name in ("teacher", "student1"):
        for variant in ("eager", "int8"):
            assert rows[name][variant]["images_per_second"] > 0
            assert np.isfinite(rows[name][variant]["frechet_distance"])
    assert rows["teacher"]["eager"]["psnr_vs_teacher_db"] == 99.0  # its own outputs: identical
    assert result["default_student"] in (None, "student1")
    assert (tmp_path / "bench" / "distillation.png").stat().st_size > 0
