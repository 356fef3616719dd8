"""Video stylization: streaming I/O on real clips, temporal modes, flicker metric, bad input."""

import json
import shutil

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from i2i.cli import cli
from i2i.errors import DataError
from i2i.evaluation.flicker import InputMotion, blending_flow, flicker, measuring_flow, warping_error
from i2i.export.exporter import ExportRequest, export
from i2i.export.onnx import PREDICTOR_KEY, TOLERANCE
from i2i.image import array_to_model_input
from i2i.io import list_images
from i2i.rundir import load_predictor
from i2i.runtime import load
from i2i.runtime.temporal import FlowBlender, Limit
from i2i.runtime.video import FrameSource, TemporalStep, VideoReport, stylize_video
from i2i.training.trainer import train

from ..conftest import SHARED_DATA, tiny_config
from ..robustness.conftest import assert_user_error

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


def test_recycle_gan_judges_images_on_pretrained_features(recycle_run, tmp_path):
    """--netD projected applies to RecycleGAN's image discriminators (with the hinge loss); the
    exported generator is the same network as with a PatchGAN."""
    from i2i.nets.projected import ProjectedDiscriminator
    from i2i.rundir import load_generator
    from i2i.training.configure import configure
    from i2i.training.models import model_class

    raw = json.loads((recycle_run / "train_config.json").read_text())
    raw["D"] |= {"netD": "projected", "lowpass": True}
    del raw["train"]["gan_mode"]
    config = configure({key: raw[key] for key in ("model", "data", "G", "D", "train", "alg")})
    model = model_class("recycle_gan")(config, torch.device("cpu"), None)
    assert isinstance(model.D_A, ProjectedDiscriminator) and isinstance(model.D_B, ProjectedDiscriminator)
    assert config.train.gan_mode == "hinge"
    train(config, tmp_path / "projected")
    records = [json.loads(line) for line in (tmp_path / "projected" / "losses.jsonl").read_text().splitlines()]
    assert records and all(np.isfinite(v) for r in records for k, v in r.items() if k.startswith(("D_", "G_")))
    generators = [load_generator(run, "AtoB")[0] for run in (recycle_run, tmp_path / "projected")]
    assert [(n, p.shape) for n, p in generators[0].state_dict().items()] == [
        (n, p.shape) for n, p in generators[1].state_dict().items()
    ]


@pytest.fixture(scope="module")
def exported(recycle_run, tmp_path_factory):
    """recycle_run's A→B generator exported to ONNX and OpenVINO IR, its predictor P_B beside it."""
    out = tmp_path_factory.mktemp("exported")
    for name in ("onnx", "openvino"):
        export(ExportRequest(recycle_run, format=name, out_dir=out))
    return out


def read_all(path):
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    return frames, capture.get(cv2.CAP_PROP_FPS)


def test_flicker_sees_flicker_not_motion(clip):
    frames = [frame for _, frame in zip(range(2), FrameSource(clip, 3))]
    motion = InputMotion.estimate(frames[0], frames[1], measuring_flow)
    moving = flicker(motion, frames[0], frames[1])  # outputs that move with the input
    unwarped = np.abs(frames[1].astype(float) - frames[0]).mean()
    assert moving < 6.0 and moving < unwarped
    flickering = np.clip(frames[1].astype(int) + 40, 0, 255).astype(np.uint8)
    assert flicker(motion, frames[0], flickering) > 25.0
    still = InputMotion.estimate(frames[0], frames[0], measuring_flow)
    assert flicker(still, frames[0], frames[0]) < 0.01  # no motion: flow ≈ 0


def textured(height=116, width=148, seed=0):
    """Blurred noise at a contrast of 50 grey levels: texture both flows track to a fraction of a pixel."""
    noise = cv2.GaussianBlur(np.random.default_rng(seed).random((height, width, 3)).astype(np.float32), (0, 0), 1.5)
    return np.clip((noise - noise.mean()) / noise.std() * 50 + 128, 0, 255).astype(np.uint8)


def test_warping_error_of_a_static_scene_is_zero():
    image = textured()
    motion = InputMotion.estimate(image, image, measuring_flow)
    assert motion.reliable.all()
    assert warping_error(motion, image, image) < 1e-9  # DIS finds no flow at all between identical frames
    brighter = (image.astype(int) + 10).clip(0, 255).astype(np.uint8)  # 10/255 everywhere it is not clipped
    expected = ((brighter.astype(float) - image) / 255) ** 2
    assert warping_error(motion, image, brighter) == pytest.approx(expected.mean(), abs=1e-6)


