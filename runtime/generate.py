"""Translate every image of a folder tree with a predictor, keeping relative paths."""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from i2i.errors import DataError
from i2i.io import list_images, read_image, write_image

from .predictor import Predictor


def generate_folder(predictor: Predictor, input_dir: Path, output_dir: Path, chunk: int = 64) -> int:
    """Write predictor(image) for each image under `input_dir` to the same relative path
    under `output_dir`; return the number of images written."""
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    if not input_dir.is_dir():
        raise DataError(f"{input_dir}: no such folder; pass a folder of images")
    if output_dir.resolve().is_relative_to(input_dir.resolve()):
        raise DataError(f"{output_dir}: output folder is inside the input folder {input_dir}; choose another output")
    paths = list_images(input_dir)
    if not paths:
        raise DataError(f"{input_dir}: no images found; pass a folder with png/jpg/... images")
    classes = _classes_from_folders(predictor, input_dir, paths) if predictor.class_conditional else None
    with tqdm(total=len(paths), unit="img", desc="generate", dynamic_ncols=True) as progress:
        for start in range(0, len(paths), chunk):
            group = paths[start:start + chunk]
            images = [read_image(path, predictor.input_channels) for path in group]
            outputs = predictor(images, classes[start:start + chunk] if classes else None)
            for path, output in zip(group, outputs):
                write_image(output_dir / path.relative_to(input_dir), output)
            progress.update(len(group))
    return len(paths)


def _classes_from_folders(predictor: Predictor, input_dir: Path, paths: list[Path]) -> list[int]:
    """Class-conditional models read each image's class from its top folder, as in training
    (INPUT/<class>/image.png), so the output tree keeps the labels."""
    names = predictor.config.data.class_names
    classes = []
    for path in paths:
        top = path.relative_to(input_dir).parts[0]
        if top not in names:
            raise DataError(f"{path}: this model is class-conditional; put images in INPUT/<class>/ with class one of "
                            f"{', '.join(names)}")
        classes.append(names.index(top))
    return classes
