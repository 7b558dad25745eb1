"""The real statemachine/training_pipeline.asl.json, loaded and run with a fake TaskRunner."""

import copy
from pathlib import Path
from typing import Any

import pytest

from nyanops.local.asl import ExecutionResult, MissingSubstitution, TaskContext, TaskFailed, load_state_machine

ASL_FILE = Path(__file__).resolve().parents[2] / "statemachine" / "training_pipeline.asl.json"
SUBSTITUTIONS = {
    "RecordResultsFunctionArn": "arn:aws:lambda:local:000000000000:function:record-results",
    "SageMakerRoleArn": "arn:aws:iam::000000000000:role/sagemaker",
    "TrainingImage": "local/nyanops-training:latest",
    "ProcessingImage": "local/nyanops-processing:latest",
    "ResultsTopicArn": "arn:aws:sns:local:000000000000:results",
}
TRIAL: dict[str, Any] = {
    "trial": "cats-run-1",
    "index": 0,
    "hyperparameters": {"epochs": 2},
    "training": {
        "job_name": "cats-run-1-train",
        "hyperparameters": {"epochs": "2"},
        "output_s3_uri": "s3://bucket/output/",
        "checkpoint_s3_uri": "s3://bucket/checkpoints/run-1/",
        "stopping_condition": {"MaxRuntimeInSeconds": 3600},
        "use_spot": False,
        "output_data_config": {"S3OutputPath": "s3://bucket/output/"},
        "resource_config": {"InstanceCount": 1, "InstanceType": "ml.g4dn.xlarge", "VolumeSizeInGB": 30},
    },
    "evaluation": {
        "job_name": "cats-run-1-eval",
        "output_s3_uri": "s3://bucket/evaluation/run-1/",
        "container_arguments": ["--expected-test-hash", "3" * 64],
        "stopping_condition": {"MaxRuntimeInSeconds": 1800},
        "output_config": {"Outputs": [{"OutputName": "evaluation", "S3Output": {
            "S3Uri": "s3://bucket/evaluation/run-1/", "LocalPath": "/opt/ml/processing/evaluation",
            "S3UploadMode": "EndOfJob"}}]},
        "cluster_config": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30},
    },
}
SHARED: dict[str, Any] = {
    "input_version": 2,
    "execution_name": "run-1",
    "experiment": "cats",
    "comment": "",
    "force": False,
    "primary_metric": "macro_f1",
    "best_model_tolerance": 0.0,
    "source": {"kind": "manifest", "bucket": "bucket", "key": "manifests/run-1.json"},
    "dataset": {
        "id": "d",
        "train_s3_uri": "s3://bucket/d/train/",
        "val_s3_uri": "s3://bucket/d/val/",
        "test_s3_uri": "s3://bucket/d/test/",
    },
    "code": {"source_s3_uri": "s3://bucket/code/"},
    "retries": {"train": {"count": 0}, "evaluate": {"count": 0}, "champion": {"count": 0}},
}
RUN_INPUT: dict[str, Any] = {**SHARED, "max_concurrency": 1, "trials": [TRIAL]}
# The state of the trial's Map iteration (the ItemSelector's output).
RUN = {**SHARED, **TRIAL}


