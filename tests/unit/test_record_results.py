"""RecordResults' core (core/record_results) on in-memory ports and the real SQLite experiment store: each mode,
the champion's re-scoring request, the notification's figures and reason, and the failure text of every
kind of job."""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aws.evaluation_docs import evaluation_doc, job_identity, score

from nyanops.core import layout, limits, naming
from nyanops.core.evaluation_source import EvaluationRefused
from nyanops.core.experiments import MAX_ERROR
from nyanops.core.record_results import (
    BadRecordEvent,
    Links,
    RecordResultsDeps,
    classes_key,
    failure_text,
    identity_of_test_split,
    record,
)
from nyanops.local.database import connect
from nyanops.local.experiment_store import SQLiteExperimentStore

from .memory_ports import T0, MemoryJobs, MemoryObjects

EVENTS = Path(__file__).resolve().parents[2] / "events"
KMS = "arn:aws:kms:us-east-1:123456789012:key/abcd"
ARN = "arn:aws:states:eu-west-1:123456789012:execution:nyanops-pipeline:{}"


def run_state(execution: str, test_hash: str = "t" * 64, classes: tuple[str, ...] = ("bengal", "siamese"),
              experiment: str = "cats") -> dict[str, Any]:
    """The state RecordResults gets for one run of ``execution`` (the shape of events/record_results_*.json)."""
    run = copy.deepcopy(json.loads((EVENTS / "record_results_success.json").read_text())["run"])
    run.update(execution_name=execution, trial=execution, experiment=experiment)
    run["dataset"].update(split_hashes={"train": "r" * 64, "val": "v" * 64, "test": test_hash},
                          classes=list(classes), counts={s: {c: 2 for c in classes} for s in layout.SPLITS})
    run["evaluation"].update(
        job_name=naming.processing_job_name(execution),
        output_s3_uri=f"s3://b/runs/{execution}/evaluation",
        output_config={"Outputs": [{"OutputName": "evaluation", "S3Output": {
            "S3Uri": f"s3://b/runs/{execution}/evaluation", "LocalPath": "/opt/ml/processing/evaluation",
            "S3UploadMode": "EndOfJob"}}], "KmsKeyId": KMS},
    )
    run.setdefault("results", {})["training"] = {"model_artifacts": f"s3://b/runs/{execution}/model/model.tar.gz"}
    return run


class World:
    def __init__(self, tmp_path: Path) -> None:
        self.objects, self.jobs = MemoryObjects(), MemoryJobs()
        self.experiments = SQLiteExperimentStore(connect(tmp_path / "nyanops.db"))
        self.deps = RecordResultsDeps(self.objects, self.experiments, self.jobs, clock=lambda: T0)

    def evaluate(self, run: dict[str, Any], wrong: int, job_name: str | None = None, output: str | None = None,
                 **doc: Any) -> None:
        """The processing job ``job_name`` of the run wrote an evaluation with ``wrong`` images misclassified."""
        job_name = job_name or run["evaluation"]["job_name"]
        output = output or run["evaluation"]["output_s3_uri"]
        body = evaluation_doc(wrong, tuple(run["dataset"]["classes"]),
                              job=job_identity(run["execution_name"], job_name), **doc)
        _, key = layout.parse_s3_uri(output.rstrip("/") + "/evaluation.json")
        self.objects.put(key, json.dumps(body).encode())
        self.jobs.add(job_name, output)

    def call(self, mode: str, run: dict[str, Any], arn: str | None = None) -> dict[str, Any]:
        event: dict[str, Any] = {"mode": mode, "run": run}
        if arn is not None:
            event["execution_arn"] = arn
        return record(event, self.deps)

    def finish(self, run: dict[str, Any], wrong: int) -> dict[str, Any]:
        self.call("started", run)
        self.evaluate(run, wrong)
        return self.call("succeeded", run)

    def trials(self) -> dict[str, Any]:
        return {t.trial: t for t in self.experiments.list_trials("cats")}


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def test_started_registers_the_trial_once(world: World) -> None:
    run = run_state("m-a-0000000000000001")
    assert world.call("started", run) == {"experiment": "cats", "trial": run["trial"], "status": "InProgress",
                                          "reused_from": ""}
    world.call("started", run)
    [trial] = world.experiments.list_trials()
    assert (trial.status, trial.test_hash, trial.classes_key) == (
        "InProgress", "t" * 64, classes_key(["bengal", "siamese"]))


