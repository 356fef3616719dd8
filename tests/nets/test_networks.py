import numpy as np
import pytest
import torch
from torch.nn import functional as F

from i2i.config import DiscriminatorConfig, GeneratorConfig
from i2i.nets import build_discriminator, build_generator, init_weights, size_multiple
from i2i.nets.warp import AffineWarp, flow_resample


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
    torch.manual_seed(0)
    x = torch.rand(2, in_nc, size, size) * 2 - 1
    with torch.no_grad():
        out = net(x)
        alone = net(x[1:])  # instance norm: a sample's output must not depend on its batch
    assert out.shape == (2, out_nc, size, size)
    torch.testing.assert_close(out[1:], alone, atol=1e-5, rtol=0)
    assert (out[0] - out[1]).abs().max() > 1e-3  # and does depend on its own input


def test_mobile_resnet_is_much_smaller():
    dense = count(build_generator(GeneratorConfig("resnet_9blocks"), 3, 3))
    mobile = count(build_generator(GeneratorConfig("mobile_resnet_9blocks"), 3, 3))
    assert mobile < dense / 5


def test_residual_generator_starts_as_the_identity_and_learns():
    net = init_weights(build_generator(GeneratorConfig("resnet_6blocks", ngf=8, residual=True), 3, 3))
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    assert torch.equal(net(x), x)
    # The zeroed head still gets a gradient, so the first step moves it off the identity.
    net(x).sub(torch.zeros_like(x)).square().mean().backward()
    assert net.model[-2].weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="1 input channels cannot give 3"):
        build_generator(GeneratorConfig("resnet_6blocks", ngf=8, residual=True), 1, 3)


def test_affine_warp_starts_as_the_identity():
    net = init_weights(build_generator(GeneratorConfig("resnet_6blocks", ngf=4, affine_warp=True), 1, 1))
    x = torch.rand(3, 1, 20, 28) * 2 - 1
    assert (net.warp(x) - x).abs().max() < 1e-5


def test_affine_warp_resamples_like_torch_affine_grid():
    torch.manual_seed(0)
    warp = AffineWarp(3)
    with torch.no_grad():
        warp.theta.weight.normal_(0, 0.3)
        warp.theta.bias.copy_(torch.tensor([0.7, 0.1, 0.2, -0.1, 0.8, -0.3]))
    x = torch.randn(2, 3, 24, 16, dtype=torch.float64)
    warp = warp.double()
    theta = warp.transform(x)
    expected = F.grid_sample(
        x, F.affine_grid(theta, list(x.shape), align_corners=False), padding_mode="border", align_corners=False
    )
    assert (warp(x) - expected).abs().max() < 1e-10
    # A zoom by 1/0.7 around the centre really changes the picture.
    assert (warp(x) - x).abs().mean() > 0.3


def test_flow_warp_starts_as_the_identity():
    # A class-conditional generator: the condition plane after the image is not resampled.
    net = init_weights(build_generator(GeneratorConfig("resnet_6blocks", ngf=4, residual=True, flow_warp=4), 4, 3))
    x = torch.rand(2, 4, 20, 28) * 2 - 1
    assert net.model[-2].out_channels == 5
    assert (net(x) - x[:, :3]).abs().max() < 1e-5


def test_flow_resample_reads_the_displaced_pixels():
    x = torch.randn(2, 3, 12, 16, dtype=torch.float64)
    flow = torch.zeros(2, 2, 12, 16, dtype=torch.float64)
    flow[:, 0] = 0.5  # x: +2 of at most 4 pixels
    flow[:, 1] = -0.25  # y: -1 pixel
    out = flow_resample(x, flow, 4)
    # Output (i, j) reads input (i - 1, j + 2); the first row and last columns repeat the border.
    assert (out[:, :, 1:, :-2] - x[:, :, :-1, 2:]).abs().max() < 1e-10
    assert (out[:, :, 0, :-2] - x[:, :, 0, 2:]).abs().max() < 1e-10
    assert (out[:, :, 1:, -1] - x[:, :, :-1, -1]).abs().max() < 1e-10
    # Half a pixel reads the mean of two neighbours; the displacement may differ per pixel.
    flow = torch.zeros_like(flow)
    flow[0, 1, :, 5] = 0.125
    out = flow_resample(x, flow, 4)
    assert (out[0, :, :-1, 5] - (x[0, :, :-1, 5] + x[0, :, 1:, 5]) / 2).abs().max() < 1e-10
    assert (out[0, :, :, 6:] - x[0, :, :, 6:]).abs().max() < 1e-10 and (out[1] - x[1]).abs().max() < 1e-10


