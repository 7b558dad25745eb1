"""Loading a state machine definition: DefinitionSubstitutions, then validation into compiled states.

Everything that can be checked without running is checked here, so a definition the executor cannot run
faithfully is refused when it is loaded, with a message naming the state and the field.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import Any

from .choice import ChoiceRuleError, Rule, compile_rule
from .errors import STATES_ALL, InvalidDefinition, UnsupportedDefinition
from .intrinsics import Call
from .paths import Path, PathSyntaxError, parse_path
from .templates import Compiled, TemplateError, compile_expression, compile_template
from .timestamps import parse_timestamp

SUPPORTED_STATE_TYPES = ("Task", "Pass", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map")

_COMMON = {"Type", "Comment"}
_FLOW = {"Next", "End"}
_IO = {"InputPath", "OutputPath"}
_ALLOWED_FIELDS: dict[str, set[str]] = {
    "Task": _COMMON
    | _FLOW
    | _IO
    | {
        "Resource",
        "Parameters",
        "ResultSelector",
        "ResultPath",
        "Retry",
        "Catch",
        "TimeoutSeconds",
        "TimeoutSecondsPath",
        "HeartbeatSeconds",
        "HeartbeatSecondsPath",
    },
    "Pass": _COMMON | _FLOW | _IO | {"Parameters", "Result", "ResultPath"},
    "Choice": _COMMON | _IO | {"Choices", "Default"},
    "Wait": _COMMON | _FLOW | _IO | {"Seconds", "SecondsPath", "Timestamp", "TimestampPath"},
    "Succeed": _COMMON | _IO,
    "Fail": _COMMON | {"Error", "ErrorPath", "Cause", "CausePath"},
    "Parallel": _COMMON | _FLOW | _IO | {"Branches", "Parameters", "ResultSelector", "ResultPath", "Retry", "Catch"},
    # Inline Map (JSONPath); Parameters and Iterator are the deprecated spellings of ItemSelector and ItemProcessor.
    "Map": _COMMON
    | _FLOW
    | _IO
    | {
        "ItemsPath",
        "ItemSelector",
        "Parameters",
        "ItemProcessor",
        "Iterator",
        "MaxConcurrency",
        "MaxConcurrencyPath",
        "ResultSelector",
        "ResultPath",
        "Retry",
        "Catch",
    },
}
# Valid ASL fields the local executor does not implement: refused rather than silently ignored.
_UNSUPPORTED_FIELDS = {
    "Assign": "workflow variables (Assign) are not supported",
    "Arguments": "Arguments belongs to JSONata; only JSONPath is supported",
    "Output": "Output belongs to JSONata; only JSONPath is supported",
    "Credentials": "cross-account Task Credentials are not supported",
    "Items": "Items belongs to JSONata; only JSONPath is supported (select the array with ItemsPath)",
}
# Map fields that exist only in DISTRIBUTED mode (child workflow executions, S3 readers and writers), which the
# local executor does not run. The failure tolerance belongs there too: in INLINE mode any failed iteration
# fails the Map, so a failure that must not stop its siblings is caught inside the ItemProcessor.
_DISTRIBUTED_ONLY_FIELDS = (
    "ItemReader",
    "ItemBatcher",
    "ResultWriter",
    "Label",
    "ToleratedFailureCount",
    "ToleratedFailureCountPath",
    "ToleratedFailurePercentage",
    "ToleratedFailurePercentagePath",
)
_TOP_LEVEL_FIELDS = {"Comment", "StartAt", "States", "Version", "TimeoutSeconds", "QueryLanguage"}
_BRANCH_FIELDS = {"Comment", "StartAt", "States", "QueryLanguage"}
_PROCESSOR_FIELDS = _BRANCH_FIELDS | {"ProcessorConfig"}
_RETRIER_FIELDS = {
    "ErrorEquals",
    "IntervalSeconds",
    "MaxAttempts",
    "BackoffRate",
    "MaxDelaySeconds",
    "JitterStrategy",
    "Comment",
}
_CATCHER_FIELDS = {"ErrorEquals", "Next", "ResultPath", "Comment"}

_SUBSTITUTION = re.compile(r"\$\{([^}]*)\}")


class MissingSubstitution(InvalidDefinition):
    """``${Name}`` placeholders without a value in the DefinitionSubstitutions."""

    def __init__(self, names: list[str], locations: list[str]) -> None:
        super().__init__(
            "no value for DefinitionSubstitutions "
            + ", ".join(f"${{{n}}}" for n in names)
            + " (used at "
            + ", ".join(locations)
            + ")"
        )
        self.names = names


@dataclass(frozen=True)
class Retrier:
    """One element of a Retry array, with the spec's defaults filled in."""

    error_equals: tuple[str, ...]
    interval_seconds: float = 1
    max_attempts: int = 3
    backoff_rate: float = 2.0
    max_delay_seconds: float | None = None
    jitter_full: bool = False


