"""Shared building blocks of the networks: normalization choice and weight initialization."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn
from torch.nn.utils import parametrize


@dataclass(frozen=True)
class NormFactory:
    """Makes the normalization layer named in the config for a given channel count.

    Instance norm is affine-free and keeps no running statistics, as in CycleGAN; convs
    before it therefore keep their bias (the norm cannot supply one), as the original code does.
    """

    kind: str = "instance"

    def __call__(self, channels: int) -> nn.Module:
        if self.kind == "instance":
            return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
        if self.kind == "batch":
            return nn.BatchNorm2d(channels, affine=True, track_running_stats=True)
        return nn.Identity()

    @property
    def uses_bias(self) -> bool:
        return self.kind != "batch"


def init_weights(net: nn.Module, gain: float = 0.02) -> nn.Module:
    """normal(0, gain) for conv/linear weights (before any reparametrization), zero biases;
    batch-norm scale ~ normal(1, gain); then each module's own `reset_parameters_after_init`,
    where it has one."""
    for module in net.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            # A reparametrized weight (spectral norm) is computed: initialize what it is computed from.
            weight = (
                module.parametrizations.weight.original
                if parametrize.is_parametrized(module, "weight")
                else module.weight
            )
            nn.init.normal_(weight, 0.0, gain)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.normal_(module.weight, 1.0, gain)
            nn.init.zeros_(module.bias)
    for module in net.modules():
        if hasattr(module, "reset_parameters_after_init"):
            module.reset_parameters_after_init()
    return net
