"""Real processes under hostile conditions: SIGKILL at random moments of `train` and `generate`
(then resume), and a full disk as the writers see it (RLIMIT_FSIZE: EFBIG). Checked: no
traceback, a one-line error and a non-zero exit on write failure, nothing partial under a final
name, no temporaries left, and resumes that end exactly where an uninterrupted run ends."""

from __future__ import annotations

import hashlib
import json
import random
import signal
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from i2i.io import read_image

from .conftest import TINY_TRAIN, child_env, cli_batch, cli_command, make_images

pytestmark = pytest.mark.slow


def run_to_end(command: list, timeout: float = 300) -> subprocess.CompletedProcess:
    done = subprocess.run(command, capture_output=True, text=True, env=child_env(), timeout=timeout)
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    return done


def kill_at_random(command: list, ready: Path, rng: random.Random, window: float) -> bool:
    """Start `command`, wait until `ready` exists, SIGKILL it after a random delay in [0, window)
    seconds; True if it was killed, False if it had finished first."""
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=child_env())
    while not ready.exists() and child.poll() is None:
        time.sleep(0.01)
    time.sleep(rng.uniform(0, window))
    killed = child.poll() is None
    child.send_signal(signal.SIGKILL)
    _, stderr = child.communicate()
    assert killed or "Traceback" not in stderr, stderr[-3000:]
    return killed


def no_temporaries(folder: Path) -> bool:
    return not [p for p in Path(folder).rglob(".*.tmp")]


def test_train_killed_at_random_moments_resumes_losslessly(tmp_path, data):
    steps = ["--steps", "16", "--save-every", "1", "--log-every", "1"]
    reference = tmp_path / "reference"
    assert run_to_end(cli_command("train", data, "--out", reference, *TINY_TRAIN, *steps)).returncode == 0

    run, rng, kills = tmp_path / "run", random.Random(18), 0
    command = cli_command("train", data, "--out", run, *TINY_TRAIN, *steps)
    while kill_at_random(command, run / "checkpoints" / "latest", rng, window=1.5):
        kills += 1
        command = cli_command("train", "--resume", run)
        if kills == 3:
            break
    assert kills >= 1
    assert run_to_end(cli_command("train", "--resume", run)).returncode == 0

    final, expected = run / "checkpoints" / "step_000016", reference / "checkpoints" / "step_000016"
    assert {p.name: p.read_bytes() for p in final.iterdir()} == {p.name: p.read_bytes() for p in expected.iterdir()}

    def losses(folder: Path) -> list[dict]:
        return [
            {k: v for k, v in json.loads(line).items() if k != "time"}
            for line in (folder / "losses.jsonl").read_text().splitlines()
        ]

    assert losses(run) == losses(reference)
    assert no_temporaries(run)


def test_generate_killed_at_random_moments_resumes_to_the_same_outputs(tmp_path, run):
    source = tmp_path / "in"
    make_images(source, 120)
    # One backend pinned: `auto` times the installed ones per process and may pick another after a kill.
    options = ["--batch-size", "1", "--workers", "1", "--backend", "torch"]
    assert run_to_end(cli_command("generate", run, source, tmp_path / "reference", *options)).returncode == 0

    out, rng = tmp_path / "out", random.Random(5)
    command = cli_command("generate", run, source, out, *options)
    for _ in range(2):
        kill_at_random(command, out / "manifest.jsonl", rng, window=1.0)
        for path in out.glob("*.png"):  # whatever has a final name is complete
            read_image(path)
        command = cli_command("generate", run, source, out, *options, "--resume")
    assert run_to_end(command).returncode == 0

    expected = {p.name: p.read_bytes() for p in (tmp_path / "reference").glob("*.png")}
    assert {p.name: p.read_bytes() for p in out.glob("*.png")} == expected
    entries = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert sorted(Path(e["output"]).name for e in entries) == sorted(expected)
    assert all(hashlib.sha256(Path(e["output"]).read_bytes()).hexdigest() == e["sha256"] for e in entries)
    assert no_temporaries(out)


def test_full_disk_is_one_line_and_leaves_nothing_partial(tmp_path, data, run):
    clip = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 64))
    rng = np.random.default_rng(0)
    for _ in range(20):
        writer.write(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    writer.release()
    video_out, images_out, run_out = tmp_path / "v" / "out.avi", tmp_path / "g", tmp_path / "t"
    results = cli_batch(
        [
            [20_000, ["video", run, clip, video_out]],
            [300, ["generate", run, data / "testA", images_out]],
            [60_000, ["train", data, "--out", run_out, *TINY_TRAIN, "--steps", "2", "--save-every", "1"]],
        ]
    )
    for result, output in zip(results, (video_out, images_out, run_out)):
        assert not result["traceback"], result["traceback"]
        errors = [line for line in result["output"].splitlines() if line.startswith("Error: ")]
        assert result["exit"] == 2 and len(errors) == 1 and str(output) in errors[0], result["output"]
        assert "cannot write" in errors[0] or "encoder wrote" in errors[0], errors[0]
    assert not video_out.exists() and no_temporaries(video_out.parent)
    assert all(read_image(p) is not None for p in images_out.glob("*.png")) and no_temporaries(images_out)
    assert not list((run_out / "checkpoints").glob("step_*")) and no_temporaries(run_out)
