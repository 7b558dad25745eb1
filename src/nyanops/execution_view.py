"""One execution as the Step Functions console shows it: every state of the state machine in order,
each with what happened to it (not run, running, succeeded, caught, failed, interrupted), its times,
attempts, input, output, error and cause, and the job it ran.

Pure: it reads the state machine definition (the ASL document) and history events shaped like Step
Functions' ``GetExecutionHistory`` events (``type``, ``timestamp``, one ``...EventDetails`` object; input and
output as JSON text or as values). The AWS backend passes the events it reads as they are; the local
backend converts its stored history to that shape (``nyanops.local.history``). Both CLI commands and the
HTML report draw from here, so the two sides show the same thing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from nyanops.terminal import printable

NOT_RUN = "not run"
RUNNING = "running"
SUCCEEDED = "succeeded"
CAUGHT = "caught"  # failed, and a Catch sent the execution on (the console's "Caught error")
FAILED = "failed"
INTERRUPTED = "interrupted"
TIMED_OUT = "timed out"
STATUSES = (NOT_RUN, RUNNING, SUCCEEDED, CAUGHT, FAILED, INTERRUPTED, TIMED_OUT)

# Execution statuses (Step Functions' and the local ones).
ACTIVE_EXECUTION = ("RUNNING", "PENDING")
_END_OF_OPEN_STATES = {"ExecutionAborted": INTERRUPTED, "ExecutionTimedOut": TIMED_OUT, "ExecutionFailed": FAILED}
# Where a failing job's reason is, in order, in a cause that is a JSON document: SageMaker's describe output
# (FailureReason; ExitMessage for processing jobs), Lambda's error (errorMessage), or a generic message.
_CAUSE_KEYS = ("FailureReason", "ExitMessage", "errorMessage", "message", "Message")


@dataclass(frozen=True)
class Transition:
    """An arrow of the state machine's graph: ``kind`` is "next", "choice", "default" or "catch"."""

    source: str
    target: str
    kind: str


@dataclass(frozen=True)
class JobRef:
    kind: str  # "training" | "processing"
    name: str


@dataclass
class StateView:
    """One state of the state machine in one execution (its last entry, when it ran more than once)."""

    name: str
    type: str
    comment: str = ""
    status: str = NOT_RUN
    entered_at: datetime | None = None
    exited_at: datetime | None = None
    input: Any = None
    output: Any = None
    parameters: Any = None  # what the Task sent to its resource (the job request, the Lambda payload)
    task_result: Any = None  # what the resource returned, before ResultSelector / ResultPath
    resource: str = ""  # e.g. "sagemaker:createTrainingJob.sync"
    attempts: int = 0
    error: str | None = None
    cause: str | None = None
    failed_attempts: list[tuple[str, str]] = field(default_factory=list)  # (error, cause) of retried attempts
    next_state: str | None = None
    entries: int = 0  # how many times it was entered (a state inside a Map: once per iteration that reached it)
    parent: str = ""  # the Map (or Parallel) state whose iterations run it; "" at the top level
    iterations: dict[str, int] = field(default_factory=dict)  # a Map: its iterations by outcome (MapIteration*)

    @property
    def job(self) -> JobRef | None:
        """The SageMaker job this state ran, from its request."""
        params = self.parameters if isinstance(self.parameters, Mapping) else {}
        if params.get("TrainingJobName"):
            return JobRef("training", str(params["TrainingJobName"]))
        if params.get("ProcessingJobName"):
            return JobRef("processing", str(params["ProcessingJobName"]))
        return None

    def seconds(self, now: datetime | None = None) -> float | None:
        """How long the state took, or has been running (up to ``now``)."""
        if self.entered_at is None:
            return None
        end = self.exited_at or (now if self.status == RUNNING else None)
        return None if end is None else max(0.0, (end - self.entered_at).total_seconds())

    @property
    def ran(self) -> bool:
        return self.status != NOT_RUN


