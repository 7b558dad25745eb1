"""RecordResults' handler on moto SageMaker Experiments: register, complete (best flag), fail."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from nyanops.core import layout
from nyanops.core.evaluation_report import EvaluationReportError

from .conftest import World
from .evaluation_docs import evaluation_doc


def run_state(load_event: Any, trial: str = "", experiment: str = "cats") -> dict[str, Any]:
    run = copy.deepcopy(load_event("record_results_success.json")["run"])
    if trial:
        run["execution_name"] = run["trial"] = trial
        run["evaluation"]["output_s3_uri"] = f"s3://nyanops-example-bucket/runs/{trial}/evaluation/"
    run["experiment"] = experiment
    return run


def record(world: World, mode: str, run: dict[str, Any], ctx: Any) -> dict[str, Any]:
    return world.handlers[1].lambda_handler({"mode": mode, "run": run}, ctx)


def finish(world: World, run: dict[str, Any], f1: float, ctx: Any) -> dict[str, Any]:
    record(world, "started", run, ctx)
    world.put(layout.evaluation_key(run["trial"]), json.dumps(evaluation_doc(f1)).encode())
    return record(world, "succeeded", run, ctx)


def test_started_creates_experiment_trial_and_results_component(world: World, load_event: Any, lambda_context: Any
                                                                ) -> None:
    run = run_state(load_event)
    assert record(world, "started", run, lambda_context) == {"experiment": "cats", "trial": run["trial"],
                                                             "status": "InProgress"}
    record(world, "started", run, lambda_context)  # a retried invocation changes nothing
    assert world.sm.describe_experiment(ExperimentName="cats")["ExperimentName"] == "cats"
    assert [t["TrialName"] for t in world.sm.list_trials(ExperimentName="cats")["TrialSummaries"]] == [run["trial"]]
    component = world.trial_component(run["trial"])
    assert component["Status"]["PrimaryStatus"] == "InProgress"
    params = component["Parameters"]
    assert params["dataset_id"]["StringValue"] == run["dataset"]["id"]
    assert params["code_hash"]["StringValue"] == run["code"]["hash"]
    assert params["hp:epochs"]["NumberValue"] == 10 and params["hp:augment"]["StringValue"] == "true"
    assert params["is_best"]["NumberValue"] == 0


def test_succeeded_records_metrics_and_best(world: World, load_event: Any, lambda_context: Any) -> None:
    run = run_state(load_event)
    result = finish(world, run, 0.8, lambda_context)
    assert result["status"] == "Completed" and result["is_best"] is True and result["best_trial"] == run["trial"]
    assert result["previous_best"] is None
    assert "macro F1 0.8000" in result["message"] and "NEW BEST" in result["message"]
    component = world.trial_component(run["trial"])
    params = component["Parameters"]
    assert component["Status"]["PrimaryStatus"] == "Completed"
    for name in ("accuracy", "macro_precision", "macro_recall", "macro_f1", "weighted_f1", "f1", "precision"):
        assert params[name]["NumberValue"] == pytest.approx(0.8), name
    assert params["f1:bengal"]["NumberValue"] == pytest.approx(0.8)
    assert json.loads(params["confusion_matrix"]["StringValue"])["labels"] == ["bengal", "siamese"]
    assert params["evaluation_location"]["StringValue"] == f"s3://nyanops-example-bucket/runs/{run['trial']}/evaluation/evaluation.json"
    assert params["is_best"]["NumberValue"] == 1


def test_a_better_trial_takes_the_flag_a_worse_one_does_not(world: World, load_event: Any, lambda_context: Any
                                                            ) -> None:
    first = finish(world, run_state(load_event, "m-first-0000000000000001"), 0.7, lambda_context)
    better = finish(world, run_state(load_event, "m-better-000000000000002"), 0.9, lambda_context)
    worse = finish(world, run_state(load_event, "m-worse-0000000000000003"), 0.5, lambda_context)
    assert (first["is_best"], better["is_best"], worse["is_best"]) == (True, True, False)
    assert better["previous_best"] == "m-first-0000000000000001"
    assert worse["best_trial"] == "m-better-000000000000002"
    flags = {t: world.trial_component(t)["Parameters"]["is_best"]["NumberValue"]
             for t in ("m-first-0000000000000001", "m-better-000000000000002", "m-worse-0000000000000003")}
    assert flags == {"m-first-0000000000000001": 0, "m-better-000000000000002": 1, "m-worse-0000000000000003": 0}


def test_failed_records_status_and_error(world: World, load_event: Any, lambda_context: Any) -> None:
    run = run_state(load_event)
    record(world, "started", run, lambda_context)
    run["error"] = {"Error": "Lambda.Unknown", "Cause": json.dumps({"errorMessage": "boom: out of memory"})}
    result = record(world, "failed", run, lambda_context)
    assert result["status"] == "Failed" and result["error"] == "Lambda.Unknown: boom: out of memory"
    component = world.trial_component(run["trial"])
    assert component["Status"] == {"PrimaryStatus": "Failed", "Message": "Lambda.Unknown: boom: out of memory"}
    assert component["Parameters"]["error"]["StringValue"] == "Lambda.Unknown: boom: out of memory"
    assert component["Parameters"]["is_best"]["NumberValue"] == 0


def test_failure_before_registration_still_records_the_trial(world: World, load_event: Any, lambda_context: Any
                                                             ) -> None:
    run = run_state(load_event)
    run["error"] = {"Error": "States.Runtime", "Cause": "plain text cause"}
    record(world, "failed", run, lambda_context)
    assert world.trial_component(run["trial"])["Status"]["PrimaryStatus"] == "Failed"


def test_a_failed_trial_never_keeps_the_flag(world: World, load_event: Any, lambda_context: Any) -> None:
    good = finish(world, run_state(load_event, "m-good-00000000000000001"), 0.6, lambda_context)
    bad = run_state(load_event, "m-bad-000000000000000002")
    record(world, "started", bad, lambda_context)
    bad["error"] = {"Error": "States.TaskFailed", "Cause": "x"}
    record(world, "failed", bad, lambda_context)
    assert good["is_best"]
    assert world.trial_component("m-bad-000000000000000002")["Parameters"]["is_best"]["NumberValue"] == 0


def test_two_experiments_have_independent_best_flags(world: World, load_event: Any, lambda_context: Any) -> None:
    a = finish(world, run_state(load_event, "m-a-0000000000000000001", "cats"), 0.9, lambda_context)
    b = finish(world, run_state(load_event, "m-b-0000000000000000002", "dogs"), 0.3, lambda_context)
    assert a["is_best"] and b["is_best"]
    assert world.trial_component("m-a-0000000000000000001")["Parameters"]["is_best"]["NumberValue"] == 1
    assert world.trial_component("m-b-0000000000000000002")["Parameters"]["is_best"]["NumberValue"] == 1


def test_lower_is_better_primary_metric(world: World, load_event: Any, lambda_context: Any) -> None:
    runs = [run_state(load_event, f"m-e{i}-00000000000000000{i}") for i in (1, 2)]
    for r in runs:
        r["primary_metric"] = "error_rate"
    finish(world, runs[0], 0.9, lambda_context)  # error rate 0.1
    second = finish(world, runs[1], 0.95, lambda_context)  # error rate 0.05
    assert second["is_best"] is True


def test_invalid_evaluation_json_fails_the_invocation(world: World, load_event: Any, lambda_context: Any) -> None:
    run = run_state(load_event)
    record(world, "started", run, lambda_context)
    doc = evaluation_doc(0.5)
    doc["metrics"]["macro_f1"] = 1.5
    world.put(layout.evaluation_key(run["trial"]), json.dumps(doc).encode())
    with pytest.raises(EvaluationReportError, match=r"metrics\.macro_f1"):
        record(world, "succeeded", run, lambda_context)


@pytest.mark.parametrize("body", [None, b"not json"], ids=["missing", "not-json"])
def test_missing_or_broken_evaluation_json_is_an_evaluation_error(body: bytes | None, world: World, load_event: Any,
                                                                   lambda_context: Any) -> None:
    """Regression: read_evaluation once built EvaluationReportError with one argument (a TypeError)."""
    run = run_state(load_event)
    record(world, "started", run, lambda_context)
    if body is not None:
        world.put(layout.evaluation_key(run["trial"]), body)
    with pytest.raises(EvaluationReportError, match=r"evaluation\.json"):
        record(world, "succeeded", run, lambda_context)


def test_bad_event_is_refused(world: World, lambda_context: Any) -> None:
    from nyanops.core.record_results import BadRecordEvent

    with pytest.raises(BadRecordEvent, match="mode"):
        world.handlers[1].lambda_handler({"mode": "finished", "run": {}}, lambda_context)