class FakeServices:
    """Canned results shaped like the real integrations; ``failures`` maps a state to errors to raise first."""

    def __init__(self, failures: dict[str, list[Exception]] | None = None, reused_from: str = "") -> None:
        self.failures = failures or {}
        self.reused_from = reused_from
        self.calls: list[tuple[str, str, Any]] = []

    def __call__(self, resource: str, parameters: Any, ctx: TaskContext) -> Any:
        self.calls.append((ctx.state_name, resource, copy.deepcopy(parameters)))
        pending = self.failures.get(ctx.state_name)
        if pending:
            raise pending.pop(0)
        if resource == "arn:aws:states:::sagemaker:createTrainingJob.sync":
            return {
                "TrainingJobName": parameters["TrainingJobName"],
                "TrainingJobArn": "arn:aws:sagemaker:local:000000000000:training-job/x",
                "TrainingJobStatus": "Completed",
                "SecondaryStatus": "Completed",
                "ModelArtifacts": {"S3ModelArtifacts": "s3://bucket/output/cats-run-1-train/output/model.tar.gz"},
                "FinalMetricDataList": [{"MetricName": "validation:accuracy", "Value": 0.9, "Timestamp": 0}],
            }
        if resource == "arn:aws:states:::sagemaker:createProcessingJob.sync":
            return {"ProcessingJobName": parameters["ProcessingJobName"], "ProcessingJobStatus": "Completed"}
        if resource == "arn:aws:states:::lambda:invoke":
            mode = parameters["Payload"]["mode"]
            payload: dict[str, Any] = {"mode": mode, "subject": f"nyanops: {mode}", "message": f"trial {mode}",
                                       "registry": ""}
            if mode == "started":
                payload["reused_from"] = self.reused_from
            if mode == "summary":
                outcomes = parameters["Payload"]["run"]["outcomes"]
                payload.update(completed=sum(o["status"] != "Failed" for o in outcomes), best_trial="")
            return {"StatusCode": 200, "ExecutedVersion": "$LATEST", "Payload": payload}
        if resource == "arn:aws:states:::sns:publish":
            return {"MessageId": "m-1"}
        raise AssertionError(f"unexpected resource {resource}")


TRIAL_SUCCESS = ["RegisterTrial", "ReuseOrTrain", "Train", "TrainingCompleted", "Evaluate", "RecordResults",
                 "ChampionToRescore", "TrialCompleted"]
SUCCESS = ["Trials", *TRIAL_SUCCESS, "Summarize", "Notify", "SweepOutcome", "Done"]
FAILED_AFTER = ["TrialFailed", "Summarize", "Notify", "SweepOutcome", "PipelineFailed"]


def run_pipeline(services: FakeServices, delays: list[float] | None = None) -> ExecutionResult:
    sm = load_state_machine(ASL_FILE, SUBSTITUTIONS)
    sink = delays if delays is not None else []
    return sm.run(
        copy.deepcopy(RUN_INPUT), execution_name="run-1", task_runner=services, sleep=sink.append, random=lambda: 0.5
    )


def test_the_file_needs_its_substitutions() -> None:
    with pytest.raises(MissingSubstitution) as err:
        load_state_machine(ASL_FILE, {})
    assert set(err.value.names) == set(SUBSTITUTIONS)


