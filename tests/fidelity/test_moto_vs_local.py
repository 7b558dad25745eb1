"""Fidelity: ``statemachine/training_pipeline.asl.json`` run by moto's Step Functions engine (LocalStack's
ASL interpreter) and by the local executor (``nyanops.local.asl``) with the same scripted task results.

Each scenario is one table: for each Task state, the outcome of each attempt in order (a result dict, a
``Fail(error, cause)`` reported by the integration, or a Lambda ``FunctionError``). Both engines are served
from that table:
 * in moto, the SageMaker ``.sync``, ``sns:publish`` and ``lambda:invoke`` integrations are swapped for
   scripted ones (the Lambda one answers through moto's own ``lambda:invoke`` code, so a function error
   surfaces as moto surfaces it: error = errorType, cause = the error payload);
 * locally, a TaskRunner serves it.
The two executions must agree on every state entered, each state's input and output, the Parameters each
Task was called with, each task result or error, the retries, and the final status, output, error and cause.
Retry delays are recorded instead of slept, and checked against each retrier's bounds.
"""

from __future__ import annotations

import calendar
import copy
import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock

import boto3
import pytest
from botocore.session import get_session
from botocore.validate import ParamValidator
from moto import mock_aws
from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.error_name import ErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEvent
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import StatesErrorNameType
from moto.stepfunctions.parser.asl.component.common.retry import jitter_strategy_decl, retrier_decl
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils, state_task_factory
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import ResourceCondition
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
    StateTaskServiceCallback,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_lambda import (
    StateTaskServiceLambda,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sns import (
    StateTaskServiceSns,
)
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from pytest_socket import disable_socket, enable_socket

from nyanops.local.asl import ExecutionResult, TaskContext, TaskFailed, apply_substitutions, load_state_machine

ASL_FILE = Path(__file__).resolve().parents[2] / "statemachine" / "training_pipeline.asl.json"
REGION = "us-east-1"
ACCOUNT = "123456789012"
EXECUTION = "cats-20261128T064300Z-epochs10"
RECORD_RESULTS_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:nyanops-RecordResults"
TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:nyanops-results"
SUBSTITUTIONS = {
    "RecordResultsFunctionArn": RECORD_RESULTS_ARN,
    "SageMakerRoleArn": f"arn:aws:iam::{ACCOUNT}:role/nyanops-sagemaker",
    "TrainingImage": f"763104351884.dkr.ecr.{REGION}.amazonaws.com/pytorch:2.14-cu133-amzn2023-sagemaker",
    "ProcessingImage": f"763104351884.dkr.ecr.{REGION}.amazonaws.com/pytorch:2.14-cpu-amzn2023-sagemaker",
    "ResultsTopicArn": TOPIC_ARN,
}
# One definition, substituted once, for both engines.
DEFINITION = apply_substitutions(json.loads(ASL_FILE.read_text()), SUBSTITUTIONS)

BUCKET = "s3://nyanops-example-bucket"
# The scenarios run with the optional KMS key set (the key-bearing configs are passed through whole).
KMS_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
TRAIN_JOB = f"{EXECUTION}-train"
EVAL_JOB = f"{EXECUTION}-eval"
# The run's one trial (the Map's one item) and what the trials share (the execution input's v2 shape).
TRIAL_ITEM: dict[str, Any] = {
    "trial": EXECUTION,
    "index": 0,
    "hyperparameters": {"epochs": 10, "batch-size": 8, "lr": 0.01, "augment": True},
    "training": {
        "job_name": TRAIN_JOB,
        "hyperparameters": {"epochs": "10", "batch-size": "8", "lr": "0.01", "augment": "true"},
        "output_s3_uri": f"{BUCKET}/training-output/",
        "checkpoint_s3_uri": f"{BUCKET}/checkpoints/{EXECUTION}/",
        "stopping_condition": {"MaxRuntimeInSeconds": 86400, "MaxWaitTimeInSeconds": 172800},
        "use_spot": True,
        "output_data_config": {"S3OutputPath": f"{BUCKET}/training-output/", "KmsKeyId": KMS_KEY},
        "resource_config": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30,
                            "VolumeKmsKeyId": KMS_KEY},
    },
    "evaluation": {
        "job_name": EVAL_JOB,
        "output_s3_uri": f"{BUCKET}/evaluations/{EXECUTION}/",
        "container_arguments": ["--expected-test-hash", "3" * 64],
        "stopping_condition": {"MaxRuntimeInSeconds": 3600},
        "output_config": {
            "Outputs": [{"OutputName": "evaluation", "S3Output": {
                "S3Uri": f"{BUCKET}/evaluations/{EXECUTION}/", "LocalPath": "/opt/ml/processing/evaluation",
                "S3UploadMode": "EndOfJob"}}],
            "KmsKeyId": KMS_KEY,
        },
        "cluster_config": {"InstanceCount": 1, "InstanceType": "ml.g4dn.xlarge", "VolumeSizeInGB": 30},
    },
}
SHARED: dict[str, Any] = {
    "input_version": 2,
    "execution_name": EXECUTION,
    "experiment": "cats",
    "comment": "epochs 10",
    "force": False,
    "primary_metric": "macro_f1",
    "best_model_tolerance": 0.005,
    "source": {"kind": "manifest", "bucket": "nyanops-example-bucket", "key": "manifests/epochs10.json"},
    "dataset": {
        "id": "2026-11-28T064300Z",
        "train_s3_uri": f"{BUCKET}/datasets/2026-11-28T064300Z/train/",
        "val_s3_uri": f"{BUCKET}/datasets/2026-11-28T064300Z/val/",
        "test_s3_uri": f"{BUCKET}/datasets/2026-11-28T064300Z/test/",
    },
    "code": {"source_s3_uri": f"{BUCKET}/code/0123abcd/sourcedir.tar.gz"},
    "retries": {"train": {"count": 0}, "evaluate": {"count": 0}, "champion": {"count": 0}},
}
RUN_INPUT: dict[str, Any] = {**SHARED, "max_concurrency": 1, "trials": [TRIAL_ITEM]}
# The state the trial's states get: the Map's ItemSelector output (nyanops.core.execution_input.trial_run).
RUN: dict[str, Any] = {**SHARED, **TRIAL_ITEM}

LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"


# -- the scripted outcomes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fail:
    """The integration reports this error and cause, verbatim (a SageMaker API error, a failed job, an SNS
    error)."""

    error: str
    cause: str


@dataclass(frozen=True)
class FunctionError:
    """The Lambda function raised: ``lambda:invoke`` answers ``FunctionError: Unhandled`` with this payload."""

    error_type: str
    message: str

    def payload(self) -> dict[str, Any]:
        return {"errorType": self.error_type, "errorMessage": self.message}


Outcome = dict[str, Any] | Fail | FunctionError


Key = Callable[[str, Any], str]


class Script:
    """A scenario's outcomes, per key and attempt; records the calls, and any call with no outcome left.

    The key is the state's name, or what ``key(state, parameters)`` makes of it: a Map runs the same state for
    several items at once, so its outcomes are keyed by state and item, whatever order the calls come in.
    """

    def __init__(self, outcomes: dict[str, list[Outcome]], key: Key | None = None) -> None:
        self.pending = {state: list(items) for state, items in outcomes.items()}
        self.calls: list[tuple[str, str, Any]] = []
        self.problems: list[str] = []
        self.key = key or (lambda state, parameters: state)
        self.lock = threading.Lock()

    def next(self, state: str, resource: str, parameters: Any) -> Outcome:
        key = self.key(state, parameters)
        with self.lock:
            self.calls.append((key, resource, copy.deepcopy(parameters)))
            items = self.pending.get(key)
            if not items:
                self.problems.append(f"{key}: no scripted outcome left for attempt {self.attempts(key)}")
                return Fail("Scripted.NoOutcome", key)
            return items.pop(0)

    def attempts(self, state: str) -> int:
        return sum(1 for name, _, _ in self.calls if name == state)

    def unused(self) -> dict[str, list[Outcome]]:
        return {state: items for state, items in self.pending.items() if items}


def invoked(payload: dict[str, Any]) -> dict[str, Any]:
    """A successful ``lambda:invoke`` result."""
    return {"StatusCode": 200, "ExecutedVersion": "$LATEST", "Payload": payload}


def _ms(text: str) -> int:
    """An epoch-milliseconds timestamp, as Step Functions renders SageMaker's datetimes."""
    return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%S")) * 1000


