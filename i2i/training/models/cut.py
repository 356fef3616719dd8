"""CUT and FastCUT (Park et al. 2020): one generator G: A→B, a PatchGAN on B, and PatchNCE
between patches of the input and of its translation, read from G's own encoder layers.
FastCUT is CUT with the paper's FastCUT settings: λ_NCE 10, no identity NCE, flip equivariance."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import numpy as np
import torch

from i2i.config import RESNET_GENERATORS, RunConfig
from i2i.nets import build_discriminator, build_generator
from i2i.nets.patch_sample import PatchSampleF
from i2i.rundir import condition_channels

from ..losses import GANLoss, patch_nce_loss
from ..semantic import SemanticTerms
from .base import TranslationModel, require
from .cycle_gan import mask_rows


def encoder_features(generator: torch.nn.Module, x: torch.Tensor, layers: list[int]) -> list[torch.Tensor]:
    """Outputs of the generator's top-level layers `layers` (indices into its `model`
    Sequential), stopping after the last one."""
    features, last = [], max(layers)
    for index, layer in enumerate(generator.model):
        x = layer(x)
        if index in layers:
            features.append(x)
        if index == last:
            break
    return features


class CUTModel(TranslationModel):
    # The paper's anti-aliased ResNet generator (blur pooling down and up).
    defaults: ClassVar[dict[str, Any]] = {"G": {"antialias": True, "upsample": "blur"}}

    @classmethod
    def check_config(cls, config: RunConfig) -> None:
        super().check_config(config)
        require(
            config.G.netG in RESNET_GENERATORS,
            f"{config.model} reads PatchNCE features from a ResNet encoder; use G.netG "
            f"{', '.join(RESNET_GENERATORS)}, not {config.G.netG}",
        )
        in_nc = config.data.input_nc + condition_channels(config)
        depth = len(build_generator(dataclasses.replace(config.G, ngf=1), in_nc, config.data.output_nc).model)
        require(
            max(config.alg.cut.layers) < depth,
            f"alg.cut.nce_layers {config.alg.cut.nce_layers}: {config.G.netG} has layers 0..{depth - 1}",
        )
        require(
            not config.G.affine_warp,
            "G.affine_warp works with cycle_gan and recycle_gan (CUT's PatchNCE compares unwarped input patches "
            "with the output)",
        )

    def __init__(self, config: RunConfig, device: torch.device, autocast_dtype: torch.dtype | None):
        super().__init__(config, device, autocast_dtype)
        data, alg = config.data, config.alg.cut
        in_nc = data.input_nc + condition_channels(config)
        self.G = self.add_network("G", build_generator(config.G, in_nc, data.output_nc))
        self.D = self.add_network("D", build_discriminator(config.D, data.output_nc))
        self.layers = alg.layers
        with torch.no_grad():
            probe = torch.zeros(1, in_nc, data.crop_size, data.crop_size, device=device)
            channels = [f.shape[1] for f in encoder_features(self.G, probe, self.layers)]
        self.F = self.add_network("F", PatchSampleF(channels, alg.netF_nc))
        self.optimizers = {"G": self.make_adam([self.G]), "D": self.make_adam([self.D]), "F": self.make_adam([self.F])}
        self.gan_loss = GANLoss(config.train.gan_mode)
        self.seed = config.train.seed
        self.semantic = SemanticTerms(config, self.add_network, self.make_adam)
        if self.semantic.conditional:
            self.optimizers["C"] = self.semantic.optimizer

    def nce(self, source: torch.Tensor, target: torch.Tensor, flipped: bool) -> torch.Tensor:
        alg = self.config.alg.cut
        queries = encoder_features(self.G, target, self.layers)
        if flipped:  # the translation was made from a flipped input: flip its features back
            queries = [torch.flip(q, [3]) for q in queries]
        keys = encoder_features(self.G, source, self.layers)
        key_samples, ids = self.F(keys, alg.num_patches)
        query_samples, _ = self.F(queries, alg.num_patches, ids)
        losses = [patch_nce_loss(q, k, source.shape[0], alg.nce_T).mean() for q, k in zip(query_samples, key_samples)]
        return sum(losses) / len(losses)

    def training_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        real_A, real_B = batch["A"], batch["B"]
        y_A, y_B = batch.get("A_label"), batch.get("B_label")
        cond = self.semantic.condition
        alg = self.config.alg.cut
        n = real_A.shape[0]
        flipped = alg.flip_equivariance and np.random.default_rng([self.seed, 3, step]).random() < 0.5
        with self.autocast():
            real = torch.cat([cond(real_A, y_A), cond(real_B, y_B)]) if alg.nce_idt else cond(real_A, y_A)
            if flipped:
                real = torch.flip(real, [3])
            fake = self.G(real)
            if flipped:
                fake = torch.flip(fake, [3])
            fake_B = fake[:n]
            idt_B = fake[n:] if alg.nce_idt else None

            pred = self.judge(self.D, torch.cat([fake_B.detach(), real_B]), step, 0)
            losses = {"D": 0.5 * (self.gan_loss(pred[:n], False) + self.gan_loss(pred[n:], True))}
        self.optimize(losses["D"], "D")

        judges = [self.D, *self.semantic.classifiers.values()]
        self.set_requires_grad(judges, False)
        with self.autocast():
            losses["G_GAN"] = self.gan_loss.generator(self.judge(self.D, fake_B, step, 1)) * alg.lambda_GAN
            losses["NCE"] = self.nce(cond(real_A, y_A), cond(fake_B, y_A), flipped) * alg.lambda_NCE
            if alg.nce_idt:
                losses["NCE_Y"] = self.nce(cond(real_B, y_B), cond(idt_B, y_B), flipped) * alg.lambda_NCE
                total = losses["G_GAN"] + 0.5 * (losses["NCE"] + losses["NCE_Y"])
            else:
                total = losses["G_GAN"] + losses["NCE"]
            semantic = self.semantic.generator_terms(real_A, fake_B, y_A, "B", "A")
            losses.update(semantic)
            total = total + sum(semantic.values())
        self.optimize(total, "G", "F")
        self.set_requires_grad(judges, True)
        losses.update(self.semantic.classifier_step(batch, self))
        return {name: float(value.detach()) for name, value in losses.items()}

    @torch.no_grad()
    def sample_rows(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        cond = self.semantic.condition
        with self.autocast():
            fake_B = self.G(cond(batch["A"], batch.get("A_label")))
            rows = {
                "A": batch["A"],
                "G(A)": fake_B,
                "B": batch["B"],
                "G(B)": self.G(cond(batch["B"], batch.get("B_label"))),
            }
        if self.semantic.masked:
            rows.update(mask_rows(fake_B, batch["A_label"]))
        return rows


class FastCUTModel(CUTModel):
    """CUT with the paper's FastCUT settings: a stronger NCE weight instead of the identity NCE
    pass, and flip equivariance (half the steps see the input mirrored)."""

    defaults: ClassVar[dict[str, Any]] = {
        **CUTModel.defaults,
        "alg": {"cut": {"lambda_NCE": 10.0, "nce_idt": False, "flip_equivariance": True}},
    }
