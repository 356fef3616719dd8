"""Generator latency, side by side in one run: PyTorch eager (the baseline every user has)
against the other backends on this machine.

CPU: torch fp32, torch bf16 autocast, ONNX Runtime fp32, ONNX Runtime int8 (static
quantization calibrated on real photos; its output is compared with fp32 on held-out photos).
CUDA: torch fp32 / fp16 channels_last, torch.compile, triton (+ CUDA graphs), ONNX Runtime CUDA.
`--model FILE` times an exported .onnx (ONNX Runtime) or .engine (TensorRT) through i2i's
runtime instead, against eager torch running the same architecture (from the file's config;
latency does not depend on the weights).

    python -m i2i.benchmarks.latency --netG resnet_9blocks --size 256 [--run RUN | --model FILE] [--photos DIR]

Prints a table with median / p90 latency, throughput, peak memory (process peak RSS on the
CPU, reset before each configuration; peak allocated CUDA memory on the GPU) and the speed-up
over eager fp32 of the same run.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import statistics
import tempfile
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from i2i.config import GeneratorConfig, RunConfig
from i2i.errors import ConfigError
from i2i.image import array_to_model_input, to_image_arrays
from i2i.io import list_images, read_image
from i2i.nets import build_generator, init_weights
from i2i.rundir import generator_channels


def reset_peak_rss() -> None:
    """Restart the kernel's peak-RSS counter of this process (Linux ≥ 4.0; elsewhere a no-op)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_rss_mb() -> float | None:
    """Peak resident memory of this process since the last reset, in MB (None off Linux)."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return None
    return next((int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("VmHWM:")), None)


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
        batches.append(array_to_model_input(crop).numpy())
    return batches


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB between two [-1, 1] images (peak-to-peak 2)."""
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(4.0 / mse)


