"""ONNX → serialized TensorRT engine, plus a JSON sidecar that says what it was built for.

The engine is built with the fused Triton instance-norm plugins (export/plugins.py) or,
with `fused=False`, with TensorRT's native InstanceNormalization, so both can be timed.
Engines only run on the GPU model and TensorRT version they were built with; the sidecar
records both and `check_engine_compatible` refuses a mismatch with a one-line error.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import onnx

from i2i.errors import ConfigError, UserError
from i2i.io import atomic_write_bytes

from .onnx import INPUT_NAME, read_metadata
from .plugins import fuse_instance_norm_nodes, import_tensorrt, register_tensorrt_plugins

Shape = tuple[int, int, int, int]


class EngineError(UserError):
    """TensorRT could not build or load an engine."""


@dataclass
class EngineSidecar:
    precision: str
    min_shape: Shape
    opt_shape: Shape
    max_shape: Shape
    fused_plugins: int
    tensorrt_version: str
    gpu: str
    compute_capability: str
    build_seconds: float
    metadata: dict[str, str]

    @classmethod
    def read(cls, engine_path: Path) -> "EngineSidecar":
        path = sidecar_path(engine_path)
        try:
            raw = json.loads(path.read_text())
            return cls(**{**raw, **{k: tuple(raw[k]) for k in ("min_shape", "opt_shape", "max_shape")}})
        except FileNotFoundError:
            raise ConfigError(
                f"{path}: missing; an i2i engine comes with its sidecar, rebuild with `i2i export --trt`"
            ) from None
        except (json.JSONDecodeError, TypeError, KeyError) as exc:
            raise ConfigError(f"{path}: unreadable sidecar ({exc}); rebuild the engine") from None


def sidecar_path(engine_path: Path) -> Path:
    return Path(engine_path).with_suffix(".json")


def parse_shapes(text: str, channels: int, multiple: int) -> tuple[Shape, Shape, Shape]:
    """'1x256x256,4x512x512,8x1024x1024' (N×H×W for min, opt, max) → three NCHW shapes,
    checked for order and the size multiple."""
    try:
        triples = [tuple(int(v) for v in part.lower().split("x")) for part in text.split(",")]
    except ValueError:
        triples = []
    if len(triples) != 3 or any(len(t) != 3 or min(t) < 1 for t in triples):
        raise ConfigError(
            f"--shapes '{text}': expected min,opt,max as NxHxW,NxHxW,NxHxW (e.g. 1x256x256,1x512x512,4x1024x1024)"
        )
    for _, h, w in triples:
        if h % multiple or w % multiple:
            raise ConfigError(f"--shapes: {h}x{w} is not a multiple of the generator's size multiple {multiple}")
    if any(triples[i][d] > triples[i + 1][d] for i in range(2) for d in range(3)):
        raise ConfigError(f"--shapes '{text}': min <= opt <= max must hold in every dimension")
    return tuple((n, channels, h, w) for n, h, w in triples)  # type: ignore[return-value]


def check_engine_compatible(
    sidecar: EngineSidecar, engine_path: Path, tensorrt_version: str, compute_capability: str
) -> None:
    if sidecar.tensorrt_version != tensorrt_version:
        raise ConfigError(
            f"{engine_path}: built with TensorRT {sidecar.tensorrt_version}, this is {tensorrt_version}; "
            "rebuild it here with `i2i export --trt`"
        )
    if sidecar.compute_capability != compute_capability:
        raise ConfigError(
            f"{engine_path}: built for a {sidecar.gpu} (sm_{sidecar.compute_capability}), this GPU is "
            f"sm_{compute_capability}; rebuild it on this GPU"
        )


def _gpu() -> tuple[str, str]:
    import torch

    if not torch.cuda.is_available():
        raise EngineError("TensorRT engines need an NVIDIA GPU, and none is visible here")
    major, minor = torch.cuda.get_device_capability()
    return torch.cuda.get_device_name(), f"{major}{minor}"


def build_engine(
    onnx_path: Path,
    engine_path: Path,
    shapes: tuple[Shape, Shape, Shape],
    precision: str = "fp16",
    fused: bool = True,
    timing_cache: Path | None = None,
    workspace_gib: float = 4.0,
) -> EngineSidecar:
    """Build and write `engine_path` (+ sidecar) from an i2i ONNX export."""
    trt, _ = import_tensorrt()
    gpu, capability = _gpu()
    started = time.perf_counter()
    model = onnx.load(str(onnx_path))
    metadata = read_metadata(model, onnx_path)
    if metadata.get("io") != "float":
        raise ConfigError(f"{onnx_path}: build engines from a float-I/O export (`i2i export RUN`), not --io uint8")
    fused_count = 0
    if fused:
        register_tensorrt_plugins(int(capability))
        model, fused_count = fuse_instance_norm_nodes(model)

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(model.SerializeToString()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EngineError(f"{onnx_path}: TensorRT cannot parse it: {errors[:300]}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * 2**30))
    if precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    cache_bytes = timing_cache.read_bytes() if timing_cache and timing_cache.is_file() else b""
    cache = config.create_timing_cache(cache_bytes)
    config.set_timing_cache(cache, ignore_mismatch=False)
    profile = builder.create_optimization_profile()
    profile.set_shape(INPUT_NAME, *shapes)
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineError(f"{onnx_path}: TensorRT failed to build an engine (see its log above)")
    atomic_write_bytes(Path(engine_path), bytes(serialized))
    if timing_cache:
        atomic_write_bytes(timing_cache, bytes(config.get_timing_cache().serialize()))
    sidecar = EngineSidecar(
        precision,
        *shapes,
        fused_count,
        trt.__version__,
        gpu,
        capability,
        round(time.perf_counter() - started, 2),
        metadata,
    )
    atomic_write_bytes(sidecar_path(engine_path), (json.dumps(asdict(sidecar), indent=2) + "\n").encode())
    return sidecar
