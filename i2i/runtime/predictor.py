"""One predictor over every backend: uint8 images of any size in, uint8 images out.

The predictor pads each image to the generator's size multiple (reflection, so borders look
natural), batches images of equal padded size, hands the padded uint8 NHWC batch to the
backend's runner (`i2i.runners`) and crops the padding off again.
"""

from __future__ import annotations

import copy
import importlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence, Union

import numpy as np
import torch
from torch import nn

from i2i.config import RunConfig
from i2i.errors import ConfigError, DataError, MissingDependencyError
from i2i.export.formats import FILE_BACKENDS
from i2i.image import pad_to_multiple, to_channels, with_constant_plane
from i2i.nets import size_multiple
from i2i.rundir import class_plane_value, condition_channels, generator_channels, load_generator
from i2i.runners import OnnxRuntimeRunner, TorchRunner, torch_device
from i2i.threads import onnxruntime_session_options

from .auto_backend import FastestRunner

BACKENDS = ("auto", "torch", "triton", "onnxruntime", "openvino", "tensorrt")
# Backends that also run a run directory, on the generator traced in memory (what `auto` times).
TRACED_BACKENDS = ("onnxruntime", "openvino")
PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}

Runner = Callable[[np.ndarray], np.ndarray]  # padded uint8 NHWC batch → uint8 NHWC batch


@dataclass
class Predictor:
    """A loaded generator (see `load`): `predictor(image)` → translated image, `predictor([images])`
    → list; uint8 RGB (or `color="bgr"`) H×W×C or H×W grey, any size."""

    run: Runner
    config: RunConfig
    direction: str
    backend: str
    batch_size: int = 8
    metadata: dict[str, str] = field(default_factory=dict)  # i2i's metadata of an exported file; {} for a run

    @property
    def input_channels(self) -> int:
        return generator_channels(self.config, self.direction)[0]

    @property
    def size_multiple(self) -> int:
        return size_multiple(self.config.G)

    @property
    def class_conditional(self) -> bool:
        return condition_channels(self.config) > 0

    def __call__(self, images: ImageInput, classes: Sequence[int] | None = None, color: str = "rgb") -> ImageInput:
        """Translate one image or a list of images of any sizes; returns the same kind, in order.

        An image is a uint8 array (numpy, or a CPU torch tensor) of shape H×W×C with C the
        model's channels, or H×W for greyscale (repeated for a colour model; a greyscale model
        gives H×W back). `color` is the channel order of colour images in and out: "rgb"
        (Pillow, imageio, matplotlib) or "bgr" (OpenCV's cv2.imread). Class-conditional models
        (trained on class folders) need each image's class index in `classes`."""
        batch, restore = as_image_batch(images, self.input_channels, color)
        if self.class_conditional:
            batch = self._with_class_planes(batch, classes)
        results: list[np.ndarray | None] = [None] * len(batch)
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for index, image in enumerate(batch):
            by_shape.setdefault(image.shape, []).append(index)
        for indexes in by_shape.values():
            height, width = batch[indexes[0]].shape[:2]
            for start in range(0, len(indexes), self.batch_size):
                chunk = indexes[start : start + self.batch_size]
                padded = pad_to_multiple(np.stack([batch[i] for i in chunk]), self.size_multiple)
                outputs = self.run(padded)[:, :height, :width]
                for index, output in zip(chunk, outputs):
                    results[index] = np.ascontiguousarray(output)
        return restore(results)  # type: ignore[arg-type]

    def _with_class_planes(self, images: Sequence[np.ndarray], classes: Sequence[int] | None) -> list[np.ndarray]:
        names = self.config.data.class_names
        if classes is None or len(classes) != len(images) or not all(0 <= c < len(names) for c in classes):
            raise ConfigError(
                f"this model is class-conditional: give one class index per image (0..{len(names) - 1}: "
                f"{', '.join(names)})"
            )
        values = [class_plane_value(self.config, c) for c in classes]
        return [with_constant_plane(image, value) for image, value in zip(images, values, strict=True)]


