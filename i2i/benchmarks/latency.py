"""Generator latency, side by side in one run: PyTorch eager (the baseline every user has)
against the other backends on this machine.

CPU: torch fp32, torch bf16 autocast, then every export format × precision installed here
(ONNX Runtime fp32 / int8 QDQ, OpenVINO fp32 / bf16 where the CPU has it / int8 NNCF), built by
the exporter's functions and run through i2i's runtime runners (uint8 in and out, as `i2i
generate` runs them). With --run, each reduced precision gets the export's quality figures:
FD change and PSNR against fp32 on the run's held-out test images.
CUDA: torch fp32 / fp16 channels_last, torch.compile, triton (+ CUDA graphs), ONNX Runtime CUDA.
`--model FILE` times an exported .onnx, .xml (OpenVINO) or .engine (TensorRT) through i2i's
runtime instead, against eager torch running the same architecture (from the file's config;
latency does not depend on the weights).

    python -m i2i.benchmarks.latency --netG resnet_9blocks --size 256 [--run RUN | --model FILE] [--photos DIR]

Prints a table with median / p90 latency, throughput, peak memory (process peak RSS on the
CPU, reset before each configuration; peak allocated CUDA memory on the GPU) and the speed-up
over eager fp32 of the same run.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import platform
import statistics
import time
from dataclasses import dataclass, field, fields
from importlib import metadata
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from i2i.config import GeneratorConfig, RunConfig
from i2i.errors import ConfigError
from i2i.image import array_to_model_input, to_image_arrays
from i2i.io import atomic_write_bytes, list_images, read_image
from i2i.nets import build_generator, init_weights
from i2i.rundir import generator_channels
from i2i.runners import OnnxRuntimeRunner, TorchRunner


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


def time_call(
    fn: Callable[[], object], repeats: int, warmup: int, sync: Callable[[], None] = lambda: None
) -> list[float]:
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
        crop = image[top : top + size, left : left + size]
        batches.append(array_to_model_input(crop).numpy())
    return batches


def parse_sizes(text: str) -> list[int]:
    """`i2i bench --sizes`: square sides, each written S or SxS (256,512 or 256x256,512x512)."""
    sizes = []
    for item in text.split(","):
        sides = item.strip().lower().split("x")
        if not all(side.isdigit() and int(side) > 0 for side in sides) or len(set(sides)) != 1 or len(sides) > 2:
            raise ConfigError(
                f"--sizes {text}: '{item}' is not a square size; write 256,512 or 256x256,512x512 "
                "(batch sizes go in --batches)"
            )
        sizes.append(int(sides[0]))
    return sizes


def deployment_inputs(args: LatencyOptions, config: RunConfig, net: torch.nn.Module):
    """(calibration images, quality gate or None): calibration from --photos or the run's
    training images; the gate (held-out test images, FD to real targets) for a --run only —
    random weights have no quality to keep."""
    from i2i.export.calibration import ImageSet, calibration_set, holdout_sets, read_set
    from i2i.export.formats import ExportRequest
    from i2i.export.quality import QualityGate

    if args.photos:
        calibration = read_set(args.photos, generator_channels(config, "AtoB")[0], 16, side=args.size)
    elif args.run:
        calibration = calibration_set(config, "AtoB")
    else:
        return ImageSet(Path(), [], []), None
    if not args.run or args.no_quality:
        return calibration, None
    eager = TorchRunner(net, torch.device("cpu"), torch.float32, False)
    return calibration, QualityGate(
        eager, *holdout_sets(config, "AtoB", calibration, None, ExportRequest.gate_images), ExportRequest.max_fd_change
    )


def deployment_variants(net: torch.nn.Module, config: RunConfig, calibration) -> list[tuple[str, str, Callable]]:
    """(row name, precision, runner) for every CPU format × precision installed here, built by
    the exporter's own functions; int8 rows need calibration images."""
    import onnxruntime as ort

    from i2i.export.formats import FORMATS, cpu_has_native_bf16
    from i2i.export.onnx import build_onnx
    from i2i.export.quantize import quantize_onnx

    graph = build_onnx(net, config, "AtoB")
    int8 = bool(calibration.images)

    def onnxruntime(model) -> Callable:
        session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        return OnnxRuntimeRunner(session, "float", "fp32", torch.device("cpu"))

    variants = [("onnxruntime fp32 (CPU)", "fp32", onnxruntime(graph))]
    if int8:
        variants.append(
            ("onnxruntime int8 static QDQ (CPU)", "int8", onnxruntime(quantize_onnx(graph, calibration.batches())))
        )
    if FORMATS["openvino"].installed:
        from i2i.export.openvino import compile_for_cpu, from_onnx
        from i2i.export.quantize import quantize_openvino

        ir = from_onnx(graph)
        variants.append(("openvino fp32 (CPU)", "fp32", compile_for_cpu(ir, "fp32")))
        if cpu_has_native_bf16():
            variants.append(("openvino bf16 (CPU)", "bf16", compile_for_cpu(ir, "bf16")))
        if int8:
            variants.append(
                (
                    "openvino int8 NNCF (CPU)",
                    "int8",
                    compile_for_cpu(quantize_openvino(ir, calibration.batches()), "int8"),
                )
            )
    return variants


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
    no_quality: bool = field(
        default=False,
        metadata={"help": "With --run: skip the quality figures (they do not depend on --size or --batch)."},
    )


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for option in fields(LatencyOptions):
        flag, help_text = f"--{option.name.replace('_', '-')}", option.metadata.get("help")
        if isinstance(option.default, bool):
            parser.add_argument(flag, action="store_true", help=help_text)
            continue
        kind = Path if "Path" in str(option.type) else type(option.default)
        parser.add_argument(flag, type=kind, default=option.default, help=help_text)
    return measure(LatencyOptions(**vars(parser.parse_args(argv))))


