"""Network registry: build the generator and discriminator a RunConfig describes."""

from __future__ import annotations

from torch import nn

from ..config import ATTENTION_GENERATORS, RESNET_GENERATORS, DiscriminatorConfig, GeneratorConfig
from ..errors import ConfigError
from .attention_resnet import AttentionResnetGenerator
from .layers import NormFactory, init_weights
from .patchgan import NLayerDiscriminator
from .projected import PatchAndProjected, ProjectedDiscriminator
from .resnet import ResnetGenerator
from .unet import UnetGenerator

__all__ = ["build_generator", "build_discriminator", "size_multiple", "init_weights"]


def build_generator(spec: GeneratorConfig, input_nc: int, output_nc: int) -> nn.Module:
    norm = NormFactory(spec.norm)
    name = spec.netG
    if name in RESNET_GENERATORS:
        return ResnetGenerator(
            input_nc,
            output_nc,
            spec.ngf,
            norm,
            n_blocks=9 if "9" in name else 6,
            use_dropout=spec.dropout,
            separable=name.startswith("mobile"),
            antialias=spec.antialias,
            upsample=spec.upsample,
            residual=spec.residual,
            affine_warp=spec.affine_warp,
            flow_warp=spec.flow_warp,
        )
    if name in ("unet_128", "unet_256"):
        return UnetGenerator(input_nc, output_nc, 7 if name == "unet_128" else 8, spec.ngf, norm, spec.dropout)
    if name in ATTENTION_GENERATORS:
        return AttentionResnetGenerator(
            input_nc,
            output_nc,
            spec.ngf,
            spec.attn_blocks,
            spec.attn_masks,
            spec.attn_input_masks,
            spec.padding_type,
            name.startswith("mobile"),
            spec.twice_resnet_blocks,
        )
    raise ConfigError(f"unknown generator '{name}'")


def build_discriminator(spec: DiscriminatorConfig, input_nc: int) -> nn.Module:
    """basic / n_layers: a PatchGAN (3 / D.n_layers layers); projected: heads on frozen pretrained
    features; basic+projected: both."""
    projected = ProjectedDiscriminator(input_nc, spec.ndf, spec.lowpass) if "projected" in spec.netD else None
    if spec.netD == "projected":
        return projected
    n_layers = spec.n_layers if spec.netD == "n_layers" else 3
    patch = NLayerDiscriminator(input_nc, spec.ndf, n_layers, NormFactory(spec.norm), spec.spectral_norm)
    return PatchAndProjected(patch, projected) if projected is not None else patch


def size_multiple(spec: GeneratorConfig) -> int:
    """Height and width a generator's input must be divisible by."""
    if spec.netG.startswith("unet_"):
        return 128 if spec.netG == "unet_128" else 256
    return ResnetGenerator.size_multiple
