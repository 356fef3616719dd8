"""OpenVINO backend: run an exported .xml IR (or an .onnx file) on the CPU plugin."""

from __future__ import annotations

from pathlib import Path

import torch

from i2i.config import RunConfig, config_from_json
from i2i.errors import ConfigError
from i2i.export.openvino import compile_for_cpu, from_onnx, read_ir
from i2i.runners import OpenVINORunner


def load_openvino(path: Path, device: torch.device) -> tuple[OpenVINORunner, RunConfig, dict[str, str]]:
    """An i2i .xml export, or an i2i .onnx export read by OpenVINO's ONNX front end."""
    path = Path(path)
    if device.type != "cpu":
        raise ConfigError("the openvino backend runs on the CPU here; pass --device cpu")
    if path.suffix == ".onnx":
        from .onnxruntime_backend import read_metadata, read_model

        model_proto = read_model(path)
        metadata, model = read_metadata(model_proto, path), from_onnx(model_proto)
        if metadata.get("precision", "fp32") not in ("fp32", "int8") or metadata["io"] != "float":
            raise ConfigError(f"{path}: the openvino backend runs float-I/O fp32/int8 exports; use onnxruntime")
    else:
        model, metadata = read_ir(path)
    config = config_from_json(metadata["train_config"], f"{path} metadata")
    return compile_for_cpu(model, metadata.get("precision", "fp32")), config, metadata
