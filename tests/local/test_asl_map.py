"""The Map state (INLINE, JSONPath): data flow, item order, concurrency limits, failures, Retry/Catch, history,
interrupts."""

from __future__ import annotations

import _thread
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from nyanops.local.asl import ExecutionResult, NullListener, TaskContext, TaskFailed, load_state_machine

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
RESOURCE = "arn:aws:states:::lambda:invoke"


def machine(**states: Any) -> dict[str, Any]:
    return {"StartAt": next(iter(states)), "States": states}


def task(**extra: Any) -> dict[str, Any]:
    return {"Type": "Task", "Resource": RESOURCE, **extra}


def processor(**states: Any) -> dict[str, Any]:
    return {"ProcessorConfig": {"Mode": "INLINE"}, **machine(**states)}


def run(
    definition: dict[str, Any], input: Any, runner: Callable[..., Any] | None = None, **kwargs: Any
) -> ExecutionResult:
    kwargs.setdefault("sleep", [].append)
    return load_state_machine(definition, name="Test").run(
        input, execution_name="exec-1", task_runner=runner or Echo(), now=lambda: NOW, **kwargs
    )


class Echo:
    """Returns its parameters; ``fail`` maps an item's ``n`` to the error its Task raises."""

    def __init__(self, fail: dict[int, TaskFailed] | None = None) -> None:
        self.fail = fail or {}
        self.calls: list[tuple[Any, TaskContext]] = []
        self.lock = threading.Lock()

    def __call__(self, resource: str, parameters: Any, ctx: TaskContext) -> Any:
        with self.lock:
            self.calls.append((parameters, ctx))
        if parameters.get("n") in self.fail:
            raise self.fail[parameters["n"]]
        return {"echo": parameters}


def events(result: ExecutionResult, *kinds: str) -> list[tuple[Any, ...]]:
    return [
        (e["type"], e["details"].get("index"))
        for e in result.history
        if e["type"] in kinds or (not kinds and e["type"].startswith("Map"))
    ]


# -- data flow -----------------------------------------------------------------------------------------------


def test_items_item_selector_and_result_processing_keep_item_order() -> None:
    definition = machine(
        M={
            "Type": "Map",
            "InputPath": "$.job",
            "ItemsPath": "$.items",
            "ItemSelector": {
                "n.$": "$$.Map.Item.Value.n",
                "index.$": "$$.Map.Item.Index",
                "state.$": "$$.State.Name",
                "owner.$": "$.owner",
            },
            "ItemProcessor": processor(T=task(ResultSelector={"got.$": "$.echo"}, End=True)),
            "ResultSelector": {"all.$": "$[*].got", "count.$": "States.ArrayLength($)"},
            "ResultPath": "$.job.out",
            "OutputPath": "$.job",
            "End": True,
        }
    )
    items = [{"n": n} for n in (5, 3, 9, 1)]
    result = run(definition, {"job": {"items": items, "owner": "cat"}, "other": 1})
    assert result.status == "SUCCEEDED"
    assert result.output == {
        "items": items,
        "owner": "cat",
        "out": {
            "all": [{"n": n, "index": i, "state": "M", "owner": "cat"} for i, n in enumerate((5, 3, 9, 1))],
            "count": 4,
        },
    }


def test_default_items_path_and_no_selector_pass_each_item_whole() -> None:
    definition = machine(M={"Type": "Map", "ItemProcessor": processor(P={"Type": "Pass", "End": True}), "End": True})
    assert run(definition, [{"a": 1}, 2, "three", None]).output == [{"a": 1}, 2, "three", None]


def test_legacy_iterator_and_parameters() -> None:
    definition = machine(
        M={
            "Type": "Map",
            "ItemsPath": "$.xs",
            "Parameters": {"v.$": "$$.Map.Item.Value", "i.$": "$$.Map.Item.Index"},
            "Iterator": machine(P={"Type": "Pass", "End": True}),
            "End": True,
        }
    )
    assert run(definition, {"xs": ["a", "b"]}).output == [{"v": "a", "i": 0}, {"v": "b", "i": 1}]


