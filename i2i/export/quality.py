"""The quality gate of reduced-precision exports, and per-layer sensitivity to int8.

Gate: held-out images are translated by the fp32 generator and by the reduced model; the
reduced outputs are compared with the fp32 ones (PSNR) and both sets with real target images
through Fréchet distance on `i2i eval`'s extractor. The gate fails when the FD moves by more
than the allowed fraction. A distilled student's export (any precision) is also compared with
its teacher: the FD between the exported student's outputs and the teacher's, relative to the
teacher's own FD to the real targets, must stay under its limit — the student is judged by the
translator it replaces, not only by its own fp32 graph.

Sensitivity: each convolution of the torch generator is quantized alone (int8 per-channel
weights, uint8 input over its calibrated range), the rest stays fp32, and the output's PSNR
against fp32 on calibration images measures how much that layer costs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn

from i2i.errors import UserError
from i2i.evaluation.evaluate import Measured, Reference, evaluate, measure_images
from i2i.evaluation.metrics import make_extractor

from .calibration import ImageSet, square
from .formats import CALIBRATED, ExportRequest

FALLBACK_STEPS = (1, 2, 4, 8)  # how many of the most sensitive convolutions to keep in fp32, in turn
SENSITIVITY_SIDE = 128  # per-layer measurement on smaller crops: 24 forward passes for a ResNet-9
Translate = Callable[[np.ndarray], np.ndarray]  # uint8 NHWC batch → uint8 NHWC batch
EXTRACTOR = "efficientnet-lite0"


class QualityGateError(UserError):
    """A reduced-precision export changed the outputs more than allowed; nothing was written."""


def psnr_uint8(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


@dataclass
class QualityReport:
    precision: str
    images: int
    psnr_mean_db: float
    psnr_min_db: float
    fd_fp32: float
    fd_reduced: float
    fd_change: float  # |fd_reduced − fd_fp32| / fd_fp32
    max_fd_change: float
    extractor: str = EXTRACTOR
    kept_fp32: list[str] = field(default_factory=list)  # layers left in higher precision
    teacher: "TeacherComparison | None" = None  # a distilled student's export only

    @property
    def passed(self) -> bool:
        return self.fd_change <= self.max_fd_change and (self.teacher is None or self.teacher.passed)

    def to_dict(self) -> dict:
        return asdict(self) | {"passed": self.passed} | ({"teacher": self.teacher.to_dict()} if self.teacher else {})

    def summary(self) -> str:
        kept = f", {len(self.kept_fp32)} layers kept in fp32" if self.kept_fp32 else ""
        teacher = f"; {self.teacher.summary()}" if self.teacher else ""
        return (
            f"{self.precision}: FD change {100 * self.fd_change:.2f} % (limit {100 * self.max_fd_change:g} %), "
            f"PSNR vs fp32 {self.psnr_mean_db:.1f} dB (min {self.psnr_min_db:.1f}) on {self.images} held-out "
            f"images{kept}{teacher}"
        )


@dataclass
class TeacherComparison:
    """An exported student's outputs against its teacher's on the same held-out images."""

    fd_teacher: float  # the teacher's outputs to the real targets
    fd_student: float  # the exported student's outputs to the real targets
    fd_to_teacher: float  # the exported student's outputs to the teacher's outputs
    psnr_mean_db: float  # the exported student's outputs against the teacher's
    max_change: float

    @property
    def change(self) -> float:
        """How far the student is from its teacher, in units of the teacher's distance to the target."""
        return self.fd_to_teacher / self.fd_teacher

    @property
    def passed(self) -> bool:
        return self.change <= self.max_change

    def to_dict(self) -> dict:
        return asdict(self) | {"change": self.change, "passed": self.passed}

    def summary(self) -> str:
        return (
            f"vs teacher: FD to its outputs {self.fd_to_teacher:.1f} = {100 * self.change:.1f} % of its own FD "
            f"{self.fd_teacher:.1f} (limit {100 * self.max_change:g} %), FD to the targets {self.fd_student:.1f}, "
            f"PSNR {self.psnr_mean_db:.1f} dB"
        )


