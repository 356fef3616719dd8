import json
import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch.nn import functional as F

from i2i.cli import cli
from i2i.training.configure import configure, for_model
from i2i.training.datasets import UnalignedDataset
from i2i.training.losses import patch_nce_loss
from i2i.training.models import model_class
from i2i.training.models.cut import CUTModel, encoder_features

from ..conftest import tiny_config


def test_patch_nce_against_a_direct_computation():
    torch.manual_seed(0)
    batch, patches, dim, tau = 2, 5, 8, 0.07
    q = F.normalize(torch.randn(batch * patches, dim), dim=1)
    k = F.normalize(torch.randn(batch * patches, dim), dim=1)
    got = patch_nce_loss(q, k, batch, tau)
    expected = []
    for b in range(batch):
        for i in range(patches):
            qi = q[b * patches + i]
            scores = [float(qi @ k[b * patches + j]) / tau for j in range(patches)]  # same image only
            expected.append(-scores[i] + math.log(sum(math.exp(s) for s in scores)))
    torch.testing.assert_close(got, torch.tensor(expected), atol=1e-4, rtol=1e-5)


def cut_config(photos, model, **alg):
    config = tiny_config(photos, channels=3, size=32, steps=8, pool_size=0)
    config.model = model
    config.G.antialias, config.G.upsample = True, "blur"
    config.alg.cut.num_patches = 64
    for key, value in alg.items():
        setattr(config.alg.cut, key, value)
    return config.validate()


def run_steps(config, photos, steps):
    torch.manual_seed(0)
    model = CUTModel(config, torch.device("cpu"), None)
    dataset = UnalignedDataset(photos, config.data, seed=0)
    batch = {k: torch.stack([dataset[i][k] for i in range(2)]) for k in ("A", "B")}
    return model, [model.training_step(batch, step) for step in range(steps)]


def test_cut_losses_finite_and_nce_falls_on_real_photos(photos):
    model, history = run_steps(cut_config(photos, "cut"), photos, 10)
    assert set(history[0]) == {"D", "G_GAN", "NCE", "NCE_Y"}
    assert all(math.isfinite(v) for losses in history for v in losses.values())
    assert history[-1]["NCE"] < 0.8 * history[0]["NCE"]
    assert len(model.F.mlps) == 5


FASTCUT_OPTIONS = {
    "G": {"netG": "resnet_6blocks", "ngf": 8},
    "D": {"ndf": 8},
    "data": {"crop_size": 32, "load_size": 36, "num_workers": 0},
    "train": {"steps": 1, "save_every": 1, "sample_every": 1, "log_every": 1},
}


def test_fastcut_from_python_equals_fastcut_from_the_cli(photos, tmp_path):
    result = CliRunner().invoke(
        cli,
        [
            "train",
            str(photos),
            "--model",
            "fastcut",
            "--out",
            str(tmp_path / "run"),
            "--netG",
            "resnet_6blocks",
            "--ngf",
            "8",
            "--ndf",
            "8",
            "--size",
            "32",
            "--load-size",
            "36",
            "--workers",
            "0",
            "--steps",
            "1",
            "--save-every",
            "1",
            "--sample-every",
            "1",
            "--log-every",
            "1",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    from_cli = json.loads((tmp_path / "run" / "train_config.json").read_text())
    from_python = configure(
        {"model": "fastcut", **FASTCUT_OPTIONS, "data": {**FASTCUT_OPTIONS["data"], "dataroot": str(photos.resolve())}}
    )
    assert from_python.to_dict() == from_cli
    # The paper's FastCUT (Park et al. 2020, §4): λ_NCE 10, no identity NCE, flip equivariance, anti-aliased G.
    assert (from_python.alg.cut.lambda_NCE, from_python.alg.cut.nce_idt, from_python.alg.cut.flip_equivariance) == (
        10.0,
        False,
        True,
    )
    assert from_python.G.antialias and from_python.G.upsample == "blur"
    assert for_model("cut").alg.cut.lambda_NCE == 1.0  # CUT keeps its own
    fastcut = for_model("fastcut")  # the Python API's way to a model's defaults
    assert (fastcut.alg.cut.lambda_NCE, fastcut.alg.cut.nce_idt, fastcut.G.antialias) == (10.0, False, True)
    assert for_model("recycle_gan").data.dataset_mode == "temporal"


def test_a_fastcut_step_weighs_nce_by_ten_on_the_flipped_translation(photos):
    config = configure(
        {"model": "fastcut", **FASTCUT_OPTIONS, "data": {**FASTCUT_OPTIONS["data"], "dataroot": str(photos)}}
    )
    dataset = UnalignedDataset(photos, config.data, seed=0)
    batch = {k: torch.stack([dataset[i][k] for i in range(2)]) for k in ("A", "B")}
    torch.manual_seed(0)
    model = model_class("fastcut")(config, torch.device("cpu"), None)
    # Flip equivariance mirrors the input on the steps where this stream draws < 0.5 (step 1 here).
    step = next(s for s in range(10) if np.random.default_rng([config.train.seed, 3, s]).random() < 0.5)
    with torch.no_grad():  # the NCE term by hand, with the weights the step starts from
        fake_B = torch.flip(model.G(torch.flip(batch["A"], [3])), [3])
        torch.manual_seed(1)
        flipped_nce = float(model.nce(batch["A"], fake_B, flipped=True))
        torch.manual_seed(1)
        unflipped_nce = float(model.nce(batch["A"], model.G(batch["A"]), flipped=False))
    torch.manual_seed(1)
    losses = model.training_step(batch, step)
    assert set(losses) == {"D", "G_GAN", "NCE"}  # no identity NCE (NCE_Y)
    assert losses["NCE"] == pytest.approx(10 * flipped_nce, rel=1e-5)
    assert abs(losses["NCE"] - 10 * unflipped_nce) > 1e-3


def test_encoder_features_stop_at_the_last_layer(photos):
    model, _ = run_steps(cut_config(photos, "cut"), photos, 0)
    features = encoder_features(model.G, torch.zeros(1, 3, 32, 32), [0, 4, 8, 12, 16])
    # Anti-aliased ResNet: padded input, full-res conv, half-res conv, then residual blocks.
    assert [tuple(f.shape[1:]) for f in features] == [(3, 38, 38), (16, 32, 32), (32, 16, 16), (32, 8, 8), (32, 8, 8)]
