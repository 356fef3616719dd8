"""Resume, manifests and leftovers after damage: a missing, empty or wrong `latest`, truncated
or malformed checkpoints, a partial log line, a manifest behind its outputs, temporaries of
killed processes, and a diverging run. Resume takes the newest complete checkpoint, says so,
continues bit for bit and never loses a log line."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from i2i.io import read_image

from .conftest import TINY_TRAIN, assert_ok, assert_user_error, invoke, make_images, tree

STEPS = 4


@pytest.fixture(scope="module")
def finished(tmp_path_factory, data) -> Path:
    """A 4-step run with checkpoints at steps 2, 3 and 4 (the newest three are kept)."""
    run = tmp_path_factory.mktemp("finished") / "run"
    assert_ok(
        invoke("train", data, "--out", run, *TINY_TRAIN, "--steps", STEPS, "--save-every", "1", "--log-every", "1")
    )
    return run


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def leftover(folder: Path, name: str, directory: bool = False) -> Path:
    """A temporary as a killed i2i process on this host leaves it."""
    path = folder / f".{name}.i2i-{socket.gethostname()}-{dead_pid()}.k1ll3d00.tmp"
    path.mkdir() if directory else path.write_bytes(b"partial")
    return path


def records(run: Path) -> list[dict]:
    lines = (run / "losses.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "time"} for line in lines]


@pytest.mark.parametrize(
    "damage",
    [
        "latest missing",
        "latest empty",
        "latest names a missing step",
        "newest truncated",
        "newest state malformed",
        "partial log line",
    ],
)
def test_resume_takes_the_newest_complete_checkpoint(tmp_path, finished, damage):
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    checkpoints, newest = run / "checkpoints", run / "checkpoints" / "step_000004"
    reference = {p.name: p.read_bytes() for p in newest.iterdir()}
    logged = records(run)
    stale = leftover(checkpoints, "step_000005", directory=True)
    resumed_from = "step_000004"
    if damage == "latest missing":
        (checkpoints / "latest").unlink()
    elif damage == "latest empty":
        (checkpoints / "latest").write_text("")
    elif damage == "latest names a missing step":
        (checkpoints / "latest").write_text("step_000009")
    elif damage == "newest truncated":
        data = (newest / "G_A.safetensors").read_bytes()
        (newest / "G_A.safetensors").write_bytes(data[: len(data) // 3])
        resumed_from = "step_000003"
    elif damage == "newest state malformed":
        (newest / "state.json").write_text("[1, 2")
        resumed_from = "step_000003"
    else:
        with open(run / "losses.jsonl", "a") as handle:
            handle.write('{"step": 5, "lr": 0.0')
    result = invoke("train", "--resume", run)
    assert_ok(result)
    assert f"from {resumed_from}" in result.output and not stale.exists()
    # lossless: the resumed run ends on the same bytes and the same log as the uninterrupted one
    assert {p.name: p.read_bytes() for p in newest.iterdir()} == reference
    assert records(run) == logged
    if resumed_from != "step_000004" or damage == "partial log line":
        assert (run / "losses.superseded.jsonl").read_text().strip()


def test_resume_without_a_complete_checkpoint_is_one_line(tmp_path, finished):
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    for state in (run / "checkpoints").glob("step_*/state.json"):
        state.write_text("{}")
    log = (run / "losses.jsonl").read_bytes()
    assert_user_error(invoke("train", "--resume", run), "no complete checkpoint")
    assert (run / "losses.jsonl").read_bytes() == log  # nothing truncated


def test_divergence_stops_at_the_first_non_finite_loss(tmp_path, data):
    # Every learning rate the schema accepts can still diverge; a weight near float32's maximum
    # makes the next forward pass overflow at once, which no legal --lr does deterministically.
    run = tmp_path / "run"
    assert_ok(invoke("train", data, "--out", run, *TINY_TRAIN, "--steps", "3", "--save-every", "1"))
    poisoned = run / "checkpoints" / "step_000003" / "G_A.safetensors"
    weights = load_file(poisoned)
    first = next(name for name, tensor in weights.items() if tensor.dim() == 4)
    weights[first] = torch.full_like(weights[first], 3e38)
    save_file(weights, poisoned)
    line = assert_user_error(invoke("train", "--resume", run, "--steps", "20"), "diverged", "--lr")
    assert "step 4" in line and ("nan" in line or "inf" in line or "non-finite" in line)
    saved = sorted(p.name for p in (run / "checkpoints").glob("step_*"))
    assert saved == ["step_000001", "step_000002", "step_000003"], saved  # nothing written from the diverged weights
    assert (run / "checkpoints" / "latest").read_text() == "step_000003"


def test_manifest_gaps_are_reconciled(tmp_path, run):
    source, out = tmp_path / "in", tmp_path / "out"
    make_images(source, 5)
    assert_ok(invoke("generate", run, source, out))
    manifest = out / "manifest.jsonl"
    lines = manifest.read_text().splitlines()
    assert len(lines) == 5
    first, second = (json.loads(line)["output"] for line in lines[:2])
    # a kill after the rename of `first` but before its line, and one in the middle of a line;
    # `second` is an output whose file was damaged by something else, also without its line
    manifest.write_text("\n".join(lines[2:]) + "\n" + lines[0][:25])
    Path(second).write_bytes(b"not a png")
    stale = leftover(out, "003.png")
    result = invoke("generate", run, source, out, "--resume")
    assert_ok(result)
    entries = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert sorted(e["output"] for e in entries) == sorted(str(out / f"{k:03d}.png") for k in range(5))
    assert [e.get("reconciled") for e in entries if e["output"] == first] == [True]
    read_image(Path(second))  # redone
    assert not stale.exists() and tree(out) == {f"{k:03d}.png" for k in range(5)} | {"manifest.jsonl"}
    assert "4 already there" in result.output
