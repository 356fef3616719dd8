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
from pathlib import Path
from typing import Any

import click

from .config import (
    DATASET_MODES,
    DISCRIMINATORS,
    DISTILL_STEPS,
    GAN_MODES,
    GENERATORS,
    RESUMABLE,
    TRAIN_PRECISIONS,
    RunConfig,
)
from .errors import ConfigError
from .export.formats import ExportRequest


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
            "--flow-warp",
            ("G.flow_warp",),
            "Residual ResNet generators: also learn a displacement per pixel of at most this many pixels, "
            "resampling the input before the change (objects that differ in size or stroke; 0 = off).",
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
# The options a resumed run may change: those setting only resumable keys.
RESUMABLE_FLAGS = tuple(o.flag for o in FIELD_OPTIONS.values() if set(o.keys) <= set(RESUMABLE))


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


def options(*decorators: Callable) -> Callable:
    """One decorator applying `decorators` in order: the options appear in `--help` as listed."""

    def decorate(command: Callable) -> Callable:
        for decorator in reversed(decorators):
            command = decorator(command)
        return command

    return decorate


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

EXPORT = ExportRequest(Path())  # the defaults the export options show


# Each command's options, in the order `--help` lists them.

train_options = options(
    click.option(
        "--out",
        "run_dir",
        type=click.Path(path_type=Path),
        help="Run directory to create.  [default: runs/<DATA name>-<model>]",
    ),
    click.option(
        "--resume",
        "resume_dir",
        type=click.Path(path_type=Path),
        help="Continue the run in this directory from its newest checkpoint.",
    ),
    click.option(
        "--config",
        "config_file",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="JSON file with train_config.json keys (G, D, data, train, alg) to start from; options below override it.",
    ),
    click.option(
        "--preset",
        type=RegistryChoice("i2i.training.configure:PRESETS"),
        help="Settings measured for a purpose, under --config and the options: short = CPU budgets of minutes "
        "to hours, for cycle_gan and cut (identity-started resize-convolution generator, DiffAugment; "
        "CycleGAN: cycle weight 2, no identity loss; CUT: spectral-norm discriminator).",
    ),
    field_options(*FIELD_OPTIONS),
)  # i2i train

distill_options = options(
    click.option(
        "--out",
        "run_dir",
        type=click.Path(path_type=Path),
        help="Student run directory to create.  [default: runs/<TEACHER_RUN name>-student]",
    ),
    click.option(
        "--netG", "net_g", type=click.Choice(GENERATORS), help="Student architecture.  [default: the teacher's ResNet]"
    ),
    click.option("--ngf", type=click.IntRange(min=1), help="Student width.  [default: the teacher's / 4, at least 8]"),
    direction_option("The teacher's direction to learn."),
    click.option(
        "--data",
        type=click.Path(exists=True, file_okay=False, path_type=Path),
        help="Folder with trainA/, trainB/ to distil on instead of the teacher's (needed for an imported teacher).",
    ),
    click.option(
        "--extra-sources",
        multiple=True,
        type=click.Path(exists=True, file_okay=False, path_type=Path),
        help="More source-domain images (repeatable): unlabelled photos are free training targets.",
    ),
    click.option(
        "--config",
        "config_file",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="JSON with train_config.json keys over the derived ones (e.g. alg.distill.lambda_GAN).",
    ),
    field_options(
        "--steps",
        "--batch-size",
        "--size",
        "--seed",
        "--workers",
        "--save-every",
        "--sample-every",
        "--log-every",
        defaults={"--steps": DISTILL_STEPS}
        | dict.fromkeys(("--batch-size", "--size", "--seed", "--workers"), "teacher's"),
    ),
)  # i2i distill

generate_options = options(
    direction_option(),
    batch_size_option(8, "Images per forward pass (equal sizes are batched)."),
    device_option,
    backend_option,
    click.option(
        "--precision",
        type=RegistryChoice("i2i.runtime.predictor:PRECISIONS"),
        default="fp32",
        show_default=True,
        help="Inference precision (fp16 needs CUDA).",
    ),
    click.option("--resume", is_flag=True, help="Skip inputs whose output already exists."),
    click.option("--strict", is_flag=True, help="Stop at the first unreadable image instead of skipping it."),
    click.option(
        "--shard", help="i/n: process every n-th input starting at i (0-based). Under torchrun: RANK/WORLD_SIZE."
    ),
    click.option(
        "--workers",
        type=click.IntRange(min=1),
        default=2,
        show_default=True,
        help="Decoding and encoding threads each.",
    ),
    click.option("--max-pixels", type=click.IntRange(min=1), help=MAX_PIXELS_HELP),
    click.option(
        "--tile",
        type=click.IntRange(min=1),
        help="Translate images larger than TILE×TILE pixels in overlapping tiles (torch "
        "backend), for images too large for memory.",
    ),
    click.option(
        "--overlap",
        type=click.IntRange(min=0),
        default=32,
        show_default=True,
        help="Pixels each tile reaches into its neighbours.",
    ),
    click.option(
        "--tile-stats",
        type=RegistryChoice("i2i.runtime.tiling:TILE_STATS"),
        default="exact",
        show_default=True,
        help="exact = instance-norm statistics of the whole image (no seams; ~L/2 extra passes for L norm "
        "layers); tile = each tile's own (one pass, tone may shift between tiles).",
    ),
    click.option(
        "--ray",
        "ray_address",
        is_flag=False,
        flag_value="auto",
        metavar="[ADDRESS]",
        help="Run on a Ray cluster (pip install 'i2i[ray]'): `--ray` joins the running one or starts a local "
        "one, `--ray HOST:PORT` joins that one. Put it last, after OUTPUT_DIR.",
    ),
    click.option("--actors", help="--ray: predictor actors, N or MIN-MAX (autoscaling).  [default: 1-CPUs, or 1-GPUs]"),
)  # i2i generate

