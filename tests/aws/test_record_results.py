"""RecordResults' handler on moto SageMaker Experiments: register, complete (the best flag), fail; and the
evaluation it accepts: only what this execution's processing job wrote, about this run's dataset."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from nyanops.aws.sagemaker_experiments import ExperimentsThrottled, SageMakerExperimentStore
from nyanops.core import layout, limits
from nyanops.core.evaluation_source import EvaluationRefused
from nyanops.core.experiments import TrialStart
from nyanops.core.record_results import classes_key, identity_of_test_split

from .conftest import BUCKET, World
from .evaluation_docs import evaluation_doc, job_identity, score

T0 = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)


def run_state(load_event: Any, trial: str = "", experiment: str = "cats") -> dict[str, Any]:
    run = copy.deepcopy(load_event("record_results_success.json")["run"])
    if trial:
        run["execution_name"] = run["trial"] = trial
        run["evaluation"]["job_name"] = f"{trial}-eval"
        run["evaluation"]["output_s3_uri"] = f"s3://{BUCKET}/runs/{trial}/evaluation/"
    run["experiment"] = experiment
    return run


def record(world: World, mode: str, run: dict[str, Any], ctx: Any) -> dict[str, Any]:
    return world.handlers[1].lambda_handler({"mode": mode, "run": run}, ctx)


def finish(world: World, run: dict[str, Any], wrong: int, ctx: Any) -> dict[str, Any]:
    record(world, "started", run, ctx)
    world.put_evaluation(run, wrong=wrong)
    return record(world, "succeeded", run, ctx)


def test_started_creates_experiment_trial_and_results_component(world: World, load_event: Any, lambda_context: Any
                                                                ) -> None:
    run = run_state(load_event)
    assert record(world, "started", run, lambda_context) == {"experiment": "cats", "trial": run["trial"],
                                                             "status": "InProgress", "reused_from": ""}
    record(world, "started", run, lambda_context)  # a retried invocation changes nothing
    assert world.sm.describe_experiment(ExperimentName="cats")["ExperimentName"] == "cats"
    assert [t["TrialName"] for t in world.sm.list_trials(ExperimentName="cats")["TrialSummaries"]] == [run["trial"]]
    component = world.trial_component(run["trial"])
    assert component["Status"]["PrimaryStatus"] == "InProgress"
    params = component["Parameters"]
    assert params["dataset_id"]["StringValue"] == run["dataset"]["id"]
    assert params["code_hash"]["StringValue"] == run["code"]["hash"]
    assert params["test_hash"]["StringValue"] == identity_of_test_split(run["dataset"])
    assert params["classes_key"]["StringValue"] == classes_key(run["dataset"]["classes"])
    assert params["hp:epochs"]["NumberValue"] == 10 and params["hp:augment"]["StringValue"] == "true"
    assert params["is_best"]["NumberValue"] == 0


def test_the_test_set_is_the_split_hash_when_the_input_has_one(load_event: Any) -> None:
    dataset = copy.deepcopy(load_event("record_results_success.json")["run"]["dataset"])
    assert identity_of_test_split(dataset) == dataset["split_hashes"]["test"]
    del dataset["split_hashes"]  # an input from before split hashes
    assert identity_of_test_split(dataset) == f"content:{dataset['content_hash']}"
    dataset["split_hashes"] = {"train": "1" * 64, "val": "2" * 64, "test": "3" * 64}
    assert identity_of_test_split(dataset) == "3" * 64


def test_a_retried_start_completes_a_half_done_registration(world: World, load_event: Any,
                                                             lambda_context: Any) -> None:
    """An earlier attempt created the component but died before associating it: the retry associates it."""
    run = run_state(load_event)
    store = SageMakerExperimentStore(world.sm)
    store._ensure_experiment("cats")
    world.sm.create_trial(TrialName=run["trial"], ExperimentName="cats")
    world.sm.create_trial_component(TrialComponentName=f"{run['trial']}-results")
    record(world, "started", run, lambda_context)
    components = world.sm.list_trial_components(TrialName=run["trial"])["TrialComponentSummaries"]
    assert [c["TrialComponentName"] for c in components] == [f"{run['trial']}-results"]


class ThrottlingClient:
    """A SageMaker client whose ``operation`` is throttled ``times`` times before it answers."""

    def __init__(self, real: Any, operation: str, times: int) -> None:
        self.real, self.operation, self.left, self.calls = real, operation, times, 0

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.real, name)
        if name != self.operation:
            return method

        def throttled(**kwargs: Any) -> Any:
            self.calls += 1
            if self.left > 0:
                self.left -= 1
                raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, name)
            return method(**kwargs)

        return throttled


def start_of(trial: str) -> TrialStart:
    return TrialStart("cats", trial, trial, "ds", "h", "c", "", {}, "manifests/x.json", T0, "t", "k")


def test_throttling_while_registering_is_retried(world: World) -> None:
    client = ThrottlingClient(world.sm, "associate_trial_component", 3)
    sleeps: list[float] = []
    SageMakerExperimentStore(client, sleep=sleeps.append).start_trial(start_of("t-throttled"))
    assert client.calls == 4 and sleeps == [0.5, 1.0, 2.0]
    assert [c["TrialComponentName"] for c in world.sm.list_trial_components(TrialName="t-throttled")[
        "TrialComponentSummaries"]] == ["t-throttled-results"]


def test_throttling_that_does_not_stop_is_a_retryable_error(world: World) -> None:
    client = ThrottlingClient(world.sm, "create_trial", 100)
    with pytest.raises(ExperimentsThrottled, match="create_trial 6 times"):
        SageMakerExperimentStore(client, sleep=lambda s: None).start_trial(start_of("t-x"))


def test_other_errors_are_not_retried(world: World) -> None:
    client = ThrottlingClient(world.sm, "create_trial", 0)
    with pytest.raises(ClientError, match="Could not find trial"):
        SageMakerExperimentStore(client).call("describe_trial", TrialName="nope")


def test_succeeded_records_headline_figures_decision_and_best(world: World, load_event: Any,
                                                              lambda_context: Any) -> None:
    run = run_state(load_event)
    result = finish(world, run, 1, lambda_context)
    f1 = score(1)
    assert result["status"] == "Completed" and result["is_best"] is True and result["best_trial"] == run["trial"]
    assert result["previous_best"] is None and result["verdict"] == "first"
    assert f"macro F1 {f1:.4f}" in result["message"] and "NEW BEST" in result["message"]
    assert "Why: no trial of this experiment held the best flag" in result["message"]
    component = world.trial_component(run["trial"])
    params = component["Parameters"]
    assert component["Status"]["PrimaryStatus"] == "Completed"
    for name in ("macro_f1", "f1"):
        assert params[name]["NumberValue"] == pytest.approx(f1), name
    assert params["accuracy"]["NumberValue"] == pytest.approx(0.75)
    # Nothing per class or per cell: those stay in evaluation.json, referenced by URI.
    assert not [k for k in params if k.startswith("f1:") or k == "confusion_matrix"]
    assert params["evaluation_location"]["StringValue"] == (
        f"s3://{BUCKET}/runs/{run['trial']}/evaluation/evaluation.json")
    assert params["is_best"]["NumberValue"] == 1
    assert params["decision"]["StringValue"] == result["decision"]


def test_a_better_trial_takes_the_flag_a_worse_one_does_not(world: World, load_event: Any, lambda_context: Any
                                                            ) -> None:
    first = finish(world, run_state(load_event, "m-first-0000000000000001"), 2, lambda_context)
    better = finish(world, run_state(load_event, "m-better-000000000000002"), 0, lambda_context)
    worse = finish(world, run_state(load_event, "m-worse-0000000000000003"), 3, lambda_context)
    assert (first["is_best"], better["is_best"], worse["is_best"]) == (True, True, False)
    assert better["previous_best"] == "m-first-0000000000000001"
    assert worse["best_trial"] == "m-better-000000000000002" and "best remains m-better" in worse["message"]
    flags = {t: world.trial_component(t)["Parameters"]["is_best"]["NumberValue"]
             for t in ("m-first-0000000000000001", "m-better-000000000000002", "m-worse-0000000000000003")}
    assert flags == {"m-first-0000000000000001": 0, "m-better-000000000000002": 1, "m-worse-0000000000000003": 0}
    worse_params = world.trial_component("m-worse-0000000000000003")["Parameters"]
    assert worse_params["compared_with"]["StringValue"] == "m-better-000000000000002"
    assert worse_params["champion_value"]["NumberValue"] == pytest.approx(1.0)


def test_experiment_names_are_case_insensitive(world: World, load_event: Any, lambda_context: Any) -> None:
    finish(world, run_state(load_event, "m-a-0000000000000000001", "cats"), 1, lambda_context)
    second = finish(world, run_state(load_event, "m-b-0000000000000000002", "Cats"), 0, lambda_context)
    assert second["is_best"] and second["previous_best"] == "m-a-0000000000000000001"
    assert [e["ExperimentName"] for e in world.sm.list_experiments()["ExperimentSummaries"]] == ["cats"]
    trials = SageMakerExperimentStore(world.sm).list_trials("CATS")
    assert sorted(t.trial for t in trials) == ["m-a-0000000000000000001", "m-b-0000000000000000002"]
    assert {t.experiment for t in trials} == {"cats"}


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


def test_a_processing_jobs_reason_is_its_exit_message(world: World, load_event: Any, lambda_context: Any) -> None:
    """SageMaker puts a processing script's /opt/ml/output/message in ExitMessage; FailureReason is generic."""
    run = run_state(load_event)
    cause = {"ProcessingJobName": run["evaluation"]["job_name"], "ProcessingJobStatus": "Failed",
             "FailureReason": "AlgorithmError: See job logs for more information",
             "ExitMessage": "test/bengal/x.jpg: cannot decode image (corrupt or truncated)"}
    run["error"] = {"Error": "States.TaskFailed", "Cause": json.dumps(cause)}
    result = record(world, "failed", run, lambda_context)
    assert result["error"] == "States.TaskFailed: test/bengal/x.jpg: cannot decode image (corrupt or truncated)"


