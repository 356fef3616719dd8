"""`i2i export`: one request → the checked, quality-gated, atomically written file of one format.

Order: the request is checked against the formats table and every input it needs is read
(calibration and held-out images, TensorRT shapes) before any work; then the ONNX graph is
built and parity-checked; then the format's own file is made, a reduced precision must pass
the quality gate (on failure, the convolutions that measure most sensitive are kept in fp32
and it is tried again), and only then is anything written.
"""

from __future__ import annotations

import json
import time
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path

import torch

from i2i.config import CONFIG_FILENAME
from i2i.io import atomic_write_bytes, latest_checkpoint
from i2i.outputs import claim_folder, refuse_writing_inputs
from i2i.rundir import has_temporal_predictor, load_teacher, predicted_domain
from i2i.runners import TorchRunner

from .builds import OnnxBuild, load_build
from .calibration import ImageSet, calibration_set, holdout_sets
from .formats import CALIBRATED, PRECISION_ROWS, REDUCED, ExportFormat, ExportRequest, check_request
from .onnx import PREDICTOR_KEY, TOLERANCE, ParityReport, verified_onnx, verified_predictor_onnx
from .quality import QualityGate, QualityReport


@dataclass
class ExportResult:
    path: Path
    parity: ParityReport
    quality: QualityReport | None = None
    lines: list[str] = field(default_factory=list)  # what was done, one line each


def output_path(request: ExportRequest, suffix: str) -> Path:
    variant = (request.io_kind, request.precision)
    name = "" if variant == ("float", "fp32") else f"_{request.io_kind}_{request.precision}"
    return Path(request.out_dir or request.run_dir) / f"generator_{request.direction}{name}{suffix}"


def quality_path(path: Path) -> Path:
    return path.with_suffix(".quality.json")


def planned_files(fmt: ExportFormat, path: Path, predictor_stem: str | None) -> list[Path]:
    """Every file the export of `path` may write: the model's (with OpenVINO's weights, TensorRT's
    engine and sidecar), its quality figures and the temporal predictor's."""
    stems = [path.with_suffix("")] + ([path.parent / predictor_stem] if predictor_stem else [])
    return [quality_path(path)] + [Path(f"{stem}{suffix}") for stem in stems for suffix in fmt.files]


def run_files(run_dir: Path) -> list[Path]:
    """The files of a run that an export reads: its config and its newest complete checkpoint."""
    return [Path(run_dir) / CONFIG_FILENAME, *latest_checkpoint(run_dir).iterdir()]


def export(request: ExportRequest) -> ExportResult:
    """Run `request` (see the module doc); returns what was written and measured."""
    started = time.perf_counter()
    given = tuple(f.name for f in fields(request) if f.default is not MISSING and getattr(request, f.name) != f.default)
    fmt = check_request(request.format, request.precision, request.io_kind, given)
    build = load_build(request, fmt.build)
    config = build.config
    calibration = (
        calibration_set(config, request.direction, request.calib)
        if request.precision in CALIBRATED
        else ImageSet(Path(), [], [])
    )
    student = config.model == "distill"
    gate_sets = (
        holdout_sets(config, request.direction, calibration, request.holdout, request.gate_images)
        if (request.precision in REDUCED or student) and build.gated
        else None
    )
    path = output_path(request, fmt.files[0])
    stem = predictor_stem(request, build) if has_temporal_predictor(config) else None
    read = [*run_files(request.run_dir), *calibration.paths, *(p for s in gate_sets or () for p in s.paths)]
    refuse_writing_inputs(planned_files(fmt, path, stem), read)
    with claim_folder(path.parent, f"the export {path.stem}"):
        model, parity, net = verified_onnx(
            request.run_dir, request.direction, request.opset, request.io_kind, PRECISION_ROWS[request.precision].graph
        )
        result = ExportResult(path, parity)
        result.lines = [f"  parity {r.what:>16} {r.shape!s:>18}  max error {r.max_error:.2e}" for r in parity.parity]
        result.lines.append(f"ONNX graph checked: max error {parity.max_error:.2e} (tolerance {parity.tolerance:g})")
        write_predictor = lambda: None  # noqa: E731
        if stem is not None:
            write_predictor = _verified_predictor(request, build, path.parent / stem, result.lines)
            model.metadata_props.add(key=PREDICTOR_KEY, value=stem)
        gate = None
        if gate_sets is not None:
            cpu = torch.device("cpu")
            teacher = TorchRunner(load_teacher(request.run_dir)[0], cpu, torch.float32, False) if student else None
            gate = QualityGate(
                TorchRunner(net, cpu, torch.float32, False),
                *gate_sets,
                request.max_fd_change,
                teacher,
                request.max_teacher_change,
            )
        result.quality = build.write(model, net, calibration, gate, path, write_predictor)
        if result.quality is not None:
            atomic_write_bytes(quality_path(path), (json.dumps(result.quality.to_dict(), indent=2) + "\n").encode())
            result.lines.append(f"quality gate passed, {result.quality.summary()}; {quality_path(path).name}")
        size = sum(p.stat().st_size for p in (path, path.with_suffix(".bin")) if p.is_file())
        result.lines.append(f"{path}: {size / 1e6:.2f} MB in {time.perf_counter() - started:.1f} s")
        finished = build.finish(path)
        if finished:
            result.lines.append(finished)
        return result


def predictor_stem(request: ExportRequest, build: OnnxBuild) -> str:
    """predictor_B (fp32) for an A→B generator; TensorRT engines carry their precision."""
    precision = build.predictor_precision
    return f"predictor_{predicted_domain(request.direction)}" + ("" if precision == "fp32" else f"_{precision}")


def _verified_predictor(request: ExportRequest, build: OnnxBuild, stem_path: Path, lines: list[str]):
    """Build and parity-check the recycle_gan predictor of the generator's output domain in the
    build's format (fp32; a TensorRT engine at the request's precision); returns the function that
    writes it, called once the generator has passed its own checks and before the generator is
    written, so a generator never links to a missing file and a refused export writes nothing."""
    model, parity, net = verified_predictor_onnx(request.run_dir, request.direction, request.opset)
    worst = max(r.max_error for r in parity)
    lines.append(f"temporal predictor checked: max error {worst:.2e} (tolerance {TOLERANCE[('float', 'fp32')]:g})")
    return build.predictor(model, net, stem_path, lines)