def test_the_first_trial_takes_the_flag_and_says_why(world: World) -> None:
    run = run_state("m-a-0000000000000001")
    answer = world.finish(run, wrong=1)
    assert (answer["verdict"], answer["is_best"], answer["best_trial"], answer["previous_best"]) == (
        "first", True, run["trial"], None)
    f1 = score(1)
    assert answer["metrics"]["macro_f1"] == pytest.approx(f1)
    assert answer["subject"] == f"nyanops: cats macro_f1 {f1:.3f} (new best)"
    lines = answer["message"].splitlines()
    assert lines[0] == f"Run {run['trial']} of experiment cats finished."
    assert lines[1].startswith("accuracy 0.7500  macro precision") and f"macro F1 {f1:.4f}" in lines[1]
    assert lines[2] == "macro_f1: NEW BEST"
    assert lines[3] == f"Why: {answer['decision']}."
    assert f"evaluation: s3://b/runs/{run['execution_name']}/evaluation/evaluation.json" in lines
    assert not any(line.startswith("execution: ") for line in lines)  # no console link without an ARN
    [trial] = world.experiments.list_trials()
    assert trial.decision == answer["decision"] and trial.is_best and trial.num_test_images == 4


def test_console_links_only_with_a_region(world: World) -> None:
    run = run_state("m-a-0000000000000001")
    world.call("started", run)
    world.evaluate(run, wrong=1)
    answer = world.call("succeeded", run, arn=ARN.format(run["execution_name"]))
    lines = answer["message"].splitlines()
    assert any(line.startswith("execution: https://eu-west-1.console.aws.amazon.com/states/") for line in lines)
    assert any(line.startswith("training job: https://eu-west-1.console.aws.amazon.com/sagemaker/") for line in lines)
    assert any(line.startswith("evaluation job: ") and run["evaluation"]["job_name"] in line for line in lines)


@pytest.mark.parametrize("arn", ["", "not-an-arn", "arn:aws:states:local:0:execution:x:y", "arn:aws:states"])
def test_no_links_without_a_real_region(arn: str) -> None:
    assert Links.of(arn, {}).lines(run_state("m-a-0000000000000001")) == []


def test_links_of_an_arn() -> None:
    links = Links.of(ARN.format("m-x"), {})
    assert (links.region, links.execution_arn) == ("eu-west-1", ARN.format("m-x"))
    assert Links.of(None, {}).region == ""


def test_same_test_set_better_by_more_than_the_tolerance_moves_the_flag(world: World) -> None:
    old, new = run_state("m-a-0000000000000001"), run_state("m-b-0000000000000002")
    world.finish(old, wrong=2)
    answer = world.finish(new, wrong=0)
    assert (answer["verdict"], answer["is_best"], answer["previous_best"]) == ("moved", True, old["trial"])
    assert f"this trial {score(0):.4f}, best {old['trial']} {score(2):.4f}" in answer["decision"]
    assert "the flag moves to this trial" in answer["message"]
    trials = world.trials()
    assert trials[new["trial"]].is_best and not trials[old["trial"]].is_best
    assert trials[new["trial"]].champion_value == pytest.approx(score(2))


def test_same_test_set_not_better_keeps_the_flag(world: World) -> None:
    old, new = run_state("m-a-0000000000000001"), run_state("m-b-0000000000000002")
    world.finish(old, wrong=1)
    answer = world.finish(new, wrong=1)
    assert (answer["verdict"], answer["is_best"], answer["best_trial"]) == ("kept", False, old["trial"])
    assert answer["subject"] == f"nyanops: cats macro_f1 {score(1):.3f}"
    assert f"macro_f1: best remains {old['trial']}" in answer["message"]
    assert f"not more than the tolerance 0.005: the flag stays with {old['trial']}" in answer["message"]


