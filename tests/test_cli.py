"""The command line: help, version, and one-line errors with exit code 2 for bad input."""

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from i2i import __version__
from i2i.cli import cli

from .conftest import TINY_TRAIN


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_version_and_help():
    assert invoke("--version").output.strip() == f"i2i, version {__version__}"
    for command in ([], ["train"], ["generate"]):
        result = invoke(*command, "--help")
        assert result.exit_code == 0 and "Usage:" in result.output


def assert_user_error(result, *fragments):
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


TINY = [*TINY_TRAIN, "--steps", "2"]


def make_dataset(root, bad_file=None, content=b""):
    for domain in ("trainA", "trainB"):
        (root / domain).mkdir(parents=True)
        Image.fromarray(np.full((40, 40, 3), 100, np.uint8)).save(root / domain / "ok.png")
    if bad_file:
        (root / "trainB" / bad_file).write_bytes(content)
    return root


@pytest.mark.parametrize(
    "bad_file, content, fragment",
    [
        ("zero.jpg", b"", "zero.jpg: file is empty"),
        ("broken.png", b"\x89PNG\r\n\x1a\n broken", "broken.png: not a readable image"),
    ],
)
def test_bad_images_stop_training_before_a_run_dir_exists(tmp_path, bad_file, content, fragment):
    data = make_dataset(tmp_path / "data", bad_file, content)
    result = invoke("train", data, "--out", tmp_path / "run", *TINY)
    assert_user_error(result, fragment)
    assert not (tmp_path / "run").exists()


def test_a_preset_is_recorded_and_options_override_it(tmp_path):
    data = make_dataset(tmp_path / "data")
    options = ["--model", "cut", "--preset", "short", "--gan-mode", "vanilla"]
    result = invoke("train", data, "--out", tmp_path / "run", *TINY, *options)
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "run" / "train_config.json").read_text())
    assert (config["G"]["upsample"], config["D"]["spectral_norm"], config["train"]["gan_mode"]) == (
        "nearest",
        True,
        "vanilla",
    )
    result = invoke("train", data, "--out", tmp_path / "recycle", *TINY, "--model", "recycle_gan", "--preset", "short")
    assert_user_error(result, "--preset short is measured for cycle_gan and cut, not recycle_gan")


def test_missing_domain_folder(tmp_path):
    data = make_dataset(tmp_path / "data")
    shutil.rmtree(data / "trainA")
    assert_user_error(invoke("train", data, "--out", tmp_path / "run", *TINY), "trainA: folder missing")


def test_image_corrupted_after_the_check_fails_in_the_worker_with_one_line(tmp_path):
    # Valid header, truncated pixel data: only decoding (in a data-loader worker) finds it.
    data = make_dataset(tmp_path / "data")
    png = (data / "trainB" / "ok.png").read_bytes()
    (data / "trainB" / "ok.png").write_bytes(png[:60])
    result = invoke("train", data, "--out", tmp_path / "run", *TINY, "--workers", "1")
    assert_user_error(result, "ok.png")
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_resume_needs_a_run_and_keeps_the_model(tmp_path, tiny_run):
    assert_user_error(invoke("train", "--resume", tmp_path), "not an i2i run directory")
    assert_user_error(
        invoke("train", "--resume", tiny_run, "--ngf", "4", "--workers", "1"),
        "it can change only --steps, --workers",
        "(got --ngf)",
    )


def test_newer_schema_is_refused(tmp_path, tiny_run):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    config = json.loads((run / "train_config.json").read_text())
    (run / "train_config.json").write_text(json.dumps({**config, "schema": 99}))
    assert_user_error(invoke("generate", run, tmp_path, tmp_path / "out"), "schema 99 is newer", "upgrade i2i")


def test_truncated_checkpoint_is_refused_by_generate(tmp_path, tiny_run, digits):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    weights = run / "checkpoints" / "step_000003" / "G_A.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    assert_user_error(
        invoke("generate", run, digits / "testA", tmp_path / "out"), "G_A.safetensors: truncated or corrupt"
    )


def test_generate_refuses_output_inside_input(tmp_path, tiny_run, digits):
    (tmp_path / "in").mkdir()
    shutil.copy(next((digits / "testA").iterdir()), tmp_path / "in")
    assert_user_error(invoke("generate", tiny_run, tmp_path / "in", tmp_path / "in" / "out"), "inside the input folder")


def test_unet_needs_a_matching_crop_size(tmp_path, digits):
    result = invoke("train", digits, "--out", tmp_path / "run", *TINY, "--netG", "unet_128")
    assert_user_error(result, "multiple of 128")


def test_generator_options_reach_the_run_config(tmp_path, digits):
    result = invoke("train", digits, "--out", tmp_path / "run", "--residual", "--affine-warp", *TINY)
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "run" / "train_config.json").read_text())["G"]
    assert saved["residual"] and saved["affine_warp"]
    result = invoke("train", digits, "--out", tmp_path / "cut", "--model", "cut", "--affine-warp", *TINY)
    assert_user_error(result, "G.affine_warp works with cycle_gan and recycle_gan")


def test_option_choices_are_the_library_registries():
    from i2i.benchmarks.roofline import DEVICES
    from i2i.evaluation.metrics import EXTRACTORS
    from i2i.runtime.predictor import BACKENDS, PRECISIONS
    from i2i.training.models import ALIASES, MODELS, TRAINABLE

    def choices(command, option):
        return tuple(next(p for p in cli.commands[command].params if p.name == option).type.choices)

    assert choices("train", "model") == (*TRAINABLE, *ALIASES)
    assert tuple(MODELS) == (*TRAINABLE, "distill") == ("cycle_gan", "cut", "fastcut", "recycle_gan", "distill")
    assert choices("generate", "backend") == choices("video", "backend") == BACKENDS
    assert choices("generate", "precision") == tuple(PRECISIONS)
    assert choices("eval", "extractor") == EXTRACTORS and choices("bench", "estimate_device") == tuple(DEVICES)


def test_video_help_states_the_tuned_temporal_defaults():
    from i2i.runtime.temporal import TEMPORAL_DEFAULTS

    # the help's defaults are written out (the CLI imports no runtime to print help): they must stay the tuned ones
    (strength,), (cutoff,) = ({values[k] for values in TEMPORAL_DEFAULTS.values()} for k in (0, 1))
    text = " ".join(CliRunner().invoke(cli, ["video", "--help"]).output.split())
    strength_help, cutoff_help = text.split("--strength FLOAT RANGE")[1].split("--cutoff FLOAT RANGE")
    assert f"[default: {strength:g}]" in strength_help
    assert f"[default: {cutoff:g}]" in cutoff_help.split("--help")[0]