def parse_sizes(text: str) -> list[int]:
    """`i2i bench --sizes`: square sides, each written S or SxS (256,512 or 256x256,512x512)."""
    sizes = []
    for item in text.split(","):
        sides = item.strip().lower().split("x")
        if not all(side.isdigit() and int(side) > 0 for side in sides) or len(set(sides)) != 1 or len(sides) > 2:
            raise ConfigError(f"--sizes {text}: '{item}' is not a square size; write 256,512 or 256x256,512x512 "
                              "(batch sizes go in --batches)")
        sizes.append(int(sides[0]))
    return sizes


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
    # The quantizer logs a root-logger WARNING per tensor it cannot fold ("Axis 1 is out-of-range");
    # they are about its internals, not the user's model.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        quant_pre_process(str(onnx_path), str(prepared), skip_symbolic_shape=True)
        # QDQ with per-channel int8 weights and uint8 activations: what the VNNI kernels run fastest.
        quantize_static(str(prepared), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    finally:
        root.setLevel(level)
    return out


@dataclass
class LatencyOptions:
    """What `measure` times; the command-line flags of `python -m i2i.benchmarks.latency` are these names."""

    netG: str = "resnet_9blocks"
    ngf: int = 64
    size: int = 256
    batch: int = 1
    run: Path | None = field(default=None, metadata={"help": "This run's AtoB generator instead of random weights."})
    model: Path | None = field(default=None, metadata={"help": "Time this exported .onnx or .engine against eager."})
    photos: Path | None = field(default=None, metadata={"help": "Real photos for int8 calibration and its check."})
    repeats: int = 20
    warmup: int = 3
    json: Path | None = field(default=None, metadata={"help": "Also write the results here."})


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for option in fields(LatencyOptions):
        kind = Path if "Path" in str(option.type) else type(option.default)
        parser.add_argument(f"--{option.name}", type=kind, default=option.default, help=option.metadata.get("help"))
    return measure(LatencyOptions(**vars(parser.parse_args(argv))))


def measure(args: LatencyOptions) -> dict:
    """Time the generator on every backend available here, side by side; printed and returned."""
    exported = None
    if args.model:
        from i2i.runtime import load

        exported = load(args.model, device="cuda" if args.model.suffix == ".engine" else "cpu", batch_size=args.batch)
        config = exported.config
        torch.manual_seed(0)
        net = init_weights(build_generator(config.G, *generator_channels(config, exported.direction))).eval()
    elif args.run:
        from i2i.rundir import load_generator

        net, config = load_generator(args.run)
    else:
        config = RunConfig()
        config.G = GeneratorConfig(args.netG, ngf=args.ngf)
        torch.manual_seed(0)
        net = init_weights(build_generator(config.G, 3, 3)).eval()
    net.requires_grad_(False)
    photos = photo_batches(args.photos, args.size, 24)
    real_photos = args.photos is not None and args.photos.is_dir()
    if generator_channels(config, exported.direction if exported else "AtoB")[0] == 1:
        photos = [p.mean(1, keepdims=True) for p in photos]
    x_np = np.concatenate([photos[0]] * args.batch)
    x = torch.from_numpy(x_np)
    cuda = torch.cuda.is_available()
    rows: list[dict] = []

    def record(name: str, fn: Callable[[], object], note: str = "") -> None:
        reset_peak_rss()
        samples = time_call(fn, args.repeats, args.warmup)
        rows.append({"backend": name, "median_ms": statistics.median(samples), "p90_ms": float(np.percentile(samples, 90)),
                     "images_per_s": args.batch * 1e3 / statistics.median(samples), "peak_mb": peak_rss_mb(), "note": note})

    with torch.inference_mode():
        record("torch eager fp32 (CPU)", lambda: net(x))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            record("torch eager bf16 autocast (CPU)", lambda: net(x))

    import onnxruntime as ort

    if exported is not None:
        images = np.ascontiguousarray(to_image_arrays(torch.from_numpy(x_np)))
        if exported.backend == "tensorrt":
            rows.extend(cuda_rows(net, x, args.repeats, args.warmup, [(f"i2i tensorrt {args.model.name}", lambda: exported.run(images))]))
        else:
            record(f"i2i onnxruntime {args.model.name} (CPU, uint8 in/out)", lambda: exported.run(images))
        return report(rows, config, args, list(x.shape))

    from i2i.export.onnx import build_onnx

    with tempfile.TemporaryDirectory() as tmp:
        fp32_path = Path(tmp) / "g.onnx"
        fp32_path.write_bytes(build_onnx(net, config, "AtoB").SerializeToString())
        session = ort.InferenceSession(str(fp32_path), providers=["CPUExecutionProvider"])
        record("onnxruntime fp32 (CPU)", lambda: session.run(None, {"image": x_np}))
        int8_path = quantize_int8(fp32_path, photos[:16], Path(tmp) / "g_int8.onnx")
        quantized = ort.InferenceSession(str(int8_path), providers=["CPUExecutionProvider"])
        held_out = photos[16:] or photos[:1]
        quality = [psnr(quantized.run(None, {"image": p})[0], session.run(None, {"image": p})[0]) for p in held_out]
        record("onnxruntime int8 static QDQ (CPU)", lambda: quantized.run(None, {"image": x_np}),
               f"PSNR vs fp32 {np.mean(quality):.1f} dB (min {np.min(quality):.1f}) on {len(held_out)} "
               + (f"held-out photos of {args.photos}" if real_photos else "noise images (give --photos for real ones)"))

    if cuda:
        rows.extend(cuda_rows(net, x, args.repeats, args.warmup))
    return report(rows, config, args, list(x.shape))


def report(rows: list[dict], config: RunConfig, args: LatencyOptions, shape: list[int]) -> dict:
    """Speed-ups over the first row (eager fp32), printed as a table and returned (and written) as JSON."""
    import onnxruntime as ort

    cuda = torch.cuda.is_available()
    baseline = rows[0]["median_ms"]
    for row in rows:
        row["speedup_vs_eager_fp32"] = baseline / row["median_ms"]
    source = f" from {args.run}" if args.run else f" ({args.model.name} vs eager with random weights)" if args.model else " (random weights)"
    result = {
        "generator": f"{config.G.netG} ngf {config.G.ngf}" + source,
        "netG": config.G.netG,
        "ngf": config.G.ngf,
        "input": shape,
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
                   + (f", {torch.cuda.get_device_name()}" if cuda else ""),
        "versions": {"torch": torch.__version__, "onnxruntime": ort.__version__, "python": platform.python_version()},
        "rows": rows,
    }
    print(f"{result['generator']}, input {result['input']}, {result['machine']}")
    print(f"{'backend':<46}{'median ms':>11}{'p90 ms':>9}{'img/s':>8}{'peak MB':>9}{'× eager':>9}  note")
    for row in rows:
        peak = f"{row['peak_mb']:.0f}" if row["peak_mb"] is not None else "n/a"
        print(f"{row['backend']:<46}{row['median_ms']:>11.1f}{row['p90_ms']:>9.1f}{row['images_per_s']:>8.1f}{peak:>9}"
              f"{row['speedup_vs_eager_fp32']:>9.2f}  {row['note']}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


def precision_variants(net: torch.nn.Module, device: torch.device) -> dict[str, torch.nn.Module]:
    """Separate copies of `net` on `device`: fp32 (NCHW) and fp16 channels_last. Copies, because
    `.half()` converts a module in place: one module cannot be both."""
    import copy

    return {"fp32": copy.deepcopy(net).to(device, torch.float32),
            "fp16_channels_last": copy.deepcopy(net).to(device, torch.float16).to(memory_format=torch.channels_last)}


def cuda_rows(net: torch.nn.Module, x: torch.Tensor, repeats: int, warmup: int,
              extra: list[tuple[str, Callable[[], object]]] = ()) -> list[dict]:
    """The GPU side: every variant (and `extra` ones) timed with the same synchronisation;
    peak memory is torch's peak allocation (ONNX Runtime and TensorRT allocate outside it)."""
    from i2i.kernels.dispatch import fuse_generator
    from i2i.runtime.cuda_graphs import CudaGraphRunner

    sync = torch.cuda.synchronize
    rows = []
    nets = precision_variants(net, torch.device("cuda"))
    fp32, half = nets["fp32"], nets["fp16_channels_last"]
    xc = x.cuda()
    xh = xc.half().contiguous(memory_format=torch.channels_last)
    variants: list[tuple[str, Callable[[], object]]] = [("torch eager fp32 (CUDA)", lambda: fp32(xc))]
    variants.append(("torch eager fp16 channels_last (CUDA)", lambda: half(xh)))
    compiled = torch.compile(half, mode="max-autotune")
    variants.append(("torch.compile max-autotune fp16 (CUDA)", lambda: compiled(xh)))
    graphed = CudaGraphRunner(fuse_generator(half))
    variants.append(("i2i triton fp16 + CUDA graph (CUDA)", lambda: graphed(xh)))
    variants.extend(extra)
    with torch.inference_mode():
        for name, fn in variants:
            torch.cuda.reset_peak_memory_stats()
            samples = time_call(fn, repeats, warmup, sync)
            rows.append({"backend": name, "median_ms": statistics.median(samples), "p90_ms": float(np.percentile(samples, 90)),
                         "images_per_s": x.shape[0] * 1e3 / statistics.median(samples),
                         "peak_mb": torch.cuda.max_memory_allocated() / 2**20, "note": ""})
    return rows


if __name__ == "__main__":
    main()