def test_a_stopped_training_job_says_why(world: World, load_event: Any, lambda_context: Any) -> None:
    run = run_state(load_event)
    cause = {"TrainingJobName": run["training"]["job_name"], "TrainingJobStatus": "Stopped",
             "SecondaryStatus": "MaxRuntimeExceeded"}
    run["error"] = {"Error": "States.TaskFailed", "Cause": json.dumps(cause)}
    assert record(world, "failed", run, lambda_context)["error"] == (
        "States.TaskFailed: training job Stopped (the job ran longer than its MaxRuntimeInSeconds)")


def test_failure_before_registration_still_records_the_trial(world: World, load_event: Any, lambda_context: Any
                                                             ) -> None:
    run = run_state(load_event)
    run["error"] = {"Error": "States.Runtime", "Cause": "plain text cause"}
    record(world, "failed", run, lambda_context)
    assert world.trial_component(run["trial"])["Status"]["PrimaryStatus"] == "Failed"


def test_a_failed_trial_never_keeps_the_flag(world: World, load_event: Any, lambda_context: Any) -> None:
    good = finish(world, run_state(load_event, "m-good-00000000000000001"), 2, lambda_context)
    bad = run_state(load_event, "m-bad-000000000000000002")
    record(world, "started", bad, lambda_context)
    bad["error"] = {"Error": "States.TaskFailed", "Cause": "x"}
    record(world, "failed", bad, lambda_context)
    assert good["is_best"]
    assert world.trial_component("m-bad-000000000000000002")["Parameters"]["is_best"]["NumberValue"] == 0