def training_job(status: str = "Completed", failure_reason: str | None = None) -> dict[str, Any]:
    """The DescribeTrainingJob response the ``.sync`` integration returns (or reports as the Cause)."""
    described: dict[str, Any] = {
        "TrainingJobName": TRAIN_JOB,
        "TrainingJobArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/{TRAIN_JOB}",
        "TrainingJobStatus": status,
        "SecondaryStatus": "MaxRuntimeExceeded" if status == "Stopped" else status,
        "HyperParameters": RUN["training"]["hyperparameters"],
        "AlgorithmSpecification": {"TrainingImage": SUBSTITUTIONS["TrainingImage"], "TrainingInputMode": "File"},
        "RoleArn": SUBSTITUTIONS["SageMakerRoleArn"],
        "ResourceConfig": RUN["training"]["resource_config"],
        "EnableManagedSpotTraining": True,
        "CreationTime": _ms("2026-11-28T06:43:05"),
        "TrainingStartTime": _ms("2026-11-28T06:45:00"),
        "TrainingEndTime": _ms("2026-11-28T07:15:00"),
        "BillableTimeInSeconds": 1200,
    }
    # DescribeTrainingJob always has ModelArtifacts (a required member), whatever the status.
    described["ModelArtifacts"] = {"S3ModelArtifacts": f"{BUCKET}/training-output/{TRAIN_JOB}/output/model.tar.gz"}
    if status == "Completed":
        described["FinalMetricDataList"] = [
            {"MetricName": "validation:accuracy", "Value": 0.91, "Timestamp": _ms("2026-11-28T07:14:00")}
        ]
    if failure_reason:
        described["FailureReason"] = failure_reason
    return described


def processing_job(name: str = EVAL_JOB) -> dict[str, Any]:
    """The DescribeProcessingJob response of a completed evaluation."""
    return {
        "ProcessingJobName": name,
        "ProcessingJobArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:processing-job/{name}",
        "ProcessingJobStatus": "Completed",
        "ProcessingOutputConfig": RUN["evaluation"]["output_config"],
        "CreationTime": _ms("2026-11-28T07:16:00"),
        "ProcessingEndTime": _ms("2026-11-28T07:20:00"),
    }


FAILURE_REASON = "AlgorithmError: ExecuteUserScriptError: RuntimeError: CUDA out of memory, exit code: 1"
FAILED_TRAINING_CAUSE = json.dumps(training_job("Failed", FAILURE_REASON))
REGISTERED = invoked({"trial": EXECUTION, "status": "InProgress", "reused_from": ""})
RECORDED = invoked({"trial": EXECUTION, "macro_f1": 0.91, "best": True, "subject": "nyanops: cats trial succeeded",
                    "message": f"{EXECUTION}: macro F1 0.910 (new best)", "registry": ""})
RECORDED_FAILED = invoked({"trial": EXECUTION, "subject": "nyanops: cats trial failed",
                           "message": f"{EXECUTION} failed: {FAILURE_REASON}"})
PUBLISHED = {"MessageId": "5d8e8b0a-7e36-5a9c-9b1f-0123456789ab"}
# What Step Functions reports for SageMaker's throttling and its validation errors alike: the generic
# exception name, the error code in the AWS SDK's cause.
THROTTLED = Fail("SageMaker.AmazonSageMakerException",
                 "Rate exceeded (Service: AmazonSageMaker; Status Code: 400; Error Code: ThrottlingException; "
                 "Request ID: 4d2b3c1a-0000-4000-8000-000000000000; Proxy: null)")
INVALID = Fail("SageMaker.AmazonSageMakerException",
               "1 validation error detected: Value 'ml.x9.huge' at 'resourceConfig.instanceType' failed to satisfy "
               "constraint (Service: AmazonSageMaker; Status Code: 400; Error Code: ValidationException; "
               "Request ID: 5e3c4d2b-0000-4000-8000-000000000000; Proxy: null)")
NO_CAPACITY = Fail("SageMaker.ResourceLimitExceededException",
                   "The account-level service limit 'ml.m5.large for spot training job usage' is 2 Instances")
SNS_DOWN = Fail("SNS.InternalErrorException",
                "Internal error (Service: AmazonSNS; Status Code: 500; Error Code: InternalError)")

# The comparison after the Map, and what it notifies (every trial and the best; completed: how many trials did).
SUMMARIZED = invoked({"execution": EXECUTION, "completed": 1, "best_trial": EXECUTION,
                      "subject": "nyanops: cats macro_f1 0.910 (new best)",
                      "message": f"Run {EXECUTION} of experiment cats: 1 trial: 1 trained, 0 reused, 0 failed."})
SUMMARIZED_FAILED = invoked({"execution": EXECUTION, "completed": 0, "best_trial": "",
                             "subject": "nyanops: cats run failed",
                             "message": f"Run {EXECUTION} of experiment cats: 1 trial: 0 trained, 0 reused, 1 failed."})
START = ["Trials", "RegisterTrial", "ReuseOrTrain"]
AFTER_SUCCESS = ["TrialCompleted", "Summarize", "Notify", "SweepOutcome", "Done"]
AFTER_FAILURE = ["RecordFailure", "TrialFailed", "Summarize", "Notify", "SweepOutcome", "PipelineFailed"]
SUCCESS_STATES = [*START, "Train", "TrainingCompleted", "Evaluate", "RecordResults", "ChampionToRescore",
                  *AFTER_SUCCESS]
CAUGHT_STATES = [*START, "Train", *AFTER_FAILURE]
PIPELINE_FAILED_CAUSE = DEFINITION["States"]["PipelineFailed"]["Cause"]


CHAMPION_JOB = f"{EXECUTION}-champ1"
EXECUTION_ARN = f"arn:aws:states:{REGION}:{ACCOUNT}:execution:nyanops-training-pipeline:{EXECUTION}"
RESCORE = {"champion": "m-old-0000000000000001", "attempt": 1, "job_name": CHAMPION_JOB,
           "model_artifacts": f"{BUCKET}/runs/m-old-0000000000000001/model/m-old-0000000000000001-train/output/"
                              "model.tar.gz",
           "output_s3_uri": f"{BUCKET}/runs/{EXECUTION}/champion-1/",
           "output_config": {**RUN["evaluation"]["output_config"], "Outputs": [
               {"OutputName": "evaluation", "S3Output": {"S3Uri": f"{BUCKET}/runs/{EXECUTION}/champion-1/",
                                                         "LocalPath": "/opt/ml/processing/evaluation",
                                                         "S3UploadMode": "EndOfJob"}}]}}
RECORDED_PENDING = invoked({"trial": EXECUTION, "verdict": "rescore", "rescore": RESCORE})
RECORDED_KEPT = invoked({"trial": EXECUTION, "verdict": "kept", "subject": "nyanops: cats macro_f1 0.950",
                         "message": f"{EXECUTION}: best remains m-old-0000000000000001", "registry": ""})


def retrier(state: str) -> dict[str, Any]:
    """The state's first retrier: the one the scripted throttling / capacity / busy errors match."""
    states = {**DEFINITION["States"], **DEFINITION["States"]["Trials"]["ItemProcessor"]["States"]}
    return states[state]["Retry"][0]


def delay_bound(state: str, retries_done: int) -> float:
    """The largest delay the state's first retrier allows before retry number ``retries_done + 1``."""
    r = retrier(state)
    return min(r["IntervalSeconds"] * r.get("BackoffRate", 2.0) ** retries_done, r.get("MaxDelaySeconds", 1e9))


# -- moto's engine, served from the script ------------------------------------------------------------------

_SAGEMAKER_MODEL = get_session().get_service_model("sagemaker")
_SAGEMAKER_OPERATIONS = {"createTrainingJob": "CreateTrainingJob", "createProcessingJob": "CreateProcessingJob"}


def _sagemaker_request_errors(action: str, params: dict[str, Any]) -> list[str]:
    """botocore's validation of the request the state machine built (both engines must build valid ones)."""
    shape = _SAGEMAKER_MODEL.operation_model(_SAGEMAKER_OPERATIONS[action]).input_shape
    report = ParamValidator().validate(params, shape)
    return report.generate_report().splitlines() if report.has_errors() else []


class ScriptedTaskError(Exception):
    def __init__(self, fail: Fail) -> None:
        super().__init__(f"{fail.error}: {fail.cause}")
        self.fail = fail


def _error_name(error: str) -> ErrorName:
    if error.startswith("States."):
        return StatesErrorName(typ=StatesErrorNameType.from_name(error))
    return CustomErrorName(error)


