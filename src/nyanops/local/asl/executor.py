"""Running a loaded state machine: state semantics, Retry/Catch, the context object and the history."""

from __future__ import annotations

import copy
import json
import random as _random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path as FsPath
from typing import Any, Protocol

from .choice import evaluate_rule
from .definition import Definition, Retrier, StateDef, load_definition
from .errors import (
    STATES_ALL,
    STATES_NO_CHOICE_MATCHED,
    STATES_RUNTIME,
    STATES_TASK_FAILED,
    STATES_TIMEOUT,
    TERMINAL_ERRORS,
    StatesError,
)
from .listener import ExecutionListener, NullListener
from .paths import Path, apply_result_path
from .templates import Compiled, evaluate_expression, evaluate_template
from .timestamps import iso, parse_timestamp

ACCOUNT = "000000000000"
REGION = "local"
DEFAULT_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/nyanops-local"
DEFAULT_MAX_TRANSITIONS = 10_000


@dataclass(frozen=True)
class TaskContext:
    """What a TaskRunner knows about the Task it runs."""

    state_name: str
    execution_name: str
    attempt: int
    timeout_seconds: int | None
    heartbeat_seconds: int | None
    context_object: dict[str, Any]


class TaskRunner(Protocol):
    """Runs a Task's Resource: returns the raw result or raises TaskFailed(error, cause).

    The runner enforces ``ctx.timeout_seconds`` itself (raising TaskFailed("States.Timeout", ...)).
    Any other exception it raises fails the Task with States.TaskFailed and the exception text as cause.
    """

    def __call__(self, resource: str, parameters: Any, ctx: TaskContext) -> Any:
        """Run ``resource`` with the evaluated Parameters."""


@dataclass
class ExecutionResult:
    """The outcome of one execution."""

    name: str
    execution_arn: str
    status: str
    output: Any = None
    error: str | None = None
    cause: str | None = None
    states: list[str] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    start_time: datetime | None = None
    stop_time: datetime | None = None


