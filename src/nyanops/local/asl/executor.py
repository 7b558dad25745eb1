"""Running a loaded state machine: state semantics, Retry/Catch, the context object and the history.

One execution runs in the calling thread; the iterations of a Map state run in threads of their own (the Task
integrations are blocking calls: Lambda handlers, job processes), at most MaxConcurrency and the executor's
``max_parallel`` at once. Each thread of control is a ``_Frame`` with its own context object and its own place in
the history; what all frames share (the history, the listener, the transition count) is guarded by one lock, so a
listener is never called from two threads at once.
"""

from __future__ import annotations

import copy
import json
import queue
import random as _random
import threading
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
from .listener import ExecutionListener, NullListener, Serialized
from .paths import Path, apply_result_path
from .templates import Compiled, evaluate_expression, evaluate_template
from .timestamps import iso, parse_timestamp

ACCOUNT = "000000000000"
REGION = "local"
DEFAULT_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/nyanops-local"
DEFAULT_MAX_TRANSITIONS = 10_000


@dataclass(frozen=True)
class TaskContext:
    """What a TaskRunner knows about the Task it runs.

    ``cancelled`` is set when the Task must stop early (a sibling Map iteration failed, or the run was
    interrupted): a runner that waits on something long (a job process) stops it and raises; whatever it raises
    then ends the Task as aborted, not failed.
    """

    state_name: str
    execution_name: str
    attempt: int
    timeout_seconds: int | None
    heartbeat_seconds: int | None
    context_object: dict[str, Any]
    cancelled: threading.Event = field(default_factory=threading.Event, compare=False)