def _state_name(env: Any) -> str:
    return env.states.context_object.context_object_data["State"]["Name"]


class _ScriptedErrors:
    """``_from_error`` for the scripted integrations: the scripted error and cause, verbatim."""

    def _from_error(self, env: Any, ex: Exception) -> FailureEvent:
        if isinstance(ex, ScriptedTaskError):
            return FailureEvent(
                env=env,
                error_name=_error_name(ex.fail.error),
                event_type=HistoryEventType.TaskFailed,
                event_details=EventDetails(
                    taskFailedEventDetails=TaskFailedEventDetails(
                        error=ex.fail.error,
                        cause=ex.fail.cause,
                        resource=self._get_sfn_resource(),  # type: ignore[attr-defined]
                        resourceType=self._get_sfn_resource_type(),  # type: ignore[attr-defined]
                    )
                ),
            )
        return super()._from_error(env=env, ex=ex)  # type: ignore[misc]


class ScriptedSageMakerSync(_ScriptedErrors, StateTaskServiceCallback):
    """``sagemaker:create{Training,Processing}Job.sync``: an error not in the States. namespace fails the
    Create call (throttling, limits); the others (a failed job: States.TaskFailed) fail while "polling"."""

    script: Script

    def __init__(self) -> None:
        super().__init__(supported_integration_patterns={ResourceCondition.Sync})
        # Per thread: a Map runs this one state object for several items at once, each in a thread of its own.
        self._pending = threading.local()

    def _validate_service_integration_is_supported(self) -> None:
        if self.resource.api_action not in _SAGEMAKER_OPERATIONS or self.resource.condition != ResourceCondition.Sync:
            raise ValueError(f"not scripted: {self.resource.resource_arn}")

    def _eval_service_task(self, env: Any, resource_runtime_part: Any, normalised_parameters: dict,
                           state_credentials: Any) -> None:
        action = self.resource.api_action
        self.script.problems += _sagemaker_request_errors(action, normalised_parameters)
        outcome = self.script.next(_state_name(env), self.resource.resource_arn, normalised_parameters)
        if isinstance(outcome, Fail) and not outcome.error.startswith("States."):
            raise ScriptedTaskError(outcome)
        self._pending.outcome = outcome
        kind = action.removeprefix("create").removesuffix("Job")
        name = normalised_parameters[f"{kind}JobName"]
        slug = "training-job" if kind == "Training" else "processing-job"
        env.stack.append({f"{kind}JobArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:{slug}/{name}"})

    def _eval_integration_pattern(self, env: Any, resource_runtime_part: Any, normalised_parameters: dict,
                                  state_credentials: Any) -> None:
        env.stack.pop()  # the Create response; the job "ran" when it was created
        outcome, self._pending.outcome = self._pending.outcome, None
        if isinstance(outcome, Fail):
            raise ScriptedTaskError(outcome)
        assert isinstance(outcome, dict), outcome
        env.stack.append(copy.deepcopy(outcome))


class ScriptedSns(_ScriptedErrors, StateTaskServiceSns):
    script: Script

    def _eval_service_task(self, env: Any, resource_runtime_part: Any, normalised_parameters: dict,
                           state_credentials: Any) -> None:
        outcome = self.script.next(_state_name(env), self.resource.resource_arn, normalised_parameters)
        if isinstance(outcome, Fail):
            raise ScriptedTaskError(outcome)
        assert isinstance(outcome, dict), outcome
        env.stack.append(copy.deepcopy(outcome))


class ScriptedLambda(_ScriptedErrors, StateTaskServiceLambda):
    """``lambda:invoke`` through moto's own integration code; only the Lambda call itself is scripted."""

    script: Script
    current = threading.local()  # the calling state, per thread (a Map's iterations call at the same time)

    def _eval_service_task(self, env: Any, resource_runtime_part: Any, normalised_parameters: dict,
                           state_credentials: Any) -> None:
        ScriptedLambda.current.state = _state_name(env)
        super()._eval_service_task(env, resource_runtime_part, normalised_parameters, state_credentials)


def _scripted_invoke(parameters: dict, region: str, state_credentials: Any) -> dict[str, Any]:
    """Replaces moto's ``lambda_client.invoke``: the Lambda response for the scripted outcome."""
    request = {**parameters, "Payload": json.loads(parameters.get("Payload") or b"{}")}
    outcome = ScriptedLambda.script.next(ScriptedLambda.current.state, LAMBDA_INVOKE, request)
    if isinstance(outcome, FunctionError):
        return {"StatusCode": 200, "FunctionError": "Unhandled", "ExecutedVersion": "$LATEST",
                "Payload": outcome.payload()}
    if isinstance(outcome, Fail):
        raise ScriptedTaskError(outcome)
    return copy.deepcopy(outcome)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """moto with its state-machine engine on; the real ASL deployed (no other resource is needed: every
    integration is scripted)."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION}.items():
        monkeypatch.setenv(name, value)
    disable_socket(allow_unix_socket=False)
    config: Any = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
    original_service_for = state_task_factory.state_task_service_for
    scripted = {"sagemaker": ScriptedSageMakerSync, "sns": ScriptedSns, "lambda": ScriptedLambda}

    def service_for(service_name: str) -> Any:
        cls = scripted.get(service_name)
        return cls() if cls else original_service_for(service_name)

    try:
        with (
            mock.patch.object(state_task_factory, "state_task_service_for", service_for),
            mock.patch.object(lambda_eval_utils, "_invoke_lambda_function", _scripted_invoke),
            mock_aws(config=config),
        ):
            sfn = boto3.client("stepfunctions", region_name=REGION)
            arn = sfn.create_state_machine(name="nyanops-training-pipeline", definition=json.dumps(DEFINITION),
                                           roleArn=f"arn:aws:iam::{ACCOUNT}:role/nyanops-states")["stateMachineArn"]
            yield SimpleNamespace(sfn=sfn, state_machine_arn=arn)
    finally:
        enable_socket()


@dataclass
class Run:
    """One engine's execution, in engine-neutral terms."""

    status: str
    output: Any
    error: str | None
    cause: str | None
    trace: list[tuple[Any, ...]]
    delays: list[float]
    script: Script

    @property
    def states(self) -> list[str]:
        return [event[1] for event in self.trace if event[0].endswith("StateEntered")]


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _resource_arn(details: dict[str, Any]) -> str:
    """The Task's Resource: Step Functions' history splits it into resourceType ("sagemaker") and resource
    ("createTrainingJob.sync"); the local history keeps the Resource ARN."""
    return f"arn:aws:states:::{details['resourceType']}:{details['resource']}"


@dataclass(frozen=True)
class Machine:
    """What a scenario runs: a definition (deployed in moto under ``name``), its input, and how its scripted
    outcomes are keyed."""

    name: str
    definition: dict[str, Any]
    run_input: dict[str, Any]
    key: Key | None = None


PIPELINE = Machine("nyanops-training-pipeline", DEFINITION, RUN_INPUT)

# The Map events, in engine-neutral terms: (type, detail fields...).
_MAP_EVENT_DETAILS = {
    "MapStateStarted": ("mapStateStartedEventDetails", ("length",)),
    "MapIterationStarted": ("mapIterationStartedEventDetails", ("name", "index")),
    "MapIterationSucceeded": ("mapIterationSucceededEventDetails", ("name", "index")),
    "MapIterationFailed": ("mapIterationFailedEventDetails", ("name", "index")),
    "MapIterationAborted": ("mapIterationAbortedEventDetails", ("name", "index")),
    "MapStateSucceeded": (None, ()),
    "MapStateFailed": (None, ()),
    "MapStateAborted": (None, ()),
}


