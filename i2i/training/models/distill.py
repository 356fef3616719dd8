"""Distillation (GAN Compression, Li et al. 2020, without its architecture search): a student
generator learns one direction of a trained teacher. Each source image's translation by the
frozen teacher is the student's target, so the unpaired problem becomes a paired one.

Losses: L1 to the teacher's output; L1 between the EfficientNet-Lite1 feature pyramids of the two
outputs; MSE between residual-block activations, the student's mapped to the teacher's width by
learned 1×1 convolutions; optionally an adversarial term against real target images. The teacher
(and a RecycleGAN teacher's temporal predictors, kept as they are) are frozen networks of the run,
so every checkpoint carries them: resume and the export's gate need nothing but the run.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import ClassVar, Iterator

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import Dataset

from i2i.config import RESNET_GENERATORS, RunConfig
from i2i.nets import build_discriminator, build_generator
from i2i.nets.efficientnet_lite import imagenet_normalize, pretrained_efficientnet_lite
from i2i.nets.resnet import ResnetBlock
from i2i.rundir import (
    STUDENT,
    TEACHER,
    build_predictor,
    generator_channels,
    has_temporal_predictor,
    load_generator,
    load_predictor,
    teacher_spec,
)

from ..datasets import UnalignedDataset
from ..losses import GANLoss
from .base import TranslationModel, require

# Residual blocks whose activations are matched: this many, evenly spaced in depth.
TAPPED_BLOCKS = 3
# The models a student can learn from (a student's own student would need its teacher's teacher).
TEACHER_MODELS = ("cycle_gan", "cut", "fastcut", "recycle_gan")


def tapped_blocks(generator: nn.Module) -> list[nn.Module]:
    """TAPPED_BLOCKS residual blocks of a ResNet generator, evenly spaced, the last one included."""
    blocks = [module for module in generator.modules() if isinstance(module, ResnetBlock)]
    return [blocks[round((k + 1) * len(blocks) / TAPPED_BLOCKS) - 1] for k in range(TAPPED_BLOCKS)]


@contextlib.contextmanager
def recording(modules: list[nn.Module]) -> Iterator[list[torch.Tensor]]:
    """Collects the outputs of `modules`, in order, during the forward passes inside the block."""
    outputs: list[torch.Tensor] = []
    hooks = [module.register_forward_hook(lambda _m, _i, out: outputs.append(out)) for module in modules]
    try:
        yield outputs
    finally:
        for hook in hooks:
            hook.remove()


class DistillModel(TranslationModel):
    dataset_modes: ClassVar[tuple[str, ...]] = ("unaligned", "temporal")

    @classmethod
    def check_config(cls, config: RunConfig) -> None:
        super().check_config(config)
        alg = config.alg.distill
        require(bool(alg.teacher), "alg.distill.teacher: the teacher's run directory is missing (use `i2i distill`)")
        require(
            alg.teacher_model in TEACHER_MODELS,
            f"alg.distill.teacher_model '{alg.teacher_model}': a student learns from {', '.join(TEACHER_MODELS)}",
        )
        require(alg.direction in ("AtoB", "BtoA"), f"alg.distill.direction '{alg.direction}': AtoB or BtoA")
        teacher = teacher_spec(config)
        weights = (alg.lambda_L1, alg.lambda_perceptual, alg.lambda_feature, alg.lambda_GAN)
        require(
            all(0 <= weight < float("inf") for weight in weights) and sum(weights) > 0,
            "alg.distill.lambda_*: finite, >= 0, and at least one positive",
        )
        require(
            alg.lambda_feature == 0 or config.G.netG in RESNET_GENERATORS and teacher.netG in RESNET_GENERATORS,
            f"alg.distill.lambda_feature matches residual blocks: teacher ({teacher.netG}) and student "
            f"({config.G.netG}) must both be resnet_*/mobile_resnet_*; or set it to 0",
        )
        require(
            (config.data.dataset_mode == "temporal") == (alg.teacher_model == "recycle_gan"),
            "a recycle_gan teacher's student trains on its clips (data.dataset_mode temporal), any other on images",
        )
        require(
            not alg.extra_sources or config.data.dataset_mode == "unaligned",
            "alg.distill.extra_sources: images, for teachers trained on images",
        )
        require(
            not config.G.residual or config.data.input_nc == config.data.output_nc,
            "G.residual needs input_nc == output_nc",
        )

    @classmethod
    def build_dataset(cls, config: RunConfig) -> Dataset:
        alg = config.alg.distill
        if config.data.dataset_mode != "unaligned":
            return super().build_dataset(config)
        source = "A" if alg.direction == "AtoB" else "B"
        extra = [Path(folder.strip()) for folder in alg.extra_sources.split(",") if folder.strip()]
        return UnalignedDataset(Path(config.data.dataroot), config.data, config.train.seed, extra={source: extra})

    def __init__(self, config: RunConfig, device: torch.device, autocast_dtype: torch.dtype | None):
        super().__init__(config, device, autocast_dtype)
        alg = config.alg.distill
        self.source, self.target = ("A", "B") if alg.direction == "AtoB" else ("B", "A")
        in_nc, out_nc = generator_channels(config, alg.direction)
        self.G = self.add_network(STUDENT, build_generator(config.G, in_nc, out_nc))
        self.T = self.add_network(TEACHER, build_generator(teacher_spec(config), in_nc, out_nc)).requires_grad_(False)
        if has_temporal_predictor(config):
            for domain in "AB":
                channels = config.data.input_nc if domain == "A" else config.data.output_nc
                self.add_network(f"P_{domain}", build_predictor(config, channels)).requires_grad_(False)
        trained = [self.G]
        if alg.lambda_feature:
            self.student_taps, self.teacher_taps = tapped_blocks(self.G), tapped_blocks(self.T)
            with torch.no_grad():
                probe = torch.zeros(1, in_nc, config.data.crop_size, config.data.crop_size, device=device)
                with recording(self.student_taps) as student, recording(self.teacher_taps) as teacher:
                    self.G(probe), self.T(probe)
            maps = [nn.Conv2d(s.shape[1], t.shape[1], 1) for s, t in zip(student, teacher, strict=True)]
            trained.append(self.add_network("M", nn.ModuleList(maps)))
        self.optimizers = {"G": self.make_adam(trained)}
        if alg.lambda_GAN:
            self.D = self.add_network("D", build_discriminator(config.D, out_nc))
            self.optimizers["D"] = self.make_adam([self.D])
            self.gan_loss = GANLoss(config.train.gan_mode)
        self.perceptual = pretrained_efficientnet_lite("lite1").to(device) if alg.lambda_perceptual else None

    def prepare(self) -> None:
        """Copy the teacher's weights (and a RecycleGAN teacher's predictors) from its run."""
        alg = self.config.alg.distill
        teacher, _ = load_generator(Path(alg.teacher), alg.direction)
        self.T.load_state_dict(teacher.state_dict())
        if has_temporal_predictor(self.config):
            for domain in "AB":
                predictor, _ = load_predictor(Path(alg.teacher), domain)
                self.networks[f"P_{domain}"].load_state_dict(predictor.state_dict())

    def train(self, mode: bool = True) -> None:
        super().train(mode)
        self.T.eval()  # the teacher is what it was: its normalization layers never see training mode

    def images(self, batch: dict[str, torch.Tensor], domain: str) -> torch.Tensor:
        """A domain's images of the batch; a clip batch's frames are images too."""
        images = batch[domain]
        return images.flatten(0, 1) if images.dim() == 5 else images

    def training_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        alg = self.config.alg.distill
        source = self.images(batch, self.source)
        losses = {}
        with self.autocast():
            with torch.no_grad(), recording(self.teacher_taps if alg.lambda_feature else []) as teacher_features:
                target = self.T(source)
            with recording(self.student_taps if alg.lambda_feature else []) as student_features:
                output = self.G(source)
            if alg.lambda_GAN:
                real = self.images(batch, self.target)
                pred = self.judge(self.D, torch.cat([output.detach(), real]), step, 0)
                n = output.shape[0]
                losses["D"] = 0.5 * (self.gan_loss(pred[:n], False) + self.gan_loss(pred[n:], True))
        if alg.lambda_GAN:
            self.optimize(losses["D"], "D")
            self.set_requires_grad([self.D], False)
        with self.autocast():
            total = output.new_zeros(())
            if alg.lambda_L1:
                losses["L1"] = F.l1_loss(output, target) * alg.lambda_L1
            if alg.lambda_perceptual:
                losses["perceptual"] = self.perceptual_distance(output, target) * alg.lambda_perceptual
            if alg.lambda_feature:
                mapped = [m(s) for m, s in zip(self.networks["M"], student_features, strict=True)]
                # Relative to the activations' own power: residual streams grow with depth, and a
                # raw MSE would weigh the last block most and dwarf the image losses.
                distances = [
                    F.mse_loss(s, t) / t.pow(2).mean().clamp_min(1e-8)
                    for s, t in zip(mapped, teacher_features, strict=True)
                ]
                losses["feature"] = sum(distances) / len(distances) * alg.lambda_feature
            if alg.lambda_GAN:
                losses["G_GAN"] = self.gan_loss.generator(self.judge(self.D, output, step, 1)) * alg.lambda_GAN
            for name, value in losses.items():
                if name != "D":
                    total = total + value
        self.optimize(total, "G")
        if alg.lambda_GAN:
            self.set_requires_grad([self.D], True)
        return {name: float(value.detach()) for name, value in losses.items()}

    def perceptual_distance(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean L1 distance between the Lite1 feature pyramids (strides 4, 8, 16) of two batches."""
        if output.shape[1] == 1:  # greyscale models: the ImageNet network sees grey RGB
            output, target = output.expand(-1, 3, -1, -1), target.expand(-1, 3, -1, -1)
        with torch.no_grad():
            wanted = self.perceptual.pyramid(imagenet_normalize(target))
        got = self.perceptual.pyramid(imagenet_normalize(output))
        return sum(F.l1_loss(g, w) for g, w in zip(got, wanted, strict=True)) / len(got)

    @torch.no_grad()
    def sample_rows(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        source = batch[self.source]
        source = source[:, -1] if source.dim() == 5 else source  # a clip's last frame
        with self.autocast():
            return {self.source: source, "teacher": self.T(source), "student": self.G(source)}
