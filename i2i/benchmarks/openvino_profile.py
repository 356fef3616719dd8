"""Where an OpenVINO model spends its time: the CPU plugin's per-layer performance counters.

    python -m i2i.benchmarks.openvino_profile RUN/generator_AtoB.xml --size 256 [--repeats 5]

Prints the time per layer type and kernel (e.g. Convolution via jit_avx2 / brgconv, int8 or
fp32), summed over the layers and averaged over the repeats, and the slowest layers.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np

from i2i.export.openvino import compile_for_cpu, read_ir


def profile(path: Path, size: int, repeats: int, top: int = 8) -> dict:
    model, metadata = read_ir(path)
    runner = compile_for_cpu(model, metadata.get("precision", "fp32"), profile=True)
    batch = np.random.default_rng(0).integers(0, 256, (1, size, size, 3), dtype=np.uint8)
    runner(batch)  # warm-up
    by_kind: dict[tuple[str, str], float] = defaultdict(float)
    by_layer: dict[tuple[str, str, str], float] = defaultdict(float)
    for _ in range(repeats):
        runner(batch)
        for info in runner.request.get_profiling_info():
            ms = info.real_time.total_seconds() * 1e3 / repeats
            by_kind[(info.node_type, info.exec_type)] += ms
            by_layer[(info.node_name, info.node_type, info.exec_type)] += ms
    total = sum(by_kind.values())
    print(f"{path.name} ({metadata.get('precision', 'fp32')}), 1×{size}×{size}: {total:.1f} ms in layers")
    print(f"{'layer type':<28}{'kernel':<34}{'ms':>9}{'share':>8}")
    for (kind, kernel), ms in sorted(by_kind.items(), key=lambda kv: -kv[1]):
        if ms >= 0.05:
            print(f"{kind:<28}{kernel:<34}{ms:>9.2f}{100 * ms / total:>7.1f}%")
    print(f"slowest {top} layers:")
    for (name, kind, kernel), ms in sorted(by_layer.items(), key=lambda kv: -kv[1])[:top]:
        print(f"  {name[:50]:<52}{kind[:24]:<26}{kernel:<26}{ms:>8.2f} ms")
    return {"total_ms": total, "by_kind": {f"{k} / {e}": v for (k, e), v in by_kind.items()}}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    return profile(args.model, args.size, args.repeats)


if __name__ == "__main__":
    main()