@dataclass(frozen=True)
class Catcher:
    """One element of a Catch array; ``result_path`` None means ResultPath null."""

    error_equals: tuple[str, ...]
    next: str
    result_path: Path | None


@dataclass
class StateDef:
    """A validated state. Paths left as None mean an explicit JSON null (the defaults are ``$``)."""

    name: str
    type: str
    next: str | None = None
    end: bool = False
    input_path: Path | None = None
    output_path: Path | None = None
    result_path: Path | None = None
    parameters: Compiled | None = None
    result_selector: Compiled | None = None
    has_result: bool = False
    result: Any = None
    resource: str | None = None
    timeout_seconds: int | None = None
    timeout_seconds_path: Path | None = None
    heartbeat_seconds: int | None = None
    heartbeat_seconds_path: Path | None = None
    retriers: tuple[Retrier, ...] = ()
    catchers: tuple[Catcher, ...] = ()
    choices: tuple[tuple[Rule, str], ...] = ()
    default: str | None = None
    seconds: int | None = None
    seconds_path: Path | None = None
    timestamp: str | None = None
    timestamp_path: Path | None = None
    error: str | None = None
    cause: str | None = None
    error_expr: Path | Call | None = None
    cause_expr: Path | Call | None = None
    branches: tuple[Definition, ...] = ()
    # Map: the array (ItemsPath), each iteration's input (ItemSelector or the legacy Parameters; None = the item),
    # the iteration's state machine (ItemProcessor or the legacy Iterator) and MaxConcurrency (0 = no limit).
    items_path: Path | None = None
    item_selector: Compiled | None = None
    iterator: Definition | None = None
    max_concurrency: int = 0
    max_concurrency_path: Path | None = None


@dataclass
class Definition:
    """A validated state machine (or Parallel branch)."""

    start_at: str
    states: dict[str, StateDef]
    timeout_seconds: int | None = None
    comment: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)


def apply_substitutions(definition: Any, substitutions: dict[str, str]) -> Any:
    """Replace every ``${Name}`` in keys and string values, as SAM's DefinitionSubstitutions does.

    A placeholder without a value raises MissingSubstitution naming it and where it is used.
    """
    missing: dict[str, list[str]] = {}

    def sub(text: str, where: str) -> str:
        def one(m: re.Match[str]) -> str:
            name = m.group(1)
            if name in substitutions:
                return str(substitutions[name])
            missing.setdefault(name, []).append(where)
            return m.group(0)

        return _SUBSTITUTION.sub(one, text)

    def walk(node: Any, where: str) -> Any:
        if isinstance(node, dict):
            return {sub(k, where): walk(v, f"{where}.{k}") for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, f"{where}[{i}]") for i, v in enumerate(node)]
        if isinstance(node, str):
            return sub(node, where)
        return node

    result = walk(definition, "$")
    if missing:
        names = sorted(missing)
        raise MissingSubstitution(names, [loc for n in names for loc in missing[n]])
    return result