def run_moto(aws: Any, outcomes: dict[str, list[Outcome]], max_jitter: bool = False,
             machine: Machine = PIPELINE) -> Run:
    """moto's run; retry delays recorded instead of slept (``max_jitter``: FULL jitter picks its upper bound)."""
    script = Script(outcomes, machine.key)
    if machine is PIPELINE:
        state_machine_arn = aws.state_machine_arn
    else:
        state_machine_arn = aws.sfn.create_state_machine(
            name=machine.name, definition=json.dumps(machine.definition),
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/nyanops-states")["stateMachineArn"]
    delays: list[float] = []
    jitter = SimpleNamespace(uniform=lambda low, high: high) if max_jitter else jitter_strategy_decl.random
    with (
        mock.patch.object(retrier_decl, "time", SimpleNamespace(sleep=delays.append)),
        mock.patch.object(WaitFunction, "_wait_interval", lambda self, env, wait_seconds: delays.append(wait_seconds)),
        mock.patch.object(jitter_strategy_decl, "random", jitter),
        mock.patch.object(ScriptedSageMakerSync, "script", script, create=True),
        mock.patch.object(ScriptedSns, "script", script, create=True),
        mock.patch.object(ScriptedLambda, "script", script, create=True),
    ):
        arn = aws.sfn.start_execution(stateMachineArn=state_machine_arn, name=EXECUTION,
                                      input=json.dumps(machine.run_input))["executionArn"]
        deadline = time.monotonic() + 10
        while (described := aws.sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
            assert time.monotonic() < deadline, "moto's execution is still RUNNING after 10 s"
            time.sleep(0.01)
    events = aws.sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    trace: list[tuple[Any, ...]] = []
    for event in events:
        kind = event["type"]
        if kind.endswith("StateEntered"):
            d = event["stateEnteredEventDetails"]
            trace.append((kind, d["name"], _loads(d.get("input"))))
        elif kind.endswith("StateExited"):
            d = event["stateExitedEventDetails"]
            trace.append((kind, d["name"], _loads(d.get("output"))))
        elif kind == "TaskScheduled":
            d = event["taskScheduledEventDetails"]
            trace.append((kind, _resource_arn(d), _loads(d["parameters"])))
        elif kind == "TaskSucceeded":
            d = event["taskSucceededEventDetails"]
            trace.append((kind, _resource_arn(d), _loads(d.get("output"))))
        elif kind == "TaskFailed":
            d = event["taskFailedEventDetails"]
            trace.append((kind, d.get("error"), d.get("cause")))
        elif kind in _MAP_EVENT_DETAILS:
            field, names = _MAP_EVENT_DETAILS[kind]
            d = event.get(field, {}) if field else {}
            trace.append((kind, *(d.get(n) for n in names)))
    return Run(described["status"], _loads(described.get("output")), described.get("error"),
               described.get("cause"), trace, delays, script)


class ScriptedRunner:
    """The local TaskRunner over the same script, answering as the real integrations do."""

    def __init__(self, script: Script) -> None:
        self.script = script

    def __call__(self, resource: str, parameters: Any, ctx: TaskContext) -> Any:
        if resource.startswith("arn:aws:states:::sagemaker:"):
            action = resource.removeprefix("arn:aws:states:::sagemaker:").removesuffix(".sync")
            self.script.problems += _sagemaker_request_errors(action, parameters)
        outcome = self.script.next(ctx.state_name, resource, parameters)
        if isinstance(outcome, Fail):
            raise TaskFailed(outcome.error, outcome.cause)
        if isinstance(outcome, FunctionError):
            # What the lambda:invoke integration reports: error = errorType, cause = the error payload.
            raise TaskFailed(outcome.error_type, json.dumps(outcome.payload(), separators=(",", ":")))
        return copy.deepcopy(outcome)


def run_local(outcomes: dict[str, list[Outcome]], max_jitter: bool = False, machine: Machine = PIPELINE,
              max_parallel: int | None = None) -> Run:
    """The local run; retry delays recorded instead of slept (``max_jitter``: FULL jitter picks its upper bound;
    ``max_parallel``: the local cap on Map iterations running at once)."""
    script = Script(outcomes, machine.key)
    delays: list[float] = []
    state_machine = load_state_machine(machine.definition, name=machine.name, region=REGION, account=ACCOUNT)
    result: ExecutionResult = state_machine.run(copy.deepcopy(machine.run_input), execution_name=EXECUTION,
                                                task_runner=ScriptedRunner(script), sleep=delays.append,
                                                random=(lambda: 1.0) if max_jitter else random.Random(7).random,
                                                max_parallel=max_parallel)
    trace: list[tuple[Any, ...]] = []
    for event in result.history:
        kind, d = event["type"], event["details"]
        if kind.endswith("StateEntered"):
            trace.append((kind, d["name"], d["input"]))
        elif kind.endswith("StateExited"):
            trace.append((kind, d["name"], d["output"]))
        elif kind == "TaskScheduled":
            trace.append((kind, d["resource"], d["parameters"]))
        elif kind == "TaskSucceeded":
            trace.append((kind, d["resource"], d["output"]))
        elif kind == "TaskFailed":
            trace.append((kind, d["error"], d["cause"]))
        elif kind in _MAP_EVENT_DETAILS:
            trace.append((kind, *(d.get(n) for n in _MAP_EVENT_DETAILS[kind][1])))
    return Run(result.status, result.output, result.error, result.cause, trace, delays, script)


def _sorted(items: list[Any]) -> list[Any]:
    return sorted(items, key=lambda item: json.dumps(item, sort_keys=True))


def run_both(aws: Any, outcomes: dict[str, list[Outcome]], max_jitter: bool = False, machine: Machine = PIPELINE,
             ordered: bool = True, max_parallel: int | None = None) -> tuple[Run, Run]:
    """Both engines on the same table; asserts everything they must agree on, returns (moto, local).

    ``ordered=False`` when a Map runs iterations at once: their events interleave differently from run to run
    (in either engine), so the traces, calls and delays are compared as collections, in no order.
    """
    on_moto = run_moto(aws, outcomes, max_jitter, machine)
    local = run_local(outcomes, max_jitter, machine, max_parallel)
    for run in (on_moto, local):
        assert run.script.problems == [], run.script.problems
        assert run.script.unused() == {}, "scripted outcomes left over"
    assert (local.status, local.error, local.cause) == (on_moto.status, on_moto.error, on_moto.cause)
    assert local.output == on_moto.output
    assert len(local.trace) == len(on_moto.trace)
    assert len(local.delays) == len(on_moto.delays)
    if not ordered:
        assert _sorted(local.trace) == _sorted(on_moto.trace)
        assert _sorted(local.script.calls) == _sorted(on_moto.script.calls)
        assert sorted(local.delays) == sorted(on_moto.delays)
        return on_moto, local
    assert local.states == on_moto.states
    # Every state's input and output, each Task's Parameters and raw result or error, in order.
    for i, (mine, theirs) in enumerate(zip(local.trace, on_moto.trace, strict=True)):
        assert mine == theirs, f"event {i}: local {mine!r} != moto {theirs!r}"
    assert local.script.calls == on_moto.script.calls
    return on_moto, local


def parameters_of(run: Run, state: str) -> list[Any]:
    return [params for name, _, params in run.script.calls if name == state]


# -- the scenarios ---------------------------------------------------------------------------------------


def test_success_path(aws: Any) -> None:
    on_moto, local = run_both(aws, {
        "RegisterTrial": [REGISTERED],
        "Train": [training_job()],
        "Evaluate": [processing_job()],
        "RecordResults": [RECORDED],
        "Summarize": [SUMMARIZED],
        "Notify": [PUBLISHED],
    })
    assert on_moto.states == SUCCESS_STATES
    assert on_moto.status == "SUCCEEDED"
    assert on_moto.delays == local.delays == []
    summary = SUMMARIZED["Payload"]
    assert on_moto.output == {
        **RUN_INPUT,
        "sweep": [{"trial": EXECUTION, "status": "Completed", "registry": ""}],  # each iteration's output is small
        "summary": {k: summary[k] for k in ("subject", "message", "completed", "best_trial")},
    }
    # The trial's own results stay in its iteration.
    [recorded] = [e[2] for e in on_moto.trace if e[0] == "TaskStateExited" and e[1] == "RecordResults"]
    assert recorded["results"] == {
        "training": {"job_name": TRAIN_JOB, "status": "Completed", "secondary_status": "Completed",
                     "model_artifacts": training_job()["ModelArtifacts"]["S3ModelArtifacts"]},
        "evaluation": {"job_name": EVAL_JOB, "status": "Completed"},
        "record": {"trial": RECORDED["Payload"]},
    }
    [notify] = parameters_of(local, "Notify")
    assert notify == {"TopicArn": TOPIC_ARN, "Subject": summary["subject"], "Message": summary["message"]}
    [register] = parameters_of(local, "RegisterTrial")
    assert register == {"FunctionName": RECORD_RESULTS_ARN,
                        "Payload": {"mode": "started", "run": RUN, "execution_arn": EXECUTION_ARN}}
    [summarize] = parameters_of(local, "Summarize")
    assert summarize["Payload"]["run"] == {
        "execution_name": EXECUTION, "experiment": "cats", "comment": "epochs 10", "primary_metric": "macro_f1",
        "dataset_id": "2026-11-28T064300Z", "outcomes": [{"trial": EXECUTION, "status": "Completed",
                                                                      "registry": ""}]}
    # The key-bearing configs reach the jobs whole (both engines: the calls are compared above).
    [train] = parameters_of(local, "Train")
    assert train["OutputDataConfig"]["KmsKeyId"] == train["ResourceConfig"]["VolumeKmsKeyId"] == KMS_KEY
    [evaluate] = parameters_of(local, "Evaluate")
    assert evaluate["ProcessingOutputConfig"]["KmsKeyId"] == KMS_KEY
    assert evaluate["ProcessingResources"] == {"ClusterConfig": RUN["evaluation"]["cluster_config"]}
    assert evaluate["AppSpecification"]["ContainerArguments"] == RUN["evaluation"]["container_arguments"]
    assert evaluate["AppSpecification"]["ImageUri"] == SUBSTITUTIONS["ProcessingImage"]
    assert evaluate["Environment"] == {"NYANOPS_EXECUTION": EXECUTION, "NYANOPS_PROCESSING_JOB": EVAL_JOB}


def test_the_champion_is_rescored_on_this_test_set(aws: Any) -> None:
    """RecordResults asks for the best trial's re-scoring: EvaluateChampion runs the champion's model on this
    run's test split (job <execution>-champ1, output champion-1/, the KMS key kept), then RecordChampion decides."""
    on_moto, local = run_both(aws, {
        "RegisterTrial": [REGISTERED],
        "Train": [training_job()],
        "Evaluate": [processing_job()],
        "RecordResults": [RECORDED_PENDING],
        "EvaluateChampion": [processing_job(CHAMPION_JOB)],
        "RecordChampion": [RECORDED_KEPT],
        "Summarize": [SUMMARIZED],
        "Notify": [PUBLISHED],
    })
    assert on_moto.states == [*SUCCESS_STATES[:8], "EvaluateChampion", "RecordChampion", "ChampionToRescore",
                              *AFTER_SUCCESS]
    [champion] = parameters_of(local, "EvaluateChampion")
    assert champion["ProcessingJobName"] == CHAMPION_JOB
    inputs = {i["InputName"]: i["S3Input"]["S3Uri"] for i in champion["ProcessingInputs"]}
    assert inputs == {"code": RUN["code"]["source_s3_uri"], "model": RESCORE["model_artifacts"],
                      "test": RUN["dataset"]["test_s3_uri"]}
    assert champion["ProcessingOutputConfig"] == RESCORE["output_config"]
    assert champion["ProcessingOutputConfig"]["KmsKeyId"] == KMS_KEY
    assert champion["Environment"] == {"NYANOPS_EXECUTION": EXECUTION, "NYANOPS_PROCESSING_JOB": CHAMPION_JOB}
    assert champion["AppSpecification"]["ImageUri"] == SUBSTITUTIONS["ProcessingImage"]
    [decide] = parameters_of(local, "RecordChampion")
    assert decide["Payload"]["mode"] == "champion"
    assert decide["Payload"]["run"]["results"]["champion"] == {"job_name": CHAMPION_JOB, "status": "Completed"}
    assert decide["Payload"]["run"]["results"]["record"]["trial"]["rescore"] == RESCORE
    [decided] = [e[2] for e in on_moto.trace if e[0] == "TaskStateExited" and e[1] == "RecordChampion"]
    assert decided["results"]["record"] == {"trial": RECORDED_KEPT["Payload"]}


def test_a_champion_rescoring_that_fails_goes_to_the_decision(aws: Any) -> None:
    """The re-scoring job fails: RecordChampion gets the error with its attempt (the flag then stays)."""
    failed = Fail("States.TaskFailed", json.dumps({**processing_job(CHAMPION_JOB), "ProcessingJobStatus": "Failed",
                                                   "ExitMessage": "model.pth does not match"}))
    on_moto, local = run_both(aws, {
        "RegisterTrial": [REGISTERED],
        "Train": [training_job()],
        "Evaluate": [processing_job()],
        "RecordResults": [RECORDED_PENDING],
        "EvaluateChampion": [failed],
        "RecordChampion": [RECORDED_KEPT],
        "Summarize": [SUMMARIZED],
        "Notify": [PUBLISHED],
    })
    assert on_moto.states[8:] == ["EvaluateChampion", "ChampionNotRescored", "RecordChampion", "ChampionToRescore",
                                  *AFTER_SUCCESS]
    [decide] = parameters_of(local, "RecordChampion")
    assert decide["Payload"]["run"]["results"]["champion_error"] == {"attempt": 1, "Error": failed.error,
                                                                     "Cause": failed.cause}


def test_throttling_is_retried_validation_is_not(aws: Any) -> None:
    """Step Functions reports both as SageMaker.AmazonSageMakerException: the Choice on the cause's error code
    waits 30 s and retries the throttled call (counting it), and records a validation error at once."""
    on_moto, local = run_both(aws, {
        "RegisterTrial": [REGISTERED],
        "Train": [THROTTLED, training_job()],
        "Evaluate": [INVALID],
        "RecordFailure": [RECORDED_FAILED],
        "Summarize": [SUMMARIZED_FAILED],
        "Notify": [PUBLISHED],
    })
    assert on_moto.states == [*START, "Train", "TrainApiError", "TrainBackoff", "TrainWait", "Train",
                              "TrainingCompleted", "Evaluate", "EvaluateApiError", "SageMakerApiFailed",
                              *AFTER_FAILURE]
    assert on_moto.delays == local.delays == [30]
    [record] = parameters_of(local, "RecordFailure")
    assert record["Payload"]["run"]["error"] == {"Error": INVALID.error, "Cause": INVALID.cause}
    assert record["Payload"]["run"]["retries"]["train"] == {"count": 1, "wait_seconds": 30}


def test_retried_failures(aws: Any) -> None:
    """Train is out of capacity twice (the same retrier: backoff doubles), then trains; RecordResults meets a
    busy experiment lock (a function error retried by its errorType) once."""
    on_moto, local = run_both(aws, {
        "RegisterTrial": [REGISTERED],
        "Train": [NO_CAPACITY, NO_CAPACITY, training_job()],
        "Evaluate": [processing_job()],
        "RecordResults": [FunctionError("ExperimentBusy", "experiment cats is locked by another run"), RECORDED],
        "Summarize": [SUMMARIZED],
        "Notify": [PUBLISHED],
    })
    assert on_moto.states == SUCCESS_STATES
    assert on_moto.status == "SUCCEEDED"
    for run in (on_moto, local):
        assert run.script.attempts("Train") == 3
        assert run.script.attempts("RecordResults") == 2
        # The retries' Parameters are the first attempt's.
        assert len({json.dumps(p, sort_keys=True) for p in parameters_of(run, "Train")}) == 1
        # JitterStrategy FULL: each delay is uniform in [0, min(Interval * Backoff^n, MaxDelay)].
        bounds = [delay_bound("Train", 0), delay_bound("Train", 1), delay_bound("RecordResults", 0)]
        assert bounds == [30, 60, 2]
        assert len(run.delays) == 3
        assert all(0 <= delay <= bound for delay, bound in zip(run.delays, bounds, strict=True)), run.delays
    failures = [event for event in local.trace if event[0] == "TaskFailed"]
    assert failures == [
        ("TaskFailed", NO_CAPACITY.error, NO_CAPACITY.cause),
        ("TaskFailed", NO_CAPACITY.error, NO_CAPACITY.cause),
        ("TaskFailed", "ExperimentBusy",
         '{"errorType":"ExperimentBusy","errorMessage":"experiment cats is locked by another run"}'),
    ]


def test_exhausted_retries_are_caught(aws: Any) -> None:
    """Train is out of capacity on all 1 + MaxAttempts (4) attempts: the retrier's delays double (the same in
    both engines once the jitter is pinned to its upper bound), then the last error is caught into RecordFailure."""
    on_moto, local = run_both(aws, {
        "RegisterTrial": [REGISTERED],
        "Train": [NO_CAPACITY] * 5,
        "RecordFailure": [RECORDED_FAILED],
        "Summarize": [SUMMARIZED_FAILED],
        "Notify": [PUBLISHED],
    }, max_jitter=True)
    assert on_moto.states == CAUGHT_STATES
    assert (on_moto.status, on_moto.error) == ("FAILED", "PipelineFailed")
    assert on_moto.delays == local.delays == [delay_bound("Train", n) for n in range(4)] == [30, 60, 120, 240]
    [record] = parameters_of(local, "RecordFailure")
    assert record["Payload"]["run"]["error"] == {"Error": NO_CAPACITY.error, "Cause": NO_CAPACITY.cause}


def test_throttling_that_persists_is_caught_after_four_waits(aws: Any) -> None:
    on_moto, local = run_both(aws, {
        "RegisterTrial": [REGISTERED],
        "Train": [THROTTLED] * 5,
        "RecordFailure": [RECORDED_FAILED],
        "Summarize": [SUMMARIZED_FAILED],
        "Notify": [PUBLISHED],
    })
    assert on_moto.delays == local.delays == [30, 60, 120, 240]
    assert on_moto.states[-8:] == ["TrainApiError", "SageMakerApiFailed", *AFTER_FAILURE]


def test_a_stopped_training_job_is_recorded_not_evaluated(aws: Any) -> None:
    """A .sync training job that comes back Stopped (MaxRuntimeExceeded) goes to RecordFailure with the reason."""
    on_moto, local = run_both(aws, {
        "RegisterTrial": [REGISTERED],
        "Train": [training_job("Stopped")],
        "RecordFailure": [RECORDED_FAILED],
        "Summarize": [SUMMARIZED_FAILED],
        "Notify": [PUBLISHED],
    })
    assert on_moto.states == [*START, "Train", "TrainingCompleted", "TrainingNotCompleted", *AFTER_FAILURE]
    [record] = parameters_of(local, "RecordFailure")
    assert record["Payload"]["run"]["error"] == {
        "Error": "TrainingJobNotCompleted",
        "Cause": f"training job {TRAIN_JOB} ended Stopped (MaxRuntimeExceeded): its model is not evaluated"}


def test_caught_failure(aws: Any) -> None:
    """The training job fails: the error is recorded and notified, and the execution fails."""
    on_moto, local = run_both(aws, {
        "RegisterTrial": [REGISTERED],
        "Train": [Fail("States.TaskFailed", FAILED_TRAINING_CAUSE)],
        "RecordFailure": [RECORDED_FAILED],
        "Summarize": [SUMMARIZED_FAILED],
        "Notify": [PUBLISHED],
    })
    assert on_moto.states == CAUGHT_STATES
    assert (on_moto.status, on_moto.error, on_moto.cause) == ("FAILED", "PipelineFailed", PIPELINE_FAILED_CAUSE)
    assert on_moto.output is None
    [record] = parameters_of(local, "RecordFailure")
    assert record["Payload"]["mode"] == "failed"
    assert record["Payload"]["run"] == {**RUN, "registered": {"reused_from": ""},
                                        "error": {"Error": "States.TaskFailed", "Cause": FAILED_TRAINING_CAUSE}}
    assert json.loads(record["Payload"]["run"]["error"]["Cause"])["FailureReason"] == FAILURE_REASON
    [summarize] = parameters_of(local, "Summarize")
    assert summarize["Payload"]["run"]["outcomes"] == [{"trial": EXECUTION, "status": "Failed"}]
    [notify] = parameters_of(local, "Notify")  # one notification: the comparison's
    assert notify["Message"] == SUMMARIZED_FAILED["Payload"]["message"]


def test_notification_failure_is_retried_then_caught(aws: Any) -> None:
    """SNS fails on every attempt: three retries (2, 4, 8 s: no jitter), then NotificationNotSent; the run
    still succeeds, with the notification error in its output."""
    on_moto, local = run_both(aws, {
        "RegisterTrial": [REGISTERED],
        "Train": [training_job()],
        "Evaluate": [processing_job()],
        "RecordResults": [RECORDED],
        "Summarize": [SUMMARIZED],
        "Notify": [SNS_DOWN] * 4,
    })
    assert on_moto.states == [*SUCCESS_STATES[:-2], "NotificationNotSent", "SweepOutcome", "Done"]
    assert on_moto.status == "SUCCEEDED"
    assert on_moto.output["notification_error"] == {"Error": SNS_DOWN.error, "Cause": SNS_DOWN.cause}
    assert on_moto.delays == local.delays == [2, 4, 8]


def test_failure_that_cannot_be_recorded(aws: Any) -> None:
    """RecordFailure's function raises (not a retried error): the iteration ends TrialNotRecorded with both error
    names, and the comparison (which records the trial failed with them) notifies."""
    store_down = FunctionError("ValueError", "experiment store unavailable")
    on_moto, local = run_both(aws, {
        "RegisterTrial": [REGISTERED],
        "Train": [Fail("States.TaskFailed", FAILED_TRAINING_CAUSE)],
        "RecordFailure": [store_down],
        "Summarize": [SUMMARIZED_FAILED],
        "Notify": [PUBLISHED],
    })
    assert on_moto.states == [*START, "Train", "RecordFailure", "TrialNotRecorded", *AFTER_FAILURE[2:]]
    assert (on_moto.status, on_moto.error) == ("FAILED", "PipelineFailed")
    [summarize] = parameters_of(local, "Summarize")
    assert summarize["Payload"]["run"]["outcomes"] == [
        {"trial": EXECUTION, "status": "NotRecorded", "error": "States.TaskFailed", "record_error": "ValueError"}]


def test_a_comparison_that_fails_is_notified_and_fails_the_run(aws: Any) -> None:
    """Summarize's function raises: NotifySweepError formats the error, the execution fails."""
    on_moto, local = run_both(aws, {
        "RegisterTrial": [REGISTERED],
        "Train": [training_job()],
        "Evaluate": [processing_job()],
        "RecordResults": [RECORDED],
        "Summarize": [FunctionError("ValueError", "experiment store unavailable")],
        "NotifySweepError": [PUBLISHED],
    })
    assert on_moto.states == [*SUCCESS_STATES[:9], "Summarize", "NotifySweepError", "PipelineFailed"]
    [notify] = parameters_of(local, "NotifySweepError")
    assert notify["Subject"] == "nyanops: run finished without a summary"
    assert notify["Message"].startswith(f"Run {EXECUTION} of experiment cats: the comparison of its trials failed "
                                        "(ValueError: ")


# -- a Map: a sweep's trials in parallel ------------------------------------------------------------------------
# A test-only state machine for what the pipeline's own Map (below) never does: each trial trains (retried when
# throttled; a failed job is caught inside its iteration and recorded, so its siblings go on), then is recorded;
# running out of capacity ends the iteration in a Fail state, which the iteration does not catch: that fails the Map,
# whose Catch fails the execution with the iteration's error. (The uncaught error is a custom one: moto's Map cannot
# carry an iteration error named States.*, e.g. States.Timeout; see docs/decisions.md.)

TRAINING_SYNC = "arn:aws:states:::sagemaker:createTrainingJob.sync"
SWEEP_DEFINITION: dict[str, Any] = {
    "Comment": "test-only sweep: one iteration per trial",
    "StartAt": "Prepare",
    "States": {
        "Prepare": {
            "Type": "Pass",
            "Parameters": {"experiment.$": "$.experiment", "trials.$": "$.trials", "parallel.$": "$.parallel"},
            "Next": "Trials",
        },
        "Trials": {
            "Type": "Map",
            "ItemsPath": "$.trials",
            "MaxConcurrencyPath": "$.parallel",
            "ItemSelector": {
                "experiment.$": "$.experiment",
                "index.$": "$$.Map.Item.Index",
                "trial.$": "$$.Map.Item.Value.name",
                "hyperparameters.$": "$$.Map.Item.Value.hyperparameters",
            },
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "INLINE"},
                "StartAt": "Train",
                "States": {
                    "Train": {
                        "Type": "Task",
                        "Resource": TRAINING_SYNC,
                        "Parameters": {
                            "TrainingJobName.$": "States.Format('{}-train', $.trial)",
                            "AlgorithmSpecification": {"TrainingImage": SUBSTITUTIONS["TrainingImage"],
                                                       "TrainingInputMode": "File"},
                            "RoleArn": SUBSTITUTIONS["SageMakerRoleArn"],
                            "HyperParameters.$": "$.hyperparameters",
                            "OutputDataConfig": {"S3OutputPath": f"{BUCKET}/training-output/"},
                            "ResourceConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large",
                                               "VolumeSizeInGB": 30},
                            "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
                        },
                        "ResultSelector": {"status.$": "$.TrainingJobStatus",
                                           "model.$": "$.ModelArtifacts.S3ModelArtifacts"},
                        "ResultPath": "$.training",
                        "Retry": [{"ErrorEquals": ["SageMaker.AmazonSageMakerException"], "IntervalSeconds": 5,
                                   "MaxAttempts": 2}],
                        "Catch": [
                            {"ErrorEquals": ["SageMaker.ResourceLimitExceededException"], "ResultPath": "$.error",
                             "Next": "NoCapacity"},
                            {"ErrorEquals": ["States.TaskFailed"], "ResultPath": "$.error", "Next": "RecordFailure"},
                        ],
                        "Next": "Record",
                    },
                    "NoCapacity": {"Type": "Fail", "Error": "Sweep.NoCapacity", "CausePath": "$.error.Cause"},
                    "Record": {
                        "Type": "Task",
                        "Resource": LAMBDA_INVOKE,
                        "Parameters": {"FunctionName": RECORD_RESULTS_ARN,
                                       "Payload": {"mode": "succeeded", "trial.$": "$.trial",
                                                   "training.$": "$.training"}},
                        "ResultSelector": {"record.$": "$.Payload"},
                        "OutputPath": "$.record",
                        "End": True,
                    },
                    "RecordFailure": {
                        "Type": "Task",
                        "Resource": LAMBDA_INVOKE,
                        "Parameters": {"FunctionName": RECORD_RESULTS_ARN,
                                       "Payload": {"mode": "failed", "trial.$": "$.trial", "error.$": "$.error"}},
                        "ResultSelector": {"record.$": "$.Payload"},
                        "OutputPath": "$.record",
                        "End": True,
                    },
                },
            },
            "ResultSelector": {"trials.$": "$", "count.$": "States.ArrayLength($)"},
            "ResultPath": "$.sweep",
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "SweepFailed"}],
            "Next": "Notify",
        },
        "Notify": {
            "Type": "Task",
            "Resource": "arn:aws:states:::sns:publish",
            "Parameters": {"TopicArn": TOPIC_ARN, "Subject": "nyanops: sweep finished",
                           "Message.$": "States.JsonToString($.sweep.trials)"},
            "ResultPath": None,
            "End": True,
        },
        "SweepFailed": {"Type": "Fail", "ErrorPath": "$.error.Error", "CausePath": "$.error.Cause"},
    },
}
TRIALS = ["t1", "t2", "t3"]


