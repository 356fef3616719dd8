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
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path

import onnx
import torch

from i2i.config import CONFIG_FILENAME, load_config
from i2i.errors import UserError
from i2i.io import atomic_write_bytes, latest_checkpoint
from i2i.nets import size_multiple
from i2i.outputs import claim_folder, refuse_writing_inputs
from i2i.rundir import generator_channels, has_temporal_predictor, load_teacher, predicted_domain, predictor_multiple
from i2i.runners import OnnxRuntimeRunner, TorchRunner

from .calibration import ImageSet, calibration_set, holdout_sets, square
from .formats import CALIBRATED, FORMATS, PRECISION_ROWS, REDUCED, ExportFormat, ExportRequest, check_request
from .onnx import (
    PREDICTOR_KEY,
    TOLERANCE,
    ExportReport,
    predictor_verification_inputs,
    verified_onnx,
    verified_predictor_onnx,
)
from .quality import (
    QualityGate,
    QualityReport,
    Translate,
    conv_sensitivity,
    most_sensitive,
)

FALLBACK_STEPS = (1, 2, 4, 8)  # how many of the most sensitive convolutions to keep in fp32, in turn
SENSITIVITY_SIDE = 128  # per-layer measurement on smaller crops: 24 forward passes for a ResNet-9


class QualityGateError(UserError):
    """A reduced-precision export changed the outputs more than allowed; nothing was written."""


@dataclass
class ExportResult:
    path: Path
    parity: ExportReport
    quality: QualityReport | None = None
    lines: list[str] = field(default_factory=list)  # what was done, one line each


def output_path(request: ExportRequest, fmt: ExportFormat) -> Path:
    variant = (request.io_kind, request.precision)
    suffix = "" if variant == ("float", "fp32") else f"_{request.io_kind}_{request.precision}"
    return Path(request.out_dir or request.run_dir) / f"generator_{request.direction}{suffix}{fmt.suffix}"


def quality_path(path: Path) -> Path:
    return path.with_suffix(".quality.json")


def planned_files(request: ExportRequest, fmt: ExportFormat, path: Path, predictor: bool) -> list[Path]:
    """Every file the export of `path` may write: the model's (with OpenVINO's weights, TensorRT's
    engine and sidecar), its quality figures and the temporal predictor's."""
    stems = [path.with_suffix("")] + ([path.parent / predictor_stem(request, fmt)] if predictor else [])
    suffixes = {"openvino": (".xml", ".bin"), "tensorrt": (".onnx", ".engine", ".json")}.get(fmt.name, (fmt.suffix,))
    return [quality_path(path)] + [Path(f"{stem}{suffix}") for stem in stems for suffix in suffixes]


def run_files(run_dir: Path) -> list[Path]:
    """The files of a run that an export reads: its config and its newest complete checkpoint."""
    return [Path(run_dir) / CONFIG_FILENAME, *latest_checkpoint(run_dir).iterdir()]


def export(request: ExportRequest) -> ExportResult:
    """Run `request` (see the module doc); returns what was written and measured."""
    started = time.perf_counter()
    given = tuple(f.name for f in fields(request) if f.default is not MISSING and getattr(request, f.name) != f.default)
    fmt = check_request(request.format, request.precision, request.io_kind, given)
    config = load_config(request.run_dir)
    profile = None
    if fmt.name == "tensorrt":
        from .tensorrt import parse_shapes

        channels = generator_channels(config, request.direction)[0]
        profile = parse_shapes(request.shapes, channels, size_multiple(config.G))
    calibration = (
        calibration_set(config, request.direction, request.calib)
        if request.precision in CALIBRATED
        else ImageSet(Path(), [], [])
    )
    student = config.model == "distill"
    gate_sets = (
        holdout_sets(config, request.direction, calibration, request.holdout, request.gate_images)
        if (request.precision in REDUCED or student) and fmt.name != "tensorrt"
        else None
    )
    path = output_path(request, FORMATS["onnx"] if fmt.name == "tensorrt" else fmt)  # TensorRT builds from it
    read = [*run_files(request.run_dir), *calibration.paths, *(p for s in gate_sets or () for p in s.paths)]
    refuse_writing_inputs(planned_files(request, fmt, path, has_temporal_predictor(config)), read)
    with claim_folder(path.parent, f"the export {path.stem}"):
        model, parity, net = verified_onnx(
            request.run_dir, request.direction, request.opset, request.io_kind, PRECISION_ROWS[request.precision].graph
        )
        result = ExportResult(path, parity)
        result.lines = [f"  parity {r.what:>16} {r.shape!s:>18}  max error {r.max_error:.2e}" for r in parity.parity]
        result.lines.append(f"ONNX graph checked: max error {parity.max_error:.2e} (tolerance {parity.tolerance:g})")
        write_predictor = lambda: None  # noqa: E731
        if has_temporal_predictor(config):
            stem = predictor_stem(request, fmt)
            write_predictor = _verified_predictor(request, fmt, path.parent / stem, profile, result.lines)
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
        if fmt.name == "openvino":
            result.quality = _export_openvino(request, model, net, calibration, gate, path, write_predictor)
        else:
            result.quality = _export_onnx(request, model, net, calibration, gate, path, write_predictor)
        if result.quality is not None:
            result.lines.append(f"quality gate passed, {result.quality.summary()}; {quality_path(path).name}")
        size = sum(p.stat().st_size for p in (path, path.with_suffix(".bin")) if p.is_file())
        result.lines.append(f"{path}: {size / 1e6:.2f} MB in {time.perf_counter() - started:.1f} s")
        if fmt.name == "tensorrt":
            result.lines.append(_build_engine(request, path, profile))
        return result


