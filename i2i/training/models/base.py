"""What every model shares: its networks, optimizers, an optimizer step that averages
gradients across processes, the tensors a checkpoint must hold to resume exactly, and the
declaration of its configuration (defaults where the user set nothing, and its checks)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, ClassVar, Iterable

import torch
from torch import distributed as dist
from torch import nn
from torch.utils.data import Dataset

from i2i.config import RunConfig
from i2i.errors import ConfigError
from i2i.nets import init_weights

from ..augment import DiffAugment
from ..datasets import LabeledDataset, TemporalDataset, UnalignedDataset


def require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


class TranslationModel:
    """Subclasses create `self.networks` (name → module) and `self.optimizers`
    (name → optimizer), and implement `training_step` and `sample_rows`.

    They also declare their configuration, which `RunConfig.from_dict` and `validate` read:
    `defaults` (train_config.json keys, nested, that the model sets where the user set
    nothing), `dataset_modes` (the data it trains on) and `check_config` (what else it
    cannot train with)."""

    defaults: ClassVar[dict[str, Any]] = {}
    dataset_modes: ClassVar[tuple[str, ...]] = ("unaligned", "class", "bbox", "mask")
    # CyCADA's frozen source-classifier loss (alg.semantic.lambda_source_class): CycleGAN only.
    keeps_source_classes: ClassVar[bool] = False

    @classmethod
    def check_config(cls, config: RunConfig) -> None:
        """Raise ConfigError for settings this model cannot train with; the model-independent
        checks are RunConfig.validate's."""
        data, semantic = config.data, config.alg.semantic
        require(
            data.dataset_mode in cls.dataset_modes,
            f"{config.model} trains on data.dataset_mode {' or '.join(cls.dataset_modes)}, not {data.dataset_mode}"
            + (" (recycle_gan trains on clips)" if data.dataset_mode == "temporal" else ""),
        )
        require(
            semantic.lambda_source_class == 0
            or cls.keeps_source_classes
            and data.dataset_mode == "unaligned"
            and data.semantic_nc >= 2
            and data.input_nc == data.output_nc,
            "alg.semantic.lambda_source_class works with cycle_gan on unaligned data of equal channels, "
            "with data.semantic_nc >= 2 classes",
        )

    @classmethod
    def build_dataset(cls, config: RunConfig) -> Dataset:
        """The training samples of `config.data` (checked before anything is written)."""
        root, data, seed = Path(config.data.dataroot), config.data, config.train.seed
        if data.dataset_mode == "temporal":
            return TemporalDataset(root, data, seed, config.alg.recycle_gan.frame_step)
        if data.dataset_mode in ("class", "bbox", "mask"):
            return LabeledDataset(root, data, seed)
        return UnalignedDataset(root, data, seed)

    def __init__(self, config: RunConfig, device: torch.device, autocast_dtype: torch.dtype | None):
        self.config = config
        self.device = device
        self.autocast_dtype = autocast_dtype
        self.networks: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.augment = DiffAugment(config.train.diff_augment, config.train.seed)

    def add_network(self, name: str, net: nn.Module) -> nn.Module:
        net = init_weights(net, self.config.train.init_gain).to(self.device)
        if self.device.type == "cuda":
            net = net.to(memory_format=torch.channels_last)
        if dist.is_initialized():  # every rank starts from rank 0's weights
            for tensor in list(net.parameters()) + list(net.buffers()):
                dist.broadcast(tensor.data, src=0)
        self.networks[name] = net
        return net

    def make_adam(self, nets: Iterable[nn.Module]) -> torch.optim.Adam:
        params = [p for net in nets for p in net.parameters()]
        t = self.config.train
        return torch.optim.Adam(params, lr=t.lr, betas=(t.beta1, t.beta2))

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def optimize(self, loss: torch.Tensor, *names: str) -> None:
        """Backward once, average gradients over processes (data parallel), step the named
        optimizers."""
        optimizers = [self.optimizers[name] for name in names]
        for optimizer in optimizers:
            optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if dist.is_initialized() and dist.get_world_size() > 1:
            grads = [
                p.grad
                for opt in optimizers
                for group in opt.param_groups
                for p in group["params"]
                if p.grad is not None
            ]
            flat = torch.cat([g.reshape(-1) for g in grads])
            dist.all_reduce(flat)
            flat /= dist.get_world_size()
            offset = 0
            for g in grads:
                g.copy_(flat[offset : offset + g.numel()].view_as(g))
                offset += g.numel()
        for optimizer in optimizers:
            optimizer.step()

    def judge(self, discriminator: nn.Module, images: torch.Tensor, step: int, salt: int) -> torch.Tensor:
        """The discriminator's verdict on `images` seen through DiffAugment (when configured);
        `salt` numbers the judged batches within a step, so each draws its own transforms."""
        return discriminator(self.augment(images, step, salt))

    @staticmethod
    def set_requires_grad(nets: Iterable[nn.Module], requires_grad: bool) -> None:
        for net in nets:
            for p in net.parameters():
                p.requires_grad_(requires_grad)

    def set_learning_rate(self, step: int) -> float:
        """Constant until decay_start·steps, then linear to zero at the last step; the
        discriminators' ("D") at lr_D_ratio times the others'. Returns the generators' rate."""
        t = self.config.train
        start = int(t.decay_start * t.steps)
        factor = 1.0 - max(0, step - start) / float(t.steps - start + 1)
        lr = t.lr * factor
        for name, optimizer in self.optimizers.items():
            for group in optimizer.param_groups:
                group["lr"] = lr * t.lr_D_ratio if name == "D" else lr
        return lr

    def prepare(self) -> None:
        """Work done once before step 0 of a run (none by default); resumed runs skip it."""

    def training_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        raise NotImplementedError

    @torch.no_grad()
    def sample_rows(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def extra_state(self) -> dict[str, dict[str, torch.Tensor]]:
        """Tensors besides network and optimizer state that resuming needs (e.g. image pools)."""
        return {}

    def load_extra_state(self, files: dict[str, dict[str, torch.Tensor]]) -> None:
        pass

    def train(self, mode: bool = True) -> None:
        for net in self.networks.values():
            net.train(mode)
