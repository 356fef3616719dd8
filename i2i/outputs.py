"""What every writer does before it writes: refuse an output that is one of its own inputs, hold
its folder against a second writer, and remove the temporaries that killed writers left there."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from .errors import FolderInUseError, WriteError
from .io import process_alive, remove_stale_temporaries, reporting_write_errors

LOCK_NAME = ".i2i.lock"  # the folder's; a part's is .i2i.<part>.lock
RUN_PART = "the run"  # what train, resume, distill and import write into a run directory (an export may share it)
# A writer killed with its data-loader workers alive: they inherited its lock and exit within
# seconds of noticing their parent is gone.
ORPHAN_WAIT_SECONDS = 10.0


def file_identity(path: Path | str) -> tuple[int, int] | None:
    """(st_dev, st_ino) of the file `path` names, following symlinks; None if there is none."""
    try:
        found = os.stat(path)
    except (OSError, ValueError):
        return None
    return found.st_dev, found.st_ino


def refuse_writing_inputs(outputs: Iterable[Path | str], inputs: Iterable[Path | str]) -> None:
    """WriteError naming the first output that is one of the `inputs` (or, for an output folder
    that is replaced whole, holds one), however either is spelled: relative, absolute, through a
    symlink, a hard link. Call it before anything is written.

    Every spelling of one file shares its (st_dev, st_ino), and a path that names no file yet
    cannot be an input that exists, so the identities of the existing files decide.
    """
    by_identity: dict[tuple[int, int], Path] = {}
    for path in inputs:
        identity = file_identity(path)
        if identity is not None:
            by_identity.setdefault(identity, Path(path))
    resolved: dict[Path, Path] | None = None
    for output in outputs:
        source, relation = by_identity.get(file_identity(output)), "is"
        if source is None and os.path.isdir(output):
            if resolved is None:  # only for folders: resolving every input costs a stat per path component
                resolved = {Path(os.path.realpath(p)): p for p in by_identity.values()}
            inside = Path(os.path.realpath(output))
            source, relation = next((p for real, p in resolved.items() if real.is_relative_to(inside)), None), "holds"
        if source is not None:
            named = "" if os.path.abspath(output) == os.path.abspath(source) else f" ({source})"
            raise WriteError(
                f"{output}: {relation} one of the inputs{named}; writing it would destroy that input, "
                "choose another output path"
            )


@contextlib.contextmanager
def claim_folder(folder: Path, part: str | None = None, nested: bool = False) -> Iterator[Path]:
    """Hold `folder` (created if missing) as its one writer while the block runs; with `part`
    (e.g. "shard 1 of 4"), as the one writer of that part beside other parts' writers, while no
    whole-folder writer can start. A second writer gets FolderInUseError naming the holder's pid.
    Holding it, removes what killed writers left in the folder (below it too with `nested`):
    their temporaries and lock files. The lock is an flock, so a killed holder's lapses with its
    process; on release the lock files and a folder created here and left empty are removed."""
    folder = Path(folder)
    created = _make_folder(folder)
    held: list[tuple[Path, int]] = []
    try:
        held.append(_lock(lock_path(folder), fcntl.LOCK_SH if part else fcntl.LOCK_EX, None))
        if part is None:  # no part writer can hold its lock now: those files are leftovers
            for leftover in folder.glob(".i2i.*.lock"):
                leftover.unlink(missing_ok=True)
        else:
            held.append(_lock(lock_path(folder, part), fcntl.LOCK_EX, part))
        remove_stale_temporaries(folder, recursive=nested)
        yield folder
    finally:
        for path, fd in reversed(held):
            _unlock(path, fd)
        for made in created:
            with contextlib.suppress(OSError):
                os.rmdir(made)  # only if nothing was written into it


def lock_path(folder: Path, part: str | None = None) -> Path:
    """The lock file of `folder`, or of one `part` of it."""
    return Path(folder) / (f".i2i.{re.sub(r'[^A-Za-z0-9_.-]', '_', part)}.lock" if part else LOCK_NAME)


def _make_folder(folder: Path) -> list[Path]:
    """Create `folder` and its missing parents; the ones created, deepest first."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    with reporting_write_errors(folder):
        folder.mkdir(parents=True, exist_ok=True)
    return missing


def _lock(path: Path, mode: int, part: str | None) -> tuple[Path, int]:
    """(path, descriptor) holding flock `mode` on the lock file `path`; an exclusive holder writes
    its pid in it, for the message of the next writer."""
    folder, give_up = path.parent, time.monotonic() + ORPHAN_WAIT_SECONDS
    while True:
        if not folder.is_dir():  # a writer that had created it removed it on release, empty
            _make_folder(folder)
        with reporting_write_errors(path):
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holders = _holders(path)
            if not holders and time.monotonic() < give_up:
                time.sleep(0.1)
                continue
            by = f"i2i process {', '.join(map(str, holders))}" if holders else "another i2i process"
            raise FolderInUseError(
                f"{folder}: {by} is writing {f'{part} ' if part else ''}there; wait for it to end or "
                "choose another folder"
            ) from None
        held = os.fstat(fd)
        # The holder before may have removed the file on release: a lock on that one excludes nobody.
        if file_identity(path) == (held.st_dev, held.st_ino):
            break
        os.close(fd)
    if mode == fcntl.LOCK_EX:
        with contextlib.suppress(OSError):  # the pid only informs the next writer's message
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return path, fd


def _holders(path: Path) -> list[int]:
    """The live processes whose pids the lock file `path` holds, else its folder's other lock
    files (the parts' writers, which share the folder's lock)."""
    pids: list[int] = []
    for candidates in ([path], path.parent.glob(".i2i*.lock")):
        for lock in candidates:
            with contextlib.suppress(OSError, ValueError):
                pids.append(int(lock.read_text().strip()))
        alive = sorted({pid for pid in pids if pid != os.getpid() and process_alive(pid)})
        if alive:
            return alive
    return []


def _unlock(path: Path, fd: int) -> None:
    """Release a lock, removing its file when no other process holds it."""
    try:
        # Only an exclusive holder may remove the file; one that others share stays.
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    except BlockingIOError:
        pass
    finally:
        os.close(fd)