def load_definition(source: str | FsPath | dict[str, Any], substitutions: dict[str, str] | None = None) -> Definition:
    """Read (a path, a JSON string or a dict), substitute and validate a definition."""
    if isinstance(source, dict):
        raw: Any = source
    else:
        text = str(source)
        if isinstance(source, FsPath) or not text.lstrip().startswith("{"):
            text = FsPath(source).read_text(encoding="utf-8")
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidDefinition(f"the definition is not JSON: {exc}") from exc
    raw = apply_substitutions(raw, substitutions or {})
    return _validate_machine(raw, top_level=True, where="")


def _validate_machine(raw: Any, top_level: bool, where: str) -> Definition:
    label = where or "the state machine"
    if not isinstance(raw, dict):
        raise InvalidDefinition(f"{label}: the definition must be a JSON object")
    allowed = _TOP_LEVEL_FIELDS if top_level else _BRANCH_FIELDS
    _check_query_language(raw, label)
    unknown = [k for k in raw if k not in allowed]
    if unknown:
        raise InvalidDefinition(f"{label}: unknown top-level field(s) {', '.join(map(repr, unknown))}")
    states_raw = raw.get("States")
    if not isinstance(states_raw, dict) or not states_raw:
        raise InvalidDefinition(f"{label}: 'States' must be a non-empty object")
    start_at = raw.get("StartAt")
    if not isinstance(start_at, str):
        raise InvalidDefinition(f"{label}: 'StartAt' is missing")
    if start_at not in states_raw:
        raise InvalidDefinition(f"{label}: 'StartAt' names the state {start_at!r}, which does not exist")
    timeout = raw.get("TimeoutSeconds")
    if timeout is not None and not _positive_int(timeout):
        raise InvalidDefinition(f"{label}: 'TimeoutSeconds' must be a positive integer")
    states = {name: _validate_state(name, body) for name, body in states_raw.items()}
    _check_transitions(states, start_at, label)
    return Definition(start_at=start_at, states=states, timeout_seconds=timeout, comment=raw.get("Comment"), raw=raw)


def _check_query_language(raw: dict[str, Any], label: str) -> None:
    language = raw.get("QueryLanguage", "JSONPath")
    if language == "JSONata":
        raise UnsupportedDefinition(f"{label}: QueryLanguage JSONata is not supported (only JSONPath)")
    if language != "JSONPath":
        raise InvalidDefinition(f"{label}: unknown QueryLanguage {language!r}")


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _check_transitions(states: dict[str, StateDef], start_at: str, label: str) -> None:
    edges: dict[str, list[tuple[str, str]]] = {}
    for state in states.values():
        targets: list[tuple[str, str]] = []
        if state.next is not None:
            targets.append(("Next", state.next))
        targets += [(f"Catch[{i}].Next", c.next) for i, c in enumerate(state.catchers)]
        targets += [(f"Choices[{i}].Next", nxt) for i, (_, nxt) in enumerate(state.choices)]
        if state.default is not None:
            targets.append(("Default", state.default))
        for fld, target in targets:
            if target not in states:
                raise InvalidDefinition(
                    f"{label}: state {state.name!r} field {fld} names the state {target!r}, which does not exist"
                )
        edges[state.name] = targets
    reached = {start_at}
    todo = [start_at]
    while todo:
        for _, target in edges[todo.pop()]:
            if target not in reached:
                reached.add(target)
                todo.append(target)
    unreachable = [name for name in states if name not in reached]
    if unreachable:
        raise InvalidDefinition(f"{label}: state(s) {', '.join(map(repr, unreachable))} cannot be reached from StartAt")


