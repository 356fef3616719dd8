"""One predictor over every backend: uint8 images of any size in, uint8 images out.

The predictor pads each image to the generator's size multiple (reflection, so borders look
natural), batches images of equal padded size, hands the padded uint8 NHWC batch to the
backend's runner and crops the padding off again. Runners: `TorchRunner` (eager torch, or
the fused Triton kernels) and `OnnxRuntimeRunner` (an exported .onnx file).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from i2i.config import RunConfig
from i2i.errors import ConfigError
from i2i.image import pad_to_multiple, to_image_arrays, to_model_input, with_constant_plane
from i2i.nets import size_multiple
from i2i.rundir import class_plane_value, condition_channels, generator_channels, load_generator

BACKENDS = ("auto", "torch", "triton", "onnxruntime", "tensorrt")
FILE_BACKENDS = {".onnx": "onnxruntime", ".engine": "tensorrt"}
PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}

Runner = Callable[[np.ndarray], np.ndarray]  # padded uint8 NHWC batch → uint8 NHWC batch


@dataclass
class Predictor:
    run: Runner
    config: RunConfig
    direction: str
    backend: str
    batch_size: int = 8

    @property
    def input_channels(self) -> int:
        return generator_channels(self.config, self.direction)[0]

    @property
    def size_multiple(self) -> int:
        return size_multiple(self.config.G)

    @property
    def class_conditional(self) -> bool:
        return condition_channels(self.config) > 0

    def __call__(self, images: Sequence[np.ndarray], classes: Sequence[int] | None = None) -> list[np.ndarray]:
        """Translate uint8 HWC images of any sizes; returns them in the same order.
        Class-conditional models (trained on class folders) need each image's class index."""
        if self.class_conditional:
            images = self._with_class_planes(images, classes)
        results: list[np.ndarray | None] = [None] * len(images)
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for index, image in enumerate(images):
            by_shape.setdefault(image.shape, []).append(index)
        for indexes in by_shape.values():
            height, width = images[indexes[0]].shape[:2]
            for start in range(0, len(indexes), self.batch_size):
                chunk = indexes[start:start + self.batch_size]
                batch = pad_to_multiple(np.stack([images[i] for i in chunk]), self.size_multiple)
                outputs = self.run(batch)[:, :height, :width]
                for index, output in zip(chunk, outputs):
                    results[index] = np.ascontiguousarray(output)
        return results  # type: ignore[return-value]


    def _with_class_planes(self, images: Sequence[np.ndarray], classes: Sequence[int] | None) -> list[np.ndarray]:
        names = self.config.data.class_names
        if classes is None or len(classes) != len(images) or not all(0 <= c < len(names) for c in classes):
            raise ConfigError(f"this model is class-conditional: give one class index per image (0..{len(names) - 1}: "
                              f"{', '.join(names)})")
        values = [class_plane_value(self.config, c) for c in classes]
        return [with_constant_plane(image, value) for image, value in zip(images, values, strict=True)]


class TorchRunner:
    """uint8 → [-1, 1] → module → uint8, on the module's device and dtype."""

    def __init__(self, forward: Callable[[torch.Tensor], torch.Tensor], device: torch.device, dtype: torch.dtype,
                 channels_last: bool):
        self.forward, self.device, self.dtype, self.channels_last = forward, device, dtype, channels_last

    @torch.inference_mode()
    def __call__(self, batch: np.ndarray) -> np.ndarray:
        x = to_model_input(torch.from_numpy(batch).to(self.device), self.dtype)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        y = self.forward(x)
        return to_image_arrays(y)


def _torch_device(device: str) -> torch.device:
    try:
        torch_device = torch.device(device)
    except RuntimeError:
        raise ConfigError(f"device '{device}' is not a torch device name (cpu, cuda, cuda:1)") from None
    if torch_device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device cuda was requested but no CUDA GPU is available; use --device cpu")
    return torch_device