def trial_key(state: str, parameters: Any) -> str:
    """Outcomes per state and trial: the training job's name or the Lambda payload names the trial."""
    trial = parameters.get("TrainingJobName", "").removesuffix("-train") or parameters.get("Payload", {}).get("trial")
    return f"{state}/{trial}" if trial else state


def sweep(parallel: int) -> Machine:
    run_input = {
        "experiment": "cats",
        "parallel": parallel,
        "trials": [{"name": t, "hyperparameters": {"epochs": str(5 * (i + 1))}} for i, t in enumerate(TRIALS)],
    }
    return Machine("nyanops-test-sweep", SWEEP_DEFINITION, run_input, trial_key)


def trained(trial: str, status: str = "Completed") -> dict[str, Any]:
    """DescribeTrainingJob of one trial's job."""
    job = f"{trial}-train"
    described: dict[str, Any] = {
        "TrainingJobName": job,
        "TrainingJobArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/{job}",
        "TrainingJobStatus": status,
        "CreationTime": _ms("2026-11-28T06:43:05"),
    }
    if status == "Completed":
        described["ModelArtifacts"] = {"S3ModelArtifacts": f"{BUCKET}/training-output/{job}/output/model.tar.gz"}
    else:
        described["FailureReason"] = FAILURE_REASON
    return described