def test_residual_generator_with_a_condition_plane_adds_the_image():
    net = init_weights(build_generator(GeneratorConfig("resnet_6blocks", ngf=8, residual=True), 4, 3))
    x = torch.rand(2, 4, 32, 32) * 2 - 1
    assert torch.equal(net(x), x[:, :3])


def test_spectral_norm_gives_every_discriminator_conv_a_largest_singular_value_of_one():
    torch.manual_seed(0)
    net = init_weights(build_discriminator(DiscriminatorConfig(ndf=8, spectral_norm=True), 3)).train()
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    # init_weights drew the raw weights from normal(0, 0.02), under the reparametrization
    assert abs(float(convs[1].parametrizations.weight.original.detach().std()) - 0.02) < 0.002
    with torch.no_grad():
        # One power iteration per training forward: an estimate from below, slow where the top
        # singular values of a random weight lie close together. Unnormalized, they are 0.18–0.63.
        for _ in range(60):
            net(torch.randn(1, 3, 32, 32))
    for conv in convs:
        weight = conv.weight.detach().double()
        assert float(torch.linalg.svdvals(weight.reshape(weight.shape[0], -1))[0]) == pytest.approx(1.0, abs=0.05)
    plain = build_discriminator(DiscriminatorConfig(ndf=8), 3)
    assert count(plain) == sum(p.numel() for c in convs for p in (c.parametrizations.weight.original, c.bias))


def test_projected_discriminator_trains_only_its_heads_on_frozen_imagenet_features():
    torch.manual_seed(0)
    net = init_weights(build_discriminator(DiscriminatorConfig(netD="projected", ndf=8), 3)).train()
    assert not net.backbone.training  # ImageNet batch statistics, even in train mode
    assert not any(key.startswith("backbone") for key in net.state_dict())  # installed with its package
    assert all(name.startswith("heads.") for name, _ in net.named_parameters())
    projections = {name: b.clone() for name, b in net.named_buffers() if name.startswith("mix_")}
    assert len(projections) == 11  # channel mixing at 4 scales, scale mixing at 4, 3 top-down links
    images = torch.rand(2, 3, 64, 64, requires_grad=True)
    verdict = net(images * 2 - 1)
    assert verdict.shape == (2, 4, 16, 16)  # one channel per judged scale, on the stride-4 grid
    optimizer = torch.optim.Adam(net.parameters(), lr=0.1)
    verdict.square().mean().backward()
    optimizer.step()
    assert images.grad.abs().sum() > 0  # the generator's gradient passes through the frozen features
    assert all(torch.equal(getattr(net, name), projection) for name, projection in projections.items())
    assert net(torch.zeros(1, 1, 64, 64).expand(-1, 3, -1, -1)).shape == (1, 4, 16, 16)
    beside = build_discriminator(DiscriminatorConfig(netD="basic+projected", ndf=8), 1)
    assert beside(torch.zeros(2, 1, 64, 64)).shape == (2, 5, 16, 16)


def test_the_projected_lowpass_leaves_nothing_of_period_2_and_an_eighth_of_period_4():
    from i2i.nets.projected import BINOMIAL_7, _separable

    net = build_discriminator(DiscriminatorConfig(netD="basic+projected", ndf=8, lowpass=True), 3)
    taps = net.projected.lowpass
    assert "projected.lowpass" not in net.state_dict()  # a constant of the design, not of the run
    images = torch.rand(2, 3, 20, 24)
    kernel = np.array(BINOMIAL_7, np.float64) / 64
    expected = images.double().numpy()
    for axis in (3, 2):  # x, then y, edges reflected without repeating the edge pixel
        padded = np.pad(expected, [(3, 3) if a == axis else (0, 0) for a in range(4)], mode="reflect")
        expected = np.apply_along_axis(lambda line: np.convolve(line, kernel, mode="valid"), axis, padded)
    assert np.abs(_separable(images, taps).double().numpy() - expected).max() < 1e-6
    rows, cols = np.mgrid[:32, :32]
    for period, gain in ((2, 0.0), (4, 1 / 8)):
        wave = torch.from_numpy(np.cos(2 * np.pi * (rows + cols) / period)).float().expand(1, 3, 32, 32)
        centre = _separable(wave, taps)[..., 8:-8, 8:-8]
        assert torch.allclose(centre, gain**2 * wave[..., 8:-8, 8:-8] if period == 4 else centre * 0, atol=1e-5)
