"""A checkpoint damaged inside its files (types, keys, shapes that JSON and safetensors accept) is
skipped for the previous one, or refused in one line naming it when it is the only one."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from .conftest import TINY_TRAIN, assert_ok, assert_user_error, invoke

NEWEST = "step_000002"


def _rewrite_tensors(path, change):
    tensors = load_file(path)
    change(tensors)
    save_file(tensors, path)


def _rename_first_key(tensors):
    key = next(iter(tensors))
    tensors["abc"] = tensors.pop(key)


def _shrink_first_moment(tensors):
    key = next(k for k in tensors if k.endswith("exp_avg"))
    tensors[key] = tensors[key].flatten()[:3].clone()


def _state(change):
    def apply(folder):
        path = folder / "state.json"
        state = json.loads(path.read_text())
        change(state)
        path.write_text(json.dumps(state))

    return apply


DAMAGE = {
    "optimizer groups of the wrong type": _state(lambda s: s["optimizers"].update(G="x")),
    "no parameter groups": _state(lambda s: s["optimizers"].update(G=[])),
    "a malformed optimizer key": lambda f: _rewrite_tensors(f / "optimizer_G.safetensors", _rename_first_key),
    "a moment of the wrong shape": lambda f: _rewrite_tensors(f / "optimizer_D.safetensors", _shrink_first_moment),
    "a pool of the wrong shape": lambda f: save_file({"images": torch.zeros(2, 5, 8, 8)}, f / "pool_A.safetensors"),
    "a pool of integers": lambda f: save_file(
        {"images": torch.zeros(1, 1, 32, 32, dtype=torch.int64)}, f / "pool_B.safetensors"
    ),
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data):
    run = tmp_path_factory.mktemp("damaged") / "run"
    assert_ok(invoke("train", data, "--out", run, *TINY_TRAIN, "--steps", "2", "--save-every", "1"))
    return run


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_checkpoint_is_skipped_or_refused_in_one_line(tmp_path, trained, damage):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    DAMAGE[damage](run / "checkpoints" / NEWEST)
    result = invoke("train", "--resume", run, "--steps", "3")
    assert_ok(result)
    assert f"skipped 1 incomplete newer checkpoint(s), first {NEWEST}" in result.output  # resumed from step 1

    only = tmp_path / "only"
    shutil.copytree(trained, only)
    shutil.rmtree(only / "checkpoints" / "step_000001")
    DAMAGE[damage](only / "checkpoints" / NEWEST)
    assert_user_error(invoke("train", "--resume", only, "--steps", "3"), "no complete checkpoint", NEWEST)
