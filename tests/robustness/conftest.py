"""Hostile-input helpers: a small synthetic dataset and run, CLI calls in-process or in a child
process (for resource limits and kills), and the checks every failure must pass."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from i2i.cli import cli

from ..conftest import TINY_TRAIN as TINY
from ..conftest import untrained_run

# The tiny network, grey, with no sample grids and no flips (exact replays).
TINY_TRAIN = [*TINY, "--channels", "1", "--sample-every", "1000", "--no-flip"]


def make_images(folder: Path, count: int, size: int = 32, seed: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = [folder / f"{k:03d}.png" for k in range(count)]
    for path in paths:
        cv2.imwrite(str(path), rng.integers(0, 256, (size, size), dtype=np.uint8))
    return paths


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    for seed, domain in enumerate(("trainA", "trainB", "testA", "testB")):
        make_images(root / domain, 6, seed=seed)
    return root


@pytest.fixture(scope="module")
def run(tmp_path_factory, data) -> Path:
    return untrained_run(tmp_path_factory.mktemp("run") / "run", data)


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def assert_user_error(result, *fragments) -> str:
    """Exit 2, no traceback, one line naming what is wrong."""
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), result.output
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.strip().splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1, result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def assert_ok(result) -> None:
    assert result.exit_code == 0 and result.exception is None, result.output


def tree(folder: Path) -> set[str]:
    """Every path under `folder` (to show nothing appeared outside an output folder)."""
    return {str(p.relative_to(folder)) for p in Path(folder).rglob("*")}


def child_env() -> dict:
    # One thread: the same float reductions in every process (byte-identical resume), no
    # oversubscription of the shared cores.
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def cli_command(*args) -> list[str]:
    return [sys.executable, "-m", "i2i.cli", *[str(a) for a in args]]


BATCH_DRIVER = """
import json, resource, sys, traceback
from click.testing import CliRunner
from i2i.cli import cli
out = []
for limit, args in json.loads(sys.argv[1]):
    # only the soft limit: the next command may raise it again
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit or resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    result = CliRunner().invoke(cli, args)
    crashed = result.exception is not None and not isinstance(result.exception, SystemExit)
    out.append({"exit": result.exit_code, "output": result.output,
                "traceback": "".join(traceback.format_exception(*result.exc_info)) if crashed else ""})
print("RESULTS" + json.dumps(out))
"""


def cli_batch(commands: list[tuple[int, list]]) -> list[dict]:
    """Run several CLI commands, each (file_size_limit, args), in one child process (one torch
    import); a non-zero limit is an RLIMIT_FSIZE: a full disk as the writers see it (EFBIG)."""
    done = subprocess.run(
        [sys.executable, "-c", BATCH_DRIVER, json.dumps([[limit, [str(a) for a in args]] for limit, args in commands])],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=300,
    )
    assert done.returncode == 0 and "RESULTS" in done.stdout, done.stderr[-3000:]
    return json.loads(done.stdout.split("RESULTS", 1)[1])