def recorded(trial: str, ok: bool = True) -> dict[str, Any]:
    return invoked({"trial": trial, "status": "Completed" if ok else "Failed"})


def job_failed(trial: str) -> Fail:
    return Fail("States.TaskFailed", json.dumps(trained(trial, "Failed")))


def succeeding(*trials: str) -> dict[str, list[Outcome]]:
    return {key: value for t in trials for key, value in
            {f"Train/{t}": [trained(t)], f"Record/{t}": [recorded(t)]}.items()}


def failing(*trials: str) -> dict[str, list[Outcome]]:
    return {key: value for t in trials for key, value in
            {f"Train/{t}": [job_failed(t)], f"RecordFailure/{t}": [recorded(t, ok=False)]}.items()}


def test_map_all_trials_succeed_one_at_a_time(aws: Any) -> None:
    """MaxConcurrency 1: the iterations run in item order, so the two histories agree event by event."""
    on_moto, local = run_both(aws, {**succeeding(*TRIALS), "Notify": [PUBLISHED]}, machine=sweep(1))
    assert on_moto.status == "SUCCEEDED"
    assert on_moto.states == ["Prepare", "Trials"] + ["Train", "Record"] * 3 + ["Notify"]
    assert on_moto.output["sweep"] == {"trials": [recorded(t)["Payload"] for t in TRIALS], "count": 3}
    assert [e for e in local.trace if e[0].startswith("Map") and e[0] != "MapStateEntered"] == [
        ("MapStateStarted", 3),
        *[(kind, "Trials", i) for i in range(3) for kind in ("MapIterationStarted", "MapIterationSucceeded")],
        ("MapStateSucceeded",),
        ("MapStateExited", "Trials", local.output),
    ]
    [first, *_] = parameters_of(local, "Train/t1")
    assert first["HyperParameters"] == {"epochs": "5"}
    assert next(e for e in local.trace if e[0] == "TaskStateEntered")[2] == {
        "experiment": "cats", "index": 0, "trial": "t1", "hyperparameters": {"epochs": "5"}}


