"""The `i2i` command line: parse options, call one library function, print the outcome."""

from __future__ import annotations

import errno
import re
import time
from pathlib import Path

import click

from . import __version__
from .cli_options import (
    FIELD_OPTIONS,
    MAX_PIXELS_HELP,
    Finite,
    PositiveInts,
    RegistryChoice,
    backend_option,
    batch_size_option,
    device_option,
    direction_option,
    field_options,
    field_values,
    naming_options,
    nested,
)
from .config import DISTILL_STEPS, GENERATORS, RESUMABLE, parse_json
from .errors import ConfigError, UserError, one_line
from .export.formats import ExportRequest

EXPORT = ExportRequest(Path())  # the defaults the export options show

OUTPUT_ERRNOS = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.ENOTDIR, errno.EEXIST)


class UserErrorGroup(click.Group):
    """Prints a UserError as one line (plus the library's own text with --verbose) and exits 2;
    so are the machine's limits (memory, open files, an unwritable output); Ctrl-C outside
    training's own handler is one line too; bugs keep their traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except UserError as error:
            message = one_line(error)
            if error.detail:
                verbose = ctx.params.get("verbose")
                message += f"\n{error.detail}" if verbose else " (i2i --verbose: the library's message)"
            failure = click.ClickException(message)
            failure.exit_code = error.exit_code
            raise failure from None
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)
        except OSError as error:  # a write the library did not wrap (a third-party writer): the path and the cause
            if error.errno in (errno.EMFILE, errno.ENFILE):
                message = f"too many open files ({error.strerror}); raise the limit (ulimit -n) or lower --workers"
            elif error.errno in OUTPUT_ERRNOS:
                message = (
                    f"{error.filename or 'output'}: {error.strerror}; free disk space or "
                    "choose another, writable output path"
                )
            else:
                raise
            failure = click.ClickException(message)
            failure.exit_code = UserError.exit_code
            raise failure from None
        except (MemoryError, RuntimeError) as error:
            # torch reports an allocation it cannot make as RuntimeError (CPU) or OutOfMemoryError (CUDA).
            text = str(error)
            if not (isinstance(error, MemoryError) or "can't allocate memory" in text or "out of memory" in text):
                raise
            failure = click.ClickException(
                f"out of memory ({one_line(error)[:160]}); lower --batch-size, translate large "
                "images with --tile, lower --max-pixels or free memory"
            )
            failure.exit_code = UserError.exit_code
            raise failure from None


@click.group(cls=UserErrorGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="i2i")
@click.option("--verbose", is_flag=True, help="With an error, also print the underlying library's message.")
def cli(verbose: bool) -> None:
    """i2i — unpaired image-to-image translation: train, export, run.

    \b
    i2i train DATA --out RUN          train (cycle_gan, cut, fastcut, recycle_gan) on DATA/trainA, trainB
    i2i distill RUN --out STUDENT     a generator ~16x cheaper that learns to translate like RUN's
    i2i export RUN [--format F]       RUN/generator_AtoB.onnx | .xml (OpenVINO) | .engine; --precision int8 ...
    i2i generate MODEL INPUT OUT      translate a folder / list / glob with a run dir, .onnx or .engine
    i2i video MODEL CLIP OUT.mp4      stylize a video, optionally temporally consistent
    i2i eval GENERATED REAL           FD / KID / MiFID, or label preservation
    i2i bench                         latency side by side across backends
    """


@cli.command()
@click.argument("data", required=False, type=click.Path(path_type=Path))
@click.option(
    "--out",
    "run_dir",
    type=click.Path(path_type=Path),
    help="Run directory to create.  [default: runs/<DATA name>-<model>]",
)
@click.option(
    "--resume",
    "resume_dir",
    type=click.Path(path_type=Path),
    help="Continue the run in this directory from its newest checkpoint.",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSON file with train_config.json keys (G, D, data, train, alg) to start from; options below override it.",
)
@click.option(
    "--preset",
    type=RegistryChoice("i2i.training.configure:PRESETS"),
    help="Settings measured for a purpose, under --config and the options: short = CPU budgets of minutes "
    "to hours, for cycle_gan and cut (identity-started resize-convolution generator, DiffAugment; "
    "CycleGAN: cycle weight 2, no identity loss; CUT: spectral-norm discriminator).",
)
@field_options(*FIELD_OPTIONS)
@click.pass_context
def train(ctx, data, run_dir, resume_dir, config_file, preset, **_fields) -> None:
    """Train a translation model on DATA (folders trainA/ and trainB/ of unpaired images;
    for recycle_gan, of videos or folders of frames).

    Writes RUN/train_config.json, RUN/checkpoints/, RUN/samples/, RUN/losses.jsonl,
    RUN/tensorboard/ and, at the end, RUN/loss_curves.png. Ctrl-C saves a checkpoint;
    `--resume RUN` continues exactly where it stopped, and `--resume RUN --steps N` extends a
    finished run (also --workers and the --*-every intervals; recorded in train_config.json).
    Under `torchrun --nproc_per_node K`
    the same command trains data-parallel on K processes.
    """
    from i2i.training.configure import configure
    from i2i.training.trainer import resume
    from i2i.training.trainer import train as start_training

    values = field_values(ctx)
    started = time.perf_counter()
    if resume_dir is not None:
        refused = [
            param.opts[0] if param.param_type_name == "option" else param.name.upper()
            for param in ctx.command.params
            if ctx.get_parameter_source(param.name) is click.core.ParameterSource.COMMANDLINE
            and param.name != "resume_dir"
            and param.opts[0] not in RESUMABLE.values()
        ]
        if refused:
            raise ConfigError(
                f"--resume keeps the run's model and data; it can change only "
                f"{', '.join(RESUMABLE.values())} (got {', '.join(refused)})"
            )
        with naming_options(ctx):
            step = resume(resume_dir, values)
        run_dir = resume_dir
    else:
        if data is None:
            raise ConfigError("give a DATA folder (with trainA/ and trainB/) or --resume RUN")
        raw = nested(
            {**values, "data.dataroot": str(Path(data).resolve())}, _read_json(config_file) if config_file else {}
        )
        with naming_options(ctx):
            config = configure(raw, preset, source=str(config_file or "options"))
        run_dir = run_dir or Path("runs") / f"{Path(data).resolve().name}-{config.model}"
        step = start_training(config, run_dir)
    click.echo(f"{run_dir}: trained to step {step} in {time.perf_counter() - started:.1f} s")


@cli.command()
@click.argument("teacher", metavar="TEACHER_RUN", type=click.Path(path_type=Path))
@click.option(
    "--out",
    "run_dir",
    type=click.Path(path_type=Path),
    help="Student run directory to create.  [default: runs/<TEACHER_RUN name>-student]",
)
@click.option(
    "--netG", "net_g", type=click.Choice(GENERATORS), help="Student architecture.  [default: the teacher's ResNet]"
)
@click.option("--ngf", type=click.IntRange(min=1), help="Student width.  [default: the teacher's / 4, at least 8]")
@direction_option("The teacher's direction to learn.")
@click.option(
    "--data",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Folder with trainA/, trainB/ to distil on instead of the teacher's (needed for an imported teacher).",
)
@click.option(
    "--extra-sources",
    multiple=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="More source-domain images (repeatable): unlabelled photos are free training targets.",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSON with train_config.json keys over the derived ones (e.g. alg.distill.lambda_GAN).",
)
@field_options(
    "--steps", "--batch-size", "--size", "--seed", "--workers", "--save-every", "--sample-every", "--log-every",
    defaults={"--steps": DISTILL_STEPS} | dict.fromkeys(("--batch-size", "--size", "--seed", "--workers"), "teacher's"),
)  # fmt: skip
@click.pass_context
def distill(ctx, teacher, run_dir, net_g, ngf, direction, data, extra_sources, config_file, **_fields) -> None:
    """Distil TEACHER_RUN's generator into a smaller student that reproduces its translations
    (the teacher's output is the target for every source image, so --extra-sources photos need
    no labels). The student run is an ordinary run directory: export, generate, video, eval
    and bench take it; `i2i train --resume STUDENT` continues it. Its checkpoints carry the
    teacher, and `i2i export STUDENT --precision int8` is gated against the teacher's outputs."""
    from i2i.training.distill import distill_config
    from i2i.training.trainer import train as start_training

    raw = nested(field_values(ctx), _read_json(config_file) if config_file else {})
    started = time.perf_counter()
    with naming_options(ctx):
        config = distill_config(teacher, direction, net_g, ngf, data, extra_sources, raw)
    run_dir = run_dir or Path("runs") / f"{Path(teacher).resolve().name}-student"
    step = start_training(config, run_dir)
    click.echo(f"{run_dir}: distilled to step {step} in {time.perf_counter() - started:.1f} s")


