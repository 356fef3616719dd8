"""Losses of the labelled dataset modes, shared by the models that support them.

- class: generators see the class as one extra constant input plane; classifiers C_A, C_B
  learn the classes on real images, and the generators are penalised when a classifier of
  the target domain reads another class in the translation (class preservation).
- bbox / mask: pixels outside the labelled region (label 0) must stay as they were
  (out-of-mask L1), so translation only changes the labelled objects.
- unaligned with labelled file names in trainA (`lambda_source_class`): a classifier C_source
  trained on them before step 0 and then frozen judges both translations against its own
  reading of their sources (CyCADA's semantic consistency, Hoffman et al. 2018). No labels of
  domain B are used, and the generators are not conditioned on the class.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from i2i.config import RunConfig
from i2i.errors import DataError
from i2i.evaluation.label_preservation import labelled_images, random_affine, small_shifts, train_classifier
from i2i.image import array_to_model_input
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
                    f"C_{domain}", DomainClassifier(channels, data.semantic_nc, self.weights.classifier_ndf)
                )
            self.optimizer = make_adam(self.classifiers.values())
            # The class plane in [-1, 1], converted from the uint8 plane exactly as inference converts it.
            planes = np.array([[[class_plane_value(config, c)] for c in range(data.semantic_nc)]], np.uint8)
            self.plane_values = array_to_model_input(planes).flatten()
        self.source_classifier = None
        if self.weights.lambda_source_class > 0:
            self.source_classifier = add_network(
                "C_source", DomainClassifier(config.data.input_nc, config.data.semantic_nc, self.weights.classifier_ndf)
            )
            self.source_classifier.requires_grad_(False)

    def pretrain_source_classifier(self) -> None:
        """Train C_source on trainA's labelled file names (before step 0 only: it stays frozen)."""
        if self.source_classifier is None:
            return
        data = self.config.data
        images, labels = labelled_images(Path(data.dataroot) / "trainA", data.input_nc, data.crop_size)
        if int(labels.max()) >= data.semantic_nc:
            raise DataError(f"{data.dataroot}/trainA: label {int(labels.max())} >= data.semantic_nc {data.semantic_nc}")
        # A generator that warps its input may move and rescale the content: the judge must then
        # read the class whatever the position and scale, or it pins translations to the source's.
        # Trained from PyTorch's default initialisation, not the GANs' N(0, 0.02): it reaches
        # 90.8 % on MNIST test digits where N(0, 0.02) reaches 85.2 %.
        trained = train_classifier(
            partial(DomainClassifier, data.input_nc, data.semantic_nc, self.weights.classifier_ndf),
            images,
            labels,
            self.weights.source_classifier_epochs,
            self.config.train.seed,
            random_affine if self.config.G.affine_warp else small_shifts,
        )
        device = next(self.source_classifier.parameters()).device
        self.source_classifier.load_state_dict({k: v.to(device) for k, v in trained.state_dict().items()})

    def consistency_terms(
        self, real_A: torch.Tensor, fake_B: torch.Tensor, real_B: torch.Tensor, fake_A: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """C_source must read G_A(a) as it reads a, and G_B(b) as it reads b."""
        if self.source_classifier is None:
            return {}
        judge = self.source_classifier
        with torch.no_grad():
            read_A, read_B = judge(real_A).argmax(1), judge(real_B).argmax(1)
        loss = F.cross_entropy(judge(fake_B).float(), read_A) + F.cross_entropy(judge(fake_A).float(), read_B)
        return {"source_class": loss * self.weights.lambda_source_class}

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

    def generator_terms(
        self, real: torch.Tensor, fake: torch.Tensor, labels: torch.Tensor | None, target_domain: str, suffix: str
    ) -> dict[str, torch.Tensor]:
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
