import json
import re

import pytest

from i2i.config import SCHEMA_VERSION, RunConfig, load_config, save_config
from i2i.errors import ConfigError
from i2i.training.configure import configure, for_model, with_preset


def test_round_trip_through_json(tmp_path):
    config = RunConfig()
    config.G.ngf, config.train.lr, config.data.input_nc = 32, 1e-3, 1
    save_config(config, tmp_path)
    assert load_config(tmp_path) == config
    raw = json.loads((tmp_path / "train_config.json").read_text())
    assert set(raw) == {"model", "G", "D", "data", "train", "alg", "schema", "i2i_version", "history"}
    assert raw["alg"]["cycle_gan"]["lambda_A"] == 10.0


def test_resume_changes_only_what_keeps_the_networks(tmp_path):
    config = RunConfig()
    with pytest.raises(ConfigError, match="can change only train.steps, data.num_workers.*; not G.ngf"):
        config.change_for_resume({"G.ngf": 32, "train.steps": 9}, 0)
    with pytest.raises(ConfigError, match=r"train.log_every 0 is outside \[1, "):
        RunConfig().change_for_resume({"train.log_every": 0}, 0)
    changed = config.change_for_resume({"train.steps": 40000, "data.num_workers": 2}, 20000)
    assert changed == {"train.steps": [20000, 40000]}
    save_config(config, tmp_path)
    assert load_config(tmp_path).history == [
        {"time": config.history[0]["time"], "at_step": 20000, "changed": {"train.steps": [20000, 40000]}}
    ]


