"""Read a run directory: its config and a generator rebuilt from the newest checkpoint.

This is all that export and inference need; nothing depends on the training command line.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from .config import GeneratorConfig, RunConfig, build_section, load_config
from .errors import CheckpointError, ConfigError
from .io import latest_checkpoint, load_tensors
from .nets import build_generator

# Which generator translates in which direction, per model, and its input/output domains.
GENERATORS = {
    "cycle_gan": {"AtoB": "G_A", "BtoA": "G_B"},
    "recycle_gan": {"AtoB": "G_A", "BtoA": "G_B"},
    "cut": {"AtoB": "G"},
    "fastcut": {"AtoB": "G"},
}
# A distilled student's checkpoint names: its generator, and its teacher's (frozen) generator.
STUDENT, TEACHER = "G", "T"


def generator_names(config: RunConfig) -> dict[str, str]:
    """Direction → checkpoint name of the generator translating it; a student translates only
    the direction it learned."""
    if config.model == "distill":
        return {config.alg.distill.direction: STUDENT}
    if config.model not in GENERATORS:
        raise ConfigError(f"model '{config.model}' is not one of {', '.join(GENERATORS)}, distill; upgrade i2i")
    return GENERATORS[config.model]


def has_temporal_predictor(config: RunConfig) -> bool:
    """RecycleGAN runs hold temporal predictors, and so do students of a RecycleGAN teacher (its
    predictors kept as they are)."""
    return config.model == "recycle_gan" or (
        config.model == "distill" and config.alg.distill.teacher_model == "recycle_gan"
    )


def generator_channels(config: RunConfig, direction: str) -> tuple[int, int]:
    """Image channels (in, out) of the generator for `direction`."""
    data = config.data
    return (data.input_nc, data.output_nc) if direction == "AtoB" else (data.output_nc, data.input_nc)


def condition_channels(config: RunConfig) -> int:
    """Extra constant input channels of class-conditional generators (the class, as a plane)."""
    return 1 if config.data.dataset_mode == "class" else 0


def class_plane_value(config: RunConfig, class_index: int) -> int:
    """uint8 value of the class plane; training feeds value/127.5 − 1, as inference does."""
    return round(255 * class_index / (config.data.semantic_nc - 1))


def load_generator(run_dir: Path, direction: str = "AtoB") -> tuple[nn.Module, RunConfig]:
    """The generator for `direction`, in eval mode on the CPU, and the run's config."""
    config = load_config(run_dir)
    names = generator_names(config)
    if direction not in names:
        raise ConfigError(f"{run_dir}: a {config.model} model has no {direction} generator; use {' or '.join(names)}")
    in_nc, out_nc = generator_channels(config, direction)
    net = build_generator(config.G, in_nc + condition_channels(config), out_nc)
    return _load_weights(net, run_dir, names[direction]), config


def teacher_spec(config: RunConfig) -> GeneratorConfig:
    """The generator configuration of a distilled run's teacher, as recorded in its config."""
    return build_section(GeneratorConfig, config.alg.distill.teacher_G, "alg.distill.teacher_G")


def load_teacher(run_dir: Path) -> tuple[nn.Module, RunConfig]:
    """The teacher generator a distilled run learned from (as copied into its checkpoints), in
    eval mode on the CPU, and the student run's config."""
    config = load_config(run_dir)
    if config.model != "distill":
        raise ConfigError(f"{run_dir}: a {config.model} run has no teacher; distil one with `i2i distill`")
    in_nc, out_nc = generator_channels(config, config.alg.distill.direction)
    net = build_generator(teacher_spec(config), in_nc, out_nc)
    return _load_weights(net, run_dir, TEACHER), config


def _load_weights(net: nn.Module, run_dir: Path, name: str) -> nn.Module:
    path = latest_checkpoint(run_dir) / f"{name}.safetensors"
    try:
        net.load_state_dict(load_tensors(path))
    except RuntimeError as exc:
        raise CheckpointError(
            f"{path}: does not match {run_dir}/train_config.json ({str(exc).splitlines()[0]})"
        ) from None
    return net.eval().requires_grad_(False)


def build_predictor(config: RunConfig, channels: int) -> nn.Module:
    """RecycleGAN's temporal predictor: a U-Net from two frames (stacked on channels) to the next,
    or to its difference from the later frame (alg.recycle_gan.predictor_residual)."""
    from .nets.layers import NormFactory
    from .nets.unet import ResidualFramePredictor, UnetGenerator

    alg = config.alg.recycle_gan
    net = ResidualFramePredictor if alg.predictor_residual else UnetGenerator
    return net(2 * channels, channels, alg.depth(config.data.crop_size), alg.predictor_ngf, NormFactory(config.G.norm))


def predicted_domain(direction: str) -> str:
    """The domain whose next frame the video runtime forecasts: the generator's output domain."""
    return "B" if direction == "AtoB" else "A"


def predictor_multiple(config: RunConfig) -> int:
    """Size multiple of the predictor's input: its U-Net halves the frame `depth` times."""
    return 2 ** config.alg.recycle_gan.depth(config.data.crop_size)


def load_predictor(run_dir: Path, domain: str) -> tuple[nn.Module, RunConfig]:
    """The temporal predictor of domain 'A' or 'B' of a recycle_gan run (or of its student), in eval mode
    on the CPU."""
    config = load_config(run_dir)
    if not has_temporal_predictor(config):
        raise ConfigError(f"{run_dir}: a {config.model} run has no temporal predictor; train with --model recycle_gan")
    channels = config.data.input_nc if domain == "A" else config.data.output_nc
    return _load_weights(build_predictor(config, channels), run_dir, f"P_{domain}"), config
