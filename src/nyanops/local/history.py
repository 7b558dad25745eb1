"""The local execution history in Step Functions' shape, so one view (``nyanops.execution_view``) reads
both sides. The local executor records ``{type, state, detail}`` rows whose detail holds the same facts
``GetExecutionHistory`` puts in its ``...EventDetails`` objects (a state's name, input and output, a task's
resource, request, result, error and cause); this moves each fact where Step Functions has it."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

_TASK_RESOURCE_PREFIX = "arn:aws:states:::"
# Event type -> the details key Step Functions uses for it.
_DETAIL_KEYS = {
    "ExecutionStarted": "executionStartedEventDetails",
    "ExecutionSucceeded": "executionSucceededEventDetails",
    "ExecutionFailed": "executionFailedEventDetails",
    "ExecutionAborted": "executionAbortedEventDetails",
    "ExecutionTimedOut": "executionTimedOutEventDetails",
    "TaskScheduled": "taskScheduledEventDetails",
    "TaskStarted": "taskStartedEventDetails",
    "TaskSucceeded": "taskSucceededEventDetails",
    "TaskFailed": "taskFailedEventDetails",
    "TaskTimedOut": "taskTimedOutEventDetails",
}


def _json_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _resource(arn: Any) -> tuple[str, str]:
    """``arn:aws:states:::sagemaker:createTrainingJob.sync`` -> ("sagemaker", "createTrainingJob.sync")."""
    text = str(arn or "")
    if text.startswith(_TASK_RESOURCE_PREFIX):
        service, _, action = text[len(_TASK_RESOURCE_PREFIX) :].partition(":")
        return service, action
    return "", text


def sfn_event(row: Mapping[str, Any]) -> dict[str, Any]:
    """One stored row (``{seq, at, type, state, detail}``) as a ``GetExecutionHistory`` event."""
    kind = str(row.get("type") or "")
    detail = row.get("detail") if isinstance(row.get("detail"), Mapping) else {}
    assert isinstance(detail, Mapping)
    seq = int(row.get("seq") or 0)
    event: dict[str, Any] = {"id": seq, "previousEventId": max(seq - 1, 0), "type": kind, "timestamp": row.get("at")}
    name = detail.get("name") or row.get("state")
    if kind.endswith("StateEntered"):
        event["stateEnteredEventDetails"] = {"name": name, "input": _json_text(detail.get("input"))}
    elif kind.endswith("StateExited"):
        event["stateExitedEventDetails"] = {"name": name, "output": _json_text(detail.get("output"))}
    elif kind in _DETAIL_KEYS:
        out: dict[str, Any] = {}
        if "resource" in detail:
            out["resourceType"], out["resource"] = _resource(detail["resource"])
        for key in ("error", "cause"):
            if detail.get(key) is not None:
                out[key] = str(detail[key])
        if "parameters" in detail:
            out["parameters"] = _json_text(detail["parameters"])
        for key in ("input", "output"):
            if key in detail:
                out[key] = _json_text(detail[key])
        if detail.get("timeoutInSeconds") is not None:
            out["timeoutInSeconds"] = detail["timeoutInSeconds"]
        event[_DETAIL_KEYS[kind]] = out
    else:  # ParallelStateStarted and the like: only the name matters
        event["stateEventDetails"] = {"name": name} if name else {}
    return event


def sfn_events(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [sfn_event(r) for r in rows]
