"""How each export format makes its files from the parity-checked ONNX graph: the builds the formats
table names (`ExportFormat.build`). One build per export: it reads what it needs before any work
(TensorRT's shapes), writes the generator (gated where the gate can run), the recycle_gan
predictor it links to, and whatever comes after the graph (TensorRT's engine).
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from pathlib import Path

import onnx
import torch

from i2i.config import RunConfig, load_config
from i2i.io import atomic_write_bytes
from i2i.nets import size_multiple
from i2i.rundir import generator_channels, predictor_multiple
from i2i.runners import OnnxRuntimeRunner

from .calibration import ImageSet
from .formats import PRECISION_ROWS, ExportRequest
from .onnx import checked_parity, predictor_verification_inputs
from .quality import QualityGate, QualityReport, Translate, gated_build


class OnnxBuild:
    """An ONNX file for ONNX Runtime (and OpenVINO), int8 quantized by ONNX Runtime."""

    gated = True  # the quality gate runs the reduced file here, on the CPU

    def __init__(self, request: ExportRequest, config: RunConfig):
        self.request, self.config = request, config

    @property
    def predictor_precision(self) -> str:
        """The precision of the linked predictor's file: fp32 (it is small and runs once a frame)."""
        return "fp32"

    def write(
        self,
        model: onnx.ModelProto,
        net: torch.nn.Module,
        calibration: ImageSet,
        gate: QualityGate | None,
        path: Path,
        write_first: Callable[[], None],
    ) -> QualityReport | None:
        """Make the generator's file at the request's precision, gate it, call `write_first` (the
        predictor), then write it; returns the gate's report."""
        import onnxruntime as ort

        from .quantize import onnx_conv_names, quantize_onnx

        row = PRECISION_ROWS[self.request.precision]

        def build(keep_fp32: list[int]) -> tuple[onnx.ModelProto, Translate]:
            built = quantize_onnx(model, calibration.batches(), keep_fp32) if row.calibrated else model
            session = ort.InferenceSession(built.SerializeToString(), providers=["CPUExecutionProvider"])
            return built, OnnxRuntimeRunner(session, self.request.io_kind, row.graph, torch.device("cpu"))

        built, quality = gated_build(build, gate, net, calibration, self.request.precision, onnx_conv_names(model))
        onnx.helper.set_model_props(built, metadata(model, self.request.precision, quality))
        write_first()
        atomic_write_bytes(path, built.SerializeToString())
        return quality

    def predictor(
        self, model: onnx.ModelProto, net: torch.nn.Module, stem: Path, lines: list[str]
    ) -> Callable[[], None]:
        """The function that writes the parity-checked predictor `model` at `stem` in this format."""

        def write() -> None:
            path = stem.with_suffix(".onnx")
            atomic_write_bytes(path, model.SerializeToString())
            lines.append(f"{path}: temporal predictor")

        return write

    def finish(self, path: Path) -> str | None:
        """What comes after the generator's file is written; a line saying what it made."""
        return None


class OpenVinoBuild(OnnxBuild):
    """OpenVINO IR (.xml + .bin), parity-checked as OpenVINO runs it, int8 quantized by NNCF."""

    def write(self, model, net, calibration, gate, path, write_first):
        from .openvino import compile_for_cpu, from_onnx, write_ir
        from .quantize import openvino_conv_names, quantize_openvino

        fp32 = from_onnx(model)
        self._check_parity(fp32, net)
        calibrated = PRECISION_ROWS[self.request.precision].calibrated

        def build(keep_fp32: list[int]):
            built = quantize_openvino(fp32, calibration.batches(), keep_fp32) if calibrated else fp32
            return built, compile_for_cpu(built, self.request.precision)

        built, quality = gated_build(build, gate, net, calibration, self.request.precision, openvino_conv_names(fp32))
        write_first()
        write_ir(built, path, metadata(model, self.request.precision, quality))
        return quality

    def predictor(self, model, net, stem, lines):
        from .openvino import from_onnx, write_ir

        ir = from_onnx(model)
        self._check_parity(ir, net, predictor_verification_inputs(self.config, self.request.direction))

        def write() -> None:
            path = write_ir(ir, stem.with_suffix(".xml"), {p.key: p.value for p in model.metadata_props})
            lines.append(f"{path}: temporal predictor")

        return write

    def _check_parity(self, ir, net: torch.nn.Module, inputs=None) -> None:
        """The fp32 IR against the torch network on the ONNX export's verification inputs (default:
        the generator's)."""
        from .openvino import compile_for_cpu

        compiled = compile_for_cpu(ir, "fp32").compiled
        r = self.request
        checked_parity(lambda x: compiled([x])[0], net, self.config, r.direction, engine="OpenVINO", inputs=inputs)


class TensorRtBuild(OnnxBuild):
    """A TensorRT engine, built on the GPU from the ONNX file written beside it, with its sidecar.
    The engine only runs on a GPU, so the CPU-side quality gate does not run."""

    gated = False

    def __init__(self, request: ExportRequest, config: RunConfig):
        super().__init__(request, config)
        from .tensorrt import parse_shapes

        channels = generator_channels(config, request.direction)[0]
        self.profile = parse_shapes(request.shapes, channels, size_multiple(config.G))

    @property
    def predictor_precision(self) -> str:
        return self.request.precision  # its engine is built at the generator's precision

    def predictor(self, model, net, stem, lines):
        write_onnx = super().predictor(model, net, stem, lines)
        channels = 2 * generator_channels(self.config, self.request.direction)[1]
        multiple = predictor_multiple(self.config)
        # one frame pair at a time, the generator's profile sizes rounded up to the predictor's multiple
        up = lambda side: -(-side // multiple) * multiple  # noqa: E731
        shapes = tuple((1, channels, up(h), up(w)) for _, _, h, w in self.profile)

        def write() -> None:
            write_onnx()
            self._engine(stem.with_suffix(".onnx"), shapes)
            lines.append(f"{stem.with_suffix('.engine')}: temporal predictor")

        return write

    def finish(self, path: Path) -> str:
        engine = path.with_suffix(".engine")
        sidecar = self._engine(path, self.profile)
        return (
            f"{engine}: {sidecar.precision}, {sidecar.fused_plugins} fused instance norms, TensorRT "
            f"{sidecar.tensorrt_version} on {sidecar.gpu}, built in {sidecar.build_seconds:.1f} s"
        )

    def _engine(self, onnx_path: Path, shapes):
        from . import tensorrt

        r = self.request
        return tensorrt.build_engine(
            onnx_path,
            onnx_path.with_suffix(".engine"),
            shapes,
            r.precision,
            fused=not r.native_instance_norm,
            timing_cache=r.timing_cache,
        )


def metadata(model: onnx.ModelProto, precision: str, quality: QualityReport | None) -> dict[str, str]:
    """The ONNX export's metadata (train_config, I/O contract, ...) with the precision written and,
    for a gated one, its quality figures: what every format's file carries."""
    values = {p.key: p.value for p in model.metadata_props} | {"precision": precision}
    if quality is not None:
        values["quality"] = json.dumps(quality.to_dict())
    return values


def load_build(request: ExportRequest, build: str) -> OnnxBuild:
    """The build a format row names ("module:Class"), for `request` on its run's config."""
    module, name = build.split(":")
    return getattr(importlib.import_module(module), name)(request, load_config(request.run_dir))
