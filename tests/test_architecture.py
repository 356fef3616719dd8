"""Imports go down (docs/architecture.md): each folder imports only the rooms below it.

Parsed from the source with `ast`, so lazy imports inside functions count too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROOMS = ("training", "export", "runtime", "kernels", "benchmarks")  # i2i.<room> lives in ROOT/i2i/<room>/
FORBIDDEN = {
    "export": {"runtime"},
    "kernels": {"export", "runtime", "training"},
    "training": {"runtime"},
    "runtime": {"training"},
}


def imported_rooms(path: Path, package: str) -> set[str]:
    """The i2i rooms a module imports, absolute (`i2i.runtime.x`) or relative (`..runtime`)."""
    rooms = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                names = [".".join(base + ([node.module] if node.module else []))]
            else:
                names = [node.module or ""]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "i2i" and len(parts) > 1 and parts[1] in ROOMS:
                rooms.add(parts[1])
    return rooms


def room_imports(room: str) -> dict[str, set[str]]:
    folder = ROOT / "i2i" if room == "i2i" else ROOT / "i2i" / room
    prefix = ("i2i",) if room == "i2i" else ("i2i", room)
    paths = [path for path in folder.rglob("*.py") if room != "i2i" or path.relative_to(folder).parts[0] not in ROOMS]
    packages = {path: ".".join((*prefix, *path.relative_to(folder).parts[:-1])) for path in paths}
    return {str(path.relative_to(ROOT)): imported_rooms(path, package) for path, package in sorted(packages.items())}


@pytest.mark.parametrize("room", sorted(FORBIDDEN))
def test_rooms_import_nothing_from_above(room):
    imports = room_imports(room)
    offenders = {path: sorted(rooms & FORBIDDEN[room]) for path, rooms in imports.items() if rooms & FORBIDDEN[room]}
    assert not offenders, f"{room}/ must not import {sorted(FORBIDDEN[room])}: {offenders}"


def test_the_core_imports_no_room():
    imports = room_imports("i2i")
    imports.pop("i2i/cli.py")  # the top: it parses options and calls into every room
    assert not {path: sorted(rooms) for path, rooms in imports.items() if rooms}


def test_loading_an_export_imports_nothing_from_training(tmp_path, digits):
    """A deployment host reads an exported generator's config without the training stack."""
    import subprocess
    import sys

    from i2i.export.onnx import export_onnx

    from .conftest import untrained_run

    exported = export_onnx(untrained_run(tmp_path / "run", digits)).path
    probe = (
        "import sys, numpy as np, i2i.runtime\n"
        f"predictor = i2i.runtime.load({str(exported)!r}, backend='onnxruntime')\n"
        "predictor(np.zeros((32, 32), np.uint8))\n"
        "print(sorted(m for m in sys.modules if m.startswith('i2i.training')))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_the_parser_sees_absolute_relative_and_lazy_imports(tmp_path):
    module = tmp_path / "m.py"
    module.write_text(
        "from i2i.runtime import load\nfrom ..kernels.conv import x\n\n\ndef f():\n    import i2i.export.onnx\n"
    )
    assert imported_rooms(module, "i2i.training.models") == {"runtime", "export", "training"}  # ..kernels: its own
    assert imported_rooms(module, "i2i.training") == {"runtime", "kernels", "export"}


@pytest.mark.parametrize("room", ROOMS)
def test_the_folders_are_the_installed_layout(room):
    module = __import__(f"i2i.{room}", fromlist=["_"])
    assert Path(module.__file__).resolve().parent == ROOT / "i2i" / room
