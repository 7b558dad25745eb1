"""The experiment store on AWS: SageMaker Experiments through plain boto3 (the Lambda stays small).

Experiment = the manifest's experiment; trial = one execution; the pipeline's own trial component
``<trial>-results`` carries what the seed logged with ``Tracker.log_parameters`` (accuracy,
precision, recall, f1, comment, is_best) plus the dataset, the test-set identity, the code,
hyperparameters, locations and the best-model decision (``nyanops.core.experiments``: the parameter
names, and nothing that could exceed SageMaker's 300 parameters or 2,500 characters a value). The
training and processing jobs join the same trial through ``ExperimentConfig``.

Registering a trial is idempotent step by step (experiment, trial, component, association: each
step is done when it is missing, so a retry after a partial attempt completes it), and every call
backs off on throttling before giving up with ``ExperimentsThrottled`` (which the state machine
retries). Experiment names are case-insensitive in SageMaker: the lock is taken on
``naming.experiment_key`` and records carry the name SageMaker has.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

from botocore.exceptions import ClientError

from nyanops.aws.experiment_lock import DynamoExperimentLock
from nyanops.core import limits
from nyanops.core.experiments import (
    COMPLETED,
    FAILED,
    HP_PREFIX,
    IN_PROGRESS,
    MAX_ERROR,
    DecisionNote,
    TrialRecord,
    TrialResult,
    TrialStart,
    decision_parameters,
    error_parameters,
    result_parameters,
    start_parameters,
)
from nyanops.core.naming import experiment_key

RESULTS_SUFFIX = "-results"
# Error codes SageMaker answers when a caller exceeds its request rate (retried with backoff here).
THROTTLING_CODES = frozenset({"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"})
METRIC_NAMES = ("accuracy", "macro_precision", "macro_recall", "macro_f1", "weighted_f1")


class ExperimentsThrottled(Exception):
    """SageMaker kept throttling after our retries; the class name is what Step Functions retries on."""


def results_component(trial: str) -> str:
    return f"{trial}{RESULTS_SUFFIX}"


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _message(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", "")).lower()


def _already_exists(exc: ClientError) -> bool:
    return _code(exc) in ("ResourceInUse", "ValidationException") and "exist" in _message(exc)


def _already_associated(exc: ClientError) -> bool:
    return _code(exc) in ("ResourceInUse", "ValidationException") and "already" in _message(exc)


def _not_found(exc: ClientError) -> bool:
    return _code(exc) == "ResourceNotFound" or (_code(exc) == "ValidationException" and "not" in _message(exc))


def throttled_call(
    client: Any, operation: str, kwargs: dict[str, Any], attempts: int, backoff: float, sleep: Callable[[float], None]
) -> Any:
    """``client.<operation>(**kwargs)``, retried with exponential backoff while SageMaker throttles; after
    ``attempts`` throttled tries, ``ExperimentsThrottled`` (the state machine retries on that name)."""
    for attempt in range(attempts):
        try:
            return getattr(client, operation)(**kwargs)
        except ClientError as exc:
            if _code(exc) not in THROTTLING_CODES:
                raise
            if attempt + 1 < attempts:
                sleep(backoff * 2**attempt)
    raise ExperimentsThrottled(f"SageMaker throttled {operation} {attempts} times; retry later")


class SageMakerExperimentStore:
    def __init__(
        self,
        client: Any,
        lock: DynamoExperimentLock | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
        *,
        attempts: int = 6,
        backoff_seconds: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._sm = client
        self._lock = lock
        self._clock = clock
        self._attempts = attempts
        self._backoff = backoff_seconds
        self._sleep = sleep

    def call(self, operation: str, **kwargs: Any) -> Any:
        """``client.<operation>(**kwargs)``, retried with exponential backoff while SageMaker throttles."""
        return throttled_call(self._sm, operation, kwargs, self._attempts, self._backoff, self._sleep)

    # -- writing ---------------------------------------------------------------------------------
    def start_trial(self, start: TrialStart) -> None:
        params = start_parameters(start)
        limits.check_trial_parameters(params)
        self._ensure_experiment(start.experiment)
        try:
            self.call("create_trial", TrialName=start.trial, ExperimentName=start.experiment,
                      DisplayName=start.trial)
        except ClientError as exc:
            if not _already_exists(exc):
                raise
        name = results_component(start.trial)
        try:
            self.call(
                "create_trial_component",
                TrialComponentName=name,
                DisplayName="Results",
                Status={"PrimaryStatus": IN_PROGRESS, "Message": "training"},
                StartTime=start.started_at,
                Parameters=params,
            )
        except ClientError as exc:
            if not _already_exists(exc):
                raise
        # Always (re)associate: an earlier attempt may have created the component and failed right here.
        try:
            self.call("associate_trial_component", TrialComponentName=name, TrialName=start.trial)
        except ClientError as exc:
            if not _already_associated(exc):
                raise

    @contextmanager
    def decision(self, experiment: str) -> Iterator[SageMakerSession]:
        with self._writer_lock().hold(experiment_key(experiment)):
            yield SageMakerSession(self, experiment)

    def fail_trial(self, experiment: str, trial: str, error: str, finished_at: datetime) -> None:
        name = results_component(trial)
        with self._writer_lock().hold(experiment_key(experiment)):
            try:
                described = self.call("describe_trial_component", TrialComponentName=name)
            except ClientError as exc:
                if _not_found(exc):
                    return
                raise
            # A trial whose results are recorded stays valid even if a later step fails.
            if (described.get("Status") or {}).get("PrimaryStatus") == COMPLETED:
                return
            params = {**(described.get("Parameters") or {}), **error_parameters(error)}
            limits.check_trial_parameters(params)
            self.call(
                "update_trial_component",
                TrialComponentName=name,
                Status={"PrimaryStatus": FAILED,
                        "Message": limits.clip(error, limits.TRIAL_COMPONENT_STATUS_MESSAGE_MAX)},
                EndTime=finished_at,
                Parameters=params,
            )

    def _writer_lock(self) -> DynamoExperimentLock:
        if self._lock is None:
            raise RuntimeError("this SageMakerExperimentStore was opened for reading (no experiment lock)")
        return self._lock

    def _ensure_experiment(self, experiment: str) -> None:
        try:
            self.call("describe_experiment", ExperimentName=experiment)
            return
        except ClientError as exc:
            if not _not_found(exc):
                raise
        try:
            self.call("create_experiment", ExperimentName=experiment, DisplayName=experiment,
                      Description="nyanops experiment")
        except ClientError as exc:
            if not _already_exists(exc):  # two runs created it at once
                raise

    def parameters(self, trial: str) -> dict[str, Any]:
        try:
            described = self.call("describe_trial_component", TrialComponentName=results_component(trial))
        except ClientError as exc:
            if _not_found(exc):
                return {}
            raise
        return dict(described.get("Parameters") or {})

    def update(self, trial: str, params: dict[str, Any], **fields: Any) -> None:
        """Write the component's parameters (the full merged set: correct whether SageMaker merges or
        replaces them), after checking them against SageMaker's limits."""
        limits.check_trial_parameters(params)
        self.call("update_trial_component", TrialComponentName=results_component(trial), Parameters=params, **fields)

    # -- reading ---------------------------------------------------------------------------------
    def list_trials(self, experiment: str | None = None) -> list[TrialRecord]:
        experiments = [self._experiment_name(experiment)] if experiment else self._experiment_names()
        out: list[TrialRecord] = []
        for exp in experiments:
            if exp is None:
                continue
            for trial in self._trial_names(exp):
                record = self._record(exp, trial)
                if record is not None:
                    out.append(record)
        return out

    def _experiment_name(self, experiment: str) -> str | None:
        """The name SageMaker holds for ``experiment`` (names are case-insensitive), or None."""
        try:
            return str(self.call("describe_experiment", ExperimentName=experiment)["ExperimentName"])
        except ClientError as exc:
            if _not_found(exc):
                return None
            raise

    def _experiment_names(self) -> list[str]:
        names: list[str] = []
        kwargs: dict[str, Any] = {}
        while True:
            page = self.call("list_experiments", **kwargs)
            names += [e["ExperimentName"] for e in page.get("ExperimentSummaries", [])]
            if not page.get("NextToken"):
                return names
            kwargs["NextToken"] = page["NextToken"]

    def _trial_names(self, experiment: str) -> list[str]:
        names: list[str] = []
        kwargs: dict[str, Any] = {"ExperimentName": experiment}
        while True:
            try:
                page = self.call("list_trials", **kwargs)
            except ClientError as exc:
                if _not_found(exc):
                    return []
                raise
            names += [t["TrialName"] for t in page.get("TrialSummaries", [])]
            if not page.get("NextToken"):
                return names
            kwargs["NextToken"] = page["NextToken"]

    def _record(self, experiment: str, trial: str) -> TrialRecord | None:
        try:
            d = self.call("describe_trial_component", TrialComponentName=results_component(trial))
        except ClientError as exc:
            if _not_found(exc):
                return None
            raise
        return record_from_component(experiment, trial, d)


