"""The first hour of a new user, command by command as typed: what each prints, its exit code
and the files it leaves (issue 21)."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from i2i.config import GeneratorConfig
from i2i.io import list_images
from i2i.nets import build_generator

from .conftest import TINY_TRAIN
from .test_cli import assert_user_error, invoke

README = Path(__file__).resolve().parents[1] / "README.md"
TINY = [*TINY_TRAIN, "--channels", "1"]


@pytest.mark.slow
def test_summary_then_ctrl_c_before_the_first_log_step_then_extend_the_run(tmp_path, digits):
    run = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "i2i.cli",
        "train",
        str(digits),
        "--out",
        str(run),
        "--model",
        "cyclegan",
        *TINY,
        "--steps",
        "1000",
        "--log-every",
        "500",
        "--sample-every",
        "500",
        "--save-every",
        "500",
    ]
    with open(tmp_path / "stderr.txt", "w") as stderr:
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"},
        )
        printed = []
        for line in process.stdout:  # the summary, then the timing line once the loop handles Ctrl-C
            printed.append(line)
            if "timing" in line:
                process.send_signal(signal.SIGINT)
                break
        printed.append(process.stdout.read())
        assert process.wait(timeout=300) == 0, "".join(printed) + (tmp_path / "stderr.txt").read_text()
    out = "".join(printed)
    assert "Traceback" not in (tmp_path / "stderr.txt").read_text()
    counts = [len(list_images(digits / folder)) for folder in ("trainA", "trainB")]
    generator = sum(p.numel() for p in build_generator(GeneratorConfig("resnet_6blocks", ngf=8), 1, 1).parameters())
    for expected in [
        f"i2i train cycle_gan → {run}",
        f"trainA {counts[0]} images, trainB {counts[1]} images",
        "device   cpu, 1 threads",
        f"parameters G_A {generator / 1e6:.2f} M",
        "steps    0 → 1000",
        "s/step over the first 5 steps",
    ]:
        assert expected in out, out
    stopped = int(re.search(r"interrupted: checkpoint saved at step (\d+)", out).group(1))
    assert stopped >= 5 and f"trained to step {stopped}" in out
    assert (run / "checkpoints" / f"step_{stopped:06d}").is_dir() and not (run / "losses.jsonl").exists()
    assert json.loads((run / "train_config.json").read_text())["model"] == "cycle_gan"  # the alias was accepted

    # A run extends with the options that keep the model; the change is recorded.
    result = invoke("train", "--resume", run, "--steps", stopped + 2, "--log-every", "1", "--workers", "0")
    assert result.exit_code == 0, result.output
    assert f"changed train.steps 1000 → {stopped + 2}, train.log_every 500 → 1" in result.output
    history = json.loads((run / "train_config.json").read_text())["history"]
    assert [(h["at_step"], h["changed"]) for h in history] == [
        (stopped, {"train.steps": [1000, stopped + 2], "train.log_every": [500, 1]})
    ]
    assert [json.loads(line)["step"] for line in (run / "losses.jsonl").read_text().splitlines()] == [
        stopped + 1,
        stopped + 2,
    ]
    # A finished run says so instead of training 0 steps; the model options stay refused by their names.
    result = invoke("train", "--resume", run)
    assert result.exit_code == 0 and f"already trained to its last step {stopped + 2}; nothing to do" in result.output
    assert_user_error(invoke("train", "--resume", run, "--steps", "3"), f"is at step {stopped + 2}", "the total")
    assert_user_error(invoke("train", "--resume", run, "--size", "64", "--workers", "1"), "(got --size)")


def test_import_spellings_errors_in_plain_words_and_resume_of_an_imported_run(tmp_path):
    net = build_generator(GeneratorConfig("resnet_6blocks", ngf=4), 1, 1)
    torch.save(net.state_dict(), tmp_path / "g.pth")
    result = invoke("import", tmp_path / "g.pth", "--from", "cycle_gan", "--out", tmp_path / "imported")
    assert result.exit_code == 0 and "resnet_6blocks (ngf 4" in result.output, result.output
    assert_user_error(invoke("train", "--resume", tmp_path / "imported"), "made by `i2i import`", "no training data")

    torch.save(net, tmp_path / "module.pth")  # the whole module: a pickle i2i will not run
    args = ["import", tmp_path / "module.pth", "--from", "cyclegan", "--out", tmp_path / "m"]
    assert_user_error(
        invoke(*args), "module.pth: this file holds pickled Python objects", "net.state_dict()", "i2i --verbose"
    )
    verbose = invoke("--verbose", *args)
    assert verbose.exit_code == 2 and "Weights only load failed" in verbose.output
    assert not (tmp_path / "m").exists()


def test_bench_size_spellings_and_generator_names():
    assert_user_error(invoke("bench", "--sizes", "64x32"), "--sizes 64x32", "256x256")
    result = invoke("bench", "--netG", "resnet9")
    assert result.exit_code == 2 and "'resnet_9blocks', 'resnet_6blocks'" in result.output


def test_video_progress_and_report_file(tmp_path, tiny_run, digits):
    assert "NAME.report.json" in invoke("video", "--help").output
    result = invoke("video", tiny_run, digits / "testA", tmp_path / "styled.avi", "--max-frames", "6", "--report")
    assert result.exit_code == 0, result.output
    assert re.search(r"video: 100%.*6/6 \[", result.output), result.output
    assert json.loads((tmp_path / "styled.report.json").read_text())["summary"]["frames"] == 6


def test_eval_warns_about_few_images_and_scores_the_sources(tmp_path, digits):
    for name, folder in (("generated", "testA"), ("real", "testB")):
        (tmp_path / name).mkdir()
        for path in list_images(digits / folder)[:5]:
            shutil.copy(path, tmp_path / name)
    # the untranslated sources are the generated images themselves here: the baseline must equal the FD
    result = invoke("eval", tmp_path / "generated", tmp_path / "real", "--sources", tmp_path / "generated")
    assert result.exit_code == 0, result.output
    assert "warning: Fréchet distance from 5 generated and 5 real images is strongly biased" in result.output
    assert re.search(r"measuring generated: 100%.*5/5", result.output), result.output
    values = dict(re.findall(r"^\s*(\w+): ([\d.]+)$", result.output, re.M))
    assert values["sources_frechet_distance"] == values["frechet_distance"] and float(values["frechet_distance"]) > 0
    assert "generated images are" not in result.output  # 28 px MNIST digits against 16 px USPS ones
    # the other way round, the generated images reach the extractor upscaled from 16 px: said, with both sides
    swapped = invoke("eval", tmp_path / "real", tmp_path / "generated")
    assert swapped.exit_code == 0, swapped.output
    assert "warning: the generated images are 16 px (median shorter side), the real ones 28 px" in swapped.output


def test_generate_notes_a_training_scale_mismatch(tmp_path, tiny_run, digits):
    (tmp_path / "large").mkdir()
    noise = np.random.default_rng(0).integers(0, 256, (256, 200), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "large/a.png")
    result = invoke("generate", tiny_run, tmp_path / "large", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "trained on images resized to 36 px (32 px crops); these are 200–256 px" in result.output
    (tmp_path / "digits").mkdir()
    for path in list_images(digits / "testB")[:2]:  # 16 px USPS digits: within a factor 2 of the crops, no note
        shutil.copy(path, tmp_path / "digits")
    result = invoke("generate", tiny_run, tmp_path / "digits", tmp_path / "out_digits")
    assert result.exit_code == 0 and "note:" not in result.output


def test_export_uint8_writes_the_file_the_readme_names(tmp_path, tiny_run):
    result = invoke("export", tiny_run, "--io", "uint8", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    assert [p.name for p in tmp_path.glob("*.onnx")] == ["generator_AtoB_uint8_fp32.onnx"]
    assert "generator_AtoB_uint8_fp32.onnx" in README.read_text()
