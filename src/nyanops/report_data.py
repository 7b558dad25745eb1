"""Gathering what ``nyanops.report`` shows: trial records, each trial's evaluation.json, the test photos
it got wrong and its execution (as an ``execution_view``), from a local root (SQLite + the local bucket +
the local history) or from a deployed stack (SageMaker Experiments + S3 + Step Functions' history).

Reading only: nothing here writes. Anything missing (a failed run has no evaluation, a photo was
removed) becomes a note in the report rather than an error. Every evaluation.json is validated with
``core.evaluation_report`` (anyone who can write the bucket can write one): a file that fails shows as an
error on its trial, with the field and the problem, and nothing of it is drawn.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable
from typing import Any

from nyanops.core import layout
from nyanops.core.evaluation_report import EvaluationReportError, validate_evaluation_report
from nyanops.core.experiments import ExperimentStore, TrialRecord
from nyanops.core.ports import ObjectNotFound, ObjectStore
from nyanops.execution_view import ExecutionView, build_view
from nyanops.report import MAX_THUMBNAILS, ExperimentReport, TrialReport

GetBytes = Callable[[str], bytes]  # key -> bytes; raises ObjectNotFound (or KeyError) when missing


def evaluation_key_of(record: TrialRecord, execution: str) -> str | None:
    """Where the trial's evaluation.json is: the recorded location, else the layout's key for the run."""
    if record.evaluation_location:
        try:
            return layout.parse_s3_uri(record.evaluation_location)[1]
        except ValueError:
            pass
    return layout.evaluation_key(execution) if execution else None


def trial_report(
    record: TrialRecord,
    execution: str,
    get: GetBytes,
    *,
    view: ExecutionView | None = None,
    execution_status: str = "",
    max_thumbnails: int = MAX_THUMBNAILS,
    links: dict[str, str] | None = None,
) -> TrialReport:
    """One trial's report data, reading evaluation.json (validated) and the misclassified test photos with
    ``get``."""
    notes: list[str] = []
    problem = ""
    evaluation: dict[str, Any] | None = None
    key = evaluation_key_of(record, execution)
    if key:
        try:
            evaluation = validate_evaluation_report(json.loads(get(key)))
        except (ObjectNotFound, KeyError, FileNotFoundError):
            if record.status == "Completed":
                notes.append(f"{key} not found")
        except EvaluationReportError as exc:
            problem = f"{key} is not a valid evaluation (not shown): {exc}"
        except ValueError as exc:  # not JSON, or not UTF-8
            problem = f"{key} is not valid JSON (not shown): {exc}"
    thumbnails: dict[str, bytes] = {}
    if evaluation and record.dataset_id:
        missed = sorted(
            (m for m in evaluation.get("misclassified") or [] if isinstance(m, dict)),
            key=lambda m: -float(m.get("confidence") or 0.0),
        )
        test_prefix = layout.dataset_split_prefix(record.dataset_id, "test")
        unreadable = 0
        for m in missed[:max_thumbnails]:
            path = str(m.get("path", ""))
            try:
                thumbnails[path] = get(test_prefix + path)
            except (ObjectNotFound, KeyError, FileNotFoundError, ValueError):
                unreadable += 1  # ValueError: a path that is not a safe key
        if unreadable:
            notes.append(f"{unreadable} misclassified photos could not be read from {test_prefix}")
    return TrialReport(
        record=record,
        execution=execution,
        execution_status=execution_status or (view.status if view else ""),
        evaluation=evaluation,
        view=view,
        thumbnails=thumbnails,
        note="; ".join(notes),
        problem=problem,
        links=links or {},
    )


def group(records: Iterable[TrialRecord], build: Callable[[TrialRecord], TrialReport]) -> list[ExperimentReport]:
    by_experiment: dict[str, list[TrialReport]] = {}
    for r in records:
        by_experiment.setdefault(r.experiment, []).append(build(r))
    return [ExperimentReport(name, trials) for name, trials in sorted(by_experiment.items())]


# -- local root ---------------------------------------------------------------------------------------------
def trial_executions(db: sqlite3.Connection, experiment: str | None = None) -> dict[tuple[str, str], str]:
    """(experiment, trial) -> execution name, from the local trials table."""
    sql = "SELECT experiment, trial, execution_name FROM trials"
    rows = db.execute(sql + " WHERE experiment = ?", (experiment,)) if experiment else db.execute(sql)
    return {(r[0], r[1]): r[2] or r[1] for r in rows}


def gather_local(pipeline: Any, definition: dict[str, Any], experiment: str | None = None) -> list[ExperimentReport]:
    """Report data from a ``LocalPipeline`` (its SQLite store, execution history and local bucket);
    ``definition`` is the state machine the executions ran (the ASL document)."""
    from nyanops.local.history import sfn_events

    records = pipeline.experiments.list_trials(experiment)
    executions = trial_executions(pipeline.db, experiment)

    def build(r: TrialRecord) -> TrialReport:
        name = executions.get((r.experiment, r.trial), r.trial)
        row = pipeline.executions.get(name)
        view = None
        if row is not None:
            view = build_view(
                definition,
                sfn_events(pipeline.executions.events(name)),
                name=name,
                status=row.status,
                started_at=row.started_at,
                stopped_at=row.stopped_at,
                error=row.error,
                cause=row.cause,
            )
        return trial_report(r, name, pipeline.store.get, view=view)

    return group(records, build)


# -- deployed stack -------------------------------------------------------------------------------------------
def gather_aws(
    experiments: ExperimentStore,
    store: ObjectStore,
    experiment: str | None = None,
    *,
    views: Callable[[str], ExecutionView | None] | None = None,
    links: Callable[[TrialRecord], dict[str, str]] | None = None,
) -> list[ExperimentReport]:
    """Report data from a deployed stack: SageMaker Experiments and the stack's bucket (adapters injected);
    ``views(execution)`` gives an execution's view from Step Functions (None: no graphs or timelines), and
    ``links(record)`` its console URLs. A trial is named after its execution."""
    return group(
        experiments.list_trials(experiment),
        lambda r: trial_report(
            r, r.trial, store.get, view=views(r.trial) if views else None, links=links(r) if links else None
        ),
    )
