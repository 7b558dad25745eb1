"""The experiment store on AWS: SageMaker Experiments through plain boto3 (the Lambda stays small).

Experiment = the manifest's experiment; trial = one execution; the pipeline's own trial component
``<trial>-results`` carries what the seed logged with ``Tracker.log_parameters`` (accuracy,
precision, recall, f1, comment, is_best) plus the dataset, code, hyperparameters and locations.
The training and processing jobs join the same trial through ``ExperimentConfig``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from botocore.exceptions import ClientError

from nyanops.aws.experiment_lock import DynamoExperimentLock
from nyanops.core import best_model
from nyanops.core.experiments import BestOutcome, TrialRecord, TrialResult, TrialStart

RESULTS_SUFFIX = "-results"
HP_PREFIX = "hp:"
F1_PREFIX = "f1:"
# The seed's Experiments column names for the macro metrics.
SEED_NAMES = {"macro_precision": "precision", "macro_recall": "recall", "macro_f1": "f1"}
MAX_STRING_PARAM = 2500


def results_component(trial: str) -> str:
    return f"{trial}{RESULTS_SUFFIX}"


def _already_exists(exc: ClientError) -> bool:
    err = exc.response["Error"]
    return err["Code"] in ("ResourceInUse", "ValidationException") and "exist" in err.get("Message", "").lower()


def _not_found(exc: ClientError) -> bool:
    err = exc.response["Error"]
    return err["Code"] == "ResourceNotFound" or (
        err["Code"] == "ValidationException" and "not" in err.get("Message", "").lower()
    )


def _s(value: Any) -> dict[str, Any]:
    return {"StringValue": str(value)[:MAX_STRING_PARAM]}


def _n(value: float) -> dict[str, Any]:
    return {"NumberValue": float(value)}


def _param(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return _s("true" if value else "false")
    if isinstance(value, (int, float)):
        return _n(value)
    return _s(value)


class SageMakerExperimentStore:
    def __init__(
        self,
        client: Any,
        lock: DynamoExperimentLock | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        self._sm = client
        self._lock = lock
        self._clock = clock

    # -- writing ---------------------------------------------------------------------------------
    def start_trial(self, start: TrialStart) -> None:
        self._ensure_experiment(start.experiment)
        try:
            self._sm.create_trial(TrialName=start.trial, ExperimentName=start.experiment, DisplayName=start.trial)
        except ClientError as exc:
            if not _already_exists(exc):
                raise
        params: dict[str, Any] = {
            "execution": _s(start.execution_name),
            "dataset_id": _s(start.dataset_id),
            "dataset_hash": _s(start.dataset_hash),
            "code_hash": _s(start.code_hash),
            "comment": _s(start.comment),
            "source_key": _s(start.source_key),
            "is_best": _n(0),
        }
        params.update({HP_PREFIX + k: _param(v) for k, v in start.hyperparameters.items()})
        name = results_component(start.trial)
        try:
            self._sm.create_trial_component(
                TrialComponentName=name,
                DisplayName="Results",
                Status={"PrimaryStatus": best_model.IN_PROGRESS, "Message": "training"},
                StartTime=start.started_at,
                Parameters=params,
            )
        except ClientError as exc:
            if not _already_exists(exc):
                raise
            return  # a retried start: the component and its association exist already
        self._sm.associate_trial_component(TrialComponentName=name, TrialName=start.trial)

    def complete_trial(self, experiment: str, trial: str, result: TrialResult, primary_metric: str) -> BestOutcome:
        name = results_component(trial)
        params = self._parameters(name)
        params.update({HP_PREFIX + k: _param(v) for k, v in result.hyperparameters.items()})
        for key, value in result.metrics.items():
            params[key] = _n(value)
            if key in SEED_NAMES:
                params[SEED_NAMES[key]] = _n(value)
        params.update({F1_PREFIX + cls: _n(v) for cls, v in result.per_class_f1.items()})
        params["confusion_matrix"] = _s(json.dumps(result.confusion_matrix, separators=(",", ":")))
        params["model_location"] = _s(result.model_location)
        params["evaluation_location"] = _s(result.evaluation_location)
        if result.best_epoch is not None:
            params["best_epoch"] = _n(result.best_epoch)
        with self._writer_lock().hold(experiment):
            self._sm.update_trial_component(
                TrialComponentName=name,
                Status={"PrimaryStatus": best_model.COMPLETED, "Message": "evaluated"},
                EndTime=result.finished_at,
                Parameters=params,
                OutputArtifacts={
                    "model": {"Value": result.model_location, "MediaType": "application/x-tar"},
                    "evaluation": {"Value": result.evaluation_location, "MediaType": "application/json"},
                },
            )
            return self._redecide_best(experiment, trial, primary_metric)

    def fail_trial(self, experiment: str, trial: str, error: str, finished_at: datetime) -> None:
        name = results_component(trial)
        with self._writer_lock().hold(experiment):
            try:
                described = self._sm.describe_trial_component(TrialComponentName=name)
            except ClientError as exc:
                if _not_found(exc):
                    return
                raise
            # A trial whose results are recorded stays valid even if a later step fails.
            if (described.get("Status") or {}).get("PrimaryStatus") == best_model.COMPLETED:
                return
            params = dict(described.get("Parameters") or {})
            params["error"] = _s(error)
            params["is_best"] = _n(0)
            self._sm.update_trial_component(
                TrialComponentName=name,
                Status={"PrimaryStatus": best_model.FAILED, "Message": error[:1000]},
                EndTime=finished_at,
                Parameters=params,
            )

    def _writer_lock(self) -> DynamoExperimentLock:
        if self._lock is None:
            raise RuntimeError("this SageMakerExperimentStore was opened for reading (no experiment lock)")
        return self._lock

    def _ensure_experiment(self, experiment: str) -> None:
        try:
            self._sm.describe_experiment(ExperimentName=experiment)
            return
        except ClientError as exc:
            if not _not_found(exc):
                raise
        try:
            self._sm.create_experiment(
                ExperimentName=experiment, DisplayName=experiment, Description="nyanops experiment"
            )
        except ClientError as exc:
            if not _already_exists(exc):  # two runs created it at once
                raise

    def _parameters(self, component: str) -> dict[str, Any]:
        try:
            described = self._sm.describe_trial_component(TrialComponentName=component)
        except ClientError as exc:
            if _not_found(exc):
                return {}
            raise
        return dict(described.get("Parameters") or {})

    def _redecide_best(self, experiment: str, trial: str, metric: str) -> BestOutcome:
        """Under the experiment lock: choose the best over every completed trial and flip the flags."""
        records = self.list_trials(experiment)
        previous = next((r.trial for r in records if r.is_best), None)
        best = best_model.choose_best(
            [
                best_model.Candidate(r.trial, r.status, best_model.metric_value(r.metrics, metric), r.finished_at)
                for r in records
            ],
            metric,
        )
        for r in records:
            want = r.trial == best
            if r.is_best != want:
                name = results_component(r.trial)
                params = self._parameters(name)
                params["is_best"] = _n(1 if want else 0)
                self._sm.update_trial_component(TrialComponentName=name, Parameters=params)
        return BestOutcome(is_best=best == trial, best_trial=best, previous_best=previous)

    # -- reading ---------------------------------------------------------------------------------
    def list_trials(self, experiment: str | None = None) -> list[TrialRecord]:
        experiments = [experiment] if experiment else self._experiment_names()
        out: list[TrialRecord] = []
        for exp in experiments:
            for trial in self._trial_names(exp):
                record = self._record(exp, trial)
                if record is not None:
                    out.append(record)
        return out

    def _experiment_names(self) -> list[str]:
        names: list[str] = []
        kwargs: dict[str, Any] = {}
        while True:
            page = self._sm.list_experiments(**kwargs)
            names += [e["ExperimentName"] for e in page.get("ExperimentSummaries", [])]
            if not page.get("NextToken"):
                return names
            kwargs["NextToken"] = page["NextToken"]

    def _trial_names(self, experiment: str) -> list[str]:
        names: list[str] = []
        kwargs: dict[str, Any] = {"ExperimentName": experiment}
        while True:
            try:
                page = self._sm.list_trials(**kwargs)
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
            d = self._sm.describe_trial_component(TrialComponentName=results_component(trial))
        except ClientError as exc:
            if _not_found(exc):
                return None
            raise
        return record_from_component(experiment, trial, d)


def record_from_component(experiment: str, trial: str, d: dict[str, Any]) -> TrialRecord:
    """Read our results trial component back into a ``TrialRecord``."""
    params: dict[str, Any] = d.get("Parameters") or {}

    def text(key: str) -> str:
        return str(params.get(key, {}).get("StringValue", ""))

    def value(p: dict[str, Any]) -> Any:
        if "NumberValue" in p:
            number = float(p["NumberValue"])
            return int(number) if number.is_integer() else number
        raw = p.get("StringValue", "")
        return {"true": True, "false": False}.get(raw, raw)

    metrics = {
        k: float(params[k]["NumberValue"]) for k in best_model.HIGHER_IS_BETTER if "NumberValue" in params.get(k, {})
    }
    cm_raw = text("confusion_matrix")
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
        metrics=metrics,
        per_class_f1={
            k[len(F1_PREFIX) :]: float(v.get("NumberValue", 0.0)) for k, v in params.items() if k.startswith(F1_PREFIX)
        },
        confusion_matrix=json.loads(cm_raw) if cm_raw else {},
        model_location=text("model_location"),
        evaluation_location=text("evaluation_location"),
        is_best=float(params.get("is_best", {}).get("NumberValue", 0)) == 1.0,
        error=text("error"),
    )
