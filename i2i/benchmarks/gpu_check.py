"""GPU acceptance in one command, for a bare GPU machine: kernels, whole generators, latency
table, instance-norm bandwidth and end-to-end throughput, written to JSON and markdown.

    python -m i2i.benchmarks.gpu_check --out DIR [--device cuda|cpu] [--quick] [--data ../shared/data]

Each step runs in its own process under a time budget (a CUDA error or a hang in one step
cannot take the others down) and fails soft: its traceback is recorded and the next step
runs. Every step writes its results as it goes, so a step stopped at its budget keeps what it
measured. `--device cpu --quick` is the dry run the test suite makes (Triton interpreter, tiny
shapes). Imports only torch, Triton, NumPy, OpenCV, Pillow, safetensors and tqdm (all on the
bare machine); ONNX Runtime rows run where its CUDA/TensorRT providers exist.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Callable

import numpy as np
import torch

SCHEMA = 1
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
# Max |kernel − float64 torch| / max(1, max |reference|) each storage dtype is held to.
TOLERANCE = {"fp32": 1e-4, "fp16": 4e-3, "bf16": 3e-2}
# Step → (seconds on an H200, seconds for the CPU dry run on a shared 2-core machine). The GPU
# budgets add up to 8.4 min; a step's process start (torch import, CUDA init) counts in its budget.
STEPS = {
    "kernels": (60, 300),
    "tune": (70, 60),
    "generators": (50, 600),
    "latency_256_b1": (90, 600),
    "latency_256_b8": (50, 60),
    "latency_1080p": (80, 60),
    "bandwidth": (50, 120),
    "end_to_end": (55, 300),
}
# The latency table's generator (a CycleGAN/CUT ResNet-9) and the distilled student beside it
# (`i2i distill`'s default: the same architecture at a quarter of the width, ~15x fewer MACs).
TEACHER, STUDENT = ("resnet_9blocks", 64), ("resnet_9blocks", 16)
# Inductor's default mode: max-autotune searches GEMM/conv templates for minutes per shape, more
# than a step's budget (the row is the stock compiler a user gets with one line).
COMPILE_ROW = "torch.compile fp16"
# Instance-norm tiles the bandwidth step also measures, as NormTile's (channels, pixels, warps),
# the default first.
NORM_SWEEP = [(64, 64, 8), (64, 64, 4), (64, 32, 4), (64, 32, 2), (64, 128, 8), (128, 32, 8), (128, 64, 8)]
LATENCY_SHAPES = {"latency_256_b1": (1, 256, 256), "latency_256_b8": (8, 256, 256), "latency_1080p": (1, 1080, 1920)}
DEFAULT_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


class StepLog:
    """A step's results, rewritten to its JSON file after every case (a kill keeps them)."""

    def __init__(self, path: Path):
        self.path, self.results = path, {}

    def add(self, section: str, case: dict) -> None:
        self.results.setdefault(section, []).append(case)
        self.save()

    def set(self, key: str, value) -> None:
        self.results[key] = value
        self.save()

    def save(self) -> None:
        from i2i.io import atomic_write_bytes

        atomic_write_bytes(self.path, json.dumps(self.results, indent=1, default=str).encode())

    def case(self, section: str, name: str, fn: Callable[[], dict]) -> None:
        """Run one case; an exception becomes the case's recorded traceback, not the step's end."""
        started = time.perf_counter()
        try:
            result = {"case": name, "ok": True, **fn()}
        except Exception:
            result = {"case": name, "ok": False, "error": traceback.format_exc(limit=8)}
        result["seconds"] = round(time.perf_counter() - started, 3)
        self.add(section, result)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def relative_error(actual: torch.Tensor, reference: torch.Tensor) -> dict:
    difference = (actual.double() - reference).abs()
    scale = max(1.0, reference.abs().max().item())
    return {
        "max_abs_error": difference.max().item(),
        "max_rel_error": difference.max().item() / scale,
        "finite": bool(torch.isfinite(actual).all()),
    }