def _read_json(path: Path) -> dict:
    raw = parse_json(path.read_bytes(), str(path), "save the config file as UTF-8 JSON")
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{path}: expected a JSON object with train_config.json keys (G, D, data, train, alg), "
            f"got a {type(raw).__name__}"
        )
    return raw


@cli.command()
@click.argument("run_dir", metavar="MODEL", type=click.Path(path_type=Path))
@click.argument("source", metavar="INPUT")
@click.argument("output_dir", type=click.Path(path_type=Path))
@direction_option()
@batch_size_option(8, "Images per forward pass (equal sizes are batched).")
@device_option
@backend_option
@click.option(
    "--precision",
    type=RegistryChoice("i2i.runtime.predictor:PRECISIONS"),
    default="fp32",
    show_default=True,
    help="Inference precision (fp16 needs CUDA).",
)
@click.option("--resume", is_flag=True, help="Skip inputs whose output already exists.")
@click.option("--strict", is_flag=True, help="Stop at the first unreadable image instead of skipping it.")
@click.option("--shard", help="i/n: process every n-th input starting at i (0-based). Under torchrun: RANK/WORLD_SIZE.")
@click.option(
    "--workers", type=click.IntRange(min=1), default=2, show_default=True, help="Decoding and encoding threads each."
)
@click.option("--max-pixels", type=click.IntRange(min=1), help=MAX_PIXELS_HELP)
@click.option(
    "--tile",
    type=click.IntRange(min=1),
    help="Translate images larger than TILE×TILE pixels in overlapping tiles (torch "
    "backend), for images too large for memory.",
)
@click.option(
    "--overlap",
    type=click.IntRange(min=0),
    default=32,
    show_default=True,
    help="Pixels each tile reaches into its neighbours.",
)
@click.option(
    "--tile-stats",
    type=RegistryChoice("i2i.runtime.tiling:TILE_STATS"),
    default="exact",
    show_default=True,
    help="exact = instance-norm statistics of the whole image (no seams; ~L/2 extra passes for L norm "
    "layers); tile = each tile's own (one pass, tone may shift between tiles).",
)
@click.option(
    "--ray",
    "ray_address",
    is_flag=False,
    flag_value="auto",
    metavar="[ADDRESS]",
    help="Run on a Ray cluster (pip install 'i2i[ray]'): `--ray` joins the running one or starts a local "
    "one, `--ray HOST:PORT` joins that one. Put it last, after OUTPUT_DIR.",
)
@click.option("--actors", help="--ray: predictor actors, N or MIN-MAX (autoscaling).  [default: 1-CPUs, or 1-GPUs]")
@click.pass_context
def generate(
    ctx,
    run_dir,
    source,
    output_dir,
    direction,
    batch_size,
    device,
    backend,
    precision,
    resume,
    strict,
    shard,
    workers,
    max_pixels,
    tile,
    overlap,
    tile_stats,
    ray_address,
    actors,
) -> None:
    """Translate every image of INPUT — a folder (recursive), a .txt list of paths or a glob
    pattern in quotes — with MODEL (a run directory, an exported .onnx or a TensorRT .engine),
    writing each to its relative path under OUTPUT_DIR at its own size, plus a manifest.

    A labelled dataset folder (paths.txt with bbox or mask files) is translated with its
    labels copied, and class folders stay class folders, so the output trains a detector,
    segmenter or classifier directly."""
    import os

    from i2i.io import pixel_limit
    from i2i.runtime import load
    from i2i.runtime.generate import generate_dataset

    if ray_address or actors:
        _generate_on_ray(ctx, ray_address, actors, shard, strict, pixel_limit(max_pixels, tiled=tile is not None))
        return
    if shard is None and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        shard = f"{os.environ.get('RANK', '0')}/{os.environ['WORLD_SIZE']}"
    parts = re.fullmatch(r"([0-9]{1,9})/([0-9]{1,9})", shard or "0/1")
    if not parts or not int(parts[1]) < int(parts[2]):
        raise ConfigError(f"--shard {shard}: expected i/n with 0 <= i < n in digits 0-9, e.g. 0/4")
    this_shard = (int(parts[1]), int(parts[2]))
    if resume and backend == "auto":
        from i2i.runtime.generate import recorded_backend

        recorded = recorded_backend(output_dir, this_shard)
        if recorded is not None:
            backend = recorded
            click.echo(f"resume: backend {backend}, as the outputs already written (--backend overrides)", err=True)
    predictor = load(
        run_dir,
        backend=backend,
        device=device,
        direction=direction,
        batch_size=batch_size,
        precision=precision,
        tile=tile,
        overlap=overlap,
        tile_stats=tile_stats,
    )
    report = generate_dataset(
        predictor,
        source,
        output_dir,
        model_name=str(run_dir),
        resume=resume,
        strict=strict,
        shard=this_shard,
        workers=workers,
        max_pixels=pixel_limit(max_pixels, tiled=tile is not None),
    )
    click.echo(
        f"{output_dir}: {report.written} images in {report.seconds:.1f} s ({report.images_per_second:.1f} images/s), "
        f"{report.skipped_existing} already there, {len(report.failed)} unreadable skipped; "
        f"manifest {report.manifest.name}"
    )
    note = report.scale_note(predictor.config)
    if note:
        click.echo(note)


