"""`i2i import`: checkpoints laid out as the CycleGAN and CUT repositories save them.

The fixtures write state dicts with those repositories' parameter names and layer order,
and the expected outputs come from a functional restatement of their forward passes
(F.conv2d & co. on the raw tensors), not from i2i's modules."""

import pytest
import torch
from click.testing import CliRunner
from torch.nn import functional as F

from i2i.cli import cli
from i2i.errors import CheckpointError, ConfigError
from i2i.importers import import_generator
from i2i.rundir import load_generator

NGF, BLOCKS = 4, 6


def conv(sd, name, x, padding=0, stride=1):
    return F.conv2d(x, sd[f"{name}.weight"], sd.get(f"{name}.bias"), stride=stride, padding=padding)


def norm_relu(x, relu=True):
    x = F.instance_norm(x)
    return F.relu(x) if relu else x


def residual_blocks(sd, h, first):
    for k in range(first, first + BLOCKS):
        r = norm_relu(conv(sd, f"model.{k}.conv_block.1", F.pad(h, (1,) * 4, mode="reflect")))
        r = norm_relu(conv(sd, f"model.{k}.conv_block.5", F.pad(r, (1,) * 4, mode="reflect")), relu=False)
        h = h + r
    return h


def cyclegan_forward(sd, x):
    h = norm_relu(conv(sd, "model.1", F.pad(x, (3,) * 4, mode="reflect")))
    h = norm_relu(conv(sd, "model.4", h, 1, 2))
    h = norm_relu(conv(sd, "model.7", h, 1, 2))
    h = residual_blocks(sd, h, 10)
    for k in (10 + BLOCKS, 13 + BLOCKS):
        h = norm_relu(
            F.conv_transpose2d(h, sd[f"model.{k}.weight"], sd[f"model.{k}.bias"], stride=2, padding=1, output_padding=1)
        )
    return torch.tanh(conv(sd, f"model.{17 + BLOCKS}", F.pad(h, (3,) * 4, mode="reflect")))


def cut_forward(sd, x):
    """CUT's default generator: blur-pool downsampling and blur upsampling (Downsample /
    Upsample of its networks.py, filt_size 3 and 4)."""

    def down(h, filt):
        return F.conv2d(F.pad(h, (1,) * 4, mode="reflect"), filt, stride=2, groups=h.shape[1])

    def up(h, filt):
        y = F.conv_transpose2d(F.pad(h, (1,) * 4, mode="replicate"), filt, stride=2, padding=2, groups=h.shape[1])
        return y[:, :, 1:, 1:][:, :, :-1, :-1]

    h = norm_relu(conv(sd, "model.1", F.pad(x, (3,) * 4, mode="reflect")))
    h = down(norm_relu(conv(sd, "model.4", h, 1)), sd["model.7.filt"])
    h = down(norm_relu(conv(sd, "model.8", h, 1)), sd["model.11.filt"])
    h = residual_blocks(sd, h, 12)
    u = 12 + BLOCKS
    h = norm_relu(conv(sd, f"model.{u + 1}", up(h, sd[f"model.{u}.filt"]), 1))
    h = norm_relu(conv(sd, f"model.{u + 5}", up(h, sd[f"model.{u + 4}.filt"]), 1))
    return torch.tanh(conv(sd, f"model.{u + 9}", F.pad(h, (3,) * 4, mode="reflect")))


def binomial(taps):
    row = torch.tensor(taps, dtype=torch.float32)
    kernel = row[:, None] * row[None, :]
    return kernel / kernel.sum()


def random_state(layout, generator):
    return {name: torch.randn(shape, generator=generator) * 0.2 for name, shape in layout.items()}


def cyclegan_layout(in_nc=3, out_nc=3):
    layout = {
        "model.1.weight": (NGF, in_nc, 7, 7),
        "model.1.bias": (NGF,),
        "model.4.weight": (2 * NGF, NGF, 3, 3),
        "model.4.bias": (2 * NGF,),
        "model.7.weight": (4 * NGF, 2 * NGF, 3, 3),
        "model.7.bias": (4 * NGF,),
    }
    for k in range(10, 10 + BLOCKS):
        for j in (1, 5):
            layout[f"model.{k}.conv_block.{j}.weight"] = (4 * NGF, 4 * NGF, 3, 3)
            layout[f"model.{k}.conv_block.{j}.bias"] = (4 * NGF,)
    layout |= {
        f"model.{10 + BLOCKS}.weight": (4 * NGF, 2 * NGF, 3, 3),
        f"model.{10 + BLOCKS}.bias": (2 * NGF,),
        f"model.{13 + BLOCKS}.weight": (2 * NGF, NGF, 3, 3),
        f"model.{13 + BLOCKS}.bias": (NGF,),
        f"model.{17 + BLOCKS}.weight": (out_nc, NGF, 7, 7),
        f"model.{17 + BLOCKS}.bias": (out_nc,),
    }
    return layout