@dataclass
class ExecutionView:
    name: str
    status: str
    states: list[StateView]
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    input: Any = None
    output: Any = None
    error: str | None = None
    cause: str | None = None
    path: list[str] = field(default_factory=list)  # states in the order they were entered
    start_at: str | None = None
    transitions: list[Transition] = field(default_factory=list)  # the definition's arrows

    def taken(self) -> set[tuple[str, str]]:
        """The arrows this execution followed (consecutive states of its path)."""
        return set(zip(self.path, self.path[1:], strict=False))

    def state(self, name: str) -> StateView | None:
        return next((s for s in self.states if s.name == name), None)

    @property
    def running(self) -> StateView | None:
        """The state in progress (the innermost, last entered)."""
        return next((self.state(n) for n in reversed(self.path) if (s := self.state(n)) and s.status == RUNNING), None)

    @property
    def failed_state(self) -> StateView | None:
        """The first state that failed, was caught, interrupted or timed out: where things went wrong (a
        Fail state reached afterwards only ends the execution; a Map that ended with its iteration is not
        where it went wrong, the iteration's state is)."""
        for name in self.path:
            s = self.state(name)
            if s is not None and s.status in (FAILED, CAUGHT, INTERRUPTED, TIMED_OUT) and s.type not in ("Fail", "Map"):
                return s
        ended = [self.state(n) for n in self.path]
        return next((s for s in reversed(ended) if s and s.status in (FAILED, INTERRUPTED, TIMED_OUT)), None)

    def seconds(self, now: datetime | None = None) -> float | None:
        if self.started_at is None:
            return None
        end = self.stopped_at or (now if self.status in ACTIVE_EXECUTION else None)
        return None if end is None else max(0.0, (end - self.started_at).total_seconds())

    def as_dict(self) -> dict[str, Any]:
        def value(v: Any) -> Any:
            if isinstance(v, datetime):
                return v.isoformat()
            if isinstance(v, JobRef):
                return {"kind": v.kind, "name": v.name}
            return v

        states = []
        for s in self.states:
            d = {k: value(v) for k, v in s.__dict__.items()}
            d["job"] = value(s.job) if s.job else None
            d["seconds"] = s.seconds()
            states.append(d)
        return {
            "name": self.name,
            "status": self.status,
            "started_at": value(self.started_at),
            "stopped_at": value(self.stopped_at),
            "seconds": self.seconds(),
            "input": self.input,
            "output": self.output,
            "error": self.error,
            "cause": self.cause,
            "path": self.path,
            "states": states,
        }


# -- reading events ----------------------------------------------------------------------------------------
def parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000 if value > 1e11 else value, tz=timezone.utc)
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def json_value(value: Any) -> Any:
    """Step Functions carries input and output as JSON text; the view holds values."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def event_details(event: Mapping[str, Any]) -> Mapping[str, Any]:
    for key, value in event.items():
        if key.endswith("EventDetails") and isinstance(value, Mapping):
            return value
    return {}


def definition_states(definition: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """The states of an ASL document in the order the file lists them; a Map's (or Parallel's) own states follow
    it, in their order (``nested_states``)."""
    return [(name, s) for name, s, _ in nested_states(definition)]


def _processors(state: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The state machines a Map (ItemProcessor, or the older Iterator) or a Parallel (Branches) runs."""
    found = [state.get("ItemProcessor"), state.get("Iterator"), *(state.get("Branches") or [])]
    return [p for p in found if isinstance(p, Mapping)]


def nested_states(definition: Mapping[str, Any], parent: str = "") -> list[tuple[str, Mapping[str, Any], str]]:
    """(name, state, parent) for every state, the ones a Map or Parallel runs right after it."""
    states = definition.get("States") if isinstance(definition, Mapping) else None
    if not isinstance(states, Mapping):
        return []
    out: list[tuple[str, Mapping[str, Any], str]] = []
    for name, s in states.items():
        body = s if isinstance(s, Mapping) else {}
        out.append((str(name), body, parent))
        for processor in _processors(body):
            out += nested_states(processor, str(name))
    return out


