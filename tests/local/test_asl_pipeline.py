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
RUN_INPUT: dict[str, Any] = {
    "execution_name": "run-1",
    "experiment": "cats",
    "trial": "cats-run-1",
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
    "dataset": {
        "train_s3_uri": "s3://bucket/d/train/",
        "val_s3_uri": "s3://bucket/d/val/",
        "test_s3_uri": "s3://bucket/d/test/",
    },
    "code": {"source_s3_uri": "s3://bucket/code/"},
    "retries": {"train": {"count": 0}, "evaluate": {"count": 0}, "champion": {"count": 0}},
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


class FakeServices:
    """Canned results shaped like the real integrations; ``failures`` maps a state to errors to raise first."""

    def __init__(self, failures: dict[str, list[Exception]] | None = None) -> None:
        self.failures = failures or {}
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
            return {
                "StatusCode": 200,
                "ExecutedVersion": "$LATEST",
                "Payload": {"mode": mode, "subject": f"nyanops: {mode}", "message": f"trial {mode}"},
            }
        if resource == "arn:aws:states:::sns:publish":
            return {"MessageId": "m-1"}
        raise AssertionError(f"unexpected resource {resource}")


SUCCESS = ["RegisterTrial", "Train", "TrainingCompleted", "Evaluate", "RecordResults", "ChampionToRescore", "Notify",
           "Done"]


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
    assert output["results"]["training"] == {
        "job_name": "cats-run-1-train",
        "status": "Completed",
        "secondary_status": "Completed",
        "model_artifacts": "s3://bucket/output/cats-run-1-train/output/model.tar.gz",
    }
    assert output["results"]["evaluation"] == {"job_name": "cats-run-1-eval", "status": "Completed"}
    assert output["results"]["record"] == {
        "trial": {"mode": "succeeded", "subject": "nyanops: succeeded", "message": "trial succeeded"}
    }
    assert {k: v for k, v in output.items() if k != "results"} == RUN_INPUT

    by_state = {state: params for state, _, params in services.calls}
    assert by_state["RegisterTrial"] == {
        "FunctionName": SUBSTITUTIONS["RecordResultsFunctionArn"],
        "Payload": {"mode": "started", "run": RUN_INPUT,
                    "execution_arn": "arn:aws:states:local:000000000000:execution:training_pipeline:run-1"},
    }
    train = by_state["Train"]
    assert train["TrainingJobName"] == "cats-run-1-train"
    assert train["RoleArn"] == SUBSTITUTIONS["SageMakerRoleArn"]
    assert train["ResourceConfig"] == RUN_INPUT["training"]["resource_config"]
    assert train["OutputDataConfig"] == {"S3OutputPath": "s3://bucket/output/"}
    assert train["InputDataConfig"][1]["DataSource"]["S3DataSource"]["S3Uri"] == "s3://bucket/d/val/"
    assert train["Tags"] == [
        {"Key": "nyanops:experiment", "Value": "cats"},
        {"Key": "nyanops:execution", "Value": "run-1"},
    ]
    evaluate = by_state["Evaluate"]
    assert evaluate["ProcessingResources"] == {"ClusterConfig": RUN_INPUT["evaluation"]["cluster_config"]}
    assert evaluate["AppSpecification"]["ContainerArguments"] == ["--expected-test-hash", "3" * 64]
    assert evaluate["ProcessingOutputConfig"] == RUN_INPUT["evaluation"]["output_config"]
    assert evaluate["ProcessingInputs"][1]["S3Input"]["S3Uri"].endswith("model.tar.gz")
    assert by_state["Notify"] == {
        "TopicArn": SUBSTITUTIONS["ResultsTopicArn"],
        "Subject": "nyanops: succeeded",
        "Message": "trial succeeded",
    }


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
    assert result.states == ["RegisterTrial", "Train", "RecordFailure", "NotifyFailure", "PipelineFailed"]
    assert (result.status, result.error) == ("FAILED", "PipelineFailed")
    calls = {state: params for state, _, params in services.calls}
    assert calls["RecordFailure"]["Payload"]["run"]["error"] == {
        "Error": "States.TaskFailed",
        "Cause": "AlgorithmError: boom",
    }
    # NotifyFailure sends RecordFailure's summary, not the raw error.
    assert calls["NotifyFailure"]["Message"] == "trial failed"
    assert calls["NotifyFailure"]["Subject"] == "nyanops: failed"


def test_failure_that_cannot_be_recorded_is_still_notified() -> None:
    services = FakeServices(
        {
            "Train": [TaskFailed("States.TaskFailed", "AlgorithmError: boom")],
            "RecordFailure": [TaskFailed("ValueError", "store down")],
        }
    )
    result = run_pipeline(services)
    assert result.states == [
        "RegisterTrial", "Train", "RecordFailure", "NotifyUnrecordedFailure", "PipelineFailed"
    ]
    calls = {state: params for state, _, params in services.calls}
    assert calls["NotifyUnrecordedFailure"]["Message"] == (
        "Run run-1 of experiment cats failed and the failure could not be recorded. "
        "Error: States.TaskFailed: AlgorithmError: boom. Recording error: ValueError: store down"
    )


def test_notification_failure_still_succeeds() -> None:
    services = FakeServices({"Notify": [TaskFailed("SNS.NotFound", "no topic")] * 4})
    result = run_pipeline(services)
    assert result.status == "SUCCEEDED"
    assert result.states[-2:] == ["Notify", "NotificationNotSent"]
    assert result.output["notification_error"] == {"Error": "SNS.NotFound", "Cause": "no topic"}


def test_sagemaker_throttling_is_told_from_validation_by_its_cause() -> None:
    """Both arrive as SageMaker.AmazonSageMakerException; the AWS SDK's cause names the error code."""

    def api_error(code: str) -> TaskFailed:
        cause = f"Rate exceeded (Service: AmazonSageMaker; Status Code: 400; Error Code: {code}; Request ID: x)"
        return TaskFailed("SageMaker.AmazonSageMakerException", cause)

    delays: list[float] = []
    throttled = run_pipeline(FakeServices({"Train": [api_error("ThrottlingException")] * 2}), delays)
    assert throttled.status == "SUCCEEDED" and delays == [30, 60]
    assert throttled.states[:9] == ["RegisterTrial", "Train", "TrainApiError", "TrainBackoff", "TrainWait", "Train",
                                    "TrainApiError", "TrainBackoff", "TrainWait"]
    refused = run_pipeline(FakeServices({"Train": [api_error("ValidationException")]}))
    assert refused.states == ["RegisterTrial", "Train", "TrainApiError", "SageMakerApiFailed", "RecordFailure",
                              "NotifyFailure", "PipelineFailed"]


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
    assert result.states == ["RegisterTrial", "Train", "TrainingCompleted", "TrainingNotCompleted", "RecordFailure",
                             "NotifyFailure", "PipelineFailed"]
    calls = {state: params for state, _, params in services.calls}
    assert calls["RecordFailure"]["Payload"]["run"]["error"] == {
        "Error": "TrainingJobNotCompleted",
        "Cause": "training job cats-run-1-train ended Stopped (MaxRuntimeExceeded): its model is not evaluated",
    }
