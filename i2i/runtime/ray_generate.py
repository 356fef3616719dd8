"""`i2i generate … --ray`: the same job as runtime/generate.py, spread over a Ray cluster.

The inputs become a Ray Dataset of (input, output) rows; `map_batches` hands them to a pool
of actors, each holding one ordinary predictor (any backend) loaded once, which decodes,
translates and writes atomically with generate.py's own functions and returns the manifest
records. The driver alone appends them to the manifest, so the output folder, labels and
manifest are those of the one-process path. Ray restarts a lost actor or node's work; a
rerun with `resume` skips images whose file and manifest line are both there.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
from tqdm import tqdm

from i2i.errors import CheckpointError, ConfigError, DataError, MissingDependencyError, UserError
from i2i.io import (
    DEFAULT_MAX_PIXELS,
    IMAGE_EXTENSIONS,
    decode_image,
    read_image,
    remove_orphaned_temporaries,
)
from i2i.outputs import claim_folder

from .generate import (
    MANIFEST,
    GenerateReport,
    InputSet,
    check_output_dir,
    classes_from_folders,
    collect_inputs,
    copy_labels,
    distinct_targets,
    failure_record,
    output_path,
    recorded_outputs,
    refuse_overwriting,
    write_output,
)

CHUNK = 32  # most images per actor call: fills the predictor's batches, small enough to spread a job


@dataclass
class RayReport(GenerateReport):
    actors: str = ""
    startup_seconds: float = 0.0  # connecting until the first batch is back (actors started, one batch translated)
    nodes: int = 0
    first_batch: int = 0  # images that came back with the start-up

    def context(self) -> str:
        return f"; start-up {self.startup_seconds:.1f} s, {self.nodes} Ray node(s), {self.actors} actor(s)"


def generate_on_ray(
    load_options: dict,
    source: str,
    output_dir: Path,
    address: str = "auto",
    actors: str | None = None,
    resume: bool = False,
    model_name: str = "",
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> RayReport:
    """Translate every input of `source` on the Ray cluster at `address` (`auto`: the running
    one, else a new local one). `load_options` are `runtime.load`'s arguments, applied in each
    actor; device None means cuda when the cluster has GPUs (one per actor), else cpu.
    `actors`: "N" (a fixed pool) or "MIN-MAX" (autoscaling bounds); default 1 … the CPUs/GPUs.
    Images above `max_pixels` are refused from their header, before decoding."""
    ray = _import_ray()
    inputs, root_url = _collect(source)
    low, _, high = (actors or "1").partition("-")
    if not (low.isdigit() and (high or low).isdigit() and 1 <= int(low) <= int(high or low)):
        raise ConfigError(f"--actors {actors}: expected N or MIN-MAX with 1 <= MIN <= MAX, e.g. 2 or 1-8")
    output_dir = Path(output_dir)
    if not Path(load_options["path"]).exists():
        raise CheckpointError(f"{load_options['path']}: no such run directory or exported model")
    if root_url is None:
        check_output_dir(inputs, output_dir)
    started = time.perf_counter()
    _connect(ray, address)
    try:
        pool = (int(low), int(high or low)) if actors else None
        with claim_folder(output_dir, nested=True):  # also removes what the actors of a killed job left
            return _run(ray, inputs, root_url, output_dir, load_options, pool, resume, model_name, max_pixels, started)
    except ray.exceptions.RayError as error:
        cause = _user_cause(error)
        if cause is None:
            raise
        raise cause from None
    finally:
        ray.shutdown()


def _run(
    ray,
    inputs: InputSet,
    root_url: str | None,
    output_dir: Path,
    load_options: dict,
    pool: tuple[int, int] | None,
    resume: bool,
    model_name: str,
    max_pixels: int,
    started: float,
) -> RayReport:
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    nodes = [node for node in ray.nodes() if node["Alive"]]
    _check_writable(ray, nodes, output_dir)
    options = dict(load_options, device=load_options.get("device") or ("cuda" if gpus else "cpu"))
    pool = pool or (1, max(1, gpus or int(resources.get("CPU", 1))))
    report = RayReport(
        manifest=output_dir / MANIFEST,
        nodes=len(nodes),
        actors=f"{pool[0]}" if pool[0] == pool[1] else f"{pool[0]}-{pool[1]}",
    )
    if root_url is None:
        planned = distinct_targets({key: output_path(inputs.root, key, output_dir) for key in inputs.images})
        refuse_overwriting(inputs, [*planned.values(), report.manifest], output_dir)
    recorded = recorded_outputs(report.manifest) if resume else set()
    rows = []
    for key in inputs.images:
        target = output_path(inputs.root, key, output_dir)
        if str(target) in recorded and target.is_file():
            report.skipped_existing += 1
            continue
        # Workers may run in another folder: they read and write absolute paths, the manifest shows them as given.
        source = f"{root_url}/{key.relative_to(inputs.root)}" if root_url else os.path.abspath(key)
        rows.append(
            {
                "input": source if root_url else str(key),
                "output": str(target),
                "source": source,
                "key": str(key) if root_url else source,
                "target": os.path.abspath(target),
            }
        )
    output_dir.mkdir(parents=True, exist_ok=True)
    copy_labels(inputs, output_dir)
    _end_with_newline(report.manifest)

    batches = []
    if rows:
        # At least four calls per actor, so small jobs spread too; whole predictor batches, so equal-sized
        # images are batched as in one process (some CPU kernels round differently by batch size).
        batch = options.get("batch_size", 8)
        chunk = batch * max(1, min(CHUNK // batch, -(-len(rows) // (4 * pool[1] * batch))))
        root = str(inputs.root) if root_url else os.path.abspath(inputs.root)
        translated = ray.data.from_items(rows, override_num_blocks=-(-len(rows) // chunk)).map_batches(
            Translator,
            fn_constructor_kwargs={
                "load_options": options,
                "input_root": root,
                "remote": root_url is not None,
                "model_name": model_name,
                "max_pixels": max_pixels,
            },
            batch_size=chunk,
            compute=ray.data.ActorPoolStrategy(min_size=pool[0], max_size=pool[1]),
            num_cpus=1,
            num_gpus=1 if gpus else 0,
        )
        batches = translated.iter_batches(batch_size=None)
    seen: set[str] = set()
    with (
        open(report.manifest, "a") as manifest,
        tqdm(total=len(rows), unit="img", desc="generate on ray", dynamic_ncols=True) as progress,
    ):
        for batch in batches:
            if not report.first_batch:
                report.startup_seconds, report.first_batch = time.perf_counter() - started, len(batch["record"])
            for line in batch["record"]:
                record = json.loads(line)
                if record["input"] in seen:  # a retried block delivered twice: keep the first
                    continue
                seen.add(record["input"])
                manifest.write(line + "\n")
                if "failed" in record:
                    report.failed.append(record["failed"])
                else:
                    report.written += 1
            manifest.flush()
            progress.update(len(batch["record"]))
            progress.set_postfix(failed=len(report.failed), refresh=False)
    # An actor lost with its node mid-write leaves its temporary behind; the retried batch wrote the file.
    remove_orphaned_temporaries(output_dir, {row["target"] for row in rows})
    report.seconds = time.perf_counter() - started
    for message in report.failed:
        tqdm.write(f"skipped: {message}")
    return report


class Translator:
    """One actor of the pool: an ordinary predictor loaded once, translating batches of rows
    with the one-process path's reading, naming and writing."""

    def __init__(self, load_options: dict, input_root: str, remote: bool, model_name: str, max_pixels: int):
        from . import load

        self.predictor = load(**load_options)
        self.path = PurePosixPath if remote else Path  # keys inside a bucket, or local paths
        self.root = self.path(input_root)
        self.model_name, self.max_pixels = model_name, max_pixels

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[str]]:
        records: list[dict | None] = [None] * len(batch["input"])
        images, classes, usable = [], [], []
        for k, (shown, source, key) in enumerate(zip(batch["input"], batch["source"], batch["key"])):
            try:
                image = _read(str(source), str(shown), self.predictor.input_channels, self.max_pixels)
                if self.predictor.class_conditional:
                    classes += classes_from_folders(self.predictor, self.root, [self.path(str(key))])
            except (DataError, OSError) as error:
                records[k] = failure_record(shown, error)
                continue
            images.append(image)
            usable.append(k)
        tick = time.perf_counter()
        outputs = self.predictor(images, classes or None) if images else []
        per_image = (time.perf_counter() - tick) / max(1, len(images))
        for k, image in zip(usable, outputs):
            record = write_output(
                batch["input"][k], Path(batch["target"][k]), image, self.model_name, self.predictor.backend, per_image
            )
            records[k] = {**record, "output": str(batch["output"][k])}
        return {"record": [json.dumps(record) for record in records]}