# ----------------------------------------------------------------------------- a. kernels
def kernel_cases(quick: bool) -> tuple[list, list]:
    """Instance-norm shapes (N, C, H, W) and conv layers (N, C_in, H, W, C_out, k, stride, pad, mode, transposed)."""
    if quick:
        return [(1, 5, 9, 11)], [(1, 3, 6, 5, 4, 3, 1, 1, "reflect", False), (1, 6, 5, 4, 5, 3, 2, 1, "zeros", True)]
    norms = [(1, 64, 256, 256), (1, 128, 128, 128), (1, 256, 64, 64), (8, 256, 64, 64), (1, 64, 1080, 1920)]
    convs = [
        (1, 3, 256, 256, 64, 7, 1, 3, "reflect", False),
        (1, 64, 256, 256, 128, 3, 2, 1, "zeros", False),
        (1, 128, 128, 128, 256, 3, 2, 1, "zeros", False),
        (1, 256, 64, 64, 256, 3, 1, 1, "reflect", False),
        (1, 256, 64, 64, 128, 3, 2, 1, "zeros", True),
        (1, 3, 1080, 1920, 64, 7, 1, 3, "reflect", False),
    ]
    return norms, convs


def step_kernels(log: StepLog, device: torch.device, quick: bool) -> None:
    from i2i.kernels.conv import candidate_tiles, conv2d
    from i2i.kernels.instance_norm import instance_norm
    from i2i.kernels.reference import conv2d_reference, conv_transpose2d_reference, instance_norm_reference

    log.set("tolerance", TOLERANCE)
    norms, convs = kernel_cases(quick)
    generator = torch.Generator(device).manual_seed(0)
    for dtype_name, dtype in DTYPES.items():
        for shape in norms:
            for variant in ("residual",) if quick else ("plain", "relu", "residual"):

                def norm_case(shape=shape, variant=variant):
                    x = torch.randn(shape, generator=generator, device=device).to(dtype)
                    x = x.contiguous(memory_format=torch.channels_last) if dtype != torch.float32 else x
                    skip = None
                    if variant == "residual":
                        skip = torch.randn(shape, generator=generator, device=device).to(dtype)
                    y = instance_norm(x, activation="relu" if variant == "relu" else "none", residual=skip)
                    ref = instance_norm_reference(
                        x.double(),
                        activation="relu" if variant == "relu" else "none",
                        residual=None if skip is None else skip.double(),
                    )
                    return tolerance_verdict(relative_error(y, ref), dtype_name)

                log.case("instance_norm", f"{dtype_name} {'x'.join(map(str, shape))} {variant}", norm_case)
        for layer in convs:
            n, c_in, h, w, c_out, k, stride, pad, mode, transposed = layer
            tiles = candidate_tiles(dtype, c_in, c_out)
            tiles = tiles if c_in == c_out == 256 and h == 64 else tiles[:1]  # every tile on the residual conv
            for tile in tiles:

                def conv_case(tile=tile):
                    x = torch.randn((n, c_in, h, w), generator=generator, device=device).to(dtype)
                    x = x.contiguous(memory_format=torch.channels_last) if dtype != torch.float32 else x
                    shape = (c_in, c_out, k, k) if transposed else (c_out, c_in, k, k)
                    weight = (torch.randn(shape, generator=generator, device=device) / (c_in * k * k) ** 0.5).to(dtype)
                    bias = torch.randn(c_out, generator=generator, device=device).to(dtype)
                    y, _ = conv2d(
                        x, weight, bias, stride, pad, mode, transposed, output_padding=1 if transposed else 0, tile=tile
                    )
                    args = (x.double(), weight.double(), bias.double())
                    ref = (
                        conv_transpose2d_reference(*args, stride, pad, 1)
                        if transposed
                        else conv2d_reference(*args, stride, pad, mode)
                    )
                    return tolerance_verdict(relative_error(y, ref), dtype_name)

                kind = "convT" if transposed else f"conv {mode}"
                name = f"{dtype_name} {n}x{c_in}x{h}x{w}->{c_out} {kind} k{k} s{stride} {tile.name}"
                log.case("conv", name, conv_case)


def tolerance_verdict(errors: dict, dtype_name: str) -> dict:
    return {
        **errors,
        "tolerance": TOLERANCE[dtype_name],
        "within_tolerance": errors["finite"] and errors["max_rel_error"] <= TOLERANCE[dtype_name],
    }


