"""What a trial records, and the interface of an experiment store (SageMaker Experiments on AWS,
SQLite locally). Both stores keep the same fields, enforce the same AWS limits and the same
exactly-one-best rule.

A record holds only what fits SageMaker's trial-component limits (300 parameters, 2,500 characters
a value): the headline metrics, the inputs that identify the trial, the best-model decision. The
confusion matrix and the per-class figures of any number of classes stay in ``evaluation.json``,
referenced by ``evaluation_location``; readers (the report, ``compare``) load them from there,
validated with ``nyanops.core.evaluation_report``.

The best-model decision is made inside ``ExperimentStore.decision(experiment)``: a session that
holds the experiment's lock (DynamoDB lease on AWS, ``BEGIN IMMEDIATE`` locally) for everything read
and written in it, so two trials finishing at once cannot both become best
(``nyanops.core.best_model.record_and_decide``).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from nyanops.core import limits

# The record's fields as trial-component parameters (the SageMaker store writes these names; the SQLite
# store checks the same dictionary against the same limits before it writes its columns).
HP_PREFIX = "hp:"
# The seed's Experiments column names for the macro metrics.
SEED_NAMES = {"macro_precision": "precision", "macro_recall": "recall", "macro_f1": "f1"}
COMPLETED = "Completed"
FAILED = "Failed"
IN_PROGRESS = "InProgress"
# A decision text is a few lines; bounded so the record always fits (and so does the notification).
DECISION_TEXT_MAX = 1000
MAX_ERROR = 2000


@dataclass
class TrialStart:
    """What is known when a run starts (from the execution input)."""

    experiment: str
    trial: str
    execution_name: str
    dataset_id: str
    dataset_hash: str
    code_hash: str
    comment: str
    hyperparameters: dict[str, Any]
    source_key: str
    started_at: datetime
    # The identity of the test split ("the same test set" for the best-model decision) and of the class
    # list; both hashes, so any number of classes fits a record.
    test_hash: str = ""
    classes_key: str = ""


@dataclass
class TrialResult:
    """What a finished evaluation adds (headline figures only: the rest stays in evaluation.json)."""

    metrics: dict[str, float]
    hyperparameters: dict[str, Any]
    model_location: str
    evaluation_location: str
    finished_at: datetime
    best_epoch: int | None = None
    num_test_images: int | None = None
    # The completed trial whose results these are (same dataset content, code and recipe): nothing was trained.
    reused_from: str = ""


@dataclass(frozen=True)
class DecisionNote:
    """Why the best flag moved or stayed when this trial finished, with the figures that decided."""

    text: str
    compared_with: str = ""  # the best trial it was compared with ("" when there was none)
    champion_value: float | None = None  # that trial's primary metric on THIS trial's test set


@dataclass
class TrialRecord:
    """One row of the comparison: a trial as stored."""

    experiment: str
    trial: str
    status: str
    started_at: datetime | None
    finished_at: datetime | None
    dataset_id: str = ""
    dataset_hash: str = ""
    code_hash: str = ""
    comment: str = ""
    source_key: str = ""
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    model_location: str = ""
    evaluation_location: str = ""
    is_best: bool = False
    error: str = ""
    test_hash: str = ""
    classes_key: str = ""
    decision: str = ""
    compared_with: str = ""
    champion_value: float | None = None
    best_epoch: int | None = None
    num_test_images: int | None = None
    # Not trained: the results (metrics, model, evaluation) of this earlier trial, which had the same dataset
    # content, code and recipe (nyanops.core.reuse).
    reused_from: str = ""

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class ExperimentBusy(Exception):
    """Another evaluation of the same experiment holds the decision; retry shortly.

    The class name is the error name Step Functions sees, and the state machine retries on it."""


class ExperimentSession(Protocol):
    """Reads and writes of one experiment while its lock is held (see ``ExperimentStore.decision``)."""

    def trials(self) -> list[TrialRecord]:
        """Every trial of the experiment, as stored now."""

    def complete(self, trial: str, result: TrialResult) -> None:
        """Record a finished evaluation: status Completed, the metrics and locations."""

    def set_best(self, trial: str) -> None:
        """Make ``trial`` the experiment's one best trial (and no other)."""

    def note_decision(self, trial: str, note: DecisionNote) -> None:
        """Store why the flag moved or stayed, with the trial."""