def _validate_state(name: str, body: Any) -> StateDef:
    where = f"state {name!r}"
    if not isinstance(body, dict):
        raise InvalidDefinition(f"{where}: a state must be a JSON object")
    kind = body.get("Type")
    if kind not in _ALLOWED_FIELDS:
        raise InvalidDefinition(f"{where}: unknown state type {kind!r} in field Type")
    _check_query_language(body, where)
    for key in body:
        if key in _UNSUPPORTED_FIELDS:
            raise UnsupportedDefinition(f"{where}: field {key}: {_UNSUPPORTED_FIELDS[key]}")
        if kind == "Map" and key in _DISTRIBUTED_ONLY_FIELDS:
            raise UnsupportedDefinition(
                f"{where}: field {key}: {key} belongs to DISTRIBUTED mode, which the local executor does not run "
                "(it runs INLINE Map states, where any failed iteration fails the Map: to let the other iterations "
                "go on, catch the failure inside the ItemProcessor)"
            )
    unknown = [k for k in body if k not in _ALLOWED_FIELDS[kind] and k != "QueryLanguage"]
    if unknown:
        raise InvalidDefinition(f"{where}: field(s) {', '.join(map(repr, unknown))} are not valid in a {kind} state")
    state = StateDef(name=name, type=kind)
    _flow(state, body, where)
    if "InputPath" in _ALLOWED_FIELDS[kind]:
        state.input_path = _optional_path(body, "InputPath", where)
        state.output_path = _optional_path(body, "OutputPath", where)
    if "ResultPath" in _ALLOWED_FIELDS[kind]:
        state.result_path = _optional_path(body, "ResultPath", where, reference=True)
    for fld in ("Parameters", "ResultSelector"):
        if fld in body:
            if not isinstance(body[fld], dict) and fld == "ResultSelector":
                raise InvalidDefinition(f"{where}: field {fld} must be an object")
            try:
                compiled = compile_template(body[fld])
            except TemplateError as exc:
                raise InvalidDefinition(f"{where}: field {fld}: {exc}") from exc
            setattr(state, "parameters" if fld == "Parameters" else "result_selector", compiled)
    if "Retry" in body:
        state.retriers = _retriers(body["Retry"], where)
    if "Catch" in body:
        state.catchers = _catchers(body["Catch"], where)
    {
        "Task": _task,
        "Pass": _pass,
        "Choice": _choice,
        "Wait": _wait,
        "Fail": _fail,
        "Parallel": _parallel,
        "Map": _map,
        "Succeed": lambda s, b, w: None,
    }[kind](state, body, where)
    return state


def _flow(state: StateDef, body: dict[str, Any], where: str) -> None:
    has_next, has_end = "Next" in body, "End" in body
    if state.type in ("Choice", "Succeed", "Fail"):
        return
    if has_next and has_end:
        raise InvalidDefinition(f"{where}: fields Next and End are mutually exclusive")
    if has_end and body["End"] is not True:
        raise InvalidDefinition(f"{where}: field End must be true when present")
    if not has_next and not has_end:
        raise InvalidDefinition(f"{where}: field Next is missing (a non-terminal state needs Next or End: true)")
    if has_next and not isinstance(body["Next"], str):
        raise InvalidDefinition(f"{where}: field Next must be a state name")
    state.next = body.get("Next")
    state.end = has_end


def _optional_path(body: dict[str, Any], fld: str, where: str, reference: bool = False) -> Path | None:
    if fld not in body:
        return parse_path("$")
    if body[fld] is None:
        return None
    try:
        path = parse_path(body[fld])
    except PathSyntaxError as exc:
        raise InvalidDefinition(f"{where}: field {fld}: {exc}") from exc
    if reference and (path.context or not path.is_reference):
        raise InvalidDefinition(
            f"{where}: field {fld} must be a reference path into the state input, got {body[fld]!r}"
        )
    return path


def _error_equals(raw: Any, where: str, is_last: bool) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw or not all(isinstance(e, str) for e in raw):
        raise InvalidDefinition(f"{where}: field ErrorEquals must be a non-empty array of error names")
    if STATES_ALL in raw:
        if len(raw) > 1:
            raise InvalidDefinition(f"{where}: field ErrorEquals: States.ALL must appear alone")
        if not is_last:
            raise InvalidDefinition(f"{where}: field ErrorEquals: States.ALL must be in the last element")
    return tuple(raw)