@pytest.mark.parametrize("local_cap", [None, 1])
def test_map_all_trials_succeed_in_parallel(aws: Any, local_cap: int | None) -> None:
    """MaxConcurrency 0: every trial at once in moto; locally too, or one at a time under the machine's cap,
    with the same states, inputs, outputs and result order either way."""
    on_moto, local = run_both(aws, {**succeeding(*TRIALS), "Notify": [PUBLISHED]}, machine=sweep(0),
                              ordered=False, max_parallel=local_cap)
    assert on_moto.status == "SUCCEEDED"
    assert on_moto.output["sweep"]["trials"] == [recorded(t)["Payload"] for t in TRIALS]
    if local_cap == 1:  # the cap held: each iteration ended before the next one started
        assert [e for e in local.trace if e[0].startswith("MapIteration")] == [
            (kind, "Trials", i) for i in range(3) for kind in ("MapIterationStarted", "MapIterationSucceeded")
        ]


def test_map_failed_trial_is_recorded_and_its_siblings_go_on(aws: Any) -> None:
    """t2's job fails: caught inside its iteration and recorded as failed; t1 is throttled once and retried;
    the Map and the execution succeed with every trial's record, in order."""
    outcomes = {**succeeding("t1", "t3"), **failing("t2"), "Notify": [PUBLISHED]}
    outcomes["Train/t1"] = [THROTTLED, trained("t1")]
    on_moto, local = run_both(aws, outcomes, machine=sweep(0), ordered=False)
    assert on_moto.status == "SUCCEEDED"
    assert on_moto.output["sweep"]["trials"] == [recorded("t1")["Payload"], recorded("t2", ok=False)["Payload"],
                                                 recorded("t3")["Payload"]]
    assert on_moto.delays == local.delays == [5]
    [failure] = parameters_of(local, "RecordFailure/t2")
    assert failure["Payload"]["error"] == {"Error": "States.TaskFailed", "Cause": job_failed("t2").cause}


def test_map_all_trials_fail_and_are_recorded(aws: Any) -> None:
    on_moto, _ = run_both(aws, {**failing(*TRIALS), "Notify": [PUBLISHED]}, machine=sweep(0), ordered=False)
    assert on_moto.status == "SUCCEEDED"
    assert on_moto.output["sweep"]["trials"] == [recorded(t, ok=False)["Payload"] for t in TRIALS]


def test_map_uncaught_iteration_failure_fails_the_map(aws: Any) -> None:
    """t2 finds no capacity and its iteration fails (uncaught): the Map fails with t2's error (t3 never
    starts), its Catch goes to SweepFailed, and the execution fails with that error and cause."""
    outcomes = {**succeeding("t1"), "Train/t2": [NO_CAPACITY]}
    on_moto, local = run_both(aws, outcomes, machine=sweep(1))
    assert (on_moto.status, on_moto.error, on_moto.cause) == ("FAILED", "Sweep.NoCapacity", NO_CAPACITY.cause)
    assert on_moto.states == ["Prepare", "Trials", "Train", "Record", "Train", "NoCapacity", "SweepFailed"]
    assert [e for e in local.trace if e[0].startswith("MapIteration")] == [
        ("MapIterationStarted", "Trials", 0),
        ("MapIterationSucceeded", "Trials", 0),
        ("MapIterationStarted", "Trials", 1),
        ("MapIterationFailed", "Trials", 1),
    ]
    assert ("MapStateFailed",) in local.trace


