"""Sweep manifests: a grid (object of lists) or an explicit set (list of objects) merged over ``hyperparameters``,
every trial validated whole by the Hyperparameters schema before anything starts, refusals naming where the value
came from (``sweep.<name>``, ``sweep[i].<name>``, ``hyperparameters.<name>``)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from nyanops.core import hyperparameters, limits
from nyanops.core.manifest import parse_manifest, trial_hyperparameters
from nyanops.core.rejection import Problem, UploadRejected


def trials(**fields: Any) -> list[dict[str, Any]]:
    body = {"experiment": "cats", "dataset": "datasets/2026-11-28T064300Z", **fields}
    return trial_hyperparameters(parse_manifest(json.dumps(body).encode()))


def refused(**fields: Any) -> list[tuple[str, str]]:
    with pytest.raises(UploadRejected) as caught:
        trials(**fields)
    assert all(p.fix for p in caught.value.problems)
    return [(p.field, p.problem) for p in caught.value.problems]


def test_without_a_sweep_the_manifest_is_one_trial() -> None:
    assert trials(hyperparameters={"epochs": 5}) == [{"epochs": 5}]
    assert trials() == [{}]


def test_a_grid_is_every_combination_in_order_merged_over_hyperparameters() -> None:
    got = trials(hyperparameters={"epochs": 1, "lr": 0.5, "seed": 7},
                 sweep={"epochs": [5, 10, 15], "lr": [0.01, 0.05]})
    assert got == [{"epochs": e, "lr": lr, "seed": 7} for e in (5, 10, 15) for lr in (0.01, 0.05)]


def test_an_explicit_set_is_its_trials_in_order() -> None:
    got = trials(hyperparameters={"epochs": 3}, sweep=[{"epochs": 5}, {"arch": "efficientnet_lite0"}])
    assert got == [{"epochs": 5}, {"epochs": 3, "arch": "efficientnet_lite0"}]


def test_a_grid_value_out_of_range_is_named_in_the_sweep() -> None:
    assert refused(sweep={"epochs": [5, 0]}) == [("sweep.epochs", "must be at least 1, got 0")]


def test_a_wrong_type_in_a_set_is_named_with_its_index() -> None:
    assert refused(sweep=[{"epochs": 5}, {"arch": "vgg16"}, {"epochs": "7"}]) == [
        ("sweep[1].arch", 'unknown value "vgg16"'),
        ("sweep[2].epochs", 'must be a whole number, got "7"'),
    ]


def test_a_rule_across_values_is_checked_for_every_combination() -> None:
    """freeze-epochs within epochs: the manifest's value is fine for one trial and not for another."""
    [(field, problem)] = refused(hyperparameters={"freeze-epochs": 8}, sweep={"epochs": [10, 5]})
    assert field == "sweep" and "freeze-epochs (8) is larger than epochs (5)" in problem
    [(field, problem)] = refused(sweep=[{"epochs": 10}, {"epochs": 5, "freeze-epochs": 6}])
    assert field == "sweep[1]" and "freeze-epochs (6) is larger than epochs (5)" in problem


def test_unknown_names_get_a_suggestion() -> None:
    assert refused(sweep={"epoch": [1, 2]}) == [("sweep.epoch", "unknown hyperparameter")]
    assert refused(sweep=[{"lr": 0.1}, {"learning-rate": 0.1}]) == [
        ("sweep[1].learning-rate", "unknown hyperparameter")]


@pytest.mark.parametrize(
    ("sweep", "expected"),
    [
        ({}, [("sweep", "is empty")]),
        ([], [("sweep", "is an empty list")]),
        ({"epochs": []}, [("sweep.epochs", "is an empty list")]),
        ([{}], [("sweep[0]", "is empty")]),
        ({"epochs": [5, 5]}, [("sweep.epochs", "repeats 5")]),
        ([{"epochs": 5}, {"epochs": 5}], [("sweep[1]", 'is the same trial as sweep[0] ({"epochs": 5})')]),
        ("epochs", [("sweep", '"epochs" is neither an object of lists nor a list of objects')]),
        ({"epochs": 5}, [("sweep", "is neither an object of lists nor a list of objects")]),
        ([1, 2], [("sweep", "[1, 2] is neither an object of lists nor a list of objects")]),
    ],
)
def test_malformed_sweeps_are_refused(sweep: Any, expected: list[tuple[str, str]]) -> None:
    assert refused(sweep=sweep) == expected


