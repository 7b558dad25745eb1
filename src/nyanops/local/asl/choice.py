"""Choice rules: compiled at load time (operators, value types, paths) and evaluated against a state input."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import STATES_RUNTIME, StatesError
from .paths import Path, PathNotFound, PathSyntaxError, parse_path, resolve
from .timestamps import parse_timestamp


class ChoiceRuleError(ValueError):
    """A Choice rule is malformed; the message says which part."""


_KINDS = ("String", "Numeric", "Boolean", "Timestamp")
_RELATIONS = ("Equals", "LessThan", "GreaterThan", "LessThanEquals", "GreaterThanEquals")
COMPARISON_OPERATORS = frozenset(
    [f"{k}{r}" for k in _KINDS for r in _RELATIONS if not (k == "Boolean" and r != "Equals")] + ["StringMatches"]
)
PATH_OPERATORS = frozenset(f"{op}Path" for op in COMPARISON_OPERATORS if op != "StringMatches")
TYPE_TEST_OPERATORS = frozenset({"IsNull", "IsPresent", "IsNumeric", "IsString", "IsBoolean", "IsTimestamp"})
ALL_OPERATORS = COMPARISON_OPERATORS | PATH_OPERATORS | TYPE_TEST_OPERATORS


@dataclass(frozen=True)
class Comparison:
    """A data-test expression: Variable <operator> value (or the value at a path for ``...Path`` operators)."""

    variable: Path
    operator: str
    value: Any
    value_path: Path | None


@dataclass(frozen=True)
class BooleanExpr:
    """And / Or / Not over nested rules."""

    operator: str
    rules: tuple[Rule, ...]


Rule = Comparison | BooleanExpr


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def compile_rule(rule: Any, top_level: bool) -> Rule:
    """Compile one Choice rule; ``Next`` is handled by the caller (allowed only at the top level)."""
    if not isinstance(rule, dict):
        raise ChoiceRuleError("a Choice rule must be an object")
    allowed_extra = {"Next", "Comment"} if top_level else {"Comment"}
    ops = [k for k in rule if k in ALL_OPERATORS or k in ("And", "Or", "Not")]
    unknown = [k for k in rule if k not in ops and k not in allowed_extra and k != "Variable"]
    if unknown:
        raise ChoiceRuleError(f"unknown field(s) {', '.join(map(repr, unknown))} in a Choice rule")
    if len(ops) != 1:
        raise ChoiceRuleError(f"a Choice rule needs exactly one operator, found {ops or 'none'}")
    op = ops[0]
    if op in ("And", "Or", "Not"):
        if "Variable" in rule:
            raise ChoiceRuleError(f"'{op}' rules take no Variable")
        operand = rule[op]
        if op == "Not":
            return BooleanExpr(op, (compile_rule(operand, False),))
        if not isinstance(operand, list) or not operand:
            raise ChoiceRuleError(f"'{op}' must be a non-empty array of rules")
        return BooleanExpr(op, tuple(compile_rule(r, False) for r in operand))
    if "Variable" not in rule:
        raise ChoiceRuleError(f"the '{op}' rule has no Variable")
    try:
        variable = parse_path(rule["Variable"])
    except PathSyntaxError as exc:
        raise ChoiceRuleError(f"invalid Variable: {exc}") from exc
    value = rule[op]
    if op in PATH_OPERATORS:
        try:
            return Comparison(variable, op, None, parse_path(value))
        except PathSyntaxError as exc:
            raise ChoiceRuleError(f"invalid {op}: {exc}") from exc
    _check_value_type(op, value)
    return Comparison(variable, op, value, None)


def _check_value_type(op: str, value: Any) -> None:
    if op in TYPE_TEST_OPERATORS or op == "BooleanEquals":
        ok = isinstance(value, bool)
    elif op.startswith("Numeric"):
        ok = _is_number(value)
    elif op.startswith("Timestamp"):
        ok = parse_timestamp(value) is not None
    else:
        ok = isinstance(value, str)
    if not ok:
        raise ChoiceRuleError(f"the value of '{op}' has the wrong type: {json.dumps(value)}")


def evaluate_rule(rule: Rule, data: Any, context: Any) -> bool:
    """True when ``rule`` matches ``data``; a missing Variable (outside IsPresent) is a States.Runtime error."""
    if isinstance(rule, BooleanExpr):
        if rule.operator == "Not":
            return not evaluate_rule(rule.rules[0], data, context)
        if rule.operator == "And":
            return all(evaluate_rule(r, data, context) for r in rule.rules)
        return any(evaluate_rule(r, data, context) for r in rule.rules)
    try:
        actual = resolve(rule.variable, data, context)
    except PathNotFound:
        if rule.operator == "IsPresent":
            return rule.value is False
        raise StatesError(
            STATES_RUNTIME,
            f"Invalid path '{rule.variable.text}': The choice state's condition path references an invalid value.",
        ) from None
    if rule.operator in TYPE_TEST_OPERATORS:
        return _type_test(rule.operator, actual) is rule.value
    if rule.value_path is not None:
        try:
            expected = resolve(rule.value_path, data, context)
        except PathNotFound:
            raise StatesError(
                STATES_RUNTIME,
                f"Invalid path '{rule.value_path.text}': The choice state's condition path references an "
                "invalid value.",
            ) from None
        return _compare(rule.operator[: -len("Path")], actual, expected)
    return _compare(rule.operator, actual, rule.value)


def _type_test(op: str, value: Any) -> bool:
    tests: dict[str, Callable[[Any], bool]] = {
        "IsPresent": lambda v: True,
        "IsNull": lambda v: v is None,
        "IsNumeric": _is_number,
        "IsString": lambda v: isinstance(v, str),
        "IsBoolean": lambda v: isinstance(v, bool),
        "IsTimestamp": lambda v: parse_timestamp(v) is not None,
    }
    return tests[op](value)


def _compare(op: str, actual: Any, expected: Any) -> bool:
    # A value of the wrong type makes the comparison false rather than an error, as in Step Functions.
    if op == "StringMatches":
        return (
            isinstance(actual, str) and isinstance(expected, str) and _wildcard(expected).fullmatch(actual) is not None
        )
    if op == "BooleanEquals":
        return isinstance(actual, bool) and isinstance(expected, bool) and actual == expected
    relation = op
    if op.startswith("String"):
        if not (isinstance(actual, str) and isinstance(expected, str)):
            return False
        left, right = actual, expected
        relation = op[len("String") :]
    elif op.startswith("Numeric"):
        if not (_is_number(actual) and _is_number(expected)):
            return False
        left, right = actual, expected
        relation = op[len("Numeric") :]
    elif op.startswith("Timestamp"):
        left_ts, right_ts = parse_timestamp(actual), parse_timestamp(expected)
        if left_ts is None or right_ts is None:
            return False
        left, right = left_ts, right_ts
        relation = op[len("Timestamp") :]
    else:  # pragma: no cover - operators are validated at load time
        raise ValueError(op)
    return {
        "Equals": left == right,
        "LessThan": left < right,
        "GreaterThan": left > right,
        "LessThanEquals": left <= right,
        "GreaterThanEquals": left >= right,
    }[relation]


def _wildcard(pattern: str) -> re.Pattern[str]:
    """StringMatches pattern: ``*`` matches any run of characters; ``\\*`` and ``\\\\`` are literals."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if ch == "*" else re.escape(ch))
        i += 1
    return re.compile("".join(out), re.DOTALL)