# ----------------------------------------------------------------------------- tuning and b. generators
def build(net_g: str, ngf: int) -> torch.nn.Module:
    from i2i.config import GeneratorConfig
    from i2i.nets import build_generator, init_weights

    torch.manual_seed(0)
    net = init_weights(build_generator(GeneratorConfig(net_g, ngf=ngf), 3, 3)).eval().requires_grad_(False)
    with torch.no_grad():  # non-zero biases and norm affines too, as a trained generator has
        for p in net.parameters():
            if p.dim() == 1:
                p.normal_(0, 0.1)
    return net


def step_tune(log: StepLog, device: torch.device, quick: bool) -> None:
    """Fill the per-GPU cache (kernels/tuning.py) for the teacher and the student, fp16, at the
    latency shapes."""
    from i2i.kernels.dispatch import fuse_generator
    from i2i.kernels.tuning import LayerTuner

    tuner = LayerTuner.for_device(device)
    tuner.measure = True
    log.set("cache_file", str(tuner.path))
    for net_g, ngf in (TEACHER, STUDENT):
        fused = fuse_generator(build(net_g, ngf).to(device, torch.float16).to(memory_format=torch.channels_last), tuner)
        for name, (n, h, w) in LATENCY_SHAPES.items():

            def tune_case(n=n, h=h, w=w, fused=fused):
                x = torch.randn(n, 3, h, w, device=device, dtype=torch.float16)
                x = x.contiguous(memory_format=torch.channels_last)
                with torch.inference_mode():
                    fused(x)
                return {}

            log.case("shapes", f"{net_g} ngf {ngf} {name}", tune_case)
    log.set("layers", tuner.layers)


def to_levels(y: torch.Tensor) -> torch.Tensor:
    return ((y.float().clamp(-1, 1) + 1) * 127.5).round()


def step_generators(log: StepLog, device: torch.device, quick: bool, data: Path) -> None:
    from i2i.kernels.dispatch import fuse_generator

    nets = (
        [("resnet_6blocks", 2, 8)]
        if quick
        else [("resnet_9blocks", 64, 256), ("unet_256", 64, 256), ("mobile_resnet_9blocks", 64, 256)]
    )
    precisions = ["fp32"] if quick else ["fp32", "fp16"]
    for net_g, ngf, size in nets:
        net = build(net_g, ngf)
        x = torch.from_numpy(photo_batch(data, size, 1 if quick else 2)).to(device)
        with torch.inference_mode():
            reference = to_levels(net.to(device)(x))
        for precision in precisions:

            def generator_case(precision=precision):
                dtype = DTYPES[precision]
                model = build(net_g, ngf).to(device, dtype)
                xd = x.to(dtype)
                if device.type == "cuda":
                    model = model.to(memory_format=torch.channels_last)
                    xd = xd.contiguous(memory_format=torch.channels_last)
                with torch.inference_mode():
                    levels = to_levels(fuse_generator(model)(xd))
                    eager = to_levels(model(xd))
                diff, eager_diff = (levels - reference).abs(), (eager - reference).abs()
                return {
                    "max_level_diff": diff.max().item(),
                    "mean_level_diff": diff.mean().item(),
                    "fraction_over_1_level": (diff > 1).float().mean().item(),
                    "eager_same_precision_max_level_diff": eager_diff.max().item(),
                    "eager_same_precision_mean_level_diff": eager_diff.mean().item(),
                }

            log.case("generators", f"{net_g} ngf {ngf} {size}px {precision} triton vs eager fp32", generator_case)


