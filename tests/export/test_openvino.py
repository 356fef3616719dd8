"""OpenVINO IR and int8 exports on the real runtimes: parity with torch fp32, int8 against fp32,
the quality gate's refusal, metadata, and the runtime's errors for damaged files."""

import json
import shutil

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

pytest.importorskip("openvino")

from i2i.cli import cli
from i2i.errors import ConfigError
from i2i.export.exporter import ExportRequest, export, quality_path
from i2i.export.quality import QualityGateError, psnr_uint8
from i2i.io import list_images, read_image
from i2i.runtime import load

from ..conftest import untrained_run

GATE = {"gate_images": 3}


@pytest.fixture(scope="module")
def run(photos, tmp_path_factory):
    root = tmp_path_factory.mktemp("openvino")
    calib = root / "calib"
    calib.mkdir()
    for path in list_images(photos / "trainA")[:3]:
        shutil.copy(path, calib)
    return untrained_run(root / "run", photos, ngf=8, channels=3), calib


@pytest.fixture(scope="module")
def fp32_ir(run, tmp_path_factory):
    return export(ExportRequest(run[0], "openvino", out_dir=tmp_path_factory.mktemp("ir")))


@pytest.fixture(scope="module")
def test_images(photos):
    images = [read_image(p) for p in list_images(photos / "testA")[:3]]
    return images + [images[0][:52, :68]]  # and an odd size: dynamic H/W, padded to the size multiple


def test_openvino_fp32_matches_torch(run, fp32_ir, test_images):
    result = fp32_ir
    assert result.path.name == "generator_AtoB.xml" and result.path.with_suffix(".bin").is_file()
    import openvino as ov

    model = ov.Core().read_model(str(result.path))
    assert model.get_rt_info(["i2i", "direction"]).astype(str) == "AtoB"
    assert json.loads(model.get_rt_info(["i2i", "train_config"]).astype(str))["G"]["ngf"] == 8
    assert [d.is_dynamic for d in model.input(0).get_partial_shape()] == [True, False, True, True]
    reference = load(run[0], backend="torch")(test_images)
    predictor = load(result.path)
    assert predictor.backend == "openvino"
    for got, want in zip(predictor(test_images), reference):
        assert got.shape == want.shape and np.abs(got.astype(int) - want).max() <= 1


@pytest.mark.slow
@pytest.mark.parametrize("format_name", ["openvino", "onnx"])
def test_int8_against_fp32(run, test_images, tmp_path, format_name):
    run_dir, calib = run
    result = export(
        ExportRequest(run_dir, format_name, "int8", calib=calib, out_dir=tmp_path, max_fd_change=10.0, **GATE)
    )
    quality = json.loads(quality_path(result.path).read_text())
    assert quality["precision"] == "int8" and quality["images"] == 3 and quality["passed"]
    if format_name == "onnx":
        model = onnx.load(str(result.path))
        assert "QuantizeLinear" in {node.op_type for node in model.graph.node}
        assert json.loads({p.key: p.value for p in model.metadata_props}["quality"]) == quality
    else:
        import openvino as ov

        model = ov.Core().read_model(str(result.path))
        assert "FakeQuantize" in {op.get_type_name() for op in model.get_ordered_ops()}
        assert json.loads(model.get_rt_info(["i2i", "quality"]).astype(str)) == quality
    reference = load(run_dir, backend="torch")(test_images)
    quantized = load(result.path)(test_images)
    # Random weights (std 0.1) give noise-like outputs, the hardest case for int8: ~22 dB measured.
    assert np.mean([psnr_uint8(a, b) for a, b in zip(quantized, reference)]) > 17
    assert quality["psnr_mean_db"] > 17


@pytest.mark.slow
def test_gate_refusal_leaves_nothing(run, tmp_path):
    run_dir, calib = run
    with pytest.raises(QualityGateError, match="most sensitive layers in fp32; nothing written"):
        export(ExportRequest(run_dir, "openvino", "int8", calib=calib, out_dir=tmp_path, max_fd_change=0.0, **GATE))
    assert list(tmp_path.iterdir()) == []


def test_damaged_or_foreign_files_are_refused(run, fp32_ir, tmp_path):
    result = fp32_ir
    lonely = tmp_path / "lonely.xml"
    shutil.copy(result.path, lonely)
    with pytest.raises(ConfigError, match="lonely.bin are missing"):
        load(lonely)
    plain = tmp_path / "plain.onnx"
    onnx_model = onnx.load(str(export(ExportRequest(run[0], out_dir=tmp_path / "onnx")).path))
    del onnx_model.metadata_props[:]
    onnx.save(onnx_model, str(plain))
    import openvino as ov

    from i2i.export.openvino import from_onnx

    foreign = tmp_path / "foreign.xml"
    ov.save_model(from_onnx(onnx_model), str(foreign))
    with pytest.raises(ConfigError, match="not an i2i export"):
        load(foreign)
    out = tmp_path / "out"
    for path in (lonely, plain, foreign):
        outcome = CliRunner().invoke(cli, ["generate", str(path), str(run[0].parent / "calib"), str(out)])
        assert outcome.exit_code == 2 and len(outcome.output.strip().splitlines()) == 1, outcome.output
        assert path.name in outcome.output


def test_auto_backend_times_the_installed_backends(run, test_images, capsys):
    predictor = load(run[0])  # CPU, fp32, run directory: torch vs ONNX Runtime vs OpenVINO
    outputs = predictor(test_images)
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith(f"backend auto: {predictor.backend} (")
    assert all(name in line for name in ("torch", "onnxruntime", "openvino"))
    for got, want in zip(outputs, load(run[0], backend="torch")(test_images)):
        assert np.abs(got.astype(int) - want).max() <= 1
