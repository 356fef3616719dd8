import pytest
import torch

from i2i.config import DiscriminatorConfig, GeneratorConfig
from i2i.nets import build_discriminator, build_generator, size_multiple


def count(net):
    return sum(p.numel() for p in net.parameters())


def test_resnet9_parameter_count_matches_cyclegan():
    # The CycleGAN repository prints 11.378 M for its ResNet-9 generator at ngf 64.
    assert count(build_generator(GeneratorConfig("resnet_9blocks", ngf=64), 3, 3)) == 11_378_179


def test_patchgan_parameter_count_and_receptive_field():
    net = build_discriminator(DiscriminatorConfig(), 3)
    assert count(net) == 2_764_737
    # 70×70 receptive field: a 256 input gives a 30×30 grid of patch decisions.
    assert net(torch.zeros(1, 3, 256, 256)).shape == (1, 1, 30, 30)


def test_cyclegan_state_dict_names():
    keys = build_generator(GeneratorConfig("resnet_9blocks", ngf=8), 3, 3).state_dict().keys()
    assert "model.1.weight" in keys and "model.10.conv_block.1.weight" in keys and "model.26.bias" in keys
    unet_keys = build_generator(GeneratorConfig("unet_128", ngf=8), 3, 3).state_dict().keys()
    assert "model.model.0.weight" in unet_keys


@pytest.mark.parametrize(
    "name, in_nc, out_nc, size",
    [
        ("resnet_9blocks", 3, 3, 36),
        ("resnet_6blocks", 1, 3, 44),
        ("mobile_resnet_9blocks", 3, 1, 28),
        ("unet_128", 3, 3, 128),
        ("unet_256", 1, 1, 256),
        ("resnet_attn", 3, 3, 36),
        ("mobile_resnet_attn", 1, 1, 28),
    ],
)
def test_generators_keep_size_and_range(name, in_nc, out_nc, size):
    spec = GeneratorConfig(name, ngf=8)
    assert size % size_multiple(spec) == 0
    net = build_generator(spec, in_nc, out_nc).eval()
    out = net(torch.randn(2, in_nc, size, size).clamp(-1, 1))  # attention generators mix in the input
    assert out.shape == (2, out_nc, size, size)
    assert out.abs().max() <= 1.0


def test_mobile_resnet_is_much_smaller():
    dense = count(build_generator(GeneratorConfig("resnet_9blocks"), 3, 3))
    mobile = count(build_generator(GeneratorConfig("mobile_resnet_9blocks"), 3, 3))
    assert mobile < dense / 5