def test_two_experiments_have_independent_best_flags(world: World, load_event: Any, lambda_context: Any) -> None:
    a = finish(world, run_state(load_event, "m-a-0000000000000000001", "cats"), 0, lambda_context)
    b = finish(world, run_state(load_event, "m-b-0000000000000000002", "dogs"), 3, lambda_context)
    assert a["is_best"] and b["is_best"]
    assert world.trial_component("m-a-0000000000000000001")["Parameters"]["is_best"]["NumberValue"] == 1
    assert world.trial_component("m-b-0000000000000000002")["Parameters"]["is_best"]["NumberValue"] == 1


def test_lower_is_better_primary_metric(world: World, load_event: Any, lambda_context: Any) -> None:
    runs = [run_state(load_event, f"m-e{i}-00000000000000000{i}") for i in (1, 2)]
    for r in runs:
        r["primary_metric"] = "error_rate"
    finish(world, runs[0], 2, lambda_context)  # error rate 0.5
    second = finish(world, runs[1], 1, lambda_context)  # error rate 0.25
    assert second["is_best"] is True and "error_rate (lower is better)" in second["decision"]


# -- what RecordResults refuses ----------------------------------------------------------------------------
def refused(world: World, run: dict[str, Any], ctx: Any, match: str) -> None:
    with pytest.raises(EvaluationRefused, match=match):
        record(world, "succeeded", run, ctx)
    assert world.trial_component(run["trial"])["Parameters"]["is_best"]["NumberValue"] == 0