class ExperimentStore(Protocol):
    def start_trial(self, start: TrialStart) -> None:
        """Create the experiment if missing and the trial (idempotent: a retry changes nothing)."""

    def decision(self, experiment: str) -> AbstractContextManager[ExperimentSession]:
        """The experiment's lock for the best-model decision: every read and write in the session."""

    def fail_trial(self, experiment: str, trial: str, error: str, finished_at: datetime) -> None:
        """Mark the trial failed with the error; a failed trial is never best. A trial whose results are
        recorded stays Completed (a later step failing does not undo them)."""

    def list_trials(self, experiment: str | None = None) -> list[TrialRecord]:
        """Every trial (of one experiment, or of all); ``experiment`` matches case-insensitively."""


# -- the record as trial-component parameters ----------------------------------------------------
def _s(value: Any) -> dict[str, Any]:
    return {"StringValue": str(value)}


def _n(value: float) -> dict[str, Any]:
    return {"NumberValue": float(value)}


def parameter_value(value: Any) -> dict[str, Any]:
    """One value as SageMaker stores it: numbers as NumberValue, the rest (booleans too) as text."""
    if isinstance(value, bool):
        return _s("true" if value else "false")
    if isinstance(value, (int, float)):
        return _n(value)
    return _s(value)


def start_parameters(start: TrialStart) -> dict[str, dict[str, Any]]:
    params: dict[str, dict[str, Any]] = {
        "execution": _s(start.execution_name),
        "dataset_id": _s(start.dataset_id),
        "dataset_hash": _s(start.dataset_hash),
        "test_hash": _s(start.test_hash),
        "classes_key": _s(start.classes_key),
        "code_hash": _s(start.code_hash),
        "comment": _s(start.comment),
        "source_key": _s(start.source_key),
        "is_best": _n(0),
    }
    params.update({HP_PREFIX + k: parameter_value(v) for k, v in start.hyperparameters.items()})
    return params


def result_parameters(result: TrialResult) -> dict[str, dict[str, Any]]:
    params: dict[str, dict[str, Any]] = {HP_PREFIX + k: parameter_value(v) for k, v in result.hyperparameters.items()}
    for key, value in result.metrics.items():
        params[key] = _n(value)
        if key in SEED_NAMES:
            params[SEED_NAMES[key]] = _n(value)
    params["model_location"] = _s(result.model_location)
    params["evaluation_location"] = _s(result.evaluation_location)
    if result.best_epoch is not None:
        params["best_epoch"] = _n(result.best_epoch)
    if result.num_test_images is not None:
        params["num_test_images"] = _n(result.num_test_images)
    if result.reused_from:
        params["reused_from"] = _s(result.reused_from)
    return params


def decision_parameters(note: DecisionNote) -> dict[str, dict[str, Any]]:
    params = {"decision": _s(limits.clip(note.text, DECISION_TEXT_MAX)), "compared_with": _s(note.compared_with)}
    if note.champion_value is not None:
        params["champion_value"] = _n(note.champion_value)
    return params


def error_parameters(error: str) -> dict[str, dict[str, Any]]:
    return {"error": _s(limits.clip(error, MAX_ERROR)), "is_best": _n(0)}



def record_parameters(record: TrialRecord, execution_name: str = "") -> dict[str, dict[str, Any]]:
    """Everything ``record`` holds, as the trial component's parameters (what SageMaker would store).

    The SQLite store checks this against the same limits before it writes, so a record that would not
    fit SageMaker Experiments does not fit locally either.
    """
    params = start_parameters(
        TrialStart(
            record.experiment, record.trial, execution_name or record.trial, record.dataset_id,
            record.dataset_hash, record.code_hash, record.comment, record.hyperparameters, record.source_key,
            record.started_at or datetime.min, record.test_hash, record.classes_key,
        )
    )
    if record.status == COMPLETED:
        params.update(
            result_parameters(
                TrialResult(record.metrics, record.hyperparameters, record.model_location, record.evaluation_location,
                            record.finished_at or datetime.min, record.best_epoch, record.num_test_images,
                            record.reused_from)
            )
        )
    if record.decision:
        params.update(decision_parameters(DecisionNote(record.decision, record.compared_with, record.champion_value)))
    if record.error:
        params.update(error_parameters(record.error))
    params["is_best"] = _n(1 if record.is_best else 0)
    return params
