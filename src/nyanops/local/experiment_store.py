"""The experiment store on one machine: SQLite with the fields RecordResults writes to SageMaker
Experiments, the same limits (a record that would not fit a trial component is refused here too) and
the same exactly-one-best rule.

Experiments are keyed case-insensitively (``naming.experiment_key``), as SageMaker's names are:
``cats`` and ``Cats`` are one experiment, shown under the name it was first created with. The
best-model decision runs in a ``BEGIN IMMEDIATE`` transaction (``decision``), which serialises writers
across processes, so two evaluations finishing at once are decided one after the other; a unique index
keeps one best per experiment even if the decision code were wrong.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from typing import Any

from nyanops.core import limits
from nyanops.core.experiments import (
    COMPLETED,
    FAILED,
    IN_PROGRESS,
    DecisionNote,
    TrialRecord,
    TrialResult,
    TrialStart,
    record_parameters,
)
from nyanops.core.naming import experiment_key


def _ts(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class SQLiteExperimentStore:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._db = conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        # IMMEDIATE takes the write lock at BEGIN: a second writer waits (busy_timeout) instead of reading a
        # state that the first one is about to change (a deferred transaction would read, then fail to write).
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def start_trial(self, start: TrialStart) -> None:
        key = experiment_key(start.experiment)
        with self._transaction() as db:
            known = db.execute("SELECT experiment FROM trials WHERE experiment_key = ? LIMIT 1", (key,)).fetchone()
            experiment = known["experiment"] if known else start.experiment
            record = TrialRecord(
                experiment, start.trial, IN_PROGRESS, start.started_at, None, start.dataset_id, start.dataset_hash,
                start.code_hash, start.comment, start.source_key, dict(start.hyperparameters),
                test_hash=start.test_hash, classes_key=start.classes_key,
            )
            limits.check_trial_parameters(record_parameters(record, start.execution_name))
            db.execute(
                """INSERT OR IGNORE INTO trials (experiment, experiment_key, trial, status, started_at, execution_name,
                   dataset_id, dataset_hash, test_hash, classes_key, code_hash, comment, source_key, hyperparameters)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    experiment, key, start.trial, IN_PROGRESS, _ts(start.started_at), start.execution_name,
                    start.dataset_id, start.dataset_hash, start.test_hash, start.classes_key, start.code_hash,
                    start.comment, start.source_key, json.dumps(start.hyperparameters),
                ),
            )

    @contextmanager
    def decision(self, experiment: str) -> Iterator[SQLiteSession]:
        with self._transaction() as db:
            yield SQLiteSession(db, experiment_key(experiment))

    def fail_trial(self, experiment: str, trial: str, error: str, finished_at: datetime) -> None:
        text = limits.clip(error, 2000)
        with self._transaction() as db:
            # A trial whose results are recorded stays valid even if a later step is interrupted.
            db.execute(
                "UPDATE trials SET status = ?, finished_at = ?, error = ?, is_best = 0 "
                "WHERE experiment_key = ? AND trial = ? AND status != ?",
                (FAILED, _ts(finished_at), text, experiment_key(experiment), trial, COMPLETED),
            )

    def list_trials(self, experiment: str | None = None) -> list[TrialRecord]:
        if experiment:
            rows = self._db.execute(
                "SELECT * FROM trials WHERE experiment_key = ? ORDER BY started_at", (experiment_key(experiment),)
            ).fetchall()
        else:
            rows = self._db.execute("SELECT * FROM trials ORDER BY experiment_key, started_at").fetchall()
        return [_record(r) for r in rows]

    def delete_experiment(self, experiment: str) -> int:
        with self._transaction() as db:
            return db.execute("DELETE FROM trials WHERE experiment_key = ?", (experiment_key(experiment),)).rowcount


