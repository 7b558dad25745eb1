"""On AWS the running state's progress comes from the job's describe output: SageMaker's secondary status,
its last status message and the metrics the MetricDefinitions have extracted so far."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from nyanops.backends.aws import AwsBackend
from nyanops.execution_view import StateView


class StubSageMaker:
    def describe_training_job(self, TrainingJobName: str) -> dict[str, Any]:
        if TrainingJobName == "missing":
            raise ClientError({"Error": {"Code": "ValidationException", "Message": "not found"}}, "Describe")
        return {
            "TrainingJobStatus": "InProgress",
            "SecondaryStatus": "Training",
            "SecondaryStatusTransitions": [
                {"Status": "Starting", "StatusMessage": "Preparing the instances for training"},
                {"Status": "Training", "StatusMessage": "Training image download completed. Training in progress."},
            ],
            "FinalMetricDataList": [{"MetricName": "validation:accuracy", "Value": 0.8125},
                                    {"MetricName": "train:loss", "Value": 0.41234}],
        }

    def describe_processing_job(self, ProcessingJobName: str) -> dict[str, Any]:
        return {"ProcessingJobStatus": "InProgress"}


def backend() -> AwsBackend:
    b = AwsBackend("bucket", region="us-east-1")
    b._clients["sagemaker"] = StubSageMaker()
    return b


def test_training_job_progress_from_its_describe_output() -> None:
    state = StateView("Train", "Task", parameters={"TrainingJobName": "job"})
    assert backend().job_progress(state) == (
        "Training | Training image download completed. Training in progress. | "
        "validation:accuracy 0.8125, train:loss 0.4123")


def test_processing_job_and_a_job_not_created_yet() -> None:
    assert backend().job_progress(StateView("Evaluate", "Task", parameters={"ProcessingJobName": "j"})) == "InProgress"
    assert backend().job_progress(StateView("Train", "Task", parameters={"TrainingJobName": "missing"})) is None
    assert backend().job_progress(StateView("RecordResults", "Task", parameters={"FunctionName": "f"})) is None