def _generate_on_ray(
    ctx: click.Context, address: str | None, actors: str | None, shard: str | None, strict: bool, max_pixels: int
) -> None:
    from i2i.runtime.ray_generate import generate_on_ray

    if not address or shard or strict:
        raise ConfigError(
            "--ray runs the whole job and lists bad images in the manifest: drop --shard and --strict; "
            "--actors needs --ray"
        )
    p = ctx.params
    explicit_device = ctx.get_parameter_source("device") is not click.core.ParameterSource.DEFAULT
    load_options = {
        "path": p["run_dir"],
        "backend": p["backend"],
        "device": p["device"] if explicit_device else None,
        "direction": p["direction"],
        "batch_size": p["batch_size"],
        "precision": p["precision"],
        "tile": p["tile"],
        "overlap": p["overlap"],
        "tile_stats": p["tile_stats"],
    }
    report = generate_on_ray(
        load_options, p["source"], p["output_dir"], address, actors, p["resume"], str(p["run_dir"]), max_pixels
    )
    click.echo(
        f"{p['output_dir']}: {report.written} images in {report.seconds:.1f} s ({report.images_per_second:.1f} "
        f"images/s; start-up {report.startup_seconds:.1f} s) on {report.nodes} Ray node(s), {report.actors} "
        f"actor(s), {report.skipped_existing} already there, {len(report.failed)} unreadable skipped; "
        f"manifest {report.manifest.name}"
    )