def definition_transitions(definition: Mapping[str, Any]) -> list[Transition]:
    """Every arrow between states: Next, a Choice's rules and Default, each Catch, and from a Map (or Parallel)
    to the first state of what it runs."""
    out: list[Transition] = []
    for name, s in definition_states(definition):
        for processor in _processors(s):
            if isinstance(processor.get("StartAt"), str):
                out.append(Transition(name, processor["StartAt"], "next"))
        if isinstance(s.get("Next"), str):
            out.append(Transition(name, s["Next"], "next"))
        for rule in s.get("Choices") or []:
            if isinstance(rule, Mapping) and isinstance(rule.get("Next"), str):
                out.append(Transition(name, rule["Next"], "choice"))
        if isinstance(s.get("Default"), str):
            out.append(Transition(name, s["Default"], "default"))
        for catcher in s.get("Catch") or []:
            if isinstance(catcher, Mapping) and isinstance(catcher.get("Next"), str):
                out.append(Transition(name, catcher["Next"], "catch"))
    return out


def build_view(
    definition: Mapping[str, Any],
    events: Iterable[Mapping[str, Any]],
    *,
    name: str,
    status: str,
    started_at: Any = None,
    stopped_at: Any = None,
    input: Any = None,
    output: Any = None,
    error: str | None = None,
    cause: str | None = None,
) -> ExecutionView:
    """The view of one execution from its definition and its history events (oldest first)."""
    states = [
        StateView(n, str(s.get("Type", "")), str(s.get("Comment", "")), parent=p)
        for n, s, p in nested_states(definition)
    ]
    by_name = {s.name: s for s in states}
    view = ExecutionView(
        name, status, states, parse_time(started_at), parse_time(stopped_at), json_value(input),
        json_value(output), error, cause,
        start_at=str(definition["StartAt"]) if isinstance(definition, Mapping) and definition.get("StartAt") else None,
        transitions=definition_transitions(definition),
    )
    open_states: list[StateView] = []
    last_exited: StateView | None = None

    def current() -> StateView | None:
        return open_states[-1] if open_states else None

    for event in events:
        kind = str(event.get("type") or "")
        at = parse_time(event.get("timestamp"))
        details = event_details(event)
        if kind.endswith("StateEntered"):
            state_name = str(details.get("name", ""))
            s = by_name.get(state_name)
            if s is None:  # a state inside a Parallel or Map branch, or a definition that changed
                s = StateView(state_name, kind.removesuffix("StateEntered"))
                by_name[state_name] = s
                states.append(s)
            s.status, s.entered_at, s.exited_at = RUNNING, at, None
            s.input, s.output, s.error, s.cause = json_value(details.get("input")), None, None, None
            s.attempts, s.failed_attempts, s.entries = 0, [], s.entries + 1
            if last_exited is not None and last_exited is not s:
                last_exited.next_state = s.name
            last_exited = None
            open_states.append(s)
            view.path.append(s.name)
        elif kind.endswith("StateExited"):
            s = by_name.get(str(details.get("name", ""))) or current()
            if s is None:
                continue
            s.exited_at, s.output = at, json_value(details.get("output"))
            s.status = CAUGHT if s.error else SUCCEEDED
            if s in open_states:
                open_states.remove(s)
            last_exited = s
        elif kind.startswith("MapIteration"):
            maps = [o for o in open_states if o.type == "Map"]
            if maps:
                outcome = kind.removeprefix("MapIteration").lower()
                maps[-1].iterations[outcome] = maps[-1].iterations.get(outcome, 0) + 1
        elif kind == "ExecutionStarted":
            view.started_at = view.started_at or at
            if view.input is None:
                view.input = json_value(details.get("input"))
        elif kind == "ExecutionSucceeded":
            view.stopped_at = view.stopped_at or at
            if view.output is None:
                view.output = json_value(details.get("output"))
        elif kind in _END_OF_OPEN_STATES:
            view.stopped_at = view.stopped_at or at
            view.error = view.error or _text(details.get("error"))
            view.cause = view.cause or _text(details.get("cause"))
            for s in open_states:
                s.status = _END_OF_OPEN_STATES[kind]
                s.error = s.error or _text(details.get("error")) or (None if kind != "ExecutionAborted" else "Aborted")
                s.cause = s.cause or _text(details.get("cause"))
            open_states.clear()
        elif (s := current()) is None:
            continue
        elif kind == "TaskScheduled":
            if s.error:  # a Retry: the failed attempt is kept, the new one starts clean
                s.failed_attempts.append((s.error, s.cause or ""))
                s.error, s.cause, s.status = None, None, RUNNING
            s.attempts += 1
            s.parameters = json_value(details.get("parameters"))
            resource_type, resource = str(details.get("resourceType") or ""), str(details.get("resource") or "")
            s.resource = f"{resource_type}:{resource}" if resource_type else resource
        elif kind == "TaskSucceeded":
            s.task_result = json_value(details.get("output"))
        elif kind.endswith(("Failed", "TimedOut")) and ("error" in details or "cause" in details):
            s.status = FAILED
            s.error, s.cause = _text(details.get("error")) or kind, _text(details.get("cause"))
    if status not in ACTIVE_EXECUTION:
        # Ended with states still open and no event saying how (a local run killed hard): not running.
        for s in open_states:
            s.status = FAILED if status == "FAILED" else INTERRUPTED
    return view


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def readable_cause(cause: str | None, limit: int | None = None) -> str:
    """The useful part of a cause: a job's FailureReason or ExitMessage, a Lambda's errorMessage, or the
    text itself."""
    if not cause:
        return ""
    parsed = json_value(cause)
    text = cause
    if isinstance(parsed, Mapping):
        found = next((parsed[k] for k in _CAUSE_KEYS if isinstance(parsed.get(k), str) and parsed[k]), None)
        if found is not None:
            text = found
    text = str(text).strip()
    return text if limit is None or len(text) <= limit else text[: limit - 1] + "…"


