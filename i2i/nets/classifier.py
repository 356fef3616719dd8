"""A small CNN image classifier, trained on the fly on real images of a domain to judge
whether translated images keep their class."""

from __future__ import annotations

import torch
from torch import nn


class DomainClassifier(nn.Module):
    def __init__(self, input_nc: int, n_classes: int, ndf: int = 32):
        super().__init__()
        layers: list[nn.Module] = []
        channels = input_nc
        for width in (ndf, ndf * 2, ndf * 4):
            layers += [nn.Conv2d(channels, width, kernel_size=3, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
            channels = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(channels, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))