video_options = options(
    click.option(
        "--temporal",
        type=RegistryChoice("i2i.runtime.video:TEMPORAL_MODES"),
        default="none",
        show_default=True,
        help="none = per frame; recycle = hold each frame near the RecycleGAN predictor's forecast (MODEL: a "
        "recycle_gan run or its exported generator); flow = near the previous output moved along the optical flow; "
        "hybrid = flow, with the predictor's forecast where the flow is not trusted (see --strength, --cutoff).",
    ),
    click.option(
        "--report",
        is_flag=True,
        help="Measure flicker (vs the per-frame output) into NAME.report.json and "
        "NAME.report.png beside OUTPUT (styled.mp4 → styled.report.json).",
    ),
    direction_option(),
    device_option,
    backend_option,
    batch_size_option(4, "Frames per forward pass."),
    click.option("--max-frames", type=click.IntRange(min=1), help="Stop after this many frames."),
    click.option(
        "--max-pixels",
        type=click.IntRange(min=1),
        help="Refuse a video whose frames have more pixels than this.  [default: 50000000]",
    ),
    click.option(
        "--strength",
        type=Finite(0, 1),
        help="recycle/flow/hybrid: share of each frame's disagreement with the temporal guess taken away, the "
        "largest first (0 = the per-frame output, 1 = the guess); each mode's default is tuned in "
        "benchmarks/results/video.md.  [default: 0.5]",
    ),
    click.option(
        "--cutoff",
        type=Finite(min=0),
        help="recycle/flow/hybrid: disagreement with the guess (grey levels) beyond which the per-frame output "
        "is kept.  [default: 120]",
    ),
)  # i2i video

eval_options = options(
    click.option(
        "--train-real",
        type=click.Path(path_type=Path),
        help="Target-domain training images: adds MiFID (memorization).",
    ),
    click.option(
        "--extractor",
        type=RegistryChoice("i2i.evaluation.metrics:EXTRACTORS"),
        default="efficientnet-lite0",
        show_default=True,
        help="Feature network (efficientnet-lite0 works offline; inception is the standard FID one).",
    ),
    click.option(
        "--target-train",
        type=click.Path(path_type=Path),
        help="Label preservation: labelled real target images to train the classifier on.",
    ),
    click.option(
        "--target-test",
        type=click.Path(path_type=Path),
        help="Label preservation: labelled real target images to check the classifier on.",
    ),
    click.option(
        "--sources",
        type=click.Path(path_type=Path),
        help="The untranslated inputs: the baseline of FD/KID (with REAL) and of label preservation.",
    ),
    click.option(
        "--judges",
        type=click.IntRange(min=1),
        default=1,
        show_default=True,
        help="Label preservation and --transfer: classifiers to train per training set (seeds 0…N−1); "
        "accuracies are their mean, with the spread.",
    ),
    click.option(
        "--transfer",
        is_flag=True,
        help="Also train classifiers on the labelled GENERATED images (and on --sources, the baseline) and "
        "report how well they read --target-test: their worth as synthetic training data.",
    ),
    click.option(
        "--label-channels",
        type=click.Choice(["1", "3"]),
        default="1",
        show_default=True,
        help="Label preservation and --transfer: read the images as grey (1) or colour (3).",
    ),
    device_option,
    click.option("--json", "json_path", type=click.Path(path_type=Path), help="Also write the numbers here."),
    click.option(
        "--sheet",
        type=click.Path(path_type=Path),
        help="Write a contact sheet PNG here: the first 8 translations by name, their --sources inputs and "
        "their centres zoomed 4x.",
    ),
)  # i2i eval

