"""An exported graph is checked against its own metadata when it is loaded: one line, nothing
written, when they disagree."""

from __future__ import annotations

import json

import onnx
import pytest
from onnx import TensorProto, helper

from .conftest import assert_ok, assert_user_error, invoke


@pytest.fixture(scope="module")
def exported(tmp_path_factory, run):
    out = tmp_path_factory.mktemp("export")
    assert_ok(invoke("export", run, "--out", out))
    return out / "generator_AtoB.onnx"


def _with_metadata(source, target, **changes):
    model = onnx.load(str(source))
    props = {p.key: p.value for p in model.metadata_props}
    for key, value in changes.items():
        props[key] = value
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, props)
    onnx.save(model, str(target))
    return target


def _halving_graph(source, target):
    """A float graph that averages 2x2 blocks: i2i's metadata, half the promised size."""
    props = {p.key: p.value for p in onnx.load(str(source)).metadata_props}
    pool = helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2])
    tensor = lambda name: helper.make_tensor_value_info(name, TensorProto.FLOAT, ["n", "c", "h", "w"])  # noqa: E731
    graph = helper.make_graph([pool], "halving", [tensor("x")], [tensor("y")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.helper.set_model_props(model, props)
    onnx.save(model, str(target))
    return target


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_a_graph_that_disagrees_with_its_metadata_is_refused(tmp_path, data, exported, backend):
    config = json.loads({p.key: p.value for p in onnx.load(str(exported)).metadata_props}["train_config"])
    config["data"]["output_nc"] = 3 - config["data"]["output_nc"] + 1  # 1 ↔ 3 channels
    cases = {
        "channels": _with_metadata(exported, tmp_path / "channels.onnx", train_config=json.dumps(config)),
        "uint8 I/O on a float graph": _with_metadata(exported, tmp_path / "uint8.onnx", io="uint8"),
        "half size": _halving_graph(exported, tmp_path / "half.onnx"),
    }
    for name, model in cases.items():
        out = tmp_path / f"out-{name}"
        line = assert_user_error(invoke("generate", model, data / "testA", out, "--backend", backend), model.name)
        assert "re-export" in line or "use onnxruntime" in line, (name, line)
        assert not out.exists(), name
    assert_ok(invoke("generate", exported, data / "testA", tmp_path / "fine", "--backend", backend))
