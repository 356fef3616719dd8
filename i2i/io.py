"""Files in and out: image decoding/encoding, atomic writes, safetensors checkpoints.

Everything written here goes to a temporary name first and is renamed into place, so an
interrupted process never leaves a half-written file under its final name.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .errors import CheckpointError, DataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".gif")
CHECKPOINT_PREFIX = "step_"
LATEST_FILENAME = "latest"

cv2.setNumThreads(1)  # decoding runs in data-loader workers; OpenCV's own pool would oversubscribe
_UMASK = os.umask(0)
os.umask(_UMASK)  # read once at import: os.umask is process-global and not thread-safe to query later


def list_images(folder: Path) -> list[Path]:
    """All image files under `folder`, recursively, in a stable (sorted) order."""
    folder = Path(folder)
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


def read_image(path: Path, channels: int = 3, name: str | Path | None = None) -> np.ndarray:
    """Decode an image file to uint8 HWC (RGB for 3 channels, H×W×1 for 1).

    16-bit images are scaled to 8 bits, alpha is composited over white, palette and
    grayscale images are expanded; anything unreadable raises DataError naming the file
    (as `name`, where the caller knows it by another path).
    """
    path = Path(path)
    name = path if name is None else name
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise DataError(f"{name}: cannot read ({exc.strerror}); check the path and permissions") from None
    return decode_image(data, channels, name)


def decode_image(data: bytes | np.ndarray, channels: int, name: str | Path) -> np.ndarray:
    """`read_image` for bytes already in memory (a file fetched from object storage); `name`
    is the file the errors mention."""
    data = np.frombuffer(data, np.uint8) if isinstance(data, bytes) else data
    if data.size == 0:
        raise DataError(f"{name}: file is empty (0 bytes); delete or replace it")
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if image is None:
        image = _decode_with_pillow(data, name)
    elif image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA if image.shape[2] == 4 else cv2.COLOR_BGR2RGB)
    return _to_uint8_channels(image, channels, name)


def _decode_with_pillow(data: np.ndarray, name: str | Path) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data.tobytes())) as img:
            img.load()
            mode = "RGBA" if "A" in img.getbands() or "transparency" in img.info else "RGB"
            return np.asarray(img.convert(mode if img.mode not in ("L", "I;16", "I") else img.mode))
    except UnidentifiedImageError:
        raise DataError(f"{name}: not a readable image (unknown format or corrupt); delete or replace it") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise DataError(f"{name}: not a readable image ({exc}); delete or replace it") from None


def _to_uint8_channels(image: np.ndarray, channels: int, name: str | Path) -> np.ndarray:
    if image.dtype == np.uint16:
        image = (image.astype(np.uint32) * 255 + 32767) // 65535
    elif image.dtype in (np.int32, np.float32, np.float64):
        raise DataError(f"{name}: {image.dtype} images are not supported; convert to 8- or 16-bit")
    image = image.astype(np.uint8)
    if image.ndim == 2:
        image = image[:, :, None]
    if image.shape[2] == 4:  # composite over white: transparent regions become background, not black
        alpha = image[:, :, 3:4].astype(np.float32) / 255.0
        image = np.round(image[:, :, :3] * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    elif image.shape[2] == 2:  # gray + alpha
        alpha = image[:, :, 1:2].astype(np.float32) / 255.0
        image = np.round(image[:, :, :1] * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    if channels == 3 and image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    elif channels == 1 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[:, :, None]
    return np.ascontiguousarray(image)


def write_image(path: Path, image: np.ndarray) -> bytes:
    """Encode uint8 HWC (RGB or 1 channel) by the file's extension, write it atomically and
    return the encoded bytes."""
    path = Path(path)
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(path.suffix or ".png", image)
    if not ok:
        raise DataError(f"{path}: OpenCV cannot encode '{path.suffix}' images; use .png or .jpg")
    data = encoded.tobytes()
    atomic_write_bytes(path, data)
    return data


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` via a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp creates 0600; outputs get the usual permissions
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_directory(final: Path) -> Iterator[Path]:
    """Yield a temporary folder beside `final`; on success it is renamed to `final`."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        yield tmp
        for child in tmp.iterdir():
            with open(child, "rb") as handle:
                os.fsync(handle.fileno())
        if final.exists():
            shutil.rmtree(final)
        os.rename(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def save_checkpoint(
    checkpoint_root: Path,
    step: int,
    tensor_files: dict[str, dict[str, torch.Tensor]],
    state: dict,
    keep: int,
) -> Path:
    """Write `step_XXXXXX/` with one safetensors file per entry plus state.json, then move
    `latest` to it and delete all but the newest `keep` checkpoints."""
    checkpoint_root = Path(checkpoint_root)
    final = checkpoint_root / f"{CHECKPOINT_PREFIX}{step:06d}"
    with atomic_directory(final) as tmp:
        for name, tensors in tensor_files.items():
            save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp / f"{name}.safetensors"))
        (tmp / "state.json").write_text(json.dumps(state, indent=2))
    atomic_write_bytes(checkpoint_root / LATEST_FILENAME, final.name.encode())
    for old in sorted(checkpoint_root.glob(f"{CHECKPOINT_PREFIX}*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(run_dir: Path) -> Path:
    """The newest complete checkpoint folder of a run; CheckpointError if there is none."""
    root = Path(run_dir) / "checkpoints"
    pointer = root / LATEST_FILENAME
    if not pointer.is_file():
        raise CheckpointError(
            f"{run_dir}: no complete checkpoint yet ({pointer} missing); train longer or pass another run"
        )
    folder = root / pointer.read_text().strip()
    if not (folder / "state.json").is_file():
        raise CheckpointError(f"{folder}: checkpoint named by {pointer} is missing; delete {pointer} and retry")
    return folder


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    """Load one safetensors file, turning truncation/corruption into a CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: missing from the checkpoint; use an earlier checkpoint or retrain")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"{path}: truncated or corrupt ({exc}); delete {path.parent.name} and `latest` to fall back to an earlier checkpoint"
        ) from None


def load_state(checkpoint: Path) -> dict:
    path = Path(checkpoint) / "state.json"
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: unreadable ({exc}); use an earlier checkpoint") from None


VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")


def count_video_frames(path: Path) -> int:
    """Frames that actually decode (container frame counts are often wrong, and a truncated
    file has fewer); DataError if the file is no video OpenCV can open."""
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise DataError(f"{path}: not a video OpenCV can read; convert it (e.g. ffmpeg -i in out.mp4) or remove it")
    count = 0
    while capture.grab():
        count += 1
    capture.release()
    return count


def read_video_frames(path: Path, indices: list[int], channels: int = 3) -> list[np.ndarray]:
    """Decode the frames at increasing `indices` as uint8 HWC, seeking to the first one."""
    capture = cv2.VideoCapture(str(path))
    capture.set(cv2.CAP_PROP_POS_FRAMES, indices[0])
    frames, position = [], indices[0]
    for index in indices:
        while position < index:
            capture.grab()
            position += 1
        ok, frame = capture.read()
        position += 1
        if not ok:
            capture.release()
            raise DataError(f"{path}: frame {index} does not decode (truncated or corrupt video); re-encode or remove it")
        frames.append(_to_uint8_channels(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), channels, path))
    capture.release()
    return frames
