"""The command line's vocabulary: its parameter types, the options several commands share, and
the options that each set train_config.json fields, declared once with their keys — their type
and the default in their help are read off the schema (i2i/config.py), and a range error about a
field names the option that set it."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import click

from .config import DATASET_MODES, DISCRIMINATORS, GAN_MODES, GENERATORS, TRAIN_PRECISIONS, RunConfig
from .errors import ConfigError


class Finite(click.FloatRange):
    """A float option in a range that also refuses nan and ±inf (which compare false with any
    bound, so click's own range lets them through)."""

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number

    def _describe_range(self) -> str:
        return "finite" if self.min is None and self.max is None else super()._describe_range()


class PositiveInts(click.ParamType):
    """Comma-separated positive integers, written in ASCII digits: 1,4,8."""

    name = "n,n,..."

    def convert(self, value, param, ctx):
        if isinstance(value, list):
            return value
        items = [item.strip() for item in str(value).split(",")]
        if not all(re.fullmatch(r"[0-9]{1,6}", item) and int(item) > 0 for item in items):
            self.fail(f"{value!r}: expected positive whole numbers separated by commas, e.g. 1,4", param, ctx)
        return [int(item) for item in items]


class RegistryChoice(click.Choice):
    """The names of a library registry ("module:NAME", a dict or tuple) as a click choice, read
    when first needed: options offer what the library accepts, and `i2i --help` imports
    nothing heavy. A new registry (e.g. export formats) plugs in the same way."""

    def __init__(self, registry: str):
        self.registry, self.case_sensitive = registry, True

    @functools.cached_property
    def choices(self) -> tuple[str, ...]:
        module, name = self.registry.split(":")
        return tuple(getattr(importlib.import_module(module), name))


@dataclass(frozen=True)
class FieldOption:
    """An option that sets train_config.json `keys` (all to the same value)."""

    flag: str
    keys: tuple[str, ...]
    help: str
    choices: click.ParamType | None = None
    flag_value: Any = None  # a flag (no value) that sets this
    convert: Callable[[Any], Any] = lambda value: value

    @property
    def name(self) -> str:  # the click parameter
        return self.flag.lstrip("-").replace("-", "_").lower()


def _field(key: str) -> dataclasses.Field:
    section: Any = RunConfig
    *path, last = key.split(".")
    for part in path:
        section = next(f for f in dataclasses.fields(section) if f.name == part).default_factory
    return next(f for f in dataclasses.fields(section) if f.name == last)


FIELD_OPTIONS = {
    option.flag: option
    for option in (
        FieldOption(
            "--model",
            ("model",),
            "cycle_gan (two generators, cycle loss), cut or fastcut (one generator, PatchNCE), recycle_gan (CycleGAN "
            "on video clips with temporal predictors).",
            RegistryChoice("i2i.training.models:NAMES"),
        ),
        FieldOption("--size", ("data.crop_size",), "Training crop size in pixels."),
        FieldOption("--load-size", ("data.load_size",), "Resize to this before cropping.  [default: size × 286/256]"),
        FieldOption("--steps", ("train.steps",), "Optimizer steps."),
        FieldOption("--batch-size", ("train.batch_size",), "Images per step and process."),
        FieldOption("--netG", ("G.netG",), "Generator architecture.", click.Choice(GENERATORS)),
        FieldOption("--ngf", ("G.ngf",), "Generator width (filters in the first layer)."),
        FieldOption(
            "--netD",
            ("D.netD",),
            "Discriminator: a PatchGAN, heads on frozen pretrained EfficientNet-Lite1 features (projected), or both.",
            click.Choice(DISCRIMINATORS),
        ),
        FieldOption("--ndf", ("D.ndf",), "Discriminator width."),
        FieldOption(
            "--residual",
            ("G.residual",),
            "ResNet generators: predict a change to the input, starting from the identity (keeps detail sharp in "
            "short runs).",
            flag_value=True,
        ),
        FieldOption(
            "--affine-warp",
            ("G.affine_warp",),
            "ResNet generators: learn a global affine warp of the input first, for domains that differ in "
            "position/scale (e.g. MNIST → USPS).",
            flag_value=True,
        ),
        FieldOption(
            "--channels",
            ("data.input_nc", "data.output_nc"),
            "Image channels of both domains (1 = grayscale).",
            click.Choice(["1", "3"]),
            convert=int,
        ),
        FieldOption("--gan-mode", ("train.gan_mode",), "Adversarial loss.", click.Choice(GAN_MODES)),
        FieldOption("--lr", ("train.lr",), "Adam learning rate."),
        FieldOption("--seed", ("train.seed",), "Random seed; the same seed gives the same run."),
        FieldOption("--workers", ("data.num_workers",), "Data-loader worker processes."),
        FieldOption("--save-every", ("train.save_every",), "Checkpoint every N steps."),
        FieldOption("--sample-every", ("train.sample_every",), "Write a sample grid every N steps."),
        FieldOption("--log-every", ("train.log_every",), "Log averaged losses every N steps."),
        FieldOption(
            "--eval-every",
            ("train.eval_every",),
            "Every N steps, FD/KID of translated test A to test B in TensorBoard and RUN/eval.jsonl.  [default: off]",
        ),
        FieldOption(
            "--no-flip", ("data.flip",), "Disable random horizontal flips (e.g. for digits or text).", flag_value=False
        ),
        FieldOption(
            "--dataset-mode",
            ("data.dataset_mode",),
            "unaligned images, or JoliGEN labelled layouts: class folders, bbox files, mask PNGs; temporal (clips) "
            "is recycle_gan's and its default.",
            click.Choice(DATASET_MODES),
        ),
        FieldOption(
            "--semantic-nc",
            ("data.semantic_nc",),
            "bbox/mask: number of labels including background 0.  [class: from the folders]",
        ),
        FieldOption(
            "--skip-bad",
            ("data.skip_bad",),
            "Leave out samples with bad labels (listed in RUN/skipped_samples.txt) instead of stopping.",
            flag_value=True,
        ),
        FieldOption(
            "--precision",
            ("train.precision",),
            "auto = bf16 autocast on CUDA, fp32 on CPU.",
            click.Choice(TRAIN_PRECISIONS),
        ),
        FieldOption(
            "--class-consistency",
            ("alg.semantic.lambda_source_class",),
            "cycle_gan on unaligned data whose trainA names end in _<label> (e.g. 00001_7.png): weight of a loss "
            "that keeps each translation's class as read by a classifier trained on those labels, then frozen "
            "(CyCADA's semantic consistency; no labels of B needed).  [default: off]",
        ),
    )
}


def field_options(*flags: str, defaults: dict[str, str] | None = None) -> Callable:
    """Click options for FIELD_OPTIONS `flags`, in that order: unset (None) unless given, typed and
    with their default as the schema states it (or as `defaults` says, for commands whose
    defaults come from elsewhere)."""

    def decorate(command: Callable) -> Callable:
        for flag in reversed(flags):
            option = FIELD_OPTIONS[flag]
            field = _field(option.keys[0])
            default = (defaults or {}).get(flag)
            if default is None and "[default:" not in option.help and option.flag_value is None:
                value = field.default_factory() if field.default is dataclasses.MISSING else field.default
                default = value
            text = option.help + (f"  [default: {default}]" if default is not None else "")
            if option.flag_value is not None:
                command = click.option(option.flag, option.name, is_flag=True, default=None, help=text)(command)
            else:
                kind = option.choices or (Finite() if field.type in ("float", float) else int)
                kind = str if field.type in ("str", str) and option.choices is None else kind
                command = click.option(option.flag, option.name, type=kind, help=text)(command)
        return command

    return decorate


def given_fields(ctx: click.Context) -> dict[str, FieldOption]:
    """The FIELD_OPTIONS typed on this command line, by parameter name."""
    by_name = {option.name: option for option in FIELD_OPTIONS.values()}
    return {
        name: by_name[name]
        for name in ctx.params
        if name in by_name and ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE
    }


def field_values(ctx: click.Context) -> dict[str, Any]:
    """train_config.json key → value, for every field option typed on this command line."""
    values = {}
    for name, option in given_fields(ctx).items():
        value = option.flag_value if option.flag_value is not None else option.convert(ctx.params[name])
        values.update(dict.fromkeys(option.keys, value))
    return values


def nested(values: dict[str, Any], into: dict[str, Any] | None = None) -> dict[str, Any]:
    """Dotted keys as train_config.json's nested sections, over `into`."""
    raw = into if into is not None else {}
    for key, value in values.items():
        *sections, last = key.split(".")
        target = raw
        for part in sections:
            target = target.setdefault(part, {})
        target[last] = value
    return raw


@contextlib.contextmanager
def naming_options(ctx: click.Context) -> Iterator[None]:
    """A config error about a field set by an option names that option first: the user typed
    --workers, not data.num_workers."""
    try:
        yield
    except ConfigError as error:
        key = str(error).split(" ", 1)[0]
        flag = next((o.flag for o in given_fields(ctx).values() if key in o.keys), None)
        if flag is None:
            raise
        raise ConfigError(f"{flag}: {error}") from None


def direction_option(help: str = "Which generator to use.") -> Callable:
    return click.option(
        "--direction", type=click.Choice(["AtoB", "BtoA"]), default="AtoB", show_default=True, help=help
    )


def batch_size_option(default: int, help: str) -> Callable:
    return click.option("--batch-size", type=click.IntRange(min=1), default=default, show_default=True, help=help)


def device_option(command: Callable) -> Callable:
    return click.option("--device", default="cpu", show_default=True, help="torch device: cpu, cuda, cuda:1 ...")(
        command
    )


def backend_option(command: Callable) -> Callable:
    return click.option(
        "--backend",
        type=RegistryChoice("i2i.runtime.predictor:BACKENDS"),
        default="auto",
        show_default=True,
        help="torch = PyTorch eager; triton = fused Triton kernels (CUDA); onnxruntime = an .onnx MODEL; openvino = "
        "an .xml (or .onnx) MODEL; tensorrt = an .engine MODEL; auto = on the CPU the fastest installed one, timed "
        "on the first batch; on CUDA by file type, triton for runs.",
    )(command)


MAX_PIXELS_HELP = (
    "Refuse images (and video frames) above this many pixels, read from the header before decoding.  "
    "[default: 50000000, with --tile 500000000]"
)