def photo_batch(data: Path, size: int, count: int) -> np.ndarray:
    """`count` real photos center-cropped (or tiled) to size×size, float NCHW in [-1, 1]."""
    from i2i.io import list_images, read_image

    images = []
    for path in list_images(data / "photo2monet" / "testA")[:count]:
        image = read_image(path)
        reps = (-(-size // image.shape[0]), -(-size // image.shape[1]), 1)
        images.append(np.tile(image, reps)[:size, :size])
    return np.stack(images).transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1.0


# ----------------------------------------------------------------------------- c. latency
def latency_variants(
    net: torch.nn.Module, student: tuple[str, torch.nn.Module], x: torch.Tensor, device: torch.device
) -> list[tuple[str, object]]:
    """(row name, zero-argument callable or the reason the row is skipped), eager fp32 first; the
    `student` (its name and network) gets the fp16 rows beside the generator's."""
    from i2i.benchmarks.latency import precision_variants

    nets = precision_variants(net, device)
    fp32, half = nets["fp32"], nets["fp16_channels_last"]
    xc = x.to(device)
    xh = xc.half().contiguous(memory_format=torch.channels_last)
    rows: list[tuple[str, object]] = [("torch eager fp32", lambda: fp32(xc))]
    rows += half_variants("", half, xh, device)
    student_half = precision_variants(student[1], device)["fp16_channels_last"]
    rows += half_variants(f"{student[0]}: ", student_half, xh, device)
    rows.extend(onnxruntime_variants(fp32, x, device))
    # Last: compiling takes the longest and a step stopped at its budget keeps the rows before it.
    if device.type == "cuda":
        compiled = torch.compile(half)
        rows.append((COMPILE_ROW, lambda: compiled(xh)))
    else:
        rows.append((COMPILE_ROW, "skipped: the CPU dry run does not compile (minutes)"))
    return rows


def half_variants(prefix: str, half: torch.nn.Module, xh: torch.Tensor, device: torch.device) -> list:
    """Eager fp16, i2i's Triton kernels, and those replayed as a CUDA graph, for one fp16 network."""
    from i2i.kernels.dispatch import fuse_generator

    fused = fuse_generator(half)
    rows: list[tuple[str, object]] = [
        (f"{prefix}torch eager fp16 channels_last", lambda: half(xh)),
        (f"{prefix}i2i triton fp16", lambda: fused(xh)),
    ]
    if device.type == "cuda":
        from i2i.runtime.cuda_graphs import CudaGraphRunner

        graphed = CudaGraphRunner(fused)
        rows.append((f"{prefix}i2i triton fp16 + CUDA graph", lambda: graphed(xh)))
    else:
        rows.append((f"{prefix}i2i triton fp16 + CUDA graph", "skipped: CUDA graphs need CUDA"))
    return rows


def onnxruntime_variants(net: torch.nn.Module, x: torch.Tensor, device: torch.device) -> list[tuple[str, object]]:
    names = {
        "CUDAExecutionProvider": "onnxruntime CUDA EP fp32",
        "TensorrtExecutionProvider": "onnxruntime TensorRT EP fp32",
    }
    try:
        import onnxruntime as ort
    except ImportError:
        return [(row, "skipped: onnxruntime is not installed") for row in names.values()]
    available = ort.get_available_providers()
    missing = [
        (row, f"skipped: onnxruntime {ort.__version__} has no {provider} (has {', '.join(available)})")
        for provider, row in names.items()
        if provider not in available or device.type != "cuda"
    ]
    if len(missing) == len(names):
        return missing
    import io

    buffer = io.BytesIO()
    torch.onnx.export(
        net.float().cpu(),
        (x[:1].cpu(),),
        buffer,
        input_names=["image"],
        output_names=["out"],
        dynamic_axes={"image": {0: "n", 2: "h", 3: "w"}},
        dynamo=False,
    )
    net.to(device)
    rows = list(missing)
    feed = {"image": x.cpu().numpy()}
    for provider, row in names.items():
        if provider in available:
            session = ort.InferenceSession(buffer.getvalue(), providers=[provider, "CPUExecutionProvider"])
            rows.append((row + " (host in/out)", lambda session=session: session.run(None, feed)))
    return rows


def step_latency(log: StepLog, device: torch.device, quick: bool, shape_name: str) -> None:
    n, h, w = (1, 8, 8) if quick else LATENCY_SHAPES[shape_name]
    repeats, warmup = (1, 0) if quick else (30, 5)
    log.set("input", [n, 3, h, w])
    teacher, student = (("resnet_6blocks", 2), ("resnet_6blocks", 1)) if quick else (TEACHER, STUDENT)
    log.set("generator", f"{teacher[0]} ngf {teacher[1]}")
    student_name = f"{student[0]} ngf {student[1]} student"
    log.set("student", student_name)
    x = torch.randn(n, 3, h, w)
    for name, run in latency_variants(build(*teacher), (student_name, build(*student)), x, device):
        if isinstance(run, str):
            log.add("rows", {"backend": name, "ok": False, "note": run})
            continue

        def row(run=run):
            from i2i.benchmarks.latency import time_call

            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            with torch.inference_mode():
                samples = time_call(run, repeats, warmup, lambda: synchronize(device))
            median = statistics.median(samples)
            return {
                "median_ms": median,
                "p90_ms": float(np.percentile(samples, 90)),
                "images_per_s": n * 1e3 / median,
                "peak_mb": torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None,
            }

        log.case("rows", name, row)
        log.results["rows"][-1]["backend"] = log.results["rows"][-1].pop("case")
    rows = log.results["rows"]
    by_name = {r["backend"]: r.get("median_ms") for r in rows}
    for r in rows:
        if r.get("median_ms"):
            for column, base in (
                ("x_eager_fp32", "torch eager fp32"),
                ("x_torch_compile", COMPILE_ROW),
            ):
                r[column] = by_name[base] / r["median_ms"] if by_name.get(base) else None
    log.save()


# ----------------------------------------------------------------------------- d. bandwidth
def step_bandwidth(log: StepLog, device: torch.device, quick: bool) -> None:
    """The fused norm (statistics + normalize: reads x twice, writes y once) and its normalize pass
    alone (as after the conv epilogue: one read, one write) against a copy of the same bytes."""
    from i2i.kernels.instance_norm import NormTile, instance_norm

    shape = (1, 2, 8, 8) if quick else (8, 256, 256, 256)  # fp16: 268 MB, several times the L2
    x = torch.randn(shape, device=device, dtype=torch.float16).contiguous(memory_format=torch.channels_last)
    y = torch.empty_like(x)
    n, c = shape[:2]
    partials = torch.zeros(n, c, 1, 3, device=device)
    partials[..., 2] = shape[2] * shape[3]
    partials[..., 1] = shape[2] * shape[3]  # variance 1, mean 0 (the normalize pass alone)
    size = x.numel() * x.element_size()

    def measure(fn: Callable[[], object]) -> float:
        if device.type == "cuda":
            from triton.testing import do_bench

            return float(do_bench(fn, warmup=25, rep=100, return_mode="median"))
        from i2i.benchmarks.latency import time_call

        return statistics.median(time_call(fn, 1, 0))

    copy_ms = measure(lambda: y.copy_(x))
    log.set("bytes", size)
    log.set("copy", {"ms": copy_ms, "gb_per_s": 2 * size / copy_ms / 1e6})

    def share_of_copy(traffic: int, ms: float) -> float:
        return (traffic / ms) / (2 * size / copy_ms)

    for name, fn, traffic in (
        ("fused instance norm (stats + apply)", lambda: instance_norm(x), 3 * size),
        ("normalize pass alone (partials given)", lambda: instance_norm(x, partials=(partials, 1)), 2 * size),
    ):

        def case(fn=fn, traffic=traffic):
            ms = measure(fn)
            return {
                "ms": ms,
                "bytes_moved": traffic,
                "gb_per_s": traffic / ms / 1e6,
                "fraction_of_copy_bandwidth": share_of_copy(traffic, ms),
            }

        log.case("kernels", name, case)

    # Other channels_last tiles, for choosing the next default (the first H200 run: the fused
    # norm at 67 % of copy bandwidth, the goal 85 %).
    for tile in NORM_SWEEP[:1] if quick else NORM_SWEEP:
        norm_tile = NormTile(*tile)

        def tile_case(norm_tile=norm_tile):
            fused_ms = measure(lambda: instance_norm(x, tile=norm_tile))
            apply_ms = measure(lambda: instance_norm(x, partials=(partials, 1), tile=norm_tile))
            return {
                "fused_ms": fused_ms,
                "fused_fraction_of_copy_bandwidth": share_of_copy(3 * size, fused_ms),
                "apply_ms": apply_ms,
                "apply_fraction_of_copy_bandwidth": share_of_copy(2 * size, apply_ms),
            }

        log.case("tiles", "block_c {} block_hw {} warps {}".format(*tile), tile_case)


# ----------------------------------------------------------------------------- e. end to end
def random_run(run_dir: Path, net_g: str, ngf: int) -> Path:
    """A run directory with random generator weights (throughput does not depend on them)."""
    from i2i.config import RunConfig, save_config
    from i2i.io import save_checkpoint

    config = RunConfig()
    config.G.netG, config.G.ngf = net_g, ngf
    save_config(config, run_dir)
    nets = {name: build(net_g, ngf).state_dict() for name in ("G_A", "G_B")}
    save_checkpoint(run_dir / "checkpoints", 1, nets, {"step": 1}, keep=1)
    return run_dir


def step_end_to_end(log: StepLog, device: torch.device, quick: bool, data: Path) -> None:
    from i2i.runtime import load
    from i2i.runtime.generate import generate_dataset
    from i2i.runtime.video import stylize_video

    photos = sorted((data / "photo2monet" / "testA").glob("*.jpg"))[: 2 if quick else 20]
    clip = data / "video" / "cup.mp4"
    if not photos or not clip.is_file():
        raise FileNotFoundError(f"{data}: needs photo2monet/testA/*.jpg and video/cup.mp4 (pass --data)")
    backend, precision = ("torch", "fp32") if quick else ("triton", "fp16")
    with tempfile.TemporaryDirectory() as tmp:
        run = random_run(Path(tmp) / "run", "resnet_6blocks" if quick else "resnet_9blocks", 2 if quick else 64)
        listing = Path(tmp) / "photos.txt"
        # Absolute: a list's relative paths are read from the list's own folder (a temporary one).
        listing.write_text("\n".join(str(photo.resolve()) for photo in photos) + "\n")

        def generate_case():
            predictor = load(run, backend=backend, device=device.type, precision=precision, batch_size=8)
            generate_dataset(predictor, str(listing), Path(tmp) / "warm", model_name=str(run))  # compile + tune
            report = generate_dataset(predictor, str(listing), Path(tmp) / "out", model_name=str(run))
            return {
                "command": f"i2i generate RUN photos.txt OUT --device {device.type} --backend {backend} "
                f"--precision {precision}",
                "images": report.written,
                "run_seconds": report.seconds,
                "images_per_s": report.images_per_second,
            }

        log.case("runs", "generate 20 photos 256x256", generate_case)

        def video_case():
            predictor = load(run, backend=backend, device=device.type, precision=precision, batch_size=4)
            result = stylize_video(
                predictor,
                clip,
                Path(tmp) / "out.mp4",
                batch_size=4,
                max_frames=3 if quick else None,
                device=device.type,
            )
            return {
                "command": f"runtime.load(RUN, backend={backend!r}, precision={precision!r}) + stylize_video "
                f"(i2i video's code; its CLI has no --precision)",
                "frames": result.frames,
                "run_seconds": result.seconds,
                **result.summary(),
            }

        log.case("runs", f"video {clip.name}", video_case)


# ----------------------------------------------------------------------------- f. driver and report
def environment(device: torch.device) -> dict:
    import triton

    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "triton": triton.__version__,
        "numpy": np.__version__,
        "cuda": torch.version.cuda,
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "device": device.type,
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["capability"] = ".".join(map(str, torch.cuda.get_device_capability(device)))
        try:
            info["driver"] = subprocess.run(
                ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=20,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError) as error:
            info["driver"] = f"unknown ({error})"
    return info


def run_step(name: str, out: Path, device: torch.device, quick: bool, data: Path) -> None:
    log = StepLog(out / "steps" / f"{name}.json")
    log.save()
    if name == "kernels":
        step_kernels(log, device, quick)
    elif name == "tune":
        step_tune(log, device, quick)
    elif name == "generators":
        os.environ["I2I_KERNEL_TUNING"] = "off"  # correctness: default tiles and the tune step's choices
        step_generators(log, device, quick, data)
    elif name in LATENCY_SHAPES:
        step_latency(log, device, quick, name)
    elif name == "bandwidth":
        step_bandwidth(log, device, quick)
    elif name == "end_to_end":
        step_end_to_end(log, device, quick, data)


def skip_reason(name: str, device: str, quick: bool) -> str | None:
    """Why a step does not run in this configuration (decided here, without starting its process)."""
    if name == "tune" and device != "cuda":
        return "tuning measures GPU speed; nothing to measure on the CPU"
    if quick and name in LATENCY_SHAPES and name != "latency_256_b1":
        return "the quick run times one shape"
    return None


def check(
    out: Path, device: str, quick: bool, data: Path, budget_scale: float = 1.0, only: list[str] | None = None
) -> dict:
    """Run every step (or `only` those) in its own process under its budget; write gpu_check.json
    and gpu_check.md."""
    from i2i.io import atomic_write_bytes

    started = time.perf_counter()
    (out / "steps").mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, I2I_KERNEL_CACHE=str(out / "kernel_cache"), PYTHONUNBUFFERED="1")
    if device == "cpu":
        env["TRITON_INTERPRET"] = "1"
    result = {
        "schema": SCHEMA,
        "command": " ".join(sys.argv),
        "quick": quick,
        "environment": environment(torch.device(device)),
        "steps": {},
    }
    for name, budgets in STEPS.items():
        if only and name not in only:
            continue
        budget = budgets[0 if device == "cuda" else 1] * budget_scale
        step_started = time.perf_counter()
        reason = skip_reason(name, device, quick)
        if reason:
            result["steps"][name] = {
                "status": "skipped",
                "seconds": 0.0,
                "budget_s": budget,
                "error": None,
                "failed_cases": [],
                "results": {"skipped": reason},
            }
            continue
        command = [
            sys.executable,
            "-m",
            "i2i.benchmarks.gpu_check",
            "--step",
            name,
            "--out",
            str(out),
            "--device",
            device,
            "--data",
            str(data),
        ] + (["--quick"] if quick else [])
        try:
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=budget)
            status = "ok" if done.returncode == 0 else "failed"
            error = done.stderr[-4000:] if done.returncode else None
        except subprocess.TimeoutExpired as expired:
            stderr = expired.stderr or ""
            stderr = stderr.decode(errors="replace") if isinstance(stderr, bytes) else stderr
            status, error = "timeout", f"stopped after its {budget:.0f} s budget\n{stderr[-2000:]}"
        step_file = out / "steps" / f"{name}.json"
        results = json.loads(step_file.read_text()) if step_file.is_file() else {}
        failed_cases = [
            c["case"]
            for section in results.values()
            if isinstance(section, list)
            for c in section
            if isinstance(c, dict) and c.get("ok") is False and "error" in c
        ]
        if status == "ok" and failed_cases:
            status = "failed cases"
        result["steps"][name] = {
            "status": status,
            "seconds": round(time.perf_counter() - step_started, 1),
            "budget_s": budget,
            "error": error,
            "failed_cases": failed_cases,
            "results": results,
        }
        print(f"{name}: {status} in {result['steps'][name]['seconds']} s", flush=True)
        result["total_seconds"] = round(time.perf_counter() - started, 1)
        atomic_write_bytes(out / "gpu_check.json", (json.dumps(result, indent=1, default=str) + "\n").encode())
    atomic_write_bytes(out / "gpu_check.md", markdown(result).encode())
    return result


