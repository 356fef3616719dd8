"""The training loop shared by every model: data, steps, logging, samples, checkpoints, resume.

Runs as one process, or one process per GPU/CPU worker under `torchrun` (gradients are
averaged across processes; rank 0 alone writes to the run directory). Resuming takes the
newest checkpoint whose files all load, whatever `latest` says; the first non-finite loss
stops training with the last good checkpoint kept.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch import distributed as dist
from torch.utils.data import DataLoader, Sampler
from tqdm import tqdm

from i2i.config import RunConfig, load_config, save_config
from i2i.errors import CheckpointError, ConfigError, TrainingDiverged, one_line
from i2i.evaluation.visualize import plot_loss_curves, save_image_grid, tensor_to_uint8
from i2i.io import (
    append_line,
    atomic_write_bytes,
    check_checkpoint_files,
    checkpoint_candidates,
    latest_checkpoint,
    load_state,
    load_tensors,
    read_json_lines,
    save_checkpoint,
)
from i2i.nets import size_multiple
from i2i.outputs import RUN_PART, claim_folder
from i2i.rundir import generator_names

from .configure import check
from .datasets import LabeledDataset, TemporalDataset
from .models import MODELS, TranslationModel

LOSS_LOG = "losses.jsonl"
# Records a resume rewinds past (they are logged again) and damaged lines: moved here, not lost.
SUPERSEDED_LOG = "losses.superseded.jsonl"
SAMPLE_COUNT = 4
TIMED_STEPS = 5  # the expected duration is printed after this many steps


class StepBatches(Sampler[list[int]]):
    """Yields, for each step from `start_step`, the sample numbers this process trains on.

    Sample numbers are global (step, rank, position in batch), so every process sees
    different samples and the stream does not depend on where training was resumed.
    """

    def __init__(self, start_step: int, steps: int, batch_size: int, rank: int, world: int):
        self.start_step, self.steps, self.batch_size, self.rank, self.world = start_step, steps, batch_size, rank, world

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.start_step, self.steps):
            first = (step * self.world + self.rank) * self.batch_size
            yield list(range(first, first + self.batch_size))

    def __len__(self) -> int:
        return self.steps - self.start_step


def _ignore_sigint_in_worker(_: int) -> None:
    # Ctrl-C is handled by the main process, which finishes its step and checkpoints;
    # workers dying on the same signal would break that last step.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class StopRequest:
    """The first Ctrl-C asks the loop to stop after the current step; a second one aborts."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def __enter__(self) -> "StopRequest":
        self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        signal.signal(signal.SIGINT, self._previous)

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True


