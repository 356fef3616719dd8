"""Run configuration: dataclasses that round-trip to a versioned train_config.json.

Keys are grouped the way JoliGEN users know them (`G`, `D`, `data`, `train`, `alg`), so an
import from JoliGEN is mostly a renaming. Unknown keys and newer schemas are errors: a config
that i2i does not fully understand must not be half-applied.

This module reads and checks complete configs (a run's train_config.json, an export's
metadata) and imports nothing from training: what a user's partial request becomes — presets,
each model's defaults and checks, derived values — is training/configure.py's job.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from . import __version__
from .errors import ConfigError

# 2: G.antialias_up (a bool) became G.upsample (a choice of four).
# 3: alg.recycle_gan.predictor_residual, off in the runs trained before it. Older files are migrated.
SCHEMA_VERSION = 3
CONFIG_FILENAME = "train_config.json"
# What `i2i train --resume RUN` may change: nothing that shapes the networks or the data, so the
# checkpoints stay valid (config keys; the train command's options for them are cli_options').
RESUMABLE = (
    "train.steps",
    "data.num_workers",
    "train.save_every",
    "train.sample_every",
    "train.log_every",
    "train.eval_every",
)
RESNET_GENERATORS = ("resnet_9blocks", "resnet_6blocks", "mobile_resnet_9blocks")
ATTENTION_GENERATORS = ("resnet_attn", "mobile_resnet_attn")
GENERATORS = RESNET_GENERATORS + ("unet_128", "unet_256") + ATTENTION_GENERATORS
# PatchGANs (basic: 3 layers, n_layers: D.n_layers), heads on frozen pretrained features
# (projected, Sauer et al. 2021), or a PatchGAN beside them.
DISCRIMINATORS = ("basic", "n_layers", "projected", "basic+projected")
# How the ResNet generators double the resolution: transposed convolution (CycleGAN), CUT's
# blur-upsampling, or resize-then-convolve (Odena et al. 2016), which cannot make a checkerboard.
UPSAMPLINGS = ("transpose", "blur", "nearest", "bilinear")
# Adversarial losses: least squares, the original log loss, or the hinge loss (Lim & Ye 2017) that
# Projected GAN trains its heads with: its generator loss, -D(fake), keeps its gradient's size
# when the discriminator's outputs are large, as they are on unnormalised pretrained features.
GAN_MODES = ("lsgan", "vanilla", "hinge")
# DiffAugment (Zhao et al. 2020) transforms the discriminator may see real and fake images through.
DIFF_AUGMENT_OPS = ("color", "translation", "cutout")
DATASET_MODES = ("unaligned", "temporal", "class", "bbox", "mask")
TRAIN_PRECISIONS = ("auto", "fp32", "bf16")  # auto = bf16 autocast on CUDA, fp32 on CPU


def between(low: float, high: float, open_low: bool = False, open_high: bool = False) -> dict[str, Any]:
    """A numeric field's allowed values, as dataclass field metadata: the schema's one place for
    ranges, checked by `RunConfig.validate` before anything is built or written."""
    return {"range": (low, high, open_low, open_high)}


# A loss weight: off at 0, and large enough to overrule every other term at the top.
WEIGHT = between(0, 10**4)


@dataclass
class GeneratorConfig:
    netG: str = "resnet_9blocks"
    ngf: int = field(default=64, metadata=between(1, 1024))
    norm: str = "instance"
    dropout: bool = False
    # CUT's anti-aliased downsampling (blur pooling) in the ResNet generators.
    antialias: bool = False
    # ResNet generators: one of UPSAMPLINGS.
    upsample: str = "transpose"
    # ResNet generators: predict a change to the input, clamp(x + tanh(...)), starting from the
    # identity (zeroed last conv). Style transfer keeps most of the picture, so a short training
    # run spends its steps on the style instead of on relearning sharp detail through the
    # bottleneck (blur is what the Fréchet distance punishes most). A pixel moves by less than
    # half the value range: for style and palette, not for large tone changes like night-to-day.
    residual: bool = False
    # ResNet generators: a learned global affine warp (spatial transformer) in front, for domains
    # that differ in position and scale (i2i/nets/warp.py). Not with tiling.
    affine_warp: bool = False
    # Residual ResNet generators: > 0 also predicts a displacement per pixel of at most this many
    # pixels, through which the input is resampled before the change is added: for objects that
    # differ in size, thickness or shape while what surrounds them stays (i2i/nets/warp.py). 0 = off.
    flow_warp: int = field(default=0, metadata=between(0, 1024))
    # JoliGEN's attention generators (resnet_attn, mobile_resnet_attn) only: residual blocks,
    # attention planes, how many of them copy the input, padding, and JoliGEN's
    # backward-compatibility switch that runs the residual blocks twice.
    attn_blocks: int = field(default=9, metadata=between(1, 64))
    attn_masks: int = field(default=10, metadata=between(1, 64))
    attn_input_masks: int = field(default=1, metadata=between(0, 63))
    padding_type: str = "reflect"
    twice_resnet_blocks: bool = False


@dataclass
class DiscriminatorConfig:
    netD: str = "basic"
    ndf: int = field(default=64, metadata=between(1, 1024))
    n_layers: int = field(default=3, metadata=between(1, 8))
    norm: str = "instance"
    # Spectral normalization of every convolution (Miyato et al. 2018): D's Lipschitz bound keeps
    # its gradients to G smooth instead of peaked at its stride periods.
    spectral_norm: bool = False
    # A projected discriminator's images low-passed (7-tap binomial) before the pretrained
    # features: their strided convolutions alias patterns of period 2-4 into what they measure,
    # and a generator learns to paint such patterns to move the features (measured at 30
    # CPU-minutes: artifact score 4.1 without, benchmarks/results/quality.md). On for every
    # projected discriminator unless the config says false (training.configure.PROJECTED_DEFAULTS).
    lowpass: bool = False


@dataclass
class DataConfig:
    dataroot: str = ""
    dataset_mode: str = "unaligned"
    input_nc: int = field(default=3, metadata=between(1, 3))
    output_nc: int = field(default=3, metadata=between(1, 3))
    load_size: int = field(default=286, metadata=between(8, 8192))
    crop_size: int = field(default=256, metadata=between(8, 8192))
    preprocess: str = "resize_and_crop"
    flip: bool = True
    num_workers: int = field(default=2, metadata=between(0, 256))
    # Images are mapped to [-1, 1] on the way in and back on the way out (tanh output).
    normalization: str = "minus1_1"
    # Labelled modes (class, bbox, mask): number of classes (bbox/mask: including background 0).
    semantic_nc: int = field(default=0, metadata=between(0, 255))
    class_names: list = field(default_factory=list)
    skip_bad: bool = False


@dataclass
class TrainConfig:
    steps: int = field(default=20000, metadata=between(1, 10**9))
    batch_size: int = field(default=1, metadata=between(1, 4096))
    lr: float = field(default=2e-4, metadata=between(0, 1, open_low=True))
    beta1: float = field(default=0.5, metadata=between(0, 1, open_high=True))
    beta2: float = field(default=0.999, metadata=between(0, 1, open_high=True))
    # The discriminators' learning rate relative to `lr` (TTUR, Heusel et al. 2017, uses 2-4).
    lr_D_ratio: float = field(default=1.0, metadata=between(0, 100, open_low=True))
    # DiffAugment policy: comma-separated DIFF_AUGMENT_OPS applied, differentiably, to every image
    # a discriminator judges (real and fake alike); "" = off. For small data and short budgets.
    diff_augment: str = ""
    # Constant learning rate until `decay_start` (fraction of steps), then linear decay to 0,
    # as in the CycleGAN paper (100 epochs constant + 100 decaying).
    decay_start: float = field(default=0.5, metadata=between(0, 1))
    gan_mode: str = "lsgan"
    pool_size: int = field(default=50, metadata=between(0, 10000))
    init_gain: float = field(default=0.02, metadata=between(0, 10, open_low=True))
    seed: int = field(default=0, metadata=between(0, 2**63 - 1))
    precision: str = "auto"
    save_every: int = field(default=1000, metadata=between(1, 10**9))
    sample_every: int = field(default=500, metadata=between(1, 10**9))
    log_every: int = field(default=50, metadata=between(1, 10**9))
    # Every N steps, Fréchet distance / KID of translated test A images to test B (0 = off).
    eval_every: int = field(default=0, metadata=between(0, 10**9))
    eval_images: int = field(default=64, metadata=between(2, 100000))
    keep_checkpoints: int = field(default=3, metadata=between(1, 1000))


@dataclass
class CycleGANConfig:
    lambda_A: float = field(default=10.0, metadata=WEIGHT)
    lambda_B: float = field(default=10.0, metadata=WEIGHT)
    # Identity loss weight relative to the cycle weight (0.5 * lambda in the paper's code).
    lambda_identity: float = field(default=0.5, metadata=WEIGHT)


@dataclass
class CUTConfig:
    """Contrastive unpaired translation (Park et al. 2020); the defaults are CUT's, FastCUT's
    own live with its model (training/models/cut.py)."""

    lambda_GAN: float = field(default=1.0, metadata=WEIGHT)
    lambda_NCE: float = field(default=1.0, metadata=WEIGHT)
    nce_idt: bool = True
    nce_layers: str = "0,4,8,12,16"
    num_patches: int = field(default=256, metadata=between(1, 65536))
    nce_T: float = field(default=0.07, metadata=between(0, 100, open_low=True))
    netF_nc: int = field(default=256, metadata=between(1, 4096))
    flip_equivariance: bool = False

    @property
    def layers(self) -> list[int]:
        return [int(v) for v in self.nce_layers.split(",") if v.strip()]


@dataclass
class RecycleGANConfig:
    """RecycleGAN (Bansal et al. 2018) on top of the CycleGAN losses: temporal predictors
    P_A, P_B forecast frame t from frames t−2s, t−s (s = frame_step)."""

    lambda_recurrent: float = field(default=10.0, metadata=WEIGHT)
    lambda_recycle: float = field(default=10.0, metadata=WEIGHT)
    frame_step: int = field(default=1, metadata=between(1, 1000))
    predictor_ngf: int = field(default=64, metadata=between(1, 1024))
    # U-Net depth of the predictors; 0 = as deep as the crop allows (log2(crop), at most 8).
    predictor_downs: int = field(default=0, metadata=between(0, 8))
    # The forecast is frame t−1 plus the U-Net's correction, not the U-Net's whole image: it starts
    # as the "nothing moves" forecast instead of a blur, which the video runtime's blending needs
    # (benchmarks/results/video.md, temporal modes).
    predictor_residual: bool = True

    def depth(self, crop_size: int) -> int:
        return self.predictor_downs or min(8, crop_size.bit_length() - 1)


# Distillation is a regression: it needs fewer steps than the GAN that made the teacher.
DISTILL_STEPS = 5000


@dataclass
class DistillConfig:
    """Distillation (`i2i distill`): a student generator learns to reproduce a trained one, the
    teacher, for one direction. The unpaired problem becomes paired, the teacher's translation of
    each source image being the target (GAN Compression, Li et al. 2020)."""

    # The teacher's run directory, its model and generator as they were when distillation started
    # (its weights travel in the student's checkpoints as network "T", so resume and the export's
    # gate do not depend on the teacher's folder staying as it was).
    teacher: str = ""
    teacher_model: str = ""
    teacher_step: int = field(default=0, metadata=between(0, 10**9))
    teacher_G: dict = field(default_factory=dict)
    direction: str = "AtoB"
    # Folders of more source-domain images (comma-separated): unlabelled photos are free targets.
    extra_sources: str = ""
    # L1 to the teacher's output; L1 between EfficientNet-Lite1 feature pyramids of the two
    # outputs (a different network from the evaluation's Lite0, which it would flatter); MSE between
    # residual-block activations, the student's mapped to the teacher's by learned 1×1
    # convolutions; an adversarial term against real target images (off by default).
    lambda_L1: float = field(default=10.0, metadata=WEIGHT)
    lambda_perceptual: float = field(default=1.0, metadata=WEIGHT)
    lambda_feature: float = field(default=1.0, metadata=WEIGHT)
    lambda_GAN: float = field(default=0.0, metadata=WEIGHT)


@dataclass
class SemanticConfig:
    """Losses of the labelled modes: keep what lies outside the labelled region (bbox/mask),
    and keep each image's class as judged by classifiers trained on the real domains."""

    lambda_out_mask: float = field(default=10.0, metadata=WEIGHT)
    lambda_class: float = field(default=1.0, metadata=WEIGHT)
    classifier_ndf: int = field(default=32, metadata=between(1, 1024))
    # Unaligned CycleGAN whose trainA file names carry labels (`<name>_<label>.png`): CyCADA's
    # semantic consistency — a classifier trained on them before step 0, then frozen, must
    # read each translation (both directions) as it reads the image translated. 0 = off.
    lambda_source_class: float = field(default=0.0, metadata=WEIGHT)
    source_classifier_epochs: int = field(default=15, metadata=between(0, 1000))