def test_the_tolerance_comes_from_the_run(world: World) -> None:
    old, new = run_state("m-a-0000000000000001"), run_state("m-b-0000000000000002")
    new["best_model_tolerance"] = 0.5
    world.finish(old, wrong=2)
    assert world.finish(new, wrong=0)["verdict"] == "kept"
    new["best_model_tolerance"] = 0.9
    with pytest.raises(ValueError, match=r"tolerance must be a number from 0 to 0\.5"):
        world.call("succeeded", new)


def test_another_test_set_asks_for_the_champion_to_be_rescored(world: World) -> None:
    old, new = run_state("m-a-0000000000000001"), run_state("m-b-0000000000000002", test_hash="u" * 64)
    world.finish(old, wrong=2)
    answer = world.finish(new, wrong=0)
    assert answer["verdict"] == "rescore" and "subject" not in answer and "message" not in answer
    execution = new["execution_name"]
    assert answer["rescore"] == {
        "champion": old["trial"],
        "model_artifacts": old["results"]["training"]["model_artifacts"],
        "attempt": 1,
        "job_name": f"{execution}-champ1",
        "output_s3_uri": f"s3://b/runs/{execution}/champion-1/",
        "output_config": {"Outputs": [{"OutputName": "evaluation", "S3Output": {
            "S3Uri": f"s3://b/runs/{execution}/champion-1/", "LocalPath": "/opt/ml/processing/evaluation",
            "S3UploadMode": "EndOfJob"}}], "KmsKeyId": KMS},
    }
    assert new["evaluation"]["output_config"]["Outputs"][0]["S3Output"]["S3Uri"].endswith("/evaluation")
    trials = world.trials()
    assert trials[old["trial"]].is_best and trials[new["trial"]].decision.startswith("pending:")


def champion_round(world: World, new: dict[str, Any], answer: dict[str, Any], wrong: int | None,
                   error: dict[str, str] | None = None) -> dict[str, Any]:
    """EvaluateChampion ran (``wrong`` misclassified by the champion, or ``error``); then RecordChampion."""
    pending = answer["rescore"]
    new = copy.deepcopy(new)
    new["results"]["record"] = {"trial": answer}
    if error is not None:
        new["results"]["champion_error"] = error
    elif wrong is not None:
        world.evaluate(new, wrong, job_name=pending["job_name"], output=pending["output_s3_uri"])
    return world.call("champion", new)


def test_a_challenger_that_loses_on_the_shared_test_set_keeps_the_flag_away(world: World) -> None:
    """It would win on raw F1 (1.0 on its own test set against 0.67 on the old one) but the champion scores
    better on the new test set."""
    old, new = run_state("m-a-0000000000000001"), run_state("m-b-0000000000000002", test_hash="u" * 64)
    world.finish(old, wrong=2)
    first = world.finish(new, wrong=1)
    answer = champion_round(world, new, first, wrong=0)
    assert (answer["verdict"], answer["is_best"], answer["best_trial"]) == ("kept", False, old["trial"])
    assert f"where the best trial {old['trial']} was re-scored" in answer["decision"]
    assert f"this trial {score(1):.4f}, best {old['trial']} {score(0):.4f}" in answer["message"]
    assert answer["metrics"]["macro_f1"] == pytest.approx(score(1))
    trials = world.trials()
    assert trials[old["trial"]].is_best and trials[new["trial"]].champion_value == pytest.approx(score(0))


def test_a_challenger_that_wins_on_the_shared_test_set_takes_the_flag(world: World) -> None:
    old, new = run_state("m-a-0000000000000001"), run_state("m-b-0000000000000002", test_hash="u" * 64)
    world.finish(old, wrong=0)
    first = world.finish(new, wrong=1)  # worse on raw F1 than the champion's 1.0
    answer = champion_round(world, new, first, wrong=3)
    assert (answer["verdict"], answer["is_best"], answer["previous_best"]) == ("moved", True, old["trial"])
    assert "NEW BEST" in answer["message"]


