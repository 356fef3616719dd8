import math

import torch
from torch.nn import functional as F

from i2i.training.datasets import UnalignedDataset
from i2i.training.losses import patch_nce_loss
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
    config.G.antialias = config.G.antialias_up = True
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


def test_fastcut_preset_uses_no_identity_and_flips(photos):
    config = cut_config(photos, "fastcut", lambda_NCE=10.0, nce_idt=False, flip_equivariance=True)
    _, history = run_steps(config, photos, 3)
    assert set(history[0]) == {"D", "G_GAN", "NCE"}
    assert history[0]["NCE"] > 10  # λ_NCE = 10 on a loss of a few nats


def test_encoder_features_stop_at_the_last_layer(photos):
    model, _ = run_steps(cut_config(photos, "cut"), photos, 0)
    features = encoder_features(model.G, torch.zeros(1, 3, 32, 32), [0, 4, 8, 12, 16])
    # Anti-aliased ResNet: padded input, full-res conv, half-res conv, then residual blocks.
    assert [tuple(f.shape[1:]) for f in features] == [(3, 38, 38), (16, 32, 32), (32, 16, 16), (32, 8, 8), (32, 8, 8)]
