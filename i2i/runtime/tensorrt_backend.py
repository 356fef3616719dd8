"""TensorRT backend: run a serialized engine built by `i2i export --trt`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from i2i.config import RunConfig, config_from_json
from i2i.errors import ConfigError
from i2i.export.onnx import INPUT_NAME, OUTPUT_NAME
from i2i.export.plugins import import_tensorrt, register_tensorrt_plugins
from i2i.export.tensorrt import EngineError, EngineSidecar, check_engine_compatible
from i2i.image import to_image_arrays, to_model_input


class TensorRTRunner:
    """uint8 NHWC batch → uint8 NHWC batch through an execution context on the current stream."""

    def __init__(self, engine, sidecar: EngineSidecar, device: torch.device):
        trt, _ = import_tensorrt()
        self.engine, self.sidecar, self.device = engine, sidecar, device
        self.context = engine.create_execution_context()
        to_torch = {trt.float32: torch.float32, trt.float16: torch.float16}
        self.input_dtype = to_torch[engine.get_tensor_dtype(INPUT_NAME)]
        self.output_dtype = to_torch[engine.get_tensor_dtype(OUTPUT_NAME)]

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        low, high = self.sidecar.min_shape, self.sidecar.max_shape
        n, h, w, _ = batch.shape
        if not all(
            lo <= v <= hi for lo, v, hi in zip((low[0], low[2], low[3]), (n, h, w), (high[0], high[2], high[3]))
        ):
            raise ConfigError(
                f"input {n}x{h}x{w} is outside the engine's profile {low} .. {high}; rebuild with other --shapes"
            )
        x = to_model_input(torch.from_numpy(batch).to(self.device), self.input_dtype).contiguous()
        self.context.set_input_shape(INPUT_NAME, tuple(x.shape))
        y = torch.empty(tuple(self.context.get_tensor_shape(OUTPUT_NAME)), device=self.device, dtype=self.output_dtype)
        self.context.set_tensor_address(INPUT_NAME, x.data_ptr())
        self.context.set_tensor_address(OUTPUT_NAME, y.data_ptr())
        stream = torch.cuda.current_stream(self.device)
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise EngineError("TensorRT failed to run the engine")
        return to_image_arrays(y)


def load_engine(path: Path, device: torch.device) -> tuple[TensorRTRunner, RunConfig, dict[str, str]]:
    trt, _ = import_tensorrt()
    path = Path(path)
    if device.type != "cuda":
        raise ConfigError("the tensorrt backend runs on CUDA; pass --device cuda")
    sidecar = EngineSidecar.read(path)
    major, minor = torch.cuda.get_device_capability(device)
    check_engine_compatible(sidecar, path, trt.__version__, f"{major}{minor}")
    if sidecar.fused_plugins:
        register_tensorrt_plugins(major * 10 + minor)
    runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
    engine = runtime.deserialize_cuda_engine(path.read_bytes())
    if engine is None:
        raise ConfigError(f"{path}: TensorRT cannot deserialize it (corrupt or built elsewhere); rebuild it")
    config = config_from_json(sidecar.metadata["train_config"], f"{path} sidecar")
    return TensorRTRunner(engine, sidecar, device), config, sidecar.metadata
