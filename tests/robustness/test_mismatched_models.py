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


def _state(net: str):
    from i2i.config import GeneratorConfig
    from i2i.nets import build_generator

    return build_generator(GeneratorConfig(net, ngf=4), 3, 3).state_dict()


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        ("random bytes", "not a PyTorch checkpoint"),
        ("a whole module", "pickled Python objects"),
        ("a missing layer", "resnet_6blocks"),
        ("no residual blocks", "6 or 9"),
        ("a U-Net without its last layer", "not a complete cyclegan generator"),
        ("a weight of the wrong rank", "not a complete cyclegan generator"),
        ("a width of zero", "no generator i2i builds"),
    ],
)
def test_a_foreign_state_dict_that_is_no_generator_is_one_line(tmp_path, damage, expected):
    import torch

    state = _state("resnet_6blocks")
    path = tmp_path / "g.pth"
    if damage == "random bytes":
        path.write_bytes(bytes(range(256)) * 8)
    elif damage == "a whole module":
        torch.save(torch.nn.Linear(2, 2), path)
    else:
        if damage == "a missing layer":
            del state["model.10.conv_block.1.weight"]
        elif damage == "no residual blocks":
            state = {k: v for k, v in state.items() if int(k.split(".")[1]) < 2}
        elif damage == "a U-Net without its last layer":
            state = _state("unet_128")
            del state["model.model.3.weight"]
        elif damage == "a weight of the wrong rank":
            state["model.1.weight"] = state["model.1.weight"].flatten()
        else:
            state["model.1.weight"] = state["model.1.weight"][:0]
        torch.save(state, path)
    out = tmp_path / "imported"
    assert_user_error(invoke("import", path, "--from", "cyclegan", "--out", out), path.name, expected)
    assert not out.exists()