def test_a_forged_f1_of_one_with_other_class_names_is_refused(world: World, load_event: Any,
                                                               lambda_context: Any) -> None:
    run = run_state(load_event)
    record(world, "started", run, lambda_context)
    doc = evaluation_doc(0, ("tiger", "lion"), job=job_identity(run["execution_name"]))
    world.put_evaluation(run, doc=doc)
    refused(world, run, lambda_context, r"class_names: 2 classes that are not the dataset's 2 classes .*'lion'")


def test_figures_that_the_confusion_matrix_does_not_give_are_refused(world: World, load_event: Any,
                                                                     lambda_context: Any) -> None:
    run = run_state(load_event)
    record(world, "started", run, lambda_context)
    doc = evaluation_doc(2, job=job_identity(run["execution_name"]))
    doc["metrics"]["macro_f1"] = 1.0
    world.put_evaluation(run, doc=doc)
    refused(world, run, lambda_context, r"metrics.macro_f1: is 1.0 but the confusion matrix gives 0.500000")


def test_a_test_set_of_another_size_is_refused(world: World, load_event: Any, lambda_context: Any) -> None:
    run = run_state(load_event)
    record(world, "started", run, lambda_context)
    world.put_evaluation(run, doc=evaluation_doc(0, support=3, job=job_identity(run["execution_name"])))
    refused(world, run, lambda_context, r"per_class.bengal.support: 3 test images, but the dataset's test split has 2")


def test_a_report_of_another_execution_is_refused(world: World, load_event: Any, lambda_context: Any) -> None:
    run = run_state(load_event)
    record(world, "started", run, lambda_context)
    world.put_evaluation(run, doc=evaluation_doc(0, job=job_identity("m-other-0000000000000009")))
    refused(world, run, lambda_context, r"job.execution: is 'm-other-0000000000000009'")


def test_a_report_without_its_job_identity_is_refused(world: World, load_event: Any, lambda_context: Any) -> None:
    run = run_state(load_event)
    record(world, "started", run, lambda_context)
    world.put_evaluation(run, doc=evaluation_doc(0))
    refused(world, run, lambda_context, r"job: missing")


def test_a_file_without_a_processing_job_is_refused(world: World, load_event: Any, lambda_context: Any) -> None:
    run = run_state(load_event)
    record(world, "started", run, lambda_context)
    world.put(layout.evaluation_key(run["trial"]),
              json.dumps(evaluation_doc(0, job=job_identity(run["execution_name"]))).encode())
    refused(world, run, lambda_context, r"there is no processing job .*-eval: the file was not written by this run")