class Trainer:
    def __init__(self, config: RunConfig, run_dir: Path, resume: bool = False):
        self.config = config
        self.run_dir = Path(run_dir)
        self.rank = dist.get_rank() if dist.is_initialized() else 0
        self.world = dist.get_world_size() if dist.is_initialized() else 1
        self.is_main = self.rank == 0
        self.device = _pick_device()
        multiple = size_multiple(config.G)
        if config.data.crop_size % multiple:
            raise ConfigError(
                f"{config.G.netG} needs a crop size that is a multiple of {multiple} (got {config.data.crop_size})"
            )
        self.dataset = MODELS[config.model].build_dataset(config)
        torch.manual_seed(config.train.seed)
        self.model: TranslationModel = MODELS[config.model](config, self.device, _autocast_dtype(config, self.device))
        self.start_step = self._restore() if resume else 0
        if self.start_step == 0:
            self.model.prepare()
        self.sample_batch = self._collate([self.dataset[k] for k in range(SAMPLE_COUNT)])
        self.evaluator = None
        if config.train.eval_every and self.is_main:
            if config.data.dataset_mode in ("unaligned", "bbox", "mask"):
                from .periodic_eval import PeriodicEvaluator

                self.evaluator = PeriodicEvaluator(config, self.device)
            else:
                tqdm.write(f"--eval-every: not available for {config.data.dataset_mode} datasets; skipped")

    def _collate(self, samples: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        batch = {key: torch.stack([s[key] for s in samples]) for key in samples[0]}
        return {key: self._to_device(value) for key, value in batch.items()}

    def _to_device(self, tensor: torch.Tensor) -> torch.Tensor:
        tensor = tensor.to(self.device, non_blocking=True)
        # Clip batches are 5-D [N, T, C, H, W]; channels_last is defined for 4-D ones.
        return (
            tensor.contiguous(memory_format=torch.channels_last)
            if self.device.type == "cuda" and tensor.dim() == 4
            else tensor
        )

    def _loader(self) -> DataLoader:
        t, data = self.config.train, self.config.data
        return DataLoader(
            self.dataset,
            batch_sampler=StepBatches(self.start_step, t.steps, t.batch_size, self.rank, self.world),
            num_workers=data.num_workers,
            pin_memory=self.device.type == "cuda",
            worker_init_fn=_ignore_sigint_in_worker if data.num_workers else None,
            persistent_workers=False,
            prefetch_factor=4 if data.num_workers else None,
        )

    def fit(self) -> int:
        """Train until `train.steps` or Ctrl-C; return the last completed step."""
        t = self.config.train
        writer = _tensorboard(self.run_dir) if self.is_main else None
        progress = tqdm(
            total=t.steps,
            initial=self.start_step,
            disable=not self.is_main,
            dynamic_ncols=True,
            desc=f"{self.config.model}",
            unit="step",
        )
        window: list[dict[str, float]] = []
        step = self.start_step
        if self.is_main:
            tqdm.write(self.summary())
        started = time.perf_counter()
        self.model.train()
        with StopRequest() as stop, progress:  # the bar ends its line also when a step raises
            for batch in self._loader():
                batch = {key: self._to_device(value) for key, value in batch.items()}
                torch.manual_seed(hash((t.seed, self.rank, step)) % 2**63)  # dropout, if any, replays on resume
                lr = self.model.set_learning_rate(step)
                losses = self.model.training_step(batch, step)
                _stop_if_diverged(losses, step + 1, lr, self.run_dir)
                step += 1
                window.append(losses)
                progress.update(1)
                if self.is_main:
                    self._on_step(step, lr, losses, window, writer, progress, started)
                    if step - self.start_step == TIMED_STEPS and step < t.steps:
                        per_step = (time.perf_counter() - started) / TIMED_STEPS
                        tqdm.write(
                            f"  timing   {per_step:.3f} s/step over the first {TIMED_STEPS} steps: about "
                            f"{_duration(per_step * (t.steps - step))} to step {t.steps}"
                        )
                if stop.requested:
                    break
        if self.is_main:
            self._save(step)
            if writer:
                writer.close()
            if (self.run_dir / LOSS_LOG).exists():  # absent when stopped before the first --log-every step
                plot_loss_curves(self.run_dir / LOSS_LOG, self.run_dir / "loss_curves.png")
            if stop.requested:
                tqdm.write(
                    f"interrupted: checkpoint saved at step {step}; continue with `i2i train --resume {self.run_dir}`"
                )
        return step

    def summary(self) -> str:
        """The block printed before the first step: where, on what, with what, for how long."""
        config, t = self.config, self.config.train
        device = torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else "cpu"
        autocast = self.model.autocast_dtype
        parameters = ", ".join(
            f"{name} {count / 1e6:.2f} M"
            for name, net in self.model.networks.items()
            if (count := sum(p.numel() for p in net.parameters()))
        )
        processes = f" × {self.world} processes" if self.world > 1 else ""
        return "\n".join(
            [
                f"i2i train {config.model} → {self.run_dir}",
                f"  data     {config.data.dataroot}: {_domain_sizes(self.dataset)}; {config.data.crop_size} px crops",
                f"  device   {device}{processes}, {torch.get_num_threads()} threads, "
                f"{'bf16 autocast' if autocast == torch.bfloat16 else 'fp32'}, "
                f"data-loader workers {config.data.num_workers}",
                f"  model    {config.G.netG} ngf {config.G.ngf}; parameters {parameters}",
                f"  steps    {self.start_step} → {t.steps}, batch {t.batch_size}; losses every {t.log_every}, "
                f"samples every {t.sample_every}, checkpoint every {t.save_every}",
            ]
        )

    def _on_step(self, step, lr, losses, window, writer, progress, started) -> None:
        t = self.config.train
        progress.set_postfix({k: f"{v:.3f}" for k, v in losses.items()}, refresh=False)
        if step % t.log_every == 0 or step == t.steps:
            means = {k: float(np.mean([w[k] for w in window])) for k in window[0]}
            record = {"step": step, "lr": lr, **means, "time": round(time.perf_counter() - started, 3)}
            append_line(self.run_dir / LOSS_LOG, json.dumps(record))
            for name, value in means.items():
                writer.add_scalar(f"loss/{name}", value, step)
            writer.add_scalar("lr", lr, step)
            window.clear()
        if step % t.sample_every == 0 or step == t.steps:
            self._write_samples(step, writer)
        if self.evaluator is not None and step % t.eval_every == 0:
            self.model.train(False)
            generator = self.model.networks[next(iter(generator_names(self.config).values()))]
            record = self.evaluator(generator, step, self.run_dir, writer)
            self.model.train(True)
            tqdm.write(
                f"step {step}: FD {record['frechet_distance']:.1f}, KID {record['kid']:.4f} (efficientnet-lite0), "
                f"artifacts {record['artifact_score']:.2f} (real B = 1, untranslated A "
                f"{record['sources_artifact_score']:.2f})"
            )
        if step % t.save_every == 0:
            self._save(step)

    def _write_samples(self, step: int, writer) -> None:
        self.model.train(False)
        rows = {name: tensor_to_uint8(images) for name, images in self.model.sample_rows(self.sample_batch).items()}
        self.model.train(True)
        grid = save_image_grid(self.run_dir / "samples" / f"step_{step:06d}.png", rows)
        writer.add_image("samples", grid, step, dataformats="HWC")

    def _save(self, step: int) -> None:
        model = self.model
        for name, net in model.networks.items():  # finite losses can still leave inf/nan weights (a huge --lr)
            if not all(bool(torch.isfinite(p).all()) for p in net.parameters()):
                raise _diverged(self.run_dir, step, f"{name} has non-finite weights", self.config.train.lr)
        files = {name: net.state_dict() for name, net in model.networks.items()}
        optimizer_state = {}
        for name, optimizer in model.optimizers.items():
            tensors, groups = _flatten_optimizer(optimizer.state_dict())
            files[f"optimizer_{name}"] = tensors
            optimizer_state[name] = groups
        files.update(model.extra_state())
        state = {"step": step, "model": self.config.model, "optimizers": optimizer_state, "world_size": self.world}
        save_checkpoint(self.run_dir / "checkpoints", step, files, state, self.config.train.keep_checkpoints)

    def _restore(self) -> int:
        """Load the newest checkpoint that is complete (every file present and loadable) and
        return its step; CheckpointError when there is none."""
        skipped = []
        for folder in checkpoint_candidates(self.run_dir):
            try:
                state, files = self._read_checkpoint(folder)
                self._apply_checkpoint(folder, state, files)
            except CheckpointError as error:  # the next older one replaces whatever this one set
                skipped.append(f"{folder.name}: {error}")
                continue
            step = int(state["step"])
            if self.is_main:
                moved = _rewind_log(self.run_dir, step)
                note = f"; skipped {len(skipped)} incomplete newer checkpoint(s), first {skipped[0]}" if skipped else ""
                note += f"; {moved} log line(s) past it moved to {SUPERSEDED_LOG}" if moved else ""
                tqdm.write(f"resuming {self.run_dir} from {folder.name}{note}")
            return step
        reason = f" ({len(skipped)} incomplete, newest {skipped[0]})" if skipped else ""
        raise CheckpointError(
            f"{self.run_dir}: no complete checkpoint to resume from{reason}; "
            f"start a new run with `i2i train DATA --out` another folder, or delete {self.run_dir}"
        )

    def _read_checkpoint(self, folder: Path) -> tuple[dict, dict[str, dict[str, torch.Tensor]]]:
        """state.json and every tensor file a resume needs, loaded (and so verified) before any is applied."""
        state = load_state(folder)
        check_checkpoint_files(folder, state)
        model = self.model
        names = list(model.networks) + [f"optimizer_{name}" for name in model.optimizers] + list(model.extra_state())
        if not isinstance(state.get("optimizers"), dict) or set(state["optimizers"]) != set(model.optimizers):
            raise CheckpointError(f"{folder / 'state.json'}: optimizer state missing or for another model")
        return state, {name: load_tensors(folder / f"{name}.safetensors") for name in names}

    def _apply_checkpoint(self, folder: Path, state: dict, files: dict[str, dict[str, torch.Tensor]]) -> None:
        if state.get("world_size", 1) != self.world:
            raise ConfigError(
                f"{folder}: saved by {state['world_size']} process(es), resuming with {self.world}; "
                "resume with the same number of processes to continue the same sample stream"
            )
        model = self.model
        for name, net in model.networks.items():
            try:
                net.load_state_dict(files[name])
            except RuntimeError as exc:
                raise CheckpointError(
                    f"{folder / name}.safetensors does not match train_config.json ({str(exc).splitlines()[0]})"
                ) from None
        # What safetensors and JSON cannot vouch for: keys, types and shapes of the state within.
        try:
            for name, optimizer in model.optimizers.items():
                optimizer.load_state_dict(_unflatten_optimizer(files[f"optimizer_{name}"], state["optimizers"][name]))
                _check_moments(optimizer)
            model.load_extra_state({name: files[name] for name in model.extra_state()})
        except (CheckpointError, KeyError, TypeError, ValueError, IndexError, RuntimeError) as exc:
            raise CheckpointError(f"{folder}: damaged optimizer or pool state ({one_line(exc)})") from None


def _stop_if_diverged(losses: dict[str, float], step: int, lr: float, run_dir: Path) -> None:
    """TrainingDiverged at the first non-finite loss: later steps would only spread it, and no
    checkpoint of these weights is written, so the last good one stays the newest."""
    bad = [name for name, value in losses.items() if not math.isfinite(value)]
    if bad:
        raise _diverged(run_dir, step, f"loss {bad[0]} is {losses[bad[0]]}", lr)


def _diverged(run_dir: Path, step: int, what: str, lr: float) -> TrainingDiverged:
    kept = checkpoint_candidates(run_dir)
    where = f"the last good checkpoint is {kept[0]}" if kept else "no checkpoint was written"
    return TrainingDiverged(
        f"step {step}: {what} (training diverged; {where}); "
        f"lower the learning rate (--lr, now {lr:g}) or use --precision fp32"
    )


def _domain_sizes(dataset) -> str:
    if isinstance(dataset, TemporalDataset):
        return ", ".join(
            f"train{domain} {len(triplets)} frame triplets" for domain, triplets in dataset.triplets.items()
        )
    if isinstance(dataset, LabeledDataset):
        counts = {domain: len(scan.samples) for domain, scan in dataset.scans.items()}
    else:
        counts = {"A": len(dataset.paths_A), "B": len(dataset.paths_B)}
    return ", ".join(f"train{domain} {count} images" for domain, count in counts.items())


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"


def _flatten_optimizer(state: dict) -> tuple[dict[str, torch.Tensor], list[dict]]:
    tensors = {}
    for index, values in state["state"].items():
        for key, value in values.items():
            tensors[f"{index}.{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
    return tensors, state["param_groups"]


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], groups: list[dict]) -> dict:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    for group in groups:
        group["betas"] = tuple(group["betas"])
    return {"state": state, "param_groups": groups}


