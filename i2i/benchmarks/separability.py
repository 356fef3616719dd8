"""Can a run's discriminator tell its two domains apart before the generator moves?

A GAN's generator learns only what its discriminator tells apart. A residual generator starts as
the identity, so at first the discriminator judges real B against real A: where it cannot tell
those apart, the generator gets no signal about what differs (on the object benchmark the
digits' handwriting, a seventh of each image). This trains the discriminator a run would build
(its D options, DiffAugment, adversarial loss, Adam at D's rate, batch 1) on real B against real
A, and reports how well its verdict per image (the mean of its outputs) separates held-out testB
from testA: balanced accuracy at the threshold halfway between the two domains' median verdicts
(0.5 = cannot tell them apart, 1 = always can).

    python -m i2i.benchmarks.separability DATA --steps 3000 [--config FILE] [--preset short] [--netD basic]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from i2i.config import RunConfig
from i2i.io import atomic_write_bytes
from i2i.nets import build_discriminator, init_weights
from i2i.training.augment import DiffAugment
from i2i.training.configure import configure
from i2i.training.datasets import UnalignedDataset
from i2i.training.losses import GANLoss


def separability(config: RunConfig, steps: int, every: int, held_out: int = 200) -> list[dict[str, float]]:
    """[{"step", "accuracy"}] every `every` steps (and at 0 and `steps`) of training config's
    discriminator on real B (real) against real A (fake), scored on up to `held_out` test pairs."""
    data, t = config.data, config.train
    torch.manual_seed(t.seed)
    net = init_weights(build_discriminator(config.D, data.output_nc), t.init_gain)
    # The projected discriminator's frozen backbone is not among its parameters: all of them learn.
    optimizer = torch.optim.Adam(net.parameters(), lr=t.lr * t.lr_D_ratio, betas=(t.beta1, t.beta2))
    loss, augment = GANLoss(t.gan_mode), DiffAugment(t.diff_augment, t.seed)
    train = UnalignedDataset(Path(data.dataroot), data, t.seed)
    test = UnalignedDataset(Path(data.dataroot), data, t.seed, phase="test")
    pairs = [test[i] for i in range(min(held_out, len(test)))]
    held = {domain: torch.stack([pair[domain] for pair in pairs]) for domain in "AB"}
    scores = []
    for step in range(steps + 1):
        if step % every == 0 or step == steps:
            scores.append({"step": step, "accuracy": balanced_accuracy(net, held["A"], held["B"])})
        if step == steps:
            break
        pair = train[step]
        verdicts = net(augment(torch.stack([pair["B"], pair["A"]]), step, 0))
        d_loss = 0.5 * (loss(verdicts[:1], True) + loss(verdicts[1:], False))
        optimizer.zero_grad(set_to_none=True)
        d_loss.backward()
        optimizer.step()
    return scores


@torch.no_grad()
def balanced_accuracy(net: torch.nn.Module, domain_a: torch.Tensor, domain_b: torch.Tensor) -> float:
    """How often the mean verdict puts a B image above, and an A image at or below, the midpoint of
    the two domains' median verdicts (the mean of both rates)."""
    net.eval()
    a, b = (
        torch.cat([net(images[i : i + 16]).mean(dim=(1, 2, 3)) for i in range(0, len(images), 16)])
        for images in (domain_a, domain_b)
    )
    net.train()
    threshold = (a.median() + b.median()) / 2
    return float(((b > threshold).float().mean() + (a <= threshold).float().mean()) / 2)


def main(argv: list[str] | None = None) -> list[dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="A folder with trainA, trainB, testA, testB.")
    parser.add_argument("--config", type=Path, help="train_config.json keys (D, data, train) to start from.")
    parser.add_argument("--preset", choices=["short"], help="As `i2i train --preset`.")
    parser.add_argument("--model", default="cycle_gan", help="The model whose defaults fill the rest.")
    parser.add_argument("--netD", help="Discriminator, as `i2i train --netD`.")
    parser.add_argument("--size", type=int, default=128, help="Crop size (default 128).")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--every", type=int, default=500)
    parser.add_argument("--held-out", type=int, default=200, help="Test pairs to score (default 200).")
    parser.add_argument("--json", type=Path, help="Write the scores here.")
    args = parser.parse_args(argv)
    raw = json.loads(args.config.read_text()) if args.config else {}
    raw["model"] = args.model
    raw.setdefault("data", {}).update(dataroot=str(args.data), crop_size=args.size)
    if args.netD:
        raw.setdefault("D", {})["netD"] = args.netD
    config = configure(raw, args.preset)
    scores = separability(config, args.steps, args.every, args.held_out)
    for score in scores:
        print(f"step {score['step']}: held-out accuracy {score['accuracy']:.3f}")
    if args.json:
        atomic_write_bytes(args.json, (json.dumps(scores, indent=2) + "\n").encode())
    return scores


if __name__ == "__main__":
    main()