def test_success_path() -> None:
    services = FakeServices()
    result = run_pipeline(services)
    assert result.status == "SUCCEEDED"
    assert result.states == SUCCESS
    output = result.output
    assert output["sweep"] == [{"trial": "cats-run-1", "status": "Completed", "registry": ""}]
    assert output["summary"] == {"subject": "nyanops: summary", "message": "trial summary", "completed": 1,
                                 "best_trial": ""}
    assert {k: v for k, v in output.items() if k not in ("sweep", "summary")} == RUN_INPUT
    # The iteration's own results stay in the iteration (its output is small).
    [exited] = [e["details"]["output"] for e in result.history
                if e["type"] == "TaskStateExited" and e["details"]["name"] == "RecordResults"]
    assert exited["results"]["training"] == {
        "job_name": "cats-run-1-train",
        "status": "Completed",
        "secondary_status": "Completed",
        "model_artifacts": "s3://bucket/output/cats-run-1-train/output/model.tar.gz",
    }
    assert exited["results"]["evaluation"] == {"job_name": "cats-run-1-eval", "status": "Completed"}

    by_state = {state: params for state, _, params in services.calls}
    arn = "arn:aws:states:local:000000000000:execution:training_pipeline:run-1"
    assert by_state["RegisterTrial"] == {
        "FunctionName": SUBSTITUTIONS["RecordResultsFunctionArn"],
        "Payload": {"mode": "started", "run": RUN, "execution_arn": arn},
    }
    train = by_state["Train"]
    assert train["TrainingJobName"] == "cats-run-1-train"
    assert train["RoleArn"] == SUBSTITUTIONS["SageMakerRoleArn"]
    assert train["ResourceConfig"] == TRIAL["training"]["resource_config"]
    assert train["OutputDataConfig"] == {"S3OutputPath": "s3://bucket/output/"}
    assert train["InputDataConfig"][1]["DataSource"]["S3DataSource"]["S3Uri"] == "s3://bucket/d/val/"
    assert train["Tags"] == [
        {"Key": "nyanops:experiment", "Value": "cats"},
        {"Key": "nyanops:execution", "Value": "run-1"},
    ]
    evaluate = by_state["Evaluate"]
    assert evaluate["ProcessingResources"] == {"ClusterConfig": TRIAL["evaluation"]["cluster_config"]}
    assert evaluate["AppSpecification"]["ContainerArguments"] == ["--expected-test-hash", "3" * 64]
    assert evaluate["ProcessingOutputConfig"] == TRIAL["evaluation"]["output_config"]
    assert evaluate["ProcessingInputs"][1]["S3Input"]["S3Uri"].endswith("model.tar.gz")
    assert by_state["Summarize"] == {
        "FunctionName": SUBSTITUTIONS["RecordResultsFunctionArn"],
        "Payload": {"mode": "summary", "execution_arn": arn, "run": {
            "execution_name": "run-1", "experiment": "cats", "comment": "", "primary_metric": "macro_f1",
            "dataset_id": "d", "outcomes": [{"trial": "cats-run-1", "status": "Completed", "registry": ""}]}},
    }
    assert by_state["Notify"] == {
        "TopicArn": SUBSTITUTIONS["ResultsTopicArn"],
        "Subject": "nyanops: summary",
        "Message": "trial summary",
    }
    assert [state for state, _, _ in services.calls].count("Notify") == 1


def test_a_reused_trial_is_not_trained() -> None:
    services = FakeServices(reused_from="cats-run-0")
    result = run_pipeline(services)
    assert result.status == "SUCCEEDED"
    assert result.states == ["Trials", "RegisterTrial", "ReuseOrTrain", "TrialReused", "Summarize", "Notify",
                             "SweepOutcome", "Done"]
    assert result.output["sweep"] == [{"trial": "cats-run-1", "status": "Reused", "reused_from": "cats-run-0"}]
    assert not [call for call in services.calls if "sagemaker" in call[1]]


def test_retried_failure() -> None:
    services = FakeServices({"Train": [TaskFailed("SageMaker.ResourceLimitExceededException", "no ml.g4dn.xlarge")]})
    delays: list[float] = []
    result = run_pipeline(services, delays)
    assert result.status == "SUCCEEDED"
    assert result.states == SUCCESS
    assert [state for state, _, _ in services.calls].count("Train") == 2
    assert delays == [15.0]  # IntervalSeconds 30, FULL jitter with random() = 0.5


def test_caught_failure() -> None:
    services = FakeServices({"Train": [TaskFailed("States.TaskFailed", "AlgorithmError: boom")]})
    result = run_pipeline(services)
    assert result.states == ["Trials", "RegisterTrial", "ReuseOrTrain", "Train", "RecordFailure", *FAILED_AFTER]
    assert (result.status, result.error) == ("FAILED", "PipelineFailed")
    calls = {state: params for state, _, params in services.calls}
    assert calls["RecordFailure"]["Payload"]["run"]["error"] == {
        "Error": "States.TaskFailed",
        "Cause": "AlgorithmError: boom",
    }
    # The one notification is the comparison's, not the raw error.
    assert calls["Notify"]["Message"] == "trial summary"
    assert calls["Summarize"]["Payload"]["run"]["outcomes"] == [{"trial": "cats-run-1", "status": "Failed"}]