@cli.command()
@click.argument("run_dir", metavar="MODEL", type=click.Path(path_type=Path))
@click.argument("source", metavar="INPUT", type=click.Path(path_type=Path))
@click.argument("output", type=click.Path(path_type=Path))
@click.option(
    "--temporal",
    type=RegistryChoice("i2i.runtime.video:TEMPORAL_MODES"),
    default="none",
    show_default=True,
    help="none = per frame; recycle = hold each frame near the RecycleGAN predictor's forecast (MODEL: a "
    "recycle_gan run or its exported generator); flow = near the previous output moved along the optical flow; "
    "hybrid = flow, with the predictor's forecast where the flow is not trusted (see --strength, --cutoff).",
)
@click.option(
    "--report",
    is_flag=True,
    help="Measure flicker (vs the per-frame output) into NAME.report.json and "
    "NAME.report.png beside OUTPUT (styled.mp4 → styled.report.json).",
)
@direction_option()
@device_option
@backend_option
@batch_size_option(4, "Frames per forward pass.")
@click.option("--max-frames", type=click.IntRange(min=1), help="Stop after this many frames.")
@click.option(
    "--max-pixels",
    type=click.IntRange(min=1),
    help="Refuse a video whose frames have more pixels than this.  [default: 50000000]",
)
@click.option(
    "--strength",
    type=Finite(0, 1),
    help="recycle/flow/hybrid: share of each frame's disagreement with the temporal guess taken away, the largest "
    "first (0 = the per-frame output, 1 = the guess); each mode's default is tuned in benchmarks/results/video.md.  "
    "[default: 0.5]",
)
@click.option(
    "--cutoff",
    type=Finite(min=0),
    help="recycle/flow/hybrid: disagreement with the guess (grey levels) beyond which the per-frame output "
    "is kept.  [default: 120]",
)
def video(
    run_dir,
    source,
    output,
    temporal,
    report,
    direction,
    device,
    backend,
    batch_size,
    max_frames,
    max_pixels,
    strength,
    cutoff,
) -> None:
    """Stylize the video (or frame folder) INPUT into OUTPUT (.mp4/.avi) at the source's size
    and frame rate, streaming; audio is copied when ffmpeg is installed."""
    from i2i.io import pixel_limit
    from i2i.runtime import load
    from i2i.runtime.video import stylize_video

    predictor = load(run_dir, backend=backend, device=device, direction=direction, batch_size=batch_size)
    result = stylize_video(
        predictor,
        source,
        output,
        temporal,
        run_dir,
        report,
        batch_size,
        max_frames,
        strength=strength,
        cutoff=cutoff,
        device=device,
        max_pixels=pixel_limit(max_pixels),
    )
    if result.damage():
        click.echo(f"warning: {source}: {result.damage()}", err=True)
    click.echo(f"{output}: {result.describe()}")


