"""Generator latency, side by side in one run: PyTorch eager (the baseline every user has)
against the other backends on this machine.

CPU: torch fp32, torch bf16 autocast, ONNX Runtime fp32, ONNX Runtime int8 (static
quantization calibrated on real photos; its output is compared with fp32 on held-out photos).
CUDA: torch fp32 / fp16 channels_last, torch.compile, triton (+ CUDA graphs), ONNX Runtime CUDA.

    python -m i2i.benchmarks.latency --netG resnet_9blocks --size 256 [--run RUN] [--photos DIR]

Prints a table with median / p90 latency and the speed-up over eager fp32 of the same run.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from i2i.config import GeneratorConfig, RunConfig
from i2i.io import list_images, read_image
from i2i.nets import build_generator, init_weights


def time_call(fn: Callable[[], object], repeats: int, warmup: int, sync: Callable[[], None] = lambda: None) -> list[float]:
    for _ in range(warmup):
        fn()
    sync()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        sync()
        samples.append((time.perf_counter() - started) * 1e3)
    return samples


def photo_batches(folder: Path | None, size: int, count: int) -> list[np.ndarray]:
    """Real photos center-cropped to size×size, as float NCHW in [-1, 1]; noise if no folder."""
    if folder is None or not Path(folder).is_dir():
        rng = np.random.default_rng(0)
        return [rng.uniform(-1, 1, (1, 3, size, size)).astype(np.float32) for _ in range(count)]
    batches = []
    for path in list_images(folder)[:count]:
        image = read_image(path)
        h, w = image.shape[:2]
        top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
        crop = image[top:top + size, left:left + size]
        batches.append((crop.transpose(2, 0, 1)[None].astype(np.float32) / 127.5 - 1.0))
    return batches


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB between two [-1, 1] images (peak-to-peak 2)."""
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(4.0 / mse)


def quantize_int8(onnx_path: Path, calibration: list[np.ndarray], out: Path) -> Path:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter(calibration)

        def get_next(self):
            item = next(self.items, None)
            return None if item is None else {"image": item}

    prepared = out.with_suffix(".pre.onnx")
    quant_pre_process(str(onnx_path), str(prepared), skip_symbolic_shape=True)
    # QDQ with per-channel int8 weights and uint8 activations: what the VNNI kernels run fastest.
    quantize_static(str(prepared), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--netG", default="resnet_9blocks")
    parser.add_argument("--ngf", type=int, default=64)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--run", type=Path, help="Use this run's AtoB generator instead of random weights.")
    parser.add_argument("--photos", type=Path, help="Real photos for int8 calibration and its quality check.")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--json", type=Path, help="Also write the results here.")
    args = parser.parse_args(argv)

    if args.run:
        from i2i.rundir import load_generator

        net, config = load_generator(args.run)
    else:
        config = RunConfig()
        config.G = GeneratorConfig(args.netG, ngf=args.ngf)
        torch.manual_seed(0)
        net = init_weights(build_generator(config.G, 3, 3)).eval()
    net.requires_grad_(False)
    photos = photo_batches(args.photos, args.size, 24)
    x_np = np.concatenate([photos[0]] * args.batch)
    x = torch.from_numpy(x_np)
    cuda = torch.cuda.is_available()
    rows: list[dict] = []

    def record(name: str, samples: list[float], note: str = "") -> None:
        rows.append({"backend": name, "median_ms": statistics.median(samples),
                     "p90_ms": float(np.percentile(samples, 90)), "note": note})

    with torch.inference_mode():
        record("torch eager fp32 (CPU)", time_call(lambda: net(x), args.repeats, args.warmup))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            record("torch eager bf16 autocast (CPU)", time_call(lambda: net(x), args.repeats, args.warmup))

    import onnxruntime as ort

    from i2i.export.onnx import build_onnx

    with tempfile.TemporaryDirectory() as tmp:
        fp32_path = Path(tmp) / "g.onnx"
        fp32_path.write_bytes(build_onnx(net, config, "AtoB").SerializeToString())
        session = ort.InferenceSession(str(fp32_path), providers=["CPUExecutionProvider"])
        record("onnxruntime fp32 (CPU)", time_call(lambda: session.run(None, {"image": x_np}), args.repeats, args.warmup))
        int8_path = quantize_int8(fp32_path, photos[:16], Path(tmp) / "g_int8.onnx")
        quantized = ort.InferenceSession(str(int8_path), providers=["CPUExecutionProvider"])
        held_out = photos[16:] or photos[:1]
        quality = [psnr(quantized.run(None, {"image": p})[0], session.run(None, {"image": p})[0]) for p in held_out]
        record("onnxruntime int8 static QDQ (CPU)",
               time_call(lambda: quantized.run(None, {"image": x_np}), args.repeats, args.warmup),
               f"PSNR vs fp32 {np.mean(quality):.1f} dB (min {np.min(quality):.1f}) on {len(held_out)} held-out images")

    if cuda:
        rows.extend(cuda_rows(net, x, args.repeats, args.warmup))

    baseline = rows[0]["median_ms"]
    for row in rows:
        row["speedup_vs_eager_fp32"] = baseline / row["median_ms"]
    result = {
        "generator": f"{config.G.netG} ngf {config.G.ngf}" + (f" from {args.run}" if args.run else " (random weights)"),
        "input": [args.batch, 3, args.size, args.size],
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
                   + (f", {torch.cuda.get_device_name()}" if cuda else ""),
        "versions": {"torch": torch.__version__, "onnxruntime": ort.__version__, "python": platform.python_version()},
        "rows": rows,
    }
    print(f"{result['generator']}, input {result['input']}, {result['machine']}")
    print(f"{'backend':<38}{'median ms':>11}{'p90 ms':>9}{'× eager':>9}  note")
    for row in rows:
        print(f"{row['backend']:<38}{row['median_ms']:>11.1f}{row['p90_ms']:>9.1f}{row['speedup_vs_eager_fp32']:>9.2f}  {row['note']}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


def cuda_rows(net: torch.nn.Module, x: torch.Tensor, repeats: int, warmup: int) -> list[dict]:
    """The GPU side: every variant timed with the same synchronisation."""
    from i2i.kernels.dispatch import fuse_generator
    from i2i.runtime.cuda_graphs import CudaGraphRunner

    sync = torch.cuda.synchronize
    rows = []
    gpu_net = net.cuda()
    xc = x.cuda()
    variants: list[tuple[str, Callable[[], object]]] = [("torch eager fp32 (CUDA)", lambda: gpu_net(xc))]
    half = net.cuda().half().to(memory_format=torch.channels_last)
    xh = xc.half().contiguous(memory_format=torch.channels_last)
    variants.append(("torch eager fp16 channels_last (CUDA)", lambda: half(xh)))
    compiled = torch.compile(half, mode="max-autotune")
    variants.append(("torch.compile max-autotune fp16 (CUDA)", lambda: compiled(xh)))
    graphed = CudaGraphRunner(fuse_generator(half))
    variants.append(("i2i triton fp16 + CUDA graph (CUDA)", lambda: graphed(xh)))
    with torch.inference_mode():
        for name, fn in variants:
            samples = time_call(fn, repeats, warmup, sync)
            rows.append({"backend": name, "median_ms": statistics.median(samples),
                         "p90_ms": float(np.percentile(samples, 90)), "note": ""})
    return rows


if __name__ == "__main__":
    main()