def markdown(result: dict) -> str:
    """The human-readable summary: versions, step status, kernel errors and the latency tables."""
    env = result["environment"]
    lines = [
        f"# GPU check: {env.get('gpu', env['device'])}",
        "",
        f"driver {env.get('driver', '-')}, CUDA {env['cuda']}, torch {env['torch']}, Triton {env['triton']}, "
        f"Python {env['python']}; total {result['total_seconds']} s; command `{result['command']}`",
        "",
        "| step | status | seconds | budget s |",
        "|---|---|---|---|",
    ]
    for name, step in result["steps"].items():
        lines.append(f"| {name} | {step['status']} | {step['seconds']} | {step['budget_s']:.0f} |")
    kernels = result["steps"].get("kernels", {}).get("results", {})
    for section in ("instance_norm", "conv"):
        lines += [
            "",
            f"## {section} vs torch float64",
            "",
            "| case | max abs | max rel | tolerance | ok |",
            "|---|---|---|---|---|",
        ]
        for case in kernels.get(section, []):
            if case["ok"]:
                lines.append(
                    f"| {case['case']} | {case['max_abs_error']:.2e} | {case['max_rel_error']:.2e} | "
                    f"{case['tolerance']:.0e} | {'yes' if case['within_tolerance'] else '**NO**'} |"
                )
            else:
                lines.append(f"| {case['case']} | error | | | **NO** |")
    lines += bandwidth_lines(result["steps"].get("bandwidth", {}).get("results", {}))
    for name in LATENCY_SHAPES:
        rows = result["steps"].get(name, {}).get("results", {}).get("rows", [])
        if rows:
            lines += [
                "",
                f"## {name}",
                "",
                "| backend | median ms | p90 ms | img/s | peak MB | × eager fp32 | × compile |",
                "|---|---|---|---|---|---|---|",
            ]
            for r in rows:
                if r.get("median_ms"):
                    fmt = lambda v, spec: "-" if v is None else format(v, spec)  # noqa: E731
                    lines.append(
                        f"| {r['backend']} | {r['median_ms']:.3f} | {r['p90_ms']:.3f} | "
                        f"{r['images_per_s']:.1f} | {fmt(r['peak_mb'], '.0f')} | {fmt(r.get('x_eager_fp32'), '.2f')} | "
                        f"{fmt(r.get('x_torch_compile'), '.2f')} |"
                    )
                else:
                    lines.append(f"| {r['backend']} | {r.get('note') or 'error'} | | | | | |")
    return "\n".join(lines) + "\n"


