"""ONNX export → OpenVINO IR (.xml + .bin) with i2i's metadata in the model's rt_info.

The IR keeps the ONNX graph's dynamic N/H/W and fp32 weights; bf16 is a compile-time hint of
the CPU plugin, recorded in the metadata, and int8 adds NNCF's FakeQuantize nodes. Both files
are written into a temporary folder beside the target (named as every i2i temporary, so the next
writer of the folder removes it after a kill) and renamed, .bin before .xml, so the final .xml
only ever appears with its complete weights.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from pathlib import Path

import onnx

from i2i.errors import ConfigError, MissingDependencyError
from i2i.io import temporary_prefix
from i2i.runners import OpenVINORunner
from i2i.threads import compute_threads

from .formats import PRECISION_ROWS, cpu_has_native_bf16

RT_INFO_ROOT = "i2i"
REQUIRED = ("train_config", "direction", "io", "size_multiple")


def import_openvino():
    try:
        import openvino
    except ImportError:
        raise MissingDependencyError("OpenVINO is not installed: pip install 'i2i[openvino]'") from None
    return openvino


def from_onnx(model: onnx.ModelProto):
    """The ONNX model as an OpenVINO model (the ONNX metadata is not carried; see `write_ir`)."""
    ov = import_openvino()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        onnx.save(model, str(path))
        return ov.Core().read_model(str(path))


def write_ir(model, path: Path, metadata: dict[str, str]) -> Path:
    """Write `model` as `path` (.xml) + its .bin atomically, with `metadata` in rt_info."""
    ov = import_openvino()
    path = Path(path)
    for key, value in metadata.items():
        model.set_rt_info(str(value), [RT_INFO_ROOT, key])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=temporary_prefix(path.name), suffix=".tmp", dir=path.parent))
    try:
        ov.save_model(model, str(tmp / path.name), compress_to_fp16=False)
        os.replace(tmp / path.with_suffix(".bin").name, path.with_suffix(".bin"))
        os.replace(tmp / path.name, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def read_ir(path: Path):
    """(OpenVINO model, i2i metadata) of an .xml written by `write_ir`; one-line errors for a
    missing .bin, an unreadable file or missing metadata."""
    ov = import_openvino()
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such file; export one with `i2i export RUN --format openvino`")
    if not path.with_suffix(".bin").is_file():
        raise ConfigError(
            f"{path}: its weights {path.with_suffix('.bin').name} are missing beside it; copy the .xml "
            "and .bin together or re-export"
        )
    try:
        model = ov.Core().read_model(str(path))
    except RuntimeError as exc:
        reason = str(exc).splitlines()[-1][:160]
        raise ConfigError(f"{path}: OpenVINO cannot read it ({reason}); re-export it") from None
    missing = [key for key in REQUIRED if not model.has_rt_info([RT_INFO_ROOT, key])]
    if missing:
        raise ConfigError(
            f"{path}: not an i2i export (metadata {', '.join(missing)} missing); export with "
            "`i2i export RUN --format openvino`"
        )
    info = model.get_rt_info()[RT_INFO_ROOT]
    return model, {key: value.astype(str) for key, value in info.items()}


def compile_for_cpu(model, precision: str, profile: bool = False) -> OpenVINORunner:
    """Compile with the hint for `precision`; bf16 falls back to fp32 (with a warning) on a
    CPU without native bf16, where the plugin would emulate it slowly. `profile` turns on the
    per-layer performance counters (benchmarks/openvino_profile.py)."""
    ov = import_openvino()
    if precision == "bf16" and not cpu_has_native_bf16():
        warnings.warn("this CPU has no native bf16; running the bf16 export in fp32", stacklevel=2)
        precision = "fp32"
    config = {
        "INFERENCE_PRECISION_HINT": PRECISION_ROWS[precision].openvino_hint,
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_NUM_THREADS": compute_threads(),
    }
    if profile:
        config["PERF_COUNT"] = True
    return OpenVINORunner(ov.Core().compile_model(model, "CPU", config), precision)
