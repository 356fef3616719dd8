"""The README's Python API example runs as written, and OpenCV users get the right colours."""

import re
from pathlib import Path

import numpy as np
from PIL import Image

from i2i.io import list_images

from .conftest import untrained_run

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks(section: str) -> list[str]:
    text = README.read_text().split(f"### {section}\n", 1)[1].split("\n### ", 1)[0]
    return re.findall(r"```python\n(.*?)```", text, re.S)


def test_the_predictor_example(tmp_path, digits, photos, monkeypatch):
    untrained_run(tmp_path / "runs" / "horse2zebra", digits, channels=3)
    Image.open(list_images(photos / "testA")[0]).resize((96, 64)).save(tmp_path / "photo.jpg")
    monkeypatch.chdir(tmp_path)
    exec(python_blocks("Python API")[0], {})
    via_pillow = np.asarray(Image.open("zebra.png"), np.float32)
    via_opencv = np.asarray(Image.open("zebra_cv2.png"), np.float32)
    assert via_pillow.shape == (64, 96, 3)
    # the two decoders may differ by a grey level; swapped colours would differ by far more
    assert np.abs(via_pillow - via_opencv).mean() < 1.5 < np.abs(via_pillow - via_opencv[:, :, ::-1]).mean()