def test_a_failed_rescoring_keeps_the_flag_with_the_reason(world: World) -> None:
    old, new = run_state("m-a-0000000000000001"), run_state("m-b-0000000000000002", test_hash="u" * 64)
    world.finish(old, wrong=2)
    first = world.finish(new, wrong=0)
    error = {"Error": "SageMaker.AmazonSageMakerException", "Cause": json.dumps(
        {"ProcessingJobName": "x", "ProcessingJobStatus": "Failed", "ExitMessage": "model.tar.gz is corrupt"})}
    answer = champion_round(world, new, first, wrong=None, error=error)
    assert answer["verdict"] == "kept" and not answer["is_best"]
    assert "could not be re-scored" in answer["decision"]
    assert "the re-scoring job failed (SageMaker.AmazonSageMakerException: model.tar.gz is corrupt)" in answer[
        "decision"]


def test_a_forged_rescoring_is_refused_and_keeps_the_flag(world: World) -> None:
    old, new = run_state("m-a-0000000000000001"), run_state("m-b-0000000000000002", test_hash="u" * 64)
    world.finish(old, wrong=2)
    first = world.finish(new, wrong=0)
    pending = first["rescore"]
    forged = evaluation_doc(0, ("persian", "sphynx"), job=job_identity(new["execution_name"], pending["job_name"]))
    world.objects.put(layout.parse_s3_uri(pending["output_s3_uri"] + "evaluation.json")[1], json.dumps(forged).encode())
    world.jobs.add(pending["job_name"], pending["output_s3_uri"])
    answer = champion_round(world, new, first, wrong=None)
    assert answer["verdict"] == "kept" and "its evaluation was refused" in answer["decision"]
    assert "class_names" in answer["decision"]


def test_champion_mode_needs_the_pending_rescoring(world: World) -> None:
    with pytest.raises(BadRecordEvent, match=r"needs results\.record\.trial\.rescore"):
        world.call("champion", run_state("m-b-0000000000000002"))


def test_a_champion_that_changed_meanwhile_is_rescored_again(world: World) -> None:
    old, new = run_state("m-a-0000000000000001"), run_state("m-b-0000000000000002", test_hash="u" * 64)
    world.finish(old, wrong=2)
    first = world.finish(new, wrong=0)
    # Another trial of the experiment (on the first test set) takes the flag meanwhile.
    other = run_state("m-c-0000000000000003")
    world.finish(other, wrong=0)
    again = champion_round(world, new, first, wrong=1)
    assert again["verdict"] == "rescore" and again["rescore"]["champion"] == other["trial"]
    assert again["rescore"]["attempt"] == 2 and again["rescore"]["job_name"].endswith("-champ2")


def test_the_evaluation_must_come_from_this_executions_job(world: World) -> None:
    run = run_state("m-a-0000000000000001")
    world.call("started", run)
    world.evaluate(run, wrong=0)
    run["evaluation"]["job_name"] = "m-other-0000000000000009-eval"
    with pytest.raises(EvaluationRefused, match="is not this execution's"):
        world.call("succeeded", run)


def test_a_forged_evaluation_is_refused(world: World) -> None:
    run = run_state("m-a-0000000000000001")
    world.call("started", run)
    world.evaluate(run, wrong=0)
    world.objects.now = T0 + timedelta(hours=1)  # overwritten after the job ended
    world.evaluate(run, wrong=0)
    world.jobs.add(run["evaluation"]["job_name"], run["evaluation"]["output_s3_uri"], ended=T0)
    with pytest.raises(EvaluationRefused, match="outside processing job"):
        world.call("succeeded", run)
    assert world.trials()[run["trial"]].status == "InProgress"


@pytest.mark.parametrize("event", [{}, {"mode": "done", "run": {}}, {"mode": "started", "run": []},
                                   {"mode": "started"}])
def test_bad_events(world: World, event: dict[str, Any]) -> None:
    with pytest.raises(BadRecordEvent):
        record(event, world.deps)