class QualityGate:
    """fp32 outputs and target features are computed once; `measure` rates one reduced model."""

    def __init__(
        self,
        reference: Translate,
        held_out: ImageSet,
        target: ImageSet,
        max_fd_change: float,
        teacher: Translate | None = None,
        max_teacher_change: float = ExportRequest.max_teacher_change,
    ):
        self.held_out, self.max_fd_change, self.max_teacher_change = held_out, max_fd_change, max_teacher_change
        self.extract = make_extractor(EXTRACTOR)
        self.reference_outputs = [reference(batch) for batch in held_out.batches()]
        # The gate compares Fréchet distances only: spectra are not measured.
        self.target = Reference(measure_images(target.images, self.extract, lattice=False), EXTRACTOR)
        self.fd_fp32 = self._fd(self._measure(self.reference_outputs), self.target)
        self.teacher = None  # a distilled student's teacher: its outputs as a second reference
        if teacher is not None:
            self.teacher_outputs = [teacher(batch) for batch in held_out.batches()]
            self.teacher = Reference(self._measure(self.teacher_outputs), EXTRACTOR)
            self.fd_teacher = self._fd(self.teacher.real, self.target)

    def _measure(self, outputs: list[np.ndarray]) -> Measured:
        return measure_images((image for batch in outputs for image in batch), self.extract, lattice=False)

    @staticmethod
    def _fd(measured: Measured, reference: Reference) -> float:
        return evaluate(measured, reference)["frechet_distance"]

    def measure(self, reduced: Translate, precision: str, kept_fp32: list[str] = ()) -> QualityReport:
        outputs = [reduced(batch) for batch in self.held_out.batches()]
        psnrs = [psnr_uint8(a, b) for a, b in zip(outputs, self.reference_outputs)]
        measured = self._measure(outputs)
        fd = self._fd(measured, self.target)
        teacher = None
        if self.teacher is not None:
            teacher = TeacherComparison(
                self.fd_teacher,
                fd,
                self._fd(measured, self.teacher),
                float(np.mean([psnr_uint8(a, b) for a, b in zip(outputs, self.teacher_outputs)])),
                self.max_teacher_change,
            )
        return QualityReport(
            precision,
            len(outputs),
            float(np.mean(psnrs)),
            float(np.min(psnrs)),
            self.fd_fp32,
            fd,
            abs(fd - self.fd_fp32) / self.fd_fp32,
            self.max_fd_change,
            kept_fp32=list(kept_fp32),
            teacher=teacher,
        )


def _fake_quantize(x: torch.Tensor, low: torch.Tensor, high: torch.Tensor, levels: int) -> torch.Tensor:
    scale = (high - low).clamp_min(1e-8) / (levels - 1)
    return ((x.clamp(low, high) - low) / scale).round() * scale + low


def _int8_weight(weight: torch.Tensor, channel_dim: int) -> torch.Tensor:
    dims = [d for d in range(weight.dim()) if d != channel_dim]
    bound = weight.abs().amax(dim=dims, keepdim=True)
    return _fake_quantize(weight, -bound, bound, 255)  # symmetric int8, per output channel


@torch.inference_mode()
def conv_sensitivity(net: nn.Module, images: list[np.ndarray]) -> list[float]:
    """PSNR (dB) of the output against fp32 when only that convolution is int8, one figure per
    convolution in execution order (the order of the Conv nodes in the exported graphs)."""
    net = net.float().eval()
    x = torch.from_numpy(np.concatenate(images)).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    order: list[nn.Module] = []
    ranges: dict[nn.Module, tuple[torch.Tensor, torch.Tensor]] = {}

    def observe(module, inputs):
        if module not in ranges:
            order.append(module)
        low, high = inputs[0].min(), inputs[0].max()
        old = ranges.get(module, (low, high))
        ranges[module] = (torch.minimum(old[0], low), torch.maximum(old[1], high))

    convs = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    hooks = [m.register_forward_pre_hook(observe) for m in convs]
    reference = net(x)
    for hook in hooks:
        hook.remove()
    scores = []
    for module in order:
        low, high = ranges[module]
        hook = module.register_forward_pre_hook(
            lambda m, inputs, low=low, high=high: (_fake_quantize(inputs[0], low, high, 256),)
        )
        original = module.weight.data
        module.weight.data = _int8_weight(original, 1 if isinstance(module, nn.ConvTranspose2d) else 0)
        try:
            error = float(((net(x) - reference) ** 2).mean())
        finally:
            module.weight.data = original
            hook.remove()
        scores.append(float("inf") if error == 0 else 10 * np.log10(4.0 / error))
    return scores


def most_sensitive(scores: list[float], count: int) -> list[int]:
    """Indexes of the `count` convolutions whose lone quantization hurts most."""
    return sorted(range(len(scores)), key=lambda i: scores[i])[:count]


def gated_build(
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
