"""The JSONPath subset of ASL Paths and Reference Paths, and InputPath/OutputPath/ResultPath application.

Supported syntax: ``$``, ``$$`` (context object), ``.name``, ``['name']`` / ``["name"]``, ``[n]`` (n may be
negative), and the wildcards ``.*`` / ``[*]`` (a path with a wildcard selects a list). Anything else (filters,
slices, recursive descent) is refused when the definition is loaded.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from typing import Any

from .errors import STATES_RESULT_PATH_MATCH_FAILURE, StatesError


class PathSyntaxError(ValueError):
    """The text is not a path in the supported JSONPath subset."""


class PathNotFound(LookupError):
    """A path selects nothing in the data it is applied to."""

    def __init__(self, path: Path, data: Any) -> None:
        super().__init__(f"The JSONPath '{path.text}' could not be found")
        self.path = path
        self.data = data


class _Wildcard:
    """Marker segment for ``*``."""

    def __repr__(self) -> str:
        return "*"


WILDCARD = _Wildcard()
Segment = str | int | _Wildcard

_NAME = re.compile(r"[^.\[\]\s'\"]+")


@dataclass(frozen=True)
class Path:
    """A compiled path; ``context`` is True for ``$$`` paths (they read the context object)."""

    text: str
    context: bool
    segments: tuple[Segment, ...]

    @property
    def is_reference(self) -> bool:
        """True when the path can only select a single node (an ASL Reference Path)."""
        return not any(seg is WILDCARD for seg in self.segments)


def parse_path(text: str) -> Path:
    """Compile ``text`` into a Path, raising PathSyntaxError for syntax outside the supported subset."""
    if not isinstance(text, str) or not text.startswith("$"):
        raise PathSyntaxError(f"a path must be a string starting with '$', got {text!r}")
    context = text.startswith("$$")
    i = 2 if context else 1
    segments: list[Segment] = []
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == ".":
            if text.startswith("..", i):
                raise PathSyntaxError(f"recursive descent '..' is not supported in {text!r}")
            i += 1
            if i < n and text[i] == "*":
                segments.append(WILDCARD)
                i += 1
                continue
            m = _NAME.match(text, i)
            if not m:
                raise PathSyntaxError(f"expected a field name at offset {i} of {text!r}")
            segments.append(m.group(0))
            i = m.end()
        elif ch == "[":
            close = _bracket_end(text, i)
            inner = text[i + 1 : close].strip()
            segments.append(_bracket_segment(inner, text))
            i = close + 1
        else:
            raise PathSyntaxError(f"unexpected {ch!r} at offset {i} of {text!r}")
    return Path(text=text, context=context, segments=tuple(segments))


def _bracket_end(text: str, start: int) -> int:
    """Index of the ``]`` closing the bracket opened at ``start`` (quotes may contain ``]``)."""
    i = start + 1
    quote: str | None = None
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "]":
            return i
        i += 1
    raise PathSyntaxError(f"unclosed '[' in {text!r}")


def _bracket_segment(inner: str, text: str) -> Segment:
    if inner == "*":
        return WILDCARD
    if re.fullmatch(r"-?\d+", inner):
        return int(inner)
    if len(inner) >= 2 and inner[0] == inner[-1] and inner[0] in "'\"":
        body = inner[1:-1]
        return re.sub(r"\\(.)", r"\1", body)
    raise PathSyntaxError(f"unsupported bracket expression [{inner}] in {text!r} (filters and slices are refused)")


def resolve(path: Path, data: Any, context: Any = None) -> Any:
    """Select the value ``path`` designates in ``data`` (or in ``context`` for ``$$`` paths).

    Raises PathNotFound when a field or index is missing. A path with a wildcard returns the list of the
    values it matches (possibly empty), as JSONPath does.
    """
    root = context if path.context else data
    if path.is_reference:
        node = root
        for seg in path.segments:
            node = _step(node, seg, path, root)
        return node
    matches = [root]
    for seg in path.segments:
        nxt: list[Any] = []
        for node in matches:
            if seg is WILDCARD:
                if isinstance(node, dict):
                    nxt.extend(node.values())
                elif isinstance(node, list):
                    nxt.extend(node)
            else:
                try:
                    nxt.append(_step(node, seg, path, root))
                except PathNotFound:
                    continue
        matches = nxt
    return matches


def _step(node: Any, seg: Segment, path: Path, root: Any) -> Any:
    if isinstance(seg, str):
        if isinstance(node, dict) and seg in node:
            return node[seg]
    elif isinstance(seg, int) and isinstance(node, list) and -len(node) <= seg < len(node):
        return node[seg]
    raise PathNotFound(path, root)


def apply_result_path(state_input: Any, result: Any, result_path: Path | None) -> Any:
    """Combine the state's raw input and its result as ResultPath says.

    ``None`` (ResultPath null) discards the result and keeps the input; ``$`` replaces the input; any other
    reference path writes the result into a deep copy of the input, creating missing objects on the way.
    A path that crosses a non-object value raises States.ResultPathMatchFailure.
    """
    if result_path is None:
        return state_input
    if not result_path.segments:
        return result
    output = copy.deepcopy(state_input)
    node = output
    segs = result_path.segments
    for pos, seg in enumerate(segs):
        last = pos == len(segs) - 1
        if isinstance(seg, str) and isinstance(node, dict):
            if last:
                node[seg] = result
            else:
                if seg not in node:
                    node[seg] = {}
                node = node[seg]
            continue
        if isinstance(seg, int) and isinstance(node, list) and -len(node) <= seg < len(node):
            if last:
                node[seg] = result
            else:
                node = node[seg]
            continue
        raise StatesError(
            STATES_RESULT_PATH_MATCH_FAILURE,
            f'Unable to apply ResultPath "{result_path.text}" to input {json.dumps(state_input)}',
        )
    return output
