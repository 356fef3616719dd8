"""The machine's limits are one line and exit 2, with nothing partial left: memory, devices."""

from __future__ import annotations

import resource
import subprocess

import numpy as np
import pytest

from i2i.io import write_image

from .conftest import assert_user_error, child_env, cli_command, invoke, tree


def test_an_image_too_large_for_the_memory_limit_is_one_line(tmp_path, run):
    write_image(tmp_path / "in" / "big.png", np.full((5000, 6000, 3), 90, np.uint8))

    def two_gigabytes():
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    done = subprocess.run(
        cli_command("generate", run, tmp_path / "in", tmp_path / "out", "--backend", "torch"),
        capture_output=True,
        text=True,
        env=child_env(),
        preexec_fn=two_gigabytes,
        timeout=300,
    )
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "out of memory" in done.stderr and "--tile" in done.stderr
    assert not list((tmp_path / "out").glob("*.png"))


@pytest.mark.parametrize("device", ["meta", "mps", "cuda:3", "tpu"])
def test_a_device_that_is_not_here_is_refused_before_anything_is_written(tmp_path, data, run, device):
    before = tree(tmp_path)
    assert_user_error(invoke("generate", run, data / "testA", tmp_path / "g", "--device", device), device)
    assert_user_error(invoke("video", run, data / "testA", tmp_path / "v.avi", "--device", device), device)
    assert_user_error(invoke("eval", data / "testA", data / "testB", "--device", device), device)
    assert tree(tmp_path) == before
