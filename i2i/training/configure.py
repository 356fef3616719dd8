"""From what a user asked for to a complete training config: presets, the model's own defaults,
the values derived from others (and from the data), then every check, the model's included.

`i2i train`, `i2i distill` and Python's `configure` all come through here, so the same request
gives the same train_config.json. Stored configs are complete: `RunConfig.from_dict` reads them
without any of this (and without importing the training stack).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from i2i.config import RunConfig, with_defaults
from i2i.errors import ConfigError

from .models import canonical_name, model_class

# Named starting points of `i2i train --preset`, per model: train_config.json keys that apply
# where the user's --config and options set nothing (and over the model's own defaults).
# short: against the lattice artifacts of short CPU runs, each model's recipe as measured at 30
# CPU-minutes on photo → Monet (benchmarks/results/quality.md, "Lattice artifacts at short budgets").
# Both: an identity-started generator that resizes then convolves (the measured cause of
# CycleGAN's lattice is its transposed convolutions) and a discriminator behind DiffAugment, for
# small data. CycleGAN: no identity loss (with a residual generator it holds G at the identity)
# and a cycle weight of 2, not 10: an L1 cycle loss at 10 outweighs the discriminator's pull on
# every pixel and the resize-convolution generator stays at the identity; adding spectral norm
# to DiffAugment made its translation worse. CUT: a spectral-norm discriminator. Both: the
# projected discriminator on frozen EfficientNet-Lite1 features behind its low-pass
# (PROJECTED_DEFAULTS), which in the same CPU time translates closer to the paintings than the
# PatchGAN in every measured run ("Translating at the paintings' size" in quality.md), at 14-30 %
# more per step.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "short": {
        "cycle_gan": {
            "G": {"residual": True, "upsample": "nearest"},
            "D": {"netD": "projected"},
            "train": {"diff_augment": "color,translation,cutout"},
            "alg": {"cycle_gan": {"lambda_identity": 0.0, "lambda_A": 2.0, "lambda_B": 2.0}},
        },
        "cut": {
            "G": {"residual": True, "upsample": "nearest"},
            "D": {"netD": "projected", "spectral_norm": True},
            "train": {"diff_augment": "color,translation,cutout"},
        },
    }
}
# What a projected discriminator (alone or beside a PatchGAN) needs to train as designed, where the
# user and the preset set nothing: Projected GAN trains its heads on unnormalised pretrained
# features with the hinge loss, and without the low-pass before them the generator paints a
# period-4 lattice that EfficientNet's strided convolutions alias into those features (artifact
# score 4.14 against the paintings' 0.75-1.79, quality.md).
PROJECTED_DEFAULTS: dict[str, dict[str, Any]] = {"train": {"gan_mode": "hinge"}, "D": {"lowpass": True}}
# CycleGAN's resize-then-crop margin: a 256 crop from images resized to 286.
LOAD_MARGIN = 286 / 256


def configure(raw: dict[str, Any], preset: str | None = None, source: str = "config") -> RunConfig:
    """The complete, checked config of `raw` (train_config.json keys, nested; anything left out
    gets its default): the preset, then its discriminator's needs, then the model's defaults, fill
    what `raw` leaves open; a crop size without a load size gets the load size CycleGAN's ratio
    gives; a class dataset without class names gets its folders' names; a source-class loss
    without a class count gets the number of labels in trainA."""
    raw = dict(raw)
    if "model" in raw:
        raw["model"] = canonical_name(raw["model"]) if isinstance(raw["model"], str) else raw["model"]
    if preset:
        raw = with_preset(raw, preset)
    netD = raw["D"].get("netD") if isinstance(raw.get("D"), dict) else None
    if isinstance(netD, str) and "projected" in netD:
        raw = with_defaults(raw, PROJECTED_DEFAULTS)
    raw = with_defaults(raw, model_class(raw.get("model", RunConfig.model)).defaults)
    data = raw.get("data")
    if isinstance(data, dict):
        raw["data"] = data = dict(data)
        if isinstance(data.get("crop_size"), int) and "load_size" not in data:
            data["load_size"] = round(data["crop_size"] * LOAD_MARGIN)
        if data.get("dataset_mode") == "class" and not data.get("class_names") and data.get("dataroot"):
            from .labels import class_names

            data["class_names"] = class_names(Path(data["dataroot"]) / "trainA")
            data.setdefault("semantic_nc", len(data["class_names"]))
        semantic = raw.get("alg", {}).get("semantic", {}) if isinstance(raw.get("alg"), dict) else {}
        if isinstance(semantic, dict) and semantic.get("lambda_source_class") and not data.get("semantic_nc"):
            from i2i.evaluation.label_preservation import labelled_paths

            labels = labelled_paths(Path(data.get("dataroot", "")) / "trainA")
            data["semantic_nc"] = max(label for _, label in labels) + 1
    return check(RunConfig.from_dict(raw, source=source))


def for_model(model: str) -> RunConfig:
    """The defaults of `i2i train --model MODEL`: the field defaults with the model's own over them."""
    return configure({"model": model})


def check(config: RunConfig) -> RunConfig:
    """Every check of a config about to train: the schema's (ranges, model-independent rules),
    then the model's own (`check_config`)."""
    config.validate()
    model_class(config.model).check_config(config)
    return config


def with_preset(raw: dict[str, Any], preset: str) -> dict[str, Any]:
    """`raw` with the named PRESETS entry of its model filled in where `raw` has no value."""
    if preset not in PRESETS:
        raise ConfigError(f"--preset {preset}: choose one of {', '.join(PRESETS)}")
    model = raw.get("model", RunConfig.model)
    if model not in PRESETS[preset]:
        raise ConfigError(
            f"--preset {preset} is measured for {' and '.join(PRESETS[preset])}, not {model}: "
            "set the options in --config instead"
        )
    return with_defaults(raw, PRESETS[preset][model])