class SQLiteSession:
    """One experiment inside a ``BEGIN IMMEDIATE`` transaction: every read and write of the decision."""

    def __init__(self, db: sqlite3.Connection, key: str) -> None:
        self._db = db
        self._key = key

    def trials(self) -> list[TrialRecord]:
        rows = self._db.execute(
            "SELECT * FROM trials WHERE experiment_key = ? ORDER BY started_at", (self._key,)
        ).fetchall()
        return [_record(r) for r in rows]

    def _one(self, trial: str) -> tuple[TrialRecord, str]:
        row = self._db.execute(
            "SELECT * FROM trials WHERE experiment_key = ? AND trial = ?", (self._key, trial)
        ).fetchone()
        if row is None:
            raise LookupError(f"no trial {trial} in experiment {self._key}")
        return _record(row), row["execution_name"] or trial

    def complete(self, trial: str, result: TrialResult) -> None:
        record, execution = self._one(trial)
        after = replace(
            record, status=COMPLETED, finished_at=result.finished_at, metrics=dict(result.metrics),
            hyperparameters=dict(result.hyperparameters), model_location=result.model_location,
            evaluation_location=result.evaluation_location, best_epoch=result.best_epoch,
            num_test_images=result.num_test_images, error="", reused_from=result.reused_from,
        )
        limits.check_trial_parameters(record_parameters(after, execution))
        self._db.execute(
            """UPDATE trials SET status = ?, finished_at = ?, metrics = ?, hyperparameters = ?, model_location = ?,
               evaluation_location = ?, best_epoch = ?, num_test_images = ?, error = '', reused_from = ?
               WHERE experiment_key = ? AND trial = ?""",
            (
                COMPLETED, _ts(result.finished_at), json.dumps(result.metrics), json.dumps(result.hyperparameters),
                result.model_location, result.evaluation_location, result.best_epoch, result.num_test_images,
                result.reused_from, self._key, trial,
            ),
        )

    def set_best(self, trial: str) -> None:
        self._db.execute("UPDATE trials SET is_best = 0 WHERE experiment_key = ? AND is_best = 1", (self._key,))
        changed = self._db.execute(
            "UPDATE trials SET is_best = 1 WHERE experiment_key = ? AND trial = ?", (self._key, trial)
        ).rowcount
        if changed != 1:
            raise LookupError(f"no trial {trial} in experiment {self._key} to flag best")

    def note_decision(self, trial: str, note: DecisionNote) -> None:
        record, execution = self._one(trial)
        after = replace(record, decision=note.text, compared_with=note.compared_with,
                        champion_value=note.champion_value)
        params = record_parameters(after, execution)
        limits.check_trial_parameters(params)
        self._db.execute(
            "UPDATE trials SET decision = ?, compared_with = ?, champion_value = ? "
            "WHERE experiment_key = ? AND trial = ?",
            (params["decision"]["StringValue"], note.compared_with, note.champion_value, self._key, trial),
        )


def _record(r: sqlite3.Row) -> TrialRecord:
    def j(name: str) -> Any:
        return json.loads(r[name] or "{}")

    return TrialRecord(
        experiment=r["experiment"],
        trial=r["trial"],
        status=r["status"],
        started_at=_dt(r["started_at"]),
        finished_at=_dt(r["finished_at"]),
        dataset_id=r["dataset_id"],
        dataset_hash=r["dataset_hash"],
        code_hash=r["code_hash"],
        comment=r["comment"],
        source_key=r["source_key"],
        hyperparameters=j("hyperparameters"),
        metrics=j("metrics"),
        model_location=r["model_location"],
        evaluation_location=r["evaluation_location"],
        is_best=bool(r["is_best"]),
        error=r["error"] or "",
        test_hash=r["test_hash"] or "",
        classes_key=r["classes_key"] or "",
        decision=r["decision"] or "",
        compared_with=r["compared_with"] or "",
        champion_value=r["champion_value"],
        best_epoch=r["best_epoch"],
        num_test_images=r["num_test_images"],
        reused_from=r["reused_from"] or "",
    )
