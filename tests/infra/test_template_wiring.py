"""template.yaml and the code cannot drift: substitutions, environment variables, parameters."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

from nyanops.core import best_model, limits, naming
from nyanops.core.execution_input import supports_volume_kms
from nyanops.core.settings import KMS_KEY_ARN_RE, PipelineSettings, RecordResultsSettings, StartPipelineSettings

PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
# Set by Lambda itself, never by the template.
RUNTIME_VARIABLES = {"AWS_REGION"}
# Read by powertools / the logging setup rather than by nyanops' settings models.
OBSERVABILITY = re.compile(r"^(POWERTOOLS_[A-Z_]+|LOG_LEVEL)$")
HANDLER_SETTINGS = {"StartPipelineFunction": StartPipelineSettings, "RecordResultsFunction": RecordResultsSettings}


def aliases(model: type[BaseModel]) -> set[str]:
    return {field.alias or name for name, field in model.model_fields.items()}


def function_environment(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    """Globals' variables overlaid with the function's own, as SAM merges them."""
    merged = dict(template["Globals"]["Function"]["Environment"]["Variables"])
    own = template["Resources"][logical_id]["Properties"].get("Environment", {}).get("Variables", {})
    merged.update(own)
    return merged


def test_every_asl_placeholder_has_a_substitution_and_vice_versa(asl_text, resources):
    placeholders = set(PLACEHOLDER.findall(asl_text))
    substitutions = set(resources["TrainingPipeline"]["Properties"]["DefinitionSubstitutions"])
    assert placeholders, "the ASL file has no ${...} placeholders: the pattern is wrong"
    assert placeholders - substitutions == set(), "placeholders without a DefinitionSubstitutions key"
    assert substitutions - placeholders == set(), "DefinitionSubstitutions keys the ASL never uses"


def test_instance_types_and_the_key_reach_the_jobs_through_the_execution_input(template, resources):
    """Not through DefinitionSubstitutions: StartPipeline builds the jobs' resource and output configs."""
    substitutions = resources["TrainingPipeline"]["Properties"]["DefinitionSubstitutions"]
    assert not {"TrainingInstanceType", "ProcessingInstanceType", "KmsKeyArn"} & set(substitutions)
    env = function_environment(template, "StartPipelineFunction")
    assert env["TRAINING_INSTANCE_TYPE"] == {"Ref": "TrainingInstanceType"}
    assert env["PROCESSING_INSTANCE_TYPE"] == {"Ref": "ProcessingInstanceType"}
    assert env["KMS_KEY_ARN"] == {"Fn::If": ["HasKmsKey", {"Ref": "KmsKeyArn"}, ""]}
    # The settings accept exactly the keys the parameter accepts (and "" for none).
    assert template["Parameters"]["KmsKeyArn"]["AllowedPattern"] == f"^$|^{KMS_KEY_ARN_RE.pattern}$"
    # Every value the parameters allow passes the settings' validation.
    base = {"BUCKET_NAME": "b-bucket", "AWS_REGION": "us-east-1", "STATE_MACHINE_ARN": "arn", "TOPIC_ARN": "arn"}
    params = template["Parameters"]
    for training in params["TrainingInstanceType"]["AllowedValues"]:
        for processing in params["ProcessingInstanceType"]["AllowedValues"]:
            StartPipelineSettings.model_validate(
                {**base, "TRAINING_INSTANCE_TYPE": training, "PROCESSING_INSTANCE_TYPE": processing}
            )


def test_which_allowed_instance_types_take_a_volume_key(template):
    """With a KmsKeyArn, VolumeKmsKeyId is left out for the types with local NVMe storage (SageMaker refuses
    it there): of the allowed types, the g4dn and g5 ones; p3 is EBS-backed."""
    params = template["Parameters"]
    allowed = {*params["TrainingInstanceType"]["AllowedValues"], *params["ProcessingInstanceType"]["AllowedValues"]}
    assert {t for t in allowed if not supports_volume_kms(t)} == {
        "ml.g4dn.xlarge", "ml.g4dn.2xlarge", "ml.g5.xlarge", "ml.g5.2xlarge"}


