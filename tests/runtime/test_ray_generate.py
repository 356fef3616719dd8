"""`i2i generate … --ray` on a real local Ray cluster (a head and two worker nodes on the
loopback interface), measured against one-process generation of the same inputs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from filelock import FileLock

from i2i.cli import cli
from i2i.io import list_images, read_image
from i2i.runtime import load
from i2i.runtime.generate import generate_dataset

from ..conftest import untrained_run

# Every node, driver and worker on the loopback interface: Ray otherwise swaps 127.0.0.1 for the
# machine's network address. Read when ray is imported, and inherited by the drivers started here.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
os.environ.setdefault("RAY_DEDUP_LOGS", "0")
ray = pytest.importorskip("ray", reason="the Ray path needs the i2i[ray] extra (installed by make setup)")
from ray.cluster_utils import Cluster

pytestmark = pytest.mark.slow
# One backend pinned on both paths: `auto` times the installed backends per process and may pick
# another one in an actor than in the reference run.
BACKEND = "torch"
NODE = {"num_cpus": 1, "object_store_memory": 80 * 2**20, "node_ip_address": "127.0.0.1"}


@pytest.fixture(scope="module")
def cluster():
    """A head without CPUs (the driver's node) and two one-CPU worker nodes: each actor of a pool
    of two lands on its own node. Shared by the module, shut down with it. One cluster at a time
    on the machine (pytest-xdist workers, parallel runs): a head takes fixed ports (8265, …)."""
    with FileLock(Path(tempfile.gettempdir()) / "i2i-ray-test-cluster.lock"):
        nodes = Cluster(initialize_head=True, head_node_args={**NODE, "num_cpus": 0, "include_dashboard": False})
        try:
            for _ in range(2):
                nodes.add_node(**NODE)
            nodes.wait_for_nodes()
            yield nodes
        finally:
            ray.shutdown()
            nodes.shutdown()


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory, digits) -> Path:
    return untrained_run(tmp_path_factory.mktemp("ray") / "digits", digits, ngf=8)


@pytest.fixture(scope="module")
def photos_run(tmp_path_factory, photos) -> Path:
    return untrained_run(tmp_path_factory.mktemp("ray") / "photos", photos, channels=3, ngf=8)


@pytest.fixture(scope="module")
def photo_job(tmp_path_factory, photos, photos_run) -> tuple[Path, dict[str, bytes]]:
    """24 colour 256 × 256 photos (enough work per image for a job to be caught half done) and
    their one-process translation."""
    folder = tmp_path_factory.mktemp("ray") / "photos"
    folder.mkdir()
    for path in list_images(photos / "testA")[:24]:
        shutil.copy(path, folder)
    reference = generate_dataset(load(photos_run, backend=BACKEND, batch_size=4), folder, folder.parent / "one")
    assert reference.written == 24
    return folder, files_of(folder.parent / "one")


def files_of(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != "manifest.jsonl"
    }


def manifest_of(folder: Path) -> list[dict]:
    """Records with the timing left out, in input order."""
    records = [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]
    for record in records:
        record.pop("seconds", None)
    return sorted(records, key=lambda r: r["input"])


def labelled_dataset(folder: Path, images: list[Path]) -> Path:
    """A bbox layout (paths.txt, one label file per image) with one corrupt image in it."""
    (folder / "imgs").mkdir(parents=True)
    (folder / "bbox").mkdir()
    lines = []
    for i, path in enumerate(images):
        shutil.copy(path, folder / "imgs" / path.name)
        (folder / "bbox" / f"{path.stem}.txt").write_text(f"1 2 3 {10 + i} 20\n")
        lines.append(f"imgs/{path.name} bbox/{path.stem}.txt")
    (folder / "imgs" / "broken.png").write_bytes(b"\x89PNG not really")
    (folder / "bbox" / "broken.txt").write_text("1 0 0 4 4\n")
    (folder / "paths.txt").write_text("\n".join(lines + ["imgs/broken.png bbox/broken.txt"]) + "\n")
    return folder


def test_ray_output_equals_one_process(cluster, digits_run, digits, tmp_path, monkeypatch):
    """Same files byte for byte (images, labels, paths.txt) and the same manifest, bad image included."""
    monkeypatch.chdir(tmp_path)  # relative paths, as users type them: the manifests must name them alike
    labelled_dataset(Path("data"), list_images(digits / "testA")[:40])
    reference = generate_dataset(
        load(digits_run, backend=BACKEND, batch_size=8), "data", Path("one"), model_name=str(digits_run)
    )
    result = CliRunner().invoke(
        cli,
        [
            "generate",
            str(digits_run),
            "data",
            "on_ray",
            "--batch-size",
            "8",
            "--backend",
            BACKEND,
            "--ray",
            cluster.address,
            "--actors",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "40 images" in result.output and "1 unreadable skipped" in result.output
    assert reference.written == 40 and len(reference.failed) == 1
    assert files_of(Path("on_ray")) == files_of(Path("one"))
    ray_records = manifest_of(Path("on_ray"))
    one_records = manifest_of(Path("one"))
    for record in one_records:
        if "output" in record:
            record["output"] = record["output"].replace("one/", "on_ray/", 1)
    assert ray_records == one_records
    failures = [r for r in ray_records if "failed" in r]
    assert len(failures) == 1 and failures[0]["input"] == "data/imgs/broken.png"
    assert "not a readable image" in failures[0]["failed"]


def test_url_source_read_through_fsspec(cluster, digits_run, digits, tmp_path):
    """An fsspec URL (file:// here; s3:// and gs:// take the same path) gives the local outputs."""
    from i2i.runtime.ray_generate import generate_on_ray

    source = tmp_path / "in" / "sub"
    source.mkdir(parents=True)
    for path in list_images(digits / "testB")[:6]:
        shutil.copy(path, source)
    generate_dataset(load(digits_run, backend=BACKEND), f"{tmp_path}/in/**/*.png", tmp_path / "one")
    url = f"file://{tmp_path}/in/**/*.png"
    report = generate_on_ray(
        {"path": digits_run, "backend": BACKEND}, url, tmp_path / "on_ray", cluster.address, actors="1"
    )
    assert report.written == 6
    assert files_of(tmp_path / "on_ray") == files_of(tmp_path / "one")
    inputs = sorted(json.loads(line)["input"] for line in (tmp_path / "on_ray" / "manifest.jsonl").open())
    assert inputs == [f"file://{source}/{p.name}" for p in sorted(source.iterdir())]


def test_node_removed_mid_job_every_image_once(cluster, photos_run, photo_job, tmp_path):
    """A worker node dies while its actor translates; Ray restarts the actor on a replacement
    node and re-runs the lost work; every image lands once, identical to one-process output."""
    from i2i.runtime.ray_generate import generate_on_ray

    source, reference = photo_job
    images = list_images(source)
    out = tmp_path / "out"
    job: dict = {}
    thread = threading.Thread(
        target=lambda: job.update(
            report=generate_on_ray(
                {"path": photos_run, "backend": BACKEND, "batch_size": 4}, str(source), out, cluster.address, actors="2"
            )
        )
    )
    thread.start()
    while not (out / "manifest.jsonl").is_file() or not (out / "manifest.jsonl").read_text():
        assert thread.is_alive(), "the job ended before any image was written"
        time.sleep(0.02)
    victim = next(iter(cluster.worker_nodes))
    cluster.remove_node(victim, allow_graceful=False)
    done_at_removal = len(list_images(out))
    cluster.add_node(**NODE)  # the replacement an autoscaler would start
    thread.join(timeout=240)
    assert not thread.is_alive()
    assert done_at_removal < len(images), "the node was removed after the job had finished"
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert sorted(r["input"] for r in records) == sorted(str(p) for p in images)  # each exactly once
    assert job["report"].written == len(images)
    assert files_of(out) == reference


def test_resume_after_the_driver_is_killed(cluster, photos_run, photo_job, tmp_path):
    """SIGKILL the driver mid-job: no half-written image under a final name; a rerun with
    --resume skips the recorded images and completes the rest, each recorded once."""
    source, reference = photo_job
    images = list_images(source)
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "i2i.cli",
        "generate",
        str(photos_run),
        str(source),
        str(out),
        "--batch-size",
        "4",
        "--backend",
        BACKEND,
        "--ray",
        cluster.address,
        "--actors",
        "2",
    ]
    driver = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not (out / "manifest.jsonl").is_file() or not (out / "manifest.jsonl").read_text():
            assert driver.poll() is None, "the driver ended before any image was written"
            time.sleep(0.02)
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    recorded_before = (out / "manifest.jsonl").read_text().count("sha256")
    assert 0 < recorded_before < len(images), "the driver was killed after the job had finished"
    for path in list_images(out):
        read_image(path)  # every file under its final name is a whole image
    result = CliRunner().invoke(cli, [*command[3:], "--resume"])
    assert result.exit_code == 0, result.output
    assert f"{recorded_before} already there" in result.output
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines() if line.strip()]
    written = [r["input"] for r in records if "sha256" in r]
    assert sorted(written) == sorted(str(p) for p in images)  # each exactly once
    assert files_of(out) == reference


