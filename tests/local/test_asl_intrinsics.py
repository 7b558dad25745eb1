"""Intrinsic functions: parsing (nesting, escapes, literals, paths) and every supported function."""

import base64
import hashlib
import json
import uuid
from typing import Any

import pytest

from nyanops.local.asl.errors import StatesError
from nyanops.local.asl.intrinsics import IntrinsicSyntaxError, evaluate_intrinsic, parse_intrinsic
from nyanops.local.asl.paths import PathNotFound

DATA = {
    "name": "cat",
    "n": 3,
    "arr": [1, 2, 2, 3],
    "obj": {"a": 1},
    "other": {"b": 2},
    "json": '{"k": [1, true]}',
    "csv": "a,b,,c",
}
CONTEXT = {"Execution": {"Name": "run-7"}}


def ev(text: str, random: Any = lambda: 0.5) -> Any:
    return evaluate_intrinsic(parse_intrinsic(text), DATA, CONTEXT, random)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("States.Format('Hello {}, {} items', $.name, $.n)", "Hello cat, 3 items"),
        ("States.Format('{} {} {}', true, null, 1.5)", "true null 1.5"),
        (r"States.Format('it\'s \{literal\} \\ {}', $$.Execution.Name)", "it's {literal} \\ run-7"),
        ("States.Format('no args')", "no args"),
        ("States.StringToJson($.json)", {"k": [1, True]}),
        ("States.JsonToString($.obj)", '{"a":1}'),
        ("States.Array(1, 'two', $.obj, States.Array())", [1, "two", {"a": 1}, []]),
        ("States.ArrayPartition($.arr, 3)", [[1, 2, 2], [3]]),
        ("States.ArrayContains($.arr, 2)", True),
        ("States.ArrayContains($.arr, 9)", False),
        ("States.ArrayRange(1, 9, 2)", [1, 3, 5, 7, 9]),
        ("States.ArrayRange(5, 1, -2)", [5, 3, 1]),
        ("States.ArrayGetItem($.arr, 3)", 3),
        ("States.ArrayLength($.arr)", 4),
        ("States.ArrayUnique($.arr)", [1, 2, 3]),
        ("States.Base64Encode('Data to encode')", base64.b64encode(b"Data to encode").decode()),
        ("States.Base64Decode('RGF0YSB0byBlbmNvZGU=')", "Data to encode"),
        ("States.Hash('input data', 'SHA-256')", hashlib.sha256(b"input data").hexdigest()),
        ("States.Hash($.name, 'MD5')", hashlib.md5(b"cat").hexdigest()),
        ("States.JsonMerge($.obj, $.other, false)", {"a": 1, "b": 2}),
        ("States.MathAdd($.n, -1)", 2),
        ("States.StringSplit($.csv, ',')", ["a", "b", "c"]),
        ("States.StringSplit('This.is+a,test', '.+,')", ["This", "is", "a", "test"]),
        # Nesting: a call's result is another call's argument.
        ("States.ArrayLength(States.StringSplit(States.Format('{}-{}', 'a', 'b'), '-'))", 2),
        ("States.JsonToString(States.StringToJson($.json))", '{"k":[1,true]}'),
    ],
)
def test_functions(text: str, expected: Any) -> None:
    assert ev(text) == expected


def test_math_random_uses_the_injected_random_within_bounds() -> None:
    assert ev("States.MathRandom(10, 20)", random=lambda: 0.0) == 10
    assert ev("States.MathRandom(10, 20)", random=lambda: 0.999999) == 19
    assert ev("States.MathRandom(10, 20, 42)", random=lambda: 0.5) == 15


def test_uuid_is_a_v4_uuid() -> None:
    assert uuid.UUID(ev("States.UUID()")).version == 4


@pytest.mark.parametrize(
    "text",
    [
        "States.Format('{} {}', 'one')",  # too few arguments
        "States.Format('{}', 'a', 'b')",  # too many arguments
        "States.Format('{}', $.obj)",  # an object cannot be formatted
        "States.Format('lone { brace')",
        "States.StringToJson('not json')",
        "States.ArrayGetItem($.arr, 10)",
        "States.ArrayRange(1, 5, 0)",
        "States.ArrayRange(0, 2000, 1)",
        "States.ArrayPartition($.arr, 0)",
        "States.JsonMerge($.obj, $.other, true)",
        "States.Hash('x', 'SHA-999')",
        "States.MathAdd(1.5, 1)",
        "States.MathRandom(5, 5)",
        "States.Base64Decode('@@@')",
        "States.ArrayLength($.name)",
    ],
)
def test_function_errors_are_intrinsic_failures(text: str) -> None:
    with pytest.raises(StatesError) as err:
        ev(text)
    assert err.value.error == "States.IntrinsicFailure"


def test_missing_path_argument_raises_path_not_found() -> None:
    with pytest.raises(PathNotFound):
        ev("States.Format('{}', $.missing)")


@pytest.mark.parametrize(
    "text",
    [
        "States.Nope(1)",
        "States.Format('unterminated)",
        "States.Format('a' 'b')",
        "States.ArrayLength()",
        "States.UUID(1)",
        r"States.Format('bad \n escape')",
        "States.Format('x') trailing",
        "Format('x')",
    ],
)
def test_syntax_errors(text: str) -> None:
    with pytest.raises(IntrinsicSyntaxError):
        parse_intrinsic(text)


def test_the_pipeline_format_call_parses_and_renders() -> None:
    call = (
        "States.Format('Run {} of experiment {} failed: {}: {}', "
        "$.execution_name, $.experiment, $.error.Error, $.error.Cause)"
    )
    data = {
        "execution_name": "r1",
        "experiment": "e",
        "error": {"Error": "States.TaskFailed", "Cause": json.dumps({"x": 1})},
    }
    out = evaluate_intrinsic(parse_intrinsic(call), data, {}, lambda: 0.0)
    assert out == 'Run r1 of experiment e failed: States.TaskFailed: {"x": 1}'