def test_map_item_exists_only_in_item_selector() -> None:
    """As in Step Functions (the context object's Map data is for ItemSelector): a state of the iteration reading
    $$.Map is a States.Runtime error, which no Catch handles."""
    definition = machine(
        M={
            "Type": "Map",
            "ItemProcessor": processor(P={"Type": "Pass", "Parameters": {"i.$": "$$.Map.Item.Index"}, "End": True}),
            "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}],
            "End": True,
        },
        Caught={"Type": "Succeed"},
    )
    result = run(definition, [1])
    assert (result.status, result.error) == ("FAILED", "States.Runtime")
    assert "$$.Map.Item.Index" in (result.cause or "")


def test_empty_array_gives_an_empty_result() -> None:
    definition = machine(
        M={
            "Type": "Map",
            "ItemsPath": "$.xs",
            "ItemProcessor": processor(T=task(End=True)),
            "ResultPath": "$.out",
            "End": True,
        }
    )
    result = run(definition, {"xs": []})
    assert result.output == {"xs": [], "out": []}
    assert events(result) == [
        ("MapStateEntered", None),
        ("MapStateStarted", None),
        ("MapStateSucceeded", None),
        ("MapStateExited", None),
    ]
    assert next(e for e in result.history if e["type"] == "MapStateStarted")["details"]["length"] == 0


@pytest.mark.parametrize("items", [{"a": 1}, "abc", 3, None])
def test_items_path_must_select_an_array(items: Any) -> None:
    definition = machine(
        M={
            "Type": "Map",
            "ItemsPath": "$.xs",
            "ItemProcessor": processor(T=task(End=True)),
            "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "C"}],
            "End": True,
        },
        C={"Type": "Succeed"},
    )
    result = run(definition, {"xs": items})
    assert (result.status, result.error) == ("FAILED", "States.Runtime")
    assert "ItemsPath '$.xs' must select a JSON array" in (result.cause or "")


@pytest.mark.parametrize("value", [-1, 1.5, "2", True, None])
def test_max_concurrency_path_must_select_a_non_negative_integer(value: Any) -> None:
    definition = machine(
        M={
            "Type": "Map",
            "ItemsPath": "$.xs",
            "MaxConcurrencyPath": "$.n",
            "ItemProcessor": processor(T=task(End=True)),
            "End": True,
        }
    )
    result = run(definition, {"xs": [1], "n": value})
    assert (result.status, result.error) == ("FAILED", "States.Runtime")
    assert "MaxConcurrencyPath '$.n' must select a non-negative integer" in (result.cause or "")


def test_max_parallel_must_be_a_positive_integer() -> None:
    with pytest.raises(ValueError, match="max_parallel"):
        run(machine(P={"Type": "Pass", "End": True}), {}, max_parallel=0)


# -- concurrency -----------------------------------------------------------------------------------------------


class Overlap:
    """Each call waits (up to 5 s) until ``target`` calls run at once or every item has started, then returns:
    records how many ran at once at most, and which threads ran them."""

    def __init__(self, items: int, target: int) -> None:
        self.items, self.target = items, target
        self.active = self.started = self.most = 0
        self.lock = threading.Lock()
        self.threads: set[int] = set()

    def __call__(self, resource: str, parameters: Any, ctx: TaskContext) -> Any:
        with self.lock:
            self.active += 1
            self.started += 1
            self.most = max(self.most, self.active)
            self.threads.add(threading.get_ident())
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with self.lock:
                if self.active >= self.target or self.started == self.items:
                    break
            time.sleep(0.002)
        time.sleep(0.01)
        with self.lock:
            self.active -= 1
        return parameters


