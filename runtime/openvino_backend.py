"""OpenVINO backend: run an exported .xml IR (or an .onnx file) on the CPU plugin."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import torch

from i2i.config import RunConfig
from i2i.errors import ConfigError
from i2i.export.formats import cpu_has_native_bf16
from i2i.export.openvino import PRECISION_HINTS, import_openvino, read_ir
from i2i.image import array_to_model_input, to_image_arrays


class OpenVINORunner:
    """uint8 NHWC batch → uint8 NHWC batch through a compiled model; the inference-precision
    hint is always set, so an fp32 IR runs in fp32 also where the plugin would pick bf16."""

    def __init__(self, compiled, precision: str):
        self.compiled, self.precision = compiled, precision
        self.request = compiled.create_infer_request()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        feed = array_to_model_input(batch).numpy()
        output = self.request.infer([feed])[self.compiled.output(0)]
        return to_image_arrays(torch.from_numpy(output))


def compile_for_cpu(model, precision: str, profile: bool = False) -> OpenVINORunner:
    """Compile with the hint for `precision`; bf16 falls back to fp32 (with a warning) on a
    CPU without native bf16, where the plugin would emulate it slowly. `profile` turns on the
    per-layer performance counters (benchmarks/openvino_profile.py)."""
    ov = import_openvino()
    if precision == "bf16" and not cpu_has_native_bf16():
        warnings.warn("this CPU has no native bf16; running the bf16 export in fp32", stacklevel=2)
        precision = "fp32"
    config = {"INFERENCE_PRECISION_HINT": PRECISION_HINTS[precision], "PERFORMANCE_HINT": "LATENCY"}
    if profile:
        config["PERF_COUNT"] = True
    return OpenVINORunner(ov.Core().compile_model(model, "CPU", config), precision)


def load_openvino(path: Path, device: torch.device) -> tuple[OpenVINORunner, RunConfig, str]:
    """An i2i .xml export, or an i2i .onnx export read by OpenVINO's ONNX front end."""
    path = Path(path)
    if device.type != "cpu":
        raise ConfigError("the openvino backend runs on the CPU here; pass --device cpu")
    if path.suffix == ".onnx":
        from i2i.export.openvino import from_onnx

        from .onnxruntime_backend import read_metadata, read_model

        model_proto = read_model(path)
        metadata, model = read_metadata(model_proto, path), from_onnx(model_proto)
        if metadata.get("precision", "fp32") not in ("fp32", "int8") or metadata["io"] != "float":
            raise ConfigError(f"{path}: the openvino backend runs float-I/O fp32/int8 exports; use onnxruntime")
    else:
        model, metadata = read_ir(path)
    config = RunConfig.from_dict(json.loads(metadata["train_config"]), source=f"{path} metadata")
    return compile_for_cpu(model, metadata.get("precision", "fp32")), config, metadata["direction"]