def test_trials_that_are_the_same_once_merged_are_refused() -> None:
    """The manifest's lr makes the second trial the same as the first."""
    assert refused(hyperparameters={"lr": 0.05}, sweep=[{"epochs": 5}, {"epochs": 5, "lr": 0.05}]) == [
        ("sweep[1]", 'is the same trial as sweep[0] ({"epochs": 5, "lr": 0.05})')]


def test_too_many_trials_is_refused_before_anything_is_validated() -> None:
    problems = refused(sweep={"epochs": list(range(1, 11)), "seed": list(range(6))})
    most = limits.SWEEP_MAX_TRIALS
    assert problems == [("sweep", f"asks for 60 trials, more than the {most} one manifest may start")]


def test_a_bad_sweep_refuses_the_whole_manifest_on_upload() -> None:
    """parse_manifest (what StartPipeline calls) refuses it: nothing starts."""
    body = {"experiment": "cats", "dataset": "datasets/2026-11-28T064300Z", "sweep": {"epochs": [1, 2000]}}
    with pytest.raises(UploadRejected) as caught:
        parse_manifest(json.dumps(body).encode())
    assert [p.field for p in caught.value.problems] == ["sweep.epochs"]


def problems(**fields: Any) -> list[Problem]:
    with pytest.raises(UploadRejected) as caught:
        trials(**fields)
    return caught.value.problems


ALLOWED = ", ".join(h.name for h in hyperparameters.manifest_rows())


def test_unknown_names_are_refused_with_the_closest_name_and_every_allowed_one() -> None:
    assert problems(sweep={"epoch": [1, 2]}) == [
        Problem("sweep.epoch", "unknown hyperparameter", f"did you mean 'epochs'? allowed names: {ALLOWED}")]
    assert problems(sweep=[{"epochs": 1}, {"zzz": 1}]) == [
        Problem("sweep[1].zzz", "unknown hyperparameter", f"allowed names: {ALLOWED}")]
    assert ALLOWED.startswith("epochs, freeze-epochs, ")


def test_the_fixes_for_a_malformed_sweep() -> None:
    assert problems(sweep={"epochs": []}) == [
        Problem("sweep.epochs", "is an empty list", "give it at least one value")]
    assert problems(sweep=[{"epochs": 1}, {}]) == [
        Problem("sweep[1]", "is empty", "give each trial at least one hyperparameter that differs")]
    assert problems(sweep={"seed": [2, 1, 2, 1, 3]}) == [
        Problem("sweep.seed", "repeats 1, 2", "give each value once (the same value twice would be the same trial)")]
    assert problems(sweep=[{"epochs": 5}, {"seed": 1}, {"epochs": 5}]) == [
        Problem("sweep[2]", 'is the same trial as sweep[0] ({"epochs": 5})',
                "remove the duplicate: each trial of a sweep must differ from the others")]


def test_repeated_values_are_compared_as_json_whatever_their_key_order() -> None:
    assert problems(sweep={"epochs": [{"a": 1, "b": 2}, {"b": 2, "a": 1}]}) == [
        Problem("sweep.epochs", 'repeats {"a": 1, "b": 2}',
                "give each value once (the same value twice would be the same trial)")]


def test_a_rule_across_values_shows_the_trial_it_broke() -> None:
    [problem] = problems(hyperparameters={"freeze-epochs": 8}, sweep={"epochs": [10, 5]})
    assert problem.field == "sweep"
    assert problem.problem.startswith('the trial {"epochs": 5}: freeze-epochs (8) is larger than epochs (5)')
    assert problem.fix == "make freeze-epochs at most epochs"


def test_an_error_in_a_hyperparameter_with_a_dashed_name_is_named_in_the_sweep() -> None:
    assert problems(sweep={"batch-size": [8, 0]}) == [
        Problem("sweep.batch-size", "must be at least 1, got 0", "use a value at least 1")]
    assert problems(sweep=[{"batch-size": 8}, {"freeze-epochs": -1}]) == [
        Problem("sweep[1].freeze-epochs", "must be at least 0, got -1", "use a value at least 0")]