ImageInput = Union[np.ndarray, torch.Tensor, Sequence[Union[np.ndarray, torch.Tensor]]]
COLOR_ORDERS = ("rgb", "bgr")


def as_image_batch(
    images: ImageInput, channels: int, color: str = "rgb"
) -> tuple[list[np.ndarray], Callable[[list[np.ndarray]], ImageInput]]:
    """Check and convert what a user passed to a predictor: one image or a list of uint8 H×W×C
    or H×W images (numpy or CPU torch), RGB or BGR. Returns RGB H×W×`channels` numpy images and
    a function that turns the translated images back into the kind, layout and colour order
    given. Anything else is one DataError saying what is expected."""
    if color not in COLOR_ORDERS:
        raise DataError(f"color='{color}': the channel order is 'rgb' (Pillow, imageio) or 'bgr' (OpenCV)")
    if isinstance(images, (str, os.PathLike)):
        raise DataError(
            f"{images}: the predictor takes image arrays, not paths; read it first, e.g. "
            "np.asarray(PIL.Image.open(path).convert('RGB')), or use generate_dataset for files"
        )
    single = isinstance(images, (np.ndarray, torch.Tensor))
    items = [images] if single else list(images)
    expected = (
        f"expected uint8 images of shape H×W×{channels}"
        + (" or H×W" if channels == 1 else " (or H×W grey)")
        + ", one array or a list of them"
    )
    converted, flat, tensors = [], [], []
    for number, item in enumerate(items):
        where = "image" if single else f"image {number}"
        tensors.append(isinstance(item, torch.Tensor))
        array = item.detach().cpu().numpy() if tensors[-1] else item
        if not isinstance(array, np.ndarray):
            raise DataError(f"{where} is a {type(item).__name__}; {expected}")
        if array.dtype != np.uint8:
            hint = " (floats in [0, 1]: (x * 255).round().astype(np.uint8))" if array.dtype.kind == "f" else ""
            raise DataError(f"{where} has dtype {array.dtype}; {expected}{hint}")
        if array.ndim == 4 and single:
            raise DataError(f"image has shape {array.shape} (a batch?); {expected}: pass list(batch)")
        flat.append(array.ndim == 2)
        if array.ndim == 2:
            array = array[:, :, None]
        if array.ndim != 3 or array.shape[2] not in (1, channels) or min(array.shape[:2]) < 1:
            raise DataError(f"{where} has shape {tuple(array.shape)}; {expected}")
        array = to_channels(array, channels)  # grey read as equal R, G and B (checked above: 1 or `channels`)
        converted.append(array[:, :, ::-1] if color == "bgr" and channels == 3 else array)

    def restore(outputs: list[np.ndarray]) -> ImageInput:
        back = []
        for output, was_flat, was_tensor in zip(outputs, flat, tensors):
            if color == "bgr" and output.shape[2] == 3:
                output = np.ascontiguousarray(output[:, :, ::-1])
            if was_flat and output.shape[2] == 1:
                output = output[:, :, 0]
            back.append(torch.from_numpy(output) if was_tensor else output)
        return back[0] if single else back

    return converted, restore


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
    """A predictor for a run directory or an exported .onnx, .xml (OpenVINO) or .engine file:
    call it on one uint8 image or a list of them (see `Predictor.__call__`).

    backend: `torch` (eager), `triton` (the fused kernels; CUDA, or the CPU interpreter when
    TRITON_INTERPRET=1), `onnxruntime` (an .onnx file, CPU or CUDA provider; or a run directory's
    generator traced in memory, CPU fp32), `openvino` (an .xml or .onnx file, or a run directory
    traced in memory; CPU), `tensorrt` (an .engine file), `auto` (on the CPU: the fastest of
    the installed backends that can run the model, timed on the first batch — for a run
    directory torch, and ONNX Runtime / OpenVINO on the generator traced in memory; on CUDA:
    by file type, for run directories triton). precision: fp32, fp16
    (CUDA) or bf16. On CUDA, fixed shapes replay through CUDA graphs. `tile`: translate
    images larger than tile × tile pixels in overlapping tiles (torch backend; see
    runtime/tiling.py), the whole image staying in host memory.
    """
    if backend not in BACKENDS:
        raise ConfigError(f"backend '{backend}' is not available; choose one of {', '.join(BACKENDS)}")
    if precision not in PRECISIONS:
        raise ConfigError(f"precision '{precision}' is not one of {', '.join(PRECISIONS)}")
    run_device = torch_device(device)
    on_cuda = run_device.type == "cuda"
    path = Path(path)
    file_backends = FILE_BACKENDS.get(path.suffix, ())
    if file_backends or backend == "tensorrt":
        if tile:
            raise ConfigError(
                f"{path}: --tile needs a run directory (torch backend): an exported graph computes its "
                "instance-norm statistics per call, so tiles would not share them"
            )
        if backend not in ("auto", *file_backends):
            raise ConfigError(
                f"{path}: the {backend} backend cannot run it; .onnx files run on onnxruntime or "
                "openvino, .xml on openvino, .engine on tensorrt, run directories on torch, triton, "
                "onnxruntime or openvino"
            )
        chosen = backend if backend != "auto" else file_backends[0]
        runner, config, metadata = load_file(path, chosen, run_device)
        from i2i.export.onnx import PREDICTOR_ROLE

        if metadata.get("role") == PREDICTOR_ROLE:
            raise ConfigError(
                f"{path}: a RecycleGAN temporal predictor, not a generator; translate with the generator_AtoB or "
                f"generator_BtoA{path.suffix} exported beside it (it finds this predictor for --temporal recycle)"
            )
        if direction != metadata["direction"]:
            raise ConfigError(
                f"{path} translates {metadata['direction']}, not {direction}; export the {direction} generator"
            )
        if chosen != "tensorrt":  # an engine's optimization profile may not admit the smallest input
            _check_against_metadata(path, runner, config, metadata)
        predictor = Predictor(runner, config, direction, chosen, batch_size, metadata)
        if backend == "auto" and path.suffix == ".onnx" and not on_cuda and _installed("openvino"):
            predictor.run = FastestRunner(
                {"onnxruntime": lambda: runner, "openvino": lambda: load_file(path, "openvino", run_device)[0]},
                lambda name: setattr(predictor, "backend", name),
            )
        return predictor
    if precision == "fp16" and not on_cuda:
        raise ConfigError("fp16 inference needs a CUDA device; use fp32 or bf16 on the CPU")
    if backend in TRACED_BACKENDS and (on_cuda or precision != "fp32" or tile):
        raise ConfigError(
            f"{path}: the {backend} backend runs a run directory's generator traced in memory on the CPU in "
            "fp32, untiled; export it (i2i export) for other settings"
        )
    net, config = load_generator(path, direction)
    if backend in TRACED_BACKENDS:
        traced = _exported_runners(net.float(), config, direction)
        if backend not in traced:
            raise MissingDependencyError(f"the {backend} backend is not installed: pip install 'i2i[{backend}]'")
        return Predictor(traced[backend](), config, direction, backend, batch_size)
    auto = backend == "auto" and not tile
    if backend == "auto":
        backend = "torch"
        if on_cuda and not tile:
            from i2i.kernels.dispatch import can_fuse

            backend = "triton" if can_fuse(net) else "torch"
    if tile and backend != "torch":
        raise ConfigError(
            "--tile runs on the torch backend (it hooks the generator's instance norms); add --backend torch"
        )
    if backend == "triton" and not on_cuda and os.environ.get("TRITON_INTERPRET") != "1":
        raise ConfigError("the triton backend needs a CUDA GPU (--device cuda); on the CPU use --backend torch")
    dtype = PRECISIONS[precision]
    net = net.to(run_device, dtype)
    if on_cuda:
        net = net.to(memory_format=torch.channels_last)
    forward: Callable[[torch.Tensor], torch.Tensor] | nn.Module = net
    if backend == "triton":
        from i2i.kernels.dispatch import fuse_generator

        forward = fuse_generator(net)
    if tile:
        from .tiling import TiledGenerator

        tiled = TiledGenerator(net, tile, overlap, size_multiple(config.G), run_device, dtype, tile_stats)
        return Predictor(
            TorchRunner(tiled, torch.device("cpu"), torch.float32, False), config, direction, backend, batch_size
        )
    if on_cuda and cuda_graphs:
        from .cuda_graphs import CudaGraphRunner

        forward = CudaGraphRunner(forward)
    eager = TorchRunner(forward, run_device, dtype, on_cuda)
    predictor = Predictor(eager, config, direction, backend, batch_size)
    if auto and not on_cuda and precision == "fp32":
        predictor.run = FastestRunner(
            {"torch": lambda: eager, **_exported_runners(net, config, direction)},
            lambda name: setattr(predictor, "backend", name),
        )
    return predictor


