"""Runners: a uint8 NHWC batch → uint8 NHWC batch through an engine already in memory — a
torch module, an ONNX Runtime session or a compiled OpenVINO model.

They apply the image contract (`i2i.image`) around one engine call and nothing else, so the
exporter can measure what it builds (parity, quality gate) and the runtime can serve exported
files through the very same code. Loading files and choosing an engine are the runtime's job.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from i2i.errors import ConfigError
from i2i.image import array_to_model_input, to_image_arrays, to_model_input


class TorchRunner:
    """uint8 → [-1, 1] → module → uint8, on the module's device and dtype."""

    def __init__(
        self,
        forward: Callable[[torch.Tensor], torch.Tensor],
        device: torch.device,
        dtype: torch.dtype,
        channels_last: bool,
    ):
        self.forward, self.device, self.dtype, self.channels_last = forward, device, dtype, channels_last

    @torch.inference_mode()
    def __call__(self, batch: np.ndarray) -> np.ndarray:
        x = to_model_input(torch.from_numpy(batch).to(self.device), self.dtype)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return to_image_arrays(self.forward(x))


class OnnxRuntimeRunner:
    """Through an InferenceSession; normalization is in the graph for `--io uint8` exports and
    done here for float ones. On CUDA the input is bound in GPU memory and ORT allocates the
    output there too: no implicit host round trips inside the session."""

    def __init__(self, session, io_kind: str, precision: str, device: torch.device):
        self.session, self.io_kind, self.device = session, io_kind, device
        self.float_type = np.float16 if precision == "fp16" else np.float32
        self.input_name = session.get_inputs()[0].name
        self.output_name = session.get_outputs()[0].name

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        feed = batch if self.io_kind == "uint8" else array_to_model_input(batch).numpy().astype(self.float_type)
        if self.device.type == "cuda":
            output = self._run_cuda(feed)
        else:
            output = self.session.run([self.output_name], {self.input_name: feed})[0]
        return output if self.io_kind == "uint8" else to_image_arrays(torch.from_numpy(output))

    def _run_cuda(self, feed: np.ndarray) -> np.ndarray:
        tensor = torch.from_numpy(feed).to(self.device)
        binding = self.session.io_binding()
        device_id = self.device.index or 0
        binding.bind_input(self.input_name, "cuda", device_id, feed.dtype, tuple(tensor.shape), tensor.data_ptr())
        binding.bind_output(self.output_name, "cuda", device_id)
        self.session.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()[0]


class OpenVINORunner:
    """Through a compiled OpenVINO model (see `i2i.export.openvino.compile_for_cpu`, which sets
    the inference-precision hint it was compiled with)."""

    def __init__(self, compiled, precision: str):
        self.compiled, self.precision = compiled, precision
        self.request = compiled.create_infer_request()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        output = self.request.infer([array_to_model_input(batch).numpy()])[self.compiled.output(0)]
        return to_image_arrays(torch.from_numpy(output))


def torch_device(name: str) -> torch.device:
    """The torch device `name` (cpu, cuda, cuda:1, mps) if this machine has it; otherwise a
    ConfigError before anything is loaded or written (meta holds no data: never a run device)."""
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"device '{name}' is not a torch device name (cpu, cuda, cuda:1)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name} was requested but no CUDA GPU is available; use --device cpu")
    here = {
        "cpu": True,
        "cuda": torch.cuda.is_available() and (device.index or 0) < torch.cuda.device_count(),
        "mps": torch.backends.mps.is_available(),
    }
    if not here.get(device.type, False):
        raise ConfigError(f"device {name} is not on this machine; use --device cpu (or cuda, cuda:N for a GPU here)")
    return device
