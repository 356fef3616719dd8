"""Generator → ONNX: dynamic N/H/W, metadata inside, and a parity check before writing.

The graph is traced with torch's TorchScript exporter, then simplified with onnxslim (the
exporter writes reflection padding as a chain of Shape/Slice/Concat ops; folded, it is one
Pad), checked with onnx's checker and shape inference, and run in ONNX Runtime against the
torch generator on several sizes and on real images. A model whose outputs differ by more
than the tolerance is never written.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from i2i import __version__
from i2i.config import RunConfig
from i2i.errors import ConfigError, UserError
from i2i.image import (
    array_to_model_input,
    pad_to_multiple,
    to_image_arrays,
    to_images,
    to_model_input,
    with_constant_plane,
)
from i2i.io import list_images, read_image
from i2i.nets import size_multiple
from i2i.rundir import (
    class_plane_value,
    condition_channels,
    generator_channels,
    load_generator,
    load_predictor,
    predicted_domain,
    predictor_multiple,
)

MIN_OPSET, MAX_OPSET = 17, 21
TOLERANCE = {("float", "fp32"): 1e-4, ("float", "fp16"): 2e-2, ("uint8", "fp32"): 1.0, ("uint8", "fp16"): 3.0}
INPUT_NAME, OUTPUT_NAME = "image", "translated"
# A recycle_gan generator's metadata names (by stem) the predictor file beside it, in the same format.
PREDICTOR_KEY, PREDICTOR_ROLE = "temporal_predictor", "temporal_predictor"


class ExportError(UserError):
    """The exported model failed its checks and was not written."""


@dataclass
class ParityResult:
    what: str
    shape: tuple[int, ...]
    max_error: float


@dataclass
class ParityReport:
    """The exported graph against the torch generator on every verification input."""

    tolerance: float
    parity: list[ParityResult] = field(default_factory=list)

    @property
    def max_error(self) -> float:
        return max(result.max_error for result in self.parity)


class Uint8Generator(nn.Module):
    """uint8 NHWC in, uint8 NHWC out: normalization, layout and rounding inside the graph,
    so a deployment feeds decoded frames directly."""

    def __init__(self, net: nn.Module, dtype: torch.dtype):
        super().__init__()
        self.net, self.dtype = net, dtype

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return to_images(self.net(to_model_input(image, self.dtype)))


def _trace(module: nn.Module, example: torch.Tensor, opset: int) -> onnx.ModelProto:
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ConfigError(f"opset {opset} is not supported; use {MIN_OPSET}..{MAX_OPSET}")
    buffer = io.BytesIO()
    axes = {0: "N", 1: "H", 2: "W"} if example.dtype == torch.uint8 else {0: "N", 2: "H", 3: "W"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and folding notes
        torch.onnx.export(
            module,
            (example,),
            buffer,
            dynamo=False,
            opset_version=opset,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: axes, OUTPUT_NAME: axes},
            do_constant_folding=True,
        )
    return onnx.load_from_string(buffer.getvalue())


def _simplify(model: onnx.ModelProto) -> onnx.ModelProto:
    import onnxslim

    return onnxslim.slim(model)


def build_onnx(
    net: nn.Module, config: RunConfig, direction: str, opset: int = 17, io_kind: str = "float", precision: str = "fp32"
) -> onnx.ModelProto:
    """Trace, simplify, annotate and check one generator; returns the model (not yet verified)."""
    dtype = torch.float16 if precision == "fp16" else torch.float32
    net = net.to(dtype)
    multiple = size_multiple(config.G)
    side = max(2 * multiple, 16)
    in_nc = generator_channels(config, direction)[0] + condition_channels(config)
    if io_kind == "uint8":
        module: nn.Module = Uint8Generator(net, dtype)
        example = torch.zeros(1, side, side, in_nc, dtype=torch.uint8)
    else:
        module, example = net, torch.zeros(1, in_nc, side, side, dtype=dtype)
    return _annotated(_simplify(_trace(module.eval(), example, opset)), config, direction, multiple, io_kind, precision)


def build_predictor_onnx(net: nn.Module, config: RunConfig, direction: str, opset: int = 17) -> onnx.ModelProto:
    """Trace, simplify, annotate and check the RecycleGAN predictor of `direction`'s output
    domain: frames t−2, t−1 stacked on channels ([N, 2C, H, W] in [-1, 1]) → frame t."""
    multiple = predictor_multiple(config)
    example = torch.zeros(1, 2 * generator_channels(config, direction)[1], multiple, multiple)
    model = _simplify(_trace(net.float().eval(), example, opset))
    return _annotated(model, config, direction, multiple, "float", "fp32", {"role": PREDICTOR_ROLE})


def _annotated(
    model: onnx.ModelProto,
    config: RunConfig,
    direction: str,
    multiple: int,
    io_kind: str,
    precision: str,
    extra: dict[str, str] | None = None,
) -> onnx.ModelProto:
    metadata = {
        "i2i_version": __version__,
        "train_config": json.dumps(config.to_dict()),
        "direction": direction,
        "normalization": config.data.normalization,
        "size_multiple": str(multiple),
        "io": io_kind,
        "precision": precision,
        "export_date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        **(extra or {}),
    }
    onnx.helper.set_model_props(model, metadata)
    model.producer_name, model.producer_version = "i2i", __version__
    onnx.checker.check_model(model, full_check=True)
    return onnx.shape_inference.infer_shapes(model, strict_mode=True)


def read_metadata(model: onnx.ModelProto, source: Path) -> dict[str, str]:
    props = {p.key: p.value for p in model.metadata_props}
    missing = {"train_config", "direction", "io", "size_multiple"} - set(props)
    if missing:
        raise ConfigError(
            f"{source}: not an i2i export (metadata {', '.join(sorted(missing))} missing); export with `i2i export`"
        )
    return props


def smallest_side(multiple: int) -> int:
    """The side of the smallest square every generator takes: a multiple of its size multiple
    that leaves the innermost feature map wide enough for reflection padding."""
    return max(2 * multiple, 16)


def verification_inputs(
    config: RunConfig, direction: str, multiple: int, count: int = 3
) -> list[tuple[str, np.ndarray]]:
    """(label, uint8 NHWC batch) pairs: noise at three sizes, plus up to `count` real images
    of the run's dataset (test split, else train split), each padded to the size multiple,
    when that folder is still there."""
    in_nc = generator_channels(config, direction)[0]
    extra = condition_channels(config)
    side = smallest_side(multiple)
    rng = np.random.default_rng(0)
    inputs = [
        ("noise", rng.integers(0, 256, (n, h, w, in_nc + extra), dtype=np.uint8))
        for n, h, w in ((1, side, side), (2, side, 2 * side), (1, 3 * side, side))
    ]
    domain = "A" if direction == "AtoB" else "B"
    for split in ("test", "train") if config.data.dataroot else ():
        folder = Path(config.data.dataroot) / f"{split}{domain}"
        if folder.is_dir():
            for path in list_images(folder)[:count]:
                image = read_image(path, in_nc)
                if extra:  # class-conditional: the class plane of the first class
                    image = with_constant_plane(image, class_plane_value(config, 0))
                inputs.append((path.name, pad_to_multiple(image[None], multiple)))
            break
    return inputs


def verified_onnx(
    run_dir: Path, direction: str = "AtoB", opset: int = 17, io_kind: str = "float", precision: str = "fp32"
) -> tuple[onnx.ModelProto, ParityReport, nn.Module]:
    """The run's generator for `direction` as ONNX, verified in ONNX Runtime against the
    torch generator (ExportError if it differs); returns it unwritten with its report and
    the fp32 torch generator. Class-conditional generators take the class plane as one more
    input channel."""
    import onnxruntime as ort

    net, config = load_generator(run_dir, direction)
    model = build_onnx(net, config, direction, opset, io_kind, precision)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    reference = net.float()
    parity = checked_parity(
        lambda feed: session.run(None, {INPUT_NAME: feed})[0], reference, config, direction, io_kind, precision
    )
    return model, ParityReport(TOLERANCE[(io_kind, precision)], parity), reference


def predictor_verification_inputs(config: RunConfig, direction: str) -> list[tuple[str, np.ndarray]]:
    """(label, uint8 NHWC batch of frame pairs) at three sizes: noise, and a smooth moving pattern."""
    channels, multiple = generator_channels(config, direction)[1], predictor_multiple(config)
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0 : 2 * multiple, 0:multiple]
    frames = [127.5 + 100 * np.sin((x + 3 * t) / 7.0) * np.cos(y / 11.0) for t in range(2)]
    pair = np.repeat(np.stack(frames, -1), channels, axis=-1)  # t−2's channels, then t−1's
    return [
        ("noise", rng.integers(0, 256, (1, multiple, multiple, 2 * channels), dtype=np.uint8)),
        ("noise", rng.integers(0, 256, (2, multiple, 2 * multiple, 2 * channels), dtype=np.uint8)),
        ("moving pattern", np.round(pair[None]).astype(np.uint8)),
    ]


def verified_predictor_onnx(
    run_dir: Path, direction: str = "AtoB", opset: int = 17
) -> tuple[onnx.ModelProto, list[ParityResult], nn.Module]:
    """The run's temporal predictor of `direction`'s output domain as ONNX (fp32, float I/O),
    verified in ONNX Runtime against the torch predictor (ExportError if it differs); returns
    it unwritten with its parity results and the torch predictor."""
    import onnxruntime as ort

    net, config = load_predictor(run_dir, predicted_domain(direction))
    model = build_predictor_onnx(net, config, direction, opset)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    parity = checked_parity(
        lambda feed: session.run(None, {INPUT_NAME: feed})[0],
        net,
        config,
        direction,
        inputs=predictor_verification_inputs(config, direction),
        engine="predictor",
    )
    return model, parity, net


def checked_parity(
    run: Callable[[np.ndarray], np.ndarray],
    reference: nn.Module,
    config: RunConfig,
    direction: str,
    io_kind: str = "float",
    precision: str = "fp32",
    engine: str = "",
    inputs: list[tuple[str, np.ndarray]] | None = None,
) -> list[ParityResult]:
    """The exported graph as `engine` runs it (`run`: the graph's input array → its output array)
    against the torch `reference` on `inputs` (default: the generator's verification inputs);
    ExportError above the tolerance."""
    if inputs is None:
        inputs = verification_inputs(config, direction, size_multiple(config.G))
    results = [
        ParityResult(what, batch.shape, _max_error(run, reference, batch, io_kind, precision)) for what, batch in inputs
    ]
    tolerance = TOLERANCE[(io_kind, precision)]
    worst = max(results, key=lambda r: r.max_error)
    if worst.max_error > tolerance:
        raise ExportError(
            f"{engine + ' ' if engine else ''}parity check failed: max error {worst.max_error:.3g} on "
            f"{worst.what} {worst.shape} exceeds {tolerance:g}; nothing written"
        )
    return results


def _max_error(run, reference: nn.Module, batch: np.ndarray, io_kind: str, precision: str) -> float:
    with torch.inference_mode():
        x = array_to_model_input(batch)
        expected = reference(x)
    if io_kind == "uint8":
        got = run(batch).astype(np.float64)
        want = to_image_arrays(expected)
        return float(np.abs(got - want).max())
    got = run(x.numpy().astype(np.float16 if precision == "fp16" else np.float32)).astype(np.float64)
    return float(np.abs(got - expected.double().numpy()).max())
