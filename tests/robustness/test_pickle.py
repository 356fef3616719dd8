"""`--extractor inception` never unpickles its cached weights: pytorch-fid would load them
through torch.hub (weights_only=False); i2i loads them weights-only and hands over the tensors.

pytorch-fid (and the torchvision it needs) is not installed here, so a stand-in module takes
its place; the file loading under test is i2i's own."""

from __future__ import annotations

import sys
import types

import pytest
import torch

from i2i.errors import CheckpointError, MissingDependencyError
from i2i.evaluation.metrics import FID_INCEPTION_WEIGHTS, inception_extractor


class Payload:
    """Unpickling this would run code: it records that it happened."""

    ran = False

    def __setstate__(self, state):
        Payload.ran = True


@pytest.fixture
def fid_stand_in(monkeypatch, tmp_path):
    received = {}

    class InceptionV3(torch.nn.Module):
        BLOCK_INDEX_BY_DIM = {2048: 3}

        def __init__(self, blocks):
            super().__init__()
            received["weights"] = module.load_state_dict_from_url("https://example.invalid/weights.pth")

        def forward(self, x):
            return [x.mean(dim=(2, 3), keepdim=True)]

    module = types.ModuleType("pytorch_fid.inception")
    module.InceptionV3 = InceptionV3
    module.load_state_dict_from_url = lambda *args, **kwargs: pytest.fail("pytorch-fid's own loader was used")
    package = types.ModuleType("pytorch_fid")
    package.inception = module
    monkeypatch.setitem(sys.modules, "pytorch_fid", package)
    monkeypatch.setitem(sys.modules, "pytorch_fid.inception", module)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    return tmp_path / "hub" / "checkpoints" / FID_INCEPTION_WEIGHTS, received


def test_inception_weights_are_loaded_weights_only(fid_stand_in):
    path, received = fid_stand_in
    with pytest.raises(MissingDependencyError, match="i2i does not download"):
        inception_extractor(torch.device("cpu"))

    torch.save({"conv.weight": torch.ones(2), "payload": Payload()}, path)
    with pytest.raises(CheckpointError, match="not a weights-only checkpoint"):
        inception_extractor(torch.device("cpu"))
    assert not Payload.ran

    torch.save({"conv.weight": torch.arange(3.0)}, path)
    features = inception_extractor(torch.device("cpu"))
    assert received["weights"]["conv.weight"].tolist() == [0.0, 1.0, 2.0]
    assert features(torch.full((1, 3, 4, 4), 255, dtype=torch.uint8)).tolist() == [[1.0, 1.0, 1.0]]
