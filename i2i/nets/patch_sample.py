"""PatchSampleF (CUT): sample the same spatial locations from several feature maps and
project each sampled feature with a per-layer 2-layer MLP, then L2-normalize."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class PatchSampleF(nn.Module):
    def __init__(self, channels: list[int], nc: int = 256):
        super().__init__()
        # Built from the encoder's channel counts (CUT creates them lazily on the first batch;
        # i2i probes the encoder once instead, so the optimizer exists from step 0).
        self.mlps = nn.ModuleList(nn.Sequential(nn.Linear(c, nc), nn.ReLU(), nn.Linear(nc, nc)) for c in channels)

    def forward(
        self, features: list[torch.Tensor], num_patches: int, patch_ids: list[torch.Tensor] | None = None
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Returns (per layer: [B·P, nc] normalized projections, per layer: the flat pixel
        indices used). Pass `patch_ids` to sample the locations another call chose."""
        samples, chosen = [], []
        for index, (feature, mlp) in enumerate(zip(features, self.mlps)):
            batch, channels, height, width = feature.shape
            flat = feature.permute(0, 2, 3, 1).reshape(batch, height * width, channels)
            if patch_ids is None:
                ids = torch.randperm(height * width, device=feature.device)[: min(num_patches, height * width)]
            else:
                ids = patch_ids[index]
            picked = flat[:, ids, :].reshape(-1, channels)
            samples.append(F.normalize(mlp(picked), dim=1, eps=1e-7))
            chosen.append(ids)
        return samples, chosen
