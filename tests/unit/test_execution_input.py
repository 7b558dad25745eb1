"""The execution input is the contract with the ASL file: every path the ASL reads must exist."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from nyanops.core import limits, naming
from nyanops.core.dataset import DatasetSummary
from nyanops.core.execution_input import (
    SHARED_KEYS,
    RunRequest,
    build_execution_input,
    hyperparameter_strings,
    run_execution_name,
    supports_volume_kms,
    trial_names,
    trial_run,
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
STATE_ROOTS = ("results", "error", "notification_error", "record_error", "api_error", "champion_error", "registered",
               "sweep", "summary", "summary_error")
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


def asl_states() -> list[tuple[str, dict[str, Any], str]]:
    """(name, state, scope) for every state: "execution" (top level) or "iteration" (inside the Map)."""
    asl = json.loads(ASL.read_text())
    found: list[tuple[str, dict[str, Any], str]] = []

    def walk(states: dict[str, Any], scope: str) -> None:
        for name, state in states.items():
            found.append((name, state, scope))
            if state["Type"] == "Map":
                walk(state["ItemProcessor"]["States"], "iteration")

    walk(asl["States"], "execution")
    return found


def asl_reads(scope: str = "iteration") -> list[tuple[str, str, str]]:
    """(state, parameter key, path) for every ``$.`` path the ASL's Parameters (and a Map's ItemSelector) read
    in ``scope``: the iteration's states read the iteration's state (``trial_run``)."""
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

    for name, state, where in asl_states():
        if where == scope:
            walk(name, state.get("Parameters", {}))  # ResultSelector paths are relative to the task result
            walk(name, state.get("ItemSelector", {}))
            for field in ("ItemsPath", "MaxConcurrencyPath"):
                if field in state:
                    walk(name, {f"{field}.$": state[field]})
    return found


def one_trial(req: RunRequest, s: PipelineSettings, index: int = 0) -> dict[str, Any]:
    """The state of the Map iteration of trial ``index`` (what the per-trial states read)."""
    return trial_run(build_execution_input(req, s), index)


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
    top = {p for _, _, p in asl_reads("execution")}
    assert "$.summary_error.Cause" in top  # inside States.Format(...)
    assert {"$.trials", "$.max_concurrency", "$.dataset"} <= top


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
    for scope, state_doc in (("execution", doc), ("iteration", trial_run(doc, 0))):
        for state, key, path in asl_reads(scope):
            if path.split(".")[1] in STATE_ROOTS:
                continue
            value = resolve(state_doc, path)
            assert value is not None, f"{state}.{key} reads {path}, which is null"


def test_the_map_builds_each_iteration_as_trial_run_does() -> None:
    """The ItemSelector selects the shared parts (SHARED_KEYS) and the trial's item, as ``trial_run`` does."""
    [(_, trials, _)] = [s for s in asl_states() if s[1]["Type"] == "Map"]
    selector = trials["ItemSelector"]
    doc = build_execution_input(request(), settings())
    shared = {k.removesuffix(".$") for k, v in selector.items() if v.startswith("$.")}
    item = {k.removesuffix(".$") for k, v in selector.items() if v.startswith("$$.Map.Item.Value.")}
    assert shared == set(SHARED_KEYS)
    assert item == set(doc["trials"][0])
    assert set(trial_run(doc, 0)) == shared | item
    assert trials["ItemsPath"] == "$.trials" and trials["MaxConcurrencyPath"] == "$.max_concurrency"
    assert trials["ItemProcessor"]["ProcessorConfig"] == {"Mode": "INLINE"}


def test_results_paths_are_produced_by_a_result_selector() -> None:
    produced: set[str] = set()
    for _, state, _ in asl_states():
        result_path = state.get("ResultPath")
        for key in state.get("ResultSelector", {}) or (state.get("Parameters", {}) if state["Type"] == "Pass" else {}):
            if result_path:
                produced.add(f"{result_path}.{key.removesuffix('.$')}")
    for scope in ("execution", "iteration"):
        for state, key, path in asl_reads(scope):
            if path.startswith(("$.results.", "$.summary.", "$.registered.")):
                assert any(path == p or path.startswith(p + ".") for p in produced), f"{state}.{key}: {path}"


def sweep_request(sweep: Any, classes: int = 3, name: str = "epochs10") -> RunRequest:
    base = request(manifest={"experiment": "cats", "dataset": "datasets/2026-11-28T064300Z",
                             "hyperparameters": {"lr": 0.01}, "sweep": sweep})
    names = tuple(f"class-{i:04d}" for i in range(classes))
    counts = {s: dict.fromkeys(names, 5) for s in ("train", "val", "test")}
    dataset = DatasetSummary("2026-11-28T064300Z", names, counts, "d" * 64, split_hashes=SPLIT_HASHES)
    upload = Upload(BUCKET, f"manifests/{name}.json", "v1", "etag-1")
    return RunRequest(kind="manifest", manifest=base.manifest, dataset=dataset, code_hash=CODE_HASH, upload=upload)


