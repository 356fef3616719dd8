"""Every kernel configuration a launch can take compiles ahead of time for sm_80, sm_87 and
sm_90 (no GPU needed) without register spills or shared memory beyond the architecture's limit."""

import json
import os
import subprocess
import sys

import pytest

from i2i.kernels.aot import ARCHS, SHARED_LIMIT, launch_configs


@pytest.mark.slow
def test_every_kernel_config_compiles_for_each_arch_without_spills(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}  # the interpreter cannot compile
    done = subprocess.run(
        [sys.executable, "-m", "i2i.kernels.aot", "--out", str(tmp_path), "--jobs", "2"],
        env=env,
        capture_output=True,
        text=True,
    )
    rows = json.loads((tmp_path / "kernels_aot.json").read_text())
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(rows) == len(ARCHS) * len(launch_configs())
    assert {r["kernel"] for r in rows} == {
        "conv2d_kernel",
        "instance_norm_stats_kernel",
        "instance_norm_apply_kernel",
        "merge_partials_kernel",
        "instance_norm_plane_kernel",
    }
    for r in rows:
        assert r["problems"] == [] and r["spill_stores"] == r["spill_loads"] == 0
        assert 0 < r["registers"] <= 255 and r["shared_bytes"] <= SHARED_LIMIT[r["arch"]]
    assert "| sm_87 | conv2d_kernel | bf16 |" in (tmp_path / "kernels_aot.md").read_text()
