"""The AWS limits the pipeline meets, in one place, each with the reference that documents it.

Everything that is stored, sent or named goes through a check against these numbers before AWS sees
it: StartPipeline refuses an upload that would break one later (field / problem / fix), the
experiment stores refuse a record that does not fit (the local SQLite store enforces the same
numbers as SageMaker Experiments, so a regression fails locally too), and the moto test fixtures
are patched to refuse what AWS refuses (``tests/aws/moto_limits.py``).

Sources (AWS API references, as of writing; the same numbers are in botocore's service models,
except the maxima botocore does not validate client-side):

- SageMaker ``TrialComponentParameterValue.StringValue``: at most 2,500 characters;
  ``CreateTrialComponent`` / ``UpdateTrialComponent`` ``Parameters``: at most 300 entries, keys at
  most 320 characters (``TrialComponentKey320``); ``Status.Message`` at most 1,024 characters;
  ``InputArtifacts`` / ``OutputArtifacts`` at most 60 entries, values at most 2,048 characters.
- SageMaker experiment, trial and trial-component names (``ExperimentEntityName``): 1-120 characters,
  ``[a-zA-Z0-9](-*[a-zA-Z0-9]){0,119}`` matched against the whole name; ``CreateExperiment`` /
  ``CreateTrial``: "The name must be unique in your AWS account and is not case-sensitive".
- SageMaker job names: 1-63 characters, ``[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}``;
  ``HyperParameters``: at most 100 entries, values at most 2,500 characters; processing
  ``Environment``: at most 100 entries, values at most 256 characters; ``ContainerArguments``: 1-100
  entries of at most 256 characters; ``FailureReason`` / ``ExitMessage``: at most 1,024 characters.
- Step Functions quotas: execution names 1-80 characters without whitespace, wildcards, brackets or
  ``"#%\\^|~`$&,;:/`` and control characters; "Maximum input or output size for a task, state, or
  execution: 256 KiB of data as a UTF-8 encoded string" (262,144 bytes; larger payloads end the
  execution with ``States.DataLimitExceeded``, which no Catch can handle); error names at most 256
  characters and causes at most 32,768 (``TaskFailedEventDetails``).
- Amazon S3 object keys: at most 1,024 bytes of UTF-8 ("Creating object key names").
- Amazon SNS ``Publish``: ``Subject`` ASCII without line breaks or control characters, under 100
  characters; ``Message`` at most 256 KB (262,144 bytes of UTF-8).
- SageMaker Model Registry (API reference and botocore's service model): ``CreateModelPackageGroup``
  ``ModelPackageGroupName`` 1-63 characters, ``[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}``;
  ``ModelPackageDescription`` / ``ModelPackageGroupDescription`` / ``ApprovalDescription`` at most 1,024
  characters; ``CreateModelPackage`` / ``UpdateModelPackage`` ``CustomerMetadataProperties``: 1-50 entries,
  keys 1-128 and values 1-256 characters of ``[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]`` (letters, separators,
  numbers and ``_.:/=+-@``); ``InferenceSpecification.Containers[].Image`` at most 255 characters without
  whitespace, ``ModelDataUrl`` at most 1,024 characters matching ``(https|s3)://([^/]+)/?(.*)``;
  ``ModelApprovalStatus``: ``Approved`` | ``Rejected`` | ``PendingManualApproval``; ``ListModelPackages``
  ``MaxResults`` at most 100.
- AWS Lambda: synchronous invocation payloads (request and response) at most 6 MB; the functions'
  memory is ``MemorySize`` in ``template.yaml`` (512 MB): what a function reads is bounded below it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# -- SageMaker Experiments ------------------------------------------------------------------------
TRIAL_COMPONENT_STRING_VALUE_MAX = 2500
TRIAL_COMPONENT_PARAMETERS_MAX = 300
TRIAL_COMPONENT_PARAMETER_KEY_MAX = 320
TRIAL_COMPONENT_STATUS_MESSAGE_MAX = 1024
TRIAL_COMPONENT_ARTIFACTS_MAX = 60
TRIAL_COMPONENT_ARTIFACT_VALUE_MAX = 2048
EXPERIMENT_ENTITY_NAME_MAX = 120
EXPERIMENT_ENTITY_NAME_PATTERN = r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,119}"

# -- SageMaker Model Registry ---------------------------------------------------------------------
MODEL_PACKAGE_GROUP_NAME_MAX = 63
MODEL_PACKAGE_GROUP_NAME_PATTERN = r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
MODEL_PACKAGE_DESCRIPTION_MAX = 1024  # also ModelPackageGroupDescription and ApprovalDescription
CUSTOMER_METADATA_PROPERTIES_MAX = 50
CUSTOMER_METADATA_KEY_MAX = 128
CUSTOMER_METADATA_VALUE_MAX = 256
# Besides letters (\p{L}), separators (\p{Z}) and numbers (\p{N}): the characters a key or value may hold.
CUSTOMER_METADATA_PUNCTUATION = "_.:/=+-@"
MODEL_CONTAINER_IMAGE_MAX = 255
MODEL_DATA_URL_MAX = 1024
MODEL_DATA_URL_PATTERN = r"(https|s3)://([^/]+)/?(.*)"
LIST_MODEL_PACKAGES_PAGE_MAX = 100

# -- SageMaker jobs -------------------------------------------------------------------------------
JOB_NAME_MAX = 63
JOB_NAME_PATTERN = r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
HYPERPARAMETERS_MAX = 100
HYPERPARAMETER_VALUE_MAX = 2500
PROCESSING_ENVIRONMENT_VALUE_MAX = 256
CONTAINER_ARGUMENTS_MAX = 100
CONTAINER_ARGUMENT_MAX = 256
JOB_FAILURE_TEXT_MAX = 1024  # FailureReason and ExitMessage

# -- Step Functions -------------------------------------------------------------------------------
EXECUTION_NAME_MAX = 80
PAYLOAD_MAX_BYTES = 262_144
ERROR_NAME_MAX = 256
ERROR_CAUSE_MAX = 32_768
# What a run adds to its state after the input (job results, the record's summary, an error and its
# cause, a notification error): at most a few KiB each, but a cause may be 32 KiB. The execution input
# is kept under the payload limit by this much, so no later state can hit States.DataLimitExceeded.
RUN_STATE_HEADROOM_BYTES = 3 * ERROR_CAUSE_MAX
EXECUTION_INPUT_MAX_BYTES = PAYLOAD_MAX_BYTES - RUN_STATE_HEADROOM_BYTES

# -- S3, SNS, Lambda ------------------------------------------------------------------------------
S3_KEY_MAX_BYTES = 1024
SNS_SUBJECT_MAX = 100
SNS_MESSAGE_MAX_BYTES = 262_144
LAMBDA_SYNC_PAYLOAD_MAX_BYTES = 6 * 1024 * 1024
LAMBDA_MEMORY_MB = 512

# -- what the pipeline reads into a function's memory ------------------------------------------------
# A manifest names an experiment, a dataset, a comment and hyperparameters: a few KB. Anything larger
# is refused from its size (the event's or a HEAD's), before a byte is read.
MANIFEST_MAX_BYTES = 1_000_000
# evaluation.json of 1,000 classes (a 1,000 x 1,000 confusion matrix, per-class figures, the list of
# misclassified images) is a few MB; parsing JSON takes about ten times its size in memory.
EVALUATION_MAX_BYTES = 32 * 1024 * 1024

# -- the pipeline's own bound ---------------------------------------------------------------------
# The most classes a dataset may have: what is tested end to end (a 1,000-class run recorded and
# listed, locally and under moto). Per-class figures never go into a record (they stay in
# evaluation.json), so this bound comes from the execution input (class names and counts travel in
# it) and the tests, not from a trial-component limit.
MAX_CLASSES = 1000
# The most trials one manifest's ``sweep`` may ask for. One execution carries every trial's part of the input
# (job names, hyperparameters, output locations: about 2.8 KB each with a KMS key) within
# EXECUTION_INPUT_MAX_BYTES, and the Map's result (a few hundred bytes per trial) within the run's headroom;
# 50 trials of a dataset with a few hundred classes fit (a test builds the input of 50 and measures it).
SWEEP_MAX_TRIALS = 50
# The Map's MaxConcurrency (the SweepMaxConcurrency template parameter): 0 means no limit (Step Functions'
# own meaning), otherwise at most this many trials train at once.
SWEEP_MAX_CONCURRENCY = SWEEP_MAX_TRIALS


class LimitExceeded(ValueError):
    """Something would exceed an AWS limit; ``field`` names what, the message says which limit."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def check_trial_parameters(params: Mapping[str, Mapping[str, Any]]) -> None:
    """Refuse a trial component's ``Parameters`` that SageMaker would refuse (count, key and value sizes).

    ``params`` is in the API's shape: ``{key: {"StringValue": str} | {"NumberValue": float}}``.
    """
    if len(params) > TRIAL_COMPONENT_PARAMETERS_MAX:
        raise LimitExceeded(
            "Parameters", f"{len(params)} parameters, more than SageMaker's {TRIAL_COMPONENT_PARAMETERS_MAX}"
        )
    for key, value in params.items():
        if len(key) > TRIAL_COMPONENT_PARAMETER_KEY_MAX:
            raise LimitExceeded(
                f"Parameters.{key[:40]}...",
                f"the key has {len(key)} characters, more than SageMaker's {TRIAL_COMPONENT_PARAMETER_KEY_MAX}",
            )
        text = value.get("StringValue")
        if isinstance(text, str) and len(text) > TRIAL_COMPONENT_STRING_VALUE_MAX:
            raise LimitExceeded(
                f"Parameters.{key}",
                f"the value has {len(text)} characters, more than SageMaker's {TRIAL_COMPONENT_STRING_VALUE_MAX}",
            )


def check_status_message(message: str) -> None:
    if len(message) > TRIAL_COMPONENT_STATUS_MESSAGE_MAX:
        raise LimitExceeded(
            "Status.Message",
            f"{len(message)} characters, more than SageMaker's {TRIAL_COMPONENT_STATUS_MESSAGE_MAX}",
        )


def clip(text: str, limit: int, marker: str = " [...]") -> str:
    """``text`` cut to at most ``limit`` characters, saying so when it was cut (never silently)."""
    if len(text) <= limit:
        return text
    return text[: limit - len(marker)] + marker


def clip_utf8(text: str, limit_bytes: int, marker: str = " [...]") -> str:
    """``text`` cut to at most ``limit_bytes`` bytes of UTF-8 (on a character boundary), marked when cut."""
    if utf8_len(text) <= limit_bytes:
        return text
    room = limit_bytes - utf8_len(marker)
    cut = text.encode("utf-8")[:room].decode("utf-8", errors="ignore")
    return cut + marker