def _check_moments(optimizer: torch.optim.Optimizer) -> None:
    """Adam's moments have their parameter's shape (load_state_dict checks only the group sizes)."""
    for group in optimizer.param_groups:
        for param in group["params"]:
            for key, value in optimizer.state.get(param, {}).items():
                if key != "step" and value.shape != param.shape:
                    raise CheckpointError(
                        f"{key} of shape {tuple(value.shape)} for a parameter of {tuple(param.shape)}"
                    )


def _rewind_log(run_dir: Path, step: int) -> int:
    """Keep the loss records up to `step` in the log; move later ones (the resumed run logs
    them again) and damaged lines (a kill mid-write) to SUPERSEDED_LOG. Returns how many moved."""
    path = run_dir / LOSS_LOG
    if not path.exists():
        return 0
    records, damaged = read_json_lines(path)
    kept = [r for r in records if isinstance(r.get("step"), int) and r["step"] <= step]
    moved = [json.dumps(r) for r in records if r not in kept] + damaged
    if moved:
        append_line(run_dir / SUPERSEDED_LOG, "\n".join(moved))
        atomic_write_bytes(path, "".join(json.dumps(r) + "\n" for r in kept).encode())
    return len(moved)


def _pick_device() -> torch.device:
    if torch.cuda.is_available():
        local_rank = int(os.environ.get("LOCAL_RANK", 0))
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def _autocast_dtype(config: RunConfig, device: torch.device) -> torch.dtype | None:
    precision = config.train.precision
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
    if precision == "bf16" and device.type != "cuda":
        raise ConfigError("train.precision bf16 needs a CUDA GPU; use fp32 (or auto) on CPU")
    return torch.bfloat16 if precision == "bf16" else None