def test_failed_records_the_cause(world: World) -> None:
    run = run_state("m-a-0000000000000001")
    run["error"] = {"Error": "States.TaskFailed", "Cause": json.dumps(
        {"ProcessingJobName": "x", "ProcessingJobStatus": "Failed", "FailureReason": "AlgorithmError: see logs",
         "ExitMessage": "the test split's hash differs from the seal"})}
    answer = world.call("failed", run)
    assert answer["status"] == "Failed" and answer["is_best"] is False
    assert answer["error"] == "States.TaskFailed: the test split's hash differs from the seal"
    assert answer["subject"] == "nyanops: cats run failed"
    assert answer["message"].splitlines() == [f"Run {run['trial']} of experiment cats failed.", answer["error"]]
    [trial] = world.experiments.list_trials()
    assert (trial.status, trial.error) == ("Failed", answer["error"])


def test_a_run_failing_after_its_results_says_they_are_kept(world: World) -> None:
    old, new = run_state("m-a-0000000000000001"), run_state("m-b-0000000000000002", test_hash="u" * 64)
    world.finish(old, wrong=2)
    world.finish(new, wrong=0)  # pending: its champion re-scoring then fails the run
    new["error"] = {"Error": "ExperimentBusy", "Cause": json.dumps({"errorMessage": "lock held"})}
    answer = world.call("failed", new)
    assert f"Its results are recorded; the best flag stays with {old['trial']}" in answer["message"]
    assert world.trials()[old["trial"]].is_best


def test_subject_fits_sns_for_the_longest_experiment_name(world: World) -> None:
    name = "c" * 120
    run = run_state("m-a-0000000000000001", experiment=name)
    world.call("started", run)
    world.evaluate(run, wrong=0)
    answer = world.call("succeeded", run)
    assert len(answer["subject"]) < limits.SNS_SUBJECT_MAX and answer["subject"].endswith("...")
    run["error"] = {"Error": "X", "Cause": "y"}
    assert len(world.call("failed", run)["subject"]) < limits.SNS_SUBJECT_MAX


# -- the identity of a run's test split and classes ---------------------------------------------------


def test_identity_of_the_test_split() -> None:
    assert identity_of_test_split({"split_hashes": {"test": "abc"}, "content_hash": "h"}) == "abc"
    for dataset in ({"content_hash": "h"}, {"split_hashes": {"test": ""}, "content_hash": "h"},
                    {"split_hashes": {"test": 5}, "content_hash": "h"}, {"split_hashes": [], "content_hash": "h"}):
        assert identity_of_test_split(dataset) == "content:h"


def test_classes_key_keeps_the_order() -> None:
    assert classes_key(["a", "b"]) != classes_key(["b", "a"])
    assert classes_key(["a", "b"]) == classes_key(["a", "b"]) and len(classes_key(["a"])) == 64


# -- failure texts ----------------------------------------------------------------------------------


def cause(**fields: Any) -> dict[str, str]:
    return {"Error": "States.TaskFailed", "Cause": json.dumps(fields)}


@pytest.mark.parametrize(
    ("error", "text"),
    [
        (None, "unknown error"),
        ("boom", "unknown error"),
        ({"Error": "Lambda.Unknown", "Cause": "plain text"}, "Lambda.Unknown: plain text"),
        ({"Cause": "x"}, "Error: x"),
        ({"Error": "E", "Cause": "{not json"}, "E: {not json"),
        ({"Error": "E", "Cause": json.dumps({"errorMessage": "bad input", "errorType": "ValueError"})},
         "E: bad input"),
        ({"Error": "E", "Cause": json.dumps({"message": "throttled"})}, "E: throttled"),
        (cause(ProcessingJobName="j", ProcessingJobStatus="Failed", ExitMessage="why", FailureReason="generic"),
         "States.TaskFailed: why"),
        (cause(ProcessingJobName="j", ProcessingJobStatus="Failed", FailureReason="generic"),
         "States.TaskFailed: generic"),
        (cause(ProcessingJobName="j", ProcessingJobStatus="Stopped", FailureReason=""),
         "States.TaskFailed: processing job Stopped"),
        (cause(ProcessingJobName="j", ProcessingJobStatus="Stopped", ExitMessage="halted"),
         "States.TaskFailed: processing job Stopped: halted"),
        (cause(TrainingJobName="t", TrainingJobStatus="Failed", FailureReason="CUDA out of memory"),
         "States.TaskFailed: CUDA out of memory"),
        (cause(TrainingJobName="t", TrainingJobStatus="Stopped", SecondaryStatus="MaxRuntimeExceeded"),
         "States.TaskFailed: training job Stopped (the job ran longer than its MaxRuntimeInSeconds)"),
        (cause(TrainingJobName="t", TrainingJobStatus="Stopped", SecondaryStatus="Stopped"),
         "States.TaskFailed: training job Stopped (Stopped)"),
        (cause(TrainingJobName="t", TrainingJobStatus="Stopped", FailureReason="stopped by user"),
         "States.TaskFailed: training job Stopped: stopped by user"),
        (cause(other="x"), 'States.TaskFailed: {"other": "x"}'),
    ],
)
def test_failure_text(error: Any, text: str) -> None:
    assert failure_text(error) == text


