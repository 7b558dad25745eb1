"""Ctrl-C or a killed `nyanops` leaves the execution INTERRUPTED, the trial not best, datasets/
untouched, no training process behind, and a new run possible at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nyanops.local.database import connect
from nyanops.local.executions import ExecutionStore
from nyanops.local.experiment_store import SQLiteExperimentStore

from .conftest import write_manifest
from .test_local_pipeline import nyanops, tree_digest

pytestmark = pytest.mark.e2e


def start_run(root: Path, manifest: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "nyanops.cli", "--root", str(root), "run", str(manifest), "--wait"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for_training(root: Path, proc: subprocess.Popen[str], timeout: float = 120) -> Path:
    """Block until the training job has printed its first epoch; return the job's log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for log in (root / "jobs").glob("*-train/output.log") if (root / "jobs").is_dir() else []:
            if "Epoch 1/" in log.read_text():
                return log
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        time.sleep(0.2)
    raise AssertionError("training never started")


def training_processes(root: Path) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if "train.py" in cmdline and str(root) in (entry / "cwd").resolve().as_posix():
                pids.append(int(entry.name))
    return pids


@pytest.mark.parametrize("how", ["ctrl-c", "kill"])
def test_interrupted_run_is_marked_and_a_new_run_works(how: str, root: Path, small_dataset: Path, tmp_path: Path):
    assert nyanops(root, "dataset", "add", str(small_dataset), "--name", "small", "--no-run") == 0
    datasets_before = tree_digest(root / "bucket" / "datasets")
    slow = write_manifest(tmp_path, "slow", "datasets/small", hyperparameters={"epochs": 200, "freeze-epochs": 0})
    proc = start_run(root, slow)
    wait_for_training(root, proc)
    if how == "ctrl-c":
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 130
    else:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    deadline = time.monotonic() + 15
    while training_processes(root) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert training_processes(root) == [], "a training process outlived its run"

    # Any later command notices a run whose process is gone.
    assert nyanops(root, "executions") == 0
    db = connect(root / "nyanops.db")
    (row,) = ExecutionStore(db).list()
    assert row.status == "INTERRUPTED"
    (trial,) = SQLiteExperimentStore(db).list_trials("e2e")
    assert trial.status == "Failed" and not trial.is_best and "interrupted" in trial.error
    assert tree_digest(root / "bucket" / "datasets") == datasets_before

    quick = write_manifest(tmp_path, "quick", "datasets/small")
    assert nyanops(root, "run", str(quick), "--wait") == 0
    statuses = sorted(r.status for r in ExecutionStore(db).list())
    assert statuses == ["INTERRUPTED", "SUCCEEDED"]
    assert [t.is_best for t in SQLiteExperimentStore(db).list_trials("e2e") if t.status == "Completed"] == [True]
    assert os.path.isdir(root / "bucket" / "runs")
