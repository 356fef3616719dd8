"""How many threads i2i computes with, and how its idle threads wait.

torch, ONNX Runtime and OpenVINO start one thread per core of the machine, and their idle threads
spin while they wait for the next parallel region. Both assume the cores are theirs. In a
container allowed 2 of 64 cores they start 64 threads; on a machine where another process keeps
one of 2 cores busy, a spinning thread holds the core its sibling needs: a `make demo` step of
0.15 s took 7-25 s, a 1.3 s step of ResNet training 13.6 s. i2i counts the CPUs the process may
actually use (its affinity mask and the cgroup's CPU quota) and lets idle threads spin only
briefly before they sleep, so another process costs i2i far less of its speed
(benchmarks/results/contention.md).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")


def cgroup_cpu_limit(root: Path = CGROUP) -> float | None:
    """The CPU quota of this process's cgroup in CPUs (cgroup v2 cpu.max, v1 cfs quota/period),
    None when unlimited or unknown."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return quota / period if quota > 0 and period > 0 else None
    except (OSError, ValueError):
        return None


def available_cpus() -> int:
    """CPUs this process may run on: its affinity mask, capped by the cgroup quota (rounded down,
    at least 1)."""
    count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    limit = cgroup_cpu_limit()
    return max(1, min(count, math.floor(limit))) if limit else count


# How long an idle OpenMP thread spins before it sleeps (libgomp's default: 300,000). A short spin
# keeps the wake-up of back-to-back parallel regions fast when the cores are free and stops a
# waiting thread from holding a core that another process needs (benchmarks/results/contention.md:
# training beside a busy process 8x faster than with the default spin, as fast alone; sleeping at
# once, OMP_WAIT_POLICY=PASSIVE, was 2.7x slower alone).
SPIN_COUNT = 3000


def configure_process_threads() -> None:
    """For a command-line process, before torch loads its OpenMP runtime (which reads these once):
    available_cpus() threads that spin only SPIN_COUNT times before they sleep. What the user set
    in the environment (OMP_NUM_THREADS, OMP_WAIT_POLICY, GOMP_SPINCOUNT) wins."""
    os.environ.setdefault("OMP_NUM_THREADS", str(available_cpus()))
    if "OMP_WAIT_POLICY" not in os.environ:
        os.environ.setdefault("GOMP_SPINCOUNT", str(SPIN_COUNT))


def compute_threads() -> int:
    """The threads of a runtime that does not read OMP_NUM_THREADS itself (ONNX Runtime, OpenVINO):
    the number set there (by the user or configure_process_threads), else available_cpus()."""
    requested = os.environ.get("OMP_NUM_THREADS", "")
    return int(requested) if requested.isascii() and requested.isdigit() and int(requested) > 0 else available_cpus()


def onnxruntime_session_options():
    """ONNX Runtime options with the same policy: compute_threads() intra-op threads that do not spin."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = compute_threads()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options