def test_failure_text_is_clipped() -> None:
    text = failure_text({"Error": "E", "Cause": "x" * 5000})
    assert len(text) == MAX_ERROR and text.endswith(" [...]")


# -- what is stored and said, field by field ----------------------------------------------------------------


def test_the_trial_is_registered_with_everything_the_run_knows(world: World, tmp_path: Path) -> None:
    run = run_state("m-a-0000000000000001")
    run["comment"] = "epochs 10"
    world.call("started", run)
    [t] = world.experiments.list_trials()
    assert (t.dataset_id, t.dataset_hash, t.code_hash, t.comment, t.source_key) == (
        run["dataset"]["id"], run["dataset"]["content_hash"], run["code"]["hash"], "epochs 10", run["source"]["key"])
    row = connect(tmp_path / "nyanops.db").execute("SELECT execution_name FROM trials").fetchone()
    assert row["execution_name"] == run["execution_name"]


def test_optional_run_fields_have_their_defaults(world: World) -> None:
    run = run_state("m-a-0000000000000001")
    for optional in ("comment", "primary_metric", "best_model_tolerance", "results"):
        run.pop(optional, None)
    world.call("started", run)
    world.evaluate(run, wrong=1)
    answer = world.call("succeeded", run)
    [t] = world.experiments.list_trials()
    assert t.comment == "" and t.model_location == ""
    assert answer["subject"].startswith("nyanops: cats macro_f1 ")  # the default metric
    lines = answer["message"].splitlines()
    assert f"dataset {run['dataset']['id']}  comment: " in lines and "model: " in lines


def test_the_record_keeps_what_train_py_resolved(world: World) -> None:
    run = run_state("m-a-0000000000000001")
    world.call("started", run)
    world.evaluate(run, wrong=1, hyperparameters={"epochs": 7, "arch": "resnet18"})
    world.call("succeeded", run)
    [t] = world.experiments.list_trials()
    assert t.hyperparameters == {"epochs": 7, "arch": "resnet18"} and t.best_epoch == 3
    assert t.model_location == run["results"]["training"]["model_artifacts"]


def test_the_whole_success_message(world: World) -> None:
    run = run_state("m-a-0000000000000001")
    run["comment"] = "epochs 10"
    world.call("started", run)
    world.evaluate(run, wrong=1)
    answer = world.call("succeeded", run, arn=ARN.format(run["execution_name"]))
    f1 = score(1)
    execution = run["execution_name"]
    assert answer["message"].splitlines() == [
        f"Run {execution} of experiment cats finished.",
        f"accuracy 0.7500  macro precision 0.8333  macro recall 0.7500  macro F1 {f1:.4f}",
        "macro_f1: NEW BEST",
        f"Why: {answer['decision']}.",
        f"dataset {run['dataset']['id']}  comment: epochs 10",
        f"model: s3://b/runs/{execution}/model/model.tar.gz",
        f"evaluation: s3://b/runs/{execution}/evaluation/evaluation.json",
        "execution: https://eu-west-1.console.aws.amazon.com/states/home?region=eu-west-1#/v2/executions/details/"
        + ARN.format(execution),
        f"training job: https://eu-west-1.console.aws.amazon.com/sagemaker/home?region=eu-west-1#/jobs/"
        f"{run['training']['job_name']}",
        f"evaluation job: https://eu-west-1.console.aws.amazon.com/sagemaker/home?region=eu-west-1#/processing-jobs/"
        f"{execution}-eval",
    ]
    assert {k: answer[k] for k in ("experiment", "trial", "status")} == {
        "experiment": "cats", "trial": execution, "status": "Completed"}


