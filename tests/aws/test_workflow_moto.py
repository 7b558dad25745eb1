"""The real ASL file run by moto's Step Functions engine: upload → StartPipeline → (Map over the trials:
RegisterTrial → Train → Evaluate → RecordResults) → Summarize → Notify,
with SageMaker ``.sync`` jobs faked (requests validated by botocore) and the
RecordResults Lambda run in-process (see moto_sfn_patches)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import EXAMPLE_MANIFEST, RECORD_RESULTS_ARN, World
from .evaluation_docs import score
from .moto_sfn_patches import FakeSageMaker, patched_engine, request_errors


@pytest.fixture
def execute_state_machine() -> bool:
    return True


@pytest.fixture
def fake() -> FakeSageMaker:
    return FakeSageMaker()


@pytest.fixture
def engine(world: World, fake: FakeSageMaker, lambda_context: Any) -> Iterator[World]:
    world.put_dataset()
    world.put_code()
    record_results = world.handlers[1]
    with patched_engine(fake, {RECORD_RESULTS_ARN: lambda event: record_results.lambda_handler(event, lambda_context)}):
        yield world


def upload_and_run(world: World, key: str, ctx: Any, **overrides: Any) -> dict[str, Any]:
    body = json.dumps({**EXAMPLE_MANIFEST, **overrides}).encode()
    [result] = world.handlers[0].lambda_handler(world.upload_event(key, body), ctx)["results"]
    assert result["outcome"] == "started", result
    arn = next(e["executionArn"] for e in world.executions() if e["name"] == result["execution_name"])
    return world.wait(arn)


def history(world: World, execution_arn: str) -> list[dict[str, Any]]:
    return world.sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]


def entered_states(world: World, execution_arn: str) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in history(world, execution_arn)
            if "stateEnteredEventDetails" in e]


def exited(world: World, execution_arn: str, state: str) -> list[Any]:
    """The outputs ``state`` exited with (one per Map iteration that ran it), in history order."""
    return [json.loads(e["stateExitedEventDetails"]["output"]) for e in history(world, execution_arn)
            if e.get("stateExitedEventDetails", {}).get("name") == state]


TRIAL_SUCCESS = ["RegisterTrial", "ReuseOrTrain", "Train", "TrainingCompleted", "Evaluate", "RecordResults",
                 "ChampionToRescore", "TrialCompleted"]
SUCCESS = ["Trials", *TRIAL_SUCCESS, "Summarize", "Notify", "SweepOutcome", "Done"]


def test_a_manifest_upload_runs_to_a_recorded_best_trial(engine: World, fake: FakeSageMaker,
                                                         lambda_context: Any) -> None:
    fake.wrong = lambda request: 1
    done = upload_and_run(engine, "manifests/epochs10.json", lambda_context)
    assert done["status"] == "SUCCEEDED", history(engine, done["executionArn"])[-3:]
    assert entered_states(engine, done["executionArn"]) == SUCCESS
    assert fake.request_errors == []
    assert [op for op, _ in fake.requests] == ["CreateTrainingJob", "CreateProcessingJob"]
    name = done["name"]
    registered = f"model registry: trial {name} registered as version 1, Approved"
    assert json.loads(done["output"])["sweep"] == [{"trial": name, "status": "Completed", "registry": registered}]
    [output] = exited(engine, done["executionArn"], "RecordResults")  # the trial's own results, in its iteration
    model = output["results"]["training"]["model_artifacts"]
    assert model == f"s3://nyanops-example-bucket/runs/{name}/model/{name}-train/output/model.tar.gz"
    assert output["results"]["training"]["status"] == "Completed"
    assert output["results"]["evaluation"] == {"job_name": f"{name}-eval", "status": "Completed"}
    assert output["results"]["record"]["trial"]["is_best"] is True
    params = engine.trial_component(name)["Parameters"]
    assert params["is_best"]["NumberValue"] == 1
    assert params["macro_f1"]["NumberValue"] == pytest.approx(score(1))
    assert params["model_location"]["StringValue"] == model
    assert engine.trial_component(name)["Status"]["PrimaryStatus"] == "Completed"
    # The processing job read the model the training job wrote; both joined the trial.
    processing = dict(fake.requests)["CreateProcessingJob"]
    assert {i["InputName"]: i["S3Input"]["S3Uri"] for i in processing["ProcessingInputs"]}["model"] == model
    # The jobs get the sealed split hashes to check what they downloaded against.
    run = json.loads(done["input"])
    training = dict(fake.requests)["CreateTrainingJob"]
    assert training["HyperParameters"]["expected-train-hash"] == run["dataset"]["split_hashes"]["train"]
    assert training["HyperParameters"]["expected-val-hash"] == run["dataset"]["split_hashes"]["val"]
    assert processing["AppSpecification"]["ContainerArguments"] == [
        "--expected-test-hash", run["dataset"]["split_hashes"]["test"]]
    assert processing["ExperimentConfig"]["TrialName"] == name
    [(subject, message)] = engine.notifications()
    assert subject == f"nyanops: cats macro_f1 {score(1):.3f} (new best)"
    assert f"  {name}  macro_f1 {score(1):.4f}  trained (best)" in message
    # The evaluation job got its identity, which evaluation.json carries and RecordResults checked.
    assert processing["Environment"] == {"NYANOPS_EXECUTION": name, "NYANOPS_PROCESSING_JOB": f"{name}-eval"}
    assert "execution: https://us-east-1.console.aws.amazon.com/states/home" in message


def test_two_manifests_two_trials_exactly_one_best(engine: World, fake: FakeSageMaker, lambda_context: Any) -> None:
    wrong = iter([2, 1])
    fake.wrong = lambda request: next(wrong)
    # The same recipe twice, trained twice: force (without it the second would reuse the first's results).
    first = upload_and_run(engine, "manifests/first.json", lambda_context, force=True)
    second = upload_and_run(engine, "manifests/second.json", lambda_context, comment="more epochs", force=True)
    assert first["status"] == second["status"] == "SUCCEEDED"
    trials = [t["TrialName"] for t in engine.sm.list_trials(ExperimentName="cats")["TrialSummaries"]]
    assert sorted(trials) == sorted([first["name"], second["name"]])
    flags = {t: engine.trial_component(t)["Parameters"]["is_best"]["NumberValue"] for t in trials}
    assert flags == {first["name"]: 0, second["name"]: 1}
    assert fake.request_errors == []


def test_a_failed_training_job_is_recorded_and_fails_the_execution(engine: World, fake: FakeSageMaker,
                                                                   lambda_context: Any) -> None:
    fake.fail_training = lambda request: "AlgorithmError: ExecuteUserScriptError: train.py exited with 1"
    done = upload_and_run(engine, "manifests/broken.json", lambda_context)
    assert done["status"] == "FAILED"
    assert done["error"] == "PipelineFailed"
    assert entered_states(engine, done["executionArn"]) == [
        "Trials", "RegisterTrial", "ReuseOrTrain", "Train", "RecordFailure", "TrialFailed", "Summarize", "Notify",
        "SweepOutcome", "PipelineFailed"]
    component = engine.trial_component(done["name"])
    assert component["Status"]["PrimaryStatus"] == "Failed"
    assert component["Parameters"]["error"]["StringValue"] == (
        "States.TaskFailed: AlgorithmError: ExecuteUserScriptError: train.py exited with 1")
    assert component["Parameters"]["is_best"]["NumberValue"] == 0
    [(subject, message)] = engine.notifications()
    assert subject == "nyanops: cats run failed"
    assert message.startswith(f"Run {done['name']} of experiment cats: 1 trial: 0 trained, 0 reused, 1 failed.\n")
    assert (f"  {done['name']}  failed: States.TaskFailed: AlgorithmError: ExecuteUserScriptError: train.py exited "
            "with 1\n") in message
    assert "execution: https://us-east-1.console.aws.amazon.com/states/" in message


def test_a_failure_that_cannot_be_recorded_is_still_notified(engine: World, fake: FakeSageMaker,
                                                             lambda_context: Any) -> None:
    """RecordFailure itself fails → the iteration ends TrialNotRecorded with both error names → the comparison
    records the trial failed with them and notifies → PipelineFailed."""
    fake.fail_training = lambda request: "CapacityError: no ml.m5.large"
    record_results = engine.handlers[1]

    def handler(event: dict[str, Any]) -> Any:
        if event["mode"] == "failed":
            raise RuntimeError("experiments store unavailable")
        return record_results.lambda_handler(event, lambda_context)

    with patched_engine(fake, {RECORD_RESULTS_ARN: handler}):
        done = upload_and_run(engine, "manifests/unrecorded.json", lambda_context)
    assert done["status"] == "FAILED" and done["error"] == "PipelineFailed"
    assert entered_states(engine, done["executionArn"])[-6:] == [
        "RecordFailure", "TrialNotRecorded", "Summarize", "Notify", "SweepOutcome", "PipelineFailed"]
    [(subject, message)] = engine.notifications()
    assert subject == "nyanops: cats run failed"
    error = "States.TaskFailed (recording the failure failed: RuntimeError)"
    assert f"  {done['name']}  failed: {error}" in message
    component = engine.trial_component(done["name"])
    assert component["Status"]["PrimaryStatus"] == "Failed"
    assert component["Parameters"]["error"]["StringValue"] == error


def test_a_malformed_sagemaker_request_fails_the_run(engine: World, fake: FakeSageMaker, lambda_context: Any,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The request check bites: a string where CreateTrainingJob wants an integer fails the Train task."""
    from nyanops.core import execution_input

    original = execution_input.build_execution_input

    def broken(*args: Any, **kwargs: Any) -> dict[str, Any]:
        doc = original(*args, **kwargs)
        doc["trials"][0]["training"]["stopping_condition"] = {"MaxRuntimeInSeconds": "3600"}
        return doc

    monkeypatch.setattr("nyanops.core.start_pipeline.build_execution_input", broken)
    done = upload_and_run(engine, "manifests/malformed.json", lambda_context)
    assert done["status"] == "FAILED"
    assert any("StoppingCondition.MaxRuntimeInSeconds" in e for e in fake.request_errors), fake.request_errors
    assert engine.trial_component(done["name"])["Status"]["PrimaryStatus"] == "Failed"


