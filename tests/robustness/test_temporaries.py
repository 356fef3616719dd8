"""A writer SIGKILLed mid-write leaves its temporary; the next writer of that folder removes it
(whoever holds the folder removes what dead writers left) and writes a complete result:
`i2i export` to ONNX and OpenVINO, and `i2i import`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from i2i.config import GeneratorConfig
from i2i.nets import build_generator

from .conftest import assert_ok, child_env, invoke

pytestmark = pytest.mark.slow

# The CLI in a child that SIGKILLs itself when it is about to rename a temporary onto `name`:
# the moment a kill leaves the most behind (the whole temporary, nothing under the final name).
KILLED_BEFORE_RENAME = """
import os, signal, sys
name = sys.argv.pop(1)
def dying(move):
    def moved(source, target, *args, **kwargs):
        if os.path.basename(str(target)) == name:
            os.kill(os.getpid(), signal.SIGKILL)
        return move(source, target, *args, **kwargs)
    return moved
os.replace, os.rename = dying(os.replace), dying(os.rename)
from i2i.cli import main
sys.argv[0] = "i2i"
main()
"""


def killed_writing(name: str, *args) -> None:
    command = [sys.executable, "-c", KILLED_BEFORE_RENAME, name, *[str(a) for a in args]]
    done = subprocess.run(command, capture_output=True, text=True, env=child_env(), timeout=300)
    assert done.returncode == -9, done.stderr[-3000:]


def temporaries(folder: Path) -> list[Path]:
    return list(folder.rglob(".*.tmp"))


@pytest.mark.parametrize("fmt, first_renamed", [("onnx", "generator_AtoB.onnx"), ("openvino", "generator_AtoB.bin")])
def test_export_after_a_killed_export_leaves_no_temporary(tmp_path, run, fmt, first_renamed):
    if fmt == "openvino":
        pytest.importorskip("openvino")
    out = tmp_path / "out"
    killed_writing(first_renamed, "export", run, "--format", fmt, "--out", out)
    assert temporaries(out) and not (out / first_renamed).exists()  # what the kill left

    assert_ok(invoke("export", run, "--format", fmt, "--out", out))
    assert temporaries(out) == []
    if fmt == "onnx":
        import onnx

        from i2i.export.onnx import read_metadata

        path = out / "generator_AtoB.onnx"
        assert read_metadata(onnx.load(str(path)), path)["direction"] == "AtoB"
    else:
        from i2i.export.openvino import read_ir

        assert read_ir(out / "generator_AtoB.xml")[1]["direction"] == "AtoB"
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # nor a lock file


def test_import_after_a_killed_import_leaves_no_temporary(tmp_path):
    checkpoint, run_dir = tmp_path / "latest_net_G_A.pth", tmp_path / "imported"
    torch.save(build_generator(GeneratorConfig("resnet_6blocks", ngf=4), 1, 1).state_dict(), checkpoint)
    killed_writing("step_000000", "import", checkpoint, "--from", "cyclegan", "--out", run_dir)
    assert temporaries(run_dir) and not (run_dir / "train_config.json").exists()

    assert_ok(invoke("import", checkpoint, "--from", "cyclegan", "--out", run_dir))
    assert temporaries(run_dir) == []
    from i2i.rundir import load_generator

    net, config = load_generator(run_dir)
    assert config.G.netG == "resnet_6blocks" and net(torch.zeros(1, 1, 32, 32)).shape == (1, 1, 32, 32)