class TaskRunner(Protocol):
    """Runs a Task's Resource: returns the raw result or raises TaskFailed(error, cause).

    The runner enforces ``ctx.timeout_seconds`` itself (raising TaskFailed("States.Timeout", ...)).
    Any other exception it raises fails the Task with States.TaskFailed and the exception text as cause.
    """

    def __call__(self, resource: str, parameters: Any, ctx: TaskContext) -> Any:
        """Run ``resource`` with the evaluated Parameters (from several threads at once when a Map runs Tasks in
        parallel)."""


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
        sleep: Callable[[float], None] | None = None,
        random: Callable[[], float] = _random.random,
        now: Callable[[], datetime] = _utcnow,
        max_transitions: int = DEFAULT_MAX_TRANSITIONS,
        max_parallel: int | None = None,
    ) -> ExecutionResult:
        """Run one execution to its end and return its result.

        A failed execution is a result with status FAILED, not an exception; KeyboardInterrupt and
        SystemExit propagate after ``listener.execution_aborted``, once every Map iteration has stopped.
        ``sleep`` waits between Retry attempts and in Wait states (default: a wait that an interrupt or an
        aborted Map iteration cuts short). ``max_parallel`` caps how many Map iterations run at once, whatever
        MaxConcurrency allows (None: no cap beyond MaxConcurrency): the machine's room for jobs.
        """
        if max_parallel is not None and (
            isinstance(max_parallel, bool) or not isinstance(max_parallel, int) or max_parallel < 1
        ):
            raise ValueError(f"max_parallel must be a positive integer or None, got {max_parallel!r}")
        run = _Execution(
            self,
            execution_name,
            task_runner,
            listener or NullListener(),
            sleep,
            random,
            now,
            max_transitions,
            max_parallel,
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


class _Aborted(BaseException):
    """Unwinds a frame whose work was cancelled (a sibling Map iteration failed, or the run was interrupted).

    A BaseException, so that no Retry, no Catch and no ``except Exception`` in a Task integration handles it.
    """


class _CancelScope:
    """A cancellation flag shared by the frames of one Map run; cancelling it cancels the scopes nested in it."""

    def __init__(self, parent: _CancelScope | None = None) -> None:
        self.event = threading.Event()
        self._children: list[_CancelScope] = []
        self._lock = threading.Lock()
        if parent is not None:
            parent._adopt(self)

    def _adopt(self, child: _CancelScope) -> None:
        with self._lock:
            self._children.append(child)
            cancelled = self.event.is_set()
        if cancelled:
            child.cancel()

    def cancel(self) -> None:
        with self._lock:
            self.event.set()
            children = list(self._children)
        for child in children:
            child.cancel()

    def is_set(self) -> bool:
        return self.event.is_set()


class _Execution:
    """What all frames of one run share: the history, the visited states, the listener, the limits."""

    def __init__(
        self,
        machine: StateMachine,
        name: str,
        runner: TaskRunner,
        listener: ExecutionListener,
        sleep: Callable[[float], None] | None,
        random: Callable[[], float],
        now: Callable[[], datetime],
        max_transitions: int,
        max_parallel: int | None,
    ) -> None:
        self.machine = machine
        self.name = name
        self.runner = runner
        self.lock = threading.RLock()
        self.listener: Any = Serialized(listener, self.lock)
        self.sleep = sleep
        self.random = random
        self.now = now
        self.max_transitions = max_transitions
        self.max_parallel = max_parallel
        self.transitions = 0
        self.history: list[dict[str, Any]] = []
        self.states: list[str] = []
        self.cancel = _CancelScope()
        self.started = now()

    # -- bookkeeping -------------------------------------------------------------------------------------

    def record(self, frame: _Frame, kind: str, details: dict[str, Any]) -> None:
        """Append a history event (ids are global; previousEventId follows the frame's own chain)."""
        with self.lock:
            event = {
                "id": len(self.history) + 1,
                "previousEventId": frame.last_event_id,
                "type": kind,
                "timestamp": iso(self.now()),
                "details": details,
            }
            frame.last_event_id = event["id"]
            self.history.append(event)
            self.listener.history_event(event)

    def transition(self, state_name: str) -> None:
        """Count a transition into ``state_name`` against the execution's limits, then note it as visited."""
        with self.lock:
            self.transitions += 1
            if self.transitions > self.max_transitions:
                raise _Terminal(
                    STATES_RUNTIME, f"more than {self.max_transitions} state transitions (an infinite loop?)"
                )
        timeout = self.machine.definition.timeout_seconds
        if timeout is not None and (self.now() - self.started).total_seconds() > timeout:
            raise _Terminal(STATES_TIMEOUT, f"the execution ran longer than TimeoutSeconds ({timeout})")
        with self.lock:
            self.states.append(state_name)

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
        context = {
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
        top = _Frame(self, context, self.cancel, last_event_id=0)
        self.listener.execution_started(self.name, input)
        top.event("ExecutionStarted", input=input, roleArn=self.machine.role_arn)
        try:
            output = top.run_machine(self.machine.definition, input)
        except StatesError as exc:
            error = exc.error or None
            self.listener.execution_failed(error, exc.cause)
            top.event("ExecutionFailed", error=error, cause=exc.cause)
            return self.result("FAILED", error=error, cause=exc.cause)
        except (KeyboardInterrupt, SystemExit) as exc:
            self.cancel.cancel()
            reason = f"interrupted by {type(exc).__name__}"
            self.listener.execution_aborted(reason)
            top.event("ExecutionAborted", cause=reason)
            raise
        self.listener.execution_succeeded(output)
        top.event("ExecutionSucceeded", output=output)
        return self.result("SUCCEEDED", output=output)


class _Frame:
    """One thread of control: the execution itself, a Parallel branch or a Map iteration. It has its own context
    object (the State and Task of the state it runs) and the cancel scope of the Map run it belongs to."""

    def __init__(
        self, execution: _Execution, context: dict[str, Any], cancel: _CancelScope, last_event_id: int
    ) -> None:
        self.execution = execution
        self.context = context
        self.cancel = cancel
        self.last_event_id = last_event_id

    def child(self, cancel: _CancelScope) -> _Frame:
        """A frame for a branch or an iteration of the state this frame runs (it starts with that state's
        context object; the Map item is added only where ItemSelector is evaluated)."""
        context = {
            "Execution": self.context["Execution"],
            "StateMachine": self.context["StateMachine"],
            "State": copy.deepcopy(self.context["State"]),
            "Task": {},
        }
        return _Frame(self.execution, context, cancel, self.last_event_id)

    def event(self, kind: str, **details: Any) -> None:
        self.execution.record(self, kind, details)

    def check_cancelled(self) -> None:
        if self.cancel.is_set():
            raise _Aborted()

    def pause(self, seconds: float) -> None:
        """Retry and Wait delays: the injected sleep, or a wait that ends early when this frame is cancelled."""
        if self.execution.sleep is None:
            self.cancel.event.wait(seconds)
        else:
            self.execution.sleep(seconds)
        self.check_cancelled()

    # -- running states ------------------------------------------------------------------------------------

    def run_machine(self, definition: Definition, data: Any) -> Any:
        name: str | None = definition.start_at
        while name is not None:
            self.check_cancelled()
            self.execution.transition(name)
            data, name = self.run_state(definition.states[name], data)
        return data

    def run_state(self, state: StateDef, raw_input: Any) -> tuple[Any, str | None]:
        listener = self.execution.listener
        self.context["State"] = {"Name": state.name, "EnteredTime": iso(self.execution.now()), "RetryCount": 0}
        self.context["Task"] = {}
        listener.state_entered(state.name, state.type, raw_input)
        self.event(f"{state.type}StateEntered", name=state.name, input=raw_input)
        try:
            if state.type in _RETRYABLE:
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
            if state.type not in _RETRYABLE:
                # Task/Parallel/Map report each failed attempt themselves (before Retry/Catch).
                listener.state_failed(state.name, exc.error, exc.cause)
            raise
        listener.state_exited(state.name, output)
        self.event(f"{state.type}StateExited", name=state.name, output=output)
        return output, next_state

    # -- input/output processing -------------------------------------------------------------------------

    def select(self, path: Path | None, data: Any, fld: str) -> Any:
        """InputPath/OutputPath: null gives {}; a path that selects nothing is States.Runtime."""
        if path is None:
            return {}
        return evaluate_expression(path, fld, data, self.context, self.execution.random)

    def template(self, compiled: Compiled | None, data: Any) -> Any:
        if compiled is None:
            return data
        return evaluate_template(compiled, data, self.context, self.execution.random)

    # -- Task / Parallel / Map with Retry and Catch -----------------------------------------------------------

    def run_with_retry(self, state: StateDef, raw_input: Any) -> tuple[Any, str | None]:
        listener = self.execution.listener
        retries_per_retrier = [0] * len(state.retriers)
        retry_count = 0
        while True:
            try:
                return self.attempt(state, raw_input, retry_count), state.next
            except StatesError as exc:
                failure = exc
            error, cause = failure.error, failure.cause
            listener.state_failed(state.name, error, cause)
            if isinstance(failure, _Terminal) or error in TERMINAL_ERRORS:
                raise failure
            # Only the first Retrier whose ErrorEquals matches applies, exhausted or not.
            index = next((i for i, r in enumerate(state.retriers) if _matches(r.error_equals, error)), None)
            if index is not None and retries_per_retrier[index] < state.retriers[index].max_attempts:
                delay = retry_delay(state.retriers[index], retries_per_retrier[index], self.execution.random)
                retries_per_retrier[index] += 1
                retry_count += 1
                listener.state_retry(state.name, error, cause, retry_count, delay)
                self.pause(delay)
                self.context["State"]["RetryCount"] = retry_count
                continue
            catcher = next((c for c in state.catchers if _matches(c.error_equals, error)), None)
            if catcher is None:
                raise failure
            # The catcher's ResultPath applies to the state's raw input; OutputPath is not applied.
            error_output = {"Error": error, "Cause": cause if cause is not None else ""}
            output = apply_result_path(raw_input, error_output, catcher.result_path)
            listener.state_caught(state.name, error, catcher.next)
            return output, catcher.next

    def attempt(self, state: StateDef, raw_input: Any, retry_count: int) -> Any:
        try:
            effective = self.select(state.input_path, raw_input, "InputPath")
            if state.type == "Task":
                result = self.invoke(state, effective, self.template(state.parameters, effective), retry_count)
            elif state.type == "Parallel":
                result = self.run_branches(state, self.template(state.parameters, effective))
            else:
                result = self.run_map(state, effective)
            result = self.template(state.result_selector, result)
            combined = apply_result_path(raw_input, result, state.result_path)
            return self.select(state.output_path, combined, "OutputPath")
        except StatesError as exc:
            kind = {"Task": "TaskFailed", "Parallel": "ParallelStateFailed", "Map": "MapStateFailed"}[state.type]
            self.event(kind, name=state.name, error=exc.error, cause=exc.cause)
            raise

    def invoke(self, state: StateDef, effective: Any, parameters: Any, retry_count: int) -> Any:
        assert state.resource is not None
        timeout = state.timeout_seconds
        if state.timeout_seconds_path is not None:
            timeout = self.int_at(state.timeout_seconds_path, effective, "TimeoutSecondsPath", minimum=1)
        heartbeat = state.heartbeat_seconds
        if state.heartbeat_seconds_path is not None:
            heartbeat = self.int_at(state.heartbeat_seconds_path, effective, "HeartbeatSecondsPath", minimum=1)
        if state.resource.endswith(".waitForTaskToken"):
            self.context["Task"] = {"Token": uuid.uuid4().hex}
        ctx = TaskContext(
            state_name=state.name,
            execution_name=self.execution.name,
            attempt=retry_count,
            timeout_seconds=timeout,
            heartbeat_seconds=heartbeat,
            context_object=copy.deepcopy(self.context),
            cancelled=self.cancel.event,
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
            result = self.execution.runner(state.resource, copy.deepcopy(parameters), ctx)
        except Exception as exc:
            if self.cancel.is_set():
                # The runner stopped because it was told to: the Task was aborted, it did not fail.
                raise _Aborted() from exc
            if isinstance(exc, StatesError):
                raise
            raise StatesError(STATES_TASK_FAILED, str(exc) or type(exc).__name__) from exc
        result = _json_copy(result, f"the result of {state.resource}")
        self.event("TaskSucceeded", name=state.name, resource=state.resource, output=result)
        return result

    def int_at(self, path: Path, data: Any, fld: str, minimum: int) -> int:
        value = evaluate_expression(path, fld, data, self.context, self.execution.random)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            kind = "a positive integer" if minimum == 1 else "a non-negative integer"
            raise StatesError(STATES_RUNTIME, f"{fld} '{path.text}' must select {kind}, got {json.dumps(value)}")
        return value

    def run_branches(self, state: StateDef, branch_input: Any) -> list[Any]:
        # Branches run one after the other: the order of the output array is the order of Branches either way.
        self.event("ParallelStateStarted", name=state.name)
        outputs = [
            self.child(self.cancel).run_machine(branch, copy.deepcopy(branch_input)) for branch in state.branches
        ]
        self.event("ParallelStateSucceeded", name=state.name)
        return outputs

    def run_map(self, state: StateDef, effective: Any) -> list[Any]:
        assert state.items_path is not None and state.iterator is not None
        max_concurrency = state.max_concurrency
        if state.max_concurrency_path is not None:
            max_concurrency = self.int_at(state.max_concurrency_path, effective, "MaxConcurrencyPath", minimum=0)
        items = evaluate_expression(state.items_path, "ItemsPath", effective, self.context, self.execution.random)
        if not isinstance(items, list):
            raise StatesError(
                STATES_RUNTIME,
                f"ItemsPath '{state.items_path.text}' must select a JSON array, got {json.dumps(items)[:200]}",
            )
        self.event("MapStateStarted", name=state.name, length=len(items))
        outputs = _MapRun(self, state, effective, items, max_concurrency).run()
        self.event("MapStateSucceeded", name=state.name)
        return outputs

    def iteration_input(self, state: StateDef, effective: Any, index: int, item: Any) -> Any:
        """An iteration's input: the item, or ItemSelector evaluated over the Map's effective input with the
        context object's ``Map.Item`` (which exists only here, as in Step Functions: not in the iteration's
        states)."""
        if state.item_selector is None:
            return copy.deepcopy(item)
        context = {**self.context, "Map": {"Item": {"Index": index, "Value": copy.deepcopy(item)}}}
        return evaluate_template(state.item_selector, effective, context, self.execution.random)

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
            delay = self.int_at(state.seconds_path, effective, "SecondsPath", minimum=0)
        else:
            text = state.timestamp
            if state.timestamp_path is not None:
                text = evaluate_expression(
                    state.timestamp_path, "TimestampPath", effective, self.context, self.execution.random
                )
            moment = parse_timestamp(text)
            if moment is None:
                raise StatesError(
                    STATES_RUNTIME, f"TimestampPath must select an RFC 3339 timestamp, got {json.dumps(text)}"
                )
            delay = max(0.0, (moment - self.execution.now()).total_seconds())
        self.pause(delay)
        return self.select(state.output_path, effective, "OutputPath"), state.next

    def run_succeed(self, state: StateDef, raw_input: Any) -> tuple[Any, str | None]:
        effective = self.select(state.input_path, raw_input, "InputPath")
        return self.select(state.output_path, effective, "OutputPath"), None

    def run_fail(self, state: StateDef, raw_input: Any) -> tuple[Any, str | None]:
        error, cause = state.error, state.cause
        for fld, expr in (("ErrorPath", state.error_expr), ("CausePath", state.cause_expr)):
            if expr is None:
                continue
            value = evaluate_expression(expr, fld, raw_input, self.context, self.execution.random)
            if not isinstance(value, str):
                raise StatesError(STATES_RUNTIME, f"{fld} must select a string, got {json.dumps(value)}")
            if fld == "ErrorPath":
                error = value
            else:
                cause = value
        raise StatesError(error or "", cause)


_RETRYABLE = ("Task", "Parallel", "Map")


class _MapRun:
    """One attempt of an INLINE Map state: its iterations in threads, at most ``width`` at once, started in item
    order. The first iteration to fail cancels the others (the running ones stop at their next state, their
    Task runners are told through ``TaskContext.cancelled``; the ones not started never start) and fails the Map
    with its error. Outputs keep the items' order."""

    def __init__(self, frame: _Frame, state: StateDef, effective: Any, items: list[Any], max_concurrency: int) -> None:
        self.frame = frame
        self.state = state
        self.effective = effective
        self.items = items
        width = len(items) if max_concurrency == 0 else max_concurrency
        if frame.execution.max_parallel is not None:
            width = min(width, frame.execution.max_parallel)
        self.width = max(1, width)
        self.scope = _CancelScope(frame.cancel)
        self.outputs: list[Any] = [None] * len(items)
        self.failure: StatesError | None = None
        self.fatal: BaseException | None = None
        self.lock = threading.Lock()
        self.finished: queue.Queue[int] = queue.Queue()

    def run(self) -> list[Any]:
        running: dict[int, threading.Thread] = {}
        next_index = 0
        try:
            while True:
                while next_index < len(self.items) and len(running) < self.width and not self.scope.is_set():
                    thread = threading.Thread(
                        target=self.iterate, args=(next_index,), name=f"{self.state.name}[{next_index}]", daemon=True
                    )
                    running[next_index] = thread
                    thread.start()
                    next_index += 1
                if not running:
                    break
                running.pop(self.next_finished()).join()
        except BaseException:
            # KeyboardInterrupt / SystemExit in the thread running the Map: stop every iteration (and through
            # TaskContext.cancelled their jobs) before the interrupt goes on.
            self.scope.cancel()
            for thread in running.values():
                thread.join()
            self.frame.event("MapStateAborted", name=self.state.name)
            raise
        if self.fatal is not None:
            raise self.fatal
        if self.frame.cancel.is_set():
            self.frame.event("MapStateAborted", name=self.state.name)
            raise _Aborted()
        if self.failure is not None:
            raise self.failure
        return self.outputs

    def next_finished(self) -> int:
        while True:
            try:
                return self.finished.get(timeout=0.5)
            except queue.Empty:
                continue

    def iterate(self, index: int) -> None:
        name = self.state.name
        frame = self.frame.child(self.scope)
        try:
            frame.event("MapIterationStarted", name=name, index=index)
            try:
                frame.check_cancelled()
                data = frame.iteration_input(self.state, self.effective, index, self.items[index])
                assert self.state.iterator is not None
                output = frame.run_machine(self.state.iterator, data)
            except StatesError as exc:
                frame.event("MapIterationFailed", name=name, index=index, error=exc.error, cause=exc.cause)
                with self.lock:
                    if self.failure is None:
                        self.failure = exc
                self.scope.cancel()
            except _Aborted:
                frame.event("MapIterationAborted", name=name, index=index)
            else:
                self.outputs[index] = output
                frame.event("MapIterationSucceeded", name=name, index=index)
        except BaseException as exc:  # e.g. a KeyboardInterrupt raised by a Task runner in this thread
            with self.lock:
                if self.fatal is None:
                    self.fatal = exc
            self.scope.cancel()
        finally:
            self.finished.put(index)