@pytest.mark.parametrize("case", ["unreachable address", "unknown URL scheme", "unwritable output"])
def test_bad_input_is_one_line_and_writes_nothing(case, cluster, digits_run, digits, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    source, out, address = str(digits / "testA"), tmp_path / "out", cluster.address
    if case == "unreachable address":
        address = "127.0.0.1:1"
    elif case == "unknown URL scheme":
        source = "nosuchfs://bucket/images"
    else:
        out = blocker / "out"
    result = CliRunner().invoke(cli, ["generate", str(digits_run), source, str(out), "--ray", address])
    assert result.exit_code == 2, result.output
    message = result.output.strip().splitlines()[-1]
    assert (
        message.startswith("Error: ")
        and {"unreachable address": "127.0.0.1:1", "unknown URL scheme": "nosuchfs", "unwritable output": "a_file"}[
            case
        ]
        in message
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"] and blocker.read_text() == ""


def test_without_ray_installed_one_line_names_the_extra(digits_run, digits, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` meets where the extra is not installed
    result = CliRunner().invoke(cli, ["generate", str(digits_run), str(digits / "testA"), str(tmp_path / "o"), "--ray"])
    assert result.exit_code == 2 and "pip install 'i2i[ray]'" in result.output
    assert not (tmp_path / "o").exists()
