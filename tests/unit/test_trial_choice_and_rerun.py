"""Which trial ``predict`` and ``rerun`` use (``core/trial_choice``) and the manifest a rerun uploads, with the
comparison it prints (``core/rerun``): pure functions over trial records."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from nyanops.core import rerun, trial_choice
from nyanops.core.experiments import TrialRecord
from nyanops.core.manifest import validate_manifest
from nyanops.core.trial_choice import TrialChoiceError

T0 = datetime(2026, 12, 1, tzinfo=timezone.utc)
CODE = "c" * 64


def trial(name: str, experiment: str = "cats", status: str = "Completed", best: bool = False,
          **fields: Any) -> TrialRecord:
    values: dict[str, Any] = {
        "dataset_id": "2026-11-28T064300Z", "dataset_hash": "d" * 64, "code_hash": CODE,
        "model_location": f"s3://b/runs/{name}/model/output/model.tar.gz",
        "evaluation_location": f"s3://b/runs/{name}/evaluation/evaluation.json",
        "metrics": {"accuracy": 0.9, "macro_f1": 0.8}, "hyperparameters": {"epochs": 10, "seed": 3},
    }
    values.update(fields)
    return TrialRecord(experiment, name, status, T0, T0, is_best=best, **values)


RECORDS = [trial("a"), trial("b", best=True), trial("c", status="Failed", error="AlgorithmError: boom\nmore"),
           trial("d", experiment="dogs")]


def problem(call: Any, *args: Any) -> str:
    with pytest.raises(TrialChoiceError) as caught:
        call(*args)
    return str(caught.value)


def test_a_named_trial_in_one_experiment_or_in_all() -> None:
    assert trial_choice.find_trial(RECORDS, "d").experiment == "dogs"
    assert trial_choice.find_trial(RECORDS[:3], "a", "cats").trial == "a"
    assert problem(trial_choice.find_trial, RECORDS[:3], "zz", "cats") == (
        "no trial named 'zz' in experiment cats; `nyanops experiments cats` lists the trials")
    assert problem(trial_choice.find_trial, RECORDS, "zz") == (
        "no trial named 'zz' in any experiment; `nyanops experiments` lists the trials")
    twice = [trial("x"), trial("x", experiment="dogs")]
    assert "is in several experiments (cats, dogs); name one with --experiment" in problem(
        trial_choice.find_trial, twice, "x")


def test_the_best_trial_and_why_there_is_none() -> None:
    assert trial_choice.best_trial(RECORDS[:3], "cats").trial == "b"
    assert problem(trial_choice.best_trial, [], "cats").startswith("no experiment 'cats' (no trials recorded)")
    none_best = [trial("a", status="Failed"), trial("e", status="InProgress")]
    assert problem(trial_choice.best_trial, none_best, "cats") == (
        "experiment cats has no best trial yet (no trial completed: 1 Failed, 1 InProgress); wait for a run to "
        "finish, or name a trial with --trial")


def test_the_experiment_with_a_best_when_none_is_named() -> None:
    assert trial_choice.experiment_with_a_best(RECORDS) == "cats"
    assert "several experiments have a best trial (cats, dogs)" in problem(
        trial_choice.experiment_with_a_best, [*RECORDS, trial("e", experiment="dogs", best=True)])
    assert "no experiment has a best trial yet" in problem(trial_choice.experiment_with_a_best, RECORDS[:1])


def test_only_a_completed_trial_with_a_model_is_used() -> None:
    assert trial_choice.with_model(RECORDS[0]) is RECORDS[0]
    assert problem(trial_choice.with_model, RECORDS[2]) == (
        "trial c is Failed: AlgorithmError: boom: it has no model to use")
    assert "has no model location recorded" in problem(trial_choice.with_model, trial("x", model_location=""))
    assert trial_choice.completed(RECORDS[0]) is RECORDS[0]
    assert problem(trial_choice.completed, RECORDS[2]).startswith(
        "trial c did not complete (status Failed: AlgorithmError: boom); only a completed trial")


# -- the rerun manifest ----------------------------------------------------------------------------------


def test_the_rerun_manifest_is_the_trials_inputs_with_force() -> None:
    record = trial("m-x", hyperparameters={
        "epochs": 15, "lr": 0.05, "seed": 7, "augment": True, "arch": "efficientnet_lite2", "num-classes": 3,
        "workers": 0, "num-gpus": 0, "dry-run": False, "weights": ""})
    manifest = rerun.rerun_manifest(record)
    assert manifest == {
        "experiment": "cats", "dataset": "datasets/2026-11-28T064300Z", "code": f"code/{CODE}",
        "comment": "rerun of m-x", "force": True,
        "hyperparameters": {"epochs": 15, "lr": 0.05, "num-classes": 3, "arch": "efficientnet_lite2",
                            "augment": True, "seed": 7, "workers": 0},  # what a manifest cannot set is left out
    }
    parsed = validate_manifest(manifest)
    assert parsed.force is True and parsed.code_hash == CODE and parsed.hyperparameters.given()["seed"] == 7


def test_values_as_sagemaker_experiments_gives_them_back_are_typed_for_the_manifest() -> None:
    # NumberValue comes back as float, booleans as text (SageMakerExperimentStore keeps "true" / "false")
    record = trial("m-x", hyperparameters={"epochs": 15.0, "lr": 1, "seed": 0.0, "augment": "false",
                                           "num-classes": 0})
    hyper = rerun.rerun_manifest(record)["hyperparameters"]
    assert hyper == {"epochs": 15, "lr": 1.0, "augment": False, "seed": 0}  # num-classes 0: from the data
    assert type(hyper["epochs"]) is int and type(hyper["lr"]) is float and type(hyper["seed"]) is int
    validate_manifest(rerun.rerun_manifest(record))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"hyperparameters": {"epochs": 2.5}}, "trial m-x's recorded epochs (2.5) is not a whole number"),
        ({"hyperparameters": {"arch": "vgg"}}, "trial m-x's recorded arch ('vgg') is not valid today: invalid choice"),
        ({"dataset_id": ""}, "trial m-x has no dataset recorded"),
        ({"code_hash": "abc"}, "trial m-x has no code bundle recorded (code hash 'abc')"),
    ],
)
def test_inputs_that_cannot_be_used_again_are_named(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(rerun.NotRerunnable) as caught:
        rerun.rerun_manifest(trial("m-x", **fields))
    assert str(caught.value).startswith(message)


def test_every_metric_of_both_and_the_difference() -> None:
    original = trial("a", metrics={"accuracy": 0.9, "macro_f1": 0.8})
    again = trial("b", metrics={"accuracy": 0.9, "macro_f1": 0.825, "weighted_f1": 0.7})
    diffs = rerun.metric_differences(original, again)
    assert [(d.name, d.original, d.rerun) for d in diffs] == [
        ("accuracy", 0.9, 0.9), ("macro_f1", 0.8, 0.825), ("weighted_f1", None, 0.7)]
    assert diffs[1].difference == pytest.approx(0.025) and diffs[0].difference == 0.0 and diffs[2].difference is None
    assert not rerun.identical(diffs)
    assert rerun.identical(rerun.metric_differences(original, trial("c", metrics=dict(original.metrics))))
    assert not rerun.identical(rerun.metric_differences(original, trial("c", metrics={"accuracy": 0.9,
                                                                                       "macro_f1": 0.8 + 1e-12})))
    assert not rerun.identical([])


def test_predictions_compared_photo_by_photo() -> None:
    a = [{"path": "x/1.jpg", "predicted": "x", "confidence": 0.9}, {"path": "y/2.jpg", "predicted": "y",
                                                                   "confidence": 0.6}]
    b = [{"path": "x/1.jpg", "predicted": "x", "confidence": 0.85}, {"path": "y/2.jpg", "predicted": "x",
                                                                    "confidence": 0.55}, {"path": "z/3.jpg",
                                                                                          "predicted": "z",
                                                                                          "confidence": 1.0}]
    agreement = rerun.compare_predictions(a, b)
    assert (agreement.photos, agreement.same_class, agreement.only_in_one) == (2, 1, 1)
    assert agreement.largest_confidence_difference == pytest.approx(0.05)