def _check_against_metadata(path: Path, runner: Runner, config: RunConfig, metadata: dict[str, str]) -> None:
    """One inference on the smallest input the metadata admits: a graph whose input type, output
    size or channels disagree with its metadata is refused before any image is read or written."""
    from i2i.export.onnx import smallest_side

    side = smallest_side(int(metadata["size_multiple"]))
    channels_in, channels_out = generator_channels(config, metadata["direction"])
    probe = np.zeros((1, side, side, channels_in + condition_channels(config)), np.uint8)
    try:
        shape = runner(probe).shape
    except Exception as exc:  # each runtime raises its own types for a graph that cannot take the input
        raise ConfigError(
            f"{path}: the graph does not run as its metadata describes ({str(exc).splitlines()[0][:160]}); re-export it"
        ) from None
    if shape != (1, side, side, channels_out):
        raise ConfigError(
            f"{path}: the graph turns a {side}x{side} image of {probe.shape[-1]} channel(s) into "
            f"{'x'.join(map(str, shape[1:3]))} of {shape[-1]}, its metadata says {side}x{side} of {channels_out}; "
            "re-export it with `i2i export`"
        )


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


# How each backend loads an exported file ("module:function", imported when first used).
FILE_LOADERS = {
    "onnxruntime": "i2i.runtime.onnxruntime_backend:load_onnx",
    "openvino": "i2i.runtime.openvino_backend:load_openvino",
    "tensorrt": "i2i.runtime.tensorrt_backend:load_engine",
}