def _tensorboard(run_dir: Path):
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(str(run_dir / "tensorboard"))


def _init_distributed() -> None:
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")


def train(config: RunConfig, run_dir: Path) -> int:
    """Start a new run in `run_dir` (which must not already hold one); return the last step."""
    _init_distributed()
    run_dir = Path(run_dir)
    check(config)
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"--out {run_dir}: exists and is not a folder; pick another --out")
    _refuse_run_inside_data(run_dir, Path(config.data.dataroot))
    # held first, so that a second `i2i train` into the folder hears who writes it
    with _claim_run(run_dir):
        if (run_dir / "train_config.json").exists():
            raise ConfigError(
                f"{run_dir} already holds a run; continue it with `i2i train --resume {run_dir}` or pick another --out"
            )
        trainer = Trainer(config, run_dir)  # validates the data before anything is written
        if trainer.is_main:
            save_config(config, run_dir)
            skipped = getattr(trainer.dataset, "skipped", [])
            if skipped:
                atomic_write_bytes(run_dir / "skipped_samples.txt", "".join(m + "\n" for m in skipped).encode())
                tqdm.write(
                    f"skipped {len(skipped)} bad sample(s) (--skip-bad); listed in {run_dir / 'skipped_samples.txt'}"
                )
        return trainer.fit()


