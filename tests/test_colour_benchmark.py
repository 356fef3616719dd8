"""The network-free colour check of issue 31 against figures computed by hand."""

import numpy as np
import pytest
from PIL import Image

from i2i.benchmarks.colour import colour_distances, main


def write(folder, colours):
    folder.mkdir()
    for index, colour in enumerate(colours):
        Image.fromarray(np.full((8, 8, 3), colour, dtype=np.uint8)).save(folder / f"{index}.png")
    return folder


def test_colour_distances_against_hand_computed_figures(tmp_path, photos):
    same = colour_distances(photos / "testB", [photos / "testB"])[str(photos / "testB")]
    assert same["lab_frechet_distance"] == pytest.approx(0, abs=1e-6) and same["histogram_hellinger"] == 0
    red = write(tmp_path / "red", [(250, 0, 0), (200, 0, 0)])
    blue = write(tmp_path / "blue", [(0, 0, 250), (0, 0, 200)])
    half = write(tmp_path / "half", [(250, 0, 0), (0, 0, 250)])
    result = colour_distances(red, [blue, half])
    assert result[str(blue)]["histogram_hellinger"] == pytest.approx(1)  # no colour in common
    # half's pixels: half in red's (250, 0, 0) bin, half in a bin red lacks; red's split over two bins
    expected = np.sqrt(0.5 * ((np.sqrt(0.5) - np.sqrt(0.5)) ** 2 + 0.5 + 0.5))
    assert result[str(half)]["histogram_hellinger"] == pytest.approx(expected)
    assert result[str(blue)]["lab_frechet_distance"] > result[str(half)]["lab_frechet_distance"] > 0


def test_colour_check_refuses_an_empty_folder(tmp_path, photos, capsys):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit) as stop:
        main([str(photos / "testB"), str(tmp_path / "empty")])
    assert stop.value.code == 2 and "empty: 0 image(s)" in capsys.readouterr().err
