"""The export formats, in one table, and the check of an export request against it.

Each row says what a format writes and what it needs; `check_request` refuses an impossible
combination (one line, before anything is written), and `i2i export --formats` prints the table.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from i2i.errors import ConfigError, MissingDependencyError

REDUCED = ("fp16", "bf16", "int8")  # precisions that pass the quality gate before they are written
CALIBRATED = ("int8",)  # precisions whose activation ranges come from calibration images


@dataclass(frozen=True)
class ExportFormat:
    name: str
    suffix: str
    precisions: tuple[str, ...]
    needs_gpu: bool
    backend: str  # the runtime backend that runs the file
    module: str  # the Python module the format needs
    extra: str  # the pip extra that installs it ("" = always installed)
    uint8_io: bool  # can fold uint8 NHWC normalization into the file

    @property
    def installed(self) -> bool:
        return importlib.util.find_spec(self.module) is not None


FORMATS = {
    "onnx": ExportFormat("onnx", ".onnx", ("fp32", "fp16", "int8"), False, "onnxruntime", "onnxruntime", "", True),
    "openvino": ExportFormat(
        "openvino", ".xml", ("fp32", "bf16", "int8"), False, "openvino", "openvino", "i2i[openvino]", False
    ),
    "tensorrt": ExportFormat("tensorrt", ".engine", ("fp32", "fp16"), True, "tensorrt", "tensorrt", "i2i[gpu]", False),
}
# Every precision some format exports (`i2i export --precision`), read off the table.
PRECISIONS = tuple(p for p in ("fp32", *REDUCED) if any(p in f.precisions for f in FORMATS.values()))


def format_table() -> str:
    """The table as `i2i export --formats` prints it."""
    header = ("format", "suffix", "precisions", "needs GPU", "calibration", "io uint8", "backend", "extra", "installed")
    rows = [
        (
            f.name,
            f.suffix,
            ",".join(f.precisions),
            "yes" if f.needs_gpu else "no",
            ",".join(p for p in f.precisions if p in CALIBRATED) or "-",
            "yes" if f.uint8_io else "no",
            f.backend,
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


def check_request(name: str, precision: str, io_kind: str = "float") -> ExportFormat:
    """The format row for a valid request; ConfigError / MissingDependencyError otherwise."""
    if name not in FORMATS:
        raise ConfigError(
            f"--format {name}: not a format; choose one of {', '.join(FORMATS)} (see i2i export --formats)"
        )
    fmt = FORMATS[name]
    if precision not in fmt.precisions:
        raise ConfigError(f"--format {name} --precision {precision}: {name} exports {', '.join(fmt.precisions)}")
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
    if name == "openvino" and precision == "bf16" and not cpu_has_native_bf16():
        raise ConfigError(
            "--precision bf16: this CPU has no native bf16 (AVX-512 BF16 / AMX), where OpenVINO would "
            "only emulate it; use fp32 or int8"
        )
    return fmt
