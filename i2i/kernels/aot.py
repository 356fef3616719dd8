"""Compile every kernel configuration a launch can take, ahead of time and without a GPU, and
report its registers, local-memory spills and shared memory per target architecture.

    python -m i2i.kernels.aot --out DIR [--archs 80,87,90] [--jobs 2]

A configuration is a kernel with its tile (block sizes, warps, pipeline stages) and storage
dtype; constexpr switches that only add epilogue work (bias, activation, residual, moments)
are compiled at their heaviest setting, and integer arguments unspecialized. Registers and
spills are read from the compiled cubin itself (cuobjdump's resource usage, and local-memory
loads/stores in its SASS), so the numbers are the code the driver would load. A spill, or
shared memory or registers beyond what one block of the architecture may use, is a failure
(exit status 1). Writes DIR/kernels_aot.json and DIR/kernels_aot.md.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

ARCHS = (80, 87, 90)
# Largest shared memory one block may opt into, and the register file of one SM (CUDA
# programming guide, compute capabilities table).
SHARED_LIMIT = {80: 163 * 1024, 86: 99 * 1024, 87: 163 * 1024, 89: 99 * 1024, 90: 227 * 1024}
REGISTER_FILE = 65536
TRITON_TYPES = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}
FLOAT_SCALARS = {"negative_slope", "eps"}


@dataclass(frozen=True)
class KernelConfig:
    kernel: str  # attribute of module `module`
    module: str
    dtype: str  # storage dtype of the tensor pointers (fp32 for the moment buffers always)
    constexprs: dict = field(hash=False)
    num_warps: int = 4
    num_stages: int = 3

    @property
    def label(self) -> str:
        tile = ",".join(f"{k}={v}" for k, v in self.constexprs.items() if k.startswith(("BLOCK", "MERGE")))
        return f"{tile} w{self.num_warps} s{self.num_stages}"


def launch_configs() -> list[KernelConfig]:
    """Every (kernel, tile, dtype) the launchers in kernels/ can use."""
    from .conv import launch_tiles
    from .epilogue import ACTIVATION_CODES
    from .instance_norm import MAX_SPLITS, MERGE_BLOCK, NORM_TILES, PLANE_BLOCK, PLANE_WARPS

    configs = []
    for dtype, name in TRITON_TYPES.items():
        for tile in launch_tiles(dtype):
            layer = {
                "KH": 3,
                "KW": 3,
                "STRIDE": 1,
                "PAD": 1,
                "REFLECT": True,
                "TRANSPOSED": False,
                "HAS_BIAS": True,
                "ACTIVATION": ACTIVATION_CODES["leaky_relu"],
                "WRITE_MOMENTS": True,
                "IEEE": dtype == torch.float32,
                "DOT_IN_FP32": False,
                "BLOCK_M": tile.block_m,
                "BLOCK_N": tile.block_n,
                "BLOCK_K": tile.block_k,
            }
            configs.append(KernelConfig("conv2d_kernel", "conv", name, layer, tile.num_warps, tile.num_stages))
        for tile in NORM_TILES:
            blocks = {"BLOCK_HW": tile.block_hw, "BLOCK_C": tile.block_c}
            configs.append(KernelConfig("instance_norm_stats_kernel", "instance_norm", name, blocks, tile.num_warps))
            epilogue = {
                "ACTIVATION": ACTIVATION_CODES["leaky_relu"],
                "HAS_AFFINE": True,
                "HAS_RESIDUAL": True,
                "SHIFTED": True,
                "MERGE": MERGE_BLOCK,
            }
            configs.append(
                KernelConfig(
                    "instance_norm_apply_kernel", "instance_norm", name, {**epilogue, **blocks}, tile.num_warps
                )
            )
        if dtype != torch.bfloat16:  # the TensorRT plugin's kernel (fp32 and fp16 engines)
            plane = {
                "EPS": 1e-5,
                "NEGATIVE_SLOPE": 0.2,
                "ACTIVATION": ACTIVATION_CODES["leaky_relu"],
                "HAS_RESIDUAL": True,
                "BLOCK": PLANE_BLOCK,
            }
            configs.append(KernelConfig("instance_norm_plane_kernel", "instance_norm", name, plane, PLANE_WARPS))
    configs.append(KernelConfig("merge_partials_kernel", "instance_norm", "fp32", {"BLOCK_S": MAX_SPLITS}))
    return configs


def signature(fn, dtype: str, constexprs: dict) -> dict[str, str]:
    """Triton's type string for each argument: tensors of `dtype` (moment buffers fp32), i32 integers."""
    types = {}
    for name in inspect.signature(fn.fn).parameters:
        if name in constexprs:
            types[name] = "constexpr"
        elif name.endswith("_ptr"):
            types[name] = "*fp32" if name in ("partial_ptr", "merged_ptr") else f"*{dtype}"
        else:
            types[name] = "fp32" if name in FLOAT_SCALARS else "i32"
    return types