def test_request_validation_catches_what_sagemaker_would_refuse() -> None:
    good = {"ProcessingJobName": "j", "RoleArn": "arn:aws:iam::123456789012:role/r",
            "AppSpecification": {"ImageUri": "i"},
            "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large",
                                                      "VolumeSizeInGB": 30}}}
    assert request_errors("CreateProcessingJob", good) == []
    assert request_errors("CreateProcessingJob", {**good, "RoleArn": None})
    assert any("Unknown parameter" in e for e in request_errors("CreateProcessingJob", {**good, "roleArn": "x"}))
    missing = {k: v for k, v in good.items() if k != "AppSpecification"}
    assert any("AppSpecification" in e for e in request_errors("CreateProcessingJob", missing))


KMS_KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
KMS_FIELDS = ("KmsKeyId", "VolumeKmsKeyId")


def _kms_fields(request: dict[str, Any]) -> dict[str, str]:
    """The KMS fields of a CreateTrainingJob / CreateProcessingJob request, by where they are."""
    configs = {
        "OutputDataConfig": request.get("OutputDataConfig") or {},
        "ResourceConfig": request.get("ResourceConfig") or {},
        "ProcessingOutputConfig": request.get("ProcessingOutputConfig") or {},
        "ClusterConfig": (request.get("ProcessingResources") or {}).get("ClusterConfig") or {},
    }
    found = {f"{where}.{f}": config[f] for where, config in configs.items() for f in KMS_FIELDS if f in config}
    assert sum(json.dumps(request).count(f'"{f}"') for f in KMS_FIELDS) == len(found), "a KMS field elsewhere"
    return found


