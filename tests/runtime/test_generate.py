"""`i2i generate` and the torch predictor: paths, sizes, parity with the bare network."""

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from i2i.cli import cli
from i2i.errors import ConfigError
from i2i.image import pad_to_multiple
from i2i.io import list_images, read_image
from i2i.rundir import load_generator
from i2i.runtime import load


def test_generate_keeps_tree_names_and_sizes(tmp_path, tiny_run, digits):
    source = tmp_path / "in"
    sizes = {"a/one.png": (28, 28), "a/b/two.png": (37, 53), "three.jpg": (16, 16), "tiny.png": (3, 5)}
    for name, (height, width) in sizes.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        Image.open(next((digits / "testA").iterdir())).resize((width, height)).save(source / name)
    result = CliRunner().invoke(
        cli, ["generate", str(tiny_run), str(source), str(tmp_path / "out"), "--batch-size", "2"]
    )
    assert result.exit_code == 0, result.output
    assert "4 images" in result.output
    written = {p.relative_to(tmp_path / "out").as_posix() for p in list_images(tmp_path / "out")}
    assert written == set(sizes)
    for name, (height, width) in sizes.items():
        assert read_image(tmp_path / "out" / name, channels=1).shape == (height, width, 1)


def test_predictor_equals_the_network_on_real_digits(tiny_run, digits):
    predictor = load(tiny_run, backend="torch", batch_size=3)  # auto may pick ONNX Runtime or OpenVINO (±1 level)
    images = [read_image(p, channels=1) for p in list_images(digits / "testA")[:5]]  # 28×28: padded to 28
    outputs = predictor(images)
    net, _ = load_generator(tiny_run)
    batch = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 127.5 - 1
    expected = ((net(batch).clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    assert np.array_equal(np.stack(outputs), expected)


def test_padding_reflects_and_crops_back():
    batch = np.arange(2 * 5 * 6, dtype=np.uint8).reshape(2, 5, 6, 1)
    padded = pad_to_multiple(batch, 4)
    assert padded.shape == (2, 8, 8, 1)
    assert np.array_equal(padded[:, :5, :6], batch)
    assert np.array_equal(padded[:, 5, :6], batch[:, 3])  # reflection, not zeros
    assert pad_to_multiple(np.zeros((1, 3, 2, 1), np.uint8), 4).shape == (1, 8, 8, 1)  # too small to reflect: edge
    ready = np.zeros((1, 8, 12, 3), np.uint8)
    assert pad_to_multiple(ready, 4) is ready  # already a multiple: untouched


def test_triton_backend_matches_torch_on_real_digits(tiny_run, digits):
    # Centre crops keep the interpreter's work small; the digits are still real.
    images = [read_image(p, channels=1)[6:22, 6:22] for p in list_images(digits / "testA")[:2]]
    reference = np.stack(load(tiny_run, backend="torch")(images)).astype(int)
    fused = np.stack(load(tiny_run, backend="triton")(images)).astype(int)
    assert np.abs(fused - reference).max() <= 1  # uint8: at most one rounding step apart


def test_backend_and_device_errors(tiny_run):
    with pytest.raises(ConfigError, match="backend 'onnx' is not available"):
        load(tiny_run, backend="onnx")
    with pytest.raises(ConfigError, match="fp16 inference needs a CUDA device"):
        load(tiny_run, precision="fp16")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA GPU"):
            load(tiny_run, device="cuda")


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_a_run_directory_runs_traced_on_onnxruntime_and_openvino(backend, tiny_run, digits):
    images = [read_image(p, channels=1) for p in list_images(digits / "testA")[:4]]
    predictor = load(tiny_run, backend=backend)
    assert predictor.backend == backend
    reference = np.stack(load(tiny_run, backend="torch")(images)).astype(int)
    assert np.abs(np.stack(predictor(images)).astype(int) - reference).max() <= 1  # one rounding step apart
    with pytest.raises(ConfigError, match="traced in memory on the CPU in fp32"):
        load(tiny_run, backend=backend, precision="bf16")


def test_resume_keeps_the_backend_the_first_outputs_were_made_with(tiny_run, digits, tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    for path in list_images(digits / "testA")[:6]:
        shutil.copy(path, source)
    first = invoke("generate", tiny_run, source, tmp_path / "out", "--backend", "onnxruntime")
    assert first.exit_code == 0, first.output
    records = (tmp_path / "out" / "manifest.jsonl").read_text().splitlines()
    (tmp_path / "out" / "manifest.jsonl").write_text("\n".join(records[:3]) + "\n")  # a job killed after 3 outputs
    for record in records[3:]:
        Path(json.loads(record)["output"]).unlink()
    resumed = invoke("generate", tiny_run, source, tmp_path / "out", "--resume")  # --backend auto
    assert resumed.exit_code == 0, resumed.output
    assert "resume: backend onnxruntime" in resumed.output and "3 already there" in resumed.output
    manifest = [json.loads(line) for line in (tmp_path / "out" / "manifest.jsonl").read_text().splitlines()]
    assert len(manifest) == 6 and {r["backend"] for r in manifest} == {"onnxruntime"}


def test_generate_from_an_onnx_export_matches_the_run(tiny_run, digits, tmp_path):
    from i2i.export.exporter import ExportRequest, export

    model = export(ExportRequest(tiny_run, out_dir=tmp_path)).path
    runner = CliRunner()
    for source, out in ((tiny_run, "torch"), (model, "onnx")):
        result = runner.invoke(cli, ["generate", str(source), str(digits / "testB"), str(tmp_path / out)])
        assert result.exit_code == 0, result.output
    names = [p.relative_to(tmp_path / "torch") for p in list_images(tmp_path / "torch")]
    assert len(names) == 500
    worst = max(
        np.abs(read_image(tmp_path / "torch" / n, 1).astype(int) - read_image(tmp_path / "onnx" / n, 1)).max()
        for n in names
    )
    assert worst <= 1


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_list_file_glob_shards_and_merge(tiny_run, digits, tmp_path):
    listing = tmp_path / "list.txt"
    chosen = list_images(digits / "testB")[:10]
    listing.write_text("\n".join(str(p) for p in chosen) + "\n")
    assert invoke("generate", tiny_run, listing, tmp_path / "from_list").exit_code == 0
    assert len(list_images(tmp_path / "from_list")) == 10
    for i in range(3):
        result = invoke("generate", tiny_run, f"{digits}/testB/0000*.png", tmp_path / "sharded", "--shard", f"{i}/3")
        assert result.exit_code == 0, result.output
    assert invoke("merge-manifests", tmp_path / "sharded").exit_code == 0
    records = [json.loads(line) for line in (tmp_path / "sharded" / "manifest.jsonl").read_text().splitlines()]
    assert sorted(Path(r["input"]).name for r in records) == sorted(p.name for p in list_images(digits / "testB"))[:10]
    for record in records:
        assert hashlib.sha256(Path(record["output"]).read_bytes()).hexdigest() == record["sha256"]
    assert invoke("generate", tiny_run, listing, tmp_path / "x", "--shard", "3/3").exit_code == 2


def test_unreadable_images_are_skipped_or_stop_with_strict(tiny_run, digits, tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    for path in list_images(digits / "testA")[:3]:
        shutil.copy(path, source)
    (source / "broken.png").write_bytes(b"\x89PNG not really")
    result = invoke("generate", tiny_run, source, tmp_path / "out")
    assert result.exit_code == 0 and "3 images" in result.output and "1 unreadable skipped" in result.output
    result = invoke("generate", tiny_run, source, tmp_path / "strict", "--strict")
    assert result.exit_code == 2 and "broken.png" in result.output
    result = invoke("generate", tiny_run, source, tmp_path / "out", "--resume")
    assert "0 images" in result.output and "3 already there" in result.output


def test_labelled_dataset_keeps_its_labels(tiny_run, digits, tmp_path):
    source = tmp_path / "data"
    (source / "imgs").mkdir(parents=True)
    (source / "bbox").mkdir()
    lines = []
    for i, path in enumerate(list_images(digits / "testA")[:4]):
        shutil.copy(path, source / "imgs" / path.name)
        (source / "bbox" / f"{path.stem}.txt").write_text(f"1 2 3 {10 + i} 20\n")
        lines.append(f"imgs/{path.name} bbox/{path.stem}.txt")
    (source / "paths.txt").write_text("\n".join(lines) + "\n")
    result = invoke("generate", tiny_run, source, tmp_path / "out")
    assert result.exit_code == 0, result.output
    out = tmp_path / "out"
    assert (out / "paths.txt").read_text() == (source / "paths.txt").read_text()
    for line in lines:
        image, label = line.split()
        assert (out / image).is_file() and (out / label).read_text() == (source / label).read_text()
    assert not (out / "bbox" / "x").exists() and len(list_images(out)) == 4  # labels copied, not translated