def test_a_file_written_after_the_job_ended_is_refused(world: World, load_event: Any, lambda_context: Any) -> None:
    run = run_state(load_event)
    record(world, "started", run, lambda_context)
    long_ago = datetime.now(UTC) - timedelta(hours=2)
    world.put_evaluation(run, wrong=0, started=long_ago, ended=long_ago + timedelta(minutes=5))
    refused(world, run, lambda_context, r"outside processing job .*'s run .*: it is not the file the job wrote")


def test_a_job_that_failed_is_refused_with_its_exit_message(world: World, load_event: Any,
                                                            lambda_context: Any) -> None:
    run = run_state(load_event)
    record(world, "started", run, lambda_context)
    world.put_evaluation(run, wrong=0, status="Failed", exit_message="model.tar.gz holds no model.pth")
    refused(world, run, lambda_context, r"ended Failed: model.tar.gz holds no model.pth")


def test_a_job_of_another_name_is_refused(world: World, load_event: Any, lambda_context: Any) -> None:
    run = run_state(load_event)
    record(world, "started", run, lambda_context)
    run["evaluation"]["job_name"] = "someone-elses-eval"
    refused(world, run, lambda_context, r"job someone-elses-eval is not this execution's")


@pytest.mark.parametrize("body", [None, b"not json"], ids=["missing", "not-json"])
def test_missing_or_broken_evaluation_json_is_refused(body: bytes | None, world: World, load_event: Any,
                                                      lambda_context: Any) -> None:
    run = run_state(load_event)
    record(world, "started", run, lambda_context)
    world.processing_job(run["evaluation"]["job_name"], run["evaluation"]["output_s3_uri"])
    if body is not None:
        world.put(layout.evaluation_key(run["trial"]), body)
    refused(world, run, lambda_context, r"evaluation\.json")


def test_an_evaluation_over_the_size_limit_is_refused_before_reading(world: World, load_event: Any,
                                                                      lambda_context: Any,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    run = run_state(load_event)
    record(world, "started", run, lambda_context)
    world.put_evaluation(run, wrong=0)
    monkeypatch.setattr(limits, "EVALUATION_MAX_BYTES", 100)
    refused(world, run, lambda_context, r"more than the 100 bytes an evaluation may have")


def test_bad_event_is_refused(world: World, lambda_context: Any) -> None:
    from nyanops.core.record_results import BadRecordEvent

    with pytest.raises(BadRecordEvent, match="mode"):
        world.handlers[1].lambda_handler({"mode": "finished", "run": {}}, lambda_context)


# -- SageMaker's limits, as the moto fixtures enforce them -------------------------------------------------
def test_moto_refuses_what_sagemaker_refuses(world: World) -> None:
    world.sm.create_trial_component(TrialComponentName="limits-results")
    with pytest.raises(ClientError, match="less than or equal to 2500"):
        world.sm.update_trial_component(TrialComponentName="limits-results",
                                        Parameters={"x": {"StringValue": "y" * 2501}})
    many = {f"p{i}": {"NumberValue": 1.0} for i in range(301)}
    with pytest.raises(ClientError, match="less than or equal to 300"):
        world.sm.update_trial_component(TrialComponentName="limits-results", Parameters=many)
    world.sm.update_trial_component(TrialComponentName="limits-results",
                                    Parameters={"x": {"StringValue": "y" * 2500}})
    world.sm.create_experiment(ExperimentName="cats")
    with pytest.raises(ClientError, match="already exists"):
        world.sm.create_experiment(ExperimentName="Cats")


def test_the_store_refuses_a_value_sagemaker_would_refuse(world: World) -> None:
    store = SageMakerExperimentStore(world.sm)
    start = start_of("t-long")
    start.hyperparameters = {"note": "x" * 2501}
    with pytest.raises(limits.LimitExceeded, match="hp:note: the value has 2501 characters"):
        store.start_trial(start)