def test_a_sweep_is_one_execution_with_a_trial_each() -> None:
    doc = build_execution_input(sweep_request({"epochs": [1, 2, 3]}), settings(SWEEP_MAX_CONCURRENCY="2"))
    name = doc["execution_name"]
    assert trial_names(doc) == [f"{name}-t1", f"{name}-t2", f"{name}-t3"]
    assert doc["max_concurrency"] == 2
    assert [t["index"] for t in doc["trials"]] == [0, 1, 2]
    for i, trial in enumerate(doc["trials"]):
        assert trial["hyperparameters"]["epochs"] == i + 1 and trial["hyperparameters"]["lr"] == 0.01
        assert trial["hyperparameters"]["seed"] == 0  # resolved: train.py's defaults included
        assert trial["training"]["hyperparameters"]["epochs"] == str(i + 1)
        assert trial["training"]["job_name"] == naming.training_job_name(trial["trial"])
        assert trial["evaluation"]["job_name"] == naming.processing_job_name(trial["trial"])
        assert trial["training"]["output_s3_uri"] == f"s3://{BUCKET}/runs/{trial['trial']}/model/"
        assert trial["evaluation"]["output_s3_uri"] == f"s3://{BUCKET}/runs/{trial['trial']}/evaluation/"
    for shared in ("dataset", "code", "source"):
        assert all(shared not in t for t in doc["trials"])


def test_fifty_trials_fit_the_execution_input_budget_with_long_names_and_a_key() -> None:
    """The largest sweep, the longest manifest name, a KMS key and a realistic dataset (37 breeds, as the
    Oxford-IIIT pets): within limits.EXECUTION_INPUT_MAX_BYTES, every job name within SageMaker's 63."""
    grid = {"epochs": list(range(1, 11)), "lr": [0.001, 0.005, 0.01, 0.05, 0.1]}
    doc = build_execution_input(sweep_request(grid, classes=37, name="x" * 200),
                                settings(KMS_KEY_ARN=KEY, USE_SPOT="true"))
    assert len(doc["trials"]) == limits.SWEEP_MAX_TRIALS
    size = len(json.dumps(doc).encode())
    assert size <= limits.EXECUTION_INPUT_MAX_BYTES, size
    names = trial_names(doc)
    assert len(set(names)) == 50
    for trial in doc["trials"]:
        for job in (trial["training"]["job_name"], trial["evaluation"]["job_name"],
                    naming.champion_job_name(trial["trial"], naming.MAX_CHAMPION_ATTEMPTS)):
            assert len(job) <= limits.JOB_NAME_MAX and naming.SAGEMAKER_JOB_NAME_RE.fullmatch(job), job
    # One iteration's state stays small too (it holds no other trial).
    assert len(json.dumps(trial_run(doc, 49)).encode()) < 16_384


def test_sagemaker_types() -> None:
    doc = one_trial(request(), settings(USE_SPOT="true", MAX_RUNTIME_SECONDS="7200"))
    training = doc["training"]
    assert all(isinstance(v, str) for v in training["hyperparameters"].values())
    assert training["hyperparameters"]["augment"] == "true"
    assert training["hyperparameters"]["num-classes"] == "3"
    assert training["hyperparameters"]["sagemaker_program"] == "train.py"
    assert training["hyperparameters"]["sagemaker_submit_directory"] == f"s3://{BUCKET}/code/{CODE_HASH}/sourcedir.tar.gz"
    assert training["use_spot"] is True
    assert training["stopping_condition"] == {"MaxRuntimeInSeconds": 7200, "MaxWaitTimeInSeconds": 14400}
    assert one_trial(request(), settings())["training"]["stopping_condition"] == {
        "MaxRuntimeInSeconds": 3600
    }


def test_names_and_locations() -> None:
    doc = one_trial(request(), settings())
    name = doc["execution_name"]
    assert name == run_execution_name(request()) and doc["trial"] == name  # a run of one trial: the same name
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
    assert one_trial(request(manifest=body), settings())["hyperparameters"]["num-classes"] == 3


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
    doc = one_trial(request(), settings())
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
    assert kms_fields(one_trial(request(), settings(KMS_KEY_ARN=""))) == {}


def test_a_key_encrypts_outputs_and_volumes() -> None:
    doc = one_trial(request(), settings(KMS_KEY_ARN=KEY, TRAINING_INSTANCE_TYPE="ml.m5.xlarge",
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
    doc = one_trial(request(), settings(KMS_KEY_ARN=KEY, TRAINING_INSTANCE_TYPE="ml.g4dn.xlarge",
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
    doc = one_trial(request(kind), settings())
    assert doc["dataset"]["split_hashes"] == SPLIT_HASHES
    assert doc["dataset"]["content_hash"] == "d" * 64
    hyper = doc["training"]["hyperparameters"]
    assert hyper["expected-train-hash"] == SPLIT_HASHES["train"]
    assert hyper["expected-val-hash"] == SPLIT_HASHES["val"]
    assert doc["evaluation"]["container_arguments"] == ["--expected-test-hash", SPLIT_HASHES["test"]]
    # The recorded hyperparameters are the recipe's, not the pipeline's checks.
    assert not {"expected-train-hash", "expected-val-hash"} & set(doc["hyperparameters"])
    [evaluate] = [state for name, state, _ in asl_states() if name == "Evaluate"]
    assert evaluate["Parameters"]["AppSpecification"]["ContainerArguments.$"] == "$.evaluation.container_arguments"
