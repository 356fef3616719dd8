"""The export formats and precisions, in tables, the export request and its check against them.

Each row says what a format writes and what it needs; `check_request` refuses an impossible
combination (one line, before anything is written), and `i2i export --formats` prints the table.
Light to import: the command line reads the request's defaults from here.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from i2i.errors import ConfigError, MissingDependencyError


@dataclass
class ExportRequest:
    """An export (`i2i export`'s options by name); the gate's limits: the FD to real target
    images may move by `max_fd_change` (relative), and a student's outputs may differ from its
    teacher's by `max_teacher_change` of the teacher's own FD."""

    run_dir: Path
    format: str = "onnx"
    precision: str = "fp32"
    io_kind: str = "float"
    direction: str = "AtoB"
    out_dir: Path | None = None
    opset: int = 17
    calib: Path | None = None
    holdout: Path | None = None
    max_fd_change: float = 0.01
    gate_images: int = 48  # held-out images the gate translates
    shapes: str = "1x256x256,1x512x512,4x1024x1024"  # TensorRT's optimization profile, min,opt,max
    native_instance_norm: bool = False
    timing_cache: Path | None = None
    max_teacher_change: float = 0.25


@dataclass(frozen=True)
class Precision:
    name: str
    graph: str  # the float type of the ONNX graph it is made from (int8 is quantized from fp32)
    calibrated: bool  # activation ranges from calibration images
    gated: bool  # written only after the quality gate (FD change on held-out images)
    openvino_hint: str  # OpenVINO's inference precision; int8 runs its non-quantized ops in f32
    native_cpu: bool = False  # refused for a CPU format where the CPU would only emulate it


PRECISION_ROWS = {
    "fp32": Precision("fp32", "fp32", calibrated=False, gated=False, openvino_hint="f32"),
    "fp16": Precision("fp16", "fp16", calibrated=False, gated=True, openvino_hint="f16"),
    "bf16": Precision("bf16", "fp32", calibrated=False, gated=True, openvino_hint="bf16", native_cpu=True),
    "int8": Precision("int8", "fp32", calibrated=True, gated=True, openvino_hint="f32"),
}
REDUCED = tuple(name for name, row in PRECISION_ROWS.items() if row.gated)
CALIBRATED = tuple(name for name, row in PRECISION_ROWS.items() if row.calibrated)
# Export options only some formats use (ExportRequest fields): given to another, they are refused.
FORMAT_OPTIONS = ("shapes", "native_instance_norm", "timing_cache")


@dataclass(frozen=True)
class ExportFormat:
    name: str
    suffix: str
    precisions: tuple[str, ...]
    needs_gpu: bool
    runs_on: tuple[str, ...]  # the runtime backends that run the file, the default first
    module: str  # the Python module the format needs
    extra: str  # the pip extra that installs it ("" = always installed)
    uint8_io: bool  # can fold uint8 NHWC normalization into the file
    build: str  # how it is made ("module:Class" of i2i.export.builds, imported when used)
    # The suffixes it writes per stem: first the file the exporter writes the graph to (for
    # TensorRT the ONNX file its engine is built from), then weights, engine, sidecar.
    files: tuple[str, ...]
    options: tuple[str, ...] = ()  # which of FORMAT_OPTIONS it uses

    @property
    def installed(self) -> bool:
        return importlib.util.find_spec(self.module) is not None


BUILDS = "i2i.export.builds"
FORMATS = {
    "onnx": ExportFormat(
        "onnx",
        ".onnx",
        ("fp32", "fp16", "int8"),
        needs_gpu=False,
        runs_on=("onnxruntime", "openvino"),
        module="onnxruntime",
        extra="",
        uint8_io=True,
        build=f"{BUILDS}:OnnxBuild",
        files=(".onnx",),
    ),
    "openvino": ExportFormat(
        "openvino",
        ".xml",
        ("fp32", "bf16", "int8"),
        needs_gpu=False,
        runs_on=("openvino",),
        module="openvino",
        extra="i2i[openvino]",
        uint8_io=False,
        build=f"{BUILDS}:OpenVinoBuild",
        files=(".xml", ".bin"),
    ),
    "tensorrt": ExportFormat(
        "tensorrt",
        ".engine",
        ("fp32", "fp16"),
        needs_gpu=True,
        runs_on=("tensorrt",),
        module="tensorrt",
        extra="i2i[gpu]",
        uint8_io=False,
        build=f"{BUILDS}:TensorRtBuild",
        files=(".onnx", ".engine", ".json"),
        options=FORMAT_OPTIONS,
    ),
}
# Every precision some format exports (`i2i export --precision`), read off the table.
PRECISIONS = tuple(p for p in PRECISION_ROWS if any(p in f.precisions for f in FORMATS.values()))
# What the runtime runs a file with, by its suffix.
FILE_BACKENDS = {f.suffix: f.runs_on for f in FORMATS.values()}


def format_table() -> str:
    """The table as `i2i export --formats` prints it."""
    header = (
        "format",
        "suffix",
        "precisions",
        "needs GPU",
        "calibration",
        "io uint8",
        "backends",
        "extra",
        "installed",
    )
    rows = [
        (
            f.name,
            f.suffix,
            ",".join(f.precisions),
            "yes" if f.needs_gpu else "no",
            ",".join(p for p in f.precisions if p in CALIBRATED) or "-",
            "yes" if f.uint8_io else "no",
            ",".join(f.runs_on),
            f.extra or "(core)",
            "yes" if f.installed else "no",
        )
        for f in FORMATS.values()
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in [header, *rows])
    return "\n".join(lines)


def cpu_has_native_bf16() -> bool:
    """Whether OpenVINO's CPU plugin runs bf16 natively here (AVX-512 BF16 or AMX)."""
    import openvino as ov

    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def check_request(name: str, precision: str, io_kind: str = "float", given: tuple[str, ...] = ()) -> ExportFormat:
    """The format row for a valid request; ConfigError / MissingDependencyError otherwise.
    `given`: the request's options set to other than their defaults, each of which the format
    and precision must use."""
    if name not in FORMATS:
        raise ConfigError(
            f"--format {name}: not a format; choose one of {', '.join(FORMATS)} (see i2i export --formats)"
        )
    fmt = FORMATS[name]
    if precision not in fmt.precisions:
        raise ConfigError(f"--format {name} --precision {precision}: {name} exports {', '.join(fmt.precisions)}")
    for option in given:
        users = [f.name for f in FORMATS.values() if option in f.options]
        if option in FORMAT_OPTIONS and option not in fmt.options:
            raise ConfigError(
                f"--{option.replace('_', '-')}: --format {name} does not use it (only {', '.join(users)}); drop it"
            )
        if option == "calib" and not PRECISION_ROWS[precision].calibrated:
            raise ConfigError(
                f"--calib: --precision {precision} needs no calibration (only {', '.join(CALIBRATED)}); drop it"
            )
    if io_kind == "uint8" and (not fmt.uint8_io or precision in CALIBRATED):
        raise ConfigError(
            f"--io uint8: not available for --format {name} --precision {precision}; drop --io uint8 "
            "(the runtime converts uint8 images itself)"
        )
    if not fmt.installed:
        raise MissingDependencyError(
            f"--format {name} needs the Python package {fmt.module}: pip install '{fmt.extra}'"
        )
    if fmt.needs_gpu:
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(
                f"--format {name} builds on an NVIDIA GPU and none is visible here; export onnx or openvino"
            )
    if PRECISION_ROWS[precision].native_cpu and not fmt.needs_gpu and not cpu_has_native_bf16():
        raise ConfigError(
            f"--precision {precision}: this CPU has no native {precision} (AVX-512 BF16 / AMX), where OpenVINO would "
            "only emulate it; use fp32 or int8"
        )
    return fmt
