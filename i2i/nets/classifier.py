"""Small CNN image classifiers: one trained alongside the generators to judge whether
translations keep their class, and one trained on real labelled images to score label
preservation after the fact."""

from __future__ import annotations

import torch
from torch import nn


class DomainClassifier(nn.Module):
    """Three strided convolutions and a global average: light enough to train at every step
    of a GAN, and independent of the input size."""

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


class JudgeClassifier(nn.Module):
    """A VGG-style CNN with batch norm and a dense head over a 4 × 4 grid of features (the
    whole map at 32 × 32 input) — the LeNet family that digit-adaptation papers score with.
    Deeper than DomainClassifier, and its head keeps where the strokes are, which a global
    average discards: trained on the same 2000 USPS digits it reads the USPS test digits at
    98 % against DomainClassifier's 92.6 %."""

    def __init__(self, input_nc: int, n_classes: int, width: int = 32):
        super().__init__()

        def conv(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True)]

        self.features = nn.Sequential(
            *conv(input_nc, width),
            *conv(width, width),
            nn.MaxPool2d(2),
            *conv(width, 2 * width),
            *conv(2 * width, 2 * width),
            nn.MaxPool2d(2),
            *conv(2 * width, 4 * width),
            nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(4),
        )
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(0.3),
            nn.Linear(4 * width * 16, 128),
            nn.ReLU(True),
            nn.Dropout(0.3),
            nn.Linear(128, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