@cli.command(name="eval")
@click.argument("generated", type=click.Path(path_type=Path))
@click.argument("real", type=click.Path(path_type=Path), required=False)
@click.option(
    "--train-real", type=click.Path(path_type=Path), help="Target-domain training images: adds MiFID (memorization)."
)
@click.option(
    "--extractor",
    type=RegistryChoice("i2i.evaluation.metrics:EXTRACTORS"),
    default="efficientnet-lite0",
    show_default=True,
    help="Feature network (efficientnet-lite0 works offline; inception is the standard FID one).",
)
@click.option(
    "--target-train",
    type=click.Path(path_type=Path),
    help="Label preservation: labelled real target images to train the classifier on.",
)
@click.option(
    "--target-test",
    type=click.Path(path_type=Path),
    help="Label preservation: labelled real target images to check the classifier on.",
)
@click.option(
    "--sources",
    type=click.Path(path_type=Path),
    help="The untranslated inputs: the baseline of FD/KID (with REAL) and of label preservation.",
)
@click.option(
    "--judges",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Label preservation and --transfer: classifiers to train per training set (seeds 0…N−1); "
    "accuracies are their mean, with the spread.",
)
@click.option(
    "--transfer",
    is_flag=True,
    help="Also train classifiers on the labelled GENERATED images (and on --sources, the baseline) and "
    "report how well they read --target-test: their worth as synthetic training data.",
)
@click.option(
    "--label-channels",
    type=click.Choice(["1", "3"]),
    default="1",
    show_default=True,
    help="Label preservation and --transfer: read the images as grey (1) or colour (3).",
)
@device_option
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="Also write the numbers here.")
@click.option(
    "--sheet",
    type=click.Path(path_type=Path),
    help="Write a contact sheet PNG here: the first 8 translations by name, their --sources inputs and "
    "their centres zoomed 4x.",
)
def eval_command(**params) -> None:
    """Score GENERATED images: Fréchet distance, KID (and MiFID with --train-real) against REAL
    images, and/or label preservation with a classifier trained on --target-train
    (labels from file names <name>_<label>.png), and/or with --transfer classifiers trained on
    GENERATED. Every distance names its feature extractor, every accuracy its classifiers.
    Artifact scores are in units of REAL's median: 1.0 = as much upsampling lattice as real images."""
    from i2i.evaluation.evaluate import EvalRequest, evaluate

    request = EvalRequest(**params | {"label_channels": int(params["label_channels"])})
    result = evaluate(request, note=lambda text: click.echo(text, err=True))
    width = max(map(len, result), default=0)
    for key, value in result.items():
        shown = ", ".join(f"{v:.2f}" for v in value) if isinstance(value, list) else value
        click.echo(f"{key:>{width}}: {value:.4f}" if isinstance(value, float) else f"{key:>{width}}: {shown}")
    if "artifact_score" in result:
        click.echo("(artifact scores: 1.0 = as much upsampling lattice as the median REAL image)")