def _retriers(raw: Any, where: str) -> tuple[Retrier, ...]:
    if not isinstance(raw, list):
        raise InvalidDefinition(f"{where}: field Retry must be an array")
    out: list[Retrier] = []
    for i, item in enumerate(raw):
        loc = f"{where} Retry[{i}]"
        if not isinstance(item, dict):
            raise InvalidDefinition(f"{loc}: a Retrier must be an object")
        unknown = [k for k in item if k not in _RETRIER_FIELDS]
        if unknown:
            raise InvalidDefinition(f"{loc}: unknown field(s) {', '.join(map(repr, unknown))}")
        errors = _error_equals(item.get("ErrorEquals"), loc, i == len(raw) - 1)
        interval = item.get("IntervalSeconds", 1)
        if not _positive_int(interval):
            raise InvalidDefinition(f"{loc}: field IntervalSeconds must be a positive integer")
        attempts = item.get("MaxAttempts", 3)
        if not isinstance(attempts, int) or isinstance(attempts, bool) or attempts < 0:
            raise InvalidDefinition(f"{loc}: field MaxAttempts must be a non-negative integer")
        rate = item.get("BackoffRate", 2.0)
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or rate < 1.0:
            raise InvalidDefinition(f"{loc}: field BackoffRate must be a number >= 1.0")
        max_delay = item.get("MaxDelaySeconds")
        if max_delay is not None and not _positive_int(max_delay):
            raise InvalidDefinition(f"{loc}: field MaxDelaySeconds must be a positive integer")
        jitter = item.get("JitterStrategy", "NONE")
        if jitter not in ("FULL", "NONE"):
            raise InvalidDefinition(f"{loc}: field JitterStrategy must be FULL or NONE")
        out.append(Retrier(errors, interval, attempts, float(rate), max_delay, jitter == "FULL"))
    return tuple(out)


def _catchers(raw: Any, where: str) -> tuple[Catcher, ...]:
    if not isinstance(raw, list):
        raise InvalidDefinition(f"{where}: field Catch must be an array")
    out: list[Catcher] = []
    for i, item in enumerate(raw):
        loc = f"{where} Catch[{i}]"
        if not isinstance(item, dict):
            raise InvalidDefinition(f"{loc}: a Catcher must be an object")
        for key in item:
            if key in _UNSUPPORTED_FIELDS:
                raise UnsupportedDefinition(f"{loc}: field {key}: {_UNSUPPORTED_FIELDS[key]}")
        unknown = [k for k in item if k not in _CATCHER_FIELDS]
        if unknown:
            raise InvalidDefinition(f"{loc}: unknown field(s) {', '.join(map(repr, unknown))}")
        errors = _error_equals(item.get("ErrorEquals"), loc, i == len(raw) - 1)
        if not isinstance(item.get("Next"), str):
            raise InvalidDefinition(f"{loc}: field Next is missing")
        out.append(Catcher(errors, item["Next"], _optional_path(item, "ResultPath", loc, reference=True)))
    return tuple(out)


def _int_or_path(state: StateDef, body: dict[str, Any], fld: str, where: str) -> tuple[int | None, Path | None]:
    if fld in body and f"{fld}Path" in body:
        raise InvalidDefinition(f"{where}: fields {fld} and {fld}Path are mutually exclusive")
    if fld in body:
        if not _positive_int(body[fld]):
            raise InvalidDefinition(f"{where}: field {fld} must be a positive integer")
        return body[fld], None
    if f"{fld}Path" in body:
        return None, _optional_path(body, f"{fld}Path", where, reference=True)
    return None, None


def _task(state: StateDef, body: dict[str, Any], where: str) -> None:
    resource = body.get("Resource")
    if not isinstance(resource, str) or not resource:
        raise InvalidDefinition(f"{where}: field Resource is missing (a Task needs a Resource URI)")
    state.resource = resource
    state.timeout_seconds, state.timeout_seconds_path = _int_or_path(state, body, "TimeoutSeconds", where)
    state.heartbeat_seconds, state.heartbeat_seconds_path = _int_or_path(state, body, "HeartbeatSeconds", where)
    if (
        state.timeout_seconds is not None
        and state.heartbeat_seconds is not None
        and state.heartbeat_seconds >= state.timeout_seconds
    ):
        raise InvalidDefinition(f"{where}: field HeartbeatSeconds must be smaller than TimeoutSeconds")