class SageMakerSession:
    """One experiment while its DynamoDB lease is held: the reads and writes of the best-model decision."""

    def __init__(self, store: SageMakerExperimentStore, experiment: str) -> None:
        self._store = store
        self._experiment = experiment

    def trials(self) -> list[TrialRecord]:
        return self._store.list_trials(self._experiment)

    def complete(self, trial: str, result: TrialResult) -> None:
        params = {**self._store.parameters(trial), **result_parameters(result)}
        params.pop("error", None)
        self._store.update(
            trial, params,
            Status={"PrimaryStatus": COMPLETED, "Message": "evaluated"},
            EndTime=result.finished_at,
            OutputArtifacts={
                "model": {"Value": result.model_location, "MediaType": "application/x-tar"},
                "evaluation": {"Value": result.evaluation_location, "MediaType": "application/json"},
            },
        )

    def set_best(self, trial: str) -> None:
        found = False
        for r in self.trials():
            want = r.trial == trial
            found = found or want
            if r.is_best != want:
                params = {**self._store.parameters(r.trial), "is_best": {"NumberValue": 1.0 if want else 0.0}}
                self._store.update(r.trial, params)
        if not found:
            raise LookupError(f"no trial {trial} in experiment {self._experiment} to flag best")

    def note_decision(self, trial: str, note: DecisionNote) -> None:
        current = self._store.parameters(trial)
        params = {**current, **decision_parameters(note)}
        removed: dict[str, Any] = {}
        if note.champion_value is None and "champion_value" in params:
            params.pop("champion_value")
            removed["ParametersToRemove"] = ["champion_value"]
        self._store.update(trial, params, **removed)


