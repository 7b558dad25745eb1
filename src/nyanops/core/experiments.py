"""What a trial records, and the interface of an experiment store (SageMaker Experiments on AWS,
SQLite locally). Both stores keep the same fields and the same exactly-one-best rule."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


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
    model_location: str = ""
    evaluation_location: str = ""


@dataclass
class TrialResult:
    """What a finished evaluation adds."""

    metrics: dict[str, float]
    per_class_f1: dict[str, float]
    confusion_matrix: dict[str, Any]
    hyperparameters: dict[str, Any]
    model_location: str
    evaluation_location: str
    finished_at: datetime
    best_epoch: int | None = None
    num_test_images: int | None = None


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
    per_class_f1: dict[str, float] = field(default_factory=dict)
    confusion_matrix: dict[str, Any] = field(default_factory=dict)
    model_location: str = ""
    evaluation_location: str = ""
    is_best: bool = False
    error: str = ""

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


@dataclass(frozen=True)
class BestOutcome:
    is_best: bool
    best_trial: str | None
    previous_best: str | None


class ExperimentBusy(Exception):
    """Another evaluation of the same experiment holds the decision; retry shortly.

    The class name is the error name Step Functions sees, and the state machine retries on it."""


class ExperimentStore(Protocol):
    def start_trial(self, start: TrialStart) -> None:
        """Create the experiment if missing and the trial (idempotent: a retry changes nothing)."""

    def complete_trial(self, experiment: str, trial: str, result: TrialResult, primary_metric: str) -> BestOutcome:
        """Record the results and re-decide the best trial atomically for the experiment."""

    def fail_trial(self, experiment: str, trial: str, error: str, finished_at: datetime) -> None:
        """Mark the trial failed with the error; a failed trial is never best."""

    def list_trials(self, experiment: str | None = None) -> list[TrialRecord]:
        """Every trial (of one experiment, or of all)."""
