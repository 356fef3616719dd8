"""RecycleGAN (Bansal et al. 2018): CycleGAN on frames plus temporal predictors.

P_A forecasts A's frame t from frames t−2, t−1 (recurrent loss ‖x_t − P_A(x_{t−2}, x_{t−1})‖₁),
and the recycle loss ‖x_t − G_B(P_B(G_A(x_{t−2}), G_A(x_{t−1})))‖₁ asks the translation to
move the way the target domain moves. Batches hold triplets: A and B are [N, 3, C, H, W].
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch.nn import functional as F

from i2i.config import RunConfig
from i2i.rundir import build_predictor

from .base import require
from .cycle_gan import CycleGANModel


def recurrent_loss(clip: torch.Tensor, predict) -> torch.Tensor:
    """‖x_t − P(x_{t−2}, x_{t−1})‖₁ over a batch of triplets [N, 3, C, H, W]."""
    return F.l1_loss(predict(torch.cat([clip[:, 0], clip[:, 1]], 1)).float(), clip[:, 2])


def recycle_loss(clip: torch.Tensor, translated: torch.Tensor, predict, back) -> torch.Tensor:
    """‖x_t − back(P(G(x_{t−2}), G(x_{t−1})))‖₁, given the translated triplets G(clip)."""
    return F.l1_loss(back(predict(torch.cat([translated[:, 0], translated[:, 1]], 1))).float(), clip[:, 2])


class RecycleGANModel(CycleGANModel):
    defaults: ClassVar[dict[str, Any]] = {"data": {"dataset_mode": "temporal"}}
    dataset_modes = ("temporal",)
    keeps_source_classes = False

    @classmethod
    def check_config(cls, config: RunConfig) -> None:
        super().check_config(config)
        depth, crop = config.alg.recycle_gan.depth(config.data.crop_size), config.data.crop_size
        require(
            5 <= depth <= 8 and crop % 2**depth == 0,
            "recycle_gan's U-Net predictors need a crop size that is a multiple of 2^depth with depth 5..8 "
            "(e.g. 32, 64, 128, 256)",
        )
        require(config.alg.recycle_gan.frame_step >= 1, "alg.recycle_gan.frame_step must be >= 1")

    def __init__(self, config: RunConfig, device: torch.device, autocast_dtype: torch.dtype | None):
        super().__init__(config, device, autocast_dtype)
        data = config.data
        self.P_A = self.add_network("P_A", build_predictor(config, data.input_nc))
        self.P_B = self.add_network("P_B", build_predictor(config, data.output_nc))
        self.optimizers["G"] = self.make_adam([self.G_A, self.G_B, self.P_A, self.P_B])

    def training_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        A, B = batch["A"], batch["B"]  # [N, 3, C, H, W]
        n = A.shape[0]
        cyc, rec = self.config.alg.cycle_gan, self.config.alg.recycle_gan
        frames_A, frames_B = A.flatten(0, 1), B.flatten(0, 1)  # all 3·N frames through each network at once

        def triplets(x: torch.Tensor) -> torch.Tensor:
            return x.view(n, 3, *x.shape[1:])

        self.set_requires_grad([self.D_A, self.D_B], False)
        with self.autocast():
            fake_B = self.G_A(frames_A)
            fake_A = self.G_B(frames_B)
            fb, fa = triplets(fake_B), triplets(fake_A)
            losses = {
                "G_A": self.gan_loss.generator(self.judge(self.D_A, fake_B, step, 0)),
                "G_B": self.gan_loss.generator(self.judge(self.D_B, fake_A, step, 1)),
                "cycle_A": F.l1_loss(self.G_B(fake_B).float(), frames_A) * cyc.lambda_A,
                "cycle_B": F.l1_loss(self.G_A(fake_A).float(), frames_B) * cyc.lambda_B,
                "recurrent_A": recurrent_loss(A, self.P_A) * rec.lambda_recurrent,
                "recurrent_B": recurrent_loss(B, self.P_B) * rec.lambda_recurrent,
                "recycle_A": recycle_loss(A, fb, self.P_B, self.G_B) * rec.lambda_recycle,
                "recycle_B": recycle_loss(B, fa, self.P_A, self.G_A) * rec.lambda_recycle,
            }
            if self.lambda_identity > 0:
                losses["idt_A"] = F.l1_loss(self.G_A(frames_B).float(), frames_B) * cyc.lambda_B * self.lambda_identity
                losses["idt_B"] = F.l1_loss(self.G_B(frames_A).float(), frames_A) * cyc.lambda_A * self.lambda_identity
        self.optimize(sum(losses.values()), "G")

        self.set_requires_grad([self.D_A, self.D_B], True)
        losses.update(self.discriminator_step(frames_A, frames_B, fake_A, fake_B, step))
        return {name: float(value.detach()) for name, value in losses.items()}

    @torch.no_grad()
    def sample_rows(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        A, B = batch["A"], batch["B"]
        with self.autocast():
            fake = [self.G_A(A[:, i]) for i in range(3)]
            return {
                "A_t": A[:, 2],
                "G_A(A_t)": fake[2],
                "P_A(A_t-2,A_t-1)": self.P_A(torch.cat([A[:, 0], A[:, 1]], 1)),
                "P_B(G_A(A_t-2),G_A(A_t-1))": self.P_B(torch.cat([fake[0], fake[1]], 1)),
                "B_t": B[:, 2],
                "G_B(B_t)": self.G_B(B[:, 2]),
            }