def _pass(state: StateDef, body: dict[str, Any], where: str) -> None:
    if "Result" in body:
        state.has_result = True
        state.result = body["Result"]


def _choice(state: StateDef, body: dict[str, Any], where: str) -> None:
    choices = body.get("Choices")
    if not isinstance(choices, list) or not choices:
        raise InvalidDefinition(f"{where}: field Choices must be a non-empty array")
    compiled: list[tuple[Rule, str]] = []
    for i, rule in enumerate(choices):
        try:
            compiled_rule = compile_rule(rule, top_level=True)
        except ChoiceRuleError as exc:
            raise InvalidDefinition(f"{where}: field Choices[{i}]: {exc}") from exc
        if not isinstance(rule.get("Next"), str):
            raise InvalidDefinition(f"{where}: field Choices[{i}].Next is missing")
        compiled.append((compiled_rule, rule["Next"]))
    state.choices = tuple(compiled)
    default = body.get("Default")
    if default is not None and not isinstance(default, str):
        raise InvalidDefinition(f"{where}: field Default must be a state name")
    state.default = default


def _wait(state: StateDef, body: dict[str, Any], where: str) -> None:
    given = [k for k in ("Seconds", "SecondsPath", "Timestamp", "TimestampPath") if k in body]
    if len(given) != 1:
        raise InvalidDefinition(
            f"{where}: exactly one of Seconds, SecondsPath, Timestamp, TimestampPath is required"
            f" (found {given or 'none'})"
        )
    fld = given[0]
    if fld == "Seconds":
        if not isinstance(body[fld], int) or isinstance(body[fld], bool) or body[fld] < 0:
            raise InvalidDefinition(f"{where}: field Seconds must be a non-negative integer")
        state.seconds = body[fld]
    elif fld == "Timestamp":
        if parse_timestamp(body[fld]) is None:
            raise InvalidDefinition(f"{where}: field Timestamp is not an RFC 3339 timestamp: {body[fld]!r}")
        state.timestamp = body[fld]
    elif fld == "SecondsPath":
        state.seconds_path = _optional_path(body, fld, where, reference=True)
    else:
        state.timestamp_path = _optional_path(body, fld, where, reference=True)


def _fail(state: StateDef, body: dict[str, Any], where: str) -> None:
    for fld, attr in (("Error", "error"), ("Cause", "cause")):
        if fld in body and f"{fld}Path" in body:
            raise InvalidDefinition(f"{where}: fields {fld} and {fld}Path are mutually exclusive")
        if fld in body:
            if not isinstance(body[fld], str):
                raise InvalidDefinition(f"{where}: field {fld} must be a string")
            setattr(state, attr, body[fld])
        if f"{fld}Path" in body:
            try:
                setattr(state, f"{attr}_expr", compile_expression(body[f"{fld}Path"], f"{fld}Path"))
            except TemplateError as exc:
                raise InvalidDefinition(f"{where}: field {fld}Path: {exc}") from exc


def _parallel(state: StateDef, body: dict[str, Any], where: str) -> None:
    branches = body.get("Branches")
    if not isinstance(branches, list) or not branches:
        raise InvalidDefinition(f"{where}: field Branches must be a non-empty array")
    state.branches = tuple(
        _validate_machine(branch, top_level=False, where=f"{where} Branches[{i}]") for i, branch in enumerate(branches)
    )