@cli.command()
@click.option(
    "--run",
    "run_dir",
    type=click.Path(path_type=Path),
    help="Benchmark this run's generator (default: random weights).",
)
@click.option(
    "--model",
    "model_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Benchmark this exported .onnx / .engine against eager torch on the same architecture.",
)
@click.option("--netG", "net_g", type=click.Choice(GENERATORS), default="resnet_9blocks", show_default=True)
@click.option("--ngf", type=click.IntRange(1, 1024), default=64, show_default=True)
@click.option(
    "--sizes", default="256", show_default=True, help="Comma-separated square resolutions: 256,512 or 256x256."
)
@click.option("--batches", type=PositiveInts(), default="1", show_default=True, help="Comma-separated batch sizes.")
@click.option(
    "--photos", type=click.Path(path_type=Path), help="Real photos for int8 calibration and its quality check."
)
@click.option("--repeats", type=click.IntRange(min=1), default=20, show_default=True)
@click.option(
    "--estimate",
    "estimate_device",
    type=RegistryChoice("i2i.benchmarks.roofline:DEVICES"),
    help="Also print the roofline floor on this device.",
)
@click.option(
    "--efficiency",
    type=Finite(0, 1, min_open=True),
    help="With --estimate: measured fraction of the floor, turns it into a labelled estimate.",
)
@click.option(
    "--train",
    "train_data",
    type=click.Path(path_type=Path),
    help="Instead: training steps/s of cycle_gan, cut and fastcut on this dataset.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    default=Path("bench"),
    show_default=True,
    help="Folder for bench.json and bench.png.",
)
def bench(
    run_dir, model_file, net_g, ngf, sizes, batches, photos, repeats, estimate_device, efficiency, train_data, out_dir
) -> None:
    """Latency (median, p90) of a generator on every backend and export format × precision
    installed here (ONNX Runtime fp32/int8, OpenVINO fp32/bf16/int8), side by side with PyTorch
    eager fp32 in the same run, for each size and batch; with --run, reduced precisions get a
    quality column (FD change, PSNR vs fp32 on held-out images); table, JSON and PNG plot."""
    from i2i.benchmarks import latency, train_speed

    if train_data is not None:
        train_speed.compare(train_data, ["cycle_gan", "cut", "fastcut"])
        return
    options = [
        latency.LatencyOptions(net_g, ngf, size, batch, run_dir, model_file, photos, repeats)
        for size in latency.parse_sizes(sizes)
        for batch in batches
    ]
    latency.sweep(options, out_dir, estimate_device, efficiency)
    click.echo(f"{out_dir}/bench.json, {out_dir}/bench.png")


@cli.command(name="merge-manifests")
@click.argument("output_dir", type=click.Path(path_type=Path))
def merge_manifests_command(output_dir) -> None:
    """Merge the per-shard manifests that `i2i generate --shard` wrote into OUTPUT_DIR/manifest.jsonl."""
    from i2i.runtime.generate import merge_manifests

    click.echo(f"{merge_manifests(output_dir)}")


