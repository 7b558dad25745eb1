"""The done-criterion of "drop images, get exactly one run", tried as a user would: ``nyanops watch`` runs in
its own process, ``cp -r`` copies a folder of photos into ``<root>/bucket/datasets/<id>/``; exactly one run
starts within the quiet period plus a few seconds, with a message saying the dataset was sealed; a stray
file copied in afterwards is refused with a message. (The run itself fails at once where torch is missing:
this is about what starts it.)"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nyanops.core import layout
from nyanops.local.database import connect
from nyanops.local.executions import ExecutionStore

SRC = Path(__file__).resolve().parents[2] / "src"
QUIET = 2.0
SLACK = 8.0  # scans, the seal (hashing a few files) and starting the run, on a loaded test machine

pytestmark = pytest.mark.skipif(shutil.which("cp") is None, reason="needs the cp command")


class Watch:
    def __init__(self, root: Path) -> None:
        env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
               "PYTHONUNBUFFERED": "1", "NYANOPS_DEFAULT_EXPERIMENT": "drop"}
        self.log = root.parent / "watch.log"
        self.out = open(self.log, "w")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "nyanops.cli", "--root", str(root), "watch", "--interval", "0.25", "--quiet",
             str(QUIET)], env=env, stdout=self.out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)

    def text(self) -> str:
        return self.log.read_text()

    def wait_for(self, fragment: str, timeout: float) -> float:
        start = time.monotonic()
        while fragment not in self.text():
            assert self.proc.poll() is None, f"watch exited:\n{self.text()}"
            assert time.monotonic() - start < timeout, f"no {fragment!r} after {timeout} s:\n{self.text()}"
            time.sleep(0.05)
        return time.monotonic() - start

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.out.close()


@pytest.fixture
def watch(tmp_path: Path) -> Iterator[Watch]:
    root = tmp_path / "root"
    w = Watch(root)
    try:
        w.wait_for("watching", timeout=60)
        yield w
    finally:
        w.stop()


def photos(folder: Path) -> Path:
    for split in layout.SPLITS:
        for cls in ("mike", "tama", "other"):
            (folder / split / cls).mkdir(parents=True)
            for i in range(4):
                (folder / split / cls / f"IMG_{i:04d}.jpg").write_bytes(f"\xff\xd8 {split} {cls} {i}".encode() * 50)
    return folder


def test_cp_r_into_the_bucket_starts_exactly_one_run_and_a_stray_file_is_refused(watch: Watch, tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "bucket" / "datasets").mkdir(parents=True, exist_ok=True)
    source = photos(tmp_path / "photos")
    subprocess.run(["cp", "-r", str(source), str(root / "bucket" / "datasets" / "cats-cp")], check=True)
    copied = time.monotonic()

    watch.wait_for("sealed datasets/cats-cp: 3 classes (mike, other, tama); train 12, val 12, test 12 images",
                   timeout=QUIET + SLACK)
    watch.wait_for("started execution ds-cats-cp-", timeout=QUIET + SLACK - (time.monotonic() - copied))
    assert time.monotonic() - copied <= QUIET + SLACK
    executions = ExecutionStore(connect(root / "nyanops.db"))
    [run] = executions.list()
    assert run.input["dataset"]["id"] == "cats-cp" and run.input["experiment"] == "drop"
    seal = json.loads((root / "bucket" / "datasets" / "cats-cp" / "_dataset.json").read_text())
    assert seal["sealed_by"]["tool"] == "pipeline" and seal["num_images"] == 36
    assert run.input["dataset"]["split_hashes"] == seal["split_hashes"]

    stray = tmp_path / "stray.jpg"
    stray.write_bytes(b"\xff\xd8 one more photo")
    subprocess.run(["cp", str(stray), str(root / "bucket" / "datasets" / "cats-cp" / "train" / "mike")], check=True)
    watch.wait_for("refused datasets/cats-cp/train/mike/stray.jpg: datasets/cats-cp is sealed", timeout=SLACK)
    assert "nyanops: file refused: datasets/cats-cp is sealed" in watch.text()
    time.sleep(QUIET + 1)  # another quiet period: still one run, still one refusal
    assert len(executions.list()) == 1
    assert watch.text().count("refused datasets/cats-cp/train/mike/stray.jpg") == 1
    assert watch.proc.poll() is None, "still watching"
    assert not re.search(r"^Traceback", watch.text(), re.M), "watch itself never fails (the run's job may)"
