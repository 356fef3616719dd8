"""`i2i distill`: the config of a student run, derived from its teacher's run; `train` trains it.

The student inherits what makes its outputs comparable with the teacher's (the data, crop size,
normalization, the generator's upsampling and residual form) and changes only its size: by
default the teacher's ResNet at a quarter of its width, ~16× fewer multiply-adds.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from i2i.config import DISTILL_STEPS, RESNET_GENERATORS, RunConfig, load_config, with_defaults
from i2i.errors import ConfigError
from i2i.io import latest_checkpoint, load_state
from i2i.rundir import generator_names

from .configure import configure

# The default student's width: this fraction of the teacher's, at least MIN_NGF.
WIDTH_FRACTION, MIN_NGF = 4, 8


def distill_config(
    teacher_run: Path,
    direction: str = "AtoB",
    net_g: str | None = None,
    ngf: int | None = None,
    data: Path | None = None,
    extra_sources: tuple[Path, ...] = (),
    raw: dict[str, Any] | None = None,
) -> RunConfig:
    """The student's config: `raw` (train_config.json keys, e.g. from --config and options) over
    what the teacher's run implies. `data` replaces the teacher's data folder (trainA/, trainB/),
    which an imported teacher does not have."""
    teacher_run = Path(teacher_run).resolve()
    teacher = load_config(teacher_run)
    if teacher.model == "distill":
        raise ConfigError(
            f"{teacher_run} is itself a student; distil from its teacher {teacher.alg.distill.teacher} instead"
        )
    if direction not in generator_names(teacher):
        raise ConfigError(
            f"{teacher_run}: a {teacher.model} run translates {' and '.join(generator_names(teacher))}, "
            f"not {direction}; pass --direction {next(iter(generator_names(teacher)))}"
        )
    dataroot = Path(data).resolve() if data else Path(teacher.data.dataroot) if teacher.data.dataroot else None
    if dataroot is None:
        raise ConfigError(
            f"{teacher_run} holds no training data (an imported generator); pass --data DIR with trainA/ and trainB/"
        )
    for folder in extra_sources:
        if not Path(folder).is_dir():
            raise ConfigError(f"--extra-sources {folder}: no such folder; give a folder of source-domain images")
    teacher_g = dataclasses.asdict(teacher.G)
    student_net = net_g or (teacher.G.netG if teacher.G.netG in RESNET_GENERATORS else "resnet_9blocks")
    student_g = {
        **teacher_g,
        "netG": student_net,
        "ngf": ngf or max(MIN_NGF, teacher.G.ngf // WIDTH_FRACTION),
        "residual": teacher.G.residual and student_net in RESNET_GENERATORS,
    }
    derived = {
        "model": "distill",
        "G": student_g,
        "D": dataclasses.asdict(teacher.D),
        "data": {**dataclasses.asdict(teacher.data), "dataroot": str(dataroot)},
        "train": {
            "steps": DISTILL_STEPS,
            "diff_augment": teacher.train.diff_augment,
            "gan_mode": teacher.train.gan_mode,
            "seed": teacher.train.seed,
        },
        "alg": {
            "recycle_gan": dataclasses.asdict(teacher.alg.recycle_gan),
            "distill": {
                "teacher": str(teacher_run),
                "teacher_model": teacher.model,
                "teacher_step": _reached_step(teacher_run),
                "teacher_G": teacher_g,
                "direction": direction,
                "extra_sources": ",".join(str(Path(folder).resolve()) for folder in extra_sources),
            },
        },
    }
    return configure(with_defaults(raw or {}, derived), source="distill options")


def _reached_step(run_dir: Path) -> int:
    return int(load_state(latest_checkpoint(run_dir)).get("step", 0))