def record_from_component(experiment: str, trial: str, d: dict[str, Any]) -> TrialRecord:
    """Read our results trial component back into a ``TrialRecord``."""
    params: dict[str, Any] = d.get("Parameters") or {}

    def text(key: str) -> str:
        return str(params.get(key, {}).get("StringValue", ""))

    def number(key: str) -> float | None:
        p = params.get(key, {})
        return float(p["NumberValue"]) if "NumberValue" in p else None

    def value(p: dict[str, Any]) -> Any:
        if "NumberValue" in p:
            n = float(p["NumberValue"])
            return int(n) if n.is_integer() else n
        raw = p.get("StringValue", "")
        return {"true": True, "false": False}.get(raw, raw)

    best_epoch, num_test_images = number("best_epoch"), number("num_test_images")
    return TrialRecord(
        experiment=experiment,
        trial=trial,
        status=(d.get("Status") or {}).get("PrimaryStatus", "Unknown"),
        started_at=d.get("StartTime"),
        finished_at=d.get("EndTime"),
        dataset_id=text("dataset_id"),
        dataset_hash=text("dataset_hash"),
        code_hash=text("code_hash"),
        comment=text("comment"),
        source_key=text("source_key"),
        hyperparameters={k[len(HP_PREFIX) :]: value(v) for k, v in params.items() if k.startswith(HP_PREFIX)},
        metrics={k: v for k in METRIC_NAMES if (v := number(k)) is not None},
        model_location=text("model_location"),
        evaluation_location=text("evaluation_location"),
        is_best=number("is_best") == 1.0,
        error=limits.clip(text("error"), MAX_ERROR),
        test_hash=text("test_hash"),
        classes_key=text("classes_key"),
        decision=text("decision"),
        compared_with=text("compared_with"),
        champion_value=number("champion_value"),
        best_epoch=int(best_epoch) if best_epoch is not None else None,
        num_test_images=int(num_test_images) if num_test_images is not None else None,
        reused_from=text("reused_from"),
    )
