"""RecordResults' logic: register a trial when a run starts, record its evaluation (and re-decide
the experiment's best model) when it succeeds, or record the failure with its cause.

The event is ``{"mode": "started" | "succeeded" | "failed", "run": <the state machine's state>}``.
``evaluation.json`` is read and validated with ``nyanops.core.evaluation_report``, the same module
``ml_code/evaluation.py`` writes it with.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from nyanops.core import evaluation_report, layout
from nyanops.core.experiments import ExperimentStore, TrialResult, TrialStart
from nyanops.core.ports import ObjectNotFound, ObjectStore

MODES = ("started", "succeeded", "failed")
MAX_ERROR = 2000


class BadRecordEvent(ValueError):
    pass


@dataclass
class RecordResultsDeps:
    store: ObjectStore
    experiments: ExperimentStore
    clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)


def record(event: dict[str, Any], deps: RecordResultsDeps) -> dict[str, Any]:
    mode = event.get("mode")
    run = event.get("run")
    if mode not in MODES or not isinstance(run, dict):
        raise BadRecordEvent(f"expected {{'mode': one of {MODES}, 'run': <execution state>}}, got mode={mode!r}")
    if mode == "started":
        deps.experiments.start_trial(trial_start(run, deps.clock()))
        return {"experiment": run["experiment"], "trial": run["trial"], "status": "InProgress"}
    if mode == "succeeded":
        return _record_success(run, deps)
    return _record_failure(run, deps)


def trial_start(run: dict[str, Any], now: datetime) -> TrialStart:
    return TrialStart(
        experiment=run["experiment"],
        trial=run["trial"],
        execution_name=run["execution_name"],
        dataset_id=run["dataset"]["id"],
        dataset_hash=run["dataset"]["content_hash"],
        code_hash=run["code"]["hash"],
        comment=run.get("comment", ""),
        hyperparameters=dict(run.get("hyperparameters") or {}),
        source_key=run["source"]["key"],
        started_at=now,
    )


def evaluation_location(run: dict[str, Any]) -> str:
    return run["evaluation"]["output_s3_uri"].rstrip("/") + "/" + layout.EVALUATION_FILE


def read_evaluation(store: ObjectStore, run: dict[str, Any]) -> dict[str, Any]:
    uri = evaluation_location(run)
    bucket, key = layout.parse_s3_uri(uri)
    if bucket != store.bucket:
        raise BadRecordEvent(f"evaluation output {uri} is outside this pipeline's bucket {store.bucket}")
    try:
        raw = store.get(key)
    except ObjectNotFound:
        raise evaluation_report.EvaluationReportError(
            uri, "evaluation.json was not written by the evaluation job"
        ) from None
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise evaluation_report.EvaluationReportError(uri, f"not JSON ({exc})") from None
    return evaluation_report.validate_evaluation_report(doc)


def _record_success(run: dict[str, Any], deps: RecordResultsDeps) -> dict[str, Any]:
    doc = read_evaluation(deps.store, run)
    model = doc.get("model") or {}
    result = TrialResult(
        metrics={k: float(v) for k, v in doc["metrics"].items()},
        per_class_f1={c: float(v["f1"]) for c, v in doc["per_class"].items()},
        confusion_matrix=doc["confusion_matrix"],
        hyperparameters=dict(model.get("hyperparameters") or run.get("hyperparameters") or {}),
        model_location=run.get("results", {}).get("training", {}).get("model_artifacts", ""),
        evaluation_location=evaluation_location(run),
        finished_at=deps.clock(),
        best_epoch=model.get("best_epoch"),
        num_test_images=doc.get("num_images"),
    )
    metric = run.get("primary_metric", "macro_f1")
    outcome = deps.experiments.complete_trial(run["experiment"], run["trial"], result, metric)
    m = result.metrics
    verdict = "NEW BEST" if outcome.is_best else f"best remains {outcome.best_trial}"
    new_best = " (new best)" if outcome.is_best else ""
    message = (
        f"Run {run['trial']} of experiment {run['experiment']} finished.\n"
        f"accuracy {m['accuracy']:.4f}  macro precision {m['macro_precision']:.4f}  "
        f"macro recall {m['macro_recall']:.4f}  macro F1 {m['macro_f1']:.4f}\n"
        f"{metric}: {verdict}\n"
        f"dataset {run['dataset']['id']}  comment: {run.get('comment', '')}\n"
        f"model: {result.model_location}\nevaluation: {result.evaluation_location}"
    )
    return {
        "experiment": run["experiment"],
        "trial": run["trial"],
        "status": "Completed",
        "metrics": result.metrics,
        "is_best": outcome.is_best,
        "best_trial": outcome.best_trial,
        "previous_best": outcome.previous_best,
        "subject": f"nyanops: {run['experiment']} {metric} {m.get(metric, 0.0):.3f}{new_best}"[:100],
        "message": message,
    }


def failure_text(error: Any) -> str:
    """A one-paragraph cause from a Catch error object ({"Error", "Cause"}), unwrapping Lambda's JSON."""
    if not isinstance(error, dict):
        return "unknown error"
    name = str(error.get("Error", "Error"))
    cause = error.get("Cause", "")
    try:
        parsed = json.loads(cause) if isinstance(cause, str) and cause.startswith("{") else None
    except json.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict):
        cause = parsed.get("errorMessage") or parsed.get("FailureReason") or parsed.get("message") or cause
    return f"{name}: {cause}"[:MAX_ERROR]


def _record_failure(run: dict[str, Any], deps: RecordResultsDeps) -> dict[str, Any]:
    text = failure_text(run.get("error"))
    now = deps.clock()
    deps.experiments.start_trial(trial_start(run, now))  # the run may have failed before its trial existed
    deps.experiments.fail_trial(run["experiment"], run["trial"], text, now)
    return {
        "experiment": run["experiment"],
        "trial": run["trial"],
        "status": "Failed",
        "error": text,
        "is_best": False,
        "subject": f"nyanops: {run['experiment']} run failed"[:100],
        "message": f"Run {run['trial']} of experiment {run['experiment']} failed.\n{text}",
    }