def predictor_stem(request: ExportRequest, fmt: ExportFormat) -> str:
    """predictor_B (fp32) for an A→B generator; TensorRT engines carry their precision."""
    precision = request.precision if fmt.name == "tensorrt" else "fp32"
    return f"predictor_{predicted_domain(request.direction)}" + ("" if precision == "fp32" else f"_{precision}")


def _verified_predictor(
    request: ExportRequest, fmt: ExportFormat, stem_path: Path, profile, lines: list[str]
) -> Callable[[], None]:
    """Build and parity-check the recycle_gan predictor of the generator's output domain in `fmt`
    (fp32; a TensorRT engine at the request's precision); returns the function that writes it,
    called once the generator has passed its own checks and before the generator is written, so
    a generator never links to a missing file and a refused export writes nothing."""
    model, parity, net = verified_predictor_onnx(request.run_dir, request.direction, request.opset)
    config = load_config(request.run_dir)
    worst = max(r.max_error for r in parity)
    lines.append(f"temporal predictor checked: max error {worst:.2e} (tolerance {TOLERANCE[('float', 'fp32')]:g})")
    if fmt.name == "openvino":
        from .openvino import from_onnx, write_ir

        ir = from_onnx(model)
        _check_openvino_parity(ir, net, request, predictor_verification_inputs(config, request.direction))

        def write() -> None:
            path = write_ir(ir, stem_path.with_suffix(".xml"), {p.key: p.value for p in model.metadata_props})
            lines.append(f"{path}: temporal predictor")

        return write

    def write() -> None:
        path = stem_path.with_suffix(".onnx")
        atomic_write_bytes(path, model.SerializeToString())
        lines.append(f"{path}: temporal predictor")
        if fmt.name == "tensorrt":
            from .tensorrt import build_engine

            channels, multiple = 2 * generator_channels(config, request.direction)[1], predictor_multiple(config)
            # one frame pair at a time, the generator's profile sizes rounded up to the predictor's multiple
            up = lambda side: -(-side // multiple) * multiple  # noqa: E731
            shapes = tuple((1, channels, up(h), up(w)) for _, _, h, w in profile)
            engine = path.with_suffix(".engine")
            build_engine(
                path,
                engine,
                shapes,
                request.precision,
                fused=not request.native_instance_norm,
                timing_cache=request.timing_cache,
            )
            lines.append(f"{engine}: temporal predictor")

    return write


def _export_onnx(
    request: ExportRequest,
    model: onnx.ModelProto,
    net: torch.nn.Module,
    calibration: ImageSet,
    gate: QualityGate | None,
    path: Path,
    write_first: Callable[[], None],
) -> QualityReport | None:
    import onnxruntime as ort

    from .quantize import onnx_conv_names, quantize_onnx

    row = PRECISION_ROWS[request.precision]

    def build(keep_fp32: list[int]) -> tuple[onnx.ModelProto, Translate]:
        built = quantize_onnx(model, calibration.batches(), keep_fp32) if row.calibrated else model
        session = ort.InferenceSession(built.SerializeToString(), providers=["CPUExecutionProvider"])
        return built, OnnxRuntimeRunner(session, request.io_kind, row.graph, torch.device("cpu"))

    built, quality = _gated(build, gate, net, calibration, request.precision, onnx_conv_names(model))
    onnx.helper.set_model_props(built, _metadata(model, request.precision, quality))
    write_first()
    atomic_write_bytes(path, built.SerializeToString())
    _write_quality(path, quality)
    return quality


def _export_openvino(
    request: ExportRequest,
    model: onnx.ModelProto,
    net: torch.nn.Module,
    calibration: ImageSet,
    gate: QualityGate | None,
    path: Path,
    write_first: Callable[[], None],
) -> QualityReport | None:
    from .openvino import compile_for_cpu, from_onnx, write_ir
    from .quantize import openvino_conv_names, quantize_openvino

    fp32 = from_onnx(model)
    _check_openvino_parity(fp32, net, request)

    def build(keep_fp32: list[int]):
        calibrated = PRECISION_ROWS[request.precision].calibrated
        built = quantize_openvino(fp32, calibration.batches(), keep_fp32) if calibrated else fp32
        return built, compile_for_cpu(built, request.precision)

    built, quality = _gated(build, gate, net, calibration, request.precision, openvino_conv_names(fp32))
    write_first()
    write_ir(built, path, _metadata(model, request.precision, quality))
    _write_quality(path, quality)
    return quality


def _check_openvino_parity(model, net: torch.nn.Module, request: ExportRequest, inputs=None) -> None:
    """The fp32 IR against the torch network on the ONNX export's verification inputs (default:
    the generator's)."""
    from .onnx import checked_parity
    from .openvino import compile_for_cpu

    compiled = compile_for_cpu(model, "fp32").compiled
    config = load_config(request.run_dir)
    checked_parity(lambda x: compiled([x])[0], net, config, request.direction, engine="OpenVINO", inputs=inputs)


def _gated(
    build: Callable[[list[int]], tuple[object, Translate]],
    gate: QualityGate | None,
    net: torch.nn.Module,
    calibration: ImageSet,
    precision: str,
    conv_names: list[str],
) -> tuple[object, QualityReport | None]:
    """Build with every layer reduced; if the gate fails and the precision is calibrated,
    keep the 1, 2, 4, 8 most sensitive convolutions (measured one by one) in fp32 in turn."""
    built, translate = build([])
    if gate is None:
        return built, None
    report = gate.measure(translate, precision)
    if report.passed:
        return built, report
    first = report
    if precision in CALIBRATED:
        scores = conv_sensitivity(net, [square(image, SENSITIVITY_SIDE)[None] for image in calibration.images[:2]])
        if len(scores) != len(conv_names):
            raise QualityGateError(
                f"{precision} failed the quality gate ({report.summary()}) and its layers could "
                f"not be matched to the graph ({len(scores)} vs {len(conv_names)} convolutions); "
                "nothing written"
            )
        for count in (c for c in FALLBACK_STEPS if c < len(scores)):
            keep = most_sensitive(scores, count)
            built, translate = build(keep)
            report = gate.measure(translate, precision, [conv_names[i] for i in keep])
            if report.passed:
                return built, report
    raise QualityGateError(
        f"{precision} failed the quality gate: {first.summary()}"
        + (
            f"; still {100 * report.fd_change:.2f} % with {len(report.kept_fp32)} most sensitive layers in fp32"
            if report is not first
            else ""
        )
        + "; nothing written (raise --max-fd-change or export fp32)"
    )


def _metadata(model: onnx.ModelProto, precision: str, quality: QualityReport | None) -> dict[str, str]:
    """The ONNX export's metadata (train_config, I/O contract, ...) with the precision written and,
    for a gated one, its quality figures: what every format's file carries."""
    metadata = {p.key: p.value for p in model.metadata_props} | {"precision": precision}
    if quality is not None:
        metadata["quality"] = json.dumps(quality.to_dict())
    return metadata


def _write_quality(path: Path, quality: QualityReport | None) -> None:
    if quality is not None:
        atomic_write_bytes(quality_path(path), (json.dumps(quality.to_dict(), indent=2) + "\n").encode())


def _build_engine(request: ExportRequest, onnx_path: Path, profile) -> str:
    from .tensorrt import build_engine

    engine = onnx_path.with_suffix(".engine")
    sidecar = build_engine(
        onnx_path,
        engine,
        profile,
        request.precision,
        fused=not request.native_instance_norm,
        timing_cache=request.timing_cache,
    )
    return (
        f"{engine}: {sidecar.precision}, {sidecar.fused_plugins} fused instance norms, TensorRT "
        f"{sidecar.tensorrt_version} on {sidecar.gpu}, built in {sidecar.build_seconds:.1f} s"
    )
