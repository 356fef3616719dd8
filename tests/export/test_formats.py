"""The formats table and the checks that run before anything is written; per-layer sensitivity."""

import shutil

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

from i2i.cli import cli
from i2i.export.formats import FORMATS, cpu_has_native_bf16
from i2i.export.quality import conv_sensitivity, most_sensitive

from ..conftest import untrained_run


@pytest.fixture(scope="module")
def photo_run(photos, tmp_path_factory):
    return untrained_run(tmp_path_factory.mktemp("formats") / "run", photos, ngf=4, channels=3)


def test_formats_table_lists_every_format():
    result = CliRunner().invoke(cli, ["export", "--formats"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:3] == ["format", "suffix", "precisions"]
    for fmt in FORMATS.values():
        row = next(line for line in lines if line.startswith(fmt.name))
        assert fmt.suffix in row and ",".join(fmt.precisions) in row and ",".join(fmt.runs_on) in row


def _refused(args, out):
    result = CliRunner().invoke(cli, ["export", *args, "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("Error: ") and len(result.output.strip().splitlines()) == 1, result.output
    assert not out.exists() or not any(out.iterdir())  # nothing written, not even the ONNX file
    return result.output


def test_impossible_combinations_are_refused_before_writing(photo_run, tmp_path):
    out = tmp_path / "out"
    assert "--io uint8" in _refused([str(photo_run), "--format", "openvino", "--io", "uint8"], out)
    assert "onnx exports fp32, fp16, int8" in _refused([str(photo_run), "--format", "onnx", "--precision", "bf16"], out)
    assert "not a format" in _refused([str(photo_run), "--format", "coreml"], out)
    assert "spellings" in _refused([str(photo_run), "--fp16", "--precision", "int8"], out)
    assert "only tensorrt" in _refused([str(photo_run), "--shapes", "1x64x64,1x256x256,2x512x512"], out)
    assert "--timing-cache" in _refused([str(photo_run), "--format", "openvino", "--timing-cache", str(tmp_path)], out)
    assert "needs no calibration" in _refused([str(photo_run), "--calib", str(photo_run)], out)
    if not torch.cuda.is_available():
        _refused([str(photo_run), "--trt"], out)  # fails on TensorRT or the GPU, before the ONNX export
    if not cpu_has_native_bf16():
        assert "no native bf16" in _refused([str(photo_run), "--format", "openvino", "--precision", "bf16"], out)


def test_bad_calibration_folders_are_refused(photo_run, photos, tmp_path):
    out = tmp_path / "out"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no calibration images" in _refused([str(photo_run), "--precision", "int8", "--calib", str(empty)], out)
    assert "does not exist" in _refused([str(photo_run), "--precision", "int8", "--calib", str(tmp_path / "x")], out)
    grey = tmp_path / "grey"
    grey.mkdir()
    cv2.imwrite(str(grey / "g.png"), np.full((40, 40), 128, np.uint8))
    assert "1-channel image" in _refused([str(photo_run), "--precision", "int8", "--calib", str(grey)], out)
    broken = tmp_path / "broken"
    shutil.copytree(grey, broken)
    (broken / "g.png").write_bytes(b"not a png")
    assert "g.png" in _refused(
        [str(photo_run), "--format", "openvino", "--precision", "int8", "--calib", str(broken)], out
    )


def test_sensitivity_finds_the_layer_with_an_outlier_weight():
    """Two identical 3×3 convolutions, except that one has a single huge weight per output
    channel: its int8 grid is 100× coarser, so quantizing it alone costs far more."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 3, 3, padding=1),
    )
    with torch.no_grad():
        net[2].weight.copy_(torch.randn_like(net[2].weight) * 0.05)
        net[2].weight[:, 0, 0, 0] = 5.0
    images = [np.random.default_rng(i).integers(0, 256, (1, 24, 24, 3), dtype=np.uint8) for i in range(2)]
    scores = conv_sensitivity(net, images)
    assert len(scores) == 3 and most_sensitive(scores, 1) == [1]
    assert scores[1] < min(scores[0], scores[2]) - 6  # at least 6 dB worse
