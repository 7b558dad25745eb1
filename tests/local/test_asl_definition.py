"""Load-time validation and DefinitionSubstitutions: refusals name the state and the field."""

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from nyanops.local.asl import (
    DefinitionError,
    InvalidDefinition,
    MissingSubstitution,
    UnsupportedDefinition,
    load_state_machine,
)


def machine(**states: Any) -> dict[str, Any]:
    return {"StartAt": next(iter(states)), "States": states}


OK = {"Type": "Pass", "End": True}


def refusal(definition: dict[str, Any], kind: type[DefinitionError] = InvalidDefinition) -> str:
    with pytest.raises(kind) as err:
        load_state_machine(definition, {})
    return str(err.value)


def test_unknown_state_type() -> None:
    message = refusal(machine(A={"Type": "Teleport", "End": True}))
    assert "'A'" in message and "Teleport" in message and "Type" in message


PROCESSOR = {"StartAt": "P", "States": {"P": OK}}


def map_state(**fields: Any) -> dict[str, Any]:
    return {"Type": "Map", "ItemProcessor": PROCESSOR, "End": True, **fields}


def test_inline_map_loads_with_every_supported_field() -> None:
    definition = machine(
        A=map_state(
            InputPath="$.in",
            ItemsPath="$.items",
            ItemSelector={"v.$": "$$.Map.Item.Value", "i.$": "$$.Map.Item.Index", "x.$": "$.x"},
            ItemProcessor={**PROCESSOR, "ProcessorConfig": {"Mode": "INLINE"}},
            MaxConcurrency=2,
            ResultSelector={"n.$": "States.ArrayLength($)"},
            ResultPath="$.out",
            OutputPath="$",
            Retry=[{"ErrorEquals": ["States.ALL"]}],
            Catch=[{"ErrorEquals": ["States.ALL"], "Next": "B"}],
            Comment="c",
        ),
        B=OK,
    )
    state = load_state_machine(definition).definition.states["A"]
    assert (state.max_concurrency, state.items_path.text if state.items_path else None) == (2, "$.items")
    assert state.item_selector is not None and state.parameters is None
    assert state.iterator is not None and state.iterator.start_at == "P"


def test_legacy_iterator_and_parameters_load() -> None:
    definition = machine(
        A={"Type": "Map", "Iterator": PROCESSOR, "Parameters": {"v.$": "$$.Map.Item.Value"}, "End": True}
    )
    state = load_state_machine(definition).definition.states["A"]
    assert state.iterator is not None and state.item_selector is not None and state.parameters is None


@pytest.mark.parametrize(
    "field",
    [
        "ItemReader",
        "ItemBatcher",
        "ResultWriter",
        "Label",
        "ToleratedFailureCount",
        "ToleratedFailureCountPath",
        "ToleratedFailurePercentage",
        "ToleratedFailurePercentagePath",
    ],
)
def test_distributed_only_map_fields_are_refused(field: str) -> None:
    message = refusal(
        machine(A=map_state(**{field: {"Resource": "r"} if field.startswith("Item") else 1})), UnsupportedDefinition
    )
    assert "'A'" in message and field in message and "DISTRIBUTED" in message


