"""The SQLite experiment store: the same fields, limits and exactly-one-best rule as SageMaker Experiments,
experiments keyed case-insensitively, and the decision serialised by ``BEGIN IMMEDIATE`` across connections."""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from nyanops.core import limits
from nyanops.core.best_model import Verdict, record_and_decide
from nyanops.core.experiments import DecisionNote, TrialResult, TrialStart, record_parameters
from nyanops.local import experiment_store
from nyanops.local.database import connect
from nyanops.local.experiment_store import SQLiteExperimentStore

T0 = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "nyanops.db"


@pytest.fixture
def store(db_path: Path) -> SQLiteExperimentStore:
    return SQLiteExperimentStore(connect(db_path))


def start(store: SQLiteExperimentStore, trial: str, experiment: str = "cats", **fields: Any) -> None:
    options = {"test_hash": "t" * 64, "classes_key": "k", **fields}
    store.start_trial(TrialStart(experiment, trial, trial, "ds", "h", "c", "", {"epochs": 1}, "manifests/x.json",
                                 T0, **options))


def result(f1: float, minutes: int = 0) -> TrialResult:
    metrics = {k: f1 for k in ("accuracy", "macro_precision", "macro_recall", "macro_f1", "weighted_f1")}
    return TrialResult(metrics, {"epochs": 1}, "s3://b/model.tar.gz", "s3://b/evaluation.json",
                       T0 + timedelta(minutes=minutes), best_epoch=1, num_test_images=20)


def finish(store: SQLiteExperimentStore, trial: str, f1: float, experiment: str = "cats") -> Verdict:
    return record_and_decide(store, experiment, trial, "macro_f1", 0.005, result=result(f1)).verdict


def bests(store: SQLiteExperimentStore, experiment: str | None = None) -> list[str]:
    return [t.trial for t in store.list_trials(experiment) if t.is_best]


def test_a_record_round_trips(store: SQLiteExperimentStore) -> None:
    start(store, "t1")
    finish(store, "t1", 0.9)
    [t] = store.list_trials("cats")
    assert (t.status, t.is_best, t.metrics["macro_f1"], t.best_epoch, t.num_test_images) == (
        "Completed", True, 0.9, 1, 20)
    assert t.test_hash == "t" * 64 and t.classes_key == "k" and t.decision.startswith("no trial of this")
    assert (t.model_location, t.evaluation_location) == ("s3://b/model.tar.gz", "s3://b/evaluation.json")


def test_starting_twice_changes_nothing(store: SQLiteExperimentStore) -> None:
    start(store, "t1")
    start(store, "t1", test_hash="other")
    [t] = store.list_trials()
    assert t.test_hash == "t" * 64


def test_experiments_are_case_insensitive(store: SQLiteExperimentStore) -> None:
    start(store, "a", "cats")
    start(store, "b", "CATS")
    start(store, "c", "Cats")
    assert {t.experiment for t in store.list_trials()} == {"cats"}  # the name it was first created with
    assert sorted(t.trial for t in store.list_trials("cAtS")) == ["a", "b", "c"]
    finish(store, "a", 0.5, "CATS")
    finish(store, "b", 0.9, "cats")
    assert bests(store, "Cats") == ["b"]
    store.fail_trial("CATS", "c", "boom", T0)
    assert [t.status for t in store.list_trials("cats") if t.trial == "c"] == ["Failed"]
    assert store.delete_experiment("CaTs") == 3 and store.list_trials() == []


def test_setting_the_best_in_one_experiment_leaves_the_others_alone(store: SQLiteExperimentStore) -> None:
    start(store, "cat-1", "cats")
    start(store, "dog-1", "dogs")
    start(store, "cat-2", "cats")
    finish(store, "cat-1", 0.5, "cats")
    finish(store, "dog-1", 0.2, "dogs")
    finish(store, "cat-2", 0.9, "cats")  # moves the cats flag: the dogs flag must stay
    assert bests(store, "cats") == ["cat-2"] and bests(store, "dogs") == ["dog-1"]
    store.fail_trial("cats", "cat-1", "late", T0)
    assert sorted(bests(store)) == ["cat-2", "dog-1"]


def test_a_failed_trial_never_keeps_the_flag_and_a_completed_one_is_not_failed(store: SQLiteExperimentStore) -> None:
    start(store, "t1")
    store.fail_trial("cats", "t1", "boom", T0)
    [t] = store.list_trials()
    assert (t.status, t.is_best, t.error) == ("Failed", False, "boom")
    start(store, "t2")
    finish(store, "t2", 0.9)
    store.fail_trial("cats", "t2", "a later step failed", T0)
    assert [t.status for t in store.list_trials() if t.trial == "t2"] == ["Completed"]


def test_the_unique_index_refuses_two_bests(store: SQLiteExperimentStore) -> None:
    start(store, "a")
    start(store, "b")
    store._db.execute("UPDATE trials SET is_best = 1 WHERE trial = 'a'")
    with pytest.raises(sqlite3.IntegrityError):
        store._db.execute("UPDATE trials SET is_best = 1 WHERE trial = 'b'")


