"""Payload templates (Parameters, ResultSelector, Pass Parameters): ``"key.$"`` fields are paths or intrinsics.

Templates are compiled once at load time, so a malformed path or intrinsic is a load error, and evaluated
for each state run. Objects nested in objects and in arrays are templates too.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import STATES_RUNTIME, StatesError
from .intrinsics import Call, IntrinsicSyntaxError, evaluate_intrinsic, looks_like_intrinsic, parse_intrinsic
from .paths import Path, PathNotFound, PathSyntaxError, parse_path, resolve


class TemplateError(ValueError):
    """A template is malformed; the message names the offending key."""


@dataclass(frozen=True)
class Dynamic:
    """A ``.$`` field: the source text and its compiled path or intrinsic call."""

    field: str
    source: str
    expr: Path | Call


@dataclass(frozen=True)
class CompiledObject:
    """An object template: (output key, compiled value) pairs in definition order."""

    fields: tuple[tuple[str, Compiled], ...]


@dataclass(frozen=True)
class CompiledArray:
    """An array whose items may be templates."""

    items: tuple[Compiled, ...]


@dataclass(frozen=True)
class Constant:
    """A literal JSON value (string, number, boolean, null)."""

    value: Any


Compiled = CompiledObject | CompiledArray | Dynamic | Constant


def compile_expression(source: Any, field: str) -> Path | Call:
    """Compile the value of a ``.$`` field (or of ErrorPath/CausePath): a path or an intrinsic call."""
    if not isinstance(source, str):
        raise TemplateError(f"the value of '{field}' must be a path or an intrinsic function string")
    try:
        if looks_like_intrinsic(source):
            return parse_intrinsic(source)
        return parse_path(source)
    except (IntrinsicSyntaxError, PathSyntaxError) as exc:
        raise TemplateError(f"invalid value {source!r} of '{field}': {exc}") from exc


def compile_template(template: Any, where: str = "") -> Compiled:
    """Compile a payload template; ``where`` prefixes key names in error messages."""
    if isinstance(template, dict):
        fields: list[tuple[str, Compiled]] = []
        seen: set[str] = set()
        for key, value in template.items():
            if key.endswith(".$"):
                out_key = key[:-2]
                compiled: Compiled = Dynamic(key, value, compile_expression(value, where + key))
            else:
                out_key = key
                compiled = compile_template(value, f"{where}{key}.")
            if out_key in seen:
                raise TemplateError(f"the field '{where}{out_key}' is given twice (with and without '.$')")
            seen.add(out_key)
            fields.append((out_key, compiled))
        return CompiledObject(tuple(fields))
    if isinstance(template, list):
        return CompiledArray(tuple(compile_template(item, f"{where}[{i}].") for i, item in enumerate(template)))
    return Constant(template)


def evaluate_expression(expr: Path | Call, field: str, data: Any, context: Any, random: Callable[[], float]) -> Any:
    """Evaluate a compiled path or intrinsic; a path that selects nothing is a States.Runtime error."""
    try:
        if isinstance(expr, Path):
            return resolve(expr, data, context)
        return evaluate_intrinsic(expr, data, context, random)
    except PathNotFound as exc:
        raise StatesError(
            STATES_RUNTIME,
            f"The JSONPath '{exc.path.text}' specified for the field '{field}' could not be found in the input "
            f"'{json.dumps(exc.data, separators=(',', ':'))}'",
        ) from exc


def evaluate_template(compiled: Compiled, data: Any, context: Any, random: Callable[[], float]) -> Any:
    """Build the JSON value a compiled template describes for ``data`` and the context object."""
    if isinstance(compiled, Constant):
        return compiled.value
    if isinstance(compiled, Dynamic):
        return evaluate_expression(compiled.expr, compiled.field, data, context, random)
    if isinstance(compiled, CompiledArray):
        return [evaluate_template(item, data, context, random) for item in compiled.items]
    return {key: evaluate_template(value, data, context, random) for key, value in compiled.fields}