def test_distributed_mode_is_refused() -> None:
    processor = {**PROCESSOR, "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}}
    message = refusal(machine(A=map_state(ItemProcessor=processor)), UnsupportedDefinition)
    assert "'A' ItemProcessor" in message and "ProcessorConfig.Mode" in message and "DISTRIBUTED" in message


def test_jsonata_map_fields_are_refused() -> None:
    assert "Items" in refusal(machine(A=map_state(Items=[1, 2])), UnsupportedDefinition)
    message = refusal(
        machine(A=map_state(ItemProcessor={**PROCESSOR, "QueryLanguage": "JSONata"})), UnsupportedDefinition
    )
    assert "ItemProcessor" in message and "JSONata" in message


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"ItemProcessor": None}, "ItemProcessor"),
        ({"Iterator": PROCESSOR}, "mutually exclusive"),
        ({"ItemSelector": {"a": 1}, "Parameters": {"a": 1}}, "mutually exclusive"),
        ({"ItemSelector": [1]}, "ItemSelector must be an object"),
        ({"ItemSelector": {"v.$": "not a path"}}, "ItemSelector"),
        ({"ItemsPath": "$.a[*]"}, "ItemsPath"),
        ({"ItemsPath": "items"}, "ItemsPath"),
        ({"MaxConcurrency": -1}, "MaxConcurrency"),
        ({"MaxConcurrency": 1.5}, "MaxConcurrency"),
        ({"MaxConcurrency": True}, "MaxConcurrency"),
        ({"MaxConcurrency": 1, "MaxConcurrencyPath": "$.n"}, "mutually exclusive"),
        ({"MaxConcurrencyPath": "$.n[*]"}, "MaxConcurrencyPath"),
        ({"ItemProcessor": {**PROCESSOR, "ProcessorConfig": {"Mode": "SERIAL"}}}, "Mode"),
        ({"ItemProcessor": {**PROCESSOR, "ProcessorConfig": {"ExecutionType": "EXPRESS"}}}, "ExecutionType"),
        ({"ItemProcessor": {**PROCESSOR, "Extra": 1}}, "Extra"),
        ({"ItemProcessor": {"StartAt": "X", "States": {"X": {"Type": "Pass", "Next": "Y"}}}}, "'X'"),
    ],
)
def test_invalid_map_fields(fields: dict[str, Any], fragment: str) -> None:
    state = map_state(**fields)
    if fields.get("ItemProcessor", "") is None:
        del state["ItemProcessor"]
    message = refusal(machine(A=state))
    assert "'A'" in message and fragment in message


def test_states_inside_a_map_cannot_be_reached_from_outside() -> None:
    definition = machine(A=map_state(Next="P"), P=OK)
    del definition["States"]["A"]["End"]
    definition["States"]["A"]["Next"] = "Inner"
    assert "Inner" in refusal(definition)


def test_jsonata_is_refused() -> None:
    definition = {**machine(A=OK), "QueryLanguage": "JSONata"}
    assert "JSONata" in refusal(definition, UnsupportedDefinition)
    assert "JSONata" in refusal(machine(A={**OK, "QueryLanguage": "JSONata"}), UnsupportedDefinition)


def test_assign_is_refused() -> None:
    message = refusal(machine(A={**OK, "Assign": {"x": 1}}), UnsupportedDefinition)
    assert "'A'" in message and "Assign" in message


def test_dangling_next() -> None:
    message = refusal(machine(A={"Type": "Pass", "Next": "Nowhere"}))
    assert "'A'" in message and "Next" in message and "Nowhere" in message