def test_the_whole_failure_answer(world: World) -> None:
    run = run_state("m-a-0000000000000001")
    run["error"] = {"Error": "States.TaskFailed", "Cause": "boom"}
    answer = world.call("failed", run, arn=ARN.format(run["execution_name"]))
    assert {k: answer[k] for k in ("experiment", "trial", "status", "error", "is_best", "subject")} == {
        "experiment": "cats", "trial": run["trial"], "status": "Failed", "error": "States.TaskFailed: boom",
        "is_best": False, "subject": "nyanops: cats run failed"}
    lines = answer["message"].splitlines()
    assert lines[:2] == [f"Run {run['trial']} of experiment cats failed.", "States.TaskFailed: boom"]
    assert lines[2].startswith("execution: https://eu-west-1.console.aws.amazon.com/states/")


def test_a_failure_after_results_without_a_best(world: World, tmp_path: Path) -> None:
    """A trial whose results are recorded but which is not best, in an experiment where no trial is best."""
    run = run_state("m-a-0000000000000001")
    world.call("started", run)
    world.evaluate(run, wrong=1)
    world.call("succeeded", run)
    connect(tmp_path / "nyanops.db").execute("UPDATE trials SET is_best = 0")  # the flag cleared by hand
    run["error"] = {"Error": "ExperimentBusy", "Cause": "held"}
    answer = world.call("failed", run)
    assert "Its results are recorded; the best flag stays with no trial: the best-model decision could not be " \
           "completed (ExperimentBusy: held); the flag stays with no trial." in answer["message"]


def test_subjects_are_cut_to_99_characters(world: World) -> None:
    run = run_state("m-a-0000000000000001", experiment="c" * 120)
    run["error"] = {"Error": "X", "Cause": "y"}
    subject = world.call("failed", run)["subject"]
    assert len(subject) == limits.SNS_SUBJECT_MAX - 1 and subject == f"nyanops: {'c' * 87}..."


def test_the_evaluation_job_name_check_names_the_file(world: World) -> None:
    run = run_state("m-a-0000000000000001")
    world.call("started", run)
    run["evaluation"]["job_name"] = "m-other-0000000000000009-eval"
    with pytest.raises(EvaluationRefused) as caught:
        world.call("succeeded", run)
    assert caught.value.uri == "s3://b/runs/m-a-0000000000000001/evaluation/evaluation.json"


def test_a_rescore_request_without_outputs() -> None:
    from nyanops.core.best_model import Decision, Rescore, Verdict
    from nyanops.core.experiments import DecisionNote
    from nyanops.core.record_results import rescore_request

    run = run_state("m-a-0000000000000001")
    run["evaluation"]["output_config"] = {"KmsKeyId": KMS}
    decision = Decision(Verdict.RESCORE, run["trial"], "old", "old", DecisionNote("pending", "old"),
                        Rescore("old", "s3://b/old.tar.gz", 2))
    request = rescore_request(run, decision)
    assert request["output_config"] == {"KmsKeyId": KMS} and request["attempt"] == 2
    assert request["output_s3_uri"] == "s3://b/runs/m-a-0000000000000001/champion-2/"


def test_evaluation_location_trims_only_slashes() -> None:
    from nyanops.core.record_results import evaluation_location

    assert evaluation_location({"evaluation": {"output_s3_uri": "s3://b/runs/m-X/"}}) == "s3://b/runs/m-X/evaluation.json"