def cut_state(generator):
    layout = {
        "model.1.weight": (NGF, 3, 7, 7),
        "model.1.bias": (NGF,),
        "model.4.weight": (2 * NGF, NGF, 3, 3),
        "model.4.bias": (2 * NGF,),
        "model.8.weight": (4 * NGF, 2 * NGF, 3, 3),
        "model.8.bias": (4 * NGF,),
    }
    for k in range(12, 12 + BLOCKS):
        for j in (1, 5):
            layout[f"model.{k}.conv_block.{j}.weight"] = (4 * NGF, 4 * NGF, 3, 3)
            layout[f"model.{k}.conv_block.{j}.bias"] = (4 * NGF,)
    u = 12 + BLOCKS
    layout |= {
        f"model.{u + 1}.weight": (2 * NGF, 4 * NGF, 3, 3),
        f"model.{u + 1}.bias": (2 * NGF,),
        f"model.{u + 5}.weight": (NGF, 2 * NGF, 3, 3),
        f"model.{u + 5}.bias": (NGF,),
        f"model.{u + 9}.weight": (3, NGF, 7, 7),
        f"model.{u + 9}.bias": (3,),
    }
    state = random_state(layout, generator)
    state["model.7.filt"] = binomial([1, 2, 1])[None, None].repeat(2 * NGF, 1, 1, 1)
    state["model.11.filt"] = binomial([1, 2, 1])[None, None].repeat(4 * NGF, 1, 1, 1)
    state[f"model.{u}.filt"] = (binomial([1, 3, 3, 1]) * 4)[None, None].repeat(4 * NGF, 1, 1, 1)
    state[f"model.{u + 4}.filt"] = (binomial([1, 3, 3, 1]) * 4)[None, None].repeat(2 * NGF, 1, 1, 1)
    return state


@pytest.mark.parametrize("source", ["cyclegan", "cut"])
def test_imported_generator_reproduces_the_original(source, tmp_path):
    generator = torch.Generator().manual_seed(1)
    state = random_state(cyclegan_layout(), generator) if source == "cyclegan" else cut_state(generator)
    saved = {f"module.{k}": v for k, v in state.items()} if source == "cyclegan" else state  # DataParallel prefix
    torch.save(saved, tmp_path / "latest_net_G.pth")
    config = import_generator(tmp_path / "latest_net_G.pth", source, tmp_path / "run")
    assert config.G.netG == "resnet_6blocks" and config.G.ngf == NGF and config.G.antialias == (source == "cut")
    net, _ = load_generator(tmp_path / "run")
    x = torch.randn(2, 3, 20, 28, generator=generator)
    expected = (cyclegan_forward if source == "cyclegan" else cut_forward)(state, x)
    torch.testing.assert_close(net(x), expected, atol=1e-5, rtol=1e-5)


