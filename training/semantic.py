"""Losses of the labelled dataset modes, shared by the models that support them.

- class: generators see the class as one extra constant input plane; classifiers C_A, C_B
  learn the classes on real images, and the generators are penalised when a classifier of
  the target domain reads another class in the translation (class preservation).
- bbox / mask: pixels outside the labelled region (label 0) must stay as they were
  (out-of-mask L1), so translation only changes the labelled objects.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from i2i.config import RunConfig
from i2i.nets.classifier import DomainClassifier
from i2i.rundir import class_plane_value


class SemanticTerms:
    def __init__(self, config: RunConfig, add_network, make_adam):
        self.config = config
        self.mode = config.data.dataset_mode
        self.weights = config.alg.semantic
        self.classifiers = {}
        if self.mode == "class":
            data = config.data
            for domain, channels in (("A", data.input_nc), ("B", data.output_nc)):
                self.classifiers[domain] = add_network(
                    f"C_{domain}", DomainClassifier(channels, data.semantic_nc, self.weights.classifier_ndf))
            self.optimizer = make_adam(self.classifiers.values())
            # The class plane in [-1, 1], quantized as the uint8 plane that inference feeds.
            self.plane_values = torch.tensor(
                [class_plane_value(config, c) / 127.5 - 1.0 for c in range(data.semantic_nc)])

    @property
    def conditional(self) -> bool:
        return self.mode == "class"

    @property
    def masked(self) -> bool:
        return self.mode in ("bbox", "mask")

    def condition(self, images: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """Append the class plane to a generator input (class mode); otherwise unchanged."""
        if not self.conditional:
            return images
        plane = self.plane_values.to(images.device, images.dtype)[labels]
        return torch.cat([images, plane.view(-1, 1, 1, 1).expand(-1, 1, *images.shape[2:])], 1)

    def generator_terms(self, real: torch.Tensor, fake: torch.Tensor, labels: torch.Tensor | None,
                        target_domain: str, suffix: str) -> dict[str, torch.Tensor]:
        """Losses for a translation `fake` of `real` (with `real`'s labels) into `target_domain`."""
        if self.conditional:
            logits = self.classifiers[target_domain](fake)
            return {f"class_{suffix}": F.cross_entropy(logits.float(), labels) * self.weights.lambda_class}
        if self.masked and real.shape[1] == fake.shape[1]:
            outside = (labels == 0).unsqueeze(1).to(fake.dtype)
            difference = (fake.float() - real).abs() * outside
            loss = difference.sum() / (outside.sum() * real.shape[1]).clamp_min(1.0)
            return {f"out_mask_{suffix}": loss * self.weights.lambda_out_mask}
        return {}

    def classifier_step(self, batch: dict[str, torch.Tensor], model) -> dict[str, torch.Tensor]:
        """Class mode: one optimizer step of both classifiers on the real images (cross-entropy
        against the folder labels), through the model's optimizer "C"; returns the loss."""
        if not self.conditional:
            return {}
        with model.autocast():
            loss = sum(F.cross_entropy(self.classifiers[d](batch[d]).float(), batch[f"{d}_label"]) for d in "AB")
        model.optimize(loss, "C")
        return {"C": loss}
