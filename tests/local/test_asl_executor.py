"""Running definitions: data flow, Retry/Catch, Choice, Wait, Fail, Parallel, context object, listener."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from nyanops.local.asl import (
    ExecutionResult,
    NullListener,
    TaskContext,
    TaskFailed,
    load_state_machine,
)

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


class Runner:
    """A TaskRunner driven by a script: each call pops the next outcome (a value or an exception)."""

    def __init__(self, *outcomes: Any) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[tuple[str, Any, TaskContext]] = []

    def __call__(self, resource: str, parameters: Any, ctx: TaskContext) -> Any:
        self.calls.append((resource, parameters, ctx))
        outcome = self.outcomes.pop(0) if self.outcomes else {"ok": True}
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


def run(
    definition: dict[str, Any],
    input: Any = None,
    runner: Callable[..., Any] | None = None,
    **kwargs: Any,
) -> ExecutionResult:
    delays: list[float] = kwargs.pop("delays", [])
    sm = load_state_machine(definition, {}, name="Test")
    return sm.run(
        {} if input is None else input,
        execution_name="exec-1",
        task_runner=runner or Runner(),
        sleep=delays.append,
        now=lambda: NOW,
        **kwargs,
    )


def task(**extra: Any) -> dict[str, Any]:
    return {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", **extra}


def machine(**states: Any) -> dict[str, Any]:
    return {"StartAt": next(iter(states)), "States": states}


# -- data flow ----------------------------------------------------------------------------------------------


def test_input_path_parameters_result_selector_result_path_output_path() -> None:
    runner = Runner({"Payload": {"score": 0.9, "junk": 1}, "StatusCode": 200})
    definition = machine(
        T=task(
            InputPath="$.job",
            Parameters={
                "FunctionName": "fn",
                "Payload": {"name.$": "$.name", "exec.$": "$$.Execution.Name", "fixed": [1, {"k.$": "$.n"}]},
                "greeting.$": "States.Format('hi {}', $.name)",
            },
            ResultSelector={"score.$": "$.Payload.score", "code.$": "$.StatusCode"},
            ResultPath="$.job.result",
            OutputPath="$.job",
            End=True,
        )
    )
    result = run(definition, {"job": {"name": "cat", "n": 2}, "other": 1}, runner)
    assert result.status == "SUCCEEDED"
    _, params, _ = runner.calls[0]
    assert params == {
        "FunctionName": "fn",
        "Payload": {"name": "cat", "exec": "exec-1", "fixed": [1, {"k": 2}]},
        "greeting": "hi cat",
    }
    assert result.output == {"name": "cat", "n": 2, "result": {"score": 0.9, "code": 200}}


def test_result_path_null_keeps_the_raw_input() -> None:
    result = run(machine(T=task(InputPath="$.a", ResultPath=None, End=True)), {"a": {"x": 1}, "b": 2})
    assert result.output == {"a": {"x": 1}, "b": 2}


def test_null_input_and_output_paths_give_empty_objects() -> None:
    runner = Runner({"r": 1})
    result = run(machine(T=task(InputPath=None, OutputPath=None, End=True)), {"a": 1}, runner)
    assert runner.calls[0][1] == {}
    assert result.output == {}


def test_pass_result_and_parameters() -> None:
    definition = machine(
        P1={"Type": "Pass", "Result": {"fixed": True}, "ResultPath": "$.r", "Next": "P2"},
        P2={"Type": "Pass", "Parameters": {"copy.$": "$.r.fixed", "len.$": "States.ArrayLength($.l)"}, "End": True},
    )
    assert run(definition, {"l": [1, 2]}).output == {"copy": True, "len": 2}


def test_missing_parameter_path_is_an_uncatchable_runtime_error() -> None:
    runner = Runner()
    definition = machine(
        T=task(
            Parameters={"x.$": "$.missing"},
            Retry=[{"ErrorEquals": ["States.ALL"], "MaxAttempts": 3}],
            Catch=[{"ErrorEquals": ["States.ALL"], "Next": "Caught"}],
            End=True,
        ),
        Caught={"Type": "Pass", "End": True},
    )
    result = run(definition, {"a": 1}, runner)
    assert result.status == "FAILED"
    assert result.error == "States.Runtime"
    assert "$.missing" in (result.cause or "") and "x.$" in (result.cause or "")
    assert result.states == ["T"]
    assert runner.calls == []


def test_missing_input_path_is_a_runtime_error() -> None:
    result = run(machine(P={"Type": "Pass", "InputPath": "$.nope", "End": True}), {})
    assert (result.status, result.error) == ("FAILED", "States.Runtime")


# -- Retry and Catch -----------------------------------------------------------------------------------------


def test_retry_backoff_delays_and_max_delay_cap() -> None:
    delays: list[float] = []
    boom = [TaskFailed("Throttled", "slow down") for _ in range(4)]
    runner = Runner(*boom, {"done": 1})
    retry = [
        {
            "ErrorEquals": ["Throttled"],
            "IntervalSeconds": 3,
            "MaxAttempts": 4,
            "BackoffRate": 2.0,
            "MaxDelaySeconds": 10,
        }
    ]
    result = run(machine(T=task(Retry=retry, End=True)), {}, runner, delays=delays)
    assert result.status == "SUCCEEDED"
    assert delays == [3.0, 6.0, 10.0, 10.0]  # 3, 6, 12→10, 24→10
    assert [ctx.attempt for _, _, ctx in runner.calls] == [0, 1, 2, 3, 4]
    assert [ctx.context_object["State"]["RetryCount"] for _, _, ctx in runner.calls] == [0, 1, 2, 3, 4]
    assert result.states == ["T"]


def test_retry_defaults_are_one_second_three_attempts_rate_two() -> None:
    delays: list[float] = []
    runner = Runner(*[TaskFailed("E", "") for _ in range(4)])
    result = run(machine(T=task(Retry=[{"ErrorEquals": ["E"]}], End=True)), {}, runner, delays=delays)
    assert delays == [1.0, 2.0, 4.0]
    assert (result.status, result.error) == ("FAILED", "E")
    assert len(runner.calls) == 4


def test_full_jitter_scales_the_delay_by_the_random_draw() -> None:
    delays: list[float] = []
    runner = Runner(TaskFailed("E", ""), TaskFailed("E", ""), {"ok": 1})
    retry = [{"ErrorEquals": ["E"], "IntervalSeconds": 4, "BackoffRate": 3.0, "JitterStrategy": "FULL"}]
    run(machine(T=task(Retry=retry, End=True)), {}, runner, delays=delays, random=lambda: 0.25)
    assert delays == [1.0, 3.0]  # 0.25 * 4, 0.25 * 12


def test_max_attempts_zero_never_retries() -> None:
    runner = Runner(TaskFailed("E", "c"))
    retry = [{"ErrorEquals": ["E"], "MaxAttempts": 0}, {"ErrorEquals": ["States.ALL"], "MaxAttempts": 5}]
    result = run(machine(T=task(Retry=retry, End=True)), {}, runner)
    # The first matching retrier decides, even when it allows no attempt.
    assert len(runner.calls) == 1
    assert (result.error, result.cause) == ("E", "c")


def test_retriers_count_separately_and_match_in_order() -> None:
    delays: list[float] = []
    runner = Runner(TaskFailed("A", ""), TaskFailed("B", ""), TaskFailed("A", ""), {"ok": 1})
    retry = [
        {"ErrorEquals": ["A"], "IntervalSeconds": 1, "MaxAttempts": 2},
        {"ErrorEquals": ["States.ALL"], "IntervalSeconds": 10, "MaxAttempts": 1},
    ]
    result = run(machine(T=task(Retry=retry, End=True)), {}, runner, delays=delays)
    assert result.status == "SUCCEEDED"
    assert delays == [1.0, 10.0, 2.0]


def test_exhausted_retries_then_catch_with_result_path() -> None:
    runner = Runner(TaskFailed("E", "c1"), TaskFailed("E", "c2"))
    definition = machine(
        T=task(
            Retry=[{"ErrorEquals": ["E"], "MaxAttempts": 1}],
            Catch=[
                {"ErrorEquals": ["Other"], "Next": "Wrong"},
                {"ErrorEquals": ["E"], "ResultPath": "$.err", "Next": "Handler"},
            ],
            OutputPath="$.never",  # not applied on the catch path
            End=True,
        ),
        Wrong={"Type": "Pass", "End": True},
        Handler={"Type": "Pass", "End": True},
    )
    result = run(definition, {"keep": 1}, runner)
    assert result.states == ["T", "Handler"]
    assert result.output == {"keep": 1, "err": {"Error": "E", "Cause": "c2"}}


def test_catch_default_result_path_replaces_the_input_with_the_error() -> None:
    definition = machine(
        T=task(Catch=[{"ErrorEquals": ["States.ALL"], "Next": "H"}], End=True), H={"Type": "Pass", "End": True}
    )
    result = run(definition, {"keep": 1}, Runner(TaskFailed("X", "why")))
    assert result.output == {"Error": "X", "Cause": "why"}


def test_catch_result_path_null_keeps_the_input() -> None:
    definition = machine(
        T=task(Catch=[{"ErrorEquals": ["States.ALL"], "ResultPath": None, "Next": "H"}], End=True),
        H={"Type": "Pass", "End": True},
    )
    assert run(definition, {"keep": 1}, Runner(TaskFailed("X", "why"))).output == {"keep": 1}


def test_states_task_failed_matches_service_errors_but_not_timeouts() -> None:
    definition = machine(
        T=task(Catch=[{"ErrorEquals": ["States.TaskFailed"], "Next": "H"}], End=True),
        H={"Type": "Pass", "End": True},
    )
    assert run(definition, {}, Runner(TaskFailed("SNS.Throttled", ""))).states == ["T", "H"]
    timed_out = run(definition, {}, Runner(TaskFailed("States.Timeout", "")))
    assert (timed_out.status, timed_out.error) == ("FAILED", "States.Timeout")


def test_unexpected_runner_exception_is_states_task_failed() -> None:
    definition = machine(
        T=task(Catch=[{"ErrorEquals": ["States.TaskFailed"], "Next": "H"}], End=True),
        H={"Type": "Pass", "End": True},
    )
    result = run(definition, {}, Runner(RuntimeError("disk full")))
    assert result.output == {"Error": "States.TaskFailed", "Cause": "disk full"}


def test_result_path_match_failure_is_catchable() -> None:
    definition = machine(
        T=task(ResultPath="$.x.y", Catch=[{"ErrorEquals": ["States.ResultPathMatchFailure"], "Next": "H"}], End=True),
        H={"Type": "Pass", "ResultPath": None, "End": True},
    )
    result = run(definition, {"x": "scalar"}, Runner({"r": 1}))
    assert result.states == ["T", "H"]
    assert result.output == {"Error": "States.ResultPathMatchFailure", "Cause": result.output["Cause"]}


def test_timeout_seconds_reaches_the_runner() -> None:
    runner = Runner()
    run(machine(T=task(TimeoutSeconds=30, HeartbeatSeconds=10, End=True)), {}, runner)
    assert (runner.calls[0][2].timeout_seconds, runner.calls[0][2].heartbeat_seconds) == (30, 10)
    runner = Runner()
    run(machine(T=task(TimeoutSecondsPath="$.t", End=True)), {"t": 7}, runner)
    assert runner.calls[0][2].timeout_seconds == 7
    runner = Runner()
    run(machine(T=task(End=True)), {}, runner)
    assert runner.calls[0][2].timeout_seconds is None


# -- Choice ---------------------------------------------------------------------------------------------------

CHOICE_INPUT = {
    "s": "train-42",
    "n": 5,
    "f": 2.5,
    "b": True,
    "t": "2024-05-01T12:00:00Z",
    "later": "2024-05-02T00:00:00.5+02:00",
    "nil": None,
    "other": 5,
}


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"Variable": "$.s", "StringEquals": "train-42"}, True),
        ({"Variable": "$.s", "StringLessThan": "z"}, True),
        ({"Variable": "$.s", "StringGreaterThanEquals": "train-42"}, True),
        ({"Variable": "$.s", "StringMatches": "train-*"}, True),
        ({"Variable": "$.s", "StringMatches": "train-\\*"}, False),
        ({"Variable": "$.s", "StringEqualsPath": "$.s"}, True),
        ({"Variable": "$.n", "NumericEquals": 5}, True),
        ({"Variable": "$.n", "NumericLessThan": 5}, False),
        ({"Variable": "$.f", "NumericGreaterThan": 2}, True),
        ({"Variable": "$.n", "NumericLessThanEquals": 5.0}, True),
        ({"Variable": "$.n", "NumericEqualsPath": "$.other"}, True),
        ({"Variable": "$.s", "NumericEquals": 5}, False),  # a type mismatch is false, not an error
        ({"Variable": "$.b", "BooleanEquals": True}, True),
        ({"Variable": "$.n", "BooleanEquals": True}, False),
        ({"Variable": "$.t", "TimestampEquals": "2024-05-01T12:00:00Z"}, True),
        ({"Variable": "$.t", "TimestampLessThanPath": "$.later"}, True),
        ({"Variable": "$.later", "TimestampGreaterThan": "2024-05-01T21:00:00Z"}, True),
        ({"Variable": "$.nil", "IsNull": True}, True),
        ({"Variable": "$.absent", "IsPresent": False}, True),
        ({"Variable": "$.s", "IsPresent": True}, True),
        ({"Variable": "$.n", "IsNumeric": True}, True),
        ({"Variable": "$.b", "IsNumeric": True}, False),
        ({"Variable": "$.s", "IsString": True}, True),
        ({"Variable": "$.b", "IsBoolean": True}, True),
        ({"Variable": "$.t", "IsTimestamp": True}, True),
        ({"Variable": "$.s", "IsTimestamp": False}, True),
        ({"And": [{"Variable": "$.n", "NumericEquals": 5}, {"Variable": "$.b", "BooleanEquals": False}]}, False),
        ({"Or": [{"Variable": "$.n", "NumericEquals": 1}, {"Variable": "$.b", "BooleanEquals": True}]}, True),
        ({"Not": {"Variable": "$.n", "NumericEquals": 1}}, True),
        ({"Variable": "$$.Execution.Name", "StringEquals": "exec-1"}, True),
    ],
)
def test_choice_operators(rule: dict[str, Any], expected: bool) -> None:
    definition = machine(
        C={"Type": "Choice", "Choices": [{**rule, "Next": "Yes"}], "Default": "No"},
        Yes={"Type": "Succeed"},
        No={"Type": "Succeed"},
    )
    result = run(definition, CHOICE_INPUT)
    assert result.states == ["C", "Yes" if expected else "No"]
    assert result.output == CHOICE_INPUT


def test_choice_without_match_or_default_fails() -> None:
    definition = machine(
        C={"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericEquals": 1, "Next": "Y"}]},
        Y={"Type": "Succeed"},
    )
    result = run(definition, {"n": 2})
    assert (result.status, result.error) == ("FAILED", "States.NoChoiceMatched")


def test_choice_on_a_missing_variable_is_a_runtime_error() -> None:
    definition = machine(
        C={"Type": "Choice", "Choices": [{"Variable": "$.zz", "NumericEquals": 1, "Next": "Y"}], "Default": "Y"},
        Y={"Type": "Succeed"},
    )
    assert run(definition, {}).error == "States.Runtime"


def test_choice_loop_is_stopped_by_the_transition_limit() -> None:
    definition = machine(
        P={"Type": "Pass", "Next": "C"},
        C={"Type": "Choice", "Choices": [{"Variable": "$.x", "IsPresent": True, "Next": "P"}], "Default": "E"},
        E={"Type": "Succeed"},
    )
    result = run(definition, {"x": 1}, max_transitions=50)
    assert (result.status, result.error) == ("FAILED", "States.Runtime")
    assert len(result.states) == 50


# -- Wait, Fail, Succeed ----------------------------------------------------------------------------------------


def test_wait_variants_use_the_injected_sleep() -> None:
    delays: list[float] = []
    definition = machine(
        W1={"Type": "Wait", "Seconds": 5, "Next": "W2"},
        W2={"Type": "Wait", "SecondsPath": "$.s", "Next": "W3"},
        W3={"Type": "Wait", "Timestamp": (NOW + timedelta(seconds=90)).strftime("%Y-%m-%dT%H:%M:%SZ"), "Next": "W4"},
        W4={"Type": "Wait", "TimestampPath": "$.past", "End": True},
    )
    result = run(definition, {"s": 7, "past": "2000-01-01T00:00:00Z"}, delays=delays)
    assert result.status == "SUCCEEDED"
    assert delays == [5, 7, 90.0, 0.0]


def test_wait_seconds_path_must_be_a_non_negative_integer() -> None:
    result = run(machine(W={"Type": "Wait", "SecondsPath": "$.s", "End": True}), {"s": "soon"})
    assert result.error == "States.Runtime"


def test_fail_with_static_and_dynamic_error() -> None:
    static = run(machine(F={"Type": "Fail", "Error": "Boom", "Cause": "because"}))
    assert (static.status, static.error, static.cause) == ("FAILED", "Boom", "because")
    dynamic = machine(F={"Type": "Fail", "ErrorPath": "$.e", "CausePath": "States.Format('code {}', $.c)"})
    result = run(dynamic, {"e": "Dyn", "c": 7})
    assert (result.error, result.cause) == ("Dyn", "code 7")
    assert result.output is None


def test_succeed_applies_input_and_output_paths() -> None:
    result = run(machine(S={"Type": "Succeed", "InputPath": "$.a", "OutputPath": "$.b"}), {"a": {"b": 3}})
    assert result.output == 3


# -- Parallel -------------------------------------------------------------------------------------------------


def test_parallel_runs_branches_in_order_and_collects_outputs() -> None:
    branch = lambda value: {"StartAt": "B", "States": {"B": {"Type": "Pass", "Result": value, "End": True}}}  # noqa: E731
    definition = machine(
        P={"Type": "Parallel", "Branches": [branch(1), branch(2)], "ResultPath": "$.both", "Next": "Done"},
        Done={"Type": "Succeed"},
    )
    result = run(definition, {"x": 0})
    assert result.output == {"x": 0, "both": [1, 2]}
    assert result.states == ["P", "B", "B", "Done"]


def test_parallel_branch_failure_is_caught_with_the_branch_error() -> None:
    failing = {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "BranchBoom", "Cause": "c"}}}
    definition = machine(
        P={
            "Type": "Parallel",
            "Branches": [failing],
            "Catch": [{"ErrorEquals": ["BranchBoom"], "Next": "H"}],
            "End": True,
        },
        H={"Type": "Pass", "End": True},
    )
    assert run(definition).output == {"Error": "BranchBoom", "Cause": "c"}


# -- context object, listener, history ---------------------------------------------------------------------


def test_context_object_shape() -> None:
    runner = Runner()
    run(machine(T=task(End=True)), {"in": 1}, runner)
    context = runner.calls[0][2].context_object
    assert context["Execution"] == {
        "Id": "arn:aws:states:local:000000000000:execution:Test:exec-1",
        "Name": "exec-1",
        "StartTime": "2024-05-01T12:00:00.000Z",
        "Input": {"in": 1},
        "RoleArn": "arn:aws:iam::000000000000:role/nyanops-local",
    }
    assert context["StateMachine"] == {"Id": "arn:aws:states:local:000000000000:stateMachine:Test", "Name": "Test"}
    assert context["State"] == {"Name": "T", "EnteredTime": "2024-05-01T12:00:00.000Z", "RetryCount": 0}


class Recorder(NullListener):
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def execution_started(self, name: str, input: Any) -> None:
        self.calls.append(("started", name))

    def state_entered(self, state_name: str, state_type: str, input: Any) -> None:
        self.calls.append(("entered", state_name, state_type))

    def state_exited(self, state_name: str, output: Any) -> None:
        self.calls.append(("exited", state_name))

    def state_failed(self, state_name: str, error: str, cause: str | None) -> None:
        self.calls.append(("failed", state_name, error))

    def state_retry(self, state_name: str, error: str, cause: str | None, attempt: int, delay_seconds: float) -> None:
        self.calls.append(("retry", state_name, attempt, delay_seconds))

    def state_caught(self, state_name: str, error: str, next_state: str) -> None:
        self.calls.append(("caught", state_name, error, next_state))

    def execution_succeeded(self, output: Any) -> None:
        self.calls.append(("succeeded",))

    def execution_failed(self, error: str | None, cause: str | None) -> None:
        self.calls.append(("execution_failed", error))

    def execution_aborted(self, reason: str) -> None:
        self.calls.append(("aborted", reason))


def test_listener_sees_retry_catch_and_the_end() -> None:
    listener = Recorder()
    definition = machine(
        T=task(
            Retry=[{"ErrorEquals": ["E"], "MaxAttempts": 1}],
            Catch=[{"ErrorEquals": ["States.ALL"], "Next": "F"}],
            End=True,
        ),
        F={"Type": "Fail", "Error": "Final"},
    )
    result = run(definition, {}, Runner(TaskFailed("E", ""), TaskFailed("E", "")), listener=listener)
    assert listener.calls == [
        ("started", "exec-1"),
        ("entered", "T", "Task"),
        ("failed", "T", "E"),
        ("retry", "T", 1, 1.0),
        ("failed", "T", "E"),
        ("caught", "T", "E", "F"),
        ("exited", "T"),
        ("entered", "F", "Fail"),
        ("failed", "F", "Final"),
        ("execution_failed", "Final"),
    ]
    types = [event["type"] for event in result.history]
    assert types == [
        "ExecutionStarted",
        "TaskStateEntered",
        "TaskScheduled",
        "TaskStarted",
        "TaskFailed",
        "TaskScheduled",
        "TaskStarted",
        "TaskFailed",
        "TaskStateExited",
        "FailStateEntered",
        "ExecutionFailed",
    ]
    assert [event["id"] for event in result.history] == list(range(1, len(types) + 1))
    assert all(event["timestamp"] == "2024-05-01T12:00:00.000Z" for event in result.history)


def test_keyboard_interrupt_aborts_and_propagates() -> None:
    listener = Recorder()
    with pytest.raises(KeyboardInterrupt):
        run(machine(T=task(End=True)), {}, Runner(KeyboardInterrupt()), listener=listener)
    assert listener.calls[-1] == ("aborted", "interrupted by KeyboardInterrupt")


def test_non_json_task_result_is_a_runtime_error() -> None:
    result = run(machine(T=task(End=True)), {}, Runner({"when": object()}))
    assert result.error == "States.Runtime"


def test_execution_timeout() -> None:
    moments = iter([NOW, NOW, NOW + timedelta(seconds=5)] + [NOW + timedelta(seconds=99)] * 20)
    definition = {**machine(A={"Type": "Pass", "Next": "B"}, B={"Type": "Pass", "End": True}), "TimeoutSeconds": 10}
    sm = load_state_machine(definition)
    result = sm.run({}, execution_name="x", task_runner=Runner(), now=lambda: next(moments))
    assert (result.status, result.error) == ("FAILED", "States.Timeout")


def test_non_json_execution_input_is_refused() -> None:
    with pytest.raises(ValueError, match="execution input"):
        run(machine(T=task(End=True)), {"when": datetime(2024, 1, 1)})
