"""ONNX Runtime backend: run an exported .onnx generator (CPU, or CUDA with I/O binding)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import torch

from i2i.config import RunConfig
from i2i.errors import ConfigError, MissingDependencyError
from i2i.export.onnx import INPUT_NAME, OUTPUT_NAME, read_metadata
from i2i.image import array_to_model_input, to_image_arrays


def read_model(path: Path) -> onnx.ModelProto:
    if not path.is_file():
        raise ConfigError(f"{path}: no such file; export one with `i2i export RUN`")
    try:
        return onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError, ValueError, ... for damaged files
        raise ConfigError(f"{path}: not a readable ONNX model ({type(exc).__name__}); re-export it") from None


class OnnxRuntimeRunner:
    """uint8 NHWC batch → uint8 NHWC batch through an InferenceSession; normalization is in
    the graph for `--io uint8` exports and done here for float ones."""

    def __init__(self, session, io_kind: str, precision: str, device: torch.device):
        self.session, self.io_kind, self.device = session, io_kind, device
        self.float_type = np.float16 if precision == "fp16" else np.float32

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        if self.io_kind == "uint8":
            feed = batch
        else:
            feed = array_to_model_input(batch).numpy().astype(self.float_type)
        output = self._run_cuda(feed) if self.device.type == "cuda" else self.session.run(None, {INPUT_NAME: feed})[0]
        if self.io_kind == "uint8":
            return output
        return to_image_arrays(torch.from_numpy(output))

    def _run_cuda(self, feed: np.ndarray) -> np.ndarray:
        """Bind the input in GPU memory and let ORT allocate the output there too: no
        implicit host round trips inside the session."""
        tensor = torch.from_numpy(feed).to(self.device)
        binding = self.session.io_binding()
        binding.bind_input(
            INPUT_NAME, "cuda", self.device.index or 0, feed.dtype, tuple(tensor.shape), tensor.data_ptr()
        )
        binding.bind_output(OUTPUT_NAME, "cuda", self.device.index or 0)
        self.session.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()[0]


def load_onnx(path: Path, device: torch.device) -> tuple[OnnxRuntimeRunner, RunConfig, str]:
    import onnxruntime as ort

    model = read_model(Path(path))
    props = read_metadata(model, path)
    config = RunConfig.from_dict(json.loads(props["train_config"]), source=f"{path} metadata")
    if device.type == "cuda":
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise MissingDependencyError(
                "ONNX Runtime has no CUDA provider here; pip install 'i2i[gpu]' (onnxruntime-gpu) or use --device cpu"
            )
        providers = [("CUDAExecutionProvider", {"device_id": device.index or 0}), "CPUExecutionProvider"]
    else:
        providers = ["CPUExecutionProvider"]
    try:
        session = ort.InferenceSession(str(path), providers=providers)
    except Exception as exc:  # ORT raises its own Fail/InvalidGraph types
        raise ConfigError(
            f"{path}: ONNX Runtime cannot load it ({str(exc).splitlines()[0][:200]}); re-export it"
        ) from None
    return OnnxRuntimeRunner(session, props["io"], props.get("precision", "fp32"), device), config, props["direction"]