def _tool(name: str) -> str:
    from triton import knobs

    return getattr(knobs.nvidia, name).path


def compile_and_measure(config: KernelConfig, arch: int) -> dict:
    """Compile one configuration for sm_`arch` and read its resources from the cubin."""
    import importlib

    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    fn = getattr(importlib.import_module(f"i2i.kernels.{config.module}"), config.kernel)
    source = ASTSource(fn=fn, signature=signature(fn, config.dtype, config.constexprs), constexprs=config.constexprs)
    row = {**asdict(config), "config": config.label, "arch": arch}
    del row["constexprs"], row["module"]
    try:
        compiled = triton.compile(
            source,
            target=GPUTarget("cuda", arch, 32),
            options={"num_warps": config.num_warps, "num_stages": config.num_stages},
        )
    except Exception as error:  # a compile failure is a finding of the report, not a crash of it
        return {**row, "problems": [f"compile failed: {type(error).__name__}: {str(error).splitlines()[0][:300]}"]}
    with tempfile.NamedTemporaryFile(suffix=".cubin") as cubin:
        cubin.write(compiled.asm["cubin"])
        cubin.flush()
        usage = subprocess.run(
            [_tool("cuobjdump"), "--dump-resource-usage", cubin.name], capture_output=True, text=True, check=True
        ).stdout
        sass = subprocess.run(
            [_tool("cuobjdump"), "--dump-sass", cubin.name], capture_output=True, text=True, check=True
        ).stdout
    resources = dict(re.findall(r"(REG|STACK|SHARED|LOCAL):(\d+)", usage))
    registers = int(resources["REG"])
    shared = compiled.metadata.shared + int(resources["SHARED"])
    threads = 32 * config.num_warps
    row.update(
        registers=registers,
        stack_bytes=int(resources["STACK"]),
        shared_bytes=shared,
        spill_stores=len(re.findall(r"\bSTL(\.\w+)*\s", sass)),
        spill_loads=len(re.findall(r"\bLDL(\.\w+)*\s", sass)),
        threads=threads,
        shared_limit=SHARED_LIMIT[arch],
    )
    problems = []
    if row["spill_stores"] or row["spill_loads"]:
        problems.append(f"local memory: {row['spill_stores']} stores, {row['spill_loads']} loads (spills)")
    if shared > SHARED_LIMIT[arch]:
        problems.append(f"shared memory {shared} B > sm_{arch} limit {SHARED_LIMIT[arch]} B")
    if registers * threads > REGISTER_FILE:
        problems.append(f"{registers} registers × {threads} threads > {REGISTER_FILE}")
    row["problems"] = problems
    return row


def _measure(args: tuple[KernelConfig, int]) -> dict:
    return compile_and_measure(*args)


def report(archs: tuple[int, ...] = ARCHS, jobs: int = 2) -> list[dict]:
    """One row per configuration and architecture, in launch_configs() order."""
    if os.environ.get("TRITON_INTERPRET") == "1":
        raise RuntimeError("unset TRITON_INTERPRET: the interpreter cannot compile for a GPU")
    work = [(config, arch) for arch in archs for config in launch_configs()]
    with ProcessPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(_measure, work))


def markdown(rows: list[dict]) -> str:
    import triton

    lines = [
        f"Triton {triton.__version__} ahead-of-time compile, no GPU: {len(rows)} kernel configurations.",
        "",
        "| arch | kernel | dtype | config | registers | stack B | spill st/ld | shared B | problems |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        measured = "registers" in r
        lines.append(
            f"| sm_{r['arch']} | {r['kernel']} | {r['dtype']} | {r['config']} | "
            + (
                f"{r['registers']} | {r['stack_bytes']} | {r['spill_stores']}/{r['spill_loads']} | "
                f"{r['shared_bytes']} | "
                if measured
                else "– | – | – | – | "
            )
            + ("; ".join(r["problems"]) or "ok")
            + " |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--archs", default=",".join(map(str, ARCHS)), help="Comma-separated compute capabilities.")
    parser.add_argument("--jobs", type=int, default=2, help="Compiler processes.")
    args = parser.parse_args(argv)
    from i2i.io import atomic_write_bytes

    rows = report(tuple(int(a) for a in args.archs.split(",")), args.jobs)
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(args.out / "kernels_aot.json", (json.dumps(rows, indent=1) + "\n").encode())
    atomic_write_bytes(args.out / "kernels_aot.md", markdown(rows).encode())
    failed = [r for r in rows if r["problems"]]
    for r in failed:
        print(f"sm_{r['arch']} {r['kernel']} {r['dtype']} {r['config']}: {'; '.join(r['problems'])}", file=sys.stderr)
    print(f"{len(rows)} configurations compiled, {len(failed)} with problems; {args.out}/kernels_aot.md")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
