"""Fused instance-norm nodes for TensorRT: ONNX graph surgery, Triton→PTX kernels, plugins.

`fuse_instance_norm_nodes` replaces InstanceNormalization→Relu/LeakyRelu with one
`instance_norm_act` node and InstanceNormalization→Add (the residual blocks) with one
`instance_norm_add` node. TensorRT's ONNX parser maps those nodes to the plugins that
`register_tensorrt_plugins` defines with TensorRT's Python plugin API; their AOT
implementation returns PTX that Triton compiles ahead of time from
`kernels.instance_norm.instance_norm_plane_kernel`, so the engine runs without Python.
Everything except the registration itself works without TensorRT and without a GPU.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from functools import lru_cache

import onnx
from onnx import helper

from i2i.errors import MissingDependencyError
from i2i.kernels.instance_norm import ACTIVATION_CODES, PLANE_BLOCK, PLANE_WARPS, instance_norm_plane_kernel

NAMESPACE = "i2i"
OP_ACTIVATION, OP_RESIDUAL = "instance_norm_act", "instance_norm_add"
PLUGIN_VERSION = "1"
SUPPORTED_ARCHS = (80, 86, 87, 89, 90)


def fuse_instance_norm_nodes(model: onnx.ModelProto, domain: str = NAMESPACE) -> tuple[onnx.ModelProto, int]:
    """A copy of `model` with each InstanceNormalization that feeds exactly one Relu,
    LeakyRelu or Add (and nothing else) merged with it into one fused node; returns the
    copy and the number of nodes fused. `domain` is the custom-op domain of the new nodes."""
    fused_model = onnx.ModelProto()
    fused_model.CopyFrom(model)
    graph = fused_model.graph
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    graph_outputs = {output.name for output in graph.output}

    replacements: dict[int, onnx.NodeProto] = {}  # id(consumer node) → fused node
    removed: set[int] = set()
    for node in graph.node:
        if node.op_type != "InstanceNormalization" or node.output[0] in graph_outputs:
            continue
        users = consumers.get(node.output[0], [])
        if len(users) != 1:
            continue
        user = users[0]
        epsilon = next((a.f for a in node.attribute if a.name == "epsilon"), 1e-5)
        attributes = {"epsilon": epsilon, "activation": "none", "alpha": 0.0}
        inputs = list(node.input)
        if user.op_type == "Relu":
            op, attributes["activation"] = OP_ACTIVATION, "relu"
        elif user.op_type == "LeakyRelu":
            op, attributes["activation"] = OP_ACTIVATION, "leaky_relu"
            attributes["alpha"] = next((a.f for a in user.attribute if a.name == "alpha"), 0.01)
        elif user.op_type == "Add" and len(user.input) == 2 and list(user.input).count(node.output[0]) == 1:
            op = OP_RESIDUAL
            inputs.append(next(name for name in user.input if name != node.output[0]))
        else:
            continue
        replacements[id(user)] = helper.make_node(
            op,
            inputs,
            [user.output[0]],
            name=f"{node.name or op}_fused",
            domain=domain,
            plugin_namespace=NAMESPACE,
            plugin_version=PLUGIN_VERSION,
            **attributes,
        )
        removed.add(id(node))

    # The fused node takes the consumer's place: all its inputs (the residual too) exist there.
    nodes = [replacements.get(id(node), node) for node in graph.node if id(node) not in removed]
    del graph.node[:]
    graph.node.extend(nodes)
    if replacements and all(opset.domain != domain for opset in fused_model.opset_import):
        fused_model.opset_import.append(helper.make_opsetid(domain, 1))
    return fused_model, len(replacements)


@dataclass(frozen=True)
class PluginKernel:
    name: str
    ptx: str
    num_warps: int
    shared_bytes: int
    arch: int


@lru_cache(maxsize=None)
def compile_plugin_kernel(
    dtype: str, activation: str, has_residual: bool, epsilon: float, alpha: float, arch: int
) -> PluginKernel:
    """Compile the single-launch instance-norm kernel to PTX for sm_`arch` — no GPU needed.

    Pointer arguments are x, scale, bias[, residual] (all `dtype`: TensorRT gives a plugin's
    inputs one type), then C and H·W as int32, then the output, as AOT plugins pass them.
    """
    import triton
    from triton.backends.compiler import GPUTarget

    if arch not in SUPPORTED_ARCHS:
        raise ValueError(f"sm_{arch} is not a supported target; use one of {SUPPORTED_ARCHS}")
    pointer = {"fp32": "*fp32", "fp16": "*fp16"}[dtype]
    signature = {
        "x_ptr": pointer,
        "scale_ptr": pointer,
        "bias_ptr": pointer,
        "residual_ptr": pointer if has_residual else "constexpr",
        "C": "i32",
        "HW": "i32",
        "y_ptr": pointer,
        "EPS": "constexpr",
        "NEGATIVE_SLOPE": "constexpr",
        "ACTIVATION": "constexpr",
        "HAS_RESIDUAL": "constexpr",
        "BLOCK": "constexpr",
    }
    constants = {
        "EPS": float(epsilon),
        "NEGATIVE_SLOPE": float(alpha),
        "ACTIVATION": ACTIVATION_CODES[activation],
        "HAS_RESIDUAL": has_residual,
        "BLOCK": PLANE_BLOCK,
    }
    if not has_residual:
        constants["residual_ptr"] = None
    if triton.knobs.runtime.interpret:
        return _compile_in_subprocess(dtype, activation, has_residual, epsilon, alpha, arch)
    source = triton.compiler.ASTSource(fn=instance_norm_plane_kernel, signature=signature, constexprs=constants)
    compiled = triton.compile(source, target=GPUTarget("cuda", arch, 32), options={"num_warps": PLANE_WARPS})
    meta = compiled.metadata
    if meta.global_scratch_size or meta.profile_scratch_size:
        raise RuntimeError(f"{meta.name} needs Triton scratch memory, which TensorRT AOT plugins cannot provide")
    user_params = sum(1 for kind in signature.values() if kind != "constexpr")
    ptx = _drop_trailing_params(compiled.asm["ptx"], meta.name, user_params)
    return PluginKernel(meta.name, ptx, meta.num_warps, meta.shared, arch)


def _drop_trailing_params(ptx: str, name: str, keep: int) -> str:
    """Remove the scratch-buffer pointers Triton appends to every kernel's parameter list.

    TensorRT launches an AOT kernel with exactly its inputs, int32 extras and outputs; a PTX
    entry that declares more parameters would read past the argument array. They are unused
    when the kernel needs no scratch memory (checked by the caller), so dropping them from
    the declaration is safe.
    """
    start = ptx.index(f".entry {name}(")
    end = ptx.index(")", start)
    declarations = ptx[start:end].split(",")
    header = ",".join(declarations[:keep])
    return ptx[:start] + header + "\n" + ptx[end:]


def _compile_in_subprocess(*args) -> PluginKernel:
    """Under TRITON_INTERPRET=1 (the CPU test setup) Triton's language objects are built for
    the interpreter and cannot compile; a fresh process without the switch can."""
    code = (
        "import json, sys, dataclasses; from i2i.export.plugins import compile_plugin_kernel; "
        "print(json.dumps(dataclasses.asdict(compile_plugin_kernel(*json.loads(sys.argv[1])))))"
    )
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    done = subprocess.run(
        [sys.executable, "-c", code, json.dumps(args)], env=env, capture_output=True, text=True, check=True
    )
    return PluginKernel(**json.loads(done.stdout.strip().splitlines()[-1]))


def import_tensorrt():
    try:
        import tensorrt
        import tensorrt.plugin
    except ImportError:
        raise MissingDependencyError(
            "TensorRT is not installed; pip install 'i2i[gpu]' on a machine with an NVIDIA GPU (TensorRT >= 10.8)"
        ) from None
    return tensorrt, tensorrt.plugin


_registered = False


def register_tensorrt_plugins(arch: int) -> None:
    """Define both fused plugins in TensorRT's plugin registry (once per process), with PTX
    compiled for sm_`arch`, the GPU the engine is built for."""
    global _registered
    if _registered:
        return
    trt, trtp = import_tensorrt()

    def dtype_name(desc) -> str:
        return "fp16" if desc.dtype == trt.float16 else "fp32"

    def launch(kernel: PluginKernel, x):
        dims = x.shape_expr
        params = trtp.KernelLaunchParams()
        params.grid_x = dims[0] * dims[1]
        params.block_x = kernel.num_warps * 32
        params.shared_mem = kernel.shared_bytes
        extra = trtp.SymIntExprs.from_tuple([trtp.SymInt32(dims[1]), trtp.SymInt32(dims[2] * dims[3])])
        return kernel.name.encode(), kernel.ptx.encode(), params, extra

    @trtp.register(f"{NAMESPACE}::{OP_ACTIVATION}")
    def act_desc(
        x: trtp.TensorDesc, scale: trtp.TensorDesc, bias: trtp.TensorDesc, epsilon: float, activation: str, alpha: float
    ) -> trtp.TensorDesc:
        return x.like()

    @trtp.autotune(f"{NAMESPACE}::{OP_ACTIVATION}")
    def act_formats(x, scale, bias, outputs):
        return [trtp.AutoTuneCombination("FP32|FP16, FP32|FP16, FP32|FP16, FP32|FP16", "LINEAR")]

    @trtp.aot_impl(f"{NAMESPACE}::{OP_ACTIVATION}")
    def act_aot(
        x: trtp.TensorDesc,
        scale: trtp.TensorDesc,
        bias: trtp.TensorDesc,
        epsilon: float,
        activation: str,
        alpha: float,
        outputs,
        tactic: int,
    ):
        return launch(compile_plugin_kernel(dtype_name(x), activation, False, epsilon, alpha, arch), x)

    @trtp.register(f"{NAMESPACE}::{OP_RESIDUAL}")
    def add_desc(
        x: trtp.TensorDesc,
        scale: trtp.TensorDesc,
        bias: trtp.TensorDesc,
        residual: trtp.TensorDesc,
        epsilon: float,
        activation: str,
        alpha: float,
    ) -> trtp.TensorDesc:
        return x.like()

    @trtp.autotune(f"{NAMESPACE}::{OP_RESIDUAL}")
    def add_formats(x, scale, bias, residual, outputs):
        return [trtp.AutoTuneCombination("FP32|FP16, FP32|FP16, FP32|FP16, FP32|FP16, FP32|FP16", "LINEAR")]

    @trtp.aot_impl(f"{NAMESPACE}::{OP_RESIDUAL}")
    def add_aot(
        x: trtp.TensorDesc,
        scale: trtp.TensorDesc,
        bias: trtp.TensorDesc,
        residual: trtp.TensorDesc,
        epsilon: float,
        activation: str,
        alpha: float,
        outputs,
        tactic: int,
    ):
        return launch(compile_plugin_kernel(dtype_name(x), activation, True, epsilon, alpha, arch), x)

    _registered = True