def concurrency_machine(**fields: Any) -> dict[str, Any]:
    return machine(
        M={"Type": "Map", "ItemsPath": "$.xs", "ItemProcessor": processor(T=task(End=True)), "End": True, **fields}
    )


@pytest.mark.parametrize(
    ("fields", "max_parallel", "expected"),
    [
        ({"MaxConcurrency": 2}, None, 2),
        ({"MaxConcurrency": 1}, None, 1),
        ({}, None, 7),  # 0 / absent: no limit
        ({"MaxConcurrency": 0}, 3, 3),  # the local cap
        ({"MaxConcurrency": 5}, 2, 2),  # the smaller of the two
        ({"MaxConcurrency": 2}, 4, 2),
        ({"MaxConcurrencyPath": "$.limit"}, None, 3),
    ],
)
def test_concurrency_never_exceeds_the_limit(fields: dict[str, Any], max_parallel: int | None, expected: int) -> None:
    runner = Overlap(items=7, target=expected)
    started = time.monotonic()
    result = run(concurrency_machine(**fields), {"xs": list(range(7)), "limit": 3}, runner, max_parallel=max_parallel)
    assert result.status == "SUCCEEDED" and result.output == list(range(7))
    assert runner.most == expected
    assert time.monotonic() - started < 4, "the runner waited for more iterations than were allowed to run"
    if expected > 1:
        assert len(runner.threads) >= expected


def test_iterations_start_in_item_order() -> None:
    result = run(concurrency_machine(MaxConcurrency=1), {"xs": list(range(5))}, Overlap(5, 1))
    assert [i for kind, i in events(result, "MapIterationStarted")] == [0, 1, 2, 3, 4]
    assert events(result, "MapIterationStarted", "MapIterationSucceeded") == [
        (kind, i) for i in range(5) for kind in ("MapIterationStarted", "MapIterationSucceeded")
    ]


# -- failures ---------------------------------------------------------------------------------------------------