def test_without_a_key_the_job_requests_carry_no_kms_field(engine: World, fake: FakeSageMaker,
                                                           lambda_context: Any) -> None:
    done = upload_and_run(engine, "manifests/nokey.json", lambda_context)
    assert done["status"] == "SUCCEEDED"
    assert fake.request_errors == []
    requests = dict(fake.requests)
    assert _kms_fields(requests["CreateTrainingJob"]) == {}
    assert _kms_fields(requests["CreateProcessingJob"]) == {}
    assert requests["CreateTrainingJob"]["ResourceConfig"] == {
        "InstanceCount": 1, "InstanceType": "ml.m5.xlarge", "VolumeSizeInGB": 30}


@pytest.mark.parametrize(
    ("training_type", "processing_type"),
    [("ml.m5.xlarge", "ml.m5.xlarge"), ("ml.g4dn.xlarge", "ml.g4dn.xlarge"), ("ml.g5.xlarge", "ml.c5.xlarge")],
)
def test_with_a_key_the_jobs_encrypt_outputs_and_ebs_volumes(engine: World, fake: FakeSageMaker, lambda_context: Any,
                                                             monkeypatch: pytest.MonkeyPatch, training_type: str,
                                                             processing_type: str) -> None:
    """StartPipeline (configured as the template configures it with a KmsKeyArn) → the real ASL → requests
    that pass botocore's validation, with the key on outputs always and on volumes except local NVMe types."""
    monkeypatch.setenv("KMS_KEY_ARN", KMS_KEY)
    monkeypatch.setenv("TRAINING_INSTANCE_TYPE", training_type)
    monkeypatch.setenv("PROCESSING_INSTANCE_TYPE", processing_type)
    engine.handlers[0].set_deps(None)  # settings are read again from the environment
    done = upload_and_run(engine, "manifests/withkey.json", lambda_context)
    assert done["status"] == "SUCCEEDED", history(engine, done["executionArn"])[-3:]
    assert fake.request_errors == []
    requests = dict(fake.requests)
    training, processing = requests["CreateTrainingJob"], requests["CreateProcessingJob"]
    expected_training = {"OutputDataConfig.KmsKeyId": KMS_KEY}
    if not training_type.startswith(("ml.g4dn.", "ml.g5.")):
        expected_training["ResourceConfig.VolumeKmsKeyId"] = KMS_KEY
    expected_processing = {"ProcessingOutputConfig.KmsKeyId": KMS_KEY}
    if not processing_type.startswith(("ml.g4dn.", "ml.g5.")):
        expected_processing["ClusterConfig.VolumeKmsKeyId"] = KMS_KEY
    assert _kms_fields(training) == expected_training
    assert _kms_fields(processing) == expected_processing
    assert training["ResourceConfig"]["InstanceType"] == training_type
    assert processing["ProcessingResources"]["ClusterConfig"]["InstanceType"] == processing_type
    # The outputs still land where RecordResults looks for them.
    assert processing["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"].endswith(
        f"/runs/{done['name']}/evaluation/")
    [outcome] = json.loads(done["output"])["sweep"]
    assert (outcome["trial"], outcome["status"]) == (done["name"], "Completed")


