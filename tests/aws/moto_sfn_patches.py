"""Test-only patches so moto's Step Functions engine runs ``statemachine/training_pipeline.asl.json``.

moto 5.x executes state machines (``execute_state_machine``) with LocalStack's ASL interpreter, but
 * ``arn:aws:states:::sagemaker:*.sync`` is listed as unsupported (moto forwards only
   ``.waitForTaskToken`` for SageMaker, and its ``.sync`` path would raise), and
 * ``arn:aws:states:::lambda:invoke`` calls moto's Lambda, which runs code in Docker.

``patched_engine`` swaps in
 * a SageMaker ``.sync`` task that validates the request the state machine built against botocore's
   own service model (a malformed request fails the task and is recorded in ``FakeSageMaker.request_errors``),
   checks the trial named in ``ExperimentConfig`` exists (as SageMaker does), registers the job in moto's
   SageMaker backend (a processing job with its start and end times, as DescribeProcessingJob reports
   them), writes the job's outputs (a fake ``model.tar.gz``; a valid ``evaluation.json`` naming the
   execution and job its ``Environment`` gives, as evaluation.py does) into moto S3 where the request
   asks, and returns the Describe* response like the real integration; the evaluation and the champion's
   re-scoring (``<execution>-champN``) are both processing jobs; and
 * an in-process ``lambda:invoke`` for registered function ARNs (the real handler modules), returning
   a Lambda-shaped response, with ``FunctionError: Unhandled`` and ``errorType`` when the handler raises.
Product code never imports this module.
"""

from __future__ import annotations

import io
import json
import tarfile
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from unittest import mock

import boto3
import botocore.session
from botocore.exceptions import ClientError
from botocore.validate import ParamValidator
from moto.sagemaker.models import sagemaker_backends
from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import StatesErrorNameType
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils, state_task_factory
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import ResourceCondition
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
    StateTaskServiceCallback,
)
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

from nyanops.core import evaluation_report

from .evaluation_docs import CLASSES, evaluation_doc

_SAGEMAKER = botocore.session.get_session().get_service_model("sagemaker")
_ACCOUNT = "123456789012"
# ASL action name → (botocore operation, describe operation, name parameter)
_ACTIONS = {
    "createTrainingJob": ("CreateTrainingJob", "describe_training_job", "TrainingJobName"),
    "createProcessingJob": ("CreateProcessingJob", "describe_processing_job", "ProcessingJobName"),
}


def request_errors(operation: str, params: dict[str, Any]) -> list[str]:
    """botocore's client-side validation of ``params`` for a SageMaker operation: [] when valid.

    The ASL's SageMaker Parameters use the API member names verbatim (``TrainingJobName``...), so
    they are validated as written; no key conversion is applied that could hide a misspelling.
    """
    report = ParamValidator().validate(params, _SAGEMAKER.operation_model(operation).input_shape)
    return report.generate_report().splitlines() if report.has_errors() else []


