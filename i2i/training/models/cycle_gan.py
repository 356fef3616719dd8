"""CycleGAN (Zhu et al. 2017): G_A: A→B, G_B: B→A, discriminators D_A (judges B) and D_B
(judges A); adversarial + L1 cycle (λ=10) + identity (0.5·λ) losses, image pools of 50."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from i2i.config import RunConfig
from i2i.nets import build_discriminator, build_generator
from i2i.rundir import condition_channels

from ..losses import GANLoss, ImagePool
from ..semantic import SemanticTerms
from .base import TranslationModel


class CycleGANModel(TranslationModel):
    keeps_source_classes = True

    def __init__(self, config: RunConfig, device: torch.device, autocast_dtype: torch.dtype | None):
        super().__init__(config, device, autocast_dtype)
        data, t = config.data, config.train
        extra = condition_channels(config)
        self.G_A = self.add_network("G_A", build_generator(config.G, data.input_nc + extra, data.output_nc))
        self.G_B = self.add_network("G_B", build_generator(config.G, data.output_nc + extra, data.input_nc))
        self.D_A = self.add_network("D_A", build_discriminator(config.D, data.output_nc))
        self.D_B = self.add_network("D_B", build_discriminator(config.D, data.input_nc))
        self.optimizers = {"G": self.make_adam([self.G_A, self.G_B]), "D": self.make_adam([self.D_A, self.D_B])}
        self.semantic = SemanticTerms(config, self.add_network, self.make_adam)
        if self.semantic.conditional:
            self.optimizers["C"] = self.semantic.optimizer
        self.gan_loss = GANLoss(t.gan_mode)
        self.pool_A = ImagePool(t.pool_size, t.seed, data.input_nc)  # fakes of domain A, for D_B
        self.pool_B = ImagePool(t.pool_size, t.seed + 1, data.output_nc)
        alg = config.alg.cycle_gan
        # Identity mapping only makes sense when both domains have the same channel count.
        self.lambda_identity = alg.lambda_identity if data.input_nc == data.output_nc else 0.0

    def prepare(self) -> None:
        self.semantic.pretrain_source_classifier()

    def training_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        real_A, real_B = batch["A"], batch["B"]
        y_A, y_B = batch.get("A_label"), batch.get("B_label")
        alg = self.config.alg.cycle_gan
        cond = self.semantic.condition
        judges = [self.D_A, self.D_B, *self.semantic.classifiers.values()]

        self.set_requires_grad(judges, False)
        with self.autocast():
            fake_B = self.G_A(cond(real_A, y_A))
            rec_A = self.G_B(cond(fake_B, y_A))
            fake_A = self.G_B(cond(real_B, y_B))
            rec_B = self.G_A(cond(fake_A, y_B))
            losses = {
                "G_A": self.gan_loss.generator(self.judge(self.D_A, fake_B, step, 0)),
                "G_B": self.gan_loss.generator(self.judge(self.D_B, fake_A, step, 1)),
                "cycle_A": F.l1_loss(rec_A.float(), real_A) * alg.lambda_A,
                "cycle_B": F.l1_loss(rec_B.float(), real_B) * alg.lambda_B,
            }
            if self.lambda_identity > 0:
                losses["idt_A"] = (
                    F.l1_loss(self.G_A(cond(real_B, y_B)).float(), real_B) * alg.lambda_B * self.lambda_identity
                )
                losses["idt_B"] = (
                    F.l1_loss(self.G_B(cond(real_A, y_A)).float(), real_A) * alg.lambda_A * self.lambda_identity
                )
            losses.update(self.semantic.generator_terms(real_A, fake_B, y_A, "B", "A"))
            losses.update(self.semantic.generator_terms(real_B, fake_A, y_B, "A", "B"))
            losses.update(self.semantic.consistency_terms(real_A, fake_B, real_B, fake_A))
        self.optimize(sum(losses.values()), "G")

        self.set_requires_grad(judges, True)
        losses.update(self.semantic.classifier_step(batch, self))
        losses.update(self.discriminator_step(real_A, real_B, fake_A, fake_B, step))
        return {name: float(value.detach()) for name, value in losses.items()}

    def discriminator_step(
        self, real_A: torch.Tensor, real_B: torch.Tensor, fake_A: torch.Tensor, fake_B: torch.Tensor, step: int
    ) -> dict[str, torch.Tensor]:
        """One step of D_A (real B vs pooled fake B) and D_B (real A vs pooled fake A)."""
        pooled_B = self.pool_B.query(fake_B, step)
        pooled_A = self.pool_A.query(fake_A, step)
        with self.autocast():
            # Real and fake go through D in one batch: instance norm is per sample, so this
            # equals two separate passes, at half the launches.
            pred_A = self.judge(self.D_A, torch.cat([real_B, pooled_B]), step, 2)
            pred_B = self.judge(self.D_B, torch.cat([real_A, pooled_A]), step, 3)
            n = real_A.shape[0]
            losses = {
                "D_A": 0.5 * (self.gan_loss(pred_A[:n], True) + self.gan_loss(pred_A[n:], False)),
                "D_B": 0.5 * (self.gan_loss(pred_B[:n], True) + self.gan_loss(pred_B[n:], False)),
            }
        self.optimize(losses["D_A"] + losses["D_B"], "D")
        return losses

    @torch.no_grad()
    def sample_rows(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        real_A, real_B = batch["A"], batch["B"]
        y_A, y_B = batch.get("A_label"), batch.get("B_label")
        cond = self.semantic.condition
        with self.autocast():
            fake_B = self.G_A(cond(real_A, y_A))
            fake_A = self.G_B(cond(real_B, y_B))
            rows = {
                "A": real_A,
                "G_A(A)": fake_B,
                "G_B(G_A(A))": self.G_B(cond(fake_B, y_A)),
                "B": real_B,
                "G_B(B)": fake_A,
                "G_A(G_B(B))": self.G_A(cond(fake_A, y_B)),
            }
        if self.semantic.masked:
            rows.update(mask_rows(fake_B, y_A))
        return rows

    def extra_state(self) -> dict[str, dict[str, torch.Tensor]]:
        return {"pool_A": self.pool_A.state_dict(), "pool_B": self.pool_B.state_dict()}

    def load_extra_state(self, files: dict[str, dict[str, torch.Tensor]]) -> None:
        self.pool_A.load_state_dict(files["pool_A"], self.device)
        self.pool_B.load_state_dict(files["pool_B"], self.device)


def mask_rows(fake: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """Rows that show whether a translation respects its mask: the label map, and the
    translation with the labelled region greyed out (what remains must look like the input)."""
    labels = mask.unsqueeze(1).float()
    label_map = labels / labels.amax().clamp_min(1.0) * 2 - 1
    outside = torch.where(labels == 0, fake.float(), torch.zeros_like(fake.float()))
    return {"mask(A)": label_map.expand(-1, fake.shape[1], -1, -1), "G_A(A) outside mask": outside}
