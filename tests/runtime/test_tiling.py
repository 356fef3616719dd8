"""Tiled inference (`--tile`): whole-image instance-norm statistics make tiles agree with
untiled inference; per-tile statistics, the usual approach, visibly do not."""

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from i2i.cli import cli
from i2i.config import GeneratorConfig
from i2i.errors import ConfigError
from i2i.io import list_images, read_image
from i2i.nets import build_generator, init_weights
from i2i.runtime import load
from i2i.runtime.tiling import TiledGenerator, plan_tiles

from ..conftest import untrained_run


def tiled(net, tile, overlap, stats="exact"):
    return TiledGenerator(net, tile, overlap, 4, torch.device("cpu"), torch.float32, stats)


def test_tiles_cover_the_image_once_by_their_cores():
    covered = np.zeros((100, 132), int)
    for t in plan_tiles(100, 132, 48, 8):
        y0, y1, x0, x1 = t.core
        covered[y0:y1, x0:x1] += 1
        assert t.window[0] == max(0, y0 - 8) and t.window[3] == min(132, x1 + 8)
    assert (covered == 1).all()


@torch.no_grad()
def test_equal_to_untiled_when_half_the_overlap_covers_the_receptive_field():
    # Receptive-field radius: 3 (7×7) + 1 + 2 (stride-2 convs) + 4 convs × 4 (one block, run
    # twice) + 4 + 2 (transposed convs) + 3 (7×7) = 31 pixels <= overlap / 2.
    torch.manual_seed(0)
    net = build_generator(
        GeneratorConfig("resnet_attn", ngf=4, attn_blocks=1, attn_masks=4, twice_resnet_blocks=True), 3, 3
    ).eval()
    for p in net.parameters():
        p.normal_(0, 0.1)
    x = torch.rand(1, 3, 160, 224) * 2 - 1
    expected = net(x)
    assert (tiled(net, 160, 64)(x) - expected).abs().max() < 1e-4
    assert (tiled(net, 160, 64, "tile")(x) - expected).abs().max() > 1e-2  # per-tile statistics differ


@torch.no_grad()
def test_no_seams_on_a_real_photo(photos):
    torch.manual_seed(0)
    net = init_weights(build_generator(GeneratorConfig("resnet_9blocks", ngf=8), 3, 3)).eval()
    image = read_image(list_images(photos / "testA")[3], channels=3)
    x = torch.from_numpy(np.concatenate([image, image[:, ::-1]], 1)).permute(2, 0, 1)[None].float() / 127.5 - 1
    expected = net(x)  # 256 × 512, 8 tiles of 256 with 128-pixel cores
    grey_levels = {stats: (tiled(net, 256, 64, stats)(x) - expected).abs() * 127.5 for stats in ("exact", "tile")}
    assert grey_levels["exact"].max() < 1.0
    assert grey_levels["tile"].mean() > 5.0  # what per-tile statistics do to the same photo


def test_generate_with_tiles_and_refusals(tmp_path, photos):
    run = untrained_run(tmp_path / "run", photos, ngf=4, channels=3)
    image = read_image(list_images(photos / "testA")[0], channels=3)
    whole = load(run)([image])[0].astype(int)
    pieces = load(run, tile=128, overlap=32)([image])[0].astype(int)
    assert pieces.shape == whole.shape and np.abs(pieces - whole).mean() < 3
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "big.png").write_bytes(list_images(photos / "testA")[0].read_bytes())
    result = CliRunner().invoke(
        cli, ["generate", str(run), str(tmp_path / "in"), str(tmp_path / "out"), "--tile", "128", "--overlap", "32"]
    )
    assert result.exit_code == 0, result.output
    assert np.array_equal(read_image(tmp_path / "out" / "big.png", channels=3), pieces)
    with pytest.raises(ConfigError, match="multiples of this generator's size multiple 4"):
        load(run, tile=130)
    with pytest.raises(ConfigError, match="no core"):
        load(run, tile=64, overlap=32)
    with pytest.raises(ConfigError, match="torch backend"):
        load(run, tile=128, backend="triton")
    # A displacement per pixel is local: tiles with margins translate like the whole image.
    flowed = untrained_run(tmp_path / "flowed", photos, ngf=4, channels=3, residual=True, flow_warp=3)
    whole = load(flowed)([image])[0].astype(int)
    assert np.abs(load(flowed, tile=128, overlap=32)([image])[0].astype(int) - whole).mean() < 3
    warped = untrained_run(tmp_path / "warped", photos, ngf=4, channels=3, affine_warp=True)
    with pytest.raises(ConfigError, match="warps the whole image first"):
        load(warped, tile=128, overlap=32)
