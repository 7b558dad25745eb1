"""Paths, reference paths and the ResultPath merge rules of the ASL executor."""

import pytest

from nyanops.local.asl.errors import StatesError
from nyanops.local.asl.paths import PathNotFound, PathSyntaxError, apply_result_path, parse_path, resolve

DATA = {"a": {"b": [10, {"c": "x"}], "weird key": 1}, "n": None}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$", DATA),
        ("$.a.b[0]", 10),
        ("$.a.b[-1].c", "x"),
        ("$['a']['weird key']", 1),
        ('$["a"].b[1]["c"]', "x"),
        ("$.n", None),
        ("$.a.b[*]", [10, {"c": "x"}]),
        ("$.a.b[*].c", ["x"]),
    ],
)
def test_resolve(text: str, expected: object) -> None:
    assert resolve(parse_path(text), DATA) == expected


def test_context_path_reads_the_context_object() -> None:
    assert resolve(parse_path("$$.Execution.Name"), DATA, {"Execution": {"Name": "run-1"}}) == "run-1"


@pytest.mark.parametrize("text", ["$.missing", "$.a.b[5]", "$.a.b.c", "$.n.x"])
def test_missing_path_raises(text: str) -> None:
    with pytest.raises(PathNotFound):
        resolve(parse_path(text), DATA)


@pytest.mark.parametrize("text", ["a.b", "$..a", "$.a[?(@.x)]", "$.a[1:2]", "$.a[", "$ a"])
def test_unsupported_syntax_is_refused(text: str) -> None:
    with pytest.raises(PathSyntaxError):
        parse_path(text)


def test_result_path_null_discards_the_result() -> None:
    assert apply_result_path({"x": 1}, {"r": 2}, None) == {"x": 1}


def test_result_path_root_replaces_the_input() -> None:
    assert apply_result_path({"x": 1}, [1, 2], parse_path("$")) == [1, 2]


def test_result_path_merges_into_a_copy_and_creates_objects() -> None:
    original = {"x": 1, "results": {"old": True}}
    out = apply_result_path(original, {"r": 2}, parse_path("$.results.new.deep"))
    assert out == {"x": 1, "results": {"old": True, "new": {"deep": {"r": 2}}}}
    assert original == {"x": 1, "results": {"old": True}}  # the input itself is untouched


def test_result_path_overwrites_an_existing_field() -> None:
    assert apply_result_path({"x": 1}, "new", parse_path("$.x")) == {"x": "new"}


@pytest.mark.parametrize(("state_input", "path"), [("text", "$.x"), ({"x": 5}, "$.x.y"), ([1], "$.x")])
def test_result_path_through_a_non_object_is_a_match_failure(state_input: object, path: str) -> None:
    with pytest.raises(StatesError) as err:
        apply_result_path(state_input, 1, parse_path(path))
    assert err.value.error == "States.ResultPathMatchFailure"