@pytest.mark.parametrize("flow", [measuring_flow, blending_flow])
def test_warping_error_recovers_a_known_shift(flow):
    scene = textured(seed=1)
    previous, current = scene[10:, 10:], scene[8:-2, 7:-3]  # the scene moved 3 px right and 2 px down
    motion = InputMotion.estimate(previous, current, flow)
    reliable = motion.reliable
    assert np.abs(motion.backward[reliable] - (-3, -2)).max() < 0.25  # the shift recovered where trusted
    assert reliable.mean() > 0.9 and not reliable[:, :3].any() and not reliable[:2].any()  # revealed strips left out
    assert warping_error(motion, previous, current) < 1e-5  # an output that moves with its input: ~0
    assert warping_error(motion, previous, previous) > 1000 * warping_error(motion, previous, current)
    # a constructed difference: output t = the moved scene + 20 grey levels → (20/255)² on every reliable pixel
    brighter = current.astype(np.float32) + 20
    assert warping_error(motion, previous, brighter) == pytest.approx((20 / 255) ** 2, rel=0.01)


def test_temporal_step_estimates_each_flow_once_per_pair():
    frames = [textured(seed=seed) for seed in range(3)]
    calls = []

    def estimate(previous, current, flow):
        calls.append(flow)
        return InputMotion.estimate(previous, current, flow)

    step = TemporalStep(FlowBlender(Limit(0.5, 80.0), 1000.0), VideoReport(), True, estimate)
    for frame in frames:
        step(frame, frame)
    # the flow mode warps along Farnebäck's flow, the report measures along DIS's: one of each per pair
    assert calls == [blending_flow, measuring_flow] * 2
    calls.clear()
    measuring_only = TemporalStep(None, VideoReport(), True, estimate)  # `none` needs no motion of its own
    for frame in frames:
        measuring_only(frame, frame)
    assert calls == [measuring_flow] * 2


@pytest.mark.parametrize("temporal", ["none", "flow", "recycle", "hybrid"])
def test_stylize_keeps_size_rate_and_length(clip, recycle_run, tmp_path, temporal):
    predictor = load(recycle_run)
    result = stylize_video(predictor, clip, tmp_path / "out.mp4", temporal, recycle_run, report=True, max_frames=12)
    frames, fps = read_all(tmp_path / "out.mp4")
    assert len(frames) == result.frames == 12 and frames[0].shape == (144, 176, 3)
    assert fps == pytest.approx(FrameSource(clip, 3).fps, rel=1e-3)
    summary = json.loads((tmp_path / "out.report.json").read_text())["summary"]
    assert len(result.flicker) == len(result.warping_error) == 11 and summary["temporal"] == temporal
    assert summary["frames_per_second_per_frame_baseline"] >= summary["frames_per_second"] > 0
    for metric in ("warping_error", "flicker"):
        out, base = summary[metric], summary[f"{metric}_per_frame_baseline"]
        if temporal == "none":
            assert out == base and summary["mean_deviation_from_per_frame"] == 0
        else:  # blending in the temporal guess must lower the flicker of the per-frame output it departs from
            assert out < base and summary[f"{metric}_reduction"] == pytest.approx(1 - out / base)
            assert summary["mean_deviation_from_per_frame"] > 0
    assert (tmp_path / "out.report.png").stat().st_size > 0
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp files left


def test_exported_predictor_matches_the_torch_predictor(recycle_run, exported):
    import onnxruntime as ort

    from i2i.export.openvino import compile_for_cpu, read_ir

    net, _ = load_predictor(recycle_run, "B")
    pair = np.random.default_rng(3).integers(0, 256, (2, 64, 96, 6), dtype=np.uint8)  # two (t−2, t−1) pairs
    x = array_to_model_input(pair)
    with torch.inference_mode():
        want = net(x).double().numpy()
    session = ort.InferenceSession(str(exported / "predictor_B.onnx"), providers=["CPUExecutionProvider"])
    ir, metadata = read_ir(exported / "predictor_B.xml")
    compiled = compile_for_cpu(ir, "fp32").compiled
    for got in (session.run(None, {"image": x.numpy()})[0], compiled([x.numpy()])[0]):
        assert got.shape == (2, 3, 64, 96) and np.abs(got - want).max() <= TOLERANCE[("float", "fp32")]
    assert metadata["role"] == "temporal_predictor" and metadata["direction"] == "AtoB"
    for generator in ("generator_AtoB.onnx", "generator_AtoB.xml"):
        assert load(exported / generator).metadata[PREDICTOR_KEY] == "predictor_B"


