import json
import math

import torch

from i2i.training.datasets import UnalignedDataset
from i2i.training.losses import GANLoss, ImagePool
from i2i.training.models.cycle_gan import CycleGANModel

from ..conftest import tiny_config


def test_losses_are_finite_and_fall_on_real_photos(photos):
    config = tiny_config(photos, channels=3, size=32, steps=20, pool_size=0)
    config.G.netG = "resnet_9blocks"
    torch.manual_seed(0)
    model = CycleGANModel(config, torch.device("cpu"), None)
    dataset = UnalignedDataset(photos, config.data, seed=0)
    batch = {k: torch.stack([dataset[i][k] for i in range(2)]) for k in ("A", "B")}
    history = [model.training_step(batch, step) for step in range(20)]
    assert set(history[0]) == {"G_A", "G_B", "cycle_A", "cycle_B", "idt_A", "idt_B", "D_A", "D_B"}
    assert all(math.isfinite(v) for losses in history for v in losses.values())
    first = history[0]["cycle_A"] + history[0]["cycle_B"]
    last = history[-1]["cycle_A"] + history[-1]["cycle_B"]
    assert last < 0.8 * first


def test_trains_joligen_attention_generators(photos):
    config = tiny_config(photos, channels=3, size=32)
    config.G.netG, config.G.attn_blocks, config.G.attn_masks = "mobile_resnet_attn", 2, 4
    model = CycleGANModel(config.validate(), torch.device("cpu"), None)
    dataset = UnalignedDataset(photos, config.data, seed=0)
    batch = {k: torch.stack([dataset[i][k] for i in range(2)]) for k in ("A", "B")}
    assert all(math.isfinite(v) for step in range(2) for v in model.training_step(batch, step).values())


def test_warps_and_residual_heads_learn_from_the_losses(digits):
    config = tiny_config(digits, size=32)
    config.G.residual = config.G.affine_warp = True
    config.G.flow_warp = 4
    torch.manual_seed(0)
    model = CycleGANModel(config.validate(), torch.device("cpu"), None)
    dataset = UnalignedDataset(digits, config.data, seed=0)
    batch = {k: torch.stack([dataset[i][k] for i in range(4)]) for k in ("A", "B")}
    assert torch.equal(model.G_A.warp.theta.bias, torch.tensor([1.0, 0, 0, 0, 1, 0]))
    assert all(math.isfinite(v) for step in range(3) for v in model.training_step(batch, step).values())
    # Gradients reach the warps through the resampling, and the zeroed head (change and
    # displacement planes) off the identity.
    assert (model.G_A.warp.theta.bias - torch.tensor([1.0, 0, 0, 0, 1, 0])).abs().max() > 1e-4
    head = model.G_A.model[-2].weight
    assert head[:1].abs().max() > 1e-4 and head[1:].abs().amax(dim=(1, 2, 3)).min() > 1e-4


def test_identity_loss_is_skipped_across_channel_counts(digits):
    config = tiny_config(digits)
    config.data.output_nc = 3
    model = CycleGANModel(config.validate(), torch.device("cpu"), None)
    batch = {"A": torch.rand(1, 1, 32, 32) * 2 - 1, "B": torch.rand(1, 3, 32, 32) * 2 - 1}
    assert "idt_A" not in model.training_step(batch, 0)


def test_gan_losses_against_direct_formulas():
    prediction = torch.tensor([[0.2, -1.0], [3.0, 0.5]])
    assert torch.isclose(GANLoss("lsgan")(prediction, True), ((prediction - 1) ** 2).mean())
    assert torch.isclose(GANLoss("lsgan")(prediction, False), (prediction**2).mean())
    expected = -torch.log(torch.sigmoid(prediction)).mean()
    assert torch.isclose(GANLoss("vanilla")(prediction, True), expected)
    hinge = GANLoss("hinge")
    assert torch.isclose(hinge(prediction, True), torch.tensor((0.8 + 2.0 + 0.0 + 0.5) / 4))
    assert torch.isclose(hinge(prediction, False), torch.tensor((1.2 + 0.0 + 4.0 + 1.5) / 4))
    assert torch.isclose(hinge.generator(prediction), torch.tensor(-(0.2 - 1.0 + 3.0 + 0.5) / 4))
    # the other losses' generator side is the discriminator's loss on "real"
    assert GANLoss("lsgan").generator(prediction) == GANLoss("lsgan")(prediction, True)


def test_image_pool_fills_then_swaps_reproducibly():
    pool, replay = ImagePool(3, seed=1, channels=3), ImagePool(3, seed=1, channels=3)
    images = [torch.full((1, 1, 2, 2), float(i)) for i in range(10)]
    outputs = [pool.query(image, step) for step, image in enumerate(images)]
    assert [float(o.mean()) for o in outputs[:3]] == [0.0, 1.0, 2.0]
    assert any(float(o.mean()) != i for i, o in enumerate(outputs[3:], start=3))  # some earlier fakes come back
    assert len(pool.images) == 3
    replay.load_state_dict({}, torch.device("cpu"))
    assert [float(replay.query(image, step).mean()) for step, image in enumerate(images)] == [
        float(o.mean()) for o in outputs
    ]


def test_class_consistency_uses_a_frozen_classifier_trained_on_source_labels(digits, tmp_path):
    from click.testing import CliRunner

    from i2i.cli import cli
    from i2i.evaluation.label_preservation import accuracy, labelled_images
    from i2i.io import latest_checkpoint, load_tensors
    from i2i.nets.classifier import DomainClassifier

    run = tmp_path / "run"
    result = CliRunner().invoke(
        cli,
        [
            "train",
            str(digits),
            "--out",
            str(run),
            "--channels",
            "1",
            "--size",
            "32",
            "--load-size",
            "32",
            "--ngf",
            "4",
            "--ndf",
            "4",
            "--netG",
            "resnet_6blocks",
            "--steps",
            "3",
            "--save-every",
            "3",
            "--workers",
            "0",
            "--no-flip",
            "--class-consistency",
            "1.0",
        ],
    )
    assert result.exit_code == 0, result.output
    losses = [json.loads(line) for line in (run / "losses.jsonl").read_text().splitlines()]
    assert all(math.isfinite(entry["source_class"]) and entry["source_class"] > 0 for entry in losses)
    judge = DomainClassifier(1, 10, 32)
    judge.load_state_dict(load_tensors(latest_checkpoint(run) / "C_source.safetensors"))
    # Trained on the MNIST training digits only, it reads held-out MNIST digits well.
    assert accuracy(judge.eval(), *labelled_images(digits / "testA")) > 0.9


def test_class_consistency_needs_labelled_names(photos, tmp_path):
    from click.testing import CliRunner

    from i2i.cli import cli

    result = CliRunner().invoke(cli, ["train", str(photos), "--out", str(tmp_path / "run"), "--class-consistency", "1"])
    assert result.exit_code != 0 and "no label in the name; expected <name>_<label>" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "run").exists()
