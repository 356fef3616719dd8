"""The distillation trade-off: a teacher and its students side by side in one process.

Per generator: cost (GMACs and parameters at 256², the H100/Orin roofline floors), speed through
`i2i generate`'s path (torch eager fp32 on the run, OpenVINO int8 on its quality-gated export;
batch 1, decoding and encoding included; best of --rounds, the models interleaved) and quality
(FD/KID of both outputs to the target domain on efficientnet-lite0, PSNR against the teacher's
fp32 outputs, artifact score). Writes distillation.json, distillation.md and a quality-vs-speed
plot, and names the default student: the fastest whose int8 FD and KID are within --tolerance of
the teacher's eager ones.

    python -m i2i.benchmarks.distillation TEACHER STUDENT... --photos testA --targets testB --out DIR
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import numpy as np
import torch
from torch import nn

from i2i.evaluation.evaluate import evaluate_folders
from i2i.evaluation.visualize import pyplot, save_figure
from i2i.export.exporter import ExportRequest, export
from i2i.export.quality import QualityGateError
from i2i.io import atomic_write_bytes, list_images, read_image
from i2i.rundir import generator_channels, load_generator
from i2i.runtime.generate import generate_dataset
from i2i.runtime.predictor import load

from .latency import backend_versions
from .roofline import floor_seconds, layer_costs

SIDE = 256
BACKENDS = {"eager": "torch", "int8": "openvino"}


def cost(net: nn.Module, channels: int) -> dict:
    """GMACs and parameters at SIDE², and the fp16 roofline floors of the GPUs the table names."""
    costs = layer_costs(net, (1, channels, SIDE, SIDE), 2)
    convolutions = [c for c in costs if c.kind in ("Conv2d", "ConvTranspose2d")]
    return {
        "gmacs": sum(c.flops for c in convolutions) / 2e9,
        "parameters_m": sum(p.numel() for p in net.parameters()) / 1e6,
        "floor_ms": {device: 1e3 * floor_seconds(costs, device, "fp16") for device in ("H100", "OrinNX")},
    }


def int8_export(run: Path, out: Path, max_teacher_change: float) -> tuple[Path | None, dict | None, str]:
    """The run's OpenVINO int8 export (reused when already in `out`), its gate figures and a note."""
    path = out / "generator_AtoB_float_int8.xml"
    if not path.exists():
        try:
            export(
                ExportRequest(
                    run, "openvino", "int8", out_dir=out, max_teacher_change=max_teacher_change, gate_images=48
                )
            )
        except QualityGateError as error:
            return None, None, str(error)
    quality = json.loads(path.with_suffix(".quality.json").read_text())
    return path, quality, "gated"


def psnr_against(folder: Path, reference: Path) -> float:
    """Mean PSNR (dB) of each image in `folder` against the same-named image in `reference`."""
    values = []
    for path in list_images(folder):
        a = read_image(path, 3).astype(np.float64)
        b = read_image(reference / path.relative_to(folder), 3).astype(np.float64)
        mse = float(np.mean((a - b) ** 2))
        values.append(99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse))
    return float(np.mean(values))


def measure(args: argparse.Namespace) -> dict:
    runs = {"teacher": args.teacher, **{f"student{i + 1}": path for i, path in enumerate(args.students)}}
    rows: dict[str, dict] = {}
    models: dict[tuple[str, str], Path] = {}
    for name, run in runs.items():
        net, config = load_generator(run)
        channels = generator_channels(config, "AtoB")[0]
        rows[name] = {"run": str(run), "netG": config.G.netG, "ngf": config.G.ngf, **cost(net, channels)}
        path, quality, note = int8_export(run, args.out / "exports" / name, args.max_teacher_change)
        rows[name]["int8_export"] = {"path": str(path) if path else None, "quality": quality, "note": note}
        models[name, "eager"] = run
        if path:
            models[name, "int8"] = path
    speeds: dict[tuple[str, str], list[float]] = {key: [] for key in models}
    for _ in range(args.rounds):  # interleaved, so a slow spell of the machine hits every model alike
        for (name, variant), path in models.items():
            predictor = load(path, backend=BACKENDS[variant], batch_size=1)
            predictor(np.zeros((SIDE, SIDE), np.uint8))  # warm-up (compilation, first allocations); grey fits any model
            outputs = args.out / "outputs" / name / variant
            report = generate_dataset(predictor, args.photos, outputs, workers=2)
            speeds[name, variant].append(report.images_per_second)
    teacher_outputs = args.out / "outputs" / "teacher" / "eager"
    for (name, variant), values in speeds.items():
        outputs = args.out / "outputs" / name / variant
        quality = evaluate_folders(outputs, args.targets, sources=args.photos)
        rows[name][variant] = {
            "images_per_second": max(values),
            "all_rounds": values,
            "frechet_distance": quality["frechet_distance"],
            "kid": quality["kid"],
            "kid_std": quality["kid_std"],
            "artifact_score": quality["artifact_score"],
            "psnr_vs_teacher_db": psnr_against(outputs, teacher_outputs),
        }
        rows["sources"] = {
            "frechet_distance": quality["sources_frechet_distance"],
            "kid": quality["sources_kid"],
            "artifact_score": quality["sources_artifact_score"],
        }
    return {
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
        "versions": backend_versions(),
        "photos": str(args.photos),
        "targets": str(args.targets),
        "rounds": args.rounds,
        "tolerance": args.tolerance,
        "rows": rows,
        "default_student": default_student(rows, args.tolerance),
    }


