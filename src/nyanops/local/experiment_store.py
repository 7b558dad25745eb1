"""The experiment store on one machine: SQLite with the fields RecordResults writes to SageMaker
Experiments, and the same exactly-one-best rule. The decision runs inside ``BEGIN IMMEDIATE``,
which serialises writers across processes, so two evaluations finishing at once cannot both win."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from nyanops.core import best_model
from nyanops.core.experiments import BestOutcome, TrialRecord, TrialResult, TrialStart


def _ts(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class SQLiteExperimentStore:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._db = conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def start_trial(self, start: TrialStart) -> None:
        with self._transaction() as db:
            db.execute(
                """INSERT OR IGNORE INTO trials (experiment, trial, status, started_at, execution_name, dataset_id,
                   dataset_hash, code_hash, comment, source_key, hyperparameters)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    start.experiment,
                    start.trial,
                    best_model.IN_PROGRESS,
                    _ts(start.started_at),
                    start.execution_name,
                    start.dataset_id,
                    start.dataset_hash,
                    start.code_hash,
                    start.comment,
                    start.source_key,
                    json.dumps(start.hyperparameters),
                ),
            )

    def complete_trial(self, experiment: str, trial: str, result: TrialResult, primary_metric: str) -> BestOutcome:
        with self._transaction() as db:
            db.execute(
                """UPDATE trials SET status = ?, finished_at = ?, metrics = ?, per_class_f1 = ?, confusion_matrix = ?,
                   hyperparameters = ?, model_location = ?, evaluation_location = ?, best_epoch = ?, error = ''
                   WHERE experiment = ? AND trial = ?""",
                (
                    best_model.COMPLETED,
                    _ts(result.finished_at),
                    json.dumps(result.metrics),
                    json.dumps(result.per_class_f1),
                    json.dumps(result.confusion_matrix),
                    json.dumps(result.hyperparameters),
                    result.model_location,
                    result.evaluation_location,
                    result.best_epoch,
                    experiment,
                    trial,
                ),
            )
            return self._redecide_best(db, experiment, trial, primary_metric)

    def fail_trial(self, experiment: str, trial: str, error: str, finished_at: datetime) -> None:
        with self._transaction() as db:
            db.execute(
                # A trial whose results are recorded stays valid even if a later step is interrupted.
                "UPDATE trials SET status = ?, finished_at = ?, error = ?, is_best = 0 "
                "WHERE experiment = ? AND trial = ? AND status != ?",
                (best_model.FAILED, _ts(finished_at), error, experiment, trial, best_model.COMPLETED),
            )

    def _redecide_best(self, db: sqlite3.Connection, experiment: str, trial: str, metric: str) -> BestOutcome:
        rows = db.execute(
            "SELECT trial, status, metrics, finished_at, is_best FROM trials WHERE experiment = ?", (experiment,)
        ).fetchall()
        previous = next((r["trial"] for r in rows if r["is_best"]), None)
        best = best_model.choose_best(
            [
                best_model.Candidate(
                    r["trial"],
                    r["status"],
                    best_model.metric_value(json.loads(r["metrics"] or "{}"), metric),
                    _dt(r["finished_at"]),
                )
                for r in rows
            ],
            metric,
        )
        db.execute("UPDATE trials SET is_best = 0 WHERE experiment = ? AND is_best = 1", (experiment,))
        if best is not None:
            db.execute("UPDATE trials SET is_best = 1 WHERE experiment = ? AND trial = ?", (experiment, best))
        return BestOutcome(is_best=best == trial, best_trial=best, previous_best=previous)

    def list_trials(self, experiment: str | None = None) -> list[TrialRecord]:
        if experiment:
            rows = self._db.execute(
                "SELECT * FROM trials WHERE experiment = ? ORDER BY started_at", (experiment,)
            ).fetchall()
        else:
            rows = self._db.execute("SELECT * FROM trials ORDER BY experiment, started_at").fetchall()
        return [_record(r) for r in rows]

    def delete_experiment(self, experiment: str) -> int:
        with self._transaction() as db:
            return db.execute("DELETE FROM trials WHERE experiment = ?", (experiment,)).rowcount


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
        per_class_f1=j("per_class_f1"),
        confusion_matrix=j("confusion_matrix"),
        model_location=r["model_location"],
        evaluation_location=r["evaluation_location"],
        is_best=bool(r["is_best"]),
        error=r["error"] or "",
    )