@dataclass
class AlgConfig:
    cycle_gan: CycleGANConfig = field(default_factory=CycleGANConfig)
    cut: CUTConfig = field(default_factory=CUTConfig)
    recycle_gan: RecycleGANConfig = field(default_factory=RecycleGANConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    semantic: SemanticConfig = field(default_factory=SemanticConfig)


@dataclass
class RunConfig:
    model: str = "cycle_gan"
    G: GeneratorConfig = field(default_factory=GeneratorConfig)
    D: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    alg: AlgConfig = field(default_factory=AlgConfig)
    schema: int = field(default=SCHEMA_VERSION, metadata=between(0, SCHEMA_VERSION))
    i2i_version: str = __version__
    # Changes made when the run was resumed: {"time", "at_step", "changed": {key: [old, new]}}.
    history: list = field(default_factory=list)

    def validate(self) -> "RunConfig":
        """Raise ConfigError for values no network or trainer can work with (the model's own
        checks are training/configure.check's)."""
        problem = next(range_problems(self), None)
        if problem:
            raise ConfigError(problem)
        n_layers = self.D.n_layers if self.D.netD == "n_layers" else 3
        checks = [
            (
                self.D.netD == "projected" or self.data.crop_size >= 3 * 2**n_layers,
                f"data.crop_size {self.data.crop_size} is too small for a {n_layers}-layer PatchGAN, which halves it "
                f"{n_layers} times (minimum {3 * 2**n_layers}); raise the crop size or lower D.n_layers",
            ),
            (self.G.netG in GENERATORS, f"G.netG '{self.G.netG}' is not one of {', '.join(GENERATORS)}"),
            (
                self.G.netG not in ATTENTION_GENERATORS or 0 <= self.G.attn_input_masks < self.G.attn_masks,
                "G.attn_input_masks must be >= 0 and below G.attn_masks",
            ),
            (
                self.G.netG not in ATTENTION_GENERATORS
                or not self.G.attn_input_masks
                or self.data.input_nc == self.data.output_nc,
                "attention generators that copy input pixels (G.attn_input_masks > 0) need input_nc == output_nc",
            ),
            (
                not self.G.residual or self.G.netG in RESNET_GENERATORS and self.data.input_nc == self.data.output_nc,
                "G.residual needs a resnet_*/mobile_resnet_* generator and input_nc == output_nc",
            ),
            (
                not self.G.affine_warp or self.G.netG in RESNET_GENERATORS,
                "G.affine_warp needs a resnet_*/mobile_resnet_* generator",
            ),
            (
                not self.G.flow_warp or self.G.residual,
                "G.flow_warp needs G.residual (the displacement resamples the input the change is added to)",
            ),
            (
                self.G.padding_type in ("reflect", "replicate", "zeros"),
                "G.padding_type must be reflect, replicate or zeros",
            ),
            (
                self.G.upsample in UPSAMPLINGS,
                f"G.upsample '{self.G.upsample}' is not one of {', '.join(UPSAMPLINGS)}",
            ),
            (
                all(op in DIFF_AUGMENT_OPS for op in diff_augment_ops(self.train.diff_augment)),
                f"train.diff_augment '{self.train.diff_augment}': comma-separated, from {', '.join(DIFF_AUGMENT_OPS)}",
            ),
            (self.D.netD in DISCRIMINATORS, f"D.netD '{self.D.netD}' is not one of {', '.join(DISCRIMINATORS)}"),
            (
                "projected" not in self.D.netD or self.data.crop_size >= 32,
                f"data.crop_size {self.data.crop_size} is too small for D.netD {self.D.netD}, whose coarsest "
                "features are 32× smaller; raise the crop size to at least 32",
            ),
            (
                not self.D.lowpass or "projected" in self.D.netD,
                f"D.lowpass filters a projected discriminator's input; D.netD is {self.D.netD}",
            ),
            (self.G.norm in ("instance", "batch", "none"), f"G.norm '{self.G.norm}' must be instance, batch or none"),
            (self.D.norm in ("instance", "batch", "none"), f"D.norm '{self.D.norm}' must be instance, batch or none"),
            (
                self.train.gan_mode in GAN_MODES,
                f"train.gan_mode '{self.train.gan_mode}' must be one of {', '.join(GAN_MODES)}",
            ),
            (self.data.input_nc in (1, 3) and self.data.output_nc in (1, 3), "data.input_nc/output_nc must be 1 or 3"),
            (self.data.preprocess in ("resize_and_crop", "crop"), "data.preprocess must be resize_and_crop or crop"),
            (self.data.load_size >= self.data.crop_size, "data.load_size must be >= data.crop_size"),
            (self.train.precision in TRAIN_PRECISIONS, f"train.precision must be one of {', '.join(TRAIN_PRECISIONS)}"),
            (
                _valid_layers(self.alg.cut.nce_layers),
                "alg.cut.nce_layers must be comma-separated layer indices, e.g. 0,4,8,12,16",
            ),
            (self.data.dataset_mode in DATASET_MODES, f"data.dataset_mode must be one of {', '.join(DATASET_MODES)}"),
            (
                self.data.dataset_mode not in ("class", "bbox", "mask") or self.data.semantic_nc >= 2,
                "labelled datasets need data.semantic_nc >= 2 (classes, counting the background for bbox/mask)",
            ),
            (
                self.data.dataset_mode != "class" or len(self.data.class_names) == self.data.semantic_nc,
                "class datasets list their data.class_names, one per class",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def change_for_resume(self, changes: dict[str, Any], at_step: int) -> dict[str, list]:
        """Apply `changes` (RESUMABLE keys → new values), validate, and record those that differ
        in `history`; returns {key: [old, new]} of what changed."""
        refused = sorted(set(changes) - set(RESUMABLE))
        if refused:
            raise ConfigError(f"a resumed run can change only {', '.join(RESUMABLE)}; not {', '.join(refused)}")
        changed = {}
        for key, value in changes.items():
            section, name = key.split(".")
            old = getattr(getattr(self, section), name)
            if value != old:
                setattr(getattr(self, section), name, value)
                changed[key] = [old, value]
        self.validate()
        if changed:
            from datetime import datetime, timezone

            self.history.append(
                {
                    "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "at_step": at_step,
                    "changed": changed,
                }
            )
        return changed

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "config") -> "RunConfig":
        """A stored config (train_config.json, an export's metadata), migrated from older schemas
        and checked; keys it leaves out take the field defaults, not a model's (a user's partial
        request goes through training.configure.configure)."""
        if not isinstance(raw, dict):
            raise ConfigError(f"{source}: expected a JSON object of config sections, got {type(raw).__name__}")
        schema = raw.get("schema", SCHEMA_VERSION)
        if not isinstance(schema, int) or isinstance(schema, bool) or schema < 0:
            raise ConfigError(
                f"{source}: schema {schema!r} is not a schema version (a whole number, e.g. {SCHEMA_VERSION})"
            )
        if schema > SCHEMA_VERSION:
            raise ConfigError(
                f"{source}: schema {schema} is newer than this i2i understands ({SCHEMA_VERSION}); "
                "upgrade i2i (pip install -U i2i)"
            )
        raw = _migrate(raw) if schema < SCHEMA_VERSION else raw
        return build_section(cls, raw, source).validate()


def range_problems(section: Any, where: str = "") -> Iterator[str]:
    """What breaks the ranges the schema declares (`between`), field by field, nested sections too."""
    for spec in dataclasses.fields(section):
        value = getattr(section, spec.name)
        if dataclasses.is_dataclass(value):
            yield from range_problems(value, f"{where}{spec.name}.")
        elif "range" in spec.metadata:
            low, high, open_low, open_high = spec.metadata["range"]
            inside = (
                isinstance(value, (int, float))
                and not isinstance(value, bool)
                and math.isfinite(value)
                and (low < value if open_low else low <= value)
                and (value < high if open_high else value <= high)
            )
            if not inside:
                interval = f"{'(' if open_low else '['}{low}, {high}{')' if open_high else ']'}"
                yield f"{where}{spec.name} {value!r} is outside {interval}; set a value in that range"


def _migrate(raw: dict[str, Any]) -> dict[str, Any]:
    """An older config in today's keys, meaning the same: G.antialias_up → G.upsample (schema 1);
    predictors without the residual form (schema ≤ 2)."""
    migrated = {**raw, "schema": SCHEMA_VERSION}
    # A section that is not an object is left as it is, for build_section to reject by name.
    generator = raw.get("G", {})
    if isinstance(generator, dict) and "antialias_up" in generator:
        generator = dict(generator)
        generator["upsample"] = "blur" if generator.pop("antialias_up") else "transpose"
        migrated["G"] = generator
    algorithms = raw.get("alg", {})
    recycle = algorithms.get("recycle_gan", {}) if isinstance(algorithms, dict) else None
    if isinstance(recycle, dict):
        migrated["alg"] = {**algorithms, "recycle_gan": {"predictor_residual": False, **recycle}}
    return migrated


def diff_augment_ops(policy: str) -> list[str]:
    return [op.strip() for op in policy.split(",") if op.strip()]


def with_defaults(raw: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """`raw` with `defaults` (nested like train_config.json) filled in where `raw` has no value."""
    merged = dict(raw)
    for key, value in defaults.items():
        if isinstance(value, dict) and isinstance(merged.get(key, {}), dict):
            merged[key] = with_defaults(merged.get(key, {}), value)
        else:
            merged.setdefault(key, value)
    return merged


def _valid_layers(text: str) -> bool:
    parts = [p.strip() for p in text.split(",")]
    return bool(parts) and all(p.isdigit() for p in parts)


def build_section(kind: type, raw: Any, where: str) -> Any:
    """Build dataclass `kind` from `raw`, rejecting unknown keys and wrong types by name."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected an object, got {type(raw).__name__}")
    fields = {f.name: f for f in dataclasses.fields(kind)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; remove them or upgrade i2i")
    values = {}
    for name, value in raw.items():
        declared = fields[name].type
        default = (
            fields[name].default_factory()
            if fields[name].default_factory is not dataclasses.MISSING
            else fields[name].default
        )
        if dataclasses.is_dataclass(default):
            values[name] = build_section(type(default), value, f"{where}.{name}")
        else:
            values[name] = _coerce(value, type(default), f"{where}.{name}", declared)
    return kind(**values)


def _coerce(value: Any, expected: type, where: str, declared: str) -> Any:
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if expected is list and isinstance(value, list) and all(isinstance(v, (str, dict)) for v in value):
        return value
    if isinstance(value, expected) and not (expected is int and isinstance(value, bool)):
        return value
    raise ConfigError(f"{where}: expected {declared}, got {value!r}")


def save_config(config: RunConfig, run_dir: Path) -> Path:
    from .io import atomic_write_bytes

    path = Path(run_dir) / CONFIG_FILENAME
    atomic_write_bytes(path, (json.dumps(config.to_dict(), indent=2) + "\n").encode())
    return path


def load_config(run_dir: Path) -> RunConfig:
    path = Path(run_dir) / CONFIG_FILENAME
    if not Path(run_dir).is_dir():
        raise ConfigError(f"{run_dir}: no such run directory; pass the --out folder of an i2i train run")
    if not path.is_file():
        raise ConfigError(f"{path}: missing; {run_dir} is not an i2i run directory (train with `i2i train` first)")
    raw = parse_json(path.read_bytes(), str(path), "restore it from a backup or retrain")
    return RunConfig.from_dict(raw, source=str(path))


def parse_json(data: str | bytes, source: str, fix: str) -> Any:
    """The JSON value of a file's (or a field's) text; ConfigError naming `source` and `fix` when it
    is not UTF-8 JSON, nested too deep to parse included."""
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        reason = str(exc)
    except RecursionError:
        reason = "nested too deeply"
    raise ConfigError(f"{source}: not valid JSON ({reason}); {fix}")


def config_from_json(data: str | bytes, source: str) -> RunConfig:
    """The run config embedded in an exported file's metadata."""
    return RunConfig.from_dict(parse_json(data, source, "re-export it with `i2i export RUN`"), source=source)
