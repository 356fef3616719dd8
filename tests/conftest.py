"""Shared fixtures: the real datasets in ../shared/data and a tiny trained run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# Triton kernels run in Triton's CPU interpreter where there is no GPU. The switch is read
# when a kernel is decorated, so it must be set before any i2i.kernels module is imported.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

# pytest-xdist runs one worker per core; torch's default of one thread per core in every
# worker oversubscribes the cores, and its spinning OpenMP threads then wait on each other.
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)

# A DataLoader with worker processes installs a Python SIGCHLD handler in its process (torch's
# check for dead workers). Tests train in-process inside long-lived xdist workers, and late in a
# full run such a worker died with SIGSEGV when that handler's signal came (si_code SI_KERNEL, no
# faulthandler output, the main thread asleep: the kernel could not build the signal frame on the
# main thread's alternate stack; core dumps of 2026-11-30, cause of the broken stack not found).
# Fresh processes (`i2i train`, the CLI tests' subprocesses) never showed it. Test processes take
# SIGCHLD's default instead: a dead DataLoader worker then shows as a failed test, not a message.
from torch.utils.data._utils import signal_handling  # noqa: E402

signal_handling._SIGCHLD_handler_set = True

from i2i.config import RunConfig  # noqa: E402

SHARED_DATA = Path(os.environ.get("I2I_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def shared_dataset(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"{path} not present (set I2I_SHARED_DATA to the shared data folder)")
    return path


@pytest.fixture(scope="session")
def digits() -> Path:
    return shared_dataset("mnist2usps")


@pytest.fixture(scope="session")
def photos() -> Path:
    return shared_dataset("photo2monet")


# `i2i train` options for a network as small as tiny_config's, for the tests that go through the CLI.
TINY_TRAIN = ["--size", "32", "--ngf", "8", "--ndf", "8", "--netG", "resnet_6blocks", "--workers", "0"]


def tiny_config(dataroot: Path, channels: int = 1, size: int = 32, steps: int = 4, **train) -> RunConfig:
    """A network small enough for a test step to take milliseconds on a CPU."""
    config = RunConfig()
    config.G.ngf, config.D.ndf, config.G.netG = 8, 8, "resnet_6blocks"
    config.data.dataroot = str(dataroot)
    config.data.input_nc = config.data.output_nc = channels
    config.data.crop_size, config.data.load_size = size, size + 4
    config.data.num_workers = 0
    config.train.steps = steps
    config.train.save_every = config.train.sample_every = config.train.log_every = 1
    for key, value in train.items():
        setattr(config.train, key, value)
    return config.validate()


@pytest.fixture(scope="session")
def tiny_run(digits: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CycleGAN run on real MNIST/USPS digits, trained for 3 steps."""
    from i2i.training.trainer import train

    run_dir = tmp_path_factory.mktemp("runs") / "digits"
    train(tiny_config(digits, steps=3), run_dir)
    return run_dir


def untrained_run(
    run_dir: Path, dataroot: Path, net_g: str = "resnet_6blocks", ngf: int = 4, channels: int = 1, **generator_options
) -> Path:
    """A run directory whose generators have random weights (biases included, unlike a fresh
    init): enough for export and backend parity, which compare implementations, not quality."""
    from i2i.config import save_config
    from i2i.io import save_checkpoint
    from i2i.nets import build_generator
    from i2i.nets.warp import IDENTITY, AffineWarp

    config = tiny_config(dataroot, channels=channels)
    config.G.netG, config.G.ngf = net_g, ngf
    for key, value in generator_options.items():
        setattr(config.G, key, value)
    torch.manual_seed(0)
    files = {}
    for name in ("G_A", "G_B"):
        net = build_generator(config.G, channels, channels)
        with torch.no_grad():
            for p in net.parameters():
                p.normal_(0, 0.1)
            for warp in (m for m in net.modules() if isinstance(m, AffineWarp)):
                warp.theta.bias.add_(torch.tensor(IDENTITY))  # random but near the identity: a real resampling
        files[name] = net.state_dict()
    save_config(config, run_dir)
    save_checkpoint(run_dir / "checkpoints", 1, files, {"step": 1}, keep=1)
    return run_dir
