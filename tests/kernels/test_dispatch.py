"""Whole generators rewritten onto the kernels, against the torch generator in float64."""

import pytest
import torch

from i2i.config import GeneratorConfig
from i2i.kernels.dispatch import FusedConv, FusedResnetBlock, fuse_generator
from i2i.nets import build_generator


def randomized(name, ngf, in_nc=3, out_nc=3, **options):
    torch.manual_seed(0)
    net = build_generator(GeneratorConfig(name, ngf=ngf, **options), in_nc, out_nc).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.1)  # non-trivial biases too, unlike the zero-bias initialization
    return net


@pytest.mark.parametrize(
    "name, ngf, size",
    [
        ("resnet_6blocks", 4, (12, 20)),
        ("mobile_resnet_9blocks", 4, (16, 12)),
        pytest.param("unet_128", 2, (128, 128), marks=pytest.mark.slow),
    ],
)
def test_fused_generator_matches_torch(name, ngf, size):
    net = randomized(name, ngf)
    x = torch.randn(2 if size[0] < 64 else 1, 3, *size)
    with torch.no_grad():
        fused = fuse_generator(net)(x)
        expected = net.double()(x.double())
    assert (fused.double() - expected).abs().max().item() < 1e-4


def test_residual_and_warped_generators_keep_their_torch_parts():
    net = randomized("resnet_6blocks", 4, residual=True, affine_warp=True, flow_warp=2)
    with torch.no_grad():
        net.warp.theta.bias.copy_(torch.tensor([0.8, 0.0, 0.1, 0.0, 0.9, 0.0]))  # a real warp, not a near-zero one
    x = torch.rand(2, 3, 16, 12) * 2 - 1
    with torch.no_grad():
        fused = fuse_generator(net)
        result = fused(x)
        expected = net.double()(x.double())
    assert fused.warp is net.warp and isinstance(fused.model[0], FusedConv)
    assert (result.double() - expected).abs().max().item() < 1e-4


def test_resize_convolution_upsampling_is_fused_around_its_resize():
    net = randomized("resnet_6blocks", 4, upsample="nearest")
    fused = fuse_generator(net)
    kinds = [type(m).__name__ for m in fused.model]
    assert kinds.count("Upsample") == 2 and "ReflectionPad2d" not in kinds and "InstanceNorm2d" not in kinds
    x = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        assert (fused(x).double() - net.double()(x.double())).abs().max().item() < 1e-4


def test_rewrite_fuses_every_resnet_conv():
    net = randomized("resnet_9blocks", 4)
    fused = fuse_generator(net)
    kinds = [type(m).__name__ for m in fused.model]
    assert kinds.count("FusedResnetBlock") == 9 and "ReflectionPad2d" not in kinds and "InstanceNorm2d" not in kinds
    assert [m.activation for m in fused.model if isinstance(m, FusedConv)] == ["relu"] * 5 + ["tanh"]
    block = next(m for m in fused.model if isinstance(m, FusedResnetBlock))
    assert block.last.norm is not None and block.last.pad_mode == "reflect"
    # Parameters are shared, not copied.
    assert fused.model[0].conv.weight.data_ptr() == net.model[1].weight.data_ptr()
    assert isinstance(net.model[0], torch.nn.ReflectionPad2d)  # the original is left as it was


def test_training_mode_is_refused():
    with pytest.raises(ValueError, match="inference"):
        fuse_generator(build_generator(GeneratorConfig("resnet_6blocks", ngf=4), 3, 3))


def test_generators_it_cannot_rewrite_are_refused():
    from i2i.errors import ConfigError

    net = build_generator(GeneratorConfig("resnet_attn", ngf=4, attn_blocks=1), 3, 3).eval()
    with pytest.raises(
        ConfigError, match="triton backend rewrites resnet_\\*/unet_\\* generators, not AttentionResnetGenerator"
    ):
        fuse_generator(net)