def load_file(path: Path, backend: str, device: torch.device) -> tuple[Runner, RunConfig, dict[str, str]]:
    """An exported file's runner on `backend`, its run config and i2i's metadata (direction, role, ...)."""
    module, function = FILE_LOADERS[backend].split(":")
    return getattr(importlib.import_module(module), function)(path, device)


def _exported_runners(net: nn.Module, config: RunConfig, direction: str) -> dict[str, Callable[[], Runner]]:
    """ONNX Runtime and OpenVINO runners over the generator traced in memory (the same
    graph `i2i export` writes), built only when `--backend auto` times them."""
    import functools

    from i2i.export.onnx import build_onnx

    graph = functools.cache(lambda: build_onnx(copy.deepcopy(net).float(), config, direction))

    def onnxruntime() -> Runner:
        import onnxruntime as ort

        session = ort.InferenceSession(
            graph().SerializeToString(), onnxruntime_session_options(), providers=["CPUExecutionProvider"]
        )
        return OnnxRuntimeRunner(session, "float", "fp32", torch.device("cpu"))

    def openvino() -> Runner:
        from i2i.export.openvino import compile_for_cpu, from_onnx

        return compile_for_cpu(from_onnx(graph()), "fp32")

    return {"onnxruntime": onnxruntime} | ({"openvino": openvino} if _installed("openvino") else {})