def test_dangling_catch_next() -> None:
    task = {"Type": "Task", "Resource": "r", "End": True, "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "X"}]}
    assert "Catch[0].Next" in refusal(machine(A=task))


def test_missing_next_and_end() -> None:
    assert "Next" in refusal(machine(A={"Type": "Pass"}))


def test_missing_start_at_state() -> None:
    assert "StartAt" in refusal({"StartAt": "B", "States": {"A": OK}})
    assert "StartAt" in refusal({"States": {"A": OK}})


def test_unreachable_state() -> None:
    assert "'B'" in refusal(machine(A=OK, B=OK))


def test_unknown_field_in_state() -> None:
    message = refusal(machine(A={**OK, "Resource": "x"}))
    assert "'A'" in message and "Resource" in message


def test_task_without_resource() -> None:
    message = refusal(machine(A={"Type": "Task", "End": True}))
    assert "'A'" in message and "Resource" in message


@pytest.mark.parametrize(
    "retry",
    [
        [{"ErrorEquals": ["States.ALL", "X"]}],
        [{"ErrorEquals": ["States.ALL"]}, {"ErrorEquals": ["X"]}],
        [{"ErrorEquals": []}],
        [{"ErrorEquals": ["X"], "BackoffRate": 0.5}],
        [{"ErrorEquals": ["X"], "MaxAttempts": -1}],
        [{"ErrorEquals": ["X"], "JitterStrategy": "HALF"}],
        [{"ErrorEquals": ["X"], "Bogus": 1}],
    ],
)
def test_invalid_retriers(retry: list[dict[str, Any]]) -> None:
    message = refusal(machine(A={"Type": "Task", "Resource": "r", "End": True, "Retry": retry}))
    assert "'A' Retry[" in message


def test_states_all_not_last_in_catch() -> None:
    catch = [{"ErrorEquals": ["States.ALL"], "Next": "B"}, {"ErrorEquals": ["X"], "Next": "B"}]
    message = refusal(machine(A={"Type": "Task", "Resource": "r", "Next": "B", "Catch": catch}, B=OK))
    assert "States.ALL" in message and "Catch[0]" in message


@pytest.mark.parametrize(
    ("parameters", "fragment"),
    [
        ({"x.$": "not a path"}, "x.$"),
        ({"x.$": 5}, "x.$"),
        ({"x.$": "States.Format('{}'"}, "x.$"),
        ({"x.$": "States.Unknown(1)"}, "States.Unknown"),
        ({"x.$": "$..deep"}, "x.$"),
        ({"inner": {"y.$": "$[?(@.a)]"}}, "inner.y.$"),
        ({"x": 1, "x.$": "$.a"}, "twice"),
    ],
)
def test_bad_templates(parameters: dict[str, Any], fragment: str) -> None:
    message = refusal(machine(A={"Type": "Pass", "Parameters": parameters, "End": True}))
    assert "'A'" in message and "Parameters" in message and fragment in message


@pytest.mark.parametrize(
    "rule",
    [
        {"Variable": "$.x", "NumericEquals": "1", "Next": "B"},
        {"Variable": "$.x", "Next": "B"},
        {"Variable": "$.x", "StringEquals": "a", "BooleanEquals": True, "Next": "B"},
        {"Variable": "$.x", "TimestampEquals": "yesterday", "Next": "B"},
        {"And": [], "Next": "B"},
        {"Not": {"Variable": "$.x", "IsNull": True, "Next": "B"}, "Next": "B"},
        {"Variable": "$.x", "StringEquals": "a"},
    ],
)
def test_bad_choice_rules(rule: dict[str, Any]) -> None:
    message = refusal(machine(A={"Type": "Choice", "Choices": [rule], "Default": "B"}, B=OK))
    assert "'A'" in message and "Choices[0]" in message


def test_wait_needs_exactly_one_duration() -> None:
    assert "'A'" in refusal(machine(A={"Type": "Wait", "Seconds": 1, "SecondsPath": "$.s", "End": True}))
    assert "'A'" in refusal(machine(A={"Type": "Wait", "End": True}))


def test_result_path_must_be_a_reference_path() -> None:
    message = refusal(machine(A={**OK, "ResultPath": "$.a[*]"}))
    assert "ResultPath" in message


def test_parallel_branches_are_validated() -> None:
    bad_branch = {"StartAt": "X", "States": {"X": {"Type": "Pass", "Next": "Y"}}}
    message = refusal(machine(A={"Type": "Parallel", "Branches": [bad_branch], "End": True}))
    assert "Branches[0]" in message and "'X'" in message


def test_substitutions_fill_placeholders() -> None:
    definition = machine(A={"Type": "Pass", "Result": {"arn": "${Fn}", "both": "${Fn}/${Other}"}, "End": True})
    sm = load_state_machine(definition, {"Fn": "arn:fn", "Other": "o"})
    assert sm.definition.states["A"].result == {"arn": "arn:fn", "both": "arn:fn/o"}


def test_missing_substitution_names_it() -> None:
    definition = machine(A={"Type": "Task", "Resource": "${Missing}", "End": True})
    with pytest.raises(MissingSubstitution) as err:
        load_state_machine(definition, {"Other": "x"})
    assert err.value.names == ["Missing"]
    assert "${Missing}" in str(err.value) and "Resource" in str(err.value)
    assert isinstance(err.value, InvalidDefinition)


def test_the_input_dict_is_not_modified() -> None:
    definition = machine(A={"Type": "Pass", "Result": "${X}", "End": True})
    before = copy.deepcopy(definition)
    load_state_machine(definition, {"X": "y"})
    assert definition == before


def test_loading_from_a_file_and_from_json_text(tmp_path: Path) -> None:
    file = tmp_path / "flow.asl.json"
    file.write_text(json.dumps(machine(A=OK)))
    assert load_state_machine(file, {}).name == "flow"
    assert load_state_machine(str(file)).arn.endswith(":stateMachine:flow")
    assert load_state_machine(json.dumps(machine(A=OK))).name == "StateMachine"
