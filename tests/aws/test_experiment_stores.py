"""The two experiment stores keep the same contract: SQLite locally, SageMaker Experiments (under moto, with AWS's
limits) on AWS. A record written with every field comes back whole; names match case-insensitively; a failed
trial keeps its cause; what would not fit a trial component is refused by both."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from nyanops.aws.experiment_lock import DynamoExperimentLock
from nyanops.aws.sagemaker_experiments import SageMakerExperimentStore
from nyanops.core.experiments import DecisionNote, ExperimentStore, TrialRecord, TrialResult, TrialStart
from nyanops.core.limits import LimitExceeded
from nyanops.local.database import connect
from nyanops.local.experiment_store import SQLiteExperimentStore

from .conftest import LOCK_TABLE, World

T0 = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=12, seconds=30)


@pytest.fixture(params=["sqlite", "sagemaker"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ExperimentStore]:
    if request.param == "sqlite":
        yield SQLiteExperimentStore(connect(tmp_path / "nyanops.db"))
    else:
        world: World = request.getfixturevalue("world")
        lock = DynamoExperimentLock(world.ddb, LOCK_TABLE, attempts=200, wait_seconds=0.005)
        yield SageMakerExperimentStore(world.sm, lock)


def a_start(trial: str = "m-a-0000000000000001", experiment: str = "Cats") -> TrialStart:
    return TrialStart(experiment, trial, f"{trial}-exec", "2026-11-28T064300Z", "d" * 64, "c" * 64,
                      "epochs 10 + ねこ", {"epochs": 10, "lr": 0.01, "augment": True, "arch": "resnet18"},
                      "manifests/run.json", T0, test_hash="t" * 64, classes_key="k" * 64)


def normalised(record: TrialRecord) -> TrialRecord:
    """Times as UTC instants to the second (SageMaker answers in its own zone, SQLite in ISO text)."""
    def utc(value: datetime | None) -> datetime | None:
        return None if value is None else value.astimezone(UTC).replace(microsecond=0)

    return replace(record, started_at=utc(record.started_at), finished_at=utc(record.finished_at))


def test_a_started_trial_comes_back_whole(store: ExperimentStore) -> None:
    store.start_trial(a_start())
    store.start_trial(a_start())  # idempotent
    [record] = store.list_trials("cats")
    assert normalised(record) == TrialRecord(
        experiment="Cats", trial="m-a-0000000000000001", status="InProgress", started_at=T0, finished_at=None,
        dataset_id="2026-11-28T064300Z", dataset_hash="d" * 64, code_hash="c" * 64, comment="epochs 10 + ねこ",
        source_key="manifests/run.json",
        hyperparameters={"epochs": 10, "lr": 0.01, "augment": True, "arch": "resnet18"},
        test_hash="t" * 64, classes_key="k" * 64,
    )


def test_a_completed_best_trial_comes_back_whole(store: ExperimentStore) -> None:
    store.start_trial(a_start())
    metrics = {"accuracy": 0.75, "macro_precision": 0.8333, "macro_recall": 0.75, "macro_f1": 0.7333,
               "weighted_f1": 0.7333}
    result = TrialResult(metrics, {"epochs": 10, "lr": 0.01, "augment": True, "arch": "resnet18", "seed": 7},
                         "s3://b/runs/x/model/model.tar.gz", "s3://b/runs/x/evaluation/evaluation.json", T1,
                         best_epoch=9, num_test_images=160)
    with store.decision("CATS") as session:
        session.complete("m-a-0000000000000001", result)
        session.set_best("m-a-0000000000000001")
        session.note_decision("m-a-0000000000000001", DecisionNote("it beat the old one", "m-old", 0.6875))
    [record] = store.list_trials("cats")
    assert normalised(record) == TrialRecord(
        experiment="Cats", trial="m-a-0000000000000001", status="Completed", started_at=T0, finished_at=T1,
        dataset_id="2026-11-28T064300Z", dataset_hash="d" * 64, code_hash="c" * 64, comment="epochs 10 + ねこ",
        source_key="manifests/run.json",
        hyperparameters={"epochs": 10, "lr": 0.01, "augment": True, "arch": "resnet18", "seed": 7},
        metrics=metrics, model_location="s3://b/runs/x/model/model.tar.gz",
        evaluation_location="s3://b/runs/x/evaluation/evaluation.json", is_best=True, test_hash="t" * 64,
        classes_key="k" * 64, decision="it beat the old one", compared_with="m-old", champion_value=0.6875,
        best_epoch=9, num_test_images=160,
    )
    with store.decision("cats") as session:  # a later decision without a champion figure clears it
        session.note_decision("m-a-0000000000000001", DecisionNote("first of its kind"))
    [record] = store.list_trials("Cats")
    assert (record.decision, record.compared_with, record.champion_value) == ("first of its kind", "", None)


def test_a_failed_trial_keeps_its_cause_and_never_the_flag(store: ExperimentStore) -> None:
    store.start_trial(a_start())
    store.fail_trial("cats", "m-a-0000000000000001", "States.TaskFailed: " + "x" * 3000, T1)
    [record] = store.list_trials()
    assert (record.status, record.is_best, normalised(record).finished_at) == ("Failed", False, T1)
    assert record.error.startswith("States.TaskFailed: xxx") and len(record.error) == 2000
    store.fail_trial("cats", "m-never-registered", "boom", T1)  # nothing to fail: no error
    assert [t.trial for t in store.list_trials()] == ["m-a-0000000000000001"]


def test_a_completed_trial_is_not_failed_afterwards(store: ExperimentStore) -> None:
    store.start_trial(a_start())
    with store.decision("cats") as session:
        session.complete("m-a-0000000000000001", TrialResult({"macro_f1": 0.5}, {}, "m", "e", T1))
    store.fail_trial("cats", "m-a-0000000000000001", "NotifyFailed", T1)
    [record] = store.list_trials()
    assert (record.status, record.error) == ("Completed", "")


def test_experiments_are_listed_by_the_name_they_were_created_with(store: ExperimentStore) -> None:
    store.start_trial(a_start("m-a-0000000000000001", "Cats"))
    store.start_trial(a_start("m-b-0000000000000002", "CATS"))
    store.start_trial(a_start("m-c-0000000000000003", "dogs"))
    assert sorted((t.experiment, t.trial) for t in store.list_trials()) == [
        ("Cats", "m-a-0000000000000001"), ("Cats", "m-b-0000000000000002"), ("dogs", "m-c-0000000000000003")]
    assert [t.trial for t in store.list_trials("dogs")] == ["m-c-0000000000000003"]
    assert store.list_trials("birds") == []


def test_what_would_not_fit_a_trial_component_is_refused(store: ExperimentStore) -> None:
    with pytest.raises(LimitExceeded, match="2501 characters, more than SageMaker's 2500"):
        store.start_trial(replace(a_start(), hyperparameters={"note": "n" * 2501}))
    too_many = {f"p{i}": i for i in range(301)}
    with pytest.raises(LimitExceeded, match="more than SageMaker's 300"):
        store.start_trial(replace(a_start(), hyperparameters=too_many))
    assert store.list_trials() == []


def test_a_trial_that_is_not_there_cannot_take_the_flag(store: ExperimentStore) -> None:
    store.start_trial(a_start())
    with pytest.raises(LookupError, match="no trial m-ghost in experiment"), store.decision("cats") as session:
        session.set_best("m-ghost")
    assert [t.is_best for t in store.list_trials()] == [False]