class _Terminal(StatesError):
    """An execution-level failure (execution timeout, transition limit) that no Catch may handle."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _json_copy(value: Any, what: str) -> Any:
    """A deep copy restricted to JSON values, so states never share or leak non-JSON objects."""
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as exc:
        raise StatesError(STATES_RUNTIME, f"{what} is not a JSON value: {exc}") from exc


def _matches(error_equals: tuple[str, ...], error: str) -> bool:
    """ErrorEquals matching: States.ALL matches everything (terminal errors never get here);
    States.TaskFailed also matches any error name outside the States. namespace (a service or custom
    error reported by a Task), as Step Functions does."""
    for name in error_equals:
        if name in (STATES_ALL, error):
            return True
        if name == STATES_TASK_FAILED and not error.startswith("States."):
            return True
    return False


def retry_delay(retrier: Retrier, retries_done: int, random: Callable[[], float]) -> float:
    """Seconds before the next retry: IntervalSeconds * BackoffRate^n, capped by MaxDelaySeconds, and with
    JitterStrategy FULL a uniformly random share of that."""
    delay = retrier.interval_seconds * retrier.backoff_rate**retries_done
    if retrier.max_delay_seconds is not None:
        delay = min(delay, retrier.max_delay_seconds)
    if retrier.jitter_full:
        delay = random() * delay
    return float(delay)


class StateMachine:
    """A validated state machine definition, ready to run locally."""

    def __init__(
        self, definition: Definition, name: str, role_arn: str = DEFAULT_ROLE_ARN, *, region: str = REGION,
        account: str = ACCOUNT,
    ) -> None:
        self.definition = definition
        self.name = name
        self.role_arn = role_arn
        self.region, self.account = region, account
        self.arn = f"arn:aws:states:{region}:{account}:stateMachine:{name}"

    def execution_arn(self, execution_name: str) -> str:
        """The ARN of an execution of this state machine (``$$.Execution.Id``)."""
        return f"arn:aws:states:{self.region}:{self.account}:execution:{self.name}:{execution_name}"

    def run(
        self,
        input: Any,
        *,
        execution_name: str,
        task_runner: TaskRunner,
        listener: ExecutionListener | None = None,
        sleep: Callable[[float], None] = time.sleep,
        random: Callable[[], float] = _random.random,
        now: Callable[[], datetime] = _utcnow,
        max_transitions: int = DEFAULT_MAX_TRANSITIONS,
    ) -> ExecutionResult:
        """Run one execution to its end and return its result.

        A failed execution is a result with status FAILED, not an exception; KeyboardInterrupt and
        SystemExit propagate after ``listener.execution_aborted``.
        """
        run = _Execution(
            self, execution_name, task_runner, listener or NullListener(), sleep, random, now, max_transitions
        )
        return run.execute(input)


def load_state_machine(
    source: str | FsPath | dict[str, Any],
    substitutions: dict[str, str] | None = None,
    *,
    name: str | None = None,
    role_arn: str = DEFAULT_ROLE_ARN,
    region: str = REGION,
    account: str = ACCOUNT,
) -> StateMachine:
    """Load, substitute and validate a definition (file path, JSON text or dict).

    Raises a DefinitionError subclass (InvalidDefinition, UnsupportedDefinition, MissingSubstitution)
    for anything the local executor cannot run faithfully.
    """
    definition = load_definition(source, substitutions)
    if name is None:
        if isinstance(source, dict) or str(source).lstrip().startswith("{"):
            name = "StateMachine"
        else:
            name = FsPath(source).name.split(".")[0]
    return StateMachine(definition, name, role_arn, region=region, account=account)


class _Execution:
    """The mutable state of one run (history, visited states, context object)."""

    def __init__(
        self,
        machine: StateMachine,
        name: str,
        runner: TaskRunner,
        listener: ExecutionListener,
        sleep: Callable[[float], None],
        random: Callable[[], float],
        now: Callable[[], datetime],
        max_transitions: int,
    ) -> None:
        self.machine = machine
        self.name = name
        self.runner = runner
        self.listener = listener
        self.sleep = sleep
        self.random = random
        self.now = now
        self.max_transitions = max_transitions
        self.transitions = 0
        self.history: list[dict[str, Any]] = []
        self.states: list[str] = []
        self.context: dict[str, Any] = {}
        self.started = now()

    # -- bookkeeping -------------------------------------------------------------------------------------

    def event(self, kind: str, **details: Any) -> None:
        event = {
            "id": len(self.history) + 1,
            "previousEventId": len(self.history),
            "type": kind,
            "timestamp": iso(self.now()),
            "details": details,
        }
        self.history.append(event)
        self.listener.history_event(event)

    def result(self, status: str, **kwargs: Any) -> ExecutionResult:
        return ExecutionResult(
            name=self.name,
            execution_arn=self.machine.execution_arn(self.name),
            status=status,
            states=self.states,
            history=self.history,
            start_time=self.started,
            stop_time=self.now(),
            **kwargs,
        )

    # -- execution ---------------------------------------------------------------------------------------

    def execute(self, input: Any) -> ExecutionResult:
        try:
            input = _json_copy(input, "the execution input")
        except StatesError as exc:
            # A caller's mistake, not an execution failure: nothing has started yet.
            raise ValueError(exc.cause) from exc
        self.context = {
            "Execution": {
                "Id": self.machine.execution_arn(self.name),
                "Name": self.name,
                "StartTime": iso(self.started),
                "Input": copy.deepcopy(input),
                "RoleArn": self.machine.role_arn,
            },
            "StateMachine": {"Id": self.machine.arn, "Name": self.machine.name},
            "State": {},
            "Task": {},
        }
        self.listener.execution_started(self.name, input)
        self.event("ExecutionStarted", input=input, roleArn=self.machine.role_arn)
        try:
            output = self.run_machine(self.machine.definition, input, top_level=True)
        except StatesError as exc:
            error = exc.error or None
            self.listener.execution_failed(error, exc.cause)
            self.event("ExecutionFailed", error=error, cause=exc.cause)
            return self.result("FAILED", error=error, cause=exc.cause)
        except (KeyboardInterrupt, SystemExit) as exc:
            reason = f"interrupted by {type(exc).__name__}"
            self.listener.execution_aborted(reason)
            self.event("ExecutionAborted", cause=reason)
            raise
        self.listener.execution_succeeded(output)
        self.event("ExecutionSucceeded", output=output)
        return self.result("SUCCEEDED", output=output)

    def run_machine(self, definition: Definition, data: Any, top_level: bool = False) -> Any:
        name: str | None = definition.start_at
        while name is not None:
            self.transitions += 1
            if self.transitions > self.max_transitions:
                raise _Terminal(
                    STATES_RUNTIME, f"more than {self.max_transitions} state transitions (an infinite loop?)"
                )
            timeout = self.machine.definition.timeout_seconds
            if timeout is not None and (self.now() - self.started).total_seconds() > timeout:
                raise _Terminal(STATES_TIMEOUT, f"the execution ran longer than TimeoutSeconds ({timeout})")
            data, name = self.run_state(definition.states[name], data)
        return data

    def run_state(self, state: StateDef, raw_input: Any) -> tuple[Any, str | None]:
        self.states.append(state.name)
        self.context["State"] = {"Name": state.name, "EnteredTime": iso(self.now()), "RetryCount": 0}
        self.context["Task"] = {}
        self.listener.state_entered(state.name, state.type, raw_input)
        self.event(f"{state.type}StateEntered", name=state.name, input=raw_input)
        try:
            if state.type in ("Task", "Parallel"):
                output, next_state = self.run_with_retry(state, raw_input)
            else:
                handler = {
                    "Pass": self.run_pass,
                    "Choice": self.run_choice,
                    "Wait": self.run_wait,
                    "Succeed": self.run_succeed,
                    "Fail": self.run_fail,
                }[state.type]
                output, next_state = handler(state, raw_input)
        except StatesError as exc:
            if state.type not in ("Task", "Parallel"):
                # Task/Parallel report each failed attempt themselves (before Retry/Catch).
                self.listener.state_failed(state.name, exc.error, exc.cause)
            raise
        self.listener.state_exited(state.name, output)
        self.event(f"{state.type}StateExited", name=state.name, output=output)
        return output, next_state

    # -- input/output processing -------------------------------------------------------------------------

    def select(self, path: Path | None, data: Any, fld: str) -> Any:
        """InputPath/OutputPath: null gives {}; a path that selects nothing is States.Runtime."""
        if path is None:
            return {}
        return evaluate_expression(path, fld, data, self.context, self.random)

    def template(self, compiled: Compiled | None, data: Any) -> Any:
        if compiled is None:
            return data
        return evaluate_template(compiled, data, self.context, self.random)

    # -- Task / Parallel with Retry and Catch --------------------------------------------------------------

    def run_with_retry(self, state: StateDef, raw_input: Any) -> tuple[Any, str | None]:
        retries_per_retrier = [0] * len(state.retriers)
        retry_count = 0
        while True:
            try:
                return self.attempt(state, raw_input, retry_count), state.next
            except StatesError as exc:
                failure = exc
            error, cause = failure.error, failure.cause
            self.listener.state_failed(state.name, error, cause)
            if isinstance(failure, _Terminal) or error in TERMINAL_ERRORS:
                raise failure
            # Only the first Retrier whose ErrorEquals matches applies, exhausted or not.
            index = next((i for i, r in enumerate(state.retriers) if _matches(r.error_equals, error)), None)
            if index is not None and retries_per_retrier[index] < state.retriers[index].max_attempts:
                delay = retry_delay(state.retriers[index], retries_per_retrier[index], self.random)
                retries_per_retrier[index] += 1
                retry_count += 1
                self.listener.state_retry(state.name, error, cause, retry_count, delay)
                self.sleep(delay)
                self.context["State"]["RetryCount"] = retry_count
                continue
            catcher = next((c for c in state.catchers if _matches(c.error_equals, error)), None)
            if catcher is None:
                raise failure
            # The catcher's ResultPath applies to the state's raw input; OutputPath is not applied.
            error_output = {"Error": error, "Cause": cause if cause is not None else ""}
            output = apply_result_path(raw_input, error_output, catcher.result_path)
            self.listener.state_caught(state.name, error, catcher.next)
            return output, catcher.next

    def attempt(self, state: StateDef, raw_input: Any, retry_count: int) -> Any:
        try:
            effective = self.select(state.input_path, raw_input, "InputPath")
            parameters = self.template(state.parameters, effective)
            if state.type == "Task":
                result = self.invoke(state, effective, parameters, retry_count)
            else:
                result = self.run_branches(state, parameters)
            result = self.template(state.result_selector, result)
            combined = apply_result_path(raw_input, result, state.result_path)
            return self.select(state.output_path, combined, "OutputPath")
        except StatesError as exc:
            kind = "TaskFailed" if state.type == "Task" else "ParallelStateFailed"
            self.event(kind, name=state.name, error=exc.error, cause=exc.cause)
            raise

    def invoke(self, state: StateDef, effective: Any, parameters: Any, retry_count: int) -> Any:
        assert state.resource is not None
        timeout = state.timeout_seconds
        if state.timeout_seconds_path is not None:
            timeout = self.positive_int_at(state.timeout_seconds_path, effective, "TimeoutSecondsPath")
        heartbeat = state.heartbeat_seconds
        if state.heartbeat_seconds_path is not None:
            heartbeat = self.positive_int_at(state.heartbeat_seconds_path, effective, "HeartbeatSecondsPath")
        if state.resource.endswith(".waitForTaskToken"):
            self.context["Task"] = {"Token": uuid.uuid4().hex}
        ctx = TaskContext(
            state_name=state.name,
            execution_name=self.name,
            attempt=retry_count,
            timeout_seconds=timeout,
            heartbeat_seconds=heartbeat,
            context_object=copy.deepcopy(self.context),
        )
        self.event(
            "TaskScheduled",
            name=state.name,
            resource=state.resource,
            parameters=parameters,
            timeoutInSeconds=timeout,
            heartbeatInSeconds=heartbeat,
        )
        self.event("TaskStarted", name=state.name, resource=state.resource)
        try:
            result = self.runner(state.resource, copy.deepcopy(parameters), ctx)
        except StatesError:
            raise
        except Exception as exc:
            raise StatesError(STATES_TASK_FAILED, str(exc) or type(exc).__name__) from exc
        result = _json_copy(result, f"the result of {state.resource}")
        self.event("TaskSucceeded", name=state.name, resource=state.resource, output=result)
        return result

    def positive_int_at(self, path: Path, data: Any, fld: str) -> int:
        value = evaluate_expression(path, fld, data, self.context, self.random)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise StatesError(
                STATES_RUNTIME, f"{fld} '{path.text}' must select a positive integer, got {json.dumps(value)}"
            )
        return value

    def run_branches(self, state: StateDef, branch_input: Any) -> list[Any]:
        # Branches run one after the other: local services are sequential anyway, and the order of the
        # output array is the order of Branches either way.
        saved = copy.deepcopy(self.context["State"])
        self.event("ParallelStateStarted", name=state.name)
        try:
            outputs = [self.run_machine(branch, copy.deepcopy(branch_input)) for branch in state.branches]
        finally:
            self.context["State"] = saved
            self.context["Task"] = {}
        self.event("ParallelStateSucceeded", name=state.name)
        return outputs

    # -- the other state types -----------------------------------------------------------------------------

    def run_pass(self, state: StateDef, raw_input: Any) -> tuple[Any, str | None]:
        effective = self.template(state.parameters, self.select(state.input_path, raw_input, "InputPath"))
        result = copy.deepcopy(state.result) if state.has_result else effective
        combined = apply_result_path(raw_input, result, state.result_path)
        return self.select(state.output_path, combined, "OutputPath"), state.next

    def run_choice(self, state: StateDef, raw_input: Any) -> tuple[Any, str | None]:
        effective = self.select(state.input_path, raw_input, "InputPath")
        next_state = next(
            (nxt for rule, nxt in state.choices if evaluate_rule(rule, effective, self.context)), state.default
        )
        if next_state is None:
            raise StatesError(
                STATES_NO_CHOICE_MATCHED, f"No Choice rule matched and no Default in state '{state.name}'"
            )
        return self.select(state.output_path, effective, "OutputPath"), next_state

    def run_wait(self, state: StateDef, raw_input: Any) -> tuple[Any, str | None]:
        effective = self.select(state.input_path, raw_input, "InputPath")
        if state.seconds is not None:
            delay: float = state.seconds
        elif state.seconds_path is not None:
            value = evaluate_expression(state.seconds_path, "SecondsPath", effective, self.context, self.random)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise StatesError(
                    STATES_RUNTIME,
                    f"SecondsPath '{state.seconds_path.text}' must select a "
                    f"non-negative integer, got {json.dumps(value)}",
                )
            delay = value
        else:
            text = state.timestamp
            if state.timestamp_path is not None:
                text = evaluate_expression(state.timestamp_path, "TimestampPath", effective, self.context, self.random)
            moment = parse_timestamp(text)
            if moment is None:
                raise StatesError(
                    STATES_RUNTIME, f"TimestampPath must select an RFC 3339 timestamp, got {json.dumps(text)}"
                )
            delay = max(0.0, (moment - self.now()).total_seconds())
        self.sleep(delay)
        return self.select(state.output_path, effective, "OutputPath"), state.next

    def run_succeed(self, state: StateDef, raw_input: Any) -> tuple[Any, str | None]:
        effective = self.select(state.input_path, raw_input, "InputPath")
        return self.select(state.output_path, effective, "OutputPath"), None

    def run_fail(self, state: StateDef, raw_input: Any) -> tuple[Any, str | None]:
        error, cause = state.error, state.cause
        for fld, expr in (("ErrorPath", state.error_expr), ("CausePath", state.cause_expr)):
            if expr is None:
                continue
            value = evaluate_expression(expr, fld, raw_input, self.context, self.random)
            if not isinstance(value, str):
                raise StatesError(STATES_RUNTIME, f"{fld} must select a string, got {json.dumps(value)}")
            if fld == "ErrorPath":
                error = value
            else:
                cause = value
        raise StatesError(error or "", cause)