def test_failure_that_cannot_be_recorded_is_still_compared_and_notified() -> None:
    services = FakeServices(
        {
            "Train": [TaskFailed("States.TaskFailed", "AlgorithmError: boom")],
            "RecordFailure": [TaskFailed("ValueError", "store down")],
        }
    )
    result = run_pipeline(services)
    assert result.states == ["Trials", "RegisterTrial", "ReuseOrTrain", "Train", "RecordFailure", "TrialNotRecorded",
                             "Summarize", "Notify", "SweepOutcome", "Done"]
    calls = {state: params for state, _, params in services.calls}
    assert calls["Summarize"]["Payload"]["run"]["outcomes"] == [
        {"trial": "cats-run-1", "status": "NotRecorded", "error": "States.TaskFailed", "record_error": "ValueError"}]


def test_a_comparison_that_fails_is_notified_and_fails_the_run() -> None:
    services = FakeServices({"Summarize": [TaskFailed("ValueError", "store down")]})
    result = run_pipeline(services)
    assert result.states == ["Trials", *TRIAL_SUCCESS, "Summarize", "NotifySweepError", "PipelineFailed"]
    calls = {state: params for state, _, params in services.calls}
    assert calls["NotifySweepError"]["Message"] == (
        "Run run-1 of experiment cats: the comparison of its trials failed (ValueError: store down). "
        "The trials are recorded: `nyanops experiments` lists them."
    )


def test_notification_failure_still_succeeds() -> None:
    services = FakeServices({"Notify": [TaskFailed("SNS.NotFound", "no topic")] * 4})
    result = run_pipeline(services)
    assert result.status == "SUCCEEDED"
    assert result.states[-4:] == ["Notify", "NotificationNotSent", "SweepOutcome", "Done"]
    assert result.output["notification_error"] == {"Error": "SNS.NotFound", "Cause": "no topic"}


def test_sagemaker_throttling_is_told_from_validation_by_its_cause() -> None:
    """Both arrive as SageMaker.AmazonSageMakerException; the AWS SDK's cause names the error code."""

    def api_error(code: str) -> TaskFailed:
        cause = f"Rate exceeded (Service: AmazonSageMaker; Status Code: 400; Error Code: {code}; Request ID: x)"
        return TaskFailed("SageMaker.AmazonSageMakerException", cause)

    delays: list[float] = []
    throttled = run_pipeline(FakeServices({"Train": [api_error("ThrottlingException")] * 2}), delays)
    assert throttled.status == "SUCCEEDED" and delays == [30, 60]
    assert throttled.states[:11] == ["Trials", "RegisterTrial", "ReuseOrTrain", "Train", "TrainApiError",
                                     "TrainBackoff", "TrainWait", "Train", "TrainApiError", "TrainBackoff", "TrainWait"]
    refused = run_pipeline(FakeServices({"Train": [api_error("ValidationException")]}))
    assert refused.states == ["Trials", "RegisterTrial", "ReuseOrTrain", "Train", "TrainApiError",
                              "SageMakerApiFailed", "RecordFailure", *FAILED_AFTER]


def test_a_stopped_training_job_is_not_evaluated() -> None:
    """If .sync returns a Stopped job (MaxRuntimeExceeded) instead of failing the task, Evaluate is skipped."""
    class Stopped(FakeServices):
        def __call__(self, resource: str, parameters: Any, ctx: TaskContext) -> Any:
            out = super().__call__(resource, parameters, ctx)
            if ctx.state_name == "Train":
                out.update(TrainingJobStatus="Stopped", SecondaryStatus="MaxRuntimeExceeded")
            return out

    services = Stopped()
    result = run_pipeline(services)
    assert result.states == ["Trials", "RegisterTrial", "ReuseOrTrain", "Train", "TrainingCompleted",
                             "TrainingNotCompleted", "RecordFailure", *FAILED_AFTER]
    calls = {state: params for state, _, params in services.calls}
    assert calls["RecordFailure"]["Payload"]["run"]["error"] == {
        "Error": "TrainingJobNotCompleted",
        "Cause": "training job cats-run-1-train ended Stopped (MaxRuntimeExceeded): its model is not evaluated",
    }
