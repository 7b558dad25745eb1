"""Every bound of the manifest schema, tested at both ends: the last value accepted and the first refused.

The hyperparameter bounds are read from the schema itself (each field's ``ge`` / ``gt`` / ``le`` / ``lt``),
so a bound added, moved or dropped there is tested without editing this file, and a bound the schema
states but does not enforce fails here.
"""

from __future__ import annotations

import json
import math
from typing import Any

import annotated_types
import pytest
from pydantic import BaseModel, ValidationError, create_model

from nyanops.core import hyperparameters, layout, limits, naming
from nyanops.core.manifest import (
    MAX_COMMENT,
    MAX_MANIFEST_BYTES,
    Hyperparameters,
    Manifest,
    _field,
    _HyperparametersBase,
    _problem,
    parse_manifest,
)
from nyanops.core.rejection import UploadRejected

DATASET = "datasets/2026-11-28T064300Z"


def manifest(**fields: Any) -> bytes:
    body: dict[str, Any] = {"experiment": "cats", "dataset": DATASET}
    body.update(fields)
    return json.dumps(body).encode()


def refused(raw: bytes) -> UploadRejected:
    with pytest.raises(UploadRejected) as caught:
        parse_manifest(raw)
    return caught.value


def _is_int(annotation: Any) -> bool:
    return int in getattr(annotation, "__args__", (annotation,))


def hyperparameter_bounds() -> list[tuple[str, bool, str, float]]:
    """(flag name, integer?, kind, bound) for every numeric bound the schema declares."""
    out = []
    for name, field in Hyperparameters.model_fields.items():
        flag = field.alias or name
        for meta in field.metadata:
            for kind in ("ge", "gt", "le", "lt"):
                bound = getattr(meta, kind, None)
                if isinstance(meta, annotated_types.BaseMetadata) and bound is not None:
                    out.append((flag, _is_int(field.annotation), kind, bound))
    return out


BOUNDS = hyperparameter_bounds()


def test_the_schema_declares_bounds_for_every_numeric_hyperparameter() -> None:
    numeric = {
        field.alias or name
        for name, field in Hyperparameters.model_fields.items()
        if {int, float} & set(getattr(field.annotation, "__args__", ()))
    }
    bounded_low = {flag for flag, _, kind, _ in BOUNDS if kind in ("ge", "gt")}
    bounded_high = {flag for flag, _, kind, _ in BOUNDS if kind in ("le", "lt")}
    assert numeric and numeric == bounded_low == bounded_high


def _inside_and_outside(is_int: bool, kind: str, bound: float) -> tuple[float, float]:
    """The last value the bound accepts and the first it refuses."""
    if kind in ("ge", "le"):
        inside = bound
        if is_int:
            outside = bound - 1 if kind == "ge" else bound + 1
        else:
            outside = math.nextafter(bound, -math.inf if kind == "ge" else math.inf)
        return inside, outside
    if is_int:
        return (bound + 1, bound) if kind == "gt" else (bound - 1, bound)
    return (math.nextafter(bound, math.inf if kind == "gt" else -math.inf), bound)


@pytest.mark.parametrize(("flag", "is_int", "kind", "bound"), BOUNDS, ids=[f"{b[0]}-{b[2]}" for b in BOUNDS])
def test_hyperparameter_bound_at_both_ends(flag: str, is_int: bool, kind: str, bound: float) -> None:
    inside, outside = _inside_and_outside(is_int, kind, bound)
    if is_int:
        inside, outside = int(inside), int(outside)
    parsed = parse_manifest(manifest(hyperparameters={flag: inside}))
    assert parsed.hyperparameters.given() == {flag: inside}
    rejection = refused(manifest(hyperparameters={flag: outside}))
    [problem] = rejection.problems
    assert problem.field == f"hyperparameters.{flag}"
    words = {"ge": "at least", "gt": "greater than", "le": "at most", "lt": "less than"}[kind]
    assert words in problem.problem and words in problem.fix


