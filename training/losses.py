"""Adversarial losses and the image pool (history buffer) of generated images."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


class GANLoss(nn.Module):
    """LSGAN (mean squared error to 1/0, Mao et al. 2017) or vanilla (BCE on logits)."""

    def __init__(self, mode: str):
        super().__init__()
        self.mode = mode

    def forward(self, prediction: torch.Tensor, target_is_real: bool) -> torch.Tensor:
        target = torch.full_like(prediction, 1.0 if target_is_real else 0.0)
        if self.mode == "lsgan":
            return F.mse_loss(prediction.float(), target.float())
        return F.binary_cross_entropy_with_logits(prediction.float(), target.float())


class ImagePool:
    """Feed the discriminator a mix of current and earlier fakes (Shrivastava et al. 2017).

    Until the pool is full every image is stored and returned; after that each image is,
    with probability 1/2, swapped with a random stored one. The draws come from a generator
    seeded by (seed, step), and `state_dict` holds the stored images, so a resumed run
    replays the same choices.
    """

    def __init__(self, size: int, seed: int):
        self.size = size
        self.seed = seed
        self.images: list[torch.Tensor] = []

    def query(self, images: torch.Tensor, step: int) -> torch.Tensor:
        if self.size == 0:
            return images.detach()
        rng = np.random.default_rng([self.seed, 2, step])
        returned = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image.clone())
                returned.append(image)
            elif rng.random() > 0.5:
                index = int(rng.integers(self.size))
                returned.append(self.images[index].clone())
                self.images[index] = image.clone()
            else:
                returned.append(image)
        return torch.cat(returned, 0)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"images": torch.cat(self.images, 0)} if self.images else {}

    def load_state_dict(self, state: dict[str, torch.Tensor], device: torch.device) -> None:
        self.images = [image.unsqueeze(0).to(device) for image in state["images"]] if "images" in state else []