def test_int_is_accepted_for_float():
    assert RunConfig.from_dict({"train": {"lr": 1}}).train.lr == 1.0


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"G": {"ngf": 64, "nfg": 3}}, "unknown key(s) nfg"),
        ({"bogus": 1}, "unknown key(s) bogus"),
        ({"schema": SCHEMA_VERSION + 1}, "newer than this i2i understands"),
        ({"train": {"steps": "many"}}, "config.train.steps: expected int"),
        ({"train": {"steps": True}}, "expected int"),
        ({"G": {"netG": "resnet_99blocks"}}, "G.netG 'resnet_99blocks'"),
        ({"data": {"load_size": 10, "crop_size": 32}}, "load_size must be >= data.crop_size"),
        ({"G": []}, "config.G: expected an object"),
        ({"G": {"netG": "unet_128", "residual": True}}, "G.residual needs a resnet_"),
        ({"G": {"residual": True}, "data": {"input_nc": 1}}, "input_nc == output_nc"),
        ({"model": "cut", "G": {"affine_warp": True}}, "G.affine_warp works with cycle_gan and recycle_gan"),
        ({"G": {"netG": "unet_128", "affine_warp": True}}, "G.affine_warp needs a resnet_"),
        ({"G": {"flow_warp": 4}}, "G.flow_warp needs G.residual"),
        ({"G": {"residual": True, "flow_warp": -1}}, "G.flow_warp -1 is outside [0, 1024]"),
        ({"model": "fastcut", "G": {"netG": "unet_256"}}, "fastcut reads PatchNCE features from a ResNet encoder"),
        ({"model": "cut", "data": {"dataset_mode": "temporal"}}, "recycle_gan trains on clips"),
        ({"model": "recycle_gan", "data": {"crop_size": 48, "load_size": 48}}, "crop size that is a multiple of 2"),
        ({"model": ["cut"]}, "is not one of cycle_gan, cut, fastcut, recycle_gan"),
        ({"G": {"upsample": "pixelshuffle"}}, "G.upsample 'pixelshuffle' is not one of transpose, blur, nearest"),
        ({"train": {"lr_D_ratio": 0}}, "train.lr_D_ratio 0.0 is outside (0, 100]"),
        ({"G": {"antialias_up": True}}, "unknown key(s) antialias_up"),
    ],
)
def test_bad_configs_are_named(raw, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        configure(raw)


def test_missing_or_broken_config_file(tmp_path):
    with pytest.raises(ConfigError, match="not an i2i run directory"):
        load_config(tmp_path)
    (tmp_path / "train_config.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config(tmp_path)


@pytest.mark.parametrize("blur, upsample", [(True, "blur"), (False, "transpose")])
def test_schema_1_files_are_read_in_todays_keys(tmp_path, blur, upsample):
    raw = RunConfig().to_dict()
    raw["schema"] = 1
    raw["G"]["antialias_up"] = blur
    del raw["G"]["upsample"]
    (tmp_path / "train_config.json").write_text(json.dumps(raw))
    config = load_config(tmp_path)
    assert (config.G.upsample, config.schema) == (upsample, SCHEMA_VERSION)


@pytest.mark.parametrize("schema", [1, 2])
def test_recycle_gan_runs_before_schema_3_keep_their_plain_predictors(tmp_path, schema):
    raw = for_model("recycle_gan").to_dict()
    assert raw["alg"]["recycle_gan"]["predictor_residual"] is True  # new runs
    raw["schema"] = schema
    del raw["alg"]["recycle_gan"]["predictor_residual"]
    (tmp_path / "train_config.json").write_text(json.dumps(raw))
    config = load_config(tmp_path)
    assert (config.alg.recycle_gan.predictor_residual, config.schema) == (False, SCHEMA_VERSION)


@pytest.mark.parametrize("model", ["cycle_gan", "cut"])
def test_a_preset_fills_what_the_user_left_alone_over_the_models_defaults(model):
    config = configure({"model": model, "G": {"ngf": 16}}, "short")
    assert (config.G.ngf, config.G.residual, config.G.upsample) == (16, True, "nearest")  # CUT's own: blur
    # Each model gets the recipe measured for it (benchmarks/results/quality.md): both DiffAugment, CycleGAN a light
    # cycle loss, CUT a spectral-norm discriminator.
    cut = model == "cut"
    assert config.D.spectral_norm == cut and config.train.diff_augment == "color,translation,cutout"
    # both: the projected discriminator, with what it needs (the low-pass, the hinge loss)
    assert (config.D.netD, config.D.lowpass, config.train.gan_mode) == ("projected", True, "hinge")
    patchgan = configure({"model": model, "D": {"netD": "basic"}}, "short")  # an option over the preset: no low-pass
    assert (patchgan.D.netD, patchgan.D.lowpass, patchgan.train.gan_mode) == ("basic", False, "lsgan")
    cycle = config.alg.cycle_gan
    assert (cycle.lambda_A, cycle.lambda_B, cycle.lambda_identity) == ((10.0, 10.0, 0.5) if cut else (2.0, 2.0, 0.0))
    chosen = configure({"model": model, "G": {"upsample": "bilinear"}}, "short")
    assert chosen.G.upsample == "bilinear"
    with pytest.raises(ConfigError, match="--preset long: choose one of short"):
        with_preset({}, "long")


def test_a_preset_refuses_a_model_it_was_not_measured_for():
    with pytest.raises(ConfigError, match="measured for cycle_gan and cut, not recycle_gan"):
        with_preset({"model": "recycle_gan"}, "short")
    assert with_preset({}, "short")["alg"]["cycle_gan"]["lambda_A"] == 2.0  # no model: the default, CycleGAN


@pytest.mark.parametrize("netD", ["projected", "basic+projected"])
def test_a_projected_discriminator_trains_with_the_hinge_loss_unless_told_otherwise(netD):
    assert configure({"model": "cut", "D": {"netD": netD}}).train.gan_mode == "hinge"
    assert configure({"model": "cut", "D": {"netD": netD}}).D.lowpass  # and behind the low-pass
    assert not configure({"model": "cut", "D": {"netD": netD, "lowpass": False}}).D.lowpass
    told = configure({"model": "cut", "D": {"netD": netD}, "train": {"gan_mode": "lsgan"}})
    assert told.train.gan_mode == "lsgan"
    assert configure({"model": "cut"}).train.gan_mode == "lsgan"


def test_a_lowpass_needs_a_projected_discriminator():
    assert configure({"model": "cut", "D": {"netD": "basic+projected", "lowpass": True}}).D.lowpass
    with pytest.raises(ConfigError, match="D.lowpass filters a projected discriminator's input; D.netD is basic"):
        configure({"model": "cut", "D": {"lowpass": True}})