bench_options = options(
    click.option(
        "--run",
        "run_dir",
        type=click.Path(path_type=Path),
        help="Benchmark this run's generator (default: random weights).",
    ),
    click.option(
        "--model",
        "model_file",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="Benchmark this exported .onnx / .engine against eager torch on the same architecture.",
    ),
    click.option("--netG", "net_g", type=click.Choice(GENERATORS), default="resnet_9blocks", show_default=True),
    click.option("--ngf", type=click.IntRange(1, 1024), default=64, show_default=True),
    click.option(
        "--sizes", default="256", show_default=True, help="Comma-separated square resolutions: 256,512 or 256x256."
    ),
    click.option("--batches", type=PositiveInts(), default="1", show_default=True, help="Comma-separated batch sizes."),
    click.option(
        "--photos", type=click.Path(path_type=Path), help="Real photos for int8 calibration and its quality check."
    ),
    click.option("--repeats", type=click.IntRange(min=1), default=20, show_default=True),
    click.option(
        "--estimate",
        "estimate_device",
        type=RegistryChoice("i2i.benchmarks.roofline:DEVICES"),
        help="Also print the roofline floor on this device.",
    ),
    click.option(
        "--efficiency",
        type=Finite(0, 1, min_open=True),
        help="With --estimate: measured fraction of the floor, turns it into a labelled estimate.",
    ),
    click.option(
        "--train",
        "train_data",
        type=click.Path(path_type=Path),
        help="Instead: training steps/s of cycle_gan, cut and fastcut on this dataset.",
    ),
    click.option(
        "--out",
        "out_dir",
        type=click.Path(path_type=Path),
        default=Path("bench"),
        show_default=True,
        help="Folder for bench.json and bench.png.",
    ),
)  # i2i bench

export_options = options(
    click.option(
        "--format", default=EXPORT.format, show_default=True, help="onnx, openvino or tensorrt (see --formats)."
    ),
    click.option(
        "--precision",
        type=RegistryChoice("i2i.export.formats:PRECISIONS"),
        default=EXPORT.precision,
        show_default=True,
        help="Reduced precisions pass a quality gate (FD change on held-out images) before they are written.",
    ),
    click.option(
        "--calib",
        type=click.Path(path_type=Path),
        help="int8: calibration images of the source domain.  [default: a sample of the run's trainA]",
    ),
    click.option(
        "--holdout",
        type=click.Path(path_type=Path),
        help="Quality gate: held-out source images (never the calibration ones).  [default: the run's testA]",
    ),
    click.option(
        "--max-fd-change",
        type=Finite(min=0),
        default=EXPORT.max_fd_change,
        show_default=True,
        help="Quality gate: largest allowed relative change of the FD to real target images.",
    ),
    click.option(
        "--max-teacher-change",
        type=Finite(min=0),
        default=EXPORT.max_teacher_change,
        show_default=True,
        help="A distilled student (any precision): largest FD between its outputs and its teacher's, as a fraction of "
        "the teacher's FD to real target images.",
    ),
    click.option(
        "--gate-images",
        type=click.IntRange(min=2),
        default=EXPORT.gate_images,
        show_default=True,
        help="Quality gate: held-out images to translate (4× as many real target images).",
    ),
    click.option("--formats", "list_formats", is_flag=True, help="Print the formats table and exit."),
    direction_option("Which generator to export."),
    click.option("--out", "out_dir", type=click.Path(path_type=Path), help="Folder for the files.  [default: RUN]"),
    click.option("--opset", type=int, default=EXPORT.opset, show_default=True, help="ONNX opset (17..21)."),
    click.option(
        "--io",
        "io_kind",
        type=click.Choice(["float", "uint8"]),
        default=EXPORT.io_kind,
        show_default=True,
        help="float: NCHW in [-1, 1]; uint8: NHWC 0..255 in and out, normalization inside the graph.",
    ),
    click.option("--fp16", is_flag=True, help="Same as --precision fp16."),
    click.option("--trt", is_flag=True, help="Same as --format tensorrt."),
    click.option(
        "--shapes",
        default=EXPORT.shapes,
        show_default=True,
        help="TensorRT optimization profile: min,opt,max as NxHxW.",
    ),
    click.option(
        "--native-instance-norm",
        is_flag=True,
        help="Build the engine with TensorRT's own InstanceNormalization instead of the fused Triton plugins.",
    ),
    click.option(
        "--timing-cache", type=click.Path(path_type=Path), help="TensorRT timing cache file to reuse and update."
    ),
)  # i2i export

import_options = options(
    click.option(
        "--from",
        "source",
        type=RegistryChoice("i2i.importers:SOURCES"),
        required=True,
        help="Which code base saved CHECKPOINT (CycleGAN/pix2pix repository, CUT/FastCUT, or JoliGEN "
        "with its train_config.json beside the checkpoint when there is one).",
    ),
    click.option("--netG", "net_g", help="Expected architecture; inferred from the tensors when omitted."),
    direction_option("Store it as the A→B or the B→A generator of the run."),
    click.option("--out", "run_dir", type=click.Path(path_type=Path), required=True, help="Run directory to create."),
)  # i2i import
