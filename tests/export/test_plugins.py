"""TensorRT plugin path without TensorRT: graph surgery checked by running the fused graph in
ONNX Runtime with the fused nodes computed by the plugin's own Triton kernel (interpreted on
the CPU), PTX generation for the GPU targets, and the engine helpers."""

import re

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from i2i.errors import ConfigError, MissingDependencyError
from i2i.export.onnx import build_onnx
from i2i.export.plugins import OP_ACTIVATION, OP_RESIDUAL, compile_plugin_kernel, fuse_instance_norm_nodes
from i2i.export.tensorrt import EngineSidecar, check_engine_compatible, parse_shapes
from i2i.kernels.instance_norm import instance_norm_planes
from i2i.rundir import load_generator

from ..conftest import untrained_run

CONTRIB = "ai.onnx.contrib"  # the domain onnxruntime-extensions serves Python ops from


@pytest.fixture(scope="module")
def onnxruntime_with_plugin_ops():
    extensions = pytest.importorskip("onnxruntime_extensions")
    float_type = extensions.PyCustomOpDef.dt_float
    attrs = {
        "epsilon": float_type,
        "activation": extensions.PyCustomOpDef.dt_string,
        "alpha": float_type,
        "plugin_namespace": extensions.PyCustomOpDef.dt_string,
        "plugin_version": extensions.PyCustomOpDef.dt_string,
    }

    def run(x, scale, bias, residual=None, **kw):
        t = [torch.from_numpy(np.ascontiguousarray(a)) for a in (x, scale, bias)]
        r = torch.from_numpy(np.ascontiguousarray(residual)) if residual is not None else None
        return instance_norm_planes(*t, kw["epsilon"], kw["activation"], kw["alpha"], r).numpy()

    extensions.onnx_op(op_type=OP_ACTIVATION, inputs=[float_type] * 3, outputs=[float_type], attrs=attrs)(
        lambda x, s, b, **kw: run(x, s, b, **kw)
    )
    extensions.onnx_op(op_type=OP_RESIDUAL, inputs=[float_type] * 4, outputs=[float_type], attrs=attrs)(
        lambda x, s, b, r, **kw: run(x, s, b, r, **kw)
    )
    options = ort.SessionOptions()
    options.register_custom_ops_library(extensions.get_library_path())
    return options


# ResNet-6: every norm (11 before a ReLU, 6 before a residual add). U-Net-128: the 5 down
# norms before a LeakyReLU; the 6 up norms feed a Concat and stay as they are.
@pytest.mark.parametrize("net_g, fused_act, fused_add", [("resnet_6blocks", 11, 6), ("unet_128", 5, 0)])
def test_fused_graph_computes_what_the_original_does(
    net_g, fused_act, fused_add, digits, tmp_path, onnxruntime_with_plugin_ops
):
    run = untrained_run(tmp_path / "run", digits, net_g, ngf=4)
    net, config = load_generator(run)
    model = build_onnx(net, config, "AtoB")
    fused, count = fuse_instance_norm_nodes(model, domain=CONTRIB)
    ops = [node.op_type for node in fused.graph.node]
    assert (ops.count(OP_ACTIVATION), ops.count(OP_RESIDUAL), count) == (fused_act, fused_add, fused_act + fused_add)
    original_ops = [n.op_type for n in model.graph.node]
    assert (
        ops.count("Relu") + ops.count("LeakyRelu")
        == original_ops.count("Relu") + original_ops.count("LeakyRelu") - fused_act
    )
    if net_g.startswith("resnet"):
        assert "InstanceNormalization" not in ops and "Add" not in ops
    onnx.checker.check_model(fused)
    size = 16 if net_g.startswith("resnet") else 128
    x = np.random.default_rng(0).uniform(-1, 1, (1, 1, size, size)).astype(np.float32)
    original = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    rewritten = ort.InferenceSession(
        fused.SerializeToString(), onnxruntime_with_plugin_ops, providers=["CPUExecutionProvider"]
    )
    expected, got = original.run(None, {"image": x})[0], rewritten.run(None, {"image": x})[0]
    assert np.abs(expected - got).max() < 1e-5