def _import_ray():
    try:
        import ray
        import ray.data
    except ImportError:
        raise MissingDependencyError("--ray needs Ray Data: pip install 'i2i[ray]'") from None
    return ray


def _collect(source: str) -> tuple[InputSet, str | None]:
    """Local sources as in one-process generation; URLs (s3://, gs://, …) through fsspec: a
    folder (recursive) or a glob, with the URL of their root (inputs are named by URL, outputs
    by their path below the root)."""
    if "://" not in source:
        return collect_inputs(source), None
    import fsspec

    try:
        filesystem, root = fsspec.core.url_to_fs(source)
    except (ImportError, ValueError) as error:
        scheme = source.split("://", 1)[0]
        raise MissingDependencyError(
            f"{source}: no filesystem for '{scheme}://' is installed ({error}); install its "
            "fsspec package (s3fs, gcsfs, adlfs …)"
        ) from None
    try:
        if any(ch in root for ch in "*?["):
            found = filesystem.glob(root)
            root = os.path.commonpath([os.path.dirname(p) for p in found]) if found else root
        else:
            found = filesystem.find(root)
    except OSError as error:
        raise DataError(f"{source}: cannot list ({error}); check the URL and credentials") from None
    images = sorted(PurePosixPath(p) for p in found if PurePosixPath(p).suffix.lower() in IMAGE_EXTENSIONS)
    if not images:
        raise DataError(f"{source}: no images found; pass a folder, list file or glob of png/jpg/... images")
    return InputSet(PurePosixPath(root), images), filesystem.unstrip_protocol(root).rstrip("/")