def _schema_built_now() -> type[BaseModel]:
    """The hyperparameter schema built afresh from the table (the module builds it once, when imported)."""
    rows = hyperparameters.manifest_rows()
    return create_model("Rebuilt", __base__=_HyperparametersBase, **{h.attr: _field(h) for h in rows})


def _accepts(schema: type[BaseModel], flag: str, value: Any) -> bool:
    try:
        return schema.model_validate({flag: value}).given() == {flag: value}  # type: ignore[attr-defined]
    except ValidationError:
        return False


def _probes(h: hyperparameters.Hyperparameter) -> tuple[list[Any], list[Any]]:
    """(values the row allows, values it does not) at its bounds, its choices and its type."""
    if h.type == "bool":
        return [True, False], [1, 0, "true", None]
    if h.type == "str":
        return list(h.choices), ["not-a-choice", "", 1, True]
    low, high = h.minimum, h.maximum
    assert low is not None and high is not None, h.name
    if h.type == "int":
        return [int(low), int(high)], [int(low) - 1, int(high) + 1, float(low), str(int(low)), True]
    inside_low = math.nextafter(low, math.inf) if h.exclusive_minimum else low
    outside_low = low if h.exclusive_minimum else math.nextafter(low, -math.inf)
    return [inside_low, high, (low + high) / 2], [outside_low, math.nextafter(high, math.inf), str(high), True]


@pytest.mark.parametrize("h", hyperparameters.manifest_rows(), ids=lambda h: h.name)
def test_each_table_row_becomes_a_field_with_its_name_type_range_and_choices(h: hyperparameters.Hyperparameter) -> None:
    """The table is the one source of the manifest's hyperparameters: the schema built from a row accepts
    exactly what the row allows, under the flag's name, and nothing when it is left out."""
    schema = _schema_built_now()
    allowed, refused_values = _probes(h)
    assert [v for v in allowed if not _accepts(schema, h.name, v)] == []
    assert [v for v in refused_values if _accepts(schema, h.name, v)] == []
    assert schema.model_validate({}).given() == {}  # type: ignore[attr-defined]
    if h.attr != h.name:
        assert not _accepts(schema, h.attr, allowed[0])


@pytest.mark.parametrize("h", [h for h in hyperparameters.manifest_rows() if h.type == "int"], ids=lambda h: h.name)
def test_a_whole_number_bound_is_shown_as_written(h: hyperparameters.Hyperparameter) -> None:
    assert h.minimum is not None and h.maximum is not None
    with pytest.raises(ValidationError) as caught:
        _schema_built_now().model_validate({h.name: int(h.minimum) - 1})
    problem = _problem(caught.value.errors()[0])
    assert (problem.field, problem.problem) == (h.name, f"must be at least {int(h.minimum)}, got {int(h.minimum) - 1}")
    with pytest.raises(ValidationError) as caught:
        _schema_built_now().model_validate({h.name: int(h.maximum) + 1})
    assert _problem(caught.value.errors()[0]).fix == f"use a value at most {int(h.maximum)}"


@pytest.mark.parametrize(
    ("field", "limit"), [("experiment", naming.MAX_EXPERIMENT_NAME), ("comment", MAX_COMMENT)]
)
def test_text_fields_at_their_length_limit(field: str, limit: int) -> None:
    assert getattr(parse_manifest(manifest(**{field: "c" * limit})), field) == "c" * limit
    [problem] = refused(manifest(**{field: "c" * (limit + 1)})).problems
    assert problem.field == field and f"at most {limit}" in problem.problem


def test_experiment_and_comment_lower_ends() -> None:
    assert parse_manifest(manifest(experiment="c")).experiment == "c"
    assert parse_manifest(manifest(comment="")).comment == ""
    [problem] = refused(manifest(experiment="")).problems
    assert (problem.field, problem.problem) == ("experiment", "must not be empty")