def _claim_run(run_dir: Path):
    """The run directory held by this process (rank 0 alone writes it) while it trains."""
    is_main = not dist.is_initialized() or dist.get_rank() == 0
    return claim_folder(run_dir, RUN_PART, nested=True) if is_main else contextlib.nullcontext()


def _refuse_run_inside_data(run_dir: Path, dataroot: Path) -> None:
    """A run directory inside a domain folder would add its samples to that domain's images."""
    for folder in sorted(dataroot.glob("*")):
        inside = run_dir.resolve().is_relative_to(folder.resolve())
        if folder.is_dir() and folder.name[:-1] in ("train", "test", "val") and inside:
            raise ConfigError(
                f"--out {run_dir}: inside the data folder {folder}, whose images it would join; "
                "put runs outside the dataset (e.g. runs/)"
            )


def resume(run_dir: Path, changes: dict[str, Any] | None = None) -> int:
    """Continue a run from its newest complete checkpoint; return the last step.

    `changes` maps keys of i2i.config.RESUMABLE to new values, e.g. {"train.steps": 40000} to
    extend a finished run (the learning rate then decays over the new length); they are recorded
    in train_config.json's `history`. A run already at its last step trains nothing and says so."""
    _init_distributed()
    run_dir = Path(run_dir)
    config = check(load_config(run_dir))
    if not config.data.dataroot:
        raise ConfigError(
            f"{run_dir} was made by `i2i import`: it holds a generator but no training data or optimizer "
            "state to resume from; train a new run with `i2i train DATA`"
        )
    try:
        reached = int(load_state(latest_checkpoint(run_dir))["step"])
    except CheckpointError:
        reached = 0
    changed = config.change_for_resume(changes or {}, reached)
    if config.train.steps < reached:
        raise ConfigError(
            f"{run_dir} is at step {reached}; --steps {config.train.steps} would end before it "
            f"(--steps is the total, not the number of extra steps)"
        )
    is_main = not dist.is_initialized() or dist.get_rank() == 0
    with _claim_run(run_dir):
        # Loading first verifies the newest complete checkpoint and repairs the logs (a damaged newest
        # step is retrained), also when the run claims to be finished; the data is checked before the
        # config is rewritten.
        trainer = Trainer(config, run_dir, resume=True)
        if trainer.start_step >= config.train.steps:
            if is_main:
                tqdm.write(
                    f"{run_dir}: already trained to its last step {trainer.start_step}; nothing to do (train longer "
                    f"with `i2i train --resume {run_dir} --steps {2 * trainer.start_step}`)"
                )
            return trainer.start_step
        if changed and is_main:
            save_config(config, run_dir)
            tqdm.write(
                f"{run_dir}: changed {', '.join(f'{key} {old} → {new}' for key, (old, new) in changed.items())} "
                "(recorded in train_config.json's history)"
            )
        return trainer.fit()