def test_map_all_trials_fail_uncaught(aws: Any) -> None:
    on_moto, _ = run_both(aws, {"Train/t1": [NO_CAPACITY]}, machine=sweep(1))
    assert (on_moto.status, on_moto.error) == ("FAILED", "Sweep.NoCapacity")
    assert on_moto.states == ["Prepare", "Trials", "Train", "NoCapacity", "SweepFailed"]


# -- the pipeline's own Map: a sweep of three trials through statemachine/training_pipeline.asl.json ------------

SWEEP_NAMES = [f"{EXECUTION}-t{i}" for i in (1, 2, 3)]


def _renamed(value: Any, trial: str) -> Any:
    """``value`` (the one-trial fixtures) for ``trial``: its job names and locations follow the trial's name."""
    return json.loads(json.dumps(value).replace(EXECUTION, trial))


def sweep_item(index: int) -> dict[str, Any]:
    item = _renamed(TRIAL_ITEM, SWEEP_NAMES[index])
    item["index"] = index
    item["hyperparameters"]["epochs"] = 5 * (index + 1)
    item["training"]["hyperparameters"]["epochs"] = str(5 * (index + 1))
    return item


def pipeline_trial_key(state: str, parameters: Any) -> str:
    """Outcomes per state and trial: a job's name starts with its trial's, a RecordResults payload names it."""
    job = parameters.get("TrainingJobName") or parameters.get("ProcessingJobName") or ""
    trial = job.rsplit("-", 1)[0] if job else ((parameters.get("Payload") or {}).get("run") or {}).get("trial")
    return f"{state}/{trial}" if trial else state


def pipeline_sweep(max_concurrency: int) -> Machine:
    run_input = {**SHARED, "max_concurrency": max_concurrency, "trials": [sweep_item(i) for i in range(3)]}
    return Machine("nyanops-training-pipeline", DEFINITION, run_input, pipeline_trial_key)


def summarized(completed: int) -> dict[str, Any]:
    return invoked({"execution": EXECUTION, "completed": completed, "best_trial": SWEEP_NAMES[1] if completed else "",
                    "subject": "nyanops: cats sweep of 3 trials", "message": f"{completed} of 3 trials completed"})


def trial_trains(trial: str) -> dict[str, list[Outcome]]:
    return {f"RegisterTrial/{trial}": [invoked({"trial": trial, "status": "InProgress", "reused_from": ""})],
            f"Train/{trial}": [_renamed(training_job(), trial)],
            f"Evaluate/{trial}": [_renamed(processing_job(), trial)],
            f"RecordResults/{trial}": [_renamed(RECORDED, trial)]}


def trial_fails(trial: str) -> dict[str, list[Outcome]]:
    return {f"RegisterTrial/{trial}": [invoked({"trial": trial, "status": "InProgress", "reused_from": ""})],
            f"Train/{trial}": [Fail("States.TaskFailed", _renamed(FAILED_TRAINING_CAUSE, trial))],
            f"RecordFailure/{trial}": [_renamed(RECORDED_FAILED, trial)]}


def trial_reused(trial: str, original: str) -> dict[str, list[Outcome]]:
    return {f"RegisterTrial/{trial}": [invoked({"trial": trial, "status": "Completed", "reused_from": original})]}


@pytest.mark.parametrize("local_cap", [None, 1])
def test_the_pipeline_map_runs_every_trial(aws: Any, local_cap: int | None) -> None:
    """Three trials at once (MaxConcurrencyPath 0): each runs the per-trial states in its own iteration; one
    comparison of the three and one notification. Locally under the machine's cap too."""
    outcomes = {k: v for t in SWEEP_NAMES for k, v in trial_trains(t).items()}
    on_moto, local = run_both(aws, {**outcomes, "Summarize": [summarized(3)], "Notify": [PUBLISHED]},
                              machine=pipeline_sweep(0), ordered=False, max_parallel=local_cap)
    assert on_moto.status == "SUCCEEDED"
    assert on_moto.output["sweep"] == [{"trial": t, "status": "Completed", "registry": ""} for t in SWEEP_NAMES]
    assert ("MapStateStarted", 3) in on_moto.trace and ("MapStateStarted", 3) in local.trace
    [summarize] = parameters_of(local, "Summarize")
    assert summarize["Payload"]["run"]["outcomes"] == on_moto.output["sweep"]
    assert len(parameters_of(local, "Notify")) == 1
    trains = sorted(p["HyperParameters"]["epochs"] for name, _, p in local.script.calls if name.startswith("Train/"))
    assert trains == ["10", "15", "5"]


def test_the_pipeline_map_in_order_agrees_event_by_event(aws: Any) -> None:
    """MaxConcurrencyPath 1: one trial after the other, so both histories agree event by event; the second trial
    reuses a completed one (no job runs for it)."""
    outcomes = {**trial_trains(SWEEP_NAMES[0]), **trial_reused(SWEEP_NAMES[1], "m-old-0000000000000001"),
                **trial_trains(SWEEP_NAMES[2])}
    on_moto, local = run_both(aws, {**outcomes, "Summarize": [summarized(3)], "Notify": [PUBLISHED]},
                              machine=pipeline_sweep(1))
    per_trial = [*START[1:], "Train", "TrainingCompleted", "Evaluate", "RecordResults", "ChampionToRescore",
                 "TrialCompleted"]
    assert on_moto.states == ["Trials", *per_trial, *START[1:], "TrialReused", *per_trial, *AFTER_SUCCESS[1:]]
    assert on_moto.output["sweep"][1] == {"trial": SWEEP_NAMES[1], "status": "Reused",
                                          "reused_from": "m-old-0000000000000001"}
    assert [e for e in local.trace if e[0].startswith("MapIteration")] == [
        (kind, "Trials", i) for i in range(3) for kind in ("MapIterationStarted", "MapIterationSucceeded")]


def test_the_pipeline_map_one_failed_trial_does_not_stop_the_others(aws: Any) -> None:
    """The second trial's training fails: recorded as failed inside its iteration; the others complete, the Map
    and the execution succeed, the comparison lists the failure."""
    outcomes = {**trial_trains(SWEEP_NAMES[0]), **trial_fails(SWEEP_NAMES[1]), **trial_trains(SWEEP_NAMES[2])}
    on_moto, local = run_both(aws, {**outcomes, "Summarize": [summarized(2)], "Notify": [PUBLISHED]},
                              machine=pipeline_sweep(0), ordered=False)
    assert on_moto.status == "SUCCEEDED"
    assert on_moto.output["sweep"] == [{"trial": SWEEP_NAMES[0], "status": "Completed", "registry": ""},
                                       {"trial": SWEEP_NAMES[1], "status": "Failed"},
                                       {"trial": SWEEP_NAMES[2], "status": "Completed", "registry": ""}]
    [failure] = parameters_of(local, f"RecordFailure/{SWEEP_NAMES[1]}")
    assert failure["Payload"]["run"]["trial"] == SWEEP_NAMES[1]
    assert failure["Payload"]["run"]["error"]["Error"] == "States.TaskFailed"
    assert ("MapStateSucceeded",) in on_moto.trace and ("MapStateSucceeded",) in local.trace


def test_the_pipeline_map_every_trial_failed(aws: Any) -> None:
    """Every training fails: each recorded in its iteration, the Map succeeds, the comparison says none
    completed, the one notification goes out and the execution fails."""
    outcomes = {k: v for t in SWEEP_NAMES for k, v in trial_fails(t).items()}
    on_moto, local = run_both(aws, {**outcomes, "Summarize": [summarized(0)], "Notify": [PUBLISHED]},
                              machine=pipeline_sweep(0), ordered=False)
    assert (on_moto.status, on_moto.error, on_moto.cause) == ("FAILED", "PipelineFailed", PIPELINE_FAILED_CAUSE)
    assert on_moto.states.count("RecordFailure") == 3 and on_moto.states.count("Notify") == 1
    assert ("MapStateSucceeded",) in on_moto.trace and ("MapStateSucceeded",) in local.trace
    [summarize] = parameters_of(local, "Summarize")
    assert summarize["Payload"]["run"]["outcomes"] == [{"trial": t, "status": "Failed"} for t in SWEEP_NAMES]