def test_request_validation_accepts_the_kms_fields_and_checks_their_type() -> None:
    """botocore checks the KMS fields' type (a string), not that a key is non-empty: the input never sends ""."""
    base = {"ProcessingJobName": "j", "RoleArn": "arn:aws:iam::123456789012:role/r",
            "AppSpecification": {"ImageUri": "i"}}
    cluster = {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30, "VolumeKmsKeyId": KMS_KEY}
    good = {**base, "ProcessingResources": {"ClusterConfig": cluster},
            "ProcessingOutputConfig": {"Outputs": [], "KmsKeyId": KMS_KEY}}
    assert request_errors("CreateProcessingJob", good) == []
    bad = {**good, "ProcessingResources": {"ClusterConfig": {**cluster, "VolumeKmsKeyId": None}}}
    assert request_errors("CreateProcessingJob", bad)


def test_a_sweep_runs_its_trials_through_the_map_and_again_reuses_them(engine: World, fake: FakeSageMaker,
                                                                       lambda_context: Any) -> None:
    """A sweep over 3 values of one hyperparameter: 3 trials in one execution (the Map), exactly one best, one
    notification with the comparison. The same sweep uploaded again: 3 reused trials and no SageMaker job."""
    wrong = {"t1": 3, "t2": 0, "t3": 1}  # epochs 10 (the second trial) scores best
    fake.wrong = lambda request: wrong[request["ProcessingJobName"].rsplit("-", 2)[-2]]
    sweep = {"sweep": {"epochs": [5, 10, 15]}}
    done = upload_and_run(engine, "manifests/sweep.json", lambda_context, **sweep)
    assert done["status"] == "SUCCEEDED", history(engine, done["executionArn"])[-3:]
    name = done["name"]
    trials = [f"{name}-t{i}" for i in (1, 2, 3)]
    outcomes = json.loads(done["output"])["sweep"]
    assert [(o["trial"], o["status"]) for o in outcomes] == [(t, "Completed") for t in trials]
    assert sum("Approved" in o["registry"] for o in outcomes) >= 1  # the registry follows the flag
    states = entered_states(engine, done["executionArn"])
    assert states.count("Train") == states.count("Evaluate") == 3 and states.count("Notify") == 1
    assert fake.request_errors == []
    assert sorted(r["TrainingJobName"] for op, r in fake.requests if op == "CreateTrainingJob") == [
        f"{t}-train" for t in trials]
    assert sorted(r["HyperParameters"]["epochs"] for op, r in fake.requests if op == "CreateTrainingJob") == [
        "10", "15", "5"]
    flags = {t: engine.trial_component(t)["Parameters"]["is_best"]["NumberValue"] for t in trials}
    assert flags == {trials[0]: 0, trials[1]: 1, trials[2]: 0}
    [(subject, message)] = engine.notifications()
    assert subject == f"nyanops: cats sweep of 3 trials, best macro_f1 {score(0):.3f} (new best)"
    assert f"  {trials[1]}  epochs=10  macro_f1 {score(0):.4f}  trained (best)" in message
    assert f"Best model of experiment cats: {trials[1]} (macro_f1 {score(0):.4f}, from this run)." in message

    jobs_before = len(fake.requests)
    again = upload_and_run(engine, "manifests/sweep-again.json", lambda_context, **sweep)
    assert again["status"] == "SUCCEEDED"
    reused = [f"{again['name']}-t{i}" for i in (1, 2, 3)]
    assert json.loads(again["output"])["sweep"] == [
        {"trial": t, "status": "Reused", "reused_from": o} for t, o in zip(reused, trials, strict=True)]
    assert len(fake.requests) == jobs_before  # nothing trained, nothing evaluated
    assert "Train" not in entered_states(engine, again["executionArn"])
    for new, old in zip(reused, trials, strict=True):
        params = engine.trial_component(new)["Parameters"]
        assert params["reused_from"]["StringValue"] == old and params["is_best"]["NumberValue"] == 0
        assert params["macro_f1"] == engine.trial_component(old)["Parameters"]["macro_f1"]
    [_, (subject, message)] = engine.notifications()
    assert "3 trials: 0 trained, 3 reused, 0 failed." in message
    assert f"reused from {trials[0]} (not trained)" in message
