"""Configuration read once from the environment and validated loudly (no silent defaults for ARNs
or buckets). ``template.yaml`` sets every variable here; a test keeps the two in step."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from nyanops.core import best_model, limits

T = TypeVar("T", bound=BaseModel)

# An instance type as SageMaker names it (ml.<family>.<size>); the template's AllowedValues list the real ones.
INSTANCE_TYPE_RE = re.compile(r"ml\.[a-z0-9-]+\.[a-z0-9-]+")
# The template's KmsKeyArn AllowedPattern (a key ARN, not an alias); empty means "no key".
KMS_KEY_ARN_RE = re.compile(r"arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+")


class SettingsError(RuntimeError):
    pass


class PipelineSettings(BaseModel):
    """What the execution input needs besides the upload: where, how long, spot or not."""

    model_config = ConfigDict(frozen=True)

    bucket: str = Field(min_length=3, alias="BUCKET_NAME")
    region: str = Field(min_length=1, alias="AWS_REGION")
    default_experiment: str = Field(default="cats", alias="DEFAULT_EXPERIMENT")
    primary_metric: str = Field(default=best_model.DEFAULT_PRIMARY_METRIC, alias="PRIMARY_METRIC")
    # How much better than the best trial (on the same test set) a trial must be to take the best flag.
    best_model_tolerance: float = Field(
        default=best_model.DEFAULT_TOLERANCE, ge=0, le=best_model.MAX_TOLERANCE, alias="BEST_MODEL_TOLERANCE"
    )
    use_spot: bool = Field(default=False, alias="USE_SPOT")
    max_runtime_seconds: int = Field(default=3600, ge=60, le=432000, alias="MAX_RUNTIME_SECONDS")
    evaluation_max_runtime_seconds: int = Field(default=1800, ge=60, le=432000, alias="EVALUATION_MAX_RUNTIME_SECONDS")
    training_instance_type: str = Field(default="ml.m5.xlarge", alias="TRAINING_INSTANCE_TYPE")
    processing_instance_type: str = Field(default="ml.m5.xlarge", alias="PROCESSING_INSTANCE_TYPE")
    # How many trials of a sweep train at once (the Map's MaxConcurrency; 0: all of them). Locally: the machine's
    # job slots (nyanops.local.capacity).
    sweep_max_concurrency: int = Field(
        default=4, ge=0, le=limits.SWEEP_MAX_CONCURRENCY, alias="SWEEP_MAX_CONCURRENCY"
    )
    # Empty: no customer managed key (the job parameters then carry no KMS field at all).
    kms_key_arn: str = Field(default="", alias="KMS_KEY_ARN")

    @field_validator("primary_metric")
    @classmethod
    def _metric(cls, value: str) -> str:
        return best_model.check_metric(value)

    @field_validator("training_instance_type", "processing_instance_type")
    @classmethod
    def _instance_type(cls, value: str) -> str:
        if not INSTANCE_TYPE_RE.fullmatch(value):
            raise ValueError(f"not a SageMaker instance type (ml.<family>.<size>): {value!r}")
        return value

    @field_validator("kms_key_arn")
    @classmethod
    def _kms_key_arn(cls, value: str) -> str:
        if value and not KMS_KEY_ARN_RE.fullmatch(value):
            raise ValueError("empty, or a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID; not an alias)")
        return value


class StartPipelineSettings(PipelineSettings):
    state_machine_arn: str = Field(min_length=1, alias="STATE_MACHINE_ARN")
    topic_arn: str = Field(min_length=1, alias="TOPIC_ARN")


class DatasetUploadsSettings(BaseModel):
    """NoteDatasetUploads: the bucket, the dataset registry table, the topic for refusals of late files."""

    model_config = ConfigDict(frozen=True)

    bucket: str = Field(min_length=3, alias="BUCKET_NAME")
    registry_table: str = Field(min_length=1, alias="DATASET_REGISTRY_TABLE")
    topic_arn: str = Field(min_length=1, alias="TOPIC_ARN")


class SealDatasetsSettings(DatasetUploadsSettings):
    """SealDatasets: also how long an upload must be quiet before its prefix is sealed (DatasetQuietSeconds)."""

    quiet_seconds: int = Field(ge=10, le=3600, alias="QUIET_SECONDS")


class RecordResultsSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    bucket: str = Field(min_length=3, alias="BUCKET_NAME")
    lock_table: str = Field(min_length=1, alias="EXPERIMENT_LOCK_TABLE")
    # The image of the best models' packages in the Model Registry: the one the evaluation runs in.
    model_image: str = Field(min_length=1, alias="MODEL_IMAGE")


def load_settings(model: type[T], environ: Mapping[str, str] | None = None) -> T:
    """Build ``model`` from environment variables, naming every missing or bad variable."""
    env = dict(os.environ if environ is None else environ)
    try:
        return model.model_validate(env)
    except ValidationError as exc:
        lines = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise SettingsError("bad or missing environment variables: " + "; ".join(lines)) from None
