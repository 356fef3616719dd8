"""The image contract (i2i/image.py) against values worked out independently."""

from __future__ import annotations

import numpy as np
import torch

from i2i.image import (
    array_to_model_input,
    pad_to_multiple,
    to_channels,
    to_image_arrays,
    to_images,
    to_model_input,
    with_constant_plane,
)

EVERY_LEVEL = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1)


def test_every_grey_level_maps_to_its_place_in_minus_one_one_and_back():
    x = array_to_model_input(EVERY_LEVEL)
    assert x.shape == (1, 1, 16, 16) and x.dtype == torch.float32
    reference = np.arange(256, dtype=np.float64).reshape(16, 16) / 127.5 - 1.0  # float64, the definition
    assert np.abs(x[0, 0].double().numpy() - reference).max() <= 2**-23
    assert (x[0, 0, 0, 0], x[0, 0, -1, -1]) == (-1.0, 1.0)
    np.testing.assert_array_equal(to_image_arrays(x), EVERY_LEVEL)  # the round trip is lossless


def test_outputs_are_clamped_and_rounded_to_the_nearest_level():
    y = torch.tensor([-3.0, -1.0, 0.0, 1 / 255, 0.999, 1.0, 7.0]).view(1, 1, 1, 7)
    # (y + 1) * 127.5: -, 0, 127.5 → 128 (half to even), 128.0, 254.87, 255, -
    assert to_images(y).flatten().tolist() == [0, 0, 128, 128, 255, 255, 255]


def test_layout_is_nhwc_outside_nchw_inside():
    rgb = np.zeros((2, 3, 5, 3), np.uint8)
    rgb[1, 2, 4] = (255, 0, 0)  # one red pixel of the second image
    x = array_to_model_input(rgb)
    assert x.shape == (2, 3, 3, 5)
    assert x[1, :, 2, 4].tolist() == [1.0, -1.0, -1.0]
    half = to_model_input(torch.from_numpy(rgb), torch.float16)
    assert half.dtype == torch.float16 and half[1, 0, 2, 4] == 1.0


def test_channels_follow_opencv_luma_and_repeat_grey():
    red = np.array([[[255, 0, 0]]], np.uint8)
    assert to_channels(red, 1).tolist() == [[[76]]]  # round(0.299 · 255)
    grey = np.array([[[9]]], np.uint8)
    assert to_channels(grey, 3).tolist() == [[[9, 9, 9]]]
    assert to_channels(grey, 1) is grey


def test_constant_plane_is_appended_as_the_last_channel():
    image = np.ones((2, 3, 1), np.uint8)
    planes = with_constant_plane(image, 200)
    assert planes.shape == (2, 3, 2) and (planes[:, :, 1] == 200).all() and (planes[:, :, 0] == 1).all()


def test_padding_reaches_the_multiple_and_keeps_the_image():
    batch = np.arange(2 * 10 * 13 * 1, dtype=np.uint8).reshape(2, 10, 13, 1)
    padded = pad_to_multiple(batch, 4)
    assert padded.shape == (2, 12, 16, 1)
    np.testing.assert_array_equal(padded[:, :10, :13], batch)
    np.testing.assert_array_equal(padded[:, 10, :13], batch[:, 8])  # reflection about the last row
