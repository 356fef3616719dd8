"""The `i2i` command line: parse options, call one library function, print the outcome."""

from __future__ import annotations

import errno
import time
from pathlib import Path

import click

from . import __version__
from .cli_options import (
    RESUMABLE_FLAGS,
    bench_options,
    distill_options,
    eval_options,
    export_options,
    field_values,
    generate_options,
    import_options,
    naming_options,
    nested,
    train_options,
    video_options,
)
from .config import parse_json
from .errors import ConfigError, UserError, one_line
from .export.formats import ExportRequest

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
@train_options
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
            and param.opts[0] not in RESUMABLE_FLAGS
        ]
        if refused:
            raise ConfigError(
                f"--resume keeps the run's model and data; it can change only "
                f"{', '.join(RESUMABLE_FLAGS)} (got {', '.join(refused)})"
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
@distill_options
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
@generate_options
@click.pass_context
def generate(ctx, run_dir, source, output_dir, resume, strict, shard, workers, max_pixels, ray_address, actors, **load):
    """Translate every image of INPUT — a folder (recursive), a .txt list of paths or a glob
    pattern in quotes — with MODEL (a run directory, an exported .onnx or a TensorRT .engine),
    writing each to its relative path under OUTPUT_DIR at its own size, plus a manifest.

    A labelled dataset folder (paths.txt with bbox or mask files) is translated with its
    labels copied, and class folders stay class folders, so the output trains a detector,
    segmenter or classifier directly."""
    from i2i.io import pixel_limit
    from i2i.runtime import load as load_model
    from i2i.runtime.generate import generate_dataset, recorded_backend, shard_of

    limit = pixel_limit(max_pixels, tiled=load["tile"] is not None)
    if ray_address or actors:
        from i2i.runtime.ray_generate import generate_on_ray

        if not ray_address or shard or strict:
            raise ConfigError(
                "--ray runs the whole job and lists bad images in the manifest: drop --shard and --strict; "
                "--actors needs --ray"
            )
        if ctx.get_parameter_source("device") is click.core.ParameterSource.DEFAULT:
            load["device"] = None  # each actor takes its node's GPU when it has one
        report = generate_on_ray(
            {"path": run_dir, **load}, source, output_dir, ray_address, actors, resume, str(run_dir), limit
        )
        click.echo(f"{output_dir}: {report.describe()}")
        return
    this_shard = shard_of(shard)
    recorded = recorded_backend(output_dir, this_shard) if resume and load["backend"] == "auto" else None
    if recorded is not None:
        load["backend"] = recorded
        click.echo(f"resume: backend {recorded}, as the outputs already written (--backend overrides)", err=True)
    predictor = load_model(run_dir, **load)
    report = generate_dataset(
        predictor, source, output_dir, str(run_dir), resume, strict, this_shard, workers=workers, max_pixels=limit
    )
    click.echo(f"{output_dir}: {report.describe()}")
    note = report.scale_note(predictor.config)
    if note:
        click.echo(note)


@cli.command()
@click.argument("run_dir", metavar="MODEL", type=click.Path(path_type=Path))
@click.argument("source", metavar="INPUT", type=click.Path(path_type=Path))
@click.argument("output", type=click.Path(path_type=Path))
@video_options
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
@eval_options
def eval_command(**params) -> None:
    """Score GENERATED images: Fréchet distance, KID (and MiFID with --train-real) against REAL
    images, and/or label preservation with a classifier trained on --target-train
    (labels from file names <name>_<label>.png), and/or with --transfer classifiers trained on
    GENERATED. Every distance names its feature extractor, every accuracy its classifiers.
    Artifact scores are in units of REAL's median: 1.0 = as much upsampling lattice as real images."""
    from i2i.evaluation.request import EvalRequest, run_eval

    request = EvalRequest(**params | {"label_channels": int(params["label_channels"])})
    result = run_eval(request, note=lambda text: click.echo(text, err=True))
    width = max(map(len, result), default=0)
    for key, value in result.items():
        shown = ", ".join(f"{v:.2f}" for v in value) if isinstance(value, list) else value
        click.echo(f"{key:>{width}}: {value:.4f}" if isinstance(value, float) else f"{key:>{width}}: {shown}")
    if "artifact_score" in result:
        click.echo("(artifact scores: 1.0 = as much upsampling lattice as the median REAL image)")


@cli.command()
@bench_options
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
@export_options
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
@import_options
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