def test_a_predictor_file_is_refused_as_a_generator(clip, exported, tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    cv2.imwrite(str(frames / "0.png"), next(iter(FrameSource(clip, 3)))[:, :, ::-1])
    for predictor, backend in (("predictor_B.onnx", "onnxruntime"), ("predictor_B.xml", "openvino")):
        result = CliRunner().invoke(
            cli, ["generate", str(exported / predictor), str(frames), str(tmp_path / "out"), "--backend", backend]
        )
        assert result.exit_code == 2 and "a RecycleGAN temporal predictor, not a generator" in result.output, (
            result.output
        )
        assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_video_through_exported_files_matches_the_run_directory(clip, recycle_run, exported, tmp_path):
    from i2i.runtime.temporal import load_forecaster

    frames = [frame for _, frame in zip(range(2), FrameSource(clip, 3))]
    outputs, forecasts = {}, {}
    for name, model, backend in (
        ("run", recycle_run, "torch"),
        ("onnx", exported / "generator_AtoB.onnx", "onnxruntime"),
        ("xml", exported / "generator_AtoB.xml", "openvino"),
    ):
        forecasts[name] = load_forecaster(model, load(model, backend=backend))(*frames).astype(np.float32)
        out = tmp_path / f"{name}.mp4"
        arguments = [str(model), str(clip), str(out), "--temporal", "recycle", "--max-frames", "4", "--report"]
        result = CliRunner().invoke(cli, ["video", *arguments, "--backend", backend])
        assert result.exit_code == 0, result.output
        outputs[name] = np.stack(read_all(out)[0]).astype(np.float32)
        summary = json.loads((tmp_path / f"{name}.report.json").read_text())["summary"]
        assert summary["mean_deviation_from_per_frame"] > 0.5  # the forecast was blended in
    for name in ("onnx", "xml"):
        # one forecast from the same history: equal up to rounding to grey levels
        assert np.abs(forecasts[name] - forecasts["run"]).max() <= 1, name
        # whole videos: the forecast feeds on earlier outputs, so a grey level of rounding in one
        # frame moves the next forecasts a little (more with this 2-step predictor); mp4 encoding adds its own
        difference = np.abs(outputs[name] - outputs["run"])
        assert difference.mean() < 0.3 and np.percentile(difference, 99) <= 4, name


def test_exported_generator_without_a_predictor(clip, recycle_run, exported, tiny_run, tmp_path):
    export(ExportRequest(tiny_run, out_dir=tmp_path))  # a cycle_gan: no predictor to link
    lone = tmp_path / "lone"
    lone.mkdir()
    shutil.copy(exported / "generator_AtoB.onnx", lone)  # a recycle_gan generator copied without its predictor
    for model, message in (
        (tmp_path / "generator_AtoB.onnx", "generator_AtoB.onnx: links no temporal predictor"),
        (lone / "generator_AtoB.onnx", "its temporal predictor predictor_B.onnx is missing beside it"),
    ):
        result = CliRunner().invoke(
            cli, ["video", str(model), str(clip), str(tmp_path / "o.mp4"), "--temporal", "recycle"]
        )
        assert_user_error(result, message)
        assert not (tmp_path / "o.mp4").exists()


def test_hybrid_takes_the_forecast_where_the_flow_is_not_trusted():
    from i2i.runtime.temporal import HybridBlender

    frame = (textured(seed=2) // 2 + 64).astype(np.uint8)  # 64..191: no arithmetic below reaches 0 or 255
    shifted = lambda levels: (frame.astype(int) + levels).astype(np.uint8)  # noqa: E731
    styled = [shifted(levels) for levels in (0, 10, 0, 20)]
    forecasts = []

    def forecast(earlier, previous):  # a stand-in predictor: always 6 grey levels above the last output
        forecasts.append((previous.astype(int) + 6).astype(np.uint8))
        return forecasts[-1]

    hybrid = HybridBlender(forecast, Limit(strength=0.6, cutoff=80.0), scene_cut=1000.0)
    # No motion, but the left half's forward flow (5 px) does not come back: consistency e^-33 there
    width = frame.shape[1]
    backward, forward = np.zeros((*frame.shape[:2], 2), np.float32), np.zeros((*frame.shape[:2], 2), np.float32)
    forward[:, : width // 2, 0] = 5.0
    motion = InputMotion(forward, backward)
    left, right = np.s_[:, : width // 2], np.s_[:, width // 2 :]

    def levels(out: np.ndarray) -> tuple[set, set]:
        change = out.astype(int) - frame
        return set(np.unique(change[left])), set(np.unique(change[right]))

    outputs = [hybrid(frame, styled[0], lambda: motion)]
    assert np.array_equal(outputs[0], styled[0])  # no earlier output: the per-frame output
    # frame 1: no forecast yet (one earlier output): the flow's guess where trusted, the jump of 10
    # taken down by 60 % to 4 there; the per-frame output where not
    outputs.append(hybrid(frame, styled[1], lambda: motion))
    assert levels(outputs[1]) == ({10}, {4})
    # frame 2: the forecast (frame 1's output + 6) is the guess where the flow is not trusted:
    # disagreements 16 left, 4 right; 60 % of 20 goes at step 4: left 16 → 0 reached to within 4,
    # 12; right 4 → 0 in full
    outputs.append(hybrid(frame, styled[2], lambda: motion))
    assert np.array_equal(forecasts[0], outputs[1] + 6)  # from the two earlier outputs
    assert levels(outputs[2]) == ({12}, {0})
    # frame 3 (per-frame 20): disagreements 2 left (forecast 18), 20 right (guess 0); 60 % of 22
    # goes at step 6.8: left reaches 20, right 0 → 6.8, rounded to 7
    outputs.append(hybrid(frame, styled[3], lambda: motion))
    assert levels(outputs[3]) == ({20}, {7}) and len(forecasts) == 2
    # A forecast further than forecast_cutoff from the per-frame output is not trusted: at frame 2
    # the left keeps its per-frame 0 (forecast 16 away), and 60 % of the right's 4 goes at step 1.6
    strict = HybridBlender(forecast, Limit(strength=0.6, cutoff=80.0), scene_cut=1000.0, forecast_cutoff=10.0)
    strict_outputs = [strict(frame, styled[t], lambda: motion) for t in range(3)]
    assert levels(strict_outputs[2]) == ({0}, {2})


def test_limit_takes_away_its_share_of_the_disagreement_largest_first():
    guess = np.full((2, 3, 3), 100, np.uint8)
    styled = np.array(
        [[[109, 95, 102], [98, 100, 100], [150, 150, 150]], [[100, 100, 100], [110, 90, 100], [101, 99, 100]]],
        np.uint8,
    )  # held |y − g| per channel: 9 5 2 · 2 0 0 · (cutoff) · 0 0 0 · (untrusted) · 1 1 0: total 20
    trust = np.array([[0.9, 0.6, 1.0], [1.0, 0.5, 1.0]])  # trust must exceed 0.5
    limit = lambda strength: Limit(strength, cutoff=40.0)(guess, styled, trust)  # noqa: E731
    out = limit(0.5)  # half of 20 goes at step 2: 9 → 2 and 5 → 2 take 7 + 3 off ...
    assert out[0, 0].tolist() == [102, 98, 102]
    assert out[0, 1].tolist() == [98, 100, 100]
    assert out[1, 2].tolist() == [101, 99, 100]  # ... and changes under the step pass unchanged
    assert out[0, 2].tolist() == [150, 150, 150]  # mean disagreement 50, not under the cutoff: per-frame
    assert out[1, 1].tolist() == [110, 90, 100]  # untrusted (disagreement 6.7 is under the cutoff): per-frame
    assert np.array_equal(limit(0.0), styled)  # nothing taken away
    taken = limit(1.0)  # everything: the guess where held
    assert taken[0, 0].tolist() == taken[1, 2].tolist() == [100, 100, 100]
    assert Limit(1.0, 40.0)(np.full((1, 1, 3), 254.6), np.full((1, 1, 3), 255, np.uint8), np.ones((1, 1))).tolist() == [
        [[255, 255, 255]]
    ]  # float guesses are rounded to grey levels


@pytest.mark.parametrize("share", [0.0, 0.1, 0.37, 0.5, 0.9, 1.0])
def test_step_removing_matches_the_definition(share):
    from i2i.runtime.temporal import step_removing

    disagreements = np.abs(np.random.default_rng(3).normal(0, 10, 1000)).astype(np.float32)
    disagreements[:100] = 0  # ties and zeros
    disagreements[100:150] = 7.0
    assert step_removing(np.zeros(5, np.float32), share) == 0.0
    step = step_removing(disagreements, share)
    removed = np.maximum(disagreements.astype(np.float64) - step, 0).sum()
    assert removed == pytest.approx(share * disagreements.sum(dtype=np.float64), rel=1e-9, abs=1e-6)
    assert 0 <= step <= disagreements.max()
    assert step_removing(np.zeros(0, np.float32), share) == 0.0


@pytest.mark.slow
def test_truncated_video_translates_what_decodes(tiny_run, tmp_path):
    # cup.mp4 keeps its index at the start: cut to a quarter of its bytes, its first frames still decode.
    data = (VIDEO / "cup.mp4").read_bytes()
    (tmp_path / "truncated.mp4").write_bytes(data[: len(data) // 4])
    # tiny_run is grayscale: frames are converted on the way in, written back as 3-channel video.
    out = tmp_path / "t.mp4"
    result = CliRunner().invoke(cli, ["video", str(tiny_run), str(tmp_path / "truncated.mp4"), str(out), "--report"])
    assert result.exit_code == 0, result.output
    frames, _ = read_all(out)
    assert 0 < len(frames) < 217
    line = (
        f"truncated.mp4: decoding stopped at frame {len(frames)} of the 217 announced (truncated or corrupt file); "
        "the frames before it were translated"
    )
    assert [text for text in result.output.splitlines() if text.startswith("warning")] == [
        f"warning: {tmp_path / line}"
    ]
    summary = json.loads((tmp_path / "t.report.json").read_text())["summary"]
    assert summary["truncated_at"] == summary["frames"] == len(frames) and summary["damage"].startswith(
        "decoding stopped"
    )


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("empty.mp4", b"", "not a video OpenCV can read"),
        ("notes.mp4", b"these are my notes, not a video\n" * 20, "not a video OpenCV can read"),
        ("headless.mp4", "carphone_pristine.mp4:half", "not a video OpenCV can read"),  # its index is at the end
        ("codec.avi", "unknown codec", "not a video OpenCV can read"),
        ("noframes.mp4", "cup.mp4:16000", "no frame could be decoded"),  # index intact, no frame data
    ],
)
def test_videos_without_a_decodable_frame(tiny_run, tmp_path, name, content, message):
    if content == "unknown codec":  # an MJPG AVI whose codec tag names no codec
        writer = cv2.VideoWriter(str(tmp_path / "m.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 48))
        for value in range(3):
            writer.write(np.full((48, 64, 3), 60 * value, np.uint8))
        writer.release()
        content = (tmp_path / "m.avi").read_bytes().replace(b"MJPG", b"QQQQ")
    elif isinstance(content, str):
        clip, size = content.split(":")
        data = (VIDEO / clip).read_bytes()
        content = data[: len(data) // 2 if size == "half" else int(size)]
    (tmp_path / name).write_bytes(content)
    out = tmp_path / "out" / "o.mp4"
    assert_user_error(CliRunner().invoke(cli, ["video", str(tiny_run), str(tmp_path / name), str(out)]), name, message)
    assert not out.exists() and list(tmp_path.glob("out/*")) == []  # no output, no temporary left


def test_frame_folder_with_other_sizes_and_a_broken_frame(tiny_run, digits, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for index, path in enumerate(list_images(digits / "testA")[:8]):
        shutil.copy(path, folder / f"f{index:02}.png")
    image = cv2.imread(str(folder / "f03.png"))
    cv2.imwrite(str(folder / "f03.png"), cv2.resize(image, (40, 30)))  # the size changes mid-stream...
    cv2.imwrite(str(folder / "f06.png"), cv2.resize(image, (40, 30)))
    (folder / "f05.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")  # ...and one frame does not decode
    out = tmp_path / "out.avi"
    result = CliRunner().invoke(cli, ["video", str(tiny_run), str(folder), str(out), "--report"])
    assert result.exit_code == 0, result.output
    frames, _ = read_all(out)
    assert len(frames) == 5 and frames[0].shape[:2] == (28, 28)
    warnings = [text for text in result.output.splitlines() if text.startswith("warning")]
    assert warnings == [f"warning: {folder}: 3 frame(s) skipped (first: frame 3: 40x30, not the first frame's 28x28)"]
    report = json.loads((tmp_path / "out.report.json").read_text())
    assert report["summary"]["skipped_frames"] == 3 and report["summary"]["frames"] == 5
    assert [reason.split(":")[0] for reason in report["skipped"]] == ["frame 3", "frame 5", "frame 6"]
    assert "f05.png" in report["skipped"][1]
    for path in folder.iterdir():  # nothing decodable at all: exit 2, one line naming the folder
        path.write_bytes(b"not an image")
    assert_user_error(CliRunner().invoke(cli, ["video", str(tiny_run), str(folder), str(out)]), str(folder), "no frame")


def test_frame_folder_input(tiny_run, digits, tmp_path):
    predictor = load(tiny_run)
    result = stylize_video(predictor, digits / "testA", tmp_path / "digits.avi", max_frames=5)
    frames, _ = read_all(tmp_path / "digits.avi")
    assert result.frames == 5 and len(frames) == 5 and frames[0].shape[:2] == (28, 28)
    (tmp_path / "nothing").mkdir()
    with pytest.raises(DataError, match="no frames"):
        FrameSource(tmp_path / "nothing", 3)


def test_tensorrt_export_links_a_predictor_engine(recycle_run, tmp_path, monkeypatch):
    """TensorRT cannot be installed here: its engine builder is replaced by one that records what
    it was asked to build; the predictor's ONNX, the profile, the sidecar and the link are real."""
    from dataclasses import asdict

    from i2i.config import load_config
    from i2i.export import exporter, tensorrt
    from i2i.export.builds import TensorRtBuild
    from i2i.runtime.temporal import linked_predictor

    built = {}

    def build_engine(onnx_path, engine_path, shapes, precision, fused, timing_cache):
        built.update(onnx=onnx_path, shapes=shapes, precision=precision)
        engine_path.write_bytes(b"engine")

    monkeypatch.setattr(tensorrt, "build_engine", build_engine)
    shapes = "1x36x40,2x64x96,4x100x132"
    request = exporter.ExportRequest(recycle_run, format="tensorrt", precision="fp16", out_dir=tmp_path, shapes=shapes)
    build = TensorRtBuild(request, load_config(recycle_run))
    assert exporter.predictor_stem(request, build) == "predictor_B_fp16"
    profile = tensorrt.parse_shapes(shapes, 3, 4)
    assert build.profile == profile
    lines = []
    exporter._verified_predictor(request, build, tmp_path / "predictor_B_fp16", lines)()
    assert built["onnx"] == tmp_path / "predictor_B_fp16.onnx" and built["precision"] == "fp16"
    assert built["shapes"] == ((1, 6, 64, 64), (1, 6, 64, 96), (1, 6, 128, 160))  # pairs, up to multiples of 32
    assert lines[-1] == f"{tmp_path / 'predictor_B_fp16.engine'}: temporal predictor"
    metadata = {PREDICTOR_KEY: "predictor_B_fp16", "train_config": "{}", "direction": "AtoB"}
    sidecar = tensorrt.EngineSidecar("fp16", *profile, 0, "10.0", "GPU", "90", 1.0, metadata)
    (tmp_path / "generator_AtoB.json").write_text(json.dumps(asdict(sidecar)))
    engine = tmp_path / "generator_AtoB.engine"
    assert (
        linked_predictor(engine, tensorrt.EngineSidecar.read(engine).metadata) == tmp_path / "predictor_B_fp16.engine"
    )


def test_temporal_modes_benchmark_tunes_on_one_clip_and_reports_the_others(clip, recycle_run, tmp_path, monkeypatch):
    from i2i.benchmarks import temporal_modes

    out = tmp_path / "modes.json"
    arguments = [str(recycle_run), "--tune", str(VIDEO / "vtest_first50_384x288.mp4"), "--held-out", str(clip)]
    monkeypatch.setattr("sys.argv", ["temporal_modes", *arguments, "--max-frames", "4", "--out", str(out)])
    temporal_modes.main()
    results = json.loads(out.read_text())
    chosen = results["tuning"]["chosen"]
    assert set(chosen) == {"recycle", "flow", "hybrid"}
    assert set(chosen["hybrid"]) == {"strength", "cutoff", "forecast_cutoff"} and set(chosen["flow"]) == {
        "strength",
        "cutoff",
    }
    rows = results["held_out"][clip.name]
    ablations = {"hybrid, no predictor", "hybrid, oracle forecast"}
    assert set(rows) == {"none", "flow baseline", "recycle", "flow", "hybrid"} | ablations
    assert rows["none"]["warping_error_reduction"] == 0 and rows["none"]["mean_deviation_from_per_frame"] == 0
    # every row measures the same per-frame output, so each shares the per-frame baseline
    baselines = {row["warping_error_per_frame_baseline"] for row in rows.values()}
    assert len(baselines) == 1 and all(np.isfinite(row["warping_error"]) for row in rows.values())
