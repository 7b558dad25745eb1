"""Building the state machine's input from a validated run request: pure functions.

Version 2: the trials of one execution (a manifest's sweep; one trial without a sweep) are a list the state
machine's Map iterates, each with its name, resolved hyperparameters, jobs and output locations; what they
share (dataset, code, experiment, settings) is there once.

The shape is the contract with ``statemachine/training_pipeline.asl.json`` (every ``$.`` path it
reads is produced here; a test checks that) and with RecordResults.

The job parameters that may carry the optional KMS key (``training.output_data_config``,
``training.resource_config``, ``evaluation.output_config``, ``evaluation.cluster_config``) are built here
whole and taken by the ASL with ``.$``: a KMS field is present only when there is a key, never empty.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from nyanops.core import hyperparameters, layout, naming
from nyanops.core.dataset import DatasetSummary
from nyanops.core.manifest import Manifest, trial_hyperparameters
from nyanops.core.settings import PipelineSettings
from nyanops.core.upload_events import Upload

INPUT_VERSION = 2
TRAIN_ENTRY_POINT = "train.py"
EVALUATION_ENTRY_POINT = "evaluation.py"
SAGEMAKER_PREFIX = "sagemaker_"
VOLUME_SIZE_GB = 30
# The sealed identity the jobs check what they downloaded against (ml_code; core/content_identity):
# train.py takes the train and val split hashes as hyperparameters, evaluation.py the test one as an argument.
EXPECTED_TRAIN_HASH = "expected-train-hash"
EXPECTED_VAL_HASH = "expected-val-hash"
EXPECTED_TEST_HASH_ARG = "--expected-test-hash"
EVALUATION_OUTPUT_NAME = "evaluation"
EVALUATION_OUTPUT_PATH = "/opt/ml/processing/evaluation"
RETRIED_TASKS = ("train", "evaluate", "champion")

# Instance families with local NVMe instance storage. SageMaker refuses a VolumeKmsKeyId for them
# (CreateTrainingJob ResourceConfig.VolumeKmsKeyId, CreateProcessingJob ClusterConfig.VolumeKmsKeyId:
# "You can't request a VolumeKmsKeyId when using an instance type with local storage"); their local
# storage is encrypted by a hardware module on the instance. Besides these, every family whose name
# carries a "d" after the generation (m5d, c5d, r5dn, m6id, g4dn, g4ad, p3dn, p4d, p4de...) has local
# storage (EC2 "Instance store volumes"). An unknown family is taken to have no local storage (if it has
# some, SageMaker refuses the job with a validation error: add the family here).
LOCAL_NVME_FAMILIES = frozenset(
    {"g5", "g6", "g6e", "g6f", "gr6", "gr6f", "p5", "p5e", "p5en", "p6-b200", "trn1", "trn1n", "trn2", "dl1"}
)
_D_VARIANT = re.compile(r"[a-z]+[0-9]+[a-z]*d[a-z]*")


@dataclass(frozen=True)
class RunRequest:
    """A validated request to run: what to train, on which data, with which code, and why."""

    kind: str  # "manifest" | "dataset"
    manifest: Manifest
    dataset: DatasetSummary
    code_hash: str
    upload: Upload


def run_execution_name(request: RunRequest) -> str:
    """Deterministic per upload: the same event delivered twice names the same execution."""
    return upload_execution_name(request.upload, request.kind, request.dataset.dataset_id)


def upload_execution_name(upload: Upload, kind: str, dataset_id: str | None = None) -> str:
    """The name StartPipeline gives the execution an upload starts (``kind`` "manifest" or "dataset"), from
    the upload alone: the CLI computes it after its PutObject to follow the execution on AWS."""
    if kind == "dataset":
        prefix, label = "ds", dataset_id or ""
    else:
        prefix, label = "m", upload.key.rsplit("/", 1)[-1].removesuffix(layout.MANIFEST_SUFFIX)
    return naming.execution_name(prefix, label, upload.bucket, upload.key, upload.version)


def hyperparameter_strings(values: dict[str, Any]) -> dict[str, str]:
    """SageMaker passes hyperparameters as strings; ``train.py`` reads them as ``--name value``."""
    out: dict[str, str] = {}
    for name, value in values.items():
        if isinstance(value, bool):
            out[name] = "true" if value else "false"
        else:
            out[name] = str(value)
    return out


def supports_volume_kms(instance_type: str) -> bool:
    """Whether SageMaker accepts a ``VolumeKmsKeyId`` for ``instance_type`` (``ml.<family>.<size>``):
    not for instance types with local NVMe storage (see ``LOCAL_NVME_FAMILIES``)."""
    parts = instance_type.split(".")
    family = parts[1] if len(parts) == 3 and parts[0] == "ml" else ""
    if not family:
        raise ValueError(f"not a SageMaker instance type (ml.<family>.<size>): {instance_type!r}")
    return family not in LOCAL_NVME_FAMILIES and not _D_VARIANT.fullmatch(family)


def _with_key(config: dict[str, Any], field: str, key: str, applies: bool = True) -> dict[str, Any]:
    """``config`` plus ``field: key`` when there is a key (and it applies); never an empty key field."""
    return {**config, field: key} if key and applies else config


def build_execution_input(request: RunRequest, settings: PipelineSettings) -> dict[str, Any]:
    """The execution input for one run (the ``$`` the state machine starts with): the parts every trial shares
    once, and ``trials``, the list the Map iterates, one item per trial of the manifest's sweep (one without a
    sweep). Each iteration's state is the shared parts plus its item (the Map's ItemSelector), in the shape
    today's per-trial states and RecordResults read (``trial_run``)."""
    name = run_execution_name(request)
    bucket = settings.bucket
    ds = request.dataset
    manifest = request.manifest
    code_uri = layout.s3_uri(bucket, layout.code_bundle_key(request.code_hash))
    given = trial_hyperparameters(manifest)
    trials = [
        _trial(request, settings, naming.trial_name(name, index, len(given)), index, values, code_uri)
        for index, values in enumerate(given)
    ]
    return {
        "input_version": INPUT_VERSION,
        "execution_name": name,
        "experiment": manifest.experiment,
        "comment": manifest.comment,
        "force": manifest.force,
        "primary_metric": settings.primary_metric,
        "best_model_tolerance": settings.best_model_tolerance,
        # The Map's MaxConcurrencyPath: how many trials run at once (0: all).
        "max_concurrency": settings.sweep_max_concurrency,
        "source": {
            "kind": request.kind,
            "bucket": request.upload.bucket,
            "key": request.upload.key,
            "version_id": request.upload.version_id,
            "etag": request.upload.etag,
        },
        "dataset": {
            "id": ds.dataset_id,
            "content_hash": ds.content_hash,
            "split_hashes": {split: ds.split_hashes[split] for split in layout.SPLITS},
            "classes": list(ds.classes),
            "counts": ds.counts,
            "train_s3_uri": layout.s3_uri(bucket, layout.dataset_split_prefix(ds.dataset_id, "train")),
            "val_s3_uri": layout.s3_uri(bucket, layout.dataset_split_prefix(ds.dataset_id, "val")),
            "test_s3_uri": layout.s3_uri(bucket, layout.dataset_split_prefix(ds.dataset_id, "test")),
        },
        "code": {
            "hash": request.code_hash,
            "bundle_s3_uri": code_uri,
            "source_s3_uri": layout.s3_uri(bucket, layout.code_source_prefix(request.code_hash)),
        },
        # The state machine's own counters of SageMaker API calls retried after throttling (see its Choice states).
        "retries": {task: {"count": 0} for task in RETRIED_TASKS},
        "trials": trials,
    }