def test_dataset_reference_at_both_ends() -> None:
    longest_id = "d" * 128
    assert parse_manifest(manifest(dataset=f"datasets/{longest_id}")).dataset_id == longest_id
    [problem] = refused(manifest(dataset=f"datasets/{longest_id}d")).problems
    assert problem.field == "dataset" and "invalid dataset id" in problem.problem
    # The field's own bound (an S3 key's length) is checked before the id's rule.
    [problem] = refused(manifest(dataset="d" * (layout.MAX_KEY_LENGTH + 1))).problems
    assert problem.field == "dataset" and f"at most {layout.MAX_KEY_LENGTH}" in problem.problem
    [problem] = refused(manifest(dataset="")).problems
    assert (problem.field, problem.problem) == ("dataset", "must not be empty")


def test_manifest_size_at_both_ends() -> None:
    body = manifest()
    padded = body + b" " * (MAX_MANIFEST_BYTES - len(body))
    assert len(padded) == MAX_MANIFEST_BYTES
    assert parse_manifest(padded).experiment == "cats"
    [problem] = refused(padded + b" ").problems
    assert problem.field == "(file)" and f"{MAX_MANIFEST_BYTES + 1} bytes" in problem.problem
    assert MAX_MANIFEST_BYTES == limits.MANIFEST_MAX_BYTES


@pytest.mark.parametrize(
    "name", ["cats\n", "cats\r\n", "\ncats", "cats ", "cats\x00", "ｃａｔｓ", "cats\u200b"]
)
def test_experiment_name_is_matched_whole(name: str) -> None:
    [problem] = refused(manifest(experiment=name)).problems
    assert problem.field == "experiment" and "not a valid SageMaker experiment name" in problem.problem


@pytest.mark.parametrize("ref", ["datasets/x\n", "datasets/x\n/", "datasets/\nx"])
def test_dataset_id_is_matched_whole(ref: str) -> None:
    [problem] = refused(manifest(dataset=ref)).problems
    assert problem.field == "dataset"


@pytest.mark.parametrize(
    "ref", ["code/" + "a" * 64 + "\n", "code/" + "a" * 63 + "\n", "code/" + "a" * 64 + "\n/", "code/" + "a" * 64 + "X"]
)
def test_code_hash_is_matched_whole(ref: str) -> None:
    [problem] = refused(manifest(code=ref)).problems
    assert problem.field == "code"


@pytest.mark.parametrize("value", [True, False])
def test_force_is_a_boolean(value: bool) -> None:
    assert parse_manifest(manifest(force=value)).force is value
    assert parse_manifest(manifest()).force is False


@pytest.mark.parametrize("value", ["true", 1, 0, None, []])
def test_force_is_not_coerced(value: Any) -> None:
    [problem] = refused(manifest(force=value)).problems
    assert problem.field == "force"


def test_a_sweep_of_the_most_trials_is_accepted_and_one_more_is_refused() -> None:
    most = limits.SWEEP_MAX_TRIALS
    assert len(parse_manifest(manifest(sweep={"epochs": list(range(1, most + 1))})).sweep["epochs"]) == most
    assert len(parse_manifest(manifest(sweep=[{"seed": i} for i in range(most)])).sweep) == most
    for sweep in ({"epochs": list(range(1, most + 2))}, [{"seed": i} for i in range(most + 1)],
                  {"epochs": [1, 2, 3, 4, 5], "seed": list(range(11))}):
        [problem] = refused(manifest(sweep=sweep)).problems
        count = most + 1 if len(sweep) != 2 else 55
        assert (problem.field, problem.problem) == (
            "sweep", f"asks for {count} trials, more than the {most} one manifest may start")


def test_every_top_level_field_is_covered_here() -> None:
    """A new top-level field needs its bounds tested in this file."""
    assert set(Manifest.model_fields) == {
        "experiment", "dataset", "comment", "hyperparameters", "code", "force", "sweep"}