def failing_map(catch_inside: bool, **fields: Any) -> dict[str, Any]:
    inner: dict[str, Any] = {"Parameters": {"n.$": "$"}, "End": True}
    if catch_inside:
        inner["Catch"] = [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Failed"}]
        inner["ResultPath"] = "$.result"
        inner["Parameters"] = {"n.$": "$.n"}
    states: dict[str, Any] = {"T": task(**inner)}
    if catch_inside:
        states["Failed"] = {"Type": "Pass", "End": True}
    return machine(
        M={
            "Type": "Map",
            "ItemsPath": "$.xs",
            "ItemProcessor": processor(**states),
            "ResultPath": "$.out",
            "End": True,
            **fields,
        }
    )


def test_a_failure_caught_inside_the_iteration_does_not_stop_its_siblings() -> None:
    runner = Echo(fail={1: TaskFailed("Trial.Failed", "epochs ran out")})
    result = run(failing_map(catch_inside=True), {"xs": [{"n": 0}, {"n": 1}, {"n": 2}]}, runner)
    assert result.status == "SUCCEEDED"
    assert result.output["out"] == [
        {"n": 0, "result": {"echo": {"n": 0}}},
        {"n": 1, "error": {"Error": "Trial.Failed", "Cause": "epochs ran out"}},
        {"n": 2, "result": {"echo": {"n": 2}}},
    ]
    assert sorted(i for _, i in events(result, "MapIterationSucceeded")) == [0, 1, 2]


def test_all_iterations_failing_but_caught_inside() -> None:
    runner = Echo(fail={n: TaskFailed("Trial.Failed", f"trial {n}") for n in range(3)})
    result = run(failing_map(catch_inside=True), {"xs": [{"n": 0}, {"n": 1}, {"n": 2}]}, runner)
    assert result.status == "SUCCEEDED"
    assert [o["error"]["Cause"] for o in result.output["out"]] == ["trial 0", "trial 1", "trial 2"]


def test_an_uncaught_iteration_failure_fails_the_map_with_its_error() -> None:
    runner = Echo(fail={1: TaskFailed("Trial.Failed", "epochs ran out")})
    result = run(failing_map(catch_inside=False, MaxConcurrency=1), {"xs": [0, 1, 2, 3]}, runner)
    assert (result.status, result.error, result.cause) == ("FAILED", "Trial.Failed", "epochs ran out")
    # One at a time: the third and fourth items never start.
    assert events(result) == [
        ("MapStateEntered", None),
        ("MapStateStarted", None),
        ("MapIterationStarted", 0),
        ("MapIterationSucceeded", 0),
        ("MapIterationStarted", 1),
        ("MapIterationFailed", 1),
        ("MapStateFailed", None),
    ]
    assert [params for params, _ in runner.calls] == [{"n": 0}, {"n": 1}]


def test_all_iterations_failing_uncaught_fail_the_map_with_the_first_error() -> None:
    runner = Echo(fail={n: TaskFailed(f"E{n}", "c") for n in range(3)})
    result = run(failing_map(catch_inside=False, MaxConcurrency=1), {"xs": [0, 1, 2]}, runner)
    assert (result.status, result.error) == ("FAILED", "E0")
    assert events(result, "MapIterationStarted") == [("MapIterationStarted", 0)]


def test_map_catch_handles_the_iteration_error() -> None:
    runner = Echo(fail={2: TaskFailed("Trial.Failed", "boom")})
    definition = failing_map(
        catch_inside=False, Catch=[{"ErrorEquals": ["States.TaskFailed"], "ResultPath": "$.err", "Next": "Handled"}]
    )
    del definition["States"]["M"]["End"]
    definition["States"]["M"]["Next"] = "Done"
    definition["States"]["Handled"] = {"Type": "Pass", "End": True}
    definition["States"]["Done"] = {"Type": "Succeed"}
    result = run(definition, {"xs": [0, 1, 2]}, runner)
    assert result.status == "SUCCEEDED"
    assert result.output == {"xs": [0, 1, 2], "err": {"Error": "Trial.Failed", "Cause": "boom"}}
    assert result.states[-1] == "Handled"


class Blocking:
    """Item 0 fails at once; the others block until their Task is cancelled (or 5 s), and say whether it was."""

    def __init__(self) -> None:
        self.cancelled: dict[int, bool] = {}
        self.lock = threading.Lock()

    def __call__(self, resource: str, parameters: Any, ctx: TaskContext) -> Any:
        n = parameters["n"]
        if n == 0:
            time.sleep(0.05)  # let the siblings start
            raise TaskFailed("Trial.Failed", "first")
        stopped = ctx.cancelled.wait(5)
        with self.lock:
            self.cancelled[n] = stopped
        if stopped:
            raise RuntimeError("stopped on request")  # what a job runner does when told to stop
        return parameters


def test_a_failing_iteration_aborts_the_running_ones_and_starts_no_more() -> None:
    runner = Blocking()
    started = time.monotonic()
    result = run(failing_map(catch_inside=False, MaxConcurrency=3), {"xs": list(range(6))}, runner)
    assert time.monotonic() - started < 4
    assert (result.status, result.error, result.cause) == ("FAILED", "Trial.Failed", "first")
    assert runner.cancelled == {1: True, 2: True}
    kinds = events(result, "MapIterationStarted", "MapIterationFailed", "MapIterationAborted")
    assert sorted(kinds, key=lambda k: (k[1], k[0])) == [
        ("MapIterationFailed", 0),
        ("MapIterationStarted", 0),
        ("MapIterationAborted", 1),
        ("MapIterationStarted", 1),
        ("MapIterationAborted", 2),
        ("MapIterationStarted", 2),
    ]
    # An aborted Task is not a failed Task: no TaskFailed for the siblings, and no retry.
    assert [e["details"]["error"] for e in result.history if e["type"] == "TaskFailed"] == ["Trial.Failed"]


def test_a_wait_in_an_aborted_iteration_ends_early() -> None:
    """With the executor's own sleep, a sibling's failure cuts a Wait (or a Retry delay) short."""
    definition = machine(
        M={
            "Type": "Map",
            "ItemProcessor": processor(
                C={"Type": "Choice", "Choices": [{"Variable": "$", "NumericEquals": 0, "Next": "F"}], "Default": "W"},
                F={"Type": "Fail", "Error": "Boom"},
                W={"Type": "Wait", "Seconds": 60, "End": True},
            ),
            "End": True,
        }
    )
    started = time.monotonic()
    result = load_state_machine(definition).run([1, 0], execution_name="x", task_runner=Echo())
    assert (result.status, result.error) == ("FAILED", "Boom")
    assert time.monotonic() - started < 5
    assert ("MapIterationAborted", 0) in events(result)


def test_retry_on_the_map_runs_every_item_again() -> None:
    attempts: list[Any] = []

    def flaky(resource: str, parameters: Any, ctx: TaskContext) -> Any:
        attempts.append(parameters)
        if len(attempts) == 2:
            raise TaskFailed("Sweep.Busy", "try again")
        return parameters

    delays: list[float] = []
    definition = failing_map(
        catch_inside=False,
        MaxConcurrency=1,
        Retry=[{"ErrorEquals": ["Sweep.Busy"], "IntervalSeconds": 3, "MaxAttempts": 1}],
    )
    result = run(definition, {"xs": [0, 1]}, flaky, sleep=delays.append)
    assert result.status == "SUCCEEDED" and result.output["out"] == [{"n": 0}, {"n": 1}]
    assert delays == [3.0]
    assert [p["n"] for p in attempts] == [0, 1, 0, 1]
    assert [kind for kind, _ in events(result, "MapStateStarted", "MapStateFailed", "MapStateSucceeded")] == [
        "MapStateStarted",
        "MapStateFailed",
        "MapStateStarted",
        "MapStateSucceeded",
    ]


def test_runtime_errors_in_an_iteration_are_not_caught_by_the_map() -> None:
    definition = machine(
        M={
            "Type": "Map",
            "ItemProcessor": processor(T=task(Parameters={"x.$": "$.missing"}, End=True)),
            "Retry": [{"ErrorEquals": ["States.ALL"]}],
            "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "C"}],
            "End": True,
        },
        C={"Type": "Succeed"},
    )
    result = run(definition, [{}])
    assert (result.status, result.error) == ("FAILED", "States.Runtime")


def test_nested_maps() -> None:
    inner = {
        "Type": "Map",
        "ItemsPath": "$.row",
        "ItemProcessor": processor(
            T=task(Parameters={"v.$": "$"}, ResultSelector={"v.$": "$.echo.v"}, OutputPath="$.v", End=True)
        ),
        "End": True,
    }
    definition = machine(
        M={
            "Type": "Map",
            "ItemSelector": {"row.$": "$$.Map.Item.Value"},
            "ItemProcessor": processor(Inner=inner),
            "End": True,
        }
    )
    assert run(definition, [[1, 2], [3], []], max_parallel=2).output == [[1, 2], [3], []]


# -- history, listener, interrupts ---------------------------------------------------------------------------------


def test_history_events_have_the_step_functions_shapes() -> None:
    result = run(concurrency_machine(MaxConcurrency=2), {"xs": ["a", "b", "c"]}, Overlap(3, 2))
    history = result.history
    assert [e["id"] for e in history] == list(range(1, len(history) + 1))
    started = next(e for e in history if e["type"] == "MapStateStarted")
    assert started["details"] == {"name": "M", "length": 3}
    iterations = [e for e in history if e["type"].startswith("MapIteration")]
    assert sorted((e["type"], e["details"]["index"]) for e in iterations) == sorted(
        (kind, i) for i in range(3) for kind in ("MapIterationStarted", "MapIterationSucceeded")
    )
    assert all(e["details"]["name"] == "M" for e in iterations)
    # Each iteration's events chain through previousEventId, whatever the interleaving.
    by_id = {e["id"]: e for e in history}
    for done in (e for e in iterations if e["type"] == "MapIterationSucceeded"):
        chain, event = [], done
        while event["type"] != "MapIterationStarted":
            chain.append(event["type"])
            event = by_id[event["previousEventId"]]
        assert event["details"]["index"] == done["details"]["index"]
        assert chain == [
            "MapIterationSucceeded",
            "TaskStateExited",
            "TaskSucceeded",
            "TaskStarted",
            "TaskScheduled",
            "TaskStateEntered",
        ]
    assert [e["type"] for e in history if not e["type"].startswith(("MapIteration", "Task"))] == [
        "ExecutionStarted",
        "MapStateEntered",
        "MapStateStarted",
        "MapStateSucceeded",
        "MapStateExited",
        "ExecutionSucceeded",
    ]


class OneAtATime(NullListener):
    """A listener that notices if two of its calls ever overlap."""

    def __init__(self) -> None:
        self.busy = False
        self.overlaps = 0
        self.entered: list[str] = []

    def _visit(self) -> None:
        if self.busy:
            self.overlaps += 1
        self.busy = True
        time.sleep(0.001)
        self.busy = False

    def state_entered(self, state_name: str, state_type: str, input: Any) -> None:
        self._visit()
        self.entered.append(state_name)

    def state_exited(self, state_name: str, output: Any) -> None:
        self._visit()

    def history_event(self, event: dict[str, Any]) -> None:
        self._visit()


def test_listener_calls_never_overlap() -> None:
    listener = OneAtATime()
    result = run(concurrency_machine(), {"xs": list(range(8))}, Overlap(8, 8), listener=listener)
    assert result.status == "SUCCEEDED"
    assert listener.overlaps == 0
    assert listener.entered.count("T") == 8


def test_ctrl_c_stops_every_iteration_and_propagates() -> None:
    cancelled: dict[int, bool] = {}
    lock = threading.Lock()

    def runner(resource: str, parameters: Any, ctx: TaskContext) -> Any:
        if parameters["n"] == 0:
            time.sleep(0.05)
            _thread.interrupt_main()  # Ctrl-C, delivered to the thread running the execution
        stopped = ctx.cancelled.wait(5)
        with lock:
            cancelled[parameters["n"]] = stopped
        raise RuntimeError("job stopped")

    listener = OneAtATime()
    aborted: list[str] = []
    listener.execution_aborted = aborted.append  # type: ignore[method-assign]
    sm = load_state_machine(failing_map(catch_inside=False, MaxConcurrency=3), name="Test")
    history: list[dict[str, Any]] = []
    listener.history_event = history.append  # type: ignore[method-assign]
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        sm.run({"xs": list(range(5))}, execution_name="x", task_runner=runner, listener=listener)
    assert time.monotonic() - started < 5
    assert cancelled == {0: True, 1: True, 2: True}
    assert aborted == ["interrupted by KeyboardInterrupt"]
    kinds = [(e["type"], e["details"].get("index")) for e in history]
    assert sorted(k for k in kinds if k[0] == "MapIterationAborted") == [("MapIterationAborted", i) for i in range(3)]
    assert [k[0] for k in kinds][-2:] == ["MapStateAborted", "ExecutionAborted"]
    assert not any(k[0] in ("MapIterationFailed", "TaskFailed") for k in kinds)


def test_keyboard_interrupt_raised_inside_an_iteration_propagates() -> None:
    def runner(resource: str, parameters: Any, ctx: TaskContext) -> Any:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(concurrency_machine(), {"xs": [1, 2]}, runner)