@cli.command(name="export")
@click.argument("run_dir", metavar="RUN", required=False, type=click.Path(path_type=Path))
@click.option("--format", default=EXPORT.format, show_default=True, help="onnx, openvino or tensorrt (see --formats).")
@click.option(
    "--precision",
    type=RegistryChoice("i2i.export.formats:PRECISIONS"),
    default=EXPORT.precision,
    show_default=True,
    help="Reduced precisions pass a quality gate (FD change on held-out images) before they are written.",
)
@click.option(
    "--calib",
    type=click.Path(path_type=Path),
    help="int8: calibration images of the source domain.  [default: a sample of the run's trainA]",
)
@click.option(
    "--holdout",
    type=click.Path(path_type=Path),
    help="Quality gate: held-out source images (never the calibration ones).  [default: the run's testA]",
)
@click.option(
    "--max-fd-change",
    type=Finite(min=0),
    default=EXPORT.max_fd_change,
    show_default=True,
    help="Quality gate: largest allowed relative change of the FD to real target images.",
)
@click.option(
    "--max-teacher-change",
    type=Finite(min=0),
    default=EXPORT.max_teacher_change,
    show_default=True,
    help="A distilled student (any precision): largest FD between its outputs and its teacher's, as a fraction of "
    "the teacher's FD to real target images.",
)
@click.option(
    "--gate-images",
    type=click.IntRange(min=2),
    default=EXPORT.gate_images,
    show_default=True,
    help="Quality gate: held-out images to translate (4× as many real target images).",
)
@click.option("--formats", "list_formats", is_flag=True, help="Print the formats table and exit.")
@direction_option("Which generator to export.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), help="Folder for the files.  [default: RUN]")
@click.option("--opset", type=int, default=EXPORT.opset, show_default=True, help="ONNX opset (17..21).")
@click.option(
    "--io",
    "io_kind",
    type=click.Choice(["float", "uint8"]),
    default=EXPORT.io_kind,
    show_default=True,
    help="float: NCHW in [-1, 1]; uint8: NHWC 0..255 in and out, normalization inside the graph.",
)
@click.option("--fp16", is_flag=True, help="Same as --precision fp16.")
@click.option("--trt", is_flag=True, help="Same as --format tensorrt.")
@click.option(
    "--shapes", default=EXPORT.shapes, show_default=True, help="TensorRT optimization profile: min,opt,max as NxHxW."
)
@click.option(
    "--native-instance-norm",
    is_flag=True,
    help="Build the engine with TensorRT's own InstanceNormalization instead of the fused Triton plugins.",
)
@click.option("--timing-cache", type=click.Path(path_type=Path), help="TensorRT timing cache file to reuse and update.")
def export_command(list_formats, fp16, trt, **request) -> None:
    """Export RUN's generator (dynamic batch, height and width; metadata inside) to ONNX,
    OpenVINO IR or a TensorRT engine, at fp32, fp16, bf16 or int8.

    Every export is checked against the torch generator first (max error ≤ 1e-4 for fp32,
    2e-2 for fp16, one grey level for uint8 I/O); reduced precisions are written only if the
    FD of their outputs on held-out images moves by at most --max-fd-change (figures in the
    file's metadata and in a .quality.json beside it). A distilled student's export, at any
    precision, must also stay within --max-teacher-change of its teacher's outputs.
    """
    from i2i.export.exporter import export
    from i2i.export.formats import format_table

    if list_formats:
        click.echo(format_table())
        return
    if request["run_dir"] is None:
        raise ConfigError("give a RUN directory to export (or --formats to list the formats)")
    if fp16 and request["precision"] not in ("fp32", "fp16") or trt and request["format"] not in ("onnx", "tensorrt"):
        raise ConfigError("--fp16/--trt are spellings of --precision fp16/--format tensorrt; give one or the other")
    request |= {"precision": "fp16"} if fp16 else {}
    request |= {"format": "tensorrt"} if trt else {}
    for line in export(ExportRequest(**request)).lines:
        click.echo(line)


@cli.command(name="import")
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.option(
    "--from",
    "source",
    type=RegistryChoice("i2i.importers:SOURCES"),
    required=True,
    help="Which code base saved CHECKPOINT (CycleGAN/pix2pix repository, CUT/FastCUT, or JoliGEN "
    "with its train_config.json beside the checkpoint when there is one).",
)
@click.option("--netG", "net_g", help="Expected architecture; inferred from the tensors when omitted.")
@direction_option("Store it as the A→B or the B→A generator of the run.")
@click.option("--out", "run_dir", type=click.Path(path_type=Path), required=True, help="Run directory to create.")
def import_command(checkpoint, source, net_g, direction, run_dir) -> None:
    """Convert a generator CHECKPOINT trained elsewhere (e.g. latest_net_G_A.pth) into an i2i
    run directory, which `i2i export` and `i2i generate` then use like any other."""
    from .importers import import_generator

    config = import_generator(checkpoint, source, run_dir, net_g, direction)
    g = config.G
    extras = ", anti-aliased" if g.antialias else ""
    if g.netG.endswith("_attn"):
        extras = (
            f", {g.attn_blocks} blocks{' applied twice' if g.twice_resnet_blocks else ''}, {g.attn_masks} attention "
            f"masks ({g.attn_input_masks} copying the input), {g.padding_type} padding"
        )
    click.echo(
        f"{run_dir}: {g.netG} (ngf {g.ngf}, {g.norm} norm{extras}), "
        f"{config.data.input_nc}→{config.data.output_nc} channels, as {direction}"
    )


def main() -> None:
    from .threads import configure_process_threads

    configure_process_threads()  # before any command imports torch
    cli(prog_name="i2i")


if __name__ == "__main__":
    main()
