"""The execution input is the contract with the ASL file: every path the ASL reads must exist."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from nyanops.core import naming
from nyanops.core.dataset import DatasetSummary
from nyanops.core.execution_input import (
    RunRequest,
    build_execution_input,
    hyperparameter_strings,
    run_execution_name,
    supports_volume_kms,
)
from nyanops.core.manifest import parse_manifest
from nyanops.core.settings import PipelineSettings
from nyanops.core.upload_events import Upload

ASL = Path(__file__).resolve().parents[2] / "statemachine" / "training_pipeline.asl.json"
BUCKET = "nyanops-example-bucket"
CODE_HASH = "c" * 64
PATH_RE = re.compile(r"(?<!\$)\$(?:\.[A-Za-z0-9_\-]+)+")  # not the context object's $$. paths
# Written by the state machine itself (ResultPath), not read from the execution input.
# What the run adds to its state (job results, caught errors): not part of the input.
STATE_ROOTS = ("results", "error", "notification_error", "record_error", "api_error", "champion_error")
KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
KMS_FIELDS = {"KmsKeyId", "VolumeKmsKeyId"}
SPLIT_HASHES = {"train": "1" * 64, "val": "2" * 64, "test": "3" * 64}


def settings(**overrides: Any) -> PipelineSettings:
    env = {"BUCKET_NAME": BUCKET, "AWS_REGION": "us-east-1", **overrides}
    return PipelineSettings.model_validate(env)


def request(kind: str = "manifest", manifest: dict[str, Any] | None = None, version: str | None = "v1") -> RunRequest:
    body = manifest or {
        "experiment": "cats",
        "dataset": "datasets/2026-11-28T064300Z",
        "comment": "epochs 10 + augmentation",
        "hyperparameters": {"epochs": 10, "batch-size": 8, "lr": 0.01, "momentum": 0.9, "augment": True},
    }
    key = "manifests/epochs10.json" if kind == "manifest" else "datasets/2026-11-28T064300Z/_dataset.json"
    return RunRequest(
        kind=kind,
        manifest=parse_manifest(json.dumps(body).encode()),
        dataset=DatasetSummary(
            "2026-11-28T064300Z",
            ("bengal", "siamese", "sphynx"),
            {s: {"bengal": 5, "siamese": 5, "sphynx": 5} for s in ("train", "val", "test")},
            "d" * 64,
            split_hashes=SPLIT_HASHES,
        ),
        code_hash=CODE_HASH,
        upload=Upload(BUCKET, key, version, "etag-1"),
    )


def asl_reads() -> list[tuple[str, str, str]]:
    """(state, parameter key, path) for every ``$.`` path the ASL's Parameters read."""
    asl = json.loads(ASL.read_text())
    found: list[tuple[str, str, str]] = []

    def walk(state: str, node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key.endswith(".$") and isinstance(value, str):
                    found.extend((state, key, p) for p in PATH_RE.findall(value))
                else:
                    walk(state, value)
        elif isinstance(node, list):
            for item in node:
                walk(state, item)

    for name, state in asl["States"].items():
        walk(name, state.get("Parameters", {}))  # ResultSelector paths are relative to the task result
    return found


def resolve(doc: Any, path: str) -> Any:
    node = doc
    for part in path[2:].split("."):
        shown = sorted(node) if isinstance(node, dict) else node
        assert isinstance(node, dict) and part in node, f"{path}: no {part!r} in {shown!r}"
        node = node[part]
    return node


def test_the_asl_reads_paths_at_all() -> None:
    paths = {p for _, _, p in asl_reads()}
    assert "$.training.job_name" in paths and "$.results.training.model_artifacts" in paths
    assert "$.error.Cause" in paths  # inside States.Format(...)


@pytest.mark.parametrize(
    "jobs",
    [
        {},
        {"KMS_KEY_ARN": KEY},
        {"KMS_KEY_ARN": KEY, "TRAINING_INSTANCE_TYPE": "ml.g4dn.xlarge", "PROCESSING_INSTANCE_TYPE": "ml.g4dn.xlarge"},
        {"TRAINING_INSTANCE_TYPE": "ml.g5.xlarge"},
    ],
    ids=["no-key", "key", "key-gpu", "no-key-gpu"],
)
@pytest.mark.parametrize("use_spot", ["false", "true"])
@pytest.mark.parametrize("kind", ["manifest", "dataset"])
def test_every_input_path_the_asl_reads_exists(kind: str, use_spot: str, jobs: dict[str, str]) -> None:
    doc = build_execution_input(request(kind), settings(USE_SPOT=use_spot, **jobs))
    json.dumps(doc)  # the input must be plain JSON
    for state, key, path in asl_reads():
        if path.split(".")[1] in STATE_ROOTS:
            continue
        value = resolve(doc, path)
        assert value is not None, f"{state}.{key} reads {path}, which is null"


def test_results_paths_are_produced_by_a_result_selector() -> None:
    asl = json.loads(ASL.read_text())
    produced: set[str] = set()
    for state in asl["States"].values():
        result_path = state.get("ResultPath")
        for key in state.get("ResultSelector", {}) or (state.get("Parameters", {}) if state["Type"] == "Pass" else {}):
            if result_path:
                produced.add(f"{result_path}.{key.removesuffix('.$')}")
    for state, key, path in asl_reads():
        if path.startswith("$.results."):
            assert any(path == p or path.startswith(p + ".") for p in produced), f"{state}.{key}: {path}"


def test_sagemaker_types() -> None:
    doc = build_execution_input(request(), settings(USE_SPOT="true", MAX_RUNTIME_SECONDS="7200"))
    training = doc["training"]
    assert all(isinstance(v, str) for v in training["hyperparameters"].values())
    assert training["hyperparameters"]["augment"] == "true"
    assert training["hyperparameters"]["num-classes"] == "3"
    assert training["hyperparameters"]["sagemaker_program"] == "train.py"
    assert training["hyperparameters"]["sagemaker_submit_directory"] == f"s3://{BUCKET}/code/{CODE_HASH}/sourcedir.tar.gz"
    assert training["use_spot"] is True
    assert training["stopping_condition"] == {"MaxRuntimeInSeconds": 7200, "MaxWaitTimeInSeconds": 14400}
    assert build_execution_input(request(), settings())["training"]["stopping_condition"] == {
        "MaxRuntimeInSeconds": 3600
    }


def test_names_and_locations() -> None:
    doc = build_execution_input(request(), settings())
    name = doc["execution_name"]
    assert name == run_execution_name(request()) and doc["trial"] == name
    assert name.startswith("m-epochs10-")
    assert doc["training"]["job_name"] == naming.training_job_name(name)
    assert doc["evaluation"]["job_name"] == naming.processing_job_name(name)
    assert doc["training"]["output_s3_uri"] == f"s3://{BUCKET}/runs/{name}/model/"
    assert doc["evaluation"]["output_s3_uri"] == f"s3://{BUCKET}/runs/{name}/evaluation/"
    assert doc["dataset"]["test_s3_uri"] == f"s3://{BUCKET}/datasets/2026-11-28T064300Z/test/"
    assert doc["code"]["source_s3_uri"] == f"s3://{BUCKET}/code/{CODE_HASH}/src/"
    assert doc["source"] == {"kind": "manifest", "bucket": BUCKET, "key": "manifests/epochs10.json",
                             "version_id": "v1", "etag": "etag-1"}
    assert run_execution_name(request("dataset")).startswith("ds-2026-11-28t064300z-")


def test_a_new_version_of_the_same_manifest_is_a_new_run() -> None:
    assert run_execution_name(request(version="v1")) != run_execution_name(request(version="v2"))


def test_num_classes_from_the_manifest_is_kept() -> None:
    body = {"experiment": "cats", "dataset": "datasets/2026-11-28T064300Z", "hyperparameters": {"num-classes": 3}}
    assert build_execution_input(request(manifest=body), settings())["hyperparameters"] == {"num-classes": 3}


def test_hyperparameter_strings() -> None:
    assert hyperparameter_strings({"a": True, "b": False, "c": 1, "d": 0.5, "e": "x"}) == {
        "a": "true", "b": "false", "c": "1", "d": "0.5", "e": "x"
    }


def kms_fields(node: Any, where: str = "$") -> dict[str, Any]:
    """Every KMS field anywhere in ``node``, by path."""
    found: dict[str, Any] = {}
    if isinstance(node, dict):
        for key, value in node.items():
            if key in KMS_FIELDS:
                found[f"{where}.{key}"] = value
            found.update(kms_fields(value, f"{where}.{key}"))
    elif isinstance(node, list):
        for i, item in enumerate(node):
            found.update(kms_fields(item, f"{where}[{i}]"))
    return found


def test_job_configs_without_a_key_carry_no_kms_field() -> None:
    doc = build_execution_input(request(), settings())
    assert kms_fields(doc) == {}
    name = doc["execution_name"]
    training, evaluation = doc["training"], doc["evaluation"]
    assert training["output_data_config"] == {"S3OutputPath": f"s3://{BUCKET}/runs/{name}/model/"}
    assert training["resource_config"] == {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge", "VolumeSizeInGB": 30}
    assert evaluation["output_config"] == {
        "Outputs": [{"OutputName": "evaluation", "S3Output": {
            "S3Uri": f"s3://{BUCKET}/runs/{name}/evaluation/", "LocalPath": "/opt/ml/processing/evaluation",
            "S3UploadMode": "EndOfJob"}}]
    }
    assert evaluation["cluster_config"] == {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge", "VolumeSizeInGB": 30}
    # The configs and the paths RecordResults reads agree.
    assert training["output_data_config"]["S3OutputPath"] == training["output_s3_uri"]
    assert evaluation["output_config"]["Outputs"][0]["S3Output"]["S3Uri"] == evaluation["output_s3_uri"]


def test_an_empty_key_is_no_key() -> None:
    assert kms_fields(build_execution_input(request(), settings(KMS_KEY_ARN=""))) == {}


def test_a_key_encrypts_outputs_and_volumes() -> None:
    doc = build_execution_input(request(), settings(KMS_KEY_ARN=KEY, TRAINING_INSTANCE_TYPE="ml.m5.xlarge",
                                                    PROCESSING_INSTANCE_TYPE="ml.c5.xlarge"))
    assert kms_fields(doc) == {
        "$.training.output_data_config.KmsKeyId": KEY,
        "$.training.resource_config.VolumeKmsKeyId": KEY,
        "$.evaluation.output_config.KmsKeyId": KEY,
        "$.evaluation.cluster_config.VolumeKmsKeyId": KEY,
    }
    assert doc["training"]["resource_config"]["InstanceType"] == "ml.m5.xlarge"
    assert doc["evaluation"]["cluster_config"]["InstanceType"] == "ml.c5.xlarge"


def test_a_key_leaves_local_nvme_volumes_alone() -> None:
    """SageMaker refuses VolumeKmsKeyId for instance types with local NVMe storage (hardware-encrypted)."""
    doc = build_execution_input(request(), settings(KMS_KEY_ARN=KEY, TRAINING_INSTANCE_TYPE="ml.g4dn.xlarge",
                                                    PROCESSING_INSTANCE_TYPE="ml.g4dn.xlarge"))
    assert kms_fields(doc) == {
        "$.training.output_data_config.KmsKeyId": KEY,
        "$.evaluation.output_config.KmsKeyId": KEY,
    }
    assert doc["training"]["resource_config"] == {"InstanceCount": 1, "InstanceType": "ml.g4dn.xlarge",
                                                  "VolumeSizeInGB": 30}


@pytest.mark.parametrize(
    "instance_type",
    ["ml.m5.xlarge", "ml.m5.large", "ml.c5.2xlarge", "ml.c5n.xlarge", "ml.t3.medium", "ml.p3.2xlarge",
     "ml.p2.xlarge", "ml.inf2.xlarge", "ml.m6i.large", "ml.r5.large"],
)
def test_volume_kms_on_ebs_instance_types(instance_type: str) -> None:
    assert supports_volume_kms(instance_type) is True


@pytest.mark.parametrize(
    "instance_type",
    ["ml.g4dn.xlarge", "ml.g4dn.2xlarge", "ml.g5.xlarge", "ml.g5.2xlarge", "ml.g6.xlarge", "ml.g6e.xlarge",
     "ml.p3dn.24xlarge", "ml.p4d.24xlarge", "ml.p4de.24xlarge", "ml.p5.48xlarge", "ml.trn1.2xlarge",
     "ml.m5d.xlarge", "ml.c5d.xlarge", "ml.r5dn.large", "ml.m6id.large", "ml.g4ad.xlarge", "ml.dl1.24xlarge",
     "ml.p6-b200.48xlarge"],
)
def test_no_volume_kms_on_local_nvme_instance_types(instance_type: str) -> None:
    assert supports_volume_kms(instance_type) is False


@pytest.mark.parametrize("bad", ["m5.xlarge", "ml.m5", "", "ml..xlarge"])
def test_supports_volume_kms_wants_an_instance_type(bad: str) -> None:
    with pytest.raises(ValueError):
        supports_volume_kms(bad)



@pytest.mark.parametrize("kind", ["manifest", "dataset"])
def test_the_jobs_get_the_sealed_identity_to_check(kind: str) -> None:
    """The seal's split hashes travel to both jobs: train/val as training hyperparameters, test as the
    evaluation container's argument (ASL: AppSpecification.ContainerArguments)."""
    doc = build_execution_input(request(kind), settings())
    assert doc["dataset"]["split_hashes"] == SPLIT_HASHES
    assert doc["dataset"]["content_hash"] == "d" * 64
    hyper = doc["training"]["hyperparameters"]
    assert hyper["expected-train-hash"] == SPLIT_HASHES["train"]
    assert hyper["expected-val-hash"] == SPLIT_HASHES["val"]
    assert doc["evaluation"]["container_arguments"] == ["--expected-test-hash", SPLIT_HASHES["test"]]
    # The recorded hyperparameters are the recipe's, not the pipeline's checks.
    assert not {"expected-train-hash", "expected-val-hash"} & set(doc["hyperparameters"])
    asl = json.loads(ASL.read_text())
    assert asl["States"]["Evaluate"]["Parameters"]["AppSpecification"]["ContainerArguments.$"] == (
        "$.evaluation.container_arguments")