# The parts of the execution input every iteration's state carries, besides its trial's item (the ASL's Map
# ItemSelector selects exactly these; a test keeps the two in step).
SHARED_KEYS = (
    "input_version", "execution_name", "experiment", "comment", "force", "primary_metric", "best_model_tolerance",
    "source", "dataset", "code", "retries",
)


def trial_run(execution_input: dict[str, Any], index: int) -> dict[str, Any]:
    """Iteration ``index``'s state as the Map's ItemSelector builds it: the shared parts and the trial's item."""
    item = execution_input["trials"][index]
    return {**{k: execution_input[k] for k in SHARED_KEYS}, **item}


def trial_names(execution_input: dict[str, Any]) -> list[str]:
    """The trials one execution runs, in order (an input from before sweeps names its one trial at the top)."""
    trials = execution_input.get("trials")
    if isinstance(trials, list):
        return [str(t["trial"]) for t in trials if isinstance(t, dict) and "trial" in t]
    return [str(execution_input["trial"])] if "trial" in execution_input else []


def _trial(
    request: RunRequest, settings: PipelineSettings, trial: str, index: int, given: dict[str, Any], code_uri: str
) -> dict[str, Any]:
    """One trial's item of the Map: its name, resolved hyperparameters, jobs and where they write."""
    bucket = settings.bucket
    ds = request.dataset
    hyper = hyperparameters.resolve(given, len(ds.classes))
    sm_hyper = hyperparameter_strings(hyper)
    sm_hyper.update(
        {
            EXPECTED_TRAIN_HASH: ds.split_hashes["train"],
            EXPECTED_VAL_HASH: ds.split_hashes["val"],
            f"{SAGEMAKER_PREFIX}program": TRAIN_ENTRY_POINT,
            f"{SAGEMAKER_PREFIX}submit_directory": code_uri,
            f"{SAGEMAKER_PREFIX}region": settings.region,
        }
    )
    key = settings.kms_key_arn
    training_output = layout.s3_uri(bucket, layout.run_model_prefix(trial))
    evaluation_output = layout.s3_uri(bucket, layout.run_evaluation_prefix(trial))
    training_type, processing_type = settings.training_instance_type, settings.processing_instance_type
    stopping: dict[str, int] = {"MaxRuntimeInSeconds": settings.max_runtime_seconds}
    if settings.use_spot:
        # Spot jobs wait for capacity; give them as long again as they may run.
        stopping["MaxWaitTimeInSeconds"] = 2 * settings.max_runtime_seconds
    return {
        "trial": trial,
        "index": index,
        "hyperparameters": hyper,
        "training": {
            "job_name": naming.training_job_name(trial),
            "hyperparameters": sm_hyper,
            "output_s3_uri": training_output,
            "checkpoint_s3_uri": layout.s3_uri(bucket, layout.run_checkpoint_prefix(trial)),
            "stopping_condition": stopping,
            "use_spot": settings.use_spot,
            # CreateTrainingJob OutputDataConfig and ResourceConfig, whole.
            "output_data_config": _with_key({"S3OutputPath": training_output}, "KmsKeyId", key),
            "resource_config": _with_key(
                {"InstanceCount": 1, "InstanceType": training_type, "VolumeSizeInGB": VOLUME_SIZE_GB},
                "VolumeKmsKeyId", key, supports_volume_kms(training_type),
            ),
        },
        "evaluation": {
            "job_name": naming.processing_job_name(trial),
            "output_s3_uri": evaluation_output,
            # CreateProcessingJob AppSpecification.ContainerArguments: evaluation.py checks the test split it got.
            "container_arguments": [EXPECTED_TEST_HASH_ARG, ds.split_hashes["test"]],
            "stopping_condition": {"MaxRuntimeInSeconds": settings.evaluation_max_runtime_seconds},
            # CreateProcessingJob ProcessingOutputConfig and ProcessingResources.ClusterConfig, whole.
            "output_config": _with_key(
                {
                    "Outputs": [
                        {
                            "OutputName": EVALUATION_OUTPUT_NAME,
                            "S3Output": {
                                "S3Uri": evaluation_output,
                                "LocalPath": EVALUATION_OUTPUT_PATH,
                                "S3UploadMode": "EndOfJob",
                            },
                        }
                    ]
                },
                "KmsKeyId", key,
            ),
            "cluster_config": _with_key(
                {"InstanceCount": 1, "InstanceType": processing_type, "VolumeSizeInGB": VOLUME_SIZE_GB},
                "VolumeKmsKeyId", key, supports_volume_kms(processing_type),
            ),
        },
    }