def default_student(rows: dict[str, dict], tolerance: float) -> str | None:
    """The fastest student whose int8 FD and KID are within `tolerance` of the teacher's eager ones."""
    teacher = rows["teacher"]["eager"]
    good = [
        name
        for name, row in rows.items()
        if name.startswith("student")
        and "int8" in row
        and row["int8"]["frechet_distance"] <= (1 + tolerance) * teacher["frechet_distance"]
        and row["int8"]["kid"] <= (1 + tolerance) * teacher["kid"]
    ]
    return max(good, key=lambda name: rows[name]["int8"]["images_per_second"], default=None)


def table(result: dict) -> str:
    rows, teacher = result["rows"], result["rows"]["teacher"]["eager"]
    lines = [
        "| generator | GMACs | params (M) | eager img/s | int8 img/s | × teacher eager | FD eager / int8 | "
        "KID eager / int8 | PSNR vs teacher (int8) | artifact (int8) | H100 / Orin floor ms |",
        "|---|---:|---:|---:|---:|---:|---|---|---:|---:|---|",
    ]
    for name, row in rows.items():
        if name == "sources":
            continue
        int8 = row.get("int8", {})
        label = f"{name} ({row['netG']} ngf {row['ngf']})" + (
            " **default**" if name == result["default_student"] else ""
        )
        speedup = f"{int8['images_per_second'] / teacher['images_per_second']:.1f}" if int8 else "-"
        lines.append(
            f"| {label} | {row['gmacs']:.2f} | {row['parameters_m']:.2f} | {row['eager']['images_per_second']:.2f} | "
            f"{int8.get('images_per_second', float('nan')):.2f} | {speedup} | "
            f"{row['eager']['frechet_distance']:.1f} / {int8.get('frechet_distance', float('nan')):.1f} | "
            f"{row['eager']['kid']:.4f} / {int8.get('kid', float('nan')):.4f} | "
            f"{int8.get('psnr_vs_teacher_db', float('nan')):.1f} | {int8.get('artifact_score', float('nan')):.2f} | "
            f"{row['floor_ms']['H100']:.3f} / {row['floor_ms']['OrinNX']:.2f} |"
        )
    sources = rows["sources"]
    lines.append(
        f"| untranslated photos | | | | | | {sources['frechet_distance']:.1f} | {sources['kid']:.4f} | | "
        f"{sources['artifact_score']:.2f} | |"
    )
    return "\n".join(lines)


def plot(result: dict, path: Path) -> None:
    plt = pyplot()
    fig, axis = plt.subplots(figsize=(6.5, 4.5))
    for name, row in result["rows"].items():
        for variant, marker in (("eager", "o"), ("int8", "s")):
            if name == "sources" or variant not in row:
                continue
            colour = "black" if name == "teacher" else None
            axis.scatter(row[variant]["images_per_second"], row[variant]["frechet_distance"], marker=marker, c=colour)
            axis.annotate(f"{name} {variant}", (row[variant]["images_per_second"], row[variant]["frechet_distance"]))
    axis.axhline(result["rows"]["sources"]["frechet_distance"], color="grey", linestyle="--", label="untranslated")
    axis.set_xscale("log")
    axis.set_xlabel(f"images/s through i2i generate ({SIDE}², batch 1, log scale)")
    axis.set_ylabel("FD to the target domain (efficientnet-lite0)")
    axis.legend(fontsize=8)
    axis.grid(alpha=0.3)
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("teacher", type=Path)
    parser.add_argument("students", type=Path, nargs="+")
    parser.add_argument("--photos", type=Path, required=True, help="Held-out source images (e.g. testA).")
    parser.add_argument("--targets", type=Path, required=True, help="Real target-domain images (e.g. testB).")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--tolerance", type=float, default=0.03, help="Quality bar of the default student.")
    parser.add_argument("--max-teacher-change", type=float, default=0.25)
    args = parser.parse_args(argv)
    result = measure(args)
    atomic_write_bytes(args.out / "distillation.json", (json.dumps(result, indent=2) + "\n").encode())
    text = table(result)
    atomic_write_bytes(args.out / "distillation.md", (text + "\n").encode())
    plot(result, args.out / "distillation.png")
    print(text)
    print(f"default student: {result['default_student']}")
    return result


if __name__ == "__main__":
    main()
