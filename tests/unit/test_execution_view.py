"""The execution view over Step Functions-shaped history: states in the definition's order, what happened to
each, the state in progress and where it stopped, and the text the CLI prints."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from nyanops.execution_view import INTERRUPTED, NOT_RUN, RUNNING, TIMED_OUT, build_view, readable_cause, render_view

T0 = datetime(2026, 11, 28, 6, 43, tzinfo=UTC)
DEFINITION = {
    "StartAt": "A",
    "States": {
        "A": {"Type": "Task", "Resource": "x", "Next": "B", "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "F"}]},
        "B": {"Type": "Task", "Resource": "y", "Next": "Done"},
        "Done": {"Type": "Succeed"},
        "F": {"Type": "Fail", "Error": "Failed"},
    },
}


def ev(kind: str, seconds: float, **details: Any) -> dict[str, Any]:
    key = {"StateEntered": "stateEnteredEventDetails", "StateExited": "stateExitedEventDetails"}
    name = next((v for k, v in key.items() if kind.endswith(k)), f"{kind[0].lower()}{kind[1:]}EventDetails")
    return {"type": kind, "timestamp": T0 + timedelta(seconds=seconds), name: details}


def st(view: Any, name: str) -> Any:
    state = view.state(name)
    assert state is not None, name
    return state


def entered_b_running() -> list[dict[str, Any]]:
    return [
        ev("ExecutionStarted", 0, input='{"x": 1}'),
        ev("TaskStateEntered", 0, name="A", input="{}"),
        ev("TaskScheduled", 1, resourceType="sagemaker", resource="createTrainingJob.sync",
           parameters=json.dumps({"TrainingJobName": "job-a"})),
        ev("TaskSucceeded", 5, output="{}"),
        ev("TaskStateExited", 5, name="A", output='{"a": 1}'),
        ev("TaskStateEntered", 5, name="B", input='{"a": 1}'),
        ev("TaskScheduled", 6, resourceType="sagemaker", resource="createProcessingJob.sync",
           parameters=json.dumps({"ProcessingJobName": "job-b"})),
    ]


def test_a_running_state_with_its_job_and_elapsed_time() -> None:
    view = build_view(DEFINITION, entered_b_running(), name="x", status="RUNNING")
    assert [s.name for s in view.states] == ["A", "B", "Done", "F"]
    assert [s.status for s in view.states] == ["succeeded", RUNNING, NOT_RUN, NOT_RUN]
    b = view.running
    assert b is not None and b.name == "B" and b.job is not None and (b.job.kind, b.job.name) == ("processing", "job-b")
    assert b.seconds(T0 + timedelta(seconds=65)) == 60
    assert st(view, "A").next_state == "B" and view.taken() == {("A", "B")}
    text = render_view(view, now=T0 + timedelta(seconds=65), progress=lambda s: f"{s.name}: 12/40 images")
    lines = text.splitlines()
    row = next(line for line in lines if line.strip().startswith("B "))
    assert "RUNNING" in row and "1m00s" in row
    assert lines[lines.index(row) + 1].strip() == "> B: 12/40 images"
    assert "status      RUNNING (1m05s so far)" in text


def test_aborted_and_timed_out_executions_name_the_open_state() -> None:
    aborted = build_view(DEFINITION, [*entered_b_running(), ev("ExecutionAborted", 9, cause="Ctrl-C")],
                         name="x", status="ABORTED")
    assert st(aborted, "B").status == INTERRUPTED and aborted.failed_state is st(aborted, "B")
    assert "interrupted in B" in render_view(aborted)
    timed = build_view(DEFINITION, [*entered_b_running(), ev("ExecutionTimedOut", 9, error="States.Timeout")],
                       name="x", status="TIMED_OUT")
    assert st(timed, "B").status == TIMED_OUT
    killed = build_view(DEFINITION, entered_b_running(), name="x", status="INTERRUPTED")  # no closing event at all
    assert st(killed, "B").status == INTERRUPTED


def test_a_caught_failure_then_the_fail_state() -> None:
    events = [
        ev("TaskStateEntered", 0, name="A", input="{}"),
        ev("TaskScheduled", 1, resource="x"),
        ev("TaskFailed", 2, error="States.TaskFailed", cause=json.dumps({"FailureReason": "AlgorithmError: oom"})),
        ev("TaskStateExited", 2, name="A", output="{}"),
        ev("FailStateEntered", 2, name="F", input="{}"),
        ev("ExecutionFailed", 3, error="Failed", cause="a step failed"),
    ]
    view = build_view(DEFINITION, events, name="x", status="FAILED")
    a, f = view.state("A"), view.state("F")
    assert a is not None and f is not None
    assert (a.status, a.next_state, readable_cause(a.cause)) == ("caught", "F", "AlgorithmError: oom")
    assert f.status == "failed" and f.error == "Failed"
    assert view.failed_state is a  # where it went wrong, not the Fail state that ended it
    text = render_view(view)
    assert "failed in A: States.TaskFailed" in text and "AlgorithmError: oom" in text
    assert "the execution ended FAILED: Failed: a step failed" in text


def test_readable_cause_unwraps_jobs_and_lambdas() -> None:
    assert readable_cause('{"ProcessingJobStatus": "Failed", "ExitMessage": "no model.pth"}') == "no model.pth"
    assert readable_cause('{"errorType": "ValueError", "errorMessage": "bad"}') == "bad"
    assert readable_cause("plain text") == "plain text"
    assert readable_cause("x" * 50, 10) == "x" * 9 + "…"
