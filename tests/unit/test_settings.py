"""Configuration from the environment: missing or bad variables are named, nothing is guessed."""

from __future__ import annotations

import pytest

from nyanops.core.settings import (
    PipelineSettings,
    RecordResultsSettings,
    SettingsError,
    StartPipelineSettings,
    load_settings,
)

START_ENV = {
    "BUCKET_NAME": "nyanops-example-bucket",
    "AWS_REGION": "us-east-1",
    "STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:nyanops",
    "TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:nyanops",
}


def test_start_pipeline_settings_with_defaults() -> None:
    s = load_settings(StartPipelineSettings, START_ENV)
    assert (s.bucket, s.region, s.default_experiment, s.primary_metric) == (
        "nyanops-example-bucket", "us-east-1", "cats", "macro_f1")
    assert s.use_spot is False and s.max_runtime_seconds == 3600
    assert (s.training_instance_type, s.processing_instance_type, s.kms_key_arn) == ("ml.m5.xlarge", "ml.m5.xlarge", "")


@pytest.mark.parametrize("missing", sorted(START_ENV))
def test_each_missing_variable_is_named(missing: str) -> None:
    env = {k: v for k, v in START_ENV.items() if k != missing}
    with pytest.raises(SettingsError, match=missing):
        load_settings(StartPipelineSettings, env)


def test_all_missing_variables_are_named_at_once() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(RecordResultsSettings, {})
    assert "BUCKET_NAME" in str(caught.value) and "EXPERIMENT_LOCK_TABLE" in str(caught.value)


@pytest.mark.parametrize(
    ("name", "value"),
    [("PRIMARY_METRIC", "f2"), ("MAX_RUNTIME_SECONDS", "10"), ("USE_SPOT", "maybe"), ("BUCKET_NAME", "b"),
     ("TRAINING_INSTANCE_TYPE", "m5.xlarge"), ("TRAINING_INSTANCE_TYPE", ""), ("PROCESSING_INSTANCE_TYPE", "ml.m5"),
     ("KMS_KEY_ARN", "alias/aws/s3"), ("KMS_KEY_ARN", "arn:aws:kms:us-east-1:123456789012:alias/nyanops"),
     ("KMS_KEY_ARN", " ")],
)
def test_bad_values_are_named(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        load_settings(StartPipelineSettings, {**START_ENV, name: value})


def test_values_are_parsed() -> None:
    s = load_settings(PipelineSettings, {**START_ENV, "USE_SPOT": "true", "PRIMARY_METRIC": "error_rate",
                                         "EVALUATION_MAX_RUNTIME_SECONDS": "600"})
    assert s.use_spot is True and s.primary_metric == "error_rate" and s.evaluation_max_runtime_seconds == 600


def test_jobs_settings_are_parsed() -> None:
    key = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    s = load_settings(PipelineSettings, {**START_ENV, "TRAINING_INSTANCE_TYPE": "ml.g4dn.xlarge",
                                         "PROCESSING_INSTANCE_TYPE": "ml.t3.medium", "KMS_KEY_ARN": key})
    assert (s.training_instance_type, s.processing_instance_type, s.kms_key_arn) == (
        "ml.g4dn.xlarge", "ml.t3.medium", key)
    assert load_settings(PipelineSettings, {**START_ENV, "KMS_KEY_ARN": ""}).kms_key_arn == ""


def test_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUCKET_NAME", "from-env-bucket")
    monkeypatch.setenv("EXPERIMENT_LOCK_TABLE", "locks")
    monkeypatch.setenv("MODEL_IMAGE", "123456789012.dkr.ecr.eu-west-1.amazonaws.com/pytorch:2.14-cpu")
    assert load_settings(RecordResultsSettings).lock_table == "locks"


def test_local_best_model_tolerance_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from nyanops.local.runner import local_settings

    monkeypatch.delenv("NYANOPS_BEST_MODEL_TOLERANCE", raising=False)
    assert local_settings().best_model_tolerance == 0.005
    monkeypatch.setenv("NYANOPS_BEST_MODEL_TOLERANCE", "0.02")
    assert local_settings().best_model_tolerance == 0.02
    monkeypatch.setenv("NYANOPS_BEST_MODEL_TOLERANCE", "0.9")
    with pytest.raises(ValueError, match="BEST_MODEL_TOLERANCE"):
        local_settings()