def _read(source: str, name: str, channels: int, max_pixels: int) -> np.ndarray:
    if "://" not in source:
        return read_image(Path(source), channels, max_pixels, name)
    import fsspec

    with fsspec.open(source, "rb") as handle:
        return decode_image(handle.read(), channels, name, max_pixels)


def _connect(ray, address: str) -> None:
    """Join the cluster at `address`; `auto` joins the running one or starts a local one."""
    logging.getLogger("ray").setLevel(logging.ERROR)
    if address != "auto":
        host, _, port = address.removeprefix("ray://").rpartition(":")
        if not port.isdigit():
            raise ConfigError(f"--ray {address}: expected auto, HOST:PORT or ray://HOST:PORT")
        try:
            socket.create_connection((host, int(port)), timeout=5).close()
        except OSError as error:
            raise ConfigError(
                f"--ray {address}: no Ray cluster answers there ({error.strerror or error}); start one "
                "with `ray start --head` or use --ray auto"
            ) from None
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # one progress line of our own instead of Ray Data's per operator
    context.enable_auto_log_stats = False
    ray.init(
        address=None if address == "auto" else address,
        logging_level=logging.ERROR,
        log_to_driver=False,
        configure_logging=True,
    )
    logging.getLogger("ray.data").setLevel(logging.ERROR)


def _check_writable(ray, nodes: list[dict], output_dir: Path) -> None:
    """Ask every node whether it can create files in the output folder, before writing anything."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    def writable_reason(output_dir: str) -> str | None:
        # Nested, so Ray ships it by value: the nodes' workers answer without importing i2i and torch.
        path = Path(output_dir)
        while not path.exists():
            path = path.parent
        if not path.is_dir():
            return f"{path} is a file"
        return None if os.access(path, os.W_OK | os.X_OK) else f"{path} is not writable"

    probe = ray.remote(num_cpus=0)(writable_reason)
    answers = ray.get(
        [
            probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)).remote(
                str(output_dir.resolve())
            )
            for node in nodes
        ]
    )
    for node, reason in zip(nodes, answers):
        if reason:
            raise DataError(
                f"{output_dir}: workers on node {node['NodeManagerAddress']} cannot write there ({reason}); "
                "choose an output folder every node can write (a shared mount)"
            )


def _end_with_newline(manifest: Path) -> None:
    """A driver killed mid-line leaves a partial last line; start the next record on a new one."""
    if manifest.is_file() and manifest.stat().st_size:
        with open(manifest, "rb+") as handle:
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) != b"\n":
                handle.write(b"\n")


def _user_cause(error: BaseException) -> UserError | None:
    """The UserError behind a Ray error (an actor's predictor failing to load), if any."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        cause = getattr(error, "cause", None)
        if isinstance(cause, UserError):
            return type(cause)(*cause.args)
        error = cause if isinstance(cause, BaseException) else error.__cause__
    return None
