"""Read a run directory: its config and a generator rebuilt from the newest checkpoint.

This is all that export and inference need; nothing depends on the training command line.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from .config import RunConfig, load_config
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
    names = GENERATORS[config.model]
    if direction not in names:
        raise ConfigError(f"{run_dir}: a {config.model} model has no {direction} generator; use {' or '.join(names)}")
    folder = latest_checkpoint(run_dir)
    path = folder / f"{names[direction]}.safetensors"
    in_nc, out_nc = generator_channels(config, direction)
    net = build_generator(config.G, in_nc + condition_channels(config), out_nc)
    try:
        net.load_state_dict(load_tensors(path))
    except RuntimeError as exc:
        raise CheckpointError(
            f"{path}: does not match {run_dir}/train_config.json ({str(exc).splitlines()[0]})"
        ) from None
    return net.eval().requires_grad_(False), config


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
    """The temporal predictor of domain 'A' or 'B' of a recycle_gan run, in eval mode on the CPU."""
    config = load_config(run_dir)
    if config.model != "recycle_gan":
        raise ConfigError(f"{run_dir}: a {config.model} run has no temporal predictor; train with --model recycle_gan")
    channels = config.data.input_nc if domain == "A" else config.data.output_nc
    net = build_predictor(config, channels)
    path = latest_checkpoint(run_dir) / f"P_{domain}.safetensors"
    try:
        net.load_state_dict(load_tensors(path))
    except RuntimeError as exc:
        raise CheckpointError(
            f"{path}: does not match {run_dir}/train_config.json ({str(exc).splitlines()[0]})"
        ) from None
    return net.eval().requires_grad_(False), config
