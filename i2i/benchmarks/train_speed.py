"""Training speed: seconds per optimizer step of a model on real images, and peak memory.

    python -m i2i.benchmarks.train_speed DATA --size 64 --ngf 16 [--model cycle_gan] [--steps 20]
    python -m i2i.benchmarks.train_speed DATA --models cycle_gan,cut,fastcut --clips CLIPS

With --models, each model is measured in turn in the same process and printed side by side
(recycle_gan trains on the clips folder CLIPS: trainA/, trainB/ of videos).

Runs the real training step (all networks, both optimizers, image pools) on batches from
DATA; the first steps are warm-up and not counted. Peak memory is the process's peak RSS
(CPU) or the CUDA allocator's peak.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from pathlib import Path

import torch

from i2i.training.configure import configure
from i2i.training.datasets import TemporalDataset, UnalignedDataset
from i2i.training.models import MODELS


def measure(
    data: Path,
    size: int,
    ngf: int,
    net_g: str,
    batch_size: int,
    steps: int,
    warmup: int = 3,
    model_name: str = "cycle_gan",
) -> dict:
    config = configure(
        {  # the model's own defaults (e.g. FastCUT's) fill in the rest, the load size follows the crop
            "model": model_name,
            "G": {"netG": net_g, "ngf": ngf},
            "D": {"ndf": ngf},
            "data": {"dataroot": str(data), "crop_size": size},
            "train": {"batch_size": batch_size},
            "alg": {"recycle_gan": {"predictor_ngf": ngf}},
        }
    )
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)
    model = MODELS[config.model](config, device, None)
    dataset = (
        TemporalDataset(data, config.data, seed=0)
        if model_name == "recycle_gan"
        else UnalignedDataset(data, config.data, seed=0)
    )
    times = []
    for step in range(warmup + steps):
        samples = [dataset[step * batch_size + j] for j in range(batch_size)]
        batch = {k: torch.stack([s[k] for s in samples]).to(device) for k in ("A", "B")}
        if device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        model.training_step(batch, step)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if step >= warmup:
            times.append(time.perf_counter() - started)
    peak_mb = (
        torch.cuda.max_memory_allocated() / 2**20
        if device.type == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    )
    return {
        "model": model_name,
        "size": size,
        "ngf": ngf,
        "netG": net_g,
        "batch": batch_size,
        "seconds_per_step": statistics.median(times),
        "p90": sorted(times)[int(0.9 * (len(times) - 1))],
        "peak_mb": peak_mb,
        "device": str(device),
        "threads": torch.get_num_threads(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--ngf", type=int, default=16)
    parser.add_argument("--netG", default="resnet_9blocks")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--models", default="cycle_gan", help="Comma-separated models to measure in turn.")
    parser.add_argument("--clips", type=Path, help="Clip dataset for recycle_gan.")
    args = parser.parse_args(argv)
    compare(args.data, args.models.split(","), args.size, args.ngf, args.netG, args.batch_size, args.steps, args.clips)


def compare(
    data: Path,
    models: list[str],
    size: int = 64,
    ngf: int = 16,
    net_g: str = "resnet_9blocks",
    batch_size: int = 1,
    steps: int = 20,
    clips: Path | None = None,
) -> list[dict]:
    """Measure each model in turn in this process (recycle_gan on `clips`), printing a line each."""
    results = []
    for model_name in models:
        r = measure(
            clips if model_name == "recycle_gan" else data, size, ngf, net_g, batch_size, steps, model_name=model_name
        )
        results.append(r)
        print(
            f"{model_name:<12} {r['netG']} ngf {r['ngf']} at {r['size']} px, batch {r['batch']} on {r['device']} "
            f"({r['threads']} threads): {r['seconds_per_step']:.3f} s/step median (p90 {r['p90']:.3f}), "
            f"peak memory {r['peak_mb']:.0f} MB (process peak so far)"
        )
    return results


if __name__ == "__main__":
    main()
