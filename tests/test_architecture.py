"""Imports go down the floors of docs/architecture.md: every module imports only its own room and
the floors below, peers only through the named exceptions.

Parsed from the source with `ast`, so lazy imports inside functions count too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROOMS = ("training", "export", "runtime", "evaluation", "kernels", "nets", "benchmarks")  # ROOT/i2i/<room>/
# Top to bottom; the rooms of a floor are peers. The core's own files are rooms of one file.
FLOORS = (
    ("cli", "cli_options", "benchmarks"),
    ("training", "export", "runtime", "importers"),
    ("evaluation", "kernels", "rundir"),
    ("nets",),
    ("config", "errors", "image", "io", "outputs", "runners", "threads", "__init__"),
)
FLOOR = {room: index for index, rooms in enumerate(FLOORS) for room in rooms}
# Peer imports allowed, each for a stated reason.
EXCEPTIONS = {
    # The runtime reads exported files through their writer's names: the formats table, ONNX
    # I/O names and metadata, the TensorRT sidecar, OpenVINO's compile settings.
    ("runtime", "export"),
    # The CLI's options module holds the vocabulary the CLI uses; `i2i bench` runs the benchmarks.
    ("cli", "cli_options"),
    ("cli", "benchmarks"),
    # Within the core: the config module names the package version and reads JSON files; files
    # and images are the core's lowest layer.
    ("config", "__init__"),
    ("config", "io"),
    ("io", "errors"),
    ("io", "image"),
    ("outputs", "errors"),
    ("outputs", "io"),
    ("runners", "errors"),
    ("runners", "image"),
    ("image", "errors"),
    ("config", "errors"),
    ("threads", "errors"),
}


def room_of(module: str) -> str | None:
    """i2i.training.x → training; i2i.config → config; None outside i2i."""
    parts = module.split(".")
    if parts[0] != "i2i":
        return None
    if len(parts) == 1:
        return "__init__"
    return parts[1]


def imported_modules(path: Path, package: str) -> set[str]:
    """The i2i modules a file imports, absolute (`i2i.runtime.x`) or relative (`..runtime`)."""
    modules = set()
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
        modules.update(name for name in names if name.split(".")[0] == "i2i")
    return modules


def module_files() -> dict[Path, str]:
    """Every module of the package and the package its relative imports start from."""
    files = {}
    for path in sorted((ROOT / "i2i").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        files[path] = ".".join(parts[:-1])
    return files


def violations() -> dict[str, list[str]]:
    found = {}
    for path, package in module_files().items():
        own = room_of(".".join(path.relative_to(ROOT).with_suffix("").parts))
        if path.name == "__init__.py" and path.parent == ROOT / "i2i":
            own = "__init__"
        wrong = sorted(
            {
                room
                for module in imported_modules(path, package)
                if (room := room_of(module)) != own and not FLOOR[room] > FLOOR[own] and (own, room) not in EXCEPTIONS
            }
        )
        if wrong:
            found[str(path.relative_to(ROOT))] = wrong
    return found


def test_every_room_has_a_floor():
    rooms = {p.name for p in (ROOT / "i2i").iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    files = {p.stem for p in (ROOT / "i2i").glob("*.py")}
    assert rooms | files == set(FLOOR), "give each new room or core file its floor in FLOORS"


def test_imports_go_down_the_floors():
    assert not violations(), f"imports against docs/architecture.md's floors: {violations()}"


def test_the_parser_sees_absolute_relative_and_lazy_imports(tmp_path):
    module = tmp_path / "m.py"
    module.write_text(
        "from i2i.runtime import load\nfrom ..kernels.conv import x\n\n\ndef f():\n    import i2i.export.onnx\n"
    )
    assert imported_modules(module, "i2i.training.models") == {
        "i2i.runtime",
        "i2i.training.kernels.conv",
        "i2i.export.onnx",
    }
    assert imported_modules(module, "i2i.training") == {"i2i.runtime", "i2i.kernels.conv", "i2i.export.onnx"}


def test_loading_an_export_imports_nothing_from_training(tmp_path, digits):
    """A deployment host reads an exported generator's config without the training stack."""
    import subprocess
    import sys

    from i2i.export.exporter import ExportRequest, export

    from .conftest import untrained_run

    exported = export(ExportRequest(untrained_run(tmp_path / "run", digits))).path
    probe = (
        "import sys, numpy as np, i2i.runtime\n"
        f"predictor = i2i.runtime.load({str(exported)!r}, backend='onnxruntime')\n"
        "predictor(np.zeros((32, 32), np.uint8))\n"
        "print(sorted(m for m in sys.modules if m.startswith('i2i.training')))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("room", ROOMS)
def test_the_folders_are_the_installed_layout(room):
    module = __import__(f"i2i.{room}", fromlist=["_"])
    assert Path(module.__file__).resolve().parent == ROOT / "i2i" / room