# -- text --------------------------------------------------------------------------------------------------
def clock(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s"
    seconds = int(seconds)
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _when(at: datetime | None) -> str:
    return at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC") if at else "-"


def render_view(
    view: ExecutionView,
    *,
    now: datetime | None = None,
    facts: Iterable[tuple[str, str]] = (),
    progress: Callable[[StateView], str | None] | None = None,
    command: str = "nyanops execution",
) -> str:
    """The text ``nyanops execution ID`` prints: facts, every state in definition order with its outcome
    and time, the running state's job progress, and where it failed with the cause. User text inside
    (names, causes, job output) is made printable."""
    now = now or datetime.now(timezone.utc)
    so_far = " so far" if view.status in ACTIVE_EXECUTION else ""
    lines = [f"execution {printable(view.name)}", f"  status      {view.status} ({clock(view.seconds(now))}{so_far})"]
    lines += [f"  {label:<11} {printable(value)}" for label, value in facts]
    lines.append(f"  started     {_when(view.started_at)}")
    width = max([len(s.name) + (2 if s.parent else 0) for s in view.states] + [5])
    lines.append("")
    lines.append(f"  {'state':<{width}}  {'outcome':<11}  {'time':>8}  detail")
    for s in view.states:
        outcome = s.status.upper() if s.status == RUNNING else s.status
        took = clock(s.seconds(now)) if s.ran else ""
        detail = []
        if s.iterations:
            started = s.iterations.get("started", 0)
            ended = ", ".join(f"{n} {k}" for k, n in s.iterations.items() if k != "started")
            detail.append(f"{started} iteration{'s' if started != 1 else ''}" + (f": {ended}" if ended else ""))
        if s.parent and s.entries > 1:
            detail.append(f"entered {s.entries} times (last shown)")
        if s.attempts > 1:
            detail.append(f"{s.attempts} attempts")
        if s.status in (FAILED, CAUGHT, INTERRUPTED, TIMED_OUT) and (s.error or s.cause):
            first = (readable_cause(s.cause).splitlines() or [""])[0]
            detail.append(f"{s.error or ''}: {first[:100]}".strip(": "))
        if s.status == CAUGHT and s.next_state:
            detail.append(f"-> {s.next_state}")
        text = printable("; ".join(detail))
        shown = ("  " if s.parent else "") + printable(s.name)
        lines.append(f"  {shown:<{width}}  {outcome:<11}  {took:>8}  {text}".rstrip())
        if s.status == RUNNING and progress is not None:
            line = progress(s)
            if line:
                lines.append(f"  {'':<{width}}  > {printable(line)}")
    failed = view.failed_state
    if failed is not None:
        lines.append("")
        label = {CAUGHT: "failed", INTERRUPTED: "interrupted", TIMED_OUT: "timed out"}.get(failed.status, failed.status)
        cause = readable_cause(failed.cause) or readable_cause(view.cause)
        lines.append(printable(f"{label} in {failed.name}: {failed.error or view.error or ''}", keep_newlines=False))
        if cause:
            lines += ["  " + printable(line) for line in cause.splitlines()]
        if view.error and failed.error != view.error and view.status not in ACTIVE_EXECUTION:
            ended = f"the execution ended {view.status}: {view.error}: {readable_cause(view.cause, 200)}"
            lines.append(printable(ended))
    lines.append("")
    lines.append(f"per-state input and output: {command} {printable(view.name)} --state STATE")
    return "\n".join(lines)


def _pretty(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def render_state(state: StateView, now: datetime | None = None) -> str:
    """``--state NAME``: one state's outcome, times, job, error and cause, and its input, request and output
    as indented JSON."""
    head = f"state {state.name} ({state.type}{', ' + state.resource if state.resource else ''})"
    lines = [head, f"  outcome   {state.status}" + (f" after {state.attempts} attempts" if state.attempts > 1 else "")]
    if state.ran:
        lines.append(f"  entered   {_when(state.entered_at)}")
        lines.append(f"  exited    {_when(state.exited_at)}  ({clock(state.seconds(now))})")
    if state.job:
        lines.append(f"  job       {state.job.kind} job {state.job.name}")
    if state.next_state:
        lines.append(f"  next      {state.next_state}")
    for i, (error, cause) in enumerate(state.failed_attempts, start=1):
        lines.append(f"  attempt {i} failed: {error}: {readable_cause(cause, 300)}")
    if state.error or state.cause:
        lines.append(f"  error     {state.error or ''}")
        reason = readable_cause(state.cause)
        lines += ["  cause     " + reason.splitlines()[0]] + ["            " + x for x in reason.splitlines()[1:]]
    if state.comment:
        lines.append(f"  comment   {state.comment}")
    sections = [("input", state.input)]
    if state.parameters is not None:
        sections.append(("request (parameters sent to the resource)", state.parameters))
    if state.task_result is not None:
        sections.append(("result (what the resource returned)", state.task_result))
    sections.append(("output", state.output if state.status not in (NOT_RUN, RUNNING) else None))
    if state.cause and json_value(state.cause) is not state.cause and not isinstance(json_value(state.cause), str):
        sections.append(("cause (full)", json_value(state.cause)))
    for title, value in sections:
        lines.append(f"{title}:")
        lines += ["  " + line for line in _pretty(value).splitlines()]
    return printable("\n".join(lines), keep_newlines=True)