def _map(state: StateDef, body: dict[str, Any], where: str) -> None:
    """An INLINE Map state (https://docs.aws.amazon.com/step-functions/latest/dg/state-map-inline.html)."""
    if "ItemProcessor" in body and "Iterator" in body:
        raise InvalidDefinition(
            f"{where}: fields ItemProcessor and Iterator are mutually exclusive (Iterator is the "
            "deprecated spelling of ItemProcessor)"
        )
    processor_field = "ItemProcessor" if "ItemProcessor" in body else "Iterator"
    if processor_field not in body:
        raise InvalidDefinition(f"{where}: field ItemProcessor is missing (a Map needs the states each item runs)")
    if "ItemSelector" in body and "Parameters" in body:
        raise InvalidDefinition(
            f"{where}: fields ItemSelector and Parameters are mutually exclusive (Parameters is "
            "the deprecated spelling of ItemSelector in a Map)"
        )
    # The generic loop compiled a Map's Parameters as if they were a Task's: in a Map they select each item's input.
    state.item_selector, state.parameters = state.parameters, None
    if "ItemSelector" in body:
        if not isinstance(body["ItemSelector"], dict):
            raise InvalidDefinition(f"{where}: field ItemSelector must be an object")
        try:
            state.item_selector = compile_template(body["ItemSelector"])
        except TemplateError as exc:
            raise InvalidDefinition(f"{where}: field ItemSelector: {exc}") from exc
    state.items_path = _items_path(body, where)
    if "MaxConcurrency" in body and "MaxConcurrencyPath" in body:
        raise InvalidDefinition(f"{where}: fields MaxConcurrency and MaxConcurrencyPath are mutually exclusive")
    if "MaxConcurrency" in body:
        value = body["MaxConcurrency"]
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise InvalidDefinition(f"{where}: field MaxConcurrency must be a non-negative integer (0 = no limit)")
        state.max_concurrency = value
    if "MaxConcurrencyPath" in body:
        state.max_concurrency_path = _optional_path(body, "MaxConcurrencyPath", where, reference=True)
        if state.max_concurrency_path is None:
            raise InvalidDefinition(f"{where}: field MaxConcurrencyPath must be a reference path, not null")
    state.iterator = _processor(body[processor_field], f"{where} {processor_field}")


def _items_path(body: dict[str, Any], where: str) -> Path:
    """ItemsPath: a reference path into the effective input or the context object (default ``$``)."""
    text = body.get("ItemsPath", "$")
    try:
        path = parse_path(text)
    except PathSyntaxError as exc:
        raise InvalidDefinition(f"{where}: field ItemsPath: {exc}") from exc
    if not path.is_reference:
        raise InvalidDefinition(f"{where}: field ItemsPath must be a reference path (no wildcards), got {text!r}")
    return path


def _processor(raw: Any, where: str) -> Definition:
    if not isinstance(raw, dict):
        raise InvalidDefinition(f"{where}: must be an object with StartAt and States")
    config = raw.get("ProcessorConfig", {})
    if not isinstance(config, dict):
        raise InvalidDefinition(f"{where}: field ProcessorConfig must be an object")
    unknown = [k for k in config if k not in ("Mode", "ExecutionType")]
    if unknown:
        raise InvalidDefinition(f"{where}: field ProcessorConfig: unknown field(s) {', '.join(map(repr, unknown))}")
    mode = config.get("Mode", "INLINE")
    if mode == "DISTRIBUTED":
        raise UnsupportedDefinition(
            f"{where}: field ProcessorConfig.Mode: DISTRIBUTED mode (child workflow executions) is not supported "
            "by the local executor; use INLINE"
        )
    if mode != "INLINE":
        raise InvalidDefinition(f"{where}: field ProcessorConfig.Mode must be INLINE or DISTRIBUTED, got {mode!r}")
    if "ExecutionType" in config:
        raise InvalidDefinition(f"{where}: field ProcessorConfig.ExecutionType applies to DISTRIBUTED mode only")
    unknown = [k for k in raw if k not in _PROCESSOR_FIELDS]
    if unknown:
        raise InvalidDefinition(f"{where}: unknown field(s) {', '.join(map(repr, unknown))}")
    branch = {k: v for k, v in raw.items() if k != "ProcessorConfig"}
    return _validate_machine(branch, top_level=False, where=where)