# The packages a row can run on; the optional ones are recorded where installed.
VERSIONED_PACKAGES = ("torch", "onnxruntime", "openvino", "nncf", "triton", "tensorrt")


def sweep(
    options: list[LatencyOptions], out: Path, estimate_device: str | None = None, efficiency: float | None = None
) -> list[dict]:
    """`i2i bench`: measure each of `options` (quality only with the first: the gate's held-out
    images have their own size), print the roofline floor on `estimate_device` beside each, write
    OUT/bench.json and OUT/bench.png."""
    from i2i.evaluation.visualize import plot_latency

    from .roofline import print_floors

    results = []
    for index, option in enumerate(options):
        results.append(measure(dataclasses.replace(option, no_quality=index > 0)))
        if estimate_device:  # the architecture of --run/--model, not the --netG default
            measured = results[-1]
            print_floors(
                measured["netG"], measured["ngf"], option.size, option.batch, device_name=estimate_device,
                efficiency=efficiency,
            )  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / "bench.json", (json.dumps(results, indent=2) + "\n").encode())
    plot_latency(results, out / "bench.png")
    return results


def backend_versions() -> dict[str, str]:
    """Python's version and those of the installed VERSIONED_PACKAGES, for the record beside the rows."""
    versions = {"python": platform.python_version()}
    for package in VERSIONED_PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[package] = metadata.version(package)
    return versions