def load(
    path: Path,
    backend: str = "auto",
    device: str = "cpu",
    direction: str = "AtoB",
    batch_size: int = 8,
    precision: str = "fp32",
    cuda_graphs: bool = True,
    tile: int | None = None,
    overlap: int = 32,
    tile_stats: str = "exact",
) -> Predictor:
    """A predictor for a run directory or an exported .onnx file.

    backend: `torch` (eager), `triton` (the fused kernels; CUDA, or the CPU interpreter when
    TRITON_INTERPRET=1), `onnxruntime` (an .onnx file; CPU or CUDA provider), `tensorrt`
    (an .engine file), `auto` (by file type; for run directories triton on CUDA, else torch). precision: fp32, fp16
    (CUDA) or bf16. On CUDA, fixed shapes replay through CUDA graphs. `tile`: translate
    images larger than tile × tile pixels in overlapping tiles (torch backend; see
    runtime/tiling.py), the whole image staying in host memory.
    """
    if backend not in BACKENDS:
        raise ConfigError(f"backend '{backend}' is not available; choose one of {', '.join(BACKENDS)}")
    if precision not in PRECISIONS:
        raise ConfigError(f"precision '{precision}' is not one of {', '.join(PRECISIONS)}")
    torch_device = _torch_device(device)
    on_cuda = torch_device.type == "cuda"
    path = Path(path)
    file_backend = FILE_BACKENDS.get(path.suffix)
    if file_backend or backend in FILE_BACKENDS.values():
        if tile:
            raise ConfigError(f"{path}: --tile needs a run directory (torch backend): an exported graph computes its "
                              "instance-norm statistics per call, so tiles would not share them")
        if backend not in ("auto", file_backend):
            raise ConfigError(f"{path}: the {backend} backend cannot run it; .onnx files run on onnxruntime, "
                              ".engine files on tensorrt, run directories on torch or triton")
        if file_backend == "tensorrt":
            from .tensorrt_backend import load_engine as load_file
        else:
            from .onnxruntime_backend import load_onnx as load_file
        runner, config, file_direction = load_file(path, torch_device)
        if direction != file_direction:
            raise ConfigError(f"{path} translates {file_direction}, not {direction}; export the {direction} generator")
        return Predictor(runner, config, direction, file_backend, batch_size)
    if precision == "fp16" and not on_cuda:
        raise ConfigError("fp16 inference needs a CUDA device; use fp32 or bf16 on the CPU")
    net, config = load_generator(path, direction)
    if backend == "auto":
        backend = "torch"
        if on_cuda and not tile:
            from i2i.kernels.dispatch import can_fuse

            backend = "triton" if can_fuse(net) else "torch"
    if tile and backend != "torch":
        raise ConfigError("--tile runs on the torch backend (it hooks the generator's instance norms); add --backend torch")
    if backend == "triton" and not on_cuda and os.environ.get("TRITON_INTERPRET") != "1":
        raise ConfigError("the triton backend needs a CUDA GPU (--device cuda); on the CPU use --backend torch")
    dtype = PRECISIONS[precision]
    net = net.to(torch_device, dtype)
    if on_cuda:
        net = net.to(memory_format=torch.channels_last)
    forward: Callable[[torch.Tensor], torch.Tensor] | nn.Module = net
    if backend == "triton":
        from i2i.kernels.dispatch import fuse_generator

        forward = fuse_generator(net)
    if tile:
        from .tiling import TiledGenerator

        tiled = TiledGenerator(net, tile, overlap, size_multiple(config.G), torch_device, dtype, tile_stats)
        return Predictor(TorchRunner(tiled, torch.device("cpu"), torch.float32, False), config, direction, backend,
                         batch_size)
    if on_cuda and cuda_graphs:
        from .cuda_graphs import CudaGraphRunner

        forward = CudaGraphRunner(forward)
    return Predictor(TorchRunner(forward, torch_device, dtype, on_cuda), config, direction, backend, batch_size)
