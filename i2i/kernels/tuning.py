"""Per-layer choice of implementation on the GPU at hand, measured once and cached per GPU name.

Each fused layer (kernels/dispatch.py) has candidates: the Triton conv with each of its
candidate tiles, and cuDNN's conv followed by the fused Triton instance norm. The first time a
layer shape runs on a CUDA GPU, every candidate is timed on the real input
(`triton.testing.do_bench`, median) and the fastest is kept; the choice and all timings go to
a JSON file named after the GPU, which later processes (and `gpu-check`) read instead of
measuring again. Nothing is measured on the CPU: there the first candidate (the default tile)
runs unless the cache names another.

    {"schema": 1, "gpu": "NVIDIA H200", "versions": {"torch": ..., "triton": ...},
     "layers": {"<layer key>": {"choice": "m64n64k32w4s3", "timings_ms": {"m64n64k32w4s3": 0.041, "cudnn": 0.035}}}}

Entries measured under other torch/Triton versions are ignored. The folder is
$I2I_KERNEL_CACHE (default ~/.cache/i2i/kernels); I2I_KERNEL_TUNING=off disables measuring.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Callable

import torch
import triton

SCHEMA = 1
CUDNN = "cudnn"  # the candidate name of torch's conv (cuDNN on CUDA) + the Triton instance norm


def cache_folder() -> Path:
    return Path(os.environ.get("I2I_KERNEL_CACHE", Path.home() / ".cache" / "i2i" / "kernels"))


def cache_file(gpu_name: str, folder: Path | None = None) -> Path:
    """The cache of one GPU model: its name with anything but letters and digits as '_'."""
    return (folder or cache_folder()) / (re.sub(r"[^A-Za-z0-9]+", "_", gpu_name).strip("_") + ".json")


def versions() -> dict[str, str]:
    return {"torch": torch.__version__, "triton": triton.__version__}


def fastest(timings_ms: dict[str, float]) -> str:
    """The candidate with the lowest finite time; a tie keeps the earlier (default-first) one."""
    finite = {name: ms for name, ms in timings_ms.items() if math.isfinite(ms)}
    if not finite:
        raise ValueError(f"no candidate ran: {timings_ms}")
    return min(finite, key=finite.__getitem__)


class LayerTuner:
    """Choices of one GPU's cache file; `measure` times candidates a layer has no choice for yet."""

    def __init__(self, path: Path, gpu_name: str, measure: bool):
        self.path, self.gpu_name, self.measure = path, gpu_name, measure
        self.layers: dict[str, dict] = {}
        if path.is_file():
            data = json.loads(path.read_text())
            if data.get("schema") == SCHEMA and data.get("versions") == versions():
                self.layers = data["layers"]

    @classmethod
    def for_device(cls, device: torch.device) -> "LayerTuner | None":
        """The tuner of a CUDA device (None elsewhere: CPU runs use defaults and never measure)."""
        if device.type != "cuda":
            return None
        name = torch.cuda.get_device_name(device)
        return cls(cache_file(name), name, os.environ.get("I2I_KERNEL_TUNING", "on") != "off")

    def choose(self, key: str, candidates: dict[str, Callable[[], object]]) -> str:
        """The name of the candidate to run for layer `key` (candidates in default-first order)."""
        known = self.layers.get(key, {}).get("choice")
        if known in candidates:
            return known
        if not self.measure:
            return next(iter(candidates))
        timings = {name: self._time(run) for name, run in candidates.items()}
        return self.record(key, timings)

    def record(self, key: str, timings_ms: dict[str, float]) -> str:
        """Keep the fastest of measured `timings_ms` for `key` and write the cache file."""
        choice = fastest(timings_ms)
        self.layers[key] = {"choice": choice, "timings_ms": timings_ms}
        self.save()
        return choice

    def save(self) -> None:
        from i2i.io import atomic_write_bytes

        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"schema": SCHEMA, "gpu": self.gpu_name, "versions": versions(), "layers": self.layers}
        atomic_write_bytes(self.path, (json.dumps(data, indent=1, sort_keys=True) + "\n").encode())

    @staticmethod
    def _time(run: Callable[[], object]) -> float:
        """Median ms of `run` on the GPU; inf when the candidate fails (e.g. out of resources)."""
        from triton.testing import do_bench

        try:
            return float(do_bench(run, warmup=5, rep=20, return_mode="median"))
        except Exception:  # a candidate that cannot run here is simply not chosen
            return math.inf