def test_nodes_with_other_consumers_are_left_alone():
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("InstanceNormalization", ["x", "s", "b"], ["n"], epsilon=1e-5),
        helper.make_node("Relu", ["n"], ["r"]),
        helper.make_node("Add", ["n", "r"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 4, 4])],
        [
            helper.make_tensor("s", TensorProto.FLOAT, [2], [1, 1]),
            helper.make_tensor("b", TensorProto.FLOAT, [2], [0, 0]),
        ],
    )
    fused, count = fuse_instance_norm_nodes(helper.make_model(graph))
    assert count == 0 and [n.op_type for n in fused.graph.node] == ["InstanceNormalization", "Relu", "Add"]


@pytest.mark.parametrize("arch", [80, 87, 90])
@pytest.mark.parametrize("dtype, residual", [("fp16", True), ("fp32", False)])
def test_plugin_kernels_compile_to_ptx_without_a_gpu(arch, dtype, residual):
    kernel = compile_plugin_kernel(dtype, "relu", residual, 1e-5, 0.0, arch)
    assert f".target sm_{arch}" in kernel.ptx and f".entry {kernel.name}(" in kernel.ptx
    entry = kernel.ptx[kernel.ptx.index(f".entry {kernel.name}(") :]
    params = re.findall(r"\.param \.(u64|u32)[^\n]*_param_(\d+)", entry[: entry.index(")")])
    # Exactly what TensorRT passes: x, scale, bias[, residual], C, HW, y — Triton's unused
    # scratch pointers are gone, and no dropped parameter is referenced in the body.
    kinds = ["u64"] * (4 if residual else 3) + ["u32", "u32", "u64"]
    assert params == [(kind, str(i)) for i, kind in enumerate(kinds)]
    assert f"_param_{len(kinds)}" not in kernel.ptx
    assert kernel.num_warps == 4


def test_engine_helpers_validate_without_tensorrt(tmp_path):
    assert parse_shapes("1x256x256,2x512x512,8x1024x1024", 3, 4) == (
        (1, 3, 256, 256),
        (2, 3, 512, 512),
        (8, 3, 1024, 1024),
    )
    with pytest.raises(ConfigError, match="not a multiple"):
        parse_shapes("1x250x256,1x256x256,1x256x256", 3, 4)
    with pytest.raises(ConfigError, match="min <= opt <= max"):
        parse_shapes("4x256x256,1x256x256,8x256x256", 3, 4)
    with pytest.raises(ConfigError, match="expected min,opt,max"):
        parse_shapes("256x256", 3, 4)
    sidecar = EngineSidecar(
        "fp16", (1, 3, 8, 8), (1, 3, 8, 8), (1, 3, 8, 8), 17, "10.9.0", "NVIDIA H100", "90", 1.0, {}
    )
    with pytest.raises(ConfigError, match="built with TensorRT 10.9.0, this is 10.13.0"):
        check_engine_compatible(sidecar, tmp_path / "g.engine", "10.13.0", "90")
    with pytest.raises(ConfigError, match="sm_90.*this GPU is sm_89"):
        check_engine_compatible(sidecar, tmp_path / "g.engine", "10.9.0", "89")
    with pytest.raises(ConfigError, match="sidecar"):
        EngineSidecar.read(tmp_path / "g.engine")


def test_missing_tensorrt_is_a_clear_error():
    pytest.importorskip("torch")
    try:
        import tensorrt  # noqa: F401

        pytest.skip("TensorRT is installed here")
    except ImportError:
        pass
    from i2i.export.plugins import import_tensorrt

    with pytest.raises(MissingDependencyError, match="TensorRT is not installed"):
        import_tensorrt()
