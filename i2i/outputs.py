"""What every writer checks before it writes: no output may be one of its own inputs."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from .errors import WriteError


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