def test_state_machine_uses_the_asl_file_and_is_standard(resources):
    props = resources["TrainingPipeline"]["Properties"]
    assert props["DefinitionUri"] == "statemachine/training_pipeline.asl.json"
    assert props["Type"] == "STANDARD"
    assert props["Logging"]["Level"] in ("ERROR", "ALL")
    assert props["Tracing"]["Enabled"] is True


def test_every_variable_a_handler_reads_is_set_and_nothing_else(template):
    for logical_id, model in HANDLER_SETTINGS.items():
        env = set(function_environment(template, logical_id))
        read = aliases(model) - RUNTIME_VARIABLES
        assert read - env == set(), f"{logical_id}: the code reads variables the template does not set"
        extra = {name for name in env - read if not OBSERVABILITY.match(name)}
        assert extra == set(), f"{logical_id}: the template sets variables nothing reads"
        assert "POWERTOOLS_SERVICE_NAME" in env


def test_functions_use_the_layer_and_runtime(template, resources):
    glob = template["Globals"]["Function"]
    assert glob["Runtime"] == "python3.11"
    assert glob["Architectures"] == ["x86_64"]
    assert glob["Tracing"] == "Active"
    assert glob["Layers"] == [{"Ref": "SharedCoreLayer"}]
    layer = resources["SharedCoreLayer"]
    assert layer["Metadata"]["BuildMethod"] == "makefile"
    assert layer["Properties"]["ContentUri"] == "src"
    for logical_id, code in (("StartPipelineFunction", "start_pipeline"), ("RecordResultsFunction", "record_results")):
        assert resources[logical_id]["Properties"]["CodeUri"] == f"functions/{code}"


def test_parameters_follow_the_core(template):
    params = template["Parameters"]
    assert tuple(params["PrimaryMetric"]["AllowedValues"]) == best_model.PRIMARY_METRICS
    assert params["PrimaryMetric"]["Default"] == best_model.DEFAULT_PRIMARY_METRIC
    rule = re.compile(params["DefaultExperimentName"]["AllowedPattern"])
    assert rule.pattern == f"^{naming.EXPERIMENT_NAME_RE.pattern}$"
    assert rule.match(params["DefaultExperimentName"]["Default"])
    assert "ml.g4dn.xlarge" in params["TrainingInstanceType"]["AllowedValues"]
    assert params["TrainingInstanceType"]["Default"] == "ml.m5.xlarge"
    # The Map's MaxConcurrency: 0 (no limit) up to the most trials a sweep may have, as PipelineSettings allows.
    sweep = params["SweepMaxConcurrency"]
    assert (sweep["MinValue"], sweep["MaxValue"]) == (0, limits.SWEEP_MAX_CONCURRENCY)
    field = PipelineSettings.model_fields["sweep_max_concurrency"]
    assert sweep["Default"] == field.default


def test_the_sweep_concurrency_reaches_the_execution_input(template, resources):
    env = resources["StartPipelineFunction"]["Properties"]["Environment"]["Variables"]
    assert env["SWEEP_MAX_CONCURRENCY"] == {"Ref": "SweepMaxConcurrency"}


def test_email_subscription_only_when_an_address_is_given(template, resources):
    assert resources["ResultsEmailSubscription"]["Condition"] == "HasNotificationEmail"
    assert template["Conditions"]["HasNotificationEmail"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "NotificationEmail"}, ""]}]
    }
    assert resources["ResultsTopic"]["Properties"]["KmsMasterKeyId"] == "alias/aws/sns"


def test_outputs(template):
    assert {"BucketName", "StateMachineArn", "ResultsTopicArn"} <= set(template["Outputs"])


def test_the_model_registry_image_is_the_evaluations_image(template, resources):
    """RecordResults registers the best model with the image its evaluation ran in (MODEL_IMAGE)."""
    substitutions = resources["TrainingPipeline"]["Properties"]["DefinitionSubstitutions"]
    assert function_environment(template, "RecordResultsFunction")["MODEL_IMAGE"] == substitutions["ProcessingImage"]