def bandwidth_lines(bandwidth: dict) -> list[str]:
    """The bandwidth step's table: each kernel's and each tile's share of copy bandwidth."""
    if "copy" not in bandwidth:
        return []
    lines = [
        "",
        f"## instance norm bandwidth ({bandwidth['bytes'] / 1e6:.0f} MB fp16 channels_last; copy "
        f"{bandwidth['copy']['gb_per_s']:.0f} GB/s)",
        "",
        "| kernel or tile | ms | share of copy bandwidth |",
        "|---|---|---|",
    ]
    for case in bandwidth.get("kernels", []):
        if case["ok"]:
            lines.append(f"| {case['case']} | {case['ms']:.3f} | {case['fraction_of_copy_bandwidth']:.0%} |")
    for case in bandwidth.get("tiles", []):
        if case["ok"]:
            lines.append(
                f"| {case['case']}: fused / apply alone | {case['fused_ms']:.3f} / {case['apply_ms']:.3f} | "
                f"{case['fused_fraction_of_copy_bandwidth']:.0%} / {case['apply_fraction_of_copy_bandwidth']:.0%} |"
            )
        else:
            lines.append(f"| {case['case']} | error | |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--quick", action="store_true", help="Tiny shapes (the CPU dry run).")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="Folder with photo2monet/ and video/.")
    parser.add_argument("--step", choices=sorted(STEPS), help=argparse.SUPPRESS)
    parser.add_argument(
        "--only", type=lambda text: text.split(","), help=f"Comma-separated steps to run (of {', '.join(STEPS)})."
    )
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print(
            "gpu_check: --device cuda but torch sees no CUDA GPU; use --device cpu --quick for the dry run",
            file=sys.stderr,
        )
        return 2
    if args.step:
        run_step(args.step, args.out, torch.device(args.device), args.quick, args.data)
        return 0
    unknown = sorted(set(args.only or ()) - set(STEPS))
    if unknown:
        parser.error(f"--only: no step {', '.join(unknown)} (steps: {', '.join(STEPS)})")
    result = check(args.out, args.device, args.quick, args.data, only=args.only)
    print(f"{args.out}/gpu_check.json, {args.out}/gpu_check.md ({result['total_seconds']} s)")
    return 0 if all(step["status"] in ("ok", "skipped") for step in result["steps"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
