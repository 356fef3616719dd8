"""`i2i eval`'s artifact score and contact sheet, through the command line, on real photos and
paintings with a synthetic lattice standing in for a generator's."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from i2i.cli import cli
from i2i.io import list_images, read_image, write_image

from .test_spectral import CHECKERBOARD, photos_at_128, with_lattice


@pytest.fixture(scope="module")
def folders(photos, tmp_path_factory):
    """sources/ (10 photos, JPEG), translations/ (the same photos with a period-2 lattice, PNG, same
    names) and real/ (8 Monet paintings), all at 128 px."""
    root = tmp_path_factory.mktemp("eval")
    names = [path.stem for path in list_images(photos / "testA")[:10]]
    for name, photo in zip(names, photos_at_128(photos / "testA", 10)):
        write_image(root / "sources" / f"{name}.jpg", photo)
        write_image(root / "translations" / f"{name}.png", with_lattice(photo, CHECKERBOARD[..., None], 2))
    for index, painting in enumerate(photos_at_128(photos / "testB", 8)):
        write_image(root / "real" / f"{index}.png", painting)
    return root


def invoke(*args):
    return CliRunner().invoke(cli, ["eval", *map(str, args)])


def test_eval_reports_the_artifact_score_against_real_images(folders, tmp_path):
    result = invoke(
        folders / "translations", folders / "real", "--sources", folders / "sources", "--json", tmp_path / "eval.json"
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "eval.json").read_text())
    # measured: 188 for the lattice, 1.20 for the photos without it, in units of the paintings' median
    assert report["artifact_period"] == 2 and report["artifact_score"] > 30
    assert 0.5 < report["sources_artifact_score"] < 3
    assert report["artifact_score_real_range"][0] < 1 < report["artifact_score_real_range"][1]
    assert "1.0 = as much upsampling lattice as the median REAL image" in result.output


def test_contact_sheet_shows_inputs_translations_and_4x_nearest_neighbour_crops(folders, tmp_path):
    sheet = tmp_path / "report" / "sheet.png"
    result = invoke(folders / "translations", "--sources", folders / "sources", "--sheet", sheet)
    assert result.exit_code == 0, result.output
    image = read_image(sheet, 3)
    cell = 128
    translations = list_images(folders / "translations")[:8]  # the first 8 of 10, by name
    sources = [folders / "sources" / f"{path.stem}.jpg" for path in translations]
    label = image.shape[1] - 8 * cell
    assert image.shape[0] == 3 * cell and 0 < label < cell  # rows: inputs, translations, zoomed crops
    for column, (translation_path, source_path) in enumerate(zip(translations, sources)):
        left = label + column * cell
        translation = read_image(translation_path, 3)
        centre = translation[48:80, 48:80]  # the central 32 × 32 pixels
        zoomed = np.repeat(np.repeat(centre, 4, axis=0), 4, axis=1)
        assert np.array_equal(image[:cell, left : left + cell], read_image(source_path, 3))
        assert np.array_equal(image[cell : 2 * cell, left : left + cell], translation)
        assert np.array_equal(image[2 * cell :, left : left + cell], zoomed)
    without_inputs = tmp_path / "without_inputs.png"
    assert invoke(folders / "translations", "--sheet", without_inputs).exit_code == 0
    assert np.array_equal(read_image(without_inputs, 3), image[cell:])  # the same rows, less the inputs


def test_bad_sheet_paths_and_folders_are_one_line_errors(folders, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty.png").mkdir()  # a folder where the sheet should go
    (tmp_path / "a_file").write_text("")
    (tmp_path / "elsewhere").mkdir()
    write_image(tmp_path / "elsewhere" / "stranger.png", np.zeros((64, 64, 3), np.uint8))
    cases = {
        "inside the evaluated folder": (folders / "translations", "--sheet", folders / "translations" / "s.png"),
        "name it .png": (folders / "translations", "--sheet", tmp_path / "sheet.jpg"),
        "no images to put on a contact sheet": (tmp_path / "empty", "--sheet", tmp_path / "sheet.png"),
        "cannot write": (folders / "translations", "--sheet", tmp_path / "a_file" / "sheet.png"),
        "a file stands where a folder is needed": (folders / "translations", "--sheet", tmp_path / "empty.png"),
        "no input named stranger": (
            tmp_path / "elsewhere",
            "--sources",
            folders / "sources",
            "--sheet",
            tmp_path / "sheet.png",
        ),
    }
    for message, args in cases.items():
        result = invoke(*args)
        lines = result.output.strip().splitlines()
        assert result.exit_code == 2 and message in lines[-1] and "Traceback" not in result.output, result.output
    assert not (tmp_path / "sheet.png").exists() and not (folders / "translations" / "s.png").exists()