def measure(args: LatencyOptions) -> dict:
    """Time the generator on every backend available here, side by side; printed and returned."""
    exported = None
    if args.model:
        from i2i.export.formats import FILE_BACKENDS
        from i2i.runtime import load

        backend = FILE_BACKENDS.get(args.model.suffix, ("onnxruntime",))[0]  # its own runtime, not auto's pick
        exported = load(
            args.model, backend=backend, device="cuda" if backend == "tensorrt" else "cpu", batch_size=args.batch
        )
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
    if generator_channels(config, exported.direction if exported else "AtoB")[0] == 1:
        photos = [p.mean(1, keepdims=True) for p in photos]
    x_np = np.concatenate([photos[0]] * args.batch)
    x = torch.from_numpy(x_np)
    cuda = torch.cuda.is_available()
    rows: list[dict] = []

    def record(name: str, fn: Callable[[], object], note: str = "") -> None:
        reset_peak_rss()
        samples = time_call(fn, args.repeats, args.warmup)
        rows.append(
            {
                "backend": name,
                "median_ms": statistics.median(samples),
                "p90_ms": float(np.percentile(samples, 90)),
                "images_per_s": args.batch * 1e3 / statistics.median(samples),
                "peak_mb": peak_rss_mb(),
                "note": note,
            }
        )

    images = np.ascontiguousarray(to_image_arrays(x))
    eager = TorchRunner(net, torch.device("cpu"), torch.float32, False)
    record("torch eager fp32 (CPU)", lambda: eager(images))
    if torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported():
        # Without native bf16 the CPU emulates it: 3× slower on AVX-512 already, far worse on AVX2.
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            record("torch eager bf16 autocast (CPU)", lambda: net(x))

    if exported is not None:
        if exported.backend == "tensorrt":
            rows.extend(
                cuda_rows(
                    net,
                    x,
                    args.repeats,
                    args.warmup,
                    [(f"i2i tensorrt {args.model.name}", lambda: exported.run(images))],
                )
            )
        else:
            record(f"i2i {exported.backend} {args.model.name} (CPU, uint8 in/out)", lambda: exported.run(images))
        return report(rows, config, args, list(x.shape))

    calibration, gate = deployment_inputs(args, config, net)
    for name, precision, runner in deployment_variants(net, config, calibration):
        quality = gate.measure(runner, precision) if gate is not None and precision != "fp32" else None
        note = (
            f"FD change {100 * quality.fd_change:.2f} %, PSNR vs fp32 {quality.psnr_mean_db:.1f} dB "
            f"(min {quality.psnr_min_db:.1f}) on {quality.images} held-out images"
            if quality
            else ""
        )
        record(name, lambda: runner(images), note)
        if quality:
            rows[-1]["quality"] = quality.to_dict()

    if cuda:
        rows.extend(cuda_rows(net, x, args.repeats, args.warmup))
    return report(rows, config, args, list(x.shape))


def report(rows: list[dict], config: RunConfig, args: LatencyOptions, shape: list[int]) -> dict:
    """Speed-ups over the first row (eager fp32), printed as a table and returned (and written) as JSON."""
    cuda = torch.cuda.is_available()
    baseline = rows[0]["median_ms"]
    for row in rows:
        row["speedup_vs_eager_fp32"] = baseline / row["median_ms"]
    source = (
        f" from {args.run}"
        if args.run
        else f" ({args.model.name} vs eager with random weights)"
        if args.model
        else " (random weights)"
    )
    result = {
        "generator": f"{config.G.netG} ngf {config.G.ngf}" + source,
        "netG": config.G.netG,
        "ngf": config.G.ngf,
        "input": shape,
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
        + (f", {torch.cuda.get_device_name()}" if cuda else ""),
        "versions": backend_versions(),
        "rows": rows,
    }
    print(f"{result['generator']}, input {result['input']}, {result['machine']}")
    print(f"{'backend':<46}{'median ms':>11}{'p90 ms':>9}{'img/s':>8}{'peak MB':>9}{'× eager':>9}  note")
    for row in rows:
        peak = f"{row['peak_mb']:.0f}" if row["peak_mb"] is not None else "n/a"
        print(
            f"{row['backend']:<46}{row['median_ms']:>11.1f}{row['p90_ms']:>9.1f}{row['images_per_s']:>8.1f}{peak:>9}"
            f"{row['speedup_vs_eager_fp32']:>9.2f}  {row['note']}"
        )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


def precision_variants(net: torch.nn.Module, device: torch.device) -> dict[str, torch.nn.Module]:
    """Separate copies of `net` on `device`: fp32 (NCHW) and fp16 channels_last. Copies, because
    `.half()` converts a module in place: one module cannot be both."""
    import copy

    return {
        "fp32": copy.deepcopy(net).to(device, torch.float32),
        "fp16_channels_last": copy.deepcopy(net).to(device, torch.float16).to(memory_format=torch.channels_last),
    }


def cuda_rows(
    net: torch.nn.Module, x: torch.Tensor, repeats: int, warmup: int, extra: list[tuple[str, Callable[[], object]]] = ()
) -> list[dict]:
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
            rows.append(
                {
                    "backend": name,
                    "median_ms": statistics.median(samples),
                    "p90_ms": float(np.percentile(samples, 90)),
                    "images_per_s": x.shape[0] * 1e3 / statistics.median(samples),
                    "peak_mb": torch.cuda.max_memory_allocated() / 2**20,
                    "note": "",
                }
            )
    return rows


if __name__ == "__main__":
    main()
