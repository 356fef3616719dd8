"""i2i on a loaded machine: train, generate and video alone and beside a busy process, with
OpenMP's default wait policy (idle threads spin) and with i2i's (they sleep; i2i/threads.py).

Each measurement is a fresh `i2i` process (the OpenMP runtime reads its policy once); the busy
process is one Python loop, i.e. one core of other work. Prints and writes contention.json/.md.

    python -m i2i.benchmarks.contention RUN --data photo2monet --clip cup.mp4 --out DIR
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from i2i.io import atomic_write_bytes
from i2i.threads import available_cpus

# How idle OpenMP threads wait, set in the environment (what the user sets wins over i2i's choice,
# threads.configure_process_threads): libgomp's default spins 300,000 times before it sleeps.
POLICIES = {
    "spin 300k (OpenMP default)": {"GOMP_SPINCOUNT": "300000"},
    "spin 30k": {"GOMP_SPINCOUNT": "30000"},
    "spin 3k": {"GOMP_SPINCOUNT": "3000"},
    "sleep (passive)": {"OMP_WAIT_POLICY": "PASSIVE"},
    "i2i's choice": {},
}
BUSY = "while True: pass"


def workloads(args: argparse.Namespace, scratch: Path) -> dict[str, tuple[list[str], str]]:
    """name → (i2i arguments, what the figure is)."""
    return {
        "train": (
            ["train", str(args.data), "--out", str(scratch / "train"), "--model", "cut", "--size", "64", "--ngf", "16",
             "--ndf", "16", "--steps", str(args.steps), "--log-every", "5", "--save-every", "100000",
             "--sample-every", "100000", "--workers", "0"],
            "steps/s",
        ),
        "generate": (
            ["generate", str(args.run), str(args.data / "testA"), str(scratch / "generate"), "--backend", "torch",
             "--workers", "1"],
            "images/s",
        ),
        "video": (
            ["video", str(args.run), str(args.clip), str(scratch / "video.mp4"), "--backend", "torch", "--max-frames",
             str(args.frames)],
            "frames/s",
        ),
    }  # fmt: skip


def rate(name: str, output: str, scratch: Path) -> float:
    """The workload's own throughput figure, from what it printed or logged."""
    if name == "train":
        times = [json.loads(line)["time"] for line in (scratch / "train" / "losses.jsonl").read_text().splitlines()]
        return 5 * (len(times) - 1) / (times[-1] - times[0])  # between the first and the last log line
    pattern = r"\(([0-9.]+) images/s" if name == "generate" else r"\(([0-9.]+) frames/s"
    return float(re.search(pattern, output).group(1))


def measure_one(args: argparse.Namespace, name: str, policy: dict[str, str], loaded: bool) -> float:
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        command, _ = workloads(args, scratch)[name]
        env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
        busy = subprocess.Popen([sys.executable, "-c", BUSY]) if loaded else None
        try:
            done = subprocess.run(
                [sys.executable, "-m", "i2i.cli", *command], env={**env, **policy}, capture_output=True, text=True
            )
        finally:
            if busy:
                busy.kill()
                busy.wait()
        if done.returncode:
            raise RuntimeError(f"{name}: {done.stderr[-2000:]}")
        return rate(name, done.stdout + done.stderr, scratch)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="A run directory to generate and stylize with.")
    parser.add_argument("--data", type=Path, required=True, help="Dataset with trainA/, trainB/, testA/.")
    parser.add_argument("--clip", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--frames", type=int, default=40)
    args = parser.parse_args(argv)
    rows = []
    for name, (_, unit) in workloads(args, Path()).items():
        row = {"workload": name, "unit": unit}
        for policy, env in POLICIES.items():
            for loaded in (False, True):
                row[f"{policy}, {'busy' if loaded else 'alone'}"] = measure_one(args, name, env, loaded)
        rows.append(row)
        print(row, flush=True)
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {available_cpus()} CPUs available",
        "load_average_at_end": os.getloadavg(),  # the benchmark's own load is in it
        "time": time.strftime("%Y-%m-%d %H:%M"),
        "command": " ".join(["python -m i2i.benchmarks.contention", *(argv or sys.argv[1:])]),
        "rows": rows,
    }
    lines = ["| workload | wait policy | alone | beside a busy process | busy / alone |", "|---|---|---:|---:|---:|"]
    for row in rows:
        for policy in POLICIES:
            alone, busy = row[f"{policy}, alone"], row[f"{policy}, busy"]
            name = f"{row['workload']} ({row['unit']})"
            lines.append(f"| {name} | {policy} | {alone:.2f} | {busy:.2f} | {busy / alone:.2f} |")
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(args.out / "contention.json", (json.dumps(result, indent=2) + "\n").encode())
    atomic_write_bytes(args.out / "contention.md", ("\n".join(lines) + "\n").encode())
    print("\n".join(lines))
    return result


if __name__ == "__main__":
    main()