def test_a_value_sagemaker_would_refuse_is_refused_locally(store: SQLiteExperimentStore) -> None:
    with pytest.raises(limits.LimitExceeded, match="hp:note: the value has 2501 characters"):
        store.start_trial(TrialStart("cats", "t", "t", "ds", "h", "c", "", {"note": "x" * 2501}, "k", T0))
    many = {f"p{i}": i for i in range(limits.TRIAL_COMPONENT_PARAMETERS_MAX)}
    with pytest.raises(limits.LimitExceeded, match="more than SageMaker's 300"):
        store.start_trial(TrialStart("cats", "t", "t", "ds", "h", "c", "", many, "k", T0))
    assert store.list_trials() == []  # nothing half written
    start(store, "t1")
    with store.decision("cats") as session:
        session.note_decision("t1", DecisionNote("x" * 5000, "t0", 0.5))
    [t] = store.list_trials()
    assert len(t.decision) == 1000 and t.decision.endswith(" [...]")


@pytest.mark.parametrize("field", ["model_location", "evaluation_location"])
def test_a_completion_sagemaker_would_refuse_is_refused_locally_and_the_trial_stays_open(
    store: SQLiteExperimentStore, field: str
) -> None:
    start(store, "t1")
    too_long = replace(result(0.9), **{field: "s3://b/" + "m" * 2494})
    with pytest.raises(limits.LimitExceeded, match=f"{field}: the value has 2501 characters"), \
            store.decision("cats") as session:
        session.complete("t1", too_long)
    [t] = store.list_trials()
    assert (t.status, t.metrics, t.model_location) == ("InProgress", {}, "")


def _first_refused_metric_count(store: SQLiteExperimentStore, note: DecisionNote | None = None,
                                failed_first: bool = False, **fields: Any) -> int:
    """The fewest metrics with which completing a fresh trial (and noting ``note``) is refused: the 300-parameter
    limit."""
    low, high = 0, limits.TRIAL_COMPONENT_PARAMETERS_MAX
    while low < high:
        n = (low + high) // 2
        trial = f"t-{n}-{len(store.list_trials())}"
        start(store, trial)
        if failed_first:
            store.fail_trial("cats", trial, "an earlier attempt failed", T0)
        attempt = replace(result(0.9), metrics={f"m{i}": 0.5 for i in range(n)}, **fields)
        try:
            with store.decision("cats") as session:
                session.complete(trial, attempt)
                if note is not None:
                    session.note_decision(trial, note)
            low = n + 1
        except limits.LimitExceeded:
            high = n
    return low


def test_the_best_epoch_and_test_image_count_are_counted_as_parameters(store: SQLiteExperimentStore) -> None:
    with_both = _first_refused_metric_count(store)
    assert 0 < with_both < limits.TRIAL_COMPONENT_PARAMETERS_MAX
    # The last completion accepted holds exactly SageMaker's 300 parameters, counted on the record as stored.
    [last] = [t for t in store.list_trials() if t.status == "Completed" and len(t.metrics) == with_both - 1]
    assert len(record_parameters(last, last.trial)) == limits.TRIAL_COMPONENT_PARAMETERS_MAX
    assert _first_refused_metric_count(store, best_epoch=None) == with_both + 1
    assert _first_refused_metric_count(store, num_test_images=None) == with_both + 1
    # The hyperparameters the training actually used (more than the manifest gave) count, not the manifest's;
    # a completion clears an earlier failure's error, so the error is not counted.
    used = {"epochs": 1, **{f"h{i}": i for i in range(9)}}
    assert _first_refused_metric_count(store, hyperparameters=used) == with_both - 9
    assert _first_refused_metric_count(store, failed_first=True) == with_both


def test_the_champions_figure_of_a_decision_is_counted_as_a_parameter(store: SQLiteExperimentStore) -> None:
    with_figure = _first_refused_metric_count(store, DecisionNote("kept", "t0", 0.5))
    assert _first_refused_metric_count(store, DecisionNote("kept", "t0", None)) == with_figure + 1
    assert _first_refused_metric_count(store) > with_figure  # a decision adds parameters too


@pytest.mark.parametrize(
    "field", ["dataset_id", "dataset_hash", "code_hash", "comment", "source_key", "test_hash", "classes_key"]
)
def test_any_start_field_sagemaker_would_refuse_is_refused_and_nothing_is_written(
    store: SQLiteExperimentStore, field: str
) -> None:
    trial = TrialStart("cats", "t", "t", "ds", "h", "c", "", {"epochs": 1}, "manifests/x.json", T0, "t" * 64, "k")
    with pytest.raises(limits.LimitExceeded, match=f"{field}: the value has 2501 characters"):
        store.start_trial(replace(trial, **{field: "x" * 2501}))
    assert store.list_trials() == []


