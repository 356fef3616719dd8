"""ONNX Runtime backend: run an exported .onnx generator (CPU, or CUDA with I/O binding)."""

from __future__ import annotations

from pathlib import Path

import onnx
import torch

from i2i.config import RunConfig, config_from_json
from i2i.errors import ConfigError, MissingDependencyError
from i2i.export.onnx import read_metadata
from i2i.runners import OnnxRuntimeRunner
from i2i.threads import onnxruntime_session_options


def read_model(path: Path) -> onnx.ModelProto:
    if not path.is_file():
        raise ConfigError(f"{path}: no such file; export one with `i2i export RUN`")
    try:
        return onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError, ValueError, ... for damaged files
        raise ConfigError(f"{path}: not a readable ONNX model ({type(exc).__name__}); re-export it") from None


def load_onnx(path: Path, device: torch.device) -> tuple[OnnxRuntimeRunner, RunConfig, dict[str, str]]:
    import onnxruntime as ort

    model = read_model(Path(path))
    props = read_metadata(model, path)
    config = config_from_json(props["train_config"], f"{path} metadata")
    if device.type == "cuda":
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise MissingDependencyError(
                "ONNX Runtime has no CUDA provider here; pip install 'i2i[gpu]' (onnxruntime-gpu) or use --device cpu"
            )
        providers = [("CUDAExecutionProvider", {"device_id": device.index or 0}), "CPUExecutionProvider"]
    else:
        providers = ["CPUExecutionProvider"]
    try:
        session = ort.InferenceSession(str(path), onnxruntime_session_options(), providers=providers)
    except Exception as exc:  # ORT raises its own Fail/InvalidGraph types
        raise ConfigError(
            f"{path}: ONNX Runtime cannot load it ({str(exc).splitlines()[0][:200]}); re-export it"
        ) from None
    return OnnxRuntimeRunner(session, props["io"], props.get("precision", "fp32"), device), config, props
