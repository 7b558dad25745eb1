"""Building the state machine's input from a validated run request: pure functions.

The shape is the contract with ``statemachine/training_pipeline.asl.json`` (every ``$.`` path it
reads is produced here; a test checks that) and with RecordResults.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nyanops.core import layout, naming
from nyanops.core.dataset import DatasetSummary
from nyanops.core.manifest import Manifest
from nyanops.core.settings import PipelineSettings
from nyanops.core.upload_events import Upload

INPUT_VERSION = 1
TRAIN_ENTRY_POINT = "train.py"
EVALUATION_ENTRY_POINT = "evaluation.py"
SAGEMAKER_PREFIX = "sagemaker_"


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
    if request.kind == "dataset":
        prefix, label = "ds", request.dataset.dataset_id
    else:
        prefix, label = "m", request.upload.key.rsplit("/", 1)[-1].removesuffix(layout.MANIFEST_SUFFIX)
    up = request.upload
    return naming.execution_name(prefix, label, up.bucket, up.key, up.version)


def hyperparameter_strings(values: dict[str, Any]) -> dict[str, str]:
    """SageMaker passes hyperparameters as strings; ``train.py`` reads them as ``--name value``."""
    out: dict[str, str] = {}
    for name, value in values.items():
        if isinstance(value, bool):
            out[name] = "true" if value else "false"
        else:
            out[name] = str(value)
    return out


def build_execution_input(request: RunRequest, settings: PipelineSettings) -> dict[str, Any]:
    """The execution input for one run (the ``$`` the state machine starts with)."""
    name = run_execution_name(request)
    bucket = settings.bucket
    ds = request.dataset
    manifest = request.manifest
    hyper = manifest.hyperparameters.given()
    hyper.setdefault("num-classes", len(ds.classes))
    code_uri = layout.s3_uri(bucket, layout.code_bundle_key(request.code_hash))
    sm_hyper = hyperparameter_strings(hyper)
    sm_hyper.update(
        {
            f"{SAGEMAKER_PREFIX}program": TRAIN_ENTRY_POINT,
            f"{SAGEMAKER_PREFIX}submit_directory": code_uri,
            f"{SAGEMAKER_PREFIX}region": settings.region,
        }
    )
    stopping: dict[str, int] = {"MaxRuntimeInSeconds": settings.max_runtime_seconds}
    if settings.use_spot:
        # Spot jobs wait for capacity; give them as long again as they may run.
        stopping["MaxWaitTimeInSeconds"] = 2 * settings.max_runtime_seconds
    return {
        "input_version": INPUT_VERSION,
        "execution_name": name,
        "experiment": manifest.experiment,
        "trial": name,
        "comment": manifest.comment,
        "primary_metric": settings.primary_metric,
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
        "hyperparameters": hyper,
        "training": {
            "job_name": naming.training_job_name(name),
            "hyperparameters": sm_hyper,
            "output_s3_uri": layout.s3_uri(bucket, layout.run_model_prefix(name)),
            "checkpoint_s3_uri": layout.s3_uri(bucket, layout.run_checkpoint_prefix(name)),
            "stopping_condition": stopping,
            "use_spot": settings.use_spot,
        },
        "evaluation": {
            "job_name": naming.processing_job_name(name),
            "output_s3_uri": layout.s3_uri(bucket, layout.run_evaluation_prefix(name)),
            "stopping_condition": {"MaxRuntimeInSeconds": settings.evaluation_max_runtime_seconds},
        },
    }
