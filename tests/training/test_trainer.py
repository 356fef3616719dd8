"""The training loop: files it writes, exact resume, Ctrl-C, data parallel on gloo."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from i2i.config import SCHEMA_VERSION
from i2i.io import load_tensors
from i2i.rundir import load_generator
from i2i.training.datasets import UnalignedDataset
from i2i.training.trainer import resume, train

from ..conftest import tiny_config


def losses(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "losses.jsonl").read_text().splitlines()]


def weights(run_dir: Path, name: str = "G_A") -> dict:
    step = (run_dir / "checkpoints" / "latest").read_text()
    return load_tensors(run_dir / "checkpoints" / step / f"{name}.safetensors")


def test_run_directory_contents(tiny_run):
    assert json.loads((tiny_run / "train_config.json").read_text())["schema"] == SCHEMA_VERSION
    assert (tiny_run / "checkpoints" / "latest").read_text() == "step_000003"
    assert {p.name for p in (tiny_run / "checkpoints" / "step_000003").iterdir()} == {
        "G_A.safetensors",
        "G_B.safetensors",
        "D_A.safetensors",
        "D_B.safetensors",
        "optimizer_G.safetensors",
        "optimizer_D.safetensors",
        "pool_A.safetensors",
        "pool_B.safetensors",
        "state.json",
    }
    assert (tiny_run / "samples" / "step_000003.png").stat().st_size > 0
    assert (tiny_run / "loss_curves.png").stat().st_size > 0
    assert any((tiny_run / "tensorboard").iterdir())
    assert [r["step"] for r in losses(tiny_run)] == [1, 2, 3]
    assert not list(tiny_run.rglob(".*.tmp"))


@pytest.mark.parametrize(
    ("model", "short_budget_options", "net_d"),
    [
        ("cycle_gan", False, "basic"),
        ("fastcut", False, "basic"),
        ("cut", True, "basic"),
        ("cycle_gan", False, "basic+projected"),
    ],
)
def test_resume_continues_exactly(model, short_budget_options, net_d, digits, tmp_path):
    # A pool of 2 fills after 2 steps and then swaps: the pool contents must be restored too.
    config = tiny_config(digits, steps=6, keep_checkpoints=10, pool_size=2)
    config.model, config.D.netD = model, net_d
    if short_budget_options:  # spectral norm's power-iteration vectors and DiffAugment's draws
        config.G.upsample, config.D.spectral_norm = "nearest", True
        config.train.diff_augment, config.train.lr_D_ratio = "color,translation,cutout", 2.0
    config.alg.cut.num_patches, config.alg.cut.flip_equivariance = 32, True
    config.data.num_workers = 1
    full = tmp_path / "full"
    train(config, full)
    # A run killed after step 3: its newest complete checkpoint is step 3.
    cut = tmp_path / "cut"
    shutil.copytree(full, cut)
    for step in (4, 5, 6):
        shutil.rmtree(cut / "checkpoints" / f"step_{step:06d}")
    (cut / "checkpoints" / "latest").write_text("step_000003")
    assert resume(cut) == 6
    assert losses(cut) == [{**r, "time": losses(cut)[i]["time"]} for i, r in enumerate(losses(full))]
    for name in ("G_A", "G_B", "D_A", "D_B") if model == "cycle_gan" else ("G", "D", "F"):
        for key, value in weights(full, name).items():
            assert torch.equal(value, weights(cut, name)[key]), (name, key)


def test_new_run_refuses_an_existing_run_dir(tiny_run, digits):
    from i2i.errors import ConfigError

    with pytest.raises(ConfigError, match="already holds a run"):
        train(tiny_config(digits), tiny_run)


I2I = [sys.executable, "-m", "i2i.cli"]


@pytest.mark.slow
def test_ctrl_c_saves_a_checkpoint_and_exits_cleanly(digits, tmp_path):
    run_dir = tmp_path / "run"
    command = I2I + [
        "train",
        str(digits),
        "--out",
        str(run_dir),
        "--size",
        "32",
        "--ngf",
        "8",
        "--ndf",
        "8",
        "--channels",
        "1",
        "--steps",
        "100000",
        "--save-every",
        "100000",
        "--log-every",
        "1",
        "--workers",
        "1",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not ((run_dir / "losses.jsonl").exists() and len(losses(run_dir)) >= 3):
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output
    assert "interrupted: checkpoint saved at step" in output
    step = int((run_dir / "checkpoints" / "latest").read_text().split("_")[1])
    assert step >= 3 and losses(run_dir)[-1]["step"] == step


@pytest.mark.slow
def test_data_parallel_on_two_processes_equals_one_process_with_double_batch(digits, tmp_path):
    """Two gloo processes with batch 1 see samples 2s and 2s+1 at step s, as one process with
    batch 2 does, and averaged gradients of per-sample means equal the batch-2 gradient.

    Weights are compared through the generators' outputs: Adam turns the float noise of
    gradients that instance norm cancels (biases before it) into full-size steps, so raw
    weights differ in directions the outputs do not see. A run on a different sample stream
    (batch 1, one process) is the yardstick for "different"."""
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"train": {"pool_size": 0}, "G": {"netG": "resnet_6blocks"}}))
    common = [
        str(digits),
        "--config",
        str(config),
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
        "--save-every",
        "3",
        "--log-every",
        "1",
        "--workers",
        "0",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    torchrun = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        "29517",
        "-m",
        "i2i.cli",
    ]
    runs = {
        "ddp": torchrun + ["train", *common, "--batch-size", "1"],
        "single": I2I + ["train", *common, "--batch-size", "2"],
        "other_stream": I2I + ["train", *common, "--batch-size", "1"],
    }
    for name, command in runs.items():
        subprocess.run(command + ["--out", str(tmp_path / name)], check=True, env=env, capture_output=True, timeout=300)
    assert json.loads((tmp_path / "ddp" / "checkpoints" / "step_000003" / "state.json").read_text())["world_size"] == 2

    dataset = UnalignedDataset(digits, tiny_config(digits).data, seed=9)
    images = torch.stack([dataset[i]["A"] for i in range(8)])
    outputs = {name: load_generator(tmp_path / name)[0](images) for name in runs}
    same = (outputs["ddp"] - outputs["single"]).abs().mean()
    different = (outputs["other_stream"] - outputs["single"]).abs().mean()
    assert same < 0.01 and same < different / 5, (float(same), float(different))


def test_periodic_evaluation_logs_distances(digits, tmp_path):
    config = tiny_config(digits, steps=4, eval_every=2, eval_images=8)
    train(config, tmp_path / "run")
    records = [json.loads(line) for line in (tmp_path / "run" / "eval.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 4]
    assert all(
        r["extractor"] == "efficientnet-lite0" and r["generated"] == 8 and r["frechet_distance"] > 0 for r in records
    )
    # the artifact score of the translations, in units of the real B digits, beside the untranslated A digits'
    assert all(r["artifact_period"] in (2, 4) and r["artifact_score"] > 0 for r in records)
    assert records[0]["sources_artifact_score"] == records[1]["sources_artifact_score"] > 0
