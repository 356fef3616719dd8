"""Metric maths against independent computations, the offline extractor, label preservation."""

import shutil

import numpy as np
import pytest
import scipy.linalg
import torch
from torch.nn import functional as F

from i2i.evaluation.evaluate import Reference, evaluate, evaluate_folders, measure_folder, measure_images
from i2i.evaluation.label_preservation import (
    accuracy,
    label_preservation,
    labelled_images,
    random_affine,
    slight_affine,
    synthetic_data_transfer,
    train_classifier,
)
from i2i.evaluation.metrics import (
    feature_statistics,
    frechet_distance,
    kernel_inception_distance,
    make_extractor,
    memorization_distance,
    mifid,
)
from i2i.io import list_images, read_image
from i2i.nets.classifier import DomainClassifier, JudgeClassifier


def test_frechet_distance_against_scipy_sqrtm():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(200, 6)), rng.normal(size=(300, 6)) @ rng.normal(size=(6, 6)) + 0.5
    mu1, s1 = feature_statistics(a)
    mu2, s2 = feature_statistics(b)
    root = scipy.linalg.sqrtm(s1 @ s2).real
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * root)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)
    assert frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0, abs=1e-9)


def test_kid_against_a_direct_unbiased_mmd():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(30, 4)), rng.normal(size=(30, 4)) + 0.3

    def k(u, v):
        return (u @ v / 4 + 1) ** 3

    n = 30
    xx = sum(k(x[i], x[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(n) for j in range(n)) / (n * n)
    kid, spread = kernel_inception_distance(x, y, subsets=1, subset_size=n)
    assert kid == pytest.approx(xx + yy - 2 * xy, rel=1e-10) and spread == 0
    same = rng.normal(size=(2000, 4))
    assert abs(kernel_inception_distance(same[:1000], same[1000:], subsets=10)[0]) < 0.01


def test_memorization_and_mifid():
    training = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert memorization_distance(np.array([[2.0, 0.0]]), training) == pytest.approx(0.0)
    assert memorization_distance(np.array([[1.0, 1.0]]), training) == pytest.approx(1 - 2**-0.5)
    assert mifid(50.0, 0.5) == 50.0 and mifid(50.0, 0.05) == pytest.approx(1000.0)


def test_offline_extractor_separates_photos_from_paintings(photos, tmp_path):
    for name, source, start in (("photos1", "testA", 0), ("photos2", "testA", 16), ("monet", "testB", 0)):
        (tmp_path / name).mkdir()
        for path in list_images(photos / source)[start : start + 16]:
            shutil.copy(path, tmp_path / name)
    extract = make_extractor("efficientnet-lite0")
    features = {name: measure_folder(tmp_path / name, extract).features for name in ("photos1", "photos2", "monet")}
    assert features["monet"].shape == (16, 1280)
    assert np.allclose(measure_folder(tmp_path / "monet", extract).features, features["monet"])  # deterministic
    same = kernel_inception_distance(features["photos1"], features["photos2"], subsets=20)[0]
    other = kernel_inception_distance(features["photos1"], features["monet"], subsets=20)[0]
    assert other > same + 0.02


def test_one_evaluation_for_folders_and_for_images_in_memory(photos, tmp_path):
    """`i2i eval` reads folders, periodic evaluation and the export gate hold images in memory:
    the same images give the same figures, and each figure matches its metric computed directly."""
    folders = {"generated": ("testA", 0, 12), "real": ("testB", 0, 10), "sources": ("testA", 12, 8)}
    images = {}
    for name, (source, start, count) in folders.items():
        (tmp_path / name).mkdir()
        for path in list_images(photos / source)[start : start + count]:
            shutil.copy(path, tmp_path / name)
        images[name] = [read_image(path, 3) for path in list_images(tmp_path / name)]
    from_folders = evaluate_folders(tmp_path / "generated", tmp_path / "real", sources=tmp_path / "sources")
    extract = make_extractor("efficientnet-lite0")
    measured = {name: measure_images(group, extract, batch_size=5) for name, group in images.items()}
    in_memory = evaluate(measured["generated"], Reference(measured["real"], "efficientnet-lite0", measured["sources"]))
    assert in_memory.keys() == from_folders.keys() and in_memory["artifact_period"] in (2, 4)
    for key, value in from_folders.items():
        assert in_memory[key] == (pytest.approx(value) if isinstance(value, float) else value), key
    generated, real = measured["generated"].features, measured["real"].features
    fd = frechet_distance(*feature_statistics(generated), *feature_statistics(real))
    assert (generated.shape, in_memory["frechet_distance"]) == ((12, 1280), pytest.approx(fd))
    assert in_memory["kid"] == pytest.approx(kernel_inception_distance(generated, real)[0])


@pytest.mark.slow
def test_label_preservation_on_real_digits(digits):
    result = label_preservation(
        digits / "testA", digits / "trainB", digits / "testB", sources=digits / "testA", epochs=8
    )
    ceiling = result["classifier_accuracy_on_real_target_test"]
    assert ceiling > 0.96  # a USPS classifier reads USPS
    # "Translated" = raw MNIST here: the baseline that translation must improve on.
    assert result["accuracy_on_translated"] == result["accuracy_on_untranslated_sources"] < ceiling - 0.04


@pytest.mark.slow
def test_an_affine_invariant_classifier_reads_zoomed_digits(digits):
    x, y = labelled_images(digits / "trainA")
    test_x, test_y = labelled_images(digits / "testA")
    # MNIST test digits zoomed 1.4× about the centre: roughly how large USPS digits are.
    theta = torch.tensor([[1 / 1.4, 0.0, 0.0], [0.0, 1 / 1.4, 0.0]]).expand(len(test_x), 2, 3)
    zoomed = F.grid_sample(
        test_x,
        F.affine_grid(theta, list(test_x.shape), align_corners=False),
        padding_mode="border",
        align_corners=False,
    )
    # The frozen source classifier of --class-consistency: a DomainClassifier.
    plain = train_classifier(lambda: DomainClassifier(1, 10), x, y)
    invariant = train_classifier(lambda: DomainClassifier(1, 10), x, y, augment=random_affine)
    assert accuracy(invariant, test_x, test_y) > 0.85
    assert accuracy(invariant, zoomed, test_y) > accuracy(plain, zoomed, test_y) + 0.1


@pytest.fixture
def few_digits(digits, tmp_path):
    """120 training and 40 test digits of each domain, copied: quick to train judges on."""
    for folder, count in (("trainA", 120), ("trainB", 120), ("testA", 40), ("testB", 40)):
        (tmp_path / folder).mkdir()
        for path in list_images(digits / folder)[:count]:
            shutil.copy(path, tmp_path / folder)
    return tmp_path


def readings_of_two_judges(train_folder, test_folder):
    """Judges trained independently of label_preservation: seeds 0 and 1, two epochs."""
    x, y = labelled_images(train_folder)
    readings = []
    for seed in (0, 1):
        judge = train_classifier(lambda: JudgeClassifier(1, 10), x, y, 2, seed, slight_affine)
        readings.append(accuracy(judge, *labelled_images(test_folder)))
    return pytest.approx(np.mean(readings)), pytest.approx(np.std(readings))


def test_label_preservation_averages_judges_with_their_spread(few_digits):
    result = label_preservation(few_digits / "testA", few_digits / "trainB", few_digits / "testB", epochs=2, judges=2)
    expected = readings_of_two_judges(few_digits / "trainB", few_digits / "testA")
    assert (result["accuracy_on_translated"], result["accuracy_on_translated_std"]) == expected
    assert (
        "JudgeClassifier × 2 (grey)" in result["label_classifier"] and "accuracy_on_untranslated_sources" not in result
    )


def test_transfer_trains_judges_on_the_translations_and_on_their_sources(few_digits):
    # USPS training digits stand in for translations of the MNIST ones.
    result = synthetic_data_transfer(
        few_digits / "trainB", few_digits / "testB", few_digits / "trainA", epochs=2, judges=2
    )
    expected = readings_of_two_judges(few_digits / "trainB", few_digits / "testB")
    baseline = readings_of_two_judges(few_digits / "trainA", few_digits / "testB")
    assert (
        result["transfer_accuracy_on_real_target_test"],
        result["transfer_accuracy_on_real_target_test_std"],
    ) == expected
    assert (
        result["transfer_accuracy_from_untranslated_sources"],
        result["transfer_accuracy_from_untranslated_sources_std"],
    ) == baseline


def test_transfer_needs_a_real_target_test_set(few_digits):
    from click.testing import CliRunner

    from i2i.cli import cli

    result = CliRunner().invoke(cli, ["eval", str(few_digits / "trainB"), "--transfer"])
    assert result.exit_code == 2 and "need --target-test" in result.output and "Traceback" not in result.output


def test_eval_judges_colour_images_in_colour(digits, tmp_path):
    import json

    import cv2
    from click.testing import CliRunner

    from i2i.cli import cli
    from i2i.io import read_image

    # The same digits tinted magenta (class 0) or green (class 1) at equal luminance: told apart
    # by colour only, so a judge that reads grey can only guess.
    tints = (np.array([1.0, 0.0, 1.0]), np.array([0.0, 0.704, 0.0]))
    for split, source, count in (("train", "trainA", 100), ("test", "testA", 50)):
        (tmp_path / split).mkdir()
        for path in list_images(digits / source)[:count]:
            grey = read_image(path, 1).astype(float)
            for label, tint in enumerate(tints):
                cv2.imwrite(
                    str(tmp_path / split / f"{path.stem}_{label}.png"), (grey * tint[::-1]).round().astype(np.uint8)
                )
    colour = tmp_path / "colour.json"
    result = CliRunner().invoke(
        cli,
        [
            "eval",
            str(tmp_path / "test"),
            "--target-train",
            str(tmp_path / "train"),
            "--target-test",
            str(tmp_path / "test"),
            "--label-channels",
            "3",
            "--json",
            str(colour),
        ],
    )
    assert result.exit_code == 0, result.output
    scores = json.loads(colour.read_text())
    assert scores["label_classifier"].startswith("JudgeClassifier × 1 (colour), 15 epochs on the 200 images")
    assert scores["accuracy_on_translated"] == scores["classifier_accuracy_on_real_target_test"] > 0.95
    grey = label_preservation(tmp_path / "test", tmp_path / "train", tmp_path / "test")
    assert grey["accuracy_on_translated"] < 0.65
