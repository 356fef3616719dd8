"""Post-training int8 quantization over calibration images, for ONNX Runtime and OpenVINO.

Both take the fp32 model, uint8 NHWC calibration batches and the indexes (in execution order)
of convolutions to leave in fp32, which the quality gate picks from measured sensitivity.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np
import onnx

from i2i.image import array_to_model_input

from .onnx import INPUT_NAME

ONNX_CONVS = ("Conv", "ConvTranspose")
OPENVINO_CONVS = ("Convolution", "GroupConvolution", "ConvolutionBackpropData", "GroupConvolutionBackpropData")


def to_float(batch: np.ndarray) -> np.ndarray:
    """uint8 NHWC → float32 NCHW in [-1, 1], the exported graphs' input (the core image contract)."""
    return array_to_model_input(batch).numpy()


def onnx_conv_names(model: onnx.ModelProto) -> list[str]:
    return [node.name for node in model.graph.node if node.op_type in ONNX_CONVS]


def quantize_onnx(model: onnx.ModelProto, calibration: list[np.ndarray], keep_fp32: list[int] = ()) -> onnx.ModelProto:
    """Static QDQ quantization: int8 per-channel weights, uint8 activations (what the VNNI and
    AVX2 kernels of ONNX Runtime run fastest); the listed convolutions stay fp32."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter(calibration)

        def get_next(self):
            item = next(self.items, None)
            return None if item is None else {INPUT_NAME: to_float(item)}

    # The quantizer logs a root-logger WARNING per tensor it cannot fold ("Axis 1 is out-of-range");
    # they are about its internals, not the user's model.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            source, prepared, out = Path(tmp) / "fp32.onnx", Path(tmp) / "pre.onnx", Path(tmp) / "int8.onnx"
            onnx.save(model, str(source))
            quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
            names = onnx_conv_names(onnx.load(str(prepared)))  # the names after pre-processing's graph optimizations
            quantize_static(
                str(prepared),
                str(out),
                Reader(),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                nodes_to_exclude=[names[i] for i in keep_fp32],
            )
            quantized = onnx.load(str(out))
    finally:
        root.setLevel(level)
    del quantized.metadata_props[:]
    quantized.metadata_props.extend(model.metadata_props)
    return quantized


def openvino_conv_names(model) -> list[str]:
    return [op.get_friendly_name() for op in model.get_ordered_ops() if op.get_type_name() in OPENVINO_CONVS]


def quantize_openvino(model, calibration: list[np.ndarray], keep_fp32: list[int] = ()):
    """NNCF post-training quantization (min-max ranges with fast bias correction); the listed
    convolutions stay fp32 through NNCF's ignored scope."""
    import nncf

    nncf.set_log_level(logging.ERROR)  # its per-node INFO lines would bury the export's own output
    names = openvino_conv_names(model)
    dataset = nncf.Dataset(calibration, to_float)
    scope = nncf.IgnoredScope(names=[names[i] for i in keep_fp32]) if keep_fp32 else None
    return nncf.quantize(model, dataset, subset_size=len(calibration), ignored_scope=scope)