def test_old_instance_norm_statistics_are_dropped_and_channels_inferred(tmp_path):
    state = random_state(cyclegan_layout(in_nc=1, out_nc=3), torch.Generator().manual_seed(0))
    state["model.2.running_mean"] = torch.zeros(NGF)  # PyTorch < 0.4 saved these for InstanceNorm
    state["model.2.running_var"] = torch.ones(NGF)
    torch.save(state, tmp_path / "old.pth")
    result = CliRunner().invoke(
        cli,
        [
            "import",
            str(tmp_path / "old.pth"),
            "--from",
            "cyclegan",
            "--out",
            str(tmp_path / "run"),
            "--direction",
            "BtoA",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "1→3 channels" not in result.output and "3→1 channels, as BtoA" in result.output
    net, config = load_generator(tmp_path / "run", "BtoA")
    assert net(torch.zeros(1, 1, 16, 16)).shape == (1, 3, 16, 16)


def test_unet_is_recognized(tmp_path):
    from i2i.config import GeneratorConfig
    from i2i.nets import build_generator

    torch.save(build_generator(GeneratorConfig("unet_128", ngf=2), 3, 3).state_dict(), tmp_path / "u.pth")
    assert import_generator(tmp_path / "u.pth", "cyclegan", tmp_path / "run").G.netG == "unet_128"


class Exploit:
    def __reduce__(self):
        return (print, ("this would have run",))


def test_refusals(tmp_path):
    torch.save({"model.1.weight": Exploit()}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError, match=r"holds pickled Python objects.*save `net.state_dict\(\)`"):
        import_generator(tmp_path / "evil.pth", "cyclegan", tmp_path / "a")
    state = random_state(cyclegan_layout(), torch.Generator().manual_seed(0))
    torch.save(state, tmp_path / "g.pth")
    with pytest.raises(ConfigError, match="describe a resnet_6blocks, not the --netG resnet_9blocks"):
        import_generator(tmp_path / "g.pth", "cyclegan", tmp_path / "b", net_g="resnet_9blocks")
    del state["model.4.bias"]
    torch.save(state, tmp_path / "broken.pth")
    with pytest.raises(CheckpointError, match="does not match"):
        import_generator(tmp_path / "broken.pth", "cyclegan", tmp_path / "c")
    assert not (tmp_path / "a").exists() and not (tmp_path / "c").exists()


def joligen_layout(mobile, masks=4, input_masks=1, blocks=2, nc=3):
    layout = {
        "conv1.weight": (NGF, nc, 7, 7),
        "conv1.bias": (NGF,),
        "conv2.weight": (2 * NGF, NGF, 3, 3),
        "conv2.bias": (2 * NGF,),
        "conv3.weight": (4 * NGF, 2 * NGF, 3, 3),
        "conv3.bias": (4 * NGF,),
    }
    for k in range(blocks):
        for j in (1, 2):
            if mobile:  # SeparableConv2d: depthwise conv.0, instance norm conv.1, pointwise conv.2
                layout |= {
                    f"resnet_blocks.{k}.conv{j}.conv.0.weight": (4 * NGF, 1, 3, 3),
                    f"resnet_blocks.{k}.conv{j}.conv.0.bias": (4 * NGF,),
                    f"resnet_blocks.{k}.conv{j}.conv.2.weight": (4 * NGF, 4 * NGF, 1, 1),
                    f"resnet_blocks.{k}.conv{j}.conv.2.bias": (4 * NGF,),
                }
            else:
                layout |= {
                    f"resnet_blocks.{k}.conv{j}.weight": (4 * NGF, 4 * NGF, 3, 3),
                    f"resnet_blocks.{k}.conv{j}.bias": (4 * NGF,),
                }
    for branch in ("content", "attention"):
        layout |= {
            f"deconv1_{branch}.weight": (4 * NGF, 2 * NGF, 3, 3),
            f"deconv1_{branch}.bias": (2 * NGF,),
            f"deconv2_{branch}.weight": (2 * NGF, NGF, 3, 3),
            f"deconv2_{branch}.bias": (NGF,),
        }
    layout |= {
        "deconv3_content.weight": (nc * (masks - input_masks), NGF, 7, 7),
        "deconv3_content.bias": (nc * (masks - input_masks),),
        "deconv3_attention.weight": (masks, NGF, 1, 1),
        "deconv3_attention.bias": (masks,),
    }
    return layout


def joligen_forward(sd, x, mobile, masks, input_masks, padding, twice):
    """JoliGEN's ResnetGenerator_attn.forward (compute_feats, compute_attention_content,
    compute_outputs) restated on the raw tensors."""
    outer = "reflect" if padding == "reflect" else "constant"
    inner = {"reflect": "reflect", "replicate": "replicate", "zeros": "constant"}[padding]

    def block_conv(name, h):
        if mobile:
            h = F.conv2d(
                F.pad(h, (1,) * 4, mode=inner),
                sd[f"{name}.conv.0.weight"],
                sd[f"{name}.conv.0.bias"],
                groups=h.shape[1],
            )
            return conv(sd, f"{name}.conv.2", F.instance_norm(h))
        return conv(sd, name, F.pad(h, (1,) * 4, mode=inner))

    def blocks(h):
        for k in range(len({n.split(".")[1] for n in sd if n.startswith("resnet_blocks.")})):
            r = norm_relu(block_conv(f"resnet_blocks.{k}.conv1", h))
            h = h + norm_relu(block_conv(f"resnet_blocks.{k}.conv2", r), relu=False)
        return h

    def decode(h, branch):
        for j in (1, 2):
            h = norm_relu(
                F.conv_transpose2d(
                    h,
                    sd[f"deconv{j}_{branch}.weight"],
                    sd[f"deconv{j}_{branch}.bias"],
                    stride=2,
                    padding=1,
                    output_padding=1,
                )
            )
        return h

    h = norm_relu(conv(sd, "conv1", F.pad(x, (3,) * 4, mode=outer)))
    h = norm_relu(conv(sd, "conv2", h, 1, 2))
    h = blocks(norm_relu(conv(sd, "conv3", h, 1, 2)))
    if twice:
        h = blocks(h)
    image = torch.tanh(conv(sd, "deconv3_content", F.pad(decode(h, "content"), (3,) * 4, mode=outer)))
    attention = torch.softmax(conv(sd, "deconv3_attention", decode(h, "attention")), dim=1)
    nc, generated = x.shape[1], masks - input_masks
    outputs = [image[:, nc * i : nc * (i + 1)] * attention[:, i : i + 1].repeat(1, nc, 1, 1) for i in range(generated)]
    outputs += [x * attention[:, i : i + 1].repeat(1, nc, 1, 1) for i in range(generated, masks)]
    out = outputs[0]
    for o in outputs[1:]:
        out = out + o
    return out


@pytest.mark.parametrize(
    "mobile, masks, input_masks, padding, twice",
    [
        (False, 4, 1, "reflect", False),
        (True, 4, 1, "reflect", False),
        (False, 3, 0, "zeros", True),
        (True, 5, 2, "replicate", False),
    ],
)
def test_joligen_attention_generator_reproduces_the_original(mobile, masks, input_masks, padding, twice, tmp_path):
    import json

    generator = torch.Generator().manual_seed(2)
    state = random_state(joligen_layout(mobile, masks, input_masks), generator)
    torch.save(state, tmp_path / "latest_net_G_A.pth")
    (tmp_path / "train_config.json").write_text(
        json.dumps(
            {
                "G": {
                    "netG": "mobile_resnet_attn" if mobile else "resnet_attn",
                    "attn_nb_mask_attn": masks,
                    "attn_nb_mask_input": input_masks,
                    "padding_type": padding,
                    "nblocks": 2,
                    "backward_compatibility_twice_resnet_blocks": twice,
                },
                "model": {"input_nc": 3, "output_nc": 3},
                "train": {"feat_wavelet": False},
            }
        )
    )
    result = CliRunner().invoke(
        cli, ["import", str(tmp_path / "latest_net_G_A.pth"), "--from", "joligen", "--out", str(tmp_path / "run")]
    )
    assert result.exit_code == 0, result.output
    assert f"{masks} attention masks ({input_masks} copying the input)" in result.output
    assert ("applied twice" in result.output) == twice
    net, config = load_generator(tmp_path / "run")
    assert config.G.netG == ("mobile_resnet_attn" if mobile else "resnet_attn") and config.G.attn_blocks == 2
    x = torch.rand(2, 3, 20, 28, generator=generator) * 2 - 1
    torch.testing.assert_close(
        net(x), joligen_forward(state, x, mobile, masks, input_masks, padding, twice), atol=1e-5, rtol=1e-5
    )


def test_joligen_without_its_config_infers_from_the_tensors(tmp_path):
    state = random_state(joligen_layout(True, masks=6, input_masks=1), torch.Generator().manual_seed(3))
    torch.save(state, tmp_path / "g.pth")
    config = import_generator(tmp_path / "g.pth", "joligen", tmp_path / "run")
    assert (config.G.netG, config.G.attn_masks, config.G.attn_input_masks, config.G.twice_resnet_blocks) == (
        "mobile_resnet_attn",
        6,
        1,
        False,
    )
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    net, _ = load_generator(tmp_path / "run")
    torch.testing.assert_close(net(x), joligen_forward(state, x, True, 6, 1, "reflect", False), atol=1e-5, rtol=1e-5)


def test_joligen_refusals(tmp_path):
    torch.save(random_state(cyclegan_layout(), torch.Generator().manual_seed(0)), tmp_path / "g.pth")
    with pytest.raises(ConfigError, match="not a JoliGEN attention generator"):
        import_generator(tmp_path / "g.pth", "joligen", tmp_path / "a")
    torch.save(random_state(joligen_layout(False), torch.Generator().manual_seed(0)), tmp_path / "g.pth")
    (tmp_path / "train_config.json").write_text('{"G": {}, "train": {"feat_wavelet": true}}')
    with pytest.raises(ConfigError, match="feat_wavelet"):
        import_generator(tmp_path / "g.pth", "joligen", tmp_path / "b")
    (tmp_path / "train_config.json").write_text("{not json")
    result = CliRunner().invoke(
        cli, ["import", str(tmp_path / "g.pth"), "--from", "joligen", "--out", str(tmp_path / "c")]
    )
    assert result.exit_code != 0 and "unreadable JoliGEN config" in result.output and "Traceback" not in result.output
    assert not any((tmp_path / d).exists() for d in "abc")
