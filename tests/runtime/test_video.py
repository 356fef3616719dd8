"""Video stylization: streaming I/O on real clips, temporal modes, flicker metric, bad input."""

import json
import shutil

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from i2i.cli import cli
from i2i.errors import DataError
from i2i.runtime import load
from i2i.runtime.flicker import warping_error
from i2i.runtime.video import FrameSource, blend, stylize_video
from i2i.training.trainer import train

from ..conftest import SHARED_DATA, tiny_config

VIDEO = SHARED_DATA / "video"


@pytest.fixture(scope="module")
def clip():
    path = VIDEO / "carphone_pristine.mp4"
    if not path.is_file():
        pytest.skip("shared clips missing")
    return path


@pytest.fixture(scope="module")
def recycle_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    for domain, name in (("trainA", "cup.mp4"), ("trainB", "vtest_first50_384x288.mp4")):
        (root / domain).mkdir()
        shutil.copy(VIDEO / name, root / domain / name)
    config = tiny_config(root, channels=3, size=32, steps=2)
    config.model, config.data.dataset_mode = "recycle_gan", "temporal"
    config.alg.recycle_gan.predictor_ngf = 4
    run = tmp_path_factory.mktemp("runs") / "recycle"
    train(config.validate(), run)
    return run


def read_all(path):
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    return frames, capture.get(cv2.CAP_PROP_FPS)


def test_warping_error_sees_flicker_not_motion(clip):
    frames = [frame for _, frame in zip(range(2), FrameSource(clip, 3))]
    moving = warping_error((frames[0], frames[1]), (frames[0], frames[1]))  # outputs that move with the input
    unwarped = np.abs(frames[1].astype(float) - frames[0]).mean()
    assert moving < 6.0 and moving < unwarped
    flickering = np.clip(frames[1].astype(int) + 40, 0, 255).astype(np.uint8)
    assert warping_error((frames[0], frames[1]), (frames[0], flickering)) > 25.0
    assert warping_error((frames[0], frames[0]), (frames[0], frames[0])) < 0.01  # no motion: flow ≈ 0


@pytest.mark.parametrize("temporal", ["none", "flow", "recycle"])
def test_stylize_keeps_size_rate_and_length(clip, recycle_run, tmp_path, temporal):
    predictor = load(recycle_run)
    result = stylize_video(predictor, clip, tmp_path / "out.mp4", temporal, recycle_run, report=True, max_frames=12)
    frames, fps = read_all(tmp_path / "out.mp4")
    assert len(frames) == result.frames == 12 and frames[0].shape == (144, 176, 3)
    assert fps == pytest.approx(FrameSource(clip, 3).fps, rel=1e-3)
    summary = json.loads((tmp_path / "out.report.json").read_text())["summary"]
    assert len(result.flicker) == 11 and summary["temporal"] == temporal
    if temporal == "none":
        assert (
            summary["flicker"] == summary["flicker_per_frame_baseline"]
            and summary["mean_deviation_from_per_frame"] == 0
        )
    else:  # blending in the temporal guess must lower the flicker of the per-frame output it departs from
        assert summary["flicker"] < summary["flicker_per_frame_baseline"]
        reduction = 1 - summary["flicker"] / summary["flicker_per_frame_baseline"]
        assert summary["flicker_reduction"] == pytest.approx(reduction)
        assert summary["mean_deviation_from_per_frame"] > 0
    assert (tmp_path / "out.report.png").stat().st_size > 0
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp files left


def test_blend_weighs_the_guess_by_agreement():
    guess, styled = np.full((2, 2, 3), 100, np.uint8), np.full((2, 2, 3), 140, np.uint8)
    usable = np.array([[True, True], [True, False]])
    out = blend(guess, styled, usable, alpha=0.9, sigma=40.0)
    # d = 40 = σ: weight 0.9·e⁻¹ = 0.33109, 0.33109·100 + 0.66891·140 = 126.76 → 127; unusable pixels keep styled.
    assert out[0, 0].tolist() == [127, 127, 127] and out[1, 1].tolist() == [140, 140, 140]
    far = blend(np.zeros((1, 1, 3), np.uint8), np.full((1, 1, 3), 200, np.uint8), np.ones((1, 1), bool), 0.9, 40.0)
    assert far.tolist() == [[[200, 200, 200]]]  # d = 200 = 5σ: weight 0.9·e⁻²⁵, the guess is ignored


@pytest.mark.slow
def test_truncated_and_broken_videos(clip, tiny_run, tmp_path):
    runner = CliRunner()
    # cup.mp4 keeps its index at the start: cut in half, its first frames still decode.
    data = (VIDEO / "cup.mp4").read_bytes()
    (tmp_path / "truncated.mp4").write_bytes(data[: len(data) // 2])
    # tiny_run is grayscale: frames are converted on the way in, written back as 3-channel video.
    result = runner.invoke(cli, ["video", str(tiny_run), str(tmp_path / "truncated.mp4"), str(tmp_path / "t.mp4")])
    assert result.exit_code == 0, result.output
    frames, _ = read_all(tmp_path / "t.mp4")
    assert 0 < len(frames) < 217 and f"stopped at frame {len(frames)}" in result.output
    # carphone's index is at the end: cut in half, nothing opens — a one-line error.
    data = clip.read_bytes()
    (tmp_path / "headless.mp4").write_bytes(data[: len(data) // 2])
    result = runner.invoke(cli, ["video", str(tiny_run), str(tmp_path / "headless.mp4"), str(tmp_path / "h.mp4")])
    assert result.exit_code == 2 and "headless.mp4: not a video OpenCV can read" in result.output
    (tmp_path / "empty.mp4").write_bytes(b"")
    result = runner.invoke(cli, ["video", str(tiny_run), str(tmp_path / "empty.mp4"), str(tmp_path / "e.mp4")])
    assert result.exit_code == 2 and "empty.mp4" in result.output
    assert not (tmp_path / "e.mp4").exists()
    result = runner.invoke(cli, ["video", str(tiny_run), str(clip), str(tmp_path / "r.mp4"), "--temporal", "recycle"])
    assert result.exit_code == 2 and "recycle_gan" in result.output


def test_frame_folder_input(tiny_run, digits, tmp_path):
    predictor = load(tiny_run)
    result = stylize_video(predictor, digits / "testA", tmp_path / "digits.avi", max_frames=5)
    frames, _ = read_all(tmp_path / "digits.avi")
    assert result.frames == 5 and len(frames) == 5 and frames[0].shape[:2] == (28, 28)
    (tmp_path / "nothing").mkdir()
    with pytest.raises(DataError, match="no frames"):
        FrameSource(tmp_path / "nothing", 3)
