"""Intrinsic functions of the Amazon States Language: a parser (run at load time) and an evaluator.

An intrinsic call appears as the value of a ``"key.$"`` field of a payload template, or in a Fail state's
ErrorPath/CausePath. Arguments are string literals in single quotes (escapes ``\\'``, ``\\{``, ``\\}``,
``\\\\``), numbers, ``true``/``false``/``null``, paths (``$.x``, ``$$.Execution.Name``) and nested calls.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import STATES_INTRINSIC_FAILURE, StatesError
from .paths import Path, PathSyntaxError, parse_path, resolve


class IntrinsicSyntaxError(ValueError):
    """The text is not a well-formed (or not a known) intrinsic function call."""


@dataclass(frozen=True)
class StringLiteral:
    """A quoted string; ``raw`` keeps the escapes so States.Format can tell ``\\{`` from a placeholder."""

    raw: str
    value: str


@dataclass(frozen=True)
class Literal:
    """A number, boolean or null argument."""

    value: Any


@dataclass(frozen=True)
class PathArg:
    """A path argument, resolved against the effective input or the context object."""

    path: Path


@dataclass(frozen=True)
class Call:
    """A call of a ``States.*`` function."""

    name: str
    args: tuple[Arg, ...]


Arg = StringLiteral | Literal | PathArg | Call

# name -> (minimum, maximum) argument count; maximum None means variadic.
_ARITY: dict[str, tuple[int, int | None]] = {
    "States.Format": (1, None),
    "States.StringToJson": (1, 1),
    "States.JsonToString": (1, 1),
    "States.Array": (0, None),
    "States.ArrayPartition": (2, 2),
    "States.ArrayContains": (2, 2),
    "States.ArrayRange": (3, 3),
    "States.ArrayGetItem": (2, 2),
    "States.ArrayLength": (1, 1),
    "States.ArrayUnique": (1, 1),
    "States.Base64Encode": (1, 1),
    "States.Base64Decode": (1, 1),
    "States.Hash": (2, 2),
    "States.JsonMerge": (3, 3),
    "States.MathRandom": (2, 3),
    "States.MathAdd": (2, 2),
    "States.StringSplit": (2, 2),
    "States.UUID": (0, 0),
}

SUPPORTED_FUNCTIONS = frozenset(_ARITY)

_NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][+-]?\d+)?")
_FUNC_NAME = re.compile(r"States\.[A-Za-z0-9]+")


def looks_like_intrinsic(text: str) -> bool:
    """True when a ``.$`` value is meant as an intrinsic call rather than a path."""
    return text.startswith("States.")


def parse_intrinsic(text: str) -> Call:
    """Parse a complete intrinsic call, raising IntrinsicSyntaxError on any malformation."""
    parser = _Parser(text)
    call = parser.call()
    parser.skip_ws()
    if parser.pos != len(text):
        raise IntrinsicSyntaxError(f"unexpected text after the call at offset {parser.pos}: {text[parser.pos :]!r}")
    return call


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def skip_ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def call(self) -> Call:
        self.skip_ws()
        m = _FUNC_NAME.match(self.text, self.pos)
        if not m or not self.text.startswith("(", m.end()):
            raise IntrinsicSyntaxError(f"expected a States.<Function>( call at offset {self.pos} of {self.text!r}")
        name = m.group(0)
        if name not in _ARITY:
            raise IntrinsicSyntaxError(f"unknown intrinsic function {name}")
        self.pos = m.end() + 1
        args: list[Arg] = []
        self.skip_ws()
        if self.text.startswith(")", self.pos):
            self.pos += 1
        else:
            while True:
                args.append(self.arg())
                self.skip_ws()
                if self.text.startswith(",", self.pos):
                    self.pos += 1
                    continue
                if self.text.startswith(")", self.pos):
                    self.pos += 1
                    break
                raise IntrinsicSyntaxError(f"expected ',' or ')' at offset {self.pos} of {self.text!r}")
        low, high = _ARITY[name]
        if len(args) < low or (high is not None and len(args) > high):
            expected = f"{low}" if low == high else f"{low} to {high if high is not None else 'any'}"
            raise IntrinsicSyntaxError(f"{name} takes {expected} arguments, got {len(args)}")
        return Call(name=name, args=tuple(args))

    def arg(self) -> Arg:
        self.skip_ws()
        text, pos = self.text, self.pos
        if pos >= len(text):
            raise IntrinsicSyntaxError(f"unexpected end of {text!r}")
        ch = text[pos]
        if ch == "'":
            return self.string()
        if ch == "$":
            return PathArg(self.path())
        if text.startswith("States.", pos):
            return self.call()
        for word, value in (("true", True), ("false", False), ("null", None)):
            if text.startswith(word, pos):
                self.pos += len(word)
                return Literal(value)
        m = _NUMBER.match(text, pos)
        if m:
            self.pos = m.end()
            num = m.group(0)
            return Literal(float(num) if (m.group(1) or m.group(2)) else int(num))
        raise IntrinsicSyntaxError(f"unexpected {ch!r} at offset {pos} of {text!r}")

    def string(self) -> StringLiteral:
        start = self.pos + 1
        i = start
        value: list[str] = []
        while i < len(self.text):
            ch = self.text[i]
            if ch == "\\":
                nxt = self.text[i + 1 : i + 2]
                if nxt not in ("'", "{", "}", "\\"):
                    raise IntrinsicSyntaxError(f"invalid escape '\\{nxt}' in {self.text!r}")
                value.append(nxt)
                i += 2
                continue
            if ch == "'":
                self.pos = i + 1
                return StringLiteral(raw=self.text[start:i], value="".join(value))
            value.append(ch)
            i += 1
        raise IntrinsicSyntaxError(f"unterminated string literal in {self.text!r}")

    def path(self) -> Path:
        # A path argument runs to the next ',' or ')' outside brackets and quotes.
        i = self.pos
        depth = 0
        quote: str | None = None
        while i < len(self.text):
            ch = self.text[i]
            if quote:
                if ch == quote:
                    quote = None
            elif ch in "'\"" and depth:
                quote = ch
            elif ch == "[":
                depth += 1
            elif ch == "]":
                depth -= 1
            elif depth == 0 and (ch in ",)" or ch.isspace()):
                break
            i += 1
        text = self.text[self.pos : i]
        self.pos = i
        try:
            return parse_path(text)
        except PathSyntaxError as exc:
            raise IntrinsicSyntaxError(str(exc)) from exc


Random = Callable[[], float]


def evaluate_intrinsic(call: Call, data: Any, context: Any, random: Random) -> Any:
    """Evaluate ``call``; a missing path raises PathNotFound, a function error States.IntrinsicFailure."""
    args = [_eval_arg(arg, data, context, random) for arg in call.args]
    try:
        return _FUNCTIONS[call.name](call, args, random)
    except StatesError:
        raise
    except (TypeError, ValueError, IndexError, KeyError, OverflowError) as exc:
        raise _fail(call, str(exc)) from exc


def _eval_arg(arg: Arg, data: Any, context: Any, random: Random) -> Any:
    if isinstance(arg, StringLiteral):
        return arg.value
    if isinstance(arg, Literal):
        return arg.value
    if isinstance(arg, PathArg):
        return resolve(arg.path, data, context)
    return evaluate_intrinsic(arg, data, context, random)


def _fail(call: Call, message: str) -> StatesError:
    return StatesError(STATES_INTRINSIC_FAILURE, f"Invalid arguments in {call.name}: {message}")


def _is_int(value: Any) -> bool:
    # JSON has no int/bool overlap; Python's bool is an int subclass, so exclude it explicitly.
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def _want_int(call: Call, value: Any, what: str) -> int:
    if not _is_int(value):
        raise _fail(call, f"{what} must be an integer, got {json.dumps(value)}")
    return int(value)


def _want(call: Call, value: Any, kind: type | tuple[type, ...], what: str) -> Any:
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise _fail(call, f"{what} has the wrong type: {json.dumps(value)}")
    return value


def _to_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _format(call: Call, args: list[Any], _random: Random) -> str:
    first = call.args[0]
    template_raw = first.raw if isinstance(first, StringLiteral) else _want(call, args[0], str, "the template")
    values = args[1:]
    out: list[str] = []
    used = 0
    i = 0
    while i < len(template_raw):
        ch = template_raw[i]
        if ch == "\\" and isinstance(first, StringLiteral):
            out.append(template_raw[i + 1])
            i += 2
            continue
        if template_raw.startswith("{}", i):
            if used >= len(values):
                raise _fail(call, "more {} placeholders than arguments")
            value = values[used]
            if isinstance(value, (dict, list)):
                raise _fail(call, f"argument {used + 1} is not a string, number, boolean or null")
            out.append(value if isinstance(value, str) else _to_json(value))
            used += 1
            i += 2
            continue
        if ch in "{}":
            raise _fail(call, f"unescaped '{ch}' in the template (escape it as \\{ch})")
        out.append(ch)
        i += 1
    if used != len(values):
        raise _fail(call, f"{len(values)} arguments for {used} placeholders")
    return "".join(out)


def _string_to_json(call: Call, args: list[Any], _random: Random) -> Any:
    text = _want(call, args[0], str, "the argument")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise _fail(call, f"not a JSON string: {exc}") from exc


def _json_to_string(call: Call, args: list[Any], _random: Random) -> str:
    return _to_json(args[0])


def _array(call: Call, args: list[Any], _random: Random) -> list[Any]:
    return list(args)


def _array_partition(call: Call, args: list[Any], _random: Random) -> list[list[Any]]:
    array = _want(call, args[0], list, "the array")
    size = _want_int(call, args[1], "the chunk size")
    if size <= 0:
        raise _fail(call, "the chunk size must be positive")
    return [array[i : i + size] for i in range(0, len(array), size)]


def _array_contains(call: Call, args: list[Any], _random: Random) -> bool:
    array = _want(call, args[0], list, "the array")
    return any(_json_equal(item, args[1]) for item in array)


def _json_equal(a: Any, b: Any) -> bool:
    # Compare as JSON values: true must not equal 1.
    return _to_json(a) == _to_json(b) if isinstance(a, bool) or isinstance(b, bool) else a == b


def _array_range(call: Call, args: list[Any], _random: Random) -> list[int]:
    start, end, step = (_want_int(call, v, name) for v, name in zip(args, ("start", "end", "step"), strict=True))
    if step == 0:
        raise _fail(call, "the step must not be 0")
    values = list(range(start, end + (1 if step > 0 else -1), step))
    if len(values) > 1000:
        raise _fail(call, "the range has more than 1000 items")
    return values


def _array_get_item(call: Call, args: list[Any], _random: Random) -> Any:
    array = _want(call, args[0], list, "the array")
    index = _want_int(call, args[1], "the index")
    if not 0 <= index < len(array):
        raise _fail(call, f"index {index} out of bounds for an array of {len(array)} items")
    return array[index]


def _array_length(call: Call, args: list[Any], _random: Random) -> int:
    return len(_want(call, args[0], list, "the array"))


def _array_unique(call: Call, args: list[Any], _random: Random) -> list[Any]:
    array = _want(call, args[0], list, "the array")
    seen: set[str] = set()
    out: list[Any] = []
    for item in array:
        key = json.dumps(item, sort_keys=True)
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def _base64_encode(call: Call, args: list[Any], _random: Random) -> str:
    text = _want(call, args[0], str, "the data")
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _base64_decode(call: Call, args: list[Any], _random: Random) -> str:
    text = _want(call, args[0], str, "the data")
    try:
        return base64.b64decode(text, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise _fail(call, f"not base64-encoded UTF-8: {exc}") from exc


_HASHES = {"MD5": "md5", "SHA-1": "sha1", "SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512"}


def _hash(call: Call, args: list[Any], _random: Random) -> str:
    data = args[0] if isinstance(args[0], str) else _to_json(args[0])
    algorithm = _want(call, args[1], str, "the algorithm")
    if algorithm not in _HASHES:
        raise _fail(call, f"unknown algorithm {algorithm!r} (one of {', '.join(_HASHES)})")
    return hashlib.new(_HASHES[algorithm], data.encode("utf-8")).hexdigest()


def _json_merge(call: Call, args: list[Any], _random: Random) -> dict[str, Any]:
    left = _want(call, args[0], dict, "the first object")
    right = _want(call, args[1], dict, "the second object")
    deep = _want(call, args[2], bool, "the deep-merge flag")
    if deep:
        # Step Functions only implements the shallow merge; true is an error there too.
        raise _fail(call, "only a shallow merge (false) is supported")
    return {**left, **right}


def _math_random(call: Call, args: list[Any], random: Random) -> int:
    start = _want_int(call, args[0], "start")
    end = _want_int(call, args[1], "end")
    if len(args) == 3:
        _want_int(call, args[2], "seed")
    if end <= start:
        raise _fail(call, "end must be greater than start")
    # Start inclusive, end exclusive.
    return start + min(int(random() * (end - start)), end - start - 1)


def _math_add(call: Call, args: list[Any], _random: Random) -> int:
    return _want_int(call, args[0], "the first number") + _want_int(call, args[1], "the second number")


def _string_split(call: Call, args: list[Any], _random: Random) -> list[str]:
    text = _want(call, args[0], str, "the string")
    delimiters = _want(call, args[1], str, "the delimiters")
    if not delimiters:
        return [text]
    # Every character of the second argument is a delimiter; empty tokens are dropped.
    parts = re.split("[" + re.escape(delimiters) + "]", text)
    return [part for part in parts if part]


def _uuid(call: Call, args: list[Any], _random: Random) -> str:
    return str(uuid.uuid4())


_FUNCTIONS: dict[str, Callable[[Call, list[Any], Random], Any]] = {
    "States.Format": _format,
    "States.StringToJson": _string_to_json,
    "States.JsonToString": _json_to_string,
    "States.Array": _array,
    "States.ArrayPartition": _array_partition,
    "States.ArrayContains": _array_contains,
    "States.ArrayRange": _array_range,
    "States.ArrayGetItem": _array_get_item,
    "States.ArrayLength": _array_length,
    "States.ArrayUnique": _array_unique,
    "States.Base64Encode": _base64_encode,
    "States.Base64Decode": _base64_decode,
    "States.Hash": _hash,
    "States.JsonMerge": _json_merge,
    "States.MathRandom": _math_random,
    "States.MathAdd": _math_add,
    "States.StringSplit": _string_split,
    "States.UUID": _uuid,
}


def iter_paths(call: Call) -> Sequence[Path]:
    """All paths an intrinsic call reads (used by validation)."""
    found: list[Path] = []
    for arg in call.args:
        if isinstance(arg, PathArg):
            found.append(arg.path)
        elif isinstance(arg, Call):
            found.extend(iter_paths(arg))
    return found
