"""One execution view for both sides: the same scripted run on moto's Step Functions engine (its
GetExecutionHistory events, as the AWS backend reads them) and on the local executor (its history stored the
local way and converted by ``nyanops.local.history``) gives the same view, state by state: outcome,
attempts, error, retried failures and where a caught failure went."""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest

from nyanops.execution_view import ExecutionView, build_view, readable_cause
from nyanops.local.asl import load_state_machine
from nyanops.local.history import sfn_events

from .test_moto_vs_local import (
    DEFINITION,
    EXECUTION,
    FAILED_TRAINING_CAUSE,
    NO_CAPACITY,
    PUBLISHED,
    RECORDED,
    RECORDED_FAILED,
    REGISTERED,
    RUN_INPUT,
    SUMMARIZED,
    SUMMARIZED_FAILED,
    THROTTLED,
    Fail,
    FunctionError,
    Script,
    ScriptedRunner,
    aws,  # noqa: F401 (the fixture)
    processing_job,
    run_moto,
    training_job,
)

SCENARIOS = {
    "success": {"RegisterTrial": [REGISTERED], "Train": [training_job()], "Evaluate": [processing_job()],
                "RecordResults": [RECORDED], "Summarize": [SUMMARIZED], "Notify": [PUBLISHED]},
    "retried": {"RegisterTrial": [REGISTERED], "Train": [THROTTLED, NO_CAPACITY, training_job()],
                "Evaluate": [processing_job()],
                "RecordResults": [FunctionError("ExperimentBusy", "locked"), RECORDED], "Summarize": [SUMMARIZED],
                "Notify": [PUBLISHED]},
    "caught": {"RegisterTrial": [REGISTERED], "Train": [Fail("States.TaskFailed", FAILED_TRAINING_CAUSE)],
               "RecordFailure": [RECORDED_FAILED], "Summarize": [SUMMARIZED_FAILED], "Notify": [PUBLISHED]},
    "unrecorded": {"RegisterTrial": [REGISTERED], "Train": [Fail("SageMaker.ValidationException", "bad request")],
                   "RecordFailure": [FunctionError("RuntimeError", "store down")],
                   "Summarize": [SUMMARIZED_FAILED], "Notify": [PUBLISHED]},
}


def summary(view: ExecutionView) -> list[tuple[Any, ...]]:
    return [(s.name, s.status, s.attempts, s.error, [e for e, _ in s.failed_attempts], s.next_state,
             s.job.name if s.job else None) for s in view.states]


def local_view(outcomes: dict[str, list[Any]]) -> ExecutionView:
    machine = load_state_machine(DEFINITION, name="nyanops-training-pipeline")
    result = machine.run(copy.deepcopy(RUN_INPUT), execution_name=EXECUTION, task_runner=ScriptedRunner(
        Script(outcomes)), sleep=lambda s: None, random=random.Random(7).random)
    # As nyanops.local.executions stores them: {seq, at, type, state, detail}.
    rows = [{"seq": e["id"], "at": e["timestamp"], "type": e["type"], "state": e["details"].get("name"),
             "detail": e["details"]} for e in result.history]
    return build_view(DEFINITION, sfn_events(rows), name=EXECUTION, status=result.status)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_the_view_is_the_same_on_both_sides(aws: Any, scenario: str) -> None:  # noqa: F811
    outcomes = SCENARIOS[scenario]
    on_moto = run_moto(aws, copy.deepcopy(outcomes))
    arn = aws.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{EXECUTION}"
    events = aws.sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    moto_view = build_view(DEFINITION, events, name=EXECUTION, status=on_moto.status)
    local = local_view(copy.deepcopy(outcomes))
    assert summary(local) == summary(moto_view)
    assert local.path == moto_view.path
    assert (local.failed_state.name if local.failed_state else None) == (
        moto_view.failed_state.name if moto_view.failed_state else None)
    if scenario == "retried":
        # Throttling is caught (its name is SageMaker's generic one) and sent back through TrainApiError's
        # wait: a second entry of Train, whose first attempt finds no capacity and is retried.
        train = moto_view.state("Train")
        # Throttled: caught, waited (TrainApiError, TrainBackoff, TrainWait) and entered again; then out of capacity
        # once (its Retry) and trained: the view shows the last entry.
        assert train is not None and train.attempts == 2 and train.status == "succeeded" and train.entries == 2
        assert [e for e, _ in train.failed_attempts] == [NO_CAPACITY.error]
        assert "TrainApiError" in moto_view.path
    if scenario == "caught":
        train = moto_view.state("Train")
        assert train is not None and (train.status, train.next_state) == ("caught", "RecordFailure")
        assert moto_view.failed_state is train
        assert "AlgorithmError" in readable_cause(train.cause)  # the job's FailureReason, not its whole describe
