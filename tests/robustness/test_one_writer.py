"""One writer per folder, with real processes: a second `i2i train`, `--resume` or `i2i generate`
into a folder another one writes is refused with one line naming the folder and the writer's pid
(exit 2); a SIGKILLed writer's hold lapses with it, and a finished one leaves no lock file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from i2i.errors import FolderInUseError
from i2i.outputs import RUN_PART, claim_folder, lock_path

from .conftest import TINY_TRAIN, child_env, cli_command, make_images, tree

pytestmark = pytest.mark.slow


def start(*args) -> subprocess.Popen:
    return subprocess.Popen(
        cli_command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env()
    )


def wait_for(condition, child: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert child.poll() is None, child.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the writer did not start"
        time.sleep(0.05)


def holds(folder: Path, child: subprocess.Popen, part: str | None = None) -> bool:
    """The lock file of `folder` (or of its `part`) names `child`: it holds the folder."""
    lock = lock_path(folder, part)
    return lock.is_file() and lock.read_text().strip() == str(child.pid)


def refused(*args, folder: Path, pid: int) -> str:
    done = subprocess.run(cli_command(*args), capture_output=True, text=True, env=child_env(), timeout=300)
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error: ")]
    assert done.returncode == 2 and len(errors) == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert str(folder) in errors[0] and str(pid) in errors[0], errors[0]
    return errors[0]


def stop(child: subprocess.Popen) -> None:
    child.send_signal(signal.SIGKILL)
    child.communicate()


def test_a_run_has_one_trainer(tmp_path, data):
    run = tmp_path / "run"
    first = start("train", data, "--out", run, *TINY_TRAIN, "--steps", "100000", "--save-every", "2")
    try:
        wait_for(lambda: (run / "checkpoints" / "latest").is_file(), first)
        refused("train", data, "--out", run, *TINY_TRAIN, folder=run, pid=first.pid)
        refused("train", "--resume", run, folder=run, pid=first.pid)
    finally:
        stop(first)

    resumed = start("train", "--resume", run)  # the killed trainer's hold lapsed with it
    try:
        wait_for(lambda: holds(run, resumed, RUN_PART), resumed)
        line = refused("train", "--resume", run, folder=run, pid=resumed.pid)
        assert "wait for it to end" in line
    finally:
        stop(resumed)


def test_an_output_folder_has_one_generate(tmp_path, run):
    source, out = tmp_path / "in", tmp_path / "out"
    make_images(source, 3)
    # The first generate blocks reading this image until the test writes it: a writer caught mid-job.
    os.mkfifo(source / "zzz.png")
    first = start("generate", run, f"{source}/*.png", out, "--workers", "1", "--backend", "torch")
    try:
        wait_for(lambda: holds(out, first), first)
        refused("generate", run, f"{source}/00*.png", out, folder=out, pid=first.pid)
        # a shard, an export or a video may share a folder, but not with a whole-folder writer
        refused("generate", run, f"{source}/0*.png", out, "--shard", "1/2", folder=out, pid=first.pid)
        try:
            with open(source / "zzz.png", "wb") as fifo:
                fifo.write((source / "000.png").read_bytes())
        except BrokenPipeError:
            pass  # the reader cannot size a pipe: it skipped it as unreadable and closed it before the write
        _, stderr = first.communicate(timeout=300)
        assert first.returncode == 0, stderr[-3000:]
    finally:
        if first.poll() is None:
            stop(first)
    # the pipe may be translated or skipped as unreadable; no lock file left
    assert tree(out) - {"zzz.png"} == {"000.png", "001.png", "002.png", "manifest.jsonl"}


def test_a_killed_holder_releases_and_parts_share_a_folder(tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time\nfrom i2i.outputs import claim_folder\n"
            f"with claim_folder({str(tmp_path / 'out')!r}, 'shard 0 of 2'):\n"
            "    print('held', flush=True)\n    time.sleep(600)",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=child_env(),
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with claim_folder(tmp_path / "out", "shard 1 of 2"):  # another part: shared
            pass
        with pytest.raises(FolderInUseError, match=f"process {holder.pid} is writing shard 0 of 2 there"):
            with claim_folder(tmp_path / "out", "shard 0 of 2"):
                pass
        with pytest.raises(FolderInUseError, match=f"process {holder.pid} is writing there"):
            with claim_folder(tmp_path / "out"):
                pass
    finally:
        stop(holder)
    with claim_folder(tmp_path / "out"):  # the kill released it
        pass
    assert list((tmp_path / "out").iterdir()) == []  # the killed holder's lock files went too