class InvalidSageMakerRequest(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class FakeSageMaker:
    """What the fake jobs do. ``fail_training(request)`` returns a FailureReason to fail a job;
    ``wrong(request)`` how many of the test images a processing job (evaluation or champion re-scoring)
    misclassifies, out of ``support`` per class of ``class_names`` (all get the create request);
    ``fail_processing(request)`` an ExitMessage to fail a processing job."""

    region: str = "us-east-1"
    class_names: tuple[str, ...] = CLASSES
    support: int = 2
    fail_training: Callable[[dict[str, Any]], str | None] = lambda request: None
    wrong: Callable[[dict[str, Any]], int] = lambda request: 1
    fail_processing: Callable[[dict[str, Any]], str | None] = lambda request: None
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    request_errors: list[str] = field(default_factory=list)
    _outcomes: dict[str, tuple[str, str]] = field(default_factory=dict)

    def submit(self, action: str, params: dict[str, Any]) -> dict[str, Any]:
        operation, _, name_key = _ACTIONS[action]
        self.requests.append((operation, params))
        errors = request_errors(operation, params)
        if errors:
            self.request_errors += [f"{operation}: {e}" for e in errors]
            raise InvalidSageMakerRequest("ValidationException", "; ".join(errors))
        sm = boto3.client("sagemaker", region_name=self.region)
        trial = (params.get("ExperimentConfig") or {}).get("TrialName")
        if trial:
            try:
                sm.describe_trial(TrialName=trial)
            except ClientError:
                raise InvalidSageMakerRequest("ValidationException", f"Trial {trial} does not exist") from None
        name = params[name_key]
        if action == "createTrainingJob":
            arn = sm.create_training_job(**params)["TrainingJobArn"]
            reason = self.fail_training(params)
            if reason:
                self._outcomes[name] = ("Failed", reason)
            else:
                self._outcomes[name] = ("Completed", "")
                self._put(self.model_uri(params), _fake_model())
            return {"TrainingJobArn": arn}
        started = datetime.now(UTC).replace(tzinfo=None)
        arn = sm.create_processing_job(**{k: v for k, v in params.items() if k != "Environment"})["ProcessingJobArn"]
        job = sagemaker_backends[_ACCOUNT][self.region].processing_jobs[name]
        job.processing_start_time = started
        failure = self.fail_processing(params)
        if failure:
            job.processing_job_status = "Failed"
            job.exit_message = failure
            job.failure_reason = "AlgorithmError: See job logs for more information"
            self._outcomes[name] = ("Failed", "AlgorithmError: See job logs for more information")
            return {"ProcessingJobArn": arn}
        out = next(o for o in params["ProcessingOutputConfig"]["Outputs"] if o["OutputName"] == "evaluation")
        identity = evaluation_report.job_from_environment(params.get("Environment") or {})
        doc = evaluation_doc(self.wrong(params), self.class_names, self.support, job=identity,
                             hyperparameters=self._trained_with(params))
        self._put(out["S3Output"]["S3Uri"].rstrip("/") + "/evaluation.json", json.dumps(doc).encode())
        job.processing_end_time = datetime.now(UTC).replace(tzinfo=None)
        self._outcomes[name] = ("Completed", "")
        return {"ProcessingJobArn": arn}

    def _trained_with(self, processing: dict[str, Any]) -> dict[str, Any] | None:
        """The hyperparameters of the training job whose model this processing job reads (what evaluation.py
        reports from the model's metadata), as train.py gets them; None when no such job ran here."""
        model = next((i["S3Input"]["S3Uri"] for i in processing.get("ProcessingInputs") or []
                      if i.get("InputName") == "model"), None)
        for operation, request in reversed(self.requests):
            if operation == "CreateTrainingJob" and self.model_uri(request) == model:
                return {k: v for k, v in (request.get("HyperParameters") or {}).items()
                        if not k.startswith(("sagemaker_", "expected-"))}
        return None

    def describe(self, action: str, params: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
        """(succeeded, the Describe* response as Step Functions returns it: JSON, times in epoch ms)."""
        _, describe, name_key = _ACTIONS[action]
        name = params[name_key]
        described = getattr(boto3.client("sagemaker", region_name=self.region), describe)(**{name_key: name})
        described.pop("ResponseMetadata", None)
        status, reason = self._outcomes[name]
        if action == "createTrainingJob":
            described["TrainingJobStatus"] = status
            described["SecondaryStatus"] = status
            described["HyperParameters"] = params.get("HyperParameters", {})
            if status == "Completed":
                described["ModelArtifacts"] = {"S3ModelArtifacts": self.model_uri(params)}
            else:
                described.pop("ModelArtifacts", None)
        else:
            described["ProcessingJobStatus"] = status
            if status != "Completed":
                described["ExitMessage"] = getattr(
                    sagemaker_backends[_ACCOUNT][self.region].processing_jobs[name], "exit_message", "")
        if reason:
            described["FailureReason"] = reason
        return status == "Completed", json.loads(json.dumps(described, default=_json_default))

    @staticmethod
    def model_uri(params: dict[str, Any]) -> str:
        base = params["OutputDataConfig"]["S3OutputPath"].rstrip("/")
        return f"{base}/{params['TrainingJobName']}/output/model.tar.gz"

    def _put(self, uri: str, body: bytes) -> None:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        boto3.client("s3", region_name=self.region).put_object(Bucket=bucket, Key=key, Body=body)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    return str(value)


def _fake_model() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = b"not really a state_dict"
        info = tarfile.TarInfo("model.pth")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


_active: FakeSageMaker | None = None


class SageMakerSyncTask(StateTaskServiceCallback):
    """``arn:aws:states:::sagemaker:create{Training,Processing}Job.sync`` backed by ``FakeSageMaker``."""

    def __init__(self) -> None:
        super().__init__(supported_integration_patterns={ResourceCondition.Sync})

    def _validate_service_integration_is_supported(self) -> None:
        if self.resource.api_action not in _ACTIONS or self.resource.condition != ResourceCondition.Sync:
            raise ValueError(f"the patch supports only {sorted(_ACTIONS)} with .sync: {self.resource.resource_arn}")

    def _eval_service_task(self, env: Any, resource_runtime_part: Any, normalised_parameters: dict,
                           state_credentials: Any) -> None:
        assert _active is not None, "SageMaker task outside patched_engine()"
        env.stack.append(_active.submit(self.resource.api_action, normalised_parameters))

    def _eval_integration_pattern(self, env: Any, resource_runtime_part: Any, normalised_parameters: dict,
                                  state_credentials: Any) -> None:
        # The job "ran" when it was submitted: one describe replaces the engine's polling loop.
        assert _active is not None
        env.stack.pop()
        ok, described = _active.describe(self.resource.api_action, normalised_parameters)
        if not ok:
            raise FailureEventException(
                FailureEvent(
                    env=env,
                    error_name=StatesErrorName(typ=StatesErrorNameType.StatesTaskFailed),
                    event_type=HistoryEventType.TaskFailed,
                    event_details=EventDetails(
                        taskFailedEventDetails=TaskFailedEventDetails(
                            resource=self._get_sfn_resource(),
                            resourceType=self._get_sfn_resource_type(),
                            error=StatesErrorNameType.StatesTaskFailed.to_name(),
                            cause=to_json_str(described),
                        )
                    ),
                )
            )
        env.stack.append(described)

    def _from_error(self, env: Any, ex: Exception) -> FailureEvent:
        if isinstance(ex, InvalidSageMakerRequest | ClientError):
            code = ex.code if isinstance(ex, InvalidSageMakerRequest) else ex.response["Error"]["Code"]
            error = f"SageMaker.{code}"
            return FailureEvent(
                env=env,
                error_name=CustomErrorName(error),
                event_type=HistoryEventType.TaskFailed,
                event_details=EventDetails(
                    taskFailedEventDetails=TaskFailedEventDetails(
                        error=error, cause=str(ex), resource=self._get_sfn_resource(),
                        resourceType=self._get_sfn_resource_type(),
                    )
                ),
            )
        return super()._from_error(env=env, ex=ex)


@contextmanager
def patched_engine(fake: FakeSageMaker, functions: dict[str, Callable[[dict[str, Any]], Any]]) -> Iterator[None]:
    """Within the block, moto's engine runs SageMaker ``.sync`` tasks on ``fake`` and invokes the
    Lambda function ARNs in ``functions`` in-process (``handler(event) -> result``)."""
    global _active
    original_service_for = state_task_factory.state_task_service_for
    original_invoke = lambda_eval_utils._invoke_lambda_function

    def service_for(service_name: str) -> Any:
        return SageMakerSyncTask() if service_name == "sagemaker" else original_service_for(service_name)

    def invoke(parameters: dict, region: str, state_credentials: Any) -> dict[str, Any]:
        handler = functions.get(parameters.get("FunctionName", ""))
        if handler is None:
            return original_invoke(parameters, region, state_credentials)
        event = json.loads(parameters.get("Payload") or b"{}")
        try:
            result = handler(event)
        except Exception as exc:  # what Lambda reports for an unhandled exception
            return {
                "StatusCode": 200,
                "FunctionError": "Unhandled",
                "ExecutedVersion": "$LATEST",
                "Payload": {
                    "errorType": type(exc).__name__,
                    "errorMessage": str(exc),
                    "requestId": str(uuid.uuid4()),
                    "stackTrace": traceback.format_tb(exc.__traceback__),
                },
            }
        return {"StatusCode": 200, "ExecutedVersion": "$LATEST", "Payload": json.loads(json.dumps(result))}

    with ExitStack() as stack:
        stack.enter_context(mock.patch.object(state_task_factory, "state_task_service_for", service_for))
        stack.enter_context(mock.patch.object(lambda_eval_utils, "_invoke_lambda_function", invoke))
        _active = fake
        try:
            yield
        finally:
            _active = None
