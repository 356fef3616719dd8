"""Generation on Ray vs one process on the same cores: images/s with 1 and 2 actors, start-up.

    python -m i2i.benchmarks.ray_speed RUN INPUT [--repeats 2] [--backend torch]

Side by side in one process, alternating, each configuration `--repeats` times (best kept):
- one process (`generate_dataset`) with torch on 1 and on 2 threads, one decoding and one
  encoding thread;
- `generate_on_ray` with 1 and 2 actors (one CPU each) on a local single-node cluster that has
  as many CPUs as actors measured, started once beforehand (its start-up is timed separately).
Ray's figures: total (connect, actor start, all images), start-up (connect until the first batch
is back) and steady images/s after the first batch. Per core = images/s ÷ cores used. Both
paths run the same named backend (not `auto`, which times backends per process and could pick
different ones for the two sides).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import torch

from i2i.runtime import load
from i2i.runtime.generate import generate_dataset
from i2i.runtime.ray_generate import generate_on_ray


def one_process(run: Path, source: Path, out: Path, threads: int, batch_size: int, backend: str) -> dict:
    torch.set_num_threads(threads)
    started = time.perf_counter()
    report = generate_dataset(load(run, backend=backend, batch_size=batch_size), source, out, workers=1)
    seconds = time.perf_counter() - started
    return {
        "path": "one process",
        "cores": threads,
        "images": report.written,
        "seconds": seconds,
        "images_per_second": report.written / seconds,
    }


def on_ray(run: Path, source: Path, out: Path, actors: int, address: str, batch_size: int, backend: str) -> dict:
    options = {"path": run, "backend": backend, "batch_size": batch_size}
    report = generate_on_ray(options, str(source), out, address, actors=str(actors))
    steady = (report.written - report.first_batch) / max(1e-9, report.seconds - report.startup_seconds)
    return {
        "path": "ray",
        "cores": actors,
        "images": report.written,
        "seconds": report.seconds,
        "startup_seconds": report.startup_seconds,
        "images_per_second": report.written / report.seconds,
        "steady_images_per_second": steady,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("source", type=Path)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--backend", default="torch", help="the predictor backend of both paths")
    args = parser.parse_args()
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # loopback only; read when ray is imported
    from ray.cluster_utils import Cluster

    started = time.perf_counter()
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 2, "include_dashboard": False, "object_store_memory": 200 * 2**20},
    )
    print(json.dumps({"cluster_start_seconds": round(time.perf_counter() - started, 2)}), flush=True)
    best: dict[tuple[str, int], dict] = {}
    scratch = Path(tempfile.mkdtemp(prefix="ray_speed_"))
    try:
        for _ in range(args.repeats):
            for cores in (1, 2):
                for measure in ("one process", "ray"):
                    out = scratch / f"{measure}-{cores}"
                    shutil.rmtree(out, ignore_errors=True)
                    result = (
                        one_process(args.run, args.source, out, cores, args.batch_size, args.backend)
                        if measure == "one process"
                        else on_ray(args.run, args.source, out, cores, cluster.address, args.batch_size, args.backend)
                    )
                    print(
                        json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()}),
                        flush=True,
                    )
                    key = (measure, cores)
                    if key not in best or result["images_per_second"] > best[key]["images_per_second"]:
                        best[key] = result
    finally:
        cluster.shutdown()
        shutil.rmtree(scratch, ignore_errors=True)
    single = best[("one process", 1)]["images_per_second"]
    print("| path | cores | images/s (all) | per core vs one process, 1 core | steady images/s | start-up s |")
    print("|---|---:|---:|---:|---:|---:|")
    for (measure, cores), result in sorted(best.items(), key=lambda item: (item[0][1], item[0][0])):
        per_core = result["images_per_second"] / cores / single
        print(
            f"| {measure} | {cores} | {result['images_per_second']:.2f} | {per_core:.2f}× | "
            f"{result.get('steady_images_per_second', result['images_per_second']):.2f} | "
            f"{result.get('startup_seconds', 0):.1f} |"
        )


if __name__ == "__main__":
    main()
