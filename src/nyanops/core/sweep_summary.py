"""The comparison at the end of an execution: every trial it ran (a manifest's sweep; one trial without a
sweep), as recorded, and the experiment's best model. Pure: RecordResults' ``summary`` mode gives it the Map's
outcomes and the experiment's records, and publishes what it returns as the run's one notification.

A trial is listed with its primary metric and whether it was trained, reused (not trained: the results of an
identical completed trial, named) or failed (with its cause); the hyperparameters that differ between the
run's trials label each one. Then the best trial of this run and the experiment's best model (which may come
from an earlier run). The run counts as completed when at least one trial is (trained or reused).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from nyanops.core import best_model, hyperparameters, limits
from nyanops.core.experiments import COMPLETED, TrialRecord
from nyanops.core.naming import experiment_key

# The statuses a Map iteration ends with (the ASL's TrialCompleted / TrialReused / TrialFailed / TrialNotRecorded).
TRAINED = "Completed"
REUSED = "Reused"
FAILED = "Failed"
NOT_RECORDED = "NotRecorded"
ERROR_SHOWN = 300  # characters of a failed trial's cause in the summary (the record keeps it whole)
# A trial's model-registry line as its Map iteration carries it to the comparison (kept short: 50 of them fit).
REGISTRY_LINE_MAX = 300


@dataclass(frozen=True)
class Row:
    trial: str
    kind: str  # "trained" | "reused" | "failed"
    value: float | None = None
    label: str = ""
    reused_from: str = ""
    error: str = ""


@dataclass(frozen=True)
class Summary:
    subject: str
    lines: list[str]
    rows: list[Row]
    completed: int
    reused: int
    failed: int
    best_trial: str  # the experiment's best trial after this run ("" when there is none)


def varying(records: list[TrialRecord]) -> list[str]:
    """The recipe hyperparameters whose values differ between ``records`` (what tells a sweep's trials apart)."""
    names = []
    # freeze-epochs follows epochs when every epoch is classifier-only (train.py caps it): not a difference of its own.
    capped = all(r.hyperparameters.get("freeze-epochs") == r.hyperparameters.get("epochs") for r in records)
    for name in hyperparameters.RECIPE_NAMES:
        if name == "freeze-epochs" and capped:
            continue
        values = {json.dumps(r.hyperparameters.get(name), sort_keys=True) for r in records}
        if len(values) > 1:
            names.append(name)
    return names


def _row(outcome: dict[str, Any], record: TrialRecord | None, metric: str, label: str) -> Row:
    trial = str(outcome["trial"])
    if record is not None and record.status == COMPLETED:
        value = best_model.metric_value(record.metrics, metric)
        kind = "reused" if record.reused_from else "trained"
        return Row(trial, kind, value, label, record.reused_from)
    if record is not None and record.error:
        error = record.error
    elif outcome.get("status") == NOT_RECORDED:
        error = f"{outcome.get('error', 'Error')} (recording the failure failed: {outcome.get('record_error', '')})"
    else:
        error = f"ended {record.status if record else 'unrecorded'}"
    first = " ".join(error.split())
    return Row(trial, "failed", label=label, error=limits.clip(first, ERROR_SHOWN))


def summarize(
    *,
    experiment: str,
    execution: str,
    outcomes: list[dict[str, Any]],
    records: list[TrialRecord],
    metric: str,
    dataset_id: str = "",
    comment: str = "",
) -> Summary:
    by_name = {experiment_key(r.trial): r for r in records}
    mine = [by_name.get(experiment_key(str(o["trial"]))) for o in outcomes]
    shown = varying([r for r in mine if r is not None]) if len(outcomes) > 1 else []
    rows = []
    for outcome, record in zip(outcomes, mine, strict=True):
        values = record.hyperparameters if record is not None else {}
        label = " ".join(f"{name}={_value(values.get(name))}" for name in shown)
        rows.append(_row(outcome, record, metric, label))
    completed = [r for r in rows if r.kind != "failed"]
    reused = sum(1 for r in rows if r.kind == "reused")
    failed = len(rows) - len(completed)
    trained = len(completed) - reused
    best = next((r for r in records if r.is_best), None)
    ranked = [r for r in completed if r.value is not None]
    run_best = max(ranked, key=lambda r: r.value or 0.0) if ranked else None
    in_run = best is not None and any(experiment_key(r.trial) == experiment_key(best.trial) for r in rows)

    count = f"{len(rows)} trial{'s' if len(rows) != 1 else ''}"
    lines = [
        f"Run {execution} of experiment {experiment}: {count}: {trained} trained, {reused} reused, {failed} failed.",
        f"dataset {dataset_id}  comment: {comment}",
    ]
    width = max(len(r.trial) for r in rows) if rows else 0
    label_width = max((len(r.label) for r in rows), default=0)
    for r in rows:
        head = f"  {r.trial:<{width}}" + (f"  {r.label:<{label_width}}" if label_width else "")
        if r.kind == "failed":
            lines.append(f"{head}  failed: {r.error}")
            continue
        figure = f"{metric} {r.value:.4f}" if r.value is not None else f"{metric} -"
        mark = " (best)" if best is not None and experiment_key(best.trial) == experiment_key(r.trial) else ""
        how = f"reused from {r.reused_from} (not trained)" if r.kind == "reused" else "trained"
        lines.append(f"{head}  {figure}  {how}{mark}")
    if run_best is not None and len(rows) > 1:
        lines.append(f"Best of this run: {run_best.trial} ({metric} {run_best.value:.4f}).")
    if best is not None:
        value = best_model.metric_value(best.metrics, metric)
        figure = f"{metric} {value:.4f}" if value is not None else metric
        where = "from this run" if in_run else "from an earlier run"
        lines.append(f"Best model of experiment {experiment}: {best.trial} ({figure}, {where}).")
    else:
        lines.append(f"Experiment {experiment} has no best model yet.")
    if len(rows) == 1 and mine[0] is not None:
        one = mine[0]
        if one.decision:
            lines.append(f"Why: {one.decision}.")
        if one.status == COMPLETED:
            lines += [f"model: {one.model_location}", f"evaluation: {one.evaluation_location}"]

    return Summary(
        subject=_subject(experiment, metric, rows, run_best, in_run),
        lines=lines,
        rows=rows,
        completed=len(completed),
        reused=reused,
        failed=failed,
        best_trial=best.trial if best is not None else "",
    )


def _subject(experiment: str, metric: str, rows: list[Row], run_best: Row | None, in_run: bool) -> str:
    new_best = " (new best)" if in_run and run_best is not None and run_best.kind == "trained" else ""
    if len(rows) == 1:
        if run_best is None:
            return f"nyanops: {experiment} run failed"
        reused = " (reused)" if run_best.kind == "reused" else ""
        return f"nyanops: {experiment} {metric} {run_best.value or 0.0:.3f}{new_best}{reused}"
    if run_best is None:
        return f"nyanops: {experiment} sweep of {len(rows)} trials failed"
    return f"nyanops: {experiment} sweep of {len(rows)} trials, best {metric} {run_best.value or 0.0:.3f}{new_best}"


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
