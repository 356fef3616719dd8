"""Files in and out: image decoding/encoding, atomic writes, safetensors checkpoints.

Everything written here goes to a temporary name first and is renamed into place, so an
interrupted process never leaves a half-written file under its final name; a failed write
(disk full, permissions) removes its temporary and raises WriteError naming the path. Image
headers are read before any pixel is decoded, so a small file that declares a huge image is
refused instead of exhausting memory.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import io
import json
import os
import re
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

import cv2
import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .errors import CheckpointError, DataError, WriteError
from .image import to_channels

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".gif")
# What write_image encodes for any channel count; a translation of another format is written as PNG.
OUTPUT_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
CHECKPOINT_PREFIX = "step_"
LATEST_FILENAME = "latest"

# Pixel limits (width × height) above which an image or video frame is refused before decoding.
# 50 MP covers 48-megapixel photos and 8K frames (150 MB decoded). With --tile the network only
# ever sees tiles, so only the decoded image itself (3 bytes a pixel) has to fit in memory.
DEFAULT_MAX_PIXELS = 50_000_000
TILED_MAX_PIXELS = 500_000_000

cv2.setNumThreads(1)  # decoding runs in data-loader workers; OpenCV's own pool would oversubscribe
# Pillow's own bomb check is a process-wide constant that would cap --max-pixels; every Pillow
# open in i2i goes through image_size(), which applies the configurable limit instead.
Image.MAX_IMAGE_PIXELS = None
_UMASK = os.umask(0)
os.umask(_UMASK)  # read once at import: os.umask is process-global and not thread-safe to query later


def list_images(folder: Path) -> list[Path]:
    """All image files under `folder`, recursively, in a stable (sorted) order."""
    folder = Path(folder)
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


def pixel_limit(max_pixels: int | None = None, tiled: bool = False) -> int:
    """The largest image (in pixels) to decode: `max_pixels` when given, else the default for
    whole-image or tiled (--tile) translation."""
    if max_pixels is not None:
        if max_pixels < 1:
            raise DataError(f"--max-pixels {max_pixels}: must be a positive number of pixels")
        return max_pixels
    return TILED_MAX_PIXELS if tiled else DEFAULT_MAX_PIXELS


def check_pixels(source: Path | str, width: int, height: int, max_pixels: int) -> None:
    """DataError if a `width` × `height` image or frame is above `max_pixels`."""
    if width * height > max_pixels:
        raise DataError(
            f"{source}: {width}x{height} is {width * height / 1e6:.1f} megapixels, above the limit of "
            f"{max_pixels / 1e6:g}; if the image is genuine, raise --max-pixels (--tile translates it in pieces)"
        )


def image_size(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS, data: bytes | None = None) -> tuple[int, int]:
    """(width, height) read from the file's header (or from `data`, its bytes) without decoding
    pixels; DataError if the header is unreadable or declares more than `max_pixels`."""
    try:
        with Image.open(io.BytesIO(data) if data is not None else path) as img:
            width, height = img.size
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DataError(f"{path}: not a readable image ({exc.__class__.__name__}); delete or replace it") from None
    check_pixels(path, width, height, max_pixels)
    return width, height


def read_image(
    path: Path, channels: int = 3, max_pixels: int = DEFAULT_MAX_PIXELS, name: str | Path | None = None
) -> np.ndarray:
    """Decode an image file to uint8 HWC (RGB for 3 channels, H×W×1 for 1).

    16-bit images are scaled to 8 bits, alpha is composited over white, palette and
    grayscale images are expanded; anything unreadable, or larger than `max_pixels`,
    raises DataError naming the file (as `name`, where the caller knows it by another path).
    """
    path = Path(path)
    name = path if name is None else name
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise DataError(f"{name}: cannot read ({exc.strerror}); check the path and permissions") from None
    return decode_image(data, channels, name, max_pixels)


def decode_image(
    data: bytes | np.ndarray, channels: int, name: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS
) -> np.ndarray:
    """`read_image` for bytes already in memory (a file fetched from object storage); `name`
    is the file the errors mention. The header is checked against `max_pixels` before decoding."""
    data = np.frombuffer(data, np.uint8) if isinstance(data, bytes) else data
    if data.size == 0:
        raise DataError(f"{name}: file is empty (0 bytes); delete or replace it")
    image_size(name, max_pixels, data.tobytes())
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
    return np.ascontiguousarray(to_channels(image, channels))


def writable_path(path: Path) -> Path:
    """`path`, or with a .png suffix when its format cannot hold every image (.pgm is grey only,
    .gif is not encoded)."""
    return path if path.suffix.lower() in OUTPUT_EXTENSIONS else path.with_suffix(".png")


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


_NO_SPACE = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)
_IN_THE_WAY = (errno.EEXIST, errno.ENOTDIR, errno.EISDIR)


@contextlib.contextmanager
def reporting_write_errors(path: Path) -> Iterator[None]:
    """Turn an OSError raised while writing `path` into a one-line WriteError with a fix."""
    try:
        yield
    except OSError as exc:
        if exc.errno in _NO_SPACE:
            fix = "free disk space (or raise the file-size limit) or write elsewhere"
        elif exc.errno in _IN_THE_WAY:
            fix = "a file stands where a folder is needed, or the reverse; choose another output path"
        elif exc.errno == errno.ENAMETOOLONG:
            fix = f"{too_long_name(path) or 'the path is too long'}; choose a shorter name"
        else:
            fix = "check the folder exists and is writable, or choose another output path"
        raise WriteError(f"{path}: cannot write ({exc.strerror or exc}); {fix}") from None


def too_long_name(path: Path | str) -> str | None:
    """What in `path` its file system cannot name (a name above NAME_MAX, 255 bytes on most), or None."""
    path = Path(os.path.abspath(path))
    existing = path
    while not _lexists(existing):
        existing = existing.parent
    limit = _name_max(str(existing))
    for name in path.relative_to(existing).parts:
        size = len(os.fsencode(name))
        if size > limit:
            return f"the name {name[:30]}... is {size} bytes, above the {limit} its file system takes"
    return None


def check_name_lengths(paths: Iterable[Path | str]) -> None:
    """WriteError naming the first of `paths` that its file system cannot name; call it before
    writing, so that a long input name stops nothing half-way."""
    for path in paths:
        reason = too_long_name(path)
        if reason:
            raise WriteError(f"{path}: cannot write ({reason}); choose a shorter name")


def _lexists(path: Path) -> bool:
    try:
        os.lstat(path)
    except OSError:  # ENAMETOOLONG included: a name too long does not exist
        return False
    return True


@functools.lru_cache(maxsize=64)
def _name_max(folder: str) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def temporary_prefix(name: str) -> str:
    """Prefix of a temporary beside the file or folder `name`. It carries this host and process,
    so a later start can tell a dead process's leftovers from a live one's
    (remove_stale_temporaries)."""
    return f".{_temporary_stem(name)}.i2i-{socket.gethostname()}-{os.getpid()}."


def _temporary_stem(name: str) -> str:
    """`name`, or for a name too long to fit with the rest of a temporary's name in NAME_MAX, its
    start and a hash of the whole: still unique, still recognisable."""
    encoded = name.encode()
    if len(encoded) <= LONG_NAME:
        return name
    return f"{encoded[:24].decode(errors='ignore')}~{hashlib.sha1(encoded).hexdigest()[:12]}"


# Names longer than this (bytes) are shortened in temporaries' names: with the host (up to 64),
# the pid, mkstemp's random part and the dots and suffix, the whole stays within 143 bytes, the
# smallest NAME_MAX in common use (eCryptfs; 255 elsewhere).
LONG_NAME = 40
_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.i2i-(?P<host>[A-Za-z0-9.-]+)-(?P<pid>\d+)\.[^.]*\.tmp$")


def remove_stale_temporaries(folder: Path, recursive: bool = False) -> int:
    """Delete the temporaries that killed i2i processes on this host left in `folder`; returns how many."""
    host = socket.gethostname()
    return _remove_temporaries(
        folder, recursive, lambda entry, match: match["host"] == host and not process_alive(int(match["pid"]))
    )


def remove_orphaned_temporaries(folder: Path, finished: set[str]) -> int:
    """Delete the temporaries, left by a process on any host, of the files in `finished` (absolute
    paths) that exist: a writer lost mid-write (a cluster node gone) while a retry wrote the file."""

    by_stem = {os.path.join(os.path.dirname(f), _temporary_stem(os.path.basename(f))): f for f in finished}

    def orphaned(entry: Path, match: re.Match) -> bool:
        final = by_stem.get(os.path.abspath(entry.parent / match["name"]))
        return final is not None and os.path.isfile(final)

    return _remove_temporaries(folder, True, orphaned)


def _remove_temporaries(folder: Path, recursive: bool, doomed) -> int:
    """Delete the i2i temporaries in `folder` for which doomed(path, name match) holds; returns how many."""
    folder, removed = Path(folder), 0
    if not folder.is_dir():
        return 0
    for entry in folder.rglob(".*.tmp") if recursive else folder.glob(".*.tmp"):
        match = _TEMPORARY.match(entry.name)
        if match is None or not doomed(entry, match):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed += 1
    return removed


def process_alive(pid: int) -> bool:
    """Whether a process `pid` runs on this host (one of another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` via a temporary file in the same folder and a rename."""
    path = Path(path)
    with reporting_write_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=temporary_prefix(path.name), suffix=".tmp", dir=path.parent)
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
    with reporting_write_errors(final):
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=temporary_prefix(final.name), suffix=".tmp", dir=final.parent))
    try:
        yield tmp
        with reporting_write_errors(final):
            for child in tmp.iterdir():
                with open(child, "rb") as handle:
                    os.fsync(handle.fileno())
            if final.exists():
                shutil.rmtree(final)
            os.rename(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def append_line(path: Path, line: str) -> None:
    """Append one line to a log; a kill can leave the last line partial, which its readers skip
    (read_json_lines)."""
    with reporting_write_errors(path), open(path, "a") as handle:
        handle.write(line + "\n")


def read_json_lines(path: Path) -> tuple[list[dict], list[str]]:
    """The JSON-object records of a JSON-lines log and, apart, the lines that are not one (a line
    cut short by a kill, or damage)."""
    records, damaged = [], []
    for line in read_text_lines(path):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if isinstance(record, dict):
            records.append(record)
        else:
            damaged.append(line)
    return records, damaged


def read_text_lines(path: Path) -> list[str]:
    """The lines of a UTF-8 text file (a list, a log); DataError if it is unreadable or not text."""
    try:
        return Path(path).read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror}); check the path and permissions") from None


def path_inside(folder: Path, relative: Path | str) -> Path:
    """`folder / relative`, refusing (DataError) a path that would land outside `folder`: absolute,
    climbing out with `..`, or through a symlink that leads out."""
    relative = Path(os.path.normpath(relative))
    if relative.is_absolute() or relative.parts[:1] in (("..",), (".",)):
        raise DataError(
            f"{relative}: would be written outside the output folder {folder}; "
            "list paths relative to the input folder, without '..'"
        )
    target = Path(folder) / relative
    if not target.parent.resolve().is_relative_to(Path(folder).resolve()):
        raise DataError(f"{target}: leads outside the output folder {folder} through a symlink; remove the link")
    return target


def save_checkpoint(
    checkpoint_root: Path,
    step: int,
    tensor_files: dict[str, dict[str, torch.Tensor]],
    state: dict,
    keep: int,
) -> Path:
    """Write `step_XXXXXX/` with one safetensors file per entry plus state.json (which lists
    them, so completeness can be verified), then move `latest` to it and delete all but the
    newest `keep` checkpoints."""
    checkpoint_root = Path(checkpoint_root)
    final = checkpoint_root / f"{CHECKPOINT_PREFIX}{step:06d}"
    state = {**state, "files": sorted(f"{name}.safetensors" for name in tensor_files)}
    with atomic_directory(final) as tmp:
        for name, tensors in tensor_files.items():
            path = tmp / f"{name}.safetensors"
            try:
                save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(path))
            except SafetensorError as exc:  # safetensors reports I/O failures (disk full) as its own error
                raise WriteError(
                    f"{final / path.name}: cannot write ({exc}); free disk space or write elsewhere"
                ) from None
        with reporting_write_errors(final / "state.json"):
            (tmp / "state.json").write_text(json.dumps(state, indent=2))
    atomic_write_bytes(checkpoint_root / LATEST_FILENAME, final.name.encode())
    for old in checkpoint_folders(checkpoint_root)[keep:]:
        shutil.rmtree(old, ignore_errors=True)
    return final


_CHECKPOINT_NAME = re.compile(rf"^{CHECKPOINT_PREFIX}(\d+)$")


def checkpoint_folders(checkpoint_root: Path) -> list[Path]:
    """The checkpoint folders under `checkpoint_root`, newest (highest step) first."""
    root = Path(checkpoint_root)
    found = [
        (int(match[1]), path)
        for path in root.glob(f"{CHECKPOINT_PREFIX}*")
        if (match := _CHECKPOINT_NAME.match(path.name)) and path.is_dir()
    ]
    return [path for _, path in sorted(found, reverse=True)]


def checkpoint_candidates(run_dir: Path) -> list[Path]:
    """Checkpoints to try, best first: the one `latest` names, then every other, newest first.
    `latest` may be missing, empty or wrong after a kill or a copy; the folders are the truth."""
    root = Path(run_dir) / "checkpoints"
    folders = checkpoint_folders(root)
    with contextlib.suppress(OSError, UnicodeDecodeError):
        named = root / (root / LATEST_FILENAME).read_text(encoding="utf-8").strip()
        if named in folders:
            folders.remove(named)
            folders.insert(0, named)
    return folders


def latest_checkpoint(run_dir: Path) -> Path:
    """The newest checkpoint folder of a run whose state.json and listed files are all present
    (`latest`'s when it is one); CheckpointError if there is none."""
    problems = []
    for folder in checkpoint_candidates(run_dir):
        try:
            check_checkpoint_files(folder, load_state(folder))
            return folder
        except CheckpointError as error:
            problems.append(str(error))
    if problems:
        raise CheckpointError(f"{run_dir}: no complete checkpoint ({len(problems)} incomplete, newest: {problems[0]})")
    raise CheckpointError(
        f"{run_dir}: no complete checkpoint yet ({Path(run_dir) / 'checkpoints'} has none); "
        "train longer or pass another run"
    )


def check_checkpoint_files(folder: Path, state: dict) -> None:
    """CheckpointError unless every file that state.json lists is present and non-empty
    (checkpoints from before the list existed are checked when their files are loaded)."""
    for name in state.get("files", []):
        path = Path(folder) / name
        if not path.is_file() or path.stat().st_size == 0:
            raise CheckpointError(f"{path}: missing or empty; the checkpoint is incomplete")


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    """Load one safetensors file, turning truncation/corruption into a CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: missing from the checkpoint; use an earlier checkpoint or retrain")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"{path}: truncated or corrupt ({exc}); delete {path.parent.name} to fall back to an earlier checkpoint"
        ) from None


def load_state(checkpoint: Path) -> dict:
    """A checkpoint's state.json: a JSON object with an integer `step` matching the folder name."""
    path = Path(checkpoint) / "state.json"
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: unreadable ({exc.__class__.__name__}); use an earlier checkpoint") from None
    name = _CHECKPOINT_NAME.match(Path(checkpoint).name)
    if not isinstance(state, dict) or not isinstance(state.get("step"), int) or name and int(name[1]) != state["step"]:
        raise CheckpointError(f"{path}: not the state of {Path(checkpoint).name}; use an earlier checkpoint")
    return state


VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")


def open_video(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> cv2.VideoCapture:
    """An opened capture of a video file whose frame size is within `max_pixels`; DataError otherwise."""
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise DataError(f"{path}: not a video OpenCV can read; convert it (ffmpeg -i in out.mp4) or remove it")
    width, height = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    try:
        check_pixels(path, width, height, max_pixels)
    except DataError:
        capture.release()
        raise
    return capture


def count_video_frames(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> int:
    """Frames that actually decode (container frame counts are often wrong, and a truncated
    file has fewer); DataError if the file is no video OpenCV can open."""
    capture = open_video(path, max_pixels)
    count = 0
    while capture.grab():
        count += 1
    capture.release()
    return count


def read_video_frames(
    path: Path, indices: list[int], channels: int = 3, max_pixels: int = DEFAULT_MAX_PIXELS
) -> list[np.ndarray]:
    """Decode the frames at increasing `indices` as uint8 HWC, seeking to the first one."""
    capture = open_video(path, max_pixels)
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
            raise DataError(
                f"{path}: frame {index} does not decode (truncated or corrupt video); re-encode or remove it"
            )
        frames.append(_to_uint8_channels(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), channels, path))
    capture.release()
    return frames
