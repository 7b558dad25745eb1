"""The sentences a refused manifest gets, exactly: one per kind of pydantic error (``manifest._problem``), the
file-level refusals, and how values are shown. A data scientist reads these; a changed word is a changed answer."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from nyanops.core import manifest as m
from nyanops.core.manifest import Hyperparameters, Manifest, dataset_id_from_ref, parse_manifest
from nyanops.core.rejection import Problem, UploadRejected

HYPER_FIELDS = ", ".join(f.alias or n for n, f in Hyperparameters.model_fields.items())
TOP_FIELDS = ", ".join(f.alias or n for n, f in Manifest.model_fields.items())


def err(kind: str, loc: tuple[Any, ...] = ("hyperparameters", "epochs"), given: Any = "x",
        **ctx: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": kind, "loc": loc, "input": given, "msg": f"pydantic says {kind}"}
    if ctx:
        out["ctx"] = ctx
    return out


H = "hyperparameters.epochs"


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (err("extra_forbidden", ("hyperparameters", "batch_size")),
         Problem("hyperparameters.batch_size", "unknown field",
                 f"did you mean 'batch-size'? allowed fields here: {HYPER_FIELDS}")),
        (err("extra_forbidden", ("zzz",)), Problem("zzz", "unknown field", f"allowed fields here: {TOP_FIELDS}")),
        (err("missing", ("dataset",)),
         Problem("dataset", "required field is missing", 'add "dataset" to the manifest')),
        *[(err(kind, given="10"), Problem(H, 'must be a whole number, got "10"',
                                          "write an integer without quotes, e.g. 10"))
          for kind in ("int_type", "int_from_float", "int_parsing")],
        *[(err(kind, given="0.1"), Problem(H, 'must be a finite number, got "0.1"',
                                           "write a number without quotes, e.g. 0.01"))
          for kind in ("float_type", "float_parsing", "finite_number")],
        *[(err(kind, given="yes"), Problem(H, 'must be true or false, got "yes"', "write true or false without quotes"))
          for kind in ("bool_type", "bool_parsing")],
        (err("string_type", given=5), Problem(H, "must be a string, got 5", "put the value in double quotes")),
        *[(err(kind, given=[1]), Problem(H, "must be a JSON object, got [1]", 'write it as {"name": value, ...}'))
          for kind in ("model_type", "dict_type", "model_attributes_type")],
        *[(err(kind, given="vgg", expected="'a' or 'b'"), Problem(H, 'unknown value "vgg"', "use one of: 'a' or 'b'"))
          for kind in ("enum", "literal_error")],
        (err("literal_error", given="vgg"), Problem(H, 'unknown value "vgg"', "use one of: ")),
        (err("greater_than_equal", given=0, ge=1), Problem(H, "must be at least 1, got 0", "use a value at least 1")),
        (err("greater_than", given=0, gt=0), Problem(H, "must be greater than 0, got 0", "use a value greater than 0")),
        (err("less_than_equal", given=9, le=5), Problem(H, "must be at most 5, got 9", "use a value at most 5")),
        (err("less_than", given=9, lt=5), Problem(H, "must be less than 5, got 9", "use a value less than 5")),
        (err("string_too_short", ("experiment",), ""), Problem("experiment", "must not be empty", "fill it in")),
        (err("string_too_long", ("comment",), "c", max_length=3),
         Problem("comment", "is too long (at most 3 characters)", "shorten it")),
        (err("value_error", ("code",), "x", error="is wrong|do this"), Problem("code", '"x" is wrong', "do this")),
        (err("value_error", ("hyperparameters",), {"a": 1}, error="a and b clash|fix a"),
         Problem("hyperparameters", "a and b clash", "fix a")),
        (err("value_error", ("code",), "x", error="is wrong"), Problem("code", '"x" is wrong', "see docs/manifest.md")),
        (err("value_error", ("code",), "x"), Problem("code", '"x" pydantic says value_error', "see docs/manifest.md")),
        ({"type": "value_error", "loc": ("code",), "input": "x"},
         Problem("code", '"x" invalid value', "see docs/manifest.md")),
        (err("something_new", ("dataset",)),
         Problem("dataset", "pydantic says something_new", "see docs/manifest.md for the allowed values")),
        ({"type": "something_new"}, Problem("(file)", "invalid value", "see docs/manifest.md for the allowed values")),
        ({}, Problem("(file)", "invalid value", "see docs/manifest.md for the allowed values")),
    ],
)
def test_each_kind_of_error_gets_its_sentence(error: dict[str, Any], expected: Problem) -> None:
    assert m._problem(error) == expected


def test_field_names() -> None:
    assert m._field_name(()) == "(file)"
    assert m._field_name(("hyperparameters", 0, "lr")) == "hyperparameters.0.lr"


def test_allowed_fields_per_level() -> None:
    assert m._allowed_fields(("hyperparameters",)) == HYPER_FIELDS.split(", ")
    assert m._allowed_fields(("hyperparameters", "deeper")) == HYPER_FIELDS.split(", ")
    assert m._allowed_fields(()) == TOP_FIELDS.split(", ")


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("x" * 58, '"' + "x" * 58 + '"'),  # 60 characters: shown whole
        ("x" * 59, '"' + "x" * 56 + "..."),  # 61: cut to 57 and marked
        ("ねこ", '"ねこ"'),  # not escaped
        (float("inf"), "inf"),
        (float("nan"), "nan"),
        (1.5, "1.5"),
        (None, "null"),
        (dt.date(2026, 11, 28), '"2026-11-28"'),  # anything else as its text
    ],
)
def test_values_are_shown_short_and_readable(value: Any, shown: str) -> None:
    assert m._show(value) == shown
    assert len(m._show(value)) <= 60


@pytest.mark.parametrize(
    ("value", "name"),
    [([], "array"), ("s", "string"), (1, "number"), (1.0, "number"), (True, "boolean"), (None, "null"),
     (dt.date(2026, 1, 1), "date")],
)
def test_json_type_names(value: Any, name: str) -> None:
    assert m._json_type(value) == name


def only(raw: bytes) -> Problem:
    with pytest.raises(UploadRejected) as caught:
        parse_manifest(raw)
    [problem] = caught.value.problems
    return problem


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"", Problem("(file)", "the manifest is empty", "upload a JSON object like docs/manifest.md shows")),
        (b"\xef\xbb\xbf{}", Problem("(file)", "the manifest starts with a UTF-8 byte order mark (BOM)",
                                    "save it as UTF-8 without BOM")),
        (b'{"a": "\xe9"}', Problem("(file)", "the manifest is not UTF-8 text (byte 7)", "save it as UTF-8 JSON")),
        (b"{", Problem("(file)", "not valid JSON: Expecting property name enclosed in double quotes at line 1 column 2",
                       "fix the JSON syntax (a linter such as `python -m json.tool FILE` shows where)")),
        (b'{"lr": -Infinity}', Problem("(file)", "-Infinity is not a valid JSON number", "use a finite number")),
        (b"[]", Problem("(file)", "the manifest must be a JSON object, got a array",
                        'wrap it as {"experiment": ..., "dataset": ..., "hyperparameters": {...}}')),
        (b" " * (m.MAX_MANIFEST_BYTES + 1),
         Problem("(file)", f"the manifest is {m.MAX_MANIFEST_BYTES + 1} bytes, larger than the "
                 f"{m.MAX_MANIFEST_BYTES} byte limit",
                 "a manifest only names the experiment, dataset, comment and hyperparameters; keep it small")),
    ],
)
def test_file_level_refusals(raw: bytes, expected: Problem) -> None:
    assert only(raw) == expected


def doc(**fields: Any) -> bytes:
    return json.dumps({"experiment": "cats", "dataset": "datasets/d", **fields}).encode()


@pytest.mark.parametrize("ref", ["https://example.com/datasets/x", "file:///datasets/x", "s3://b/datasets/x"])
def test_any_uri_is_refused_as_a_uri(ref: str) -> None:
    assert only(doc(dataset=ref)) == Problem(
        "dataset", f'"{ref}" is a URI; datasets are read only from this bucket', m._DATASET_FIX)


@pytest.mark.parametrize(("ref", "dataset_id"), [("datasets/MAX/", "MAX"), ("datasets/x//", "x"), ("datasets/X", "X")])
def test_trailing_slashes_are_fine(ref: str, dataset_id: str) -> None:
    assert dataset_id_from_ref(ref) == dataset_id


def test_a_lone_dot_is_refused() -> None:
    expected = "\"datasets/.\" contains '..' or '.' and would leave the datasets/ prefix"
    assert only(doc(dataset="datasets/.")).problem == expected


def test_an_invalid_dataset_id_says_how_to_write_one() -> None:
    assert only(doc(dataset="datasets/-x")) == Problem(
        "dataset", '"datasets/-x" has an invalid dataset id',
        "use letters, digits, '.', '_' and '-' (at most 128), starting with a letter or digit")


@pytest.mark.parametrize("ref", ["code/" + "a" * 64 + "/", "code/" + "a" * 64 + "//",
                                 "code/" + "a" * 64 + "/sourcedir.tar.gz"])
def test_code_references(ref: str) -> None:
    assert parse_manifest(doc(code=ref)).code_hash == "a" * 64


def test_a_code_reference_elsewhere_is_refused_exactly() -> None:
    ref = "/code/" + "a" * 64
    assert only(doc(code=ref)) == Problem(
        "code", f"{m._show(ref)} is not a code bundle in this bucket's code/ prefix (code from anywhere else is never "
        "run)", "write code/<64-hex sha256> as printed by `nyanops code push`, or leave it out")
