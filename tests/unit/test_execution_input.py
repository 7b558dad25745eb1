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
)
from nyanops.core.manifest import parse_manifest
from nyanops.core.settings import PipelineSettings
from nyanops.core.upload_events import Upload

ASL = Path(__file__).resolve().parents[2] / "statemachine" / "training_pipeline.asl.json"
BUCKET = "nyanops-example-bucket"
CODE_HASH = "c" * 64
PATH_RE = re.compile(r"\$(?:\.[A-Za-z0-9_\-]+)+")
# Written by the state machine itself (ResultPath), not read from the execution input.
STATE_ROOTS = ("results", "error", "notification_error", "record_error")


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


@pytest.mark.parametrize("use_spot", ["false", "true"])
@pytest.mark.parametrize("kind", ["manifest", "dataset"])
def test_every_input_path_the_asl_reads_exists(kind: str, use_spot: str) -> None:
    doc = build_execution_input(request(kind), settings(USE_SPOT=use_spot))
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
        for key in state.get("ResultSelector", {}):
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
