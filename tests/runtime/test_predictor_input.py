"""The predictor as a Python user calls it: one image or a list, numpy or torch, RGB or BGR,
H×W×C or H×W grey, and one clear line for anything else."""

import numpy as np
import pytest
import torch

from i2i.errors import DataError
from i2i.runtime import load

from ..conftest import untrained_run


@pytest.fixture(scope="module")
def colour(tmp_path_factory, digits):
    return load(untrained_run(tmp_path_factory.mktemp("colour"), digits, channels=3))


@pytest.fixture(scope="module")
def grey(tmp_path_factory, digits):
    return load(untrained_run(tmp_path_factory.mktemp("grey"), digits, channels=1))


def test_one_image_list_tensor_and_bgr_agree_with_the_rgb_list(colour):
    rng = np.random.default_rng(0)
    rgb = [rng.integers(0, 256, (20, 28, 3), dtype=np.uint8), rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)]
    reference = colour(rgb)
    assert isinstance(reference, list) and [r.shape for r in reference] == [(20, 28, 3), (16, 16, 3)]
    one = colour(rgb[0])  # what cv2.imread / np.asarray(Image.open(...)) give: a single H×W×3 array
    assert isinstance(one, np.ndarray) and np.array_equal(one, reference[0])
    # OpenCV users: BGR in, BGR out, the same colours as the RGB path.
    bgr = colour([image[:, :, ::-1].copy() for image in rgb], color="bgr")
    for out, ref in zip(bgr, reference):
        assert np.array_equal(out, ref[:, :, ::-1])
    tensor = colour(torch.from_numpy(rgb[1]))
    assert isinstance(tensor, torch.Tensor) and np.array_equal(tensor.numpy(), reference[1])
    assert not np.array_equal(reference[0], reference[0][:, :, ::-1])  # the colour check above can fail


def test_greyscale_h_w_arrays(colour, grey):
    gray = np.random.default_rng(1).integers(0, 256, (24, 24), dtype=np.uint8)
    # a grey model gives H×W back, equal to its H×W×1 output
    out = grey(gray)
    assert out.shape == (24, 24) and np.array_equal(out, grey([gray[:, :, None]])[0][:, :, 0])
    # a colour model reads the grey image as equal R, G and B
    assert np.array_equal(colour(gray), colour(np.repeat(gray[:, :, None], 3, axis=2)))


@pytest.mark.parametrize(
    "image, call, fragments",
    [
        (np.zeros((16, 16, 3), np.float32), {}, ["dtype float32", "uint8", "* 255"]),
        (np.zeros((16, 16, 4), np.uint8), {}, ["shape (16, 16, 4)", "H×W×3"]),
        (np.zeros((2, 16, 16, 3), np.uint8), {}, ["a batch?", "list(batch)"]),
        ([np.zeros((16, 16, 3), np.uint8), "photo.jpg"], {}, ["image 1 is a str"]),
        (np.zeros((16, 16, 3), np.uint8), {"color": "hsv"}, ["'rgb'", "'bgr'"]),
        ("photo.jpg", {}, ["photo.jpg: the predictor takes image arrays, not paths"]),
    ],
)
def test_wrong_input_is_one_line_saying_what_is_expected(colour, image, call, fragments):
    with pytest.raises(DataError) as error:
        colour(image, **call)
    message = str(error.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


def test_a_grey_model_refuses_colour_images(grey):
    with pytest.raises(DataError, match=r"shape \(16, 16, 3\); expected uint8 images of shape H×W×1 or H×W"):
        grey(np.zeros((16, 16, 3), np.uint8))