def test_a_trial_without_a_test_set_identity_reads_back_without_one(store: SQLiteExperimentStore) -> None:
    """An unknown identity must stay unknown ("" never equals another trial's): the best-model decision then
    re-scores instead of comparing figures from two test sets."""
    start(store, "old", test_hash="", classes_key="")
    [t] = store.list_trials()
    assert (t.test_hash, t.classes_key) == ("", "")


def test_completing_a_missing_trial_names_it(store: SQLiteExperimentStore) -> None:
    with pytest.raises(LookupError, match="no trial ghost in experiment cats"), store.decision("Cats") as session:
        session.complete("ghost", result(0.9))


def test_a_missing_trial_cannot_be_flagged(store: SQLiteExperimentStore) -> None:
    with pytest.raises(LookupError, match="no trial ghost"), store.decision("cats") as session:
        session.set_best("ghost")


def test_the_decision_is_serialised_across_connections(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Eight evaluations of one experiment decide at once, each on its own connection, with the read of the
    champion slowed down: BEGIN IMMEDIATE makes them decide one after the other (a deferred BEGIN would let two
    read the same champion; SQLite then refuses the second writer, or both flag themselves)."""
    setup = SQLiteExperimentStore(connect(db_path))
    scores = [0.61, 0.93, 0.72, 0.88, 0.95, 0.51, 0.85, 0.70]
    for i in range(len(scores)):
        start(setup, f"t{i}")
    original = experiment_store.SQLiteSession.trials

    def slow(self: Any) -> Any:
        records = original(self)
        time.sleep(0.05)
        return records

    monkeypatch.setattr(experiment_store.SQLiteSession, "trials", slow)
    barrier = threading.Barrier(len(scores))
    errors: list[BaseException] = []
    verdicts: list[Verdict] = []

    def decide(i: int) -> None:
        mine = SQLiteExperimentStore(connect(db_path))
        barrier.wait()
        try:
            decided = record_and_decide(mine, "cats", f"t{i}", "macro_f1", 0.005, result=result(scores[i]))
            verdicts.append(decided.verdict)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=decide, args=(i,)) for i in range(len(scores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert bests(setup) == [f"t{scores.index(max(scores))}"]
    assert verdicts.count(Verdict.FIRST) == 1  # one decision chain
    decisions = [t.decision for t in setup.list_trials()]
    assert sum("no trial of this experiment held the best flag" in d for d in decisions) == 1


def test_an_older_database_is_brought_up_to_date(tmp_path: Path) -> None:
    """A database of the first release: no experiment keys, and "cats" / "Cats" each with a best trial."""
    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.executescript("""
        CREATE TABLE trials (experiment TEXT NOT NULL, trial TEXT NOT NULL, status TEXT NOT NULL, started_at TEXT,
            finished_at TEXT, execution_name TEXT, dataset_id TEXT DEFAULT '', dataset_hash TEXT DEFAULT '',
            code_hash TEXT DEFAULT '', comment TEXT DEFAULT '', source_key TEXT DEFAULT '',
            hyperparameters TEXT DEFAULT '{}', metrics TEXT DEFAULT '{}', per_class_f1 TEXT DEFAULT '{}',
            confusion_matrix TEXT DEFAULT '{}', model_location TEXT DEFAULT '', evaluation_location TEXT DEFAULT '',
            best_epoch INTEGER, is_best INTEGER NOT NULL DEFAULT 0, error TEXT DEFAULT '',
            PRIMARY KEY (experiment, trial));
        INSERT INTO trials (experiment, trial, status, is_best) VALUES ('cats', 'a', 'Completed', 1);
        INSERT INTO trials (experiment, trial, status, is_best) VALUES ('Cats', 'b', 'Completed', 1);
    """)
    old.commit()
    old.close()
    store = SQLiteExperimentStore(connect(path))
    assert bests(store, "CATS") == ["a"]
    assert sorted(t.trial for t in store.list_trials("cats")) == ["a", "b"]


def test_a_database_brought_up_to_date_by_another_process_meanwhile_is_not_migrated_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes open a new root at once (two `dataset add`, a `watch` and a `run`): both find the newer
    columns missing; the one that gets the write lock second must find them added, not add them again."""
    from nyanops.local import database

    path = tmp_path / "nyanops.db"
    first_look = database._needs_migration

    def meanwhile(conn: sqlite3.Connection) -> bool:
        needed = first_look(conn)
        monkeypatch.setattr(database, "_needs_migration", first_look)
        connect(path).close()  # the other process: opens the same file and migrates it completely
        return needed

    monkeypatch.setattr(database, "_needs_migration", meanwhile)
    conn = connect(path)  # would fail with "duplicate column name" if it trusted its first look
    have = {r["name"] for r in conn.execute("PRAGMA table_info(trials)")}
    assert set(database.TRIAL_COLUMNS_ADDED) <= have
    conn.close()
