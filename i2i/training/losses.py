"""Adversarial losses and the image pool (history buffer) of generated images."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from i2i.errors import CheckpointError


class GANLoss(nn.Module):
    """LSGAN (mean squared error to 1/0, Mao et al. 2017), vanilla (BCE on logits) or hinge
    (Lim & Ye 2017). Called as the discriminator's loss on real or fake predictions;
    `generator` is the generator's loss on the predictions for its fakes."""

    def __init__(self, mode: str):
        super().__init__()
        self.mode = mode

    def forward(self, prediction: torch.Tensor, target_is_real: bool) -> torch.Tensor:
        prediction = prediction.float()
        if self.mode == "hinge":
            return F.relu(1 - prediction).mean() if target_is_real else F.relu(1 + prediction).mean()
        target = torch.full_like(prediction, 1.0 if target_is_real else 0.0)
        if self.mode == "lsgan":
            return F.mse_loss(prediction, target)
        return F.binary_cross_entropy_with_logits(prediction, target)

    def generator(self, prediction: torch.Tensor) -> torch.Tensor:
        if self.mode == "hinge":
            return -prediction.float().mean()
        return self(prediction, True)


class ImagePool:
    """Feed the discriminator a mix of current and earlier fakes (Shrivastava et al. 2017).

    Until the pool is full every image is stored and returned; after that each image is,
    with probability 1/2, swapped with a random stored one. The draws come from a generator
    seeded by (seed, step), and `state_dict` holds the stored images, so a resumed run
    replays the same choices.
    """

    def __init__(self, size: int, seed: int, channels: int):
        self.size = size
        self.seed = seed
        self.channels = channels
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
        """The stored images; CheckpointError when they cannot be this pool's (a damaged file)."""
        images = state.get("images")
        if images is not None and not (
            images.dim() == 4
            and len(images) <= self.size
            and images.shape[1] == self.channels
            and images.is_floating_point()
        ):
            raise CheckpointError(
                f"holds {images.dtype} images of shape {tuple(images.shape)}, not up to {self.size} "
                f"of {self.channels} channels"
            )
        self.images = [image.unsqueeze(0).to(device) for image in images] if images is not None else []


def patch_nce_loss(query: torch.Tensor, key: torch.Tensor, batch: int, temperature: float) -> torch.Tensor:
    """PatchNCE (CUT): each query patch must pick its own key patch among all key patches of
    the same image. query/key: [batch·P, D] normalized; returns the per-patch losses [batch·P].

    Negatives come from the same image only; the positive's own entry in the negative block is
    masked with −10 (as in CUT) so that it counts once.
    """
    key = key.detach()
    positives = (query * key).sum(dim=1, keepdim=True)
    dim = query.shape[1]
    q = query.view(batch, -1, dim)
    k = key.view(batch, -1, dim)
    patches = q.shape[1]
    negatives = torch.bmm(q, k.transpose(2, 1))
    diagonal = torch.eye(patches, device=query.device, dtype=torch.bool)[None]
    negatives = negatives.masked_fill(diagonal, -10.0).view(-1, patches)
    logits = torch.cat([positives, negatives], dim=1) / temperature
    return F.cross_entropy(
        logits.float(), torch.zeros(logits.shape[0], dtype=torch.long, device=query.device), reduction="none"
    )
