"""Threads from the CPUs the process may use (affinity, cgroup quota), idle threads that sleep."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from i2i import threads


def test_the_cgroup_quota_in_cpus(tmp_path):
    assert threads.cgroup_cpu_limit(tmp_path) is None  # no cgroup files: unknown
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert threads.cgroup_cpu_limit(tmp_path) is None
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert threads.cgroup_cpu_limit(tmp_path) == 1.5
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert threads.cgroup_cpu_limit(v1) is None
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("50000\n")
    assert threads.cgroup_cpu_limit(v1) == 0.5


def test_available_cpus_is_the_affinity_capped_by_the_quota(monkeypatch):
    affinity = len(os.sched_getaffinity(0))
    monkeypatch.setattr(threads, "cgroup_cpu_limit", lambda: None)
    assert threads.available_cpus() == affinity
    monkeypatch.setattr(threads, "cgroup_cpu_limit", lambda: 0.5)
    assert threads.available_cpus() == 1
    monkeypatch.setattr(threads, "cgroup_cpu_limit", lambda: affinity + 7.9)
    assert threads.available_cpus() == affinity


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs to pin to one")
def test_a_process_pinned_to_one_cpu_computes_with_one_briefly_spinning_thread():
    probe = (
        "import os; from i2i.threads import configure_process_threads; configure_process_threads(); "
        "import torch; e = os.environ; "
        "print(torch.get_num_threads(), e.get('GOMP_SPINCOUNT'), e.get('OMP_WAIT_POLICY'))"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    pinned = subprocess.run(
        [sys.executable, "-c", probe],
        env=env,
        preexec_fn=lambda: os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}),
        capture_output=True,
        text=True,
        check=True,
    )
    assert pinned.stdout.split() == ["1", str(threads.SPIN_COUNT), "None"]
    chosen = subprocess.run(
        [sys.executable, "-c", probe], env={**env, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "ACTIVE"},
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert chosen.stdout.split() == ["1", "None", "ACTIVE"]  # what the user set wins
