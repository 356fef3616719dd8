"""Per-layer implementation choice: the cache file's format and version guard, and a generator
whose layers follow a cache file (Triton conv tiles and cuDNN-path layers mixed) computing what
the torch generator computes. Nothing here measures speed: there is no GPU on this machine; the
timings below are given, as a GPU run would have written them."""

import json

import pytest
import torch

from i2i.config import GeneratorConfig
from i2i.kernels.conv import candidate_tiles
from i2i.kernels.dispatch import FusedConv, fuse_generator
from i2i.kernels.tuning import CUDNN, SCHEMA, LayerTuner, cache_file, fastest, versions
from i2i.nets import build_generator


def test_fastest_ignores_failed_candidates_and_keeps_the_default_on_a_tie():
    assert fastest({"a": 0.5, "b": 0.2, CUDNN: float("inf")}) == "b"
    assert fastest({"a": 0.3, "b": 0.3}) == "a"
    with pytest.raises(ValueError, match="no candidate ran"):
        fastest({"a": float("inf")})


def test_cache_file_round_trip_and_version_guard(tmp_path):
    path = cache_file("NVIDIA H200 (MIG 1g.18gb)", tmp_path)
    assert path.name == "NVIDIA_H200_MIG_1g_18gb.json"
    tuner = LayerTuner(path, "NVIDIA H200", measure=False)
    assert tuner.record("layer", {"m64n64k32w4s3": 0.31, CUDNN: 0.22}) == CUDNN
    data = json.loads(path.read_text())
    assert data == {
        "schema": SCHEMA,
        "gpu": "NVIDIA H200",
        "versions": versions(),
        "layers": {"layer": {"choice": CUDNN, "timings_ms": {"m64n64k32w4s3": 0.31, CUDNN: 0.22}}},
    }
    candidates = {"m64n64k32w4s3": None, CUDNN: None}
    assert LayerTuner(path, "NVIDIA H200", measure=False).choose("layer", candidates) == CUDNN
    assert LayerTuner(path, "NVIDIA H200", measure=False).choose("other layer", candidates) == "m64n64k32w4s3"
    data["versions"]["triton"] = "0.0"  # measured under another Triton: not trusted
    path.write_text(json.dumps(data))
    assert LayerTuner(path, "NVIDIA H200", measure=False).choose("layer", candidates) == "m64n64k32w4s3"


def test_nothing_is_measured_on_the_cpu():
    assert LayerTuner.for_device(torch.device("cpu")) is None


@pytest.mark.slow  # a whole generator on the Triton interpreter, twice
def test_layers_run_what_the_cache_file_chose(tmp_path):
    torch.manual_seed(0)
    net = build_generator(GeneratorConfig("resnet_6blocks", ngf=4), 3, 3).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.1)
    x = torch.randn(1, 3, 8, 12)

    # A first pass with an empty cache names every layer's key (the default tile runs).
    key_of_conv = {}
    fused = fuse_generator(net, LayerTuner(tmp_path / "gpu.json", "test GPU", measure=False))

    def remember_key(module, args, kwargs):
        key_of_conv.setdefault(module.conv, module.layer_key(args[0], kwargs.get("residual")))

    for module in fused.modules():
        if isinstance(module, FusedConv):
            module.register_forward_pre_hook(remember_key, with_kwargs=True)
    with torch.no_grad():
        fused(x)
    # Timings as a GPU run records them: each residual block's last conv (+ norm + skip) faster
    # on cuDNN, every other layer on the default tile.
    writer = LayerTuner(tmp_path / "gpu.json", "test GPU", measure=False)
    chosen = {}
    for conv, key in key_of_conv.items():
        tiles = [t.name for t in candidate_tiles(torch.float32, conv.in_channels, conv.out_channels)]
        chosen[key] = writer.record(key, dict.fromkeys(tiles, 1.0) | {CUDNN: 0.5 if "residual=True" in key else 2.0})
    assert sorted(chosen.values()).count(CUDNN) == 1 and len(set(chosen.values())) > 1  # the blocks share one key

    fused = fuse_generator(net, LayerTuner(tmp_path / "gpu.json", "test GPU", measure=False))
    with torch.no_grad():
        result = fused(x).double()
        reference = net.double()(x.double())
    layers = [m for m in fused.modules() if isinstance(m, FusedConv)]
    assert [list(m._choices.values()) for m in layers] == [[chosen[key_of_conv[m.conv]]] for m in layers]
    assert (result - reference).abs().max().item() < 1e-4
