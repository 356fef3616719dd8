"""`i2i bench` end to end on a tiny generator, the roofline's FLOP count by hand, and the GPU
check's CPU dry run."""

import json

import pytest
from click.testing import CliRunner

from i2i.benchmarks.roofline import DEVICES, floor_seconds, layer_costs
from i2i.cli import cli
from i2i.config import GeneratorConfig
from i2i.nets import build_generator


def test_bench_writes_table_json_and_plot(tmp_path, photos, caplog):
    result = CliRunner().invoke(
        cli,
        [
            "bench",
            "--netG",
            "resnet_6blocks",
            "--ngf",
            "8",
            "--sizes",
            "32x32",
            "--batches",
            "1,2",
            "--repeats",
            "2",
            "--photos",
            str(photos / "testA"),
            "--estimate",
            "T4",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    runs = json.loads((tmp_path / "bench.json").read_text())
    assert [r["input"] for r in runs] == [[1, 3, 32, 32], [2, 3, 32, 32]]
    for run in runs:
        assert run["rows"][0]["backend"] == "torch eager fp32 (CPU)" and run["rows"][0]["speedup_vs_eager_fp32"] == 1.0
        assert {r["backend"] for r in run["rows"]} >= {
            "onnxruntime fp32 (CPU)",
            "onnxruntime int8 static QDQ (CPU)",
            "openvino fp32 (CPU)",
            "openvino int8 NNCF (CPU)",
        }
        assert all(r["median_ms"] > 0 and r["peak_mb"] > 50 for r in run["rows"])
        assert all(abs(r["images_per_s"] - run["input"][0] * 1e3 / r["median_ms"]) < 1e-6 for r in run["rows"])
        assert not any("quality" in r for r in run["rows"])  # random weights: no quality to measure
    assert "T4" in result.output
    import onnxruntime
    import openvino

    # the OpenVINO and NNCF rows name what they ran on (the test environment installs both extras)
    assert runs[0]["versions"]["onnxruntime"] == onnxruntime.__version__
    assert runs[0]["versions"]["openvino"].startswith(openvino.__version__.split("-")[0])
    assert {"torch", "nncf", "python"} <= set(runs[0]["versions"])
    assert not [r for r in caplog.records if r.levelname == "WARNING"]  # the quantizer's internals stay quiet
    assert (tmp_path / "bench.png").stat().st_size > 0


@pytest.mark.slow
def test_bench_quality_column_for_a_run(tmp_path, tiny_run):
    result = CliRunner().invoke(
        cli, ["bench", "--run", str(tiny_run), "--sizes", "32", "--repeats", "2", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    rows = {r["backend"]: r for r in json.loads((tmp_path / "bench.json").read_text())[0]["rows"]}
    for name in ("onnxruntime int8 static QDQ (CPU)", "openvino int8 NNCF (CPU)"):
        quality = rows[name]["quality"]
        assert quality["precision"] == "int8" and quality["images"] == 48 and quality["fd_change"] >= 0
        assert f"FD change {100 * quality['fd_change']:.2f} %" in result.output
    assert "quality" not in rows["openvino fp32 (CPU)"]


def test_roofline_counts_resnet9_flops_like_a_hand_count():
    net = build_generator(GeneratorConfig("resnet_9blocks", ngf=64), 3, 3).eval()
    costs = layer_costs(net, (1, 3, 256, 256), 2)
    conv_flops = sum(c.flops for c in costs if c.kind in ("Conv2d", "ConvTranspose2d"))
    # multiply-adds: two 7×7 end convs, two stride-2 convs, two transposed convs, 18 residual convs
    macs = 2 * (64 * 256 * 256 * 3 * 49) + 4 * (128 * 128 * 128 * 64 * 9) + 18 * (256 * 64 * 64 * 256 * 9)
    assert conv_flops == 2 * macs
    # The floor can never beat pure compute or pure traffic.
    h100 = DEVICES["H100"]
    floor = floor_seconds(costs, "H100", "fp16")
    assert floor >= conv_flops / h100["fp16"] and floor >= sum(c.bytes for c in costs) / h100["bandwidth"]


def test_peak_memory_is_reset_between_configurations():
    import numpy as np

    from i2i.benchmarks.latency import peak_rss_mb, reset_peak_rss

    reset_peak_rss()
    before = peak_rss_mb()
    block = np.ones(300 * 2**20 // 8)  # 300 MB, touched
    during = peak_rss_mb()
    del block
    reset_peak_rss()
    assert during - before > 250 and peak_rss_mb() < during - 250


def test_bench_an_exported_onnx_file(tmp_path, tiny_run):
    from i2i.export.exporter import ExportRequest, export

    onnx_path = export(ExportRequest(tiny_run, out_dir=tmp_path)).path
    result = CliRunner().invoke(
        cli,
        [
            "bench",
            "--model",
            str(onnx_path),
            "--sizes",
            "32",
            "--repeats",
            "2",
            "--estimate",
            "OrinNano",
            "--out",
            str(tmp_path / "bench"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "resnet_6blocks ngf 8, input 1x3x32x32" in result.output  # the roofline of the file's architecture
    rows = json.loads((tmp_path / "bench" / "bench.json").read_text())[0]["rows"]
    assert [r["backend"] for r in rows if "bf16" not in r["backend"]] == [
        "torch eager fp32 (CPU)",
        "i2i onnxruntime generator_AtoB.onnx (CPU, uint8 in/out)",
    ]
    assert json.loads((tmp_path / "bench" / "bench.json").read_text())[0]["input"] == [1, 1, 32, 32]


def test_cuda_rows_time_separate_fp32_and_fp16_modules():
    # .half() converts a module in place; the fp32 row must keep fp32 weights after the fp16 copy is made.
    import torch

    from i2i.benchmarks.latency import precision_variants

    net = build_generator(GeneratorConfig("resnet_6blocks", ngf=4), 3, 3).eval()
    variants = precision_variants(net, torch.device("cpu"))
    fp32, half = variants["fp32"], variants["fp16_channels_last"]
    assert fp32 is not half and fp32 is not net
    assert {p.dtype for p in fp32.parameters()} == {torch.float32}
    assert {p.dtype for p in half.parameters()} == {torch.float16}
    assert {p.dtype for p in net.parameters()} == {torch.float32}  # the caller's module is left as it was
    conv = next(m for m in half.modules() if isinstance(m, torch.nn.Conv2d) and m.in_channels > 1)
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert not any(a.data_ptr() == b.data_ptr() for a, b in zip(fp32.parameters(), half.parameters()))


@pytest.mark.slow
def test_gpu_check_dry_run_writes_every_step(tmp_path, photos):
    """`gpu_check --device cpu --quick`: the same script and JSON keys as the GPU run, on the
    Triton interpreter with tiny shapes, so the command cannot rot between GPU runs."""
    import subprocess
    import sys

    from i2i.benchmarks.gpu_check import STEPS

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "i2i.benchmarks.gpu_check",
            "--out",
            str(tmp_path),
            "--device",
            "cpu",
            "--quick",
            "--data",
            ".",  # relative, as `make gpu-check DATA=.gpu-data` passes it
        ],
        capture_output=True,
        text=True,
        cwd=photos.parent,
    )
    result = json.loads((tmp_path / "gpu_check.json").read_text())
    assert done.returncode == 0, (done.stdout, {k: s["error"] for k, s in result["steps"].items() if s["error"]})
    assert set(result) == {"schema", "command", "quick", "environment", "steps", "total_seconds"}
    assert {"python", "torch", "triton", "cuda", "device"} <= set(result["environment"])
    assert list(result["steps"]) == list(STEPS)
    steps = {name: step["results"] for name, step in result["steps"].items()}
    for section in ("instance_norm", "conv"):
        assert steps["kernels"][section] and all(c["within_tolerance"] for c in steps["kernels"][section])
    assert result["steps"]["tune"]["status"] == "skipped"  # nothing to measure on a CPU
    assert [name for name, step in result["steps"].items() if step["status"] != "ok"] == [
        "tune",
        "latency_256_b8",
        "latency_1080p",
    ]
    assert steps["generators"]["generators"][0]["max_level_diff"] <= 1
    rows = {r["backend"]: r for r in steps["latency_256_b1"]["rows"]}
    assert rows["torch eager fp32"]["x_eager_fp32"] == 1.0 and rows["i2i triton fp16"]["median_ms"] > 0
    assert rows["i2i triton fp16 + CUDA graph"]["note"].startswith("skipped")
    assert rows["resnet_6blocks ngf 1 student: i2i triton fp16"]["median_ms"] > 0
    assert steps["bandwidth"]["copy"]["gb_per_s"] > 0 and len(steps["bandwidth"]["kernels"]) == 2
    assert steps["bandwidth"]["tiles"][0]["apply_ms"] > 0
    runs = {r["case"]: r for r in steps["end_to_end"]["runs"]}
    assert runs["generate 20 photos 256x256"]["images"] == 2 and runs["video cup.mp4"]["frames"] == 3
    summary = (tmp_path / "gpu_check.md").read_text()
    assert "| latency_256_b1 |" in summary and "| block_c 64 block_hw 64 warps 8: fused / apply alone |" in summary