def test_classes_key_is_the_sha256_of_the_names_one_per_line() -> None:
    import hashlib

    assert classes_key(["a", "b"]) == hashlib.sha256(b"a\nb").hexdigest()


def test_links_of_odd_arns_and_runs() -> None:
    assert Links.of("arn:aws:states:eu-west-1", {}).region == "eu-west-1"
    assert Links.of(5, {}) == Links("", "")
    links = Links.of(ARN.format("m-x"), {})
    assert links.lines({}) == [
        "execution: https://eu-west-1.console.aws.amazon.com/states/home?region=eu-west-1#/v2/executions/details/"
        + ARN.format("m-x")]


@pytest.mark.parametrize(
    ("error", "text"),
    [
        ({"Error": "E"}, "E: "),
        ({"Error": "E", "Cause": {"a": 1}}, "E: {'a': 1}"),
        ({"Error": "E", "Cause": '  {"errorMessage": "m"}'}, "E: m"),
        (cause(ProcessingJobStatus="Failed", ExitMessage="x"), "States.TaskFailed: x"),
        (cause(ProcessingJobName="j", FailureReason="y"), "States.TaskFailed: y"),
        (cause(ProcessingJobName="j", ProcessingJobStatus="Stopped", ExitMessage="halted by MAX"),
         "States.TaskFailed: processing job Stopped: halted by MAX"),
        (cause(TrainingJobStatus="Failed", FailureReason="oom"), "States.TaskFailed: oom"),
        (cause(TrainingJobName="t", FailureReason="oom"), "States.TaskFailed: oom"),
        (cause(TrainingJobName="t", TrainingJobStatus="Stopped"), "States.TaskFailed: training job Stopped ()"),
    ],
)
def test_failure_text_of_partial_describes(error: Any, text: str) -> None:
    assert failure_text(error) == text


# -- found by mutation testing ------------------------------------------------------------------------------
def test_the_success_subject_uses_all_the_room_sns_gives(world: World) -> None:
    run = run_state("m-a-0000000000000001", experiment="c" * 120)
    world.call("started", run)
    world.evaluate(run, wrong=0)
    subject = world.call("succeeded", run)["subject"]
    assert len(subject) == limits.SNS_SUBJECT_MAX - 1 and subject == f"nyanops: {'c' * 87}..."


def test_an_oversized_failure_message_is_cut_at_a_quarter_of_snss_limit_and_says_so(world: World) -> None:
    budget = limits.SNS_MESSAGE_MAX_BYTES // 4
    failed = run_state("m-b-0000000000000002")
    failed["trial"] = "t" * budget  # the run state is the state machine's; the message must fit SNS whatever it holds
    failed["error"] = {"Error": "X", "Cause": "y"}
    message = world.call("failed", failed)["message"]
    assert budget - 1 <= limits.utf8_len(message) <= budget and message.endswith(" [...]")


@pytest.mark.parametrize("results", [None, {}, {"record": {}}, {"record": {"trial": None}}])
def test_champion_mode_without_a_pending_rescoring_is_a_bad_event(world: World, results: Any) -> None:
    run = run_state("m-b-0000000000000002")
    if results is None:
        run.pop("results", None)
    else:
        run["results"] = results
    with pytest.raises(BadRecordEvent) as caught:
        world.call("champion", run)
    assert str(caught.value) == "mode 'champion' needs results.record.trial.rescore (the re-scoring that ran)"


def test_without_hyperparameters_from_the_job_the_runs_are_recorded(world: World) -> None:
    run = run_state("m-a-0000000000000001")
    world.call("started", run)
    world.evaluate(run, wrong=1)
    _, key = layout.parse_s3_uri(run["evaluation"]["output_s3_uri"] + "/evaluation.json")
    doc = json.loads(world.objects.get(key))
    doc["model"]["hyperparameters"] = {}  # a job that did not report them
    world.objects.put(key, json.dumps(doc).encode())
    world.call("succeeded", run)
    [t] = world.experiments.list_trials()
    assert t.hyperparameters == run["hyperparameters"] != {}
