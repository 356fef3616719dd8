"""ONNX export: graph form, metadata, parity (and refusal), variants, every generator family."""

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from i2i.errors import CheckpointError, ConfigError
from i2i.export import onnx as onnx_export
from i2i.export.exporter import ExportRequest, export
from i2i.export.onnx import ExportError
from i2i.io import list_images, read_image
from i2i.rundir import load_generator
from i2i.runtime import load

from ..conftest import untrained_run

# The export's own bounds (one place: export/onnx.py), checked again here on inputs it never saw.
FP32, FP16, UINT8 = (onnx_export.TOLERANCE[key] for key in [("float", "fp32"), ("float", "fp16"), ("uint8", "fp32")])


@pytest.fixture(scope="module")
def resnet_run(digits, tmp_path_factory):
    return untrained_run(tmp_path_factory.mktemp("export") / "resnet", digits)


def test_graph_metadata_and_dynamic_sizes(resnet_run, tmp_path):
    report = export(ExportRequest(resnet_run, out_dir=tmp_path))
    model = onnx.load(str(report.path))
    ops = [node.op_type for node in model.graph.node]
    # 1 stem + 2 down + 6 blocks × 2 + 2 up: each InstanceNorm stays one op, scale/bias as initializers.
    assert ops.count("InstanceNormalization") == 17
    assert set(ops) <= {"Pad", "Conv", "InstanceNormalization", "Relu", "Add", "ConvTranspose", "Tanh"}
    initializers = {init.name for init in model.graph.initializer}
    assert all(
        set(node.input[1:]) <= initializers for node in model.graph.node if node.op_type == "InstanceNormalization"
    )
    assert model.opset_import[0].version == 17
    props = {p.key: p.value for p in model.metadata_props}
    assert props["direction"] == "AtoB" and props["size_multiple"] == "4" and props["io"] == "float"
    assert props["normalization"] == "minus1_1" and props["i2i_version"] and props["export_date"]
    assert json.loads(props["train_config"])["G"]["netG"] == "resnet_6blocks"
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["N", 1, "H", "W"]
    session = ort.InferenceSession(str(report.path), providers=["CPUExecutionProvider"])
    for shape in ((1, 1, 12, 20), (3, 1, 36, 8)):
        assert session.run(None, {"image": np.zeros(shape, np.float32)})[0].shape == shape
    assert report.parity.max_error < FP32
    assert any(result.what.endswith(".png") for result in report.parity.parity)  # real images were checked too


@pytest.mark.parametrize("net_g, channels", [("mobile_resnet_9blocks", 3), ("unet_128", 1), ("mobile_resnet_attn", 3)])
def test_other_generator_families(net_g, channels, tmp_path, photos, digits):
    run = untrained_run(tmp_path / "run", photos if channels == 3 else digits, net_g, ngf=4, channels=channels)
    report = export(ExportRequest(run, out_dir=tmp_path))
    assert report.parity.max_error < FP32 and report.path.is_file()


@pytest.mark.parametrize("upsample", ["nearest", "bilinear"])
def test_resize_convolution_generators_export_at_any_size(upsample, tmp_path, photos):
    run = untrained_run(tmp_path / "run", photos, ngf=4, channels=3, upsample=upsample, residual=True)
    report = export(ExportRequest(run, out_dir=tmp_path))
    assert "Resize" in {node.op_type for node in onnx.load(str(report.path)).graph.node}
    assert report.parity.max_error < FP32
    assert_matches_torch_at_another_size(run, report.path, (1, 3, 28, 44))


@pytest.mark.parametrize("warp", [{"affine_warp": True}, {"flow_warp": 3}])
def test_residual_generator_with_a_warp(warp, tmp_path, digits):
    run = untrained_run(tmp_path / "run", digits, ngf=4, residual=True, **warp)
    report = export(ExportRequest(run, out_dir=tmp_path))
    model = onnx.load(str(report.path))
    assert {"GridSample", "Clip"} <= {node.op_type for node in model.graph.node}
    assert report.parity.max_error < FP32
    assert_matches_torch_at_another_size(run, report.path, (2, 1, 20, 36))


def assert_matches_torch_at_another_size(run, onnx_path, shape):
    """The exported graph against the run's torch generator at a size it was not traced at."""
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)
    with torch.no_grad():
        expected = load_generator(run, "AtoB")[0].eval()(torch.from_numpy(x)).numpy()
    assert np.abs(session.run(None, {"image": x})[0] - expected).max() < FP32


def test_uint8_io_matches_the_torch_predictor(resnet_run, digits, tmp_path):
    report = export(ExportRequest(resnet_run, out_dir=tmp_path, io_kind="uint8"))
    model = onnx.load(str(report.path))
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    images = [read_image(p, channels=1) for p in list_images(digits / "testA")[:4]]
    torch_out = np.stack(load(resnet_run)(images)).astype(int)
    onnx_out = np.stack(load(report.path)(images)).astype(int)
    assert np.abs(torch_out - onnx_out).max() <= UINT8


def test_fp16_variant(resnet_run, tmp_path):
    report = export(ExportRequest(resnet_run, out_dir=tmp_path, precision="fp16"))
    assert report.parity.max_error < FP16
    model = onnx.load(str(report.path))
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT16


def test_a_model_that_disagrees_is_not_written(resnet_run, tmp_path, monkeypatch):
    simplify = onnx_export._simplify

    def broken(model):  # perturb the output conv's weight (no instance norm after it to undo that)
        model = simplify(model)
        last_conv = [node for node in model.graph.node if node.op_type == "Conv"][-1]
        weight = next(init for init in model.graph.initializer if init.name == last_conv.input[1])
        values = onnx.numpy_helper.to_array(weight) * 1.01
        weight.CopyFrom(onnx.numpy_helper.from_array(values, weight.name))
        return model

    monkeypatch.setattr(onnx_export, "_simplify", broken)
    with pytest.raises(ExportError, match="parity check failed"):
        export(ExportRequest(resnet_run, out_dir=tmp_path))
    assert not list(tmp_path.iterdir())


def test_bad_requests(resnet_run, tmp_path):
    with pytest.raises(ConfigError, match="opset 11 is not supported"):
        export(ExportRequest(resnet_run, out_dir=tmp_path, opset=11))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "train_config.json").write_text((resnet_run / "train_config.json").read_text())
    with pytest.raises(CheckpointError, match="no complete checkpoint"):
        export(ExportRequest(tmp_path / "empty"))
    (tmp_path / "corrupt.onnx").write_bytes(b"\x08\x07garbage")
    with pytest.raises(ConfigError, match="not a readable ONNX model"):
        load(tmp_path / "corrupt.onnx")
