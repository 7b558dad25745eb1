"""The local pipeline end to end through the `nyanops` CLI: real handlers, the real ASL file, real
training and evaluation (tiny settings) on a slice of the cats-dev photos."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from nyanops import cli
from nyanops.core import hyperparameters, layout
from nyanops.core.execution_input import trial_run
from nyanops.local.bucket import LocalObjectStore
from nyanops.local.database import connect
from nyanops.local.executions import ExecutionStore
from nyanops.local.experiment_store import SQLiteExperimentStore

from .conftest import write_manifest

pytestmark = pytest.mark.e2e


def nyanops(root: Path, *args: str) -> int:
    return cli.main(["--root", str(root), *args])


def trials(root: Path, experiment: str = "e2e") -> list:
    return SQLiteExperimentStore(connect(root / "nyanops.db")).list_trials(experiment)


def executions(root: Path) -> list:
    return ExecutionStore(connect(root / "nyanops.db")).list()


def tree_digest(directory: Path) -> str:
    digest = hashlib.sha256()
    for p in sorted(directory.rglob("*")):
        if p.is_file():
            digest.update(p.relative_to(directory).as_posix().encode() + b"\0" + p.read_bytes())
    return digest.hexdigest()


@pytest.fixture
def dataset(root: Path, small_dataset: Path) -> str:
    assert nyanops(root, "dataset", "add", str(small_dataset), "--name", "small", "--no-run") == 0
    return "datasets/small"


def test_two_manifests_make_two_trials_with_exactly_one_best(root: Path, dataset: str, tmp_path: Path, capsys):
    first = write_manifest(tmp_path, "first", dataset)
    second = write_manifest(tmp_path, "second", dataset, hyperparameters={"augment": False})
    assert nyanops(root, "run", str(first), "--wait") == 0
    assert nyanops(root, "run", str(second), "--wait") == 0

    recorded = trials(root)
    assert [t.status for t in recorded] == ["Completed", "Completed"]
    assert sum(t.is_best for t in recorded) == 1
    for t in recorded:
        assert t.dataset_id == "small" and len(t.dataset_hash) == 64 and len(t.code_hash) == 64
        assert set(t.metrics) >= {"accuracy", "macro_precision", "macro_recall", "macro_f1"}
        assert t.hyperparameters["epochs"] == 2  # the values train.py actually used are recorded
    store = LocalObjectStore(root / "bucket")
    for t in recorded:
        evaluation = json.loads(store.get(layout.evaluation_key(t.trial)))
        assert evaluation["schema_version"] == 1 and evaluation["num_images"] == 12
        # The per-class figures live in the evaluation artifact, not in the record (AWS's parameter limits).
        assert set(evaluation["per_class"]) == {"bengal", "other", "persian"}
        assert t.evaluation_location.endswith(layout.evaluation_key(t.trial))
        assert store.head(t.model_location.removeprefix(f"s3://{store.bucket}/")) is not None

    capsys.readouterr()
    assert nyanops(root, "experiments", "e2e", "--json") == 0
    table = json.loads(capsys.readouterr().out)
    assert sum(row["best"] for row in table) == 1 and "augment" in table[0]


def test_dataset_add_starts_a_run_with_the_default_manifest_and_the_same_event_twice_starts_one(
    root: Path, small_dataset: Path, monkeypatch, capsys
):
    # The default recipe trains for minutes; the plumbing is what this test is about.
    monkeypatch.setenv("NYANOPS_DEFAULT_EXPERIMENT", "e2e")
    from nyanops.local.datasets import add_dataset
    from nyanops.local.progress import Progress
    from nyanops.local.runner import LocalPipeline

    pipeline = LocalPipeline(root, Progress(interactive=False))
    # What `dataset add` does before it fires the seal (without its background run: the event is the point).
    assert nyanops(root, "code", "push") == 0
    add_dataset(pipeline.store, small_dataset, "auto")
    marker = layout.dataset_marker_key("auto")
    first = pipeline.fire(marker)
    again = pipeline.fire(marker)
    assert [r.outcome.value for r in first] == ["started"]
    assert [r.outcome.value for r in again] == ["duplicate"]
    assert first[0].execution_name == again[0].execution_name
    assert len(executions(root)) == 1
    row = executions(root)[0]
    assert row.input["dataset"]["id"] == "auto" and row.input["experiment"] == "e2e"
    # defaults: train.py's, resolved and passed whole to the run's one trial
    assert trial_run(row.input, 0)["hyperparameters"] == hyperparameters.resolve({}, 3)


def test_bad_manifest_is_refused_with_the_field_named_and_nothing_runs(
    root: Path, dataset: str, tmp_path: Path, capsys
):
    bad = write_manifest(tmp_path, "bad", dataset, hyperparameters={"epochs": "10"})
    assert nyanops(root, "run", str(bad)) == 2
    err = capsys.readouterr().err
    assert "hyperparameters.epochs" in err and "whole number" in err
    store = LocalObjectStore(root / "bucket")
    record = json.loads(store.get(layout.rejection_key("manifests/bad.json")))
    assert record["problems"][0]["field"] == "hyperparameters.epochs"
    assert store.get("manifests/bad.json") == bad.read_bytes()  # the upload is untouched
    assert executions(root) == []


def test_crashing_training_records_a_failed_trial_and_shows_the_error(root: Path, dataset: str, tmp_path: Path, capsys):
    # resnet18 ImageNet weights cannot be downloaded here: train.py must stop at once, not train from scratch.
    crash = write_manifest(tmp_path, "crash", dataset, hyperparameters={"arch": "resnet18", "pretrained": True})
    assert nyanops(root, "run", str(crash), "--wait") == 1
    out = capsys.readouterr().out
    (row,) = executions(root)
    assert row.status == "FAILED"
    (trial,) = trials(root)
    assert trial.status == "Failed" and not trial.is_best
    assert "weights" in trial.error.lower()
    assert "weights" in out.lower()  # the notification shows the cause


def test_datasets_are_immutable(root: Path, dataset: str, small_dataset: Path, capsys):
    before = tree_digest(root / "bucket" / "datasets")
    assert nyanops(root, "dataset", "add", str(small_dataset), "--name", "small", "--no-run") == 2
    assert "immutable" in capsys.readouterr().err
    assert tree_digest(root / "bucket" / "datasets") == before


def test_watch_starts_runs_for_files_dropped_into_the_bucket_once(root: Path, dataset: str, tmp_path: Path, capsys):
    manifest = write_manifest(tmp_path, "dropped", dataset)
    target = root / "bucket" / "manifests" / "dropped.json"
    target.parent.mkdir(parents=True)
    target.write_bytes(manifest.read_bytes())
    # A dataset still uploading (no _dataset.json yet) starts nothing.
    uploading = root / "bucket" / "datasets" / "uploading" / "train" / "bengal"
    uploading.mkdir(parents=True)
    (uploading / "a.jpg").write_bytes(b"\xff\xd8 not finished")

    assert nyanops(root, "watch", "--once") == 0
    assert nyanops(root, "watch", "--once") == 0  # a second scan sees the same upload: nothing new
    (row,) = executions(root)
    assert row.status == "SUCCEEDED" and row.source_key == "manifests/dropped.json"
    out = capsys.readouterr().out
    assert out.count("started execution") == 1
    # The dataset added with --no-run is said to start nothing (once), and the unfinished upload waits.
    assert "datasets/small is sealed with start_run false" in out and out.count("datasets/small/_dataset.json") == 1


def test_demo_runs_two_trials_prints_the_comparison_and_writes_the_report(
    root: Path, small_dataset: Path, monkeypatch, capsys
):
    monkeypatch.delenv("NYANOPS_DEFAULT_EXPERIMENT", raising=False)
    assert nyanops(root, "demo", "--data", str(small_dataset)) == 0
    out = capsys.readouterr().out
    recorded = trials(root, "cats")
    assert [t.status for t in recorded] == ["Completed", "Completed"]
    assert sum(t.is_best for t in recorded) == 1
    assert {t.hyperparameters["arch"] for t in recorded} == {"efficientnet_lite2", "efficientnet_lite0"}
    assert "experiment cats (2 trials, * = best)" in out and "arch" in out
    assert "not part of the dataset (beside train/, val/, test/, or hidden): README.md" in out
    report = root / "report.html"
    assert report.is_file() and str(report) in out


def test_a_sweep_of_three_values_trains_three_trials_and_again_reuses_them(
    root: Path, dataset: str, tmp_path: Path, capsys
):
    """The real train.py and evaluation.py: one upload of a 3-value sweep is one execution of three trials, one
    best, one comparison printed; the same sweep again trains nothing (three reused trials)."""
    sweep = write_manifest(tmp_path, "sweep", dataset, sweep={"seed": [0, 1, 2]})
    assert nyanops(root, "run", str(sweep), "--wait") == 0
    out = capsys.readouterr().out
    (row,) = executions(root)
    names = [t["trial"] for t in row.input["trials"]]
    recorded = {t.trial: t for t in trials(root)}
    assert sorted(recorded) == sorted(names) and len(names) == 3
    assert [recorded[n].hyperparameters["seed"] for n in names] == [0, 1, 2]
    assert all(recorded[n].status == "Completed" for n in names) and sum(t.is_best for t in recorded.values()) == 1
    assert out.count("[notification]") == 1 and "3 trials: 3 trained, 0 reused, 0 failed." in out
    jobs = sorted(p.name for p in (root / "jobs").iterdir())

    again = write_manifest(tmp_path, "sweep-again", dataset, sweep={"seed": [0, 1, 2]})
    assert nyanops(root, "run", str(again), "--wait") == 0
    out = capsys.readouterr().out
    assert "3 trials: 0 trained, 3 reused, 0 failed." in out
    assert sorted(p.name for p in (root / "jobs").iterdir()) == jobs  # no training or evaluation job ran
    latest = max(executions(root), key=lambda r: r.created_at)
    recorded = {t.trial: t for t in trials(root)}
    reused = [recorded[t["trial"]] for t in latest.input["trials"]]
    assert [t.reused_from for t in reused] == names
    assert [t.metrics for t in reused] == [recorded[n].metrics for n in names]
    assert sum(t.is_best for t in recorded.values()) == 1
