"""A manifest cannot make the pipeline read data or run code from outside this bucket's datasets/ and code/.

Hostile manifests go through the real parser (``parse_manifest``); the ones it accepts go on through
``build_execution_input`` and then through the real ASL file (local executor, fake task runner), and every
S3 URI that reaches the training and processing jobs must lie under ``s3://<bucket>/datasets/<id>/``,
``s3://<bucket>/code/<hash>/`` or ``s3://<bucket>/runs/<execution>/``.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from nyanops.core import layout, naming
from nyanops.core.dataset import DatasetSummary
from nyanops.core.execution_input import RunRequest, build_execution_input, trial_run
from nyanops.core.manifest import parse_manifest
from nyanops.core.rejection import UploadRejected
from nyanops.core.settings import PipelineSettings
from nyanops.core.upload_events import Upload
from nyanops.local.asl import TaskContext, load_state_machine

ASL_FILE = Path(__file__).resolve().parents[2] / "statemachine" / "training_pipeline.asl.json"
BUCKET = "nyanops-example-bucket"
DATASET_ID = "2026-11-28T064300Z"
CODE_HASH = "c" * 64
PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
GOOD = {"experiment": "cats", "dataset": f"datasets/{DATASET_ID}"}

HOSTILE_DATASETS = [
    "../x",
    "/etc",
    "/etc/passwd",
    "s3://other/datasets/x",
    "s3://nyanops-example-bucket/datasets/x",
    "https://example.com/datasets/x",
    "file:///etc",
    "datasets/x/../../code",
    "datasets/../code/" + CODE_HASH,
    "datasets/x/train",
    "datasets/./x",
    "datasets/..",
    "datasets/",
    "datasets",
    "code/" + CODE_HASH,
    "runs/x",
    "manifests/x",
    "datasets/x\\..\\..\\code",
    "datasets/.hidden",
    "datasets/x y",
    "datasets/%2e%2e",
    "datasets/x?versionId=1",
    "datasets/x#frag",
    "datasets/\u2024\u2024",
]
HOSTILE_CODE = [
    "s3://evil/x.tar.gz",
    "s3://nyanops-example-bucket/code/" + CODE_HASH,
    "code/../runs/x",
    "code/../datasets/" + DATASET_ID,
    "code/" + CODE_HASH + "/../../runs/x",
    "/code/" + CODE_HASH,
    "code/" + CODE_HASH.upper(),
    "code/" + CODE_HASH[:-1],
    "code/" + CODE_HASH + "/other.tar.gz",
    "runs/x/sourcedir.tar.gz",
    "https://evil.example/sourcedir.tar.gz",
    "",
]
# Hyperparameters that would point the SageMaker PyTorch container elsewhere or load other files.
HOSTILE_HYPERPARAMETERS: list[dict[str, Any]] = [
    {"sagemaker_submit_directory": "s3://evil/sourcedir.tar.gz"},
    {"sagemaker_program": "../../bin/sh"},
    {"sagemaker_region": "us-west-2"},
    {"sagemaker_container_log_level": 10},
    {"weights": "/etc/passwd"},
    {"model-dir": "s3://evil/model"},
    {"model_dir": "/opt/ml/input"},
    {"data-dir": "s3://evil/data"},
    {"train": "s3://evil/train"},
    {"output-data-dir": "s3://evil/out"},
    {"arch": "../../evil"},
    {"arch": "resnet18; curl evil"},
    {"epochs": "10; rm -rf /"},
]


def manifest_bytes(**fields: Any) -> bytes:
    return json.dumps({**GOOD, **fields}).encode()


def settings() -> PipelineSettings:
    return PipelineSettings.model_validate({"BUCKET_NAME": BUCKET, "AWS_REGION": "us-east-1"})


def run_input(raw: bytes, key: str = "manifests/m.json") -> dict[str, Any]:
    manifest = parse_manifest(raw)
    summary = DatasetSummary(
        manifest.dataset_id,
        ("bengal", "siamese"),
        {s: {"bengal": 2, "siamese": 2} for s in layout.SPLITS},
        "d" * 64,
        split_hashes={s: s[0] * 64 for s in layout.SPLITS},
    )
    request = RunRequest(
        kind="manifest",
        manifest=manifest,
        dataset=summary,
        code_hash=manifest.code_hash or CODE_HASH,
        upload=Upload(BUCKET, key, "v1", "etag-1"),
    )
    return build_execution_input(request, settings())


def s3_uris(value: Any) -> list[str]:
    """Every string in ``value`` that names S3 (also inside hyperparameters and nested lists)."""
    if isinstance(value, dict):
        return [u for v in value.values() for u in s3_uris(v)]
    if isinstance(value, list):
        return [u for v in value for u in s3_uris(v)]
    if isinstance(value, str) and ("s3://" in value.lower() or value.lower().startswith("s3:")):
        return [value]
    return []


def allowed_prefixes(run: dict[str, Any]) -> tuple[str, ...]:
    return (
        f"s3://{BUCKET}/{layout.dataset_prefix(run['dataset']['id'])}",
        f"s3://{BUCKET}/{layout.code_prefix(run['code']['hash'])}",
        f"s3://{BUCKET}/{layout.run_prefix(run['execution_name'])}",
    )


def assert_confined(uris: list[str], run: dict[str, Any]) -> None:
    assert uris, "no S3 URI found: the walk is wrong"
    prefixes = allowed_prefixes(run)
    for uri in uris:
        assert uri.startswith(prefixes), f"{uri} is outside {prefixes}"
        _, key = layout.parse_s3_uri(uri)
        parts = key.split("/")
        assert ".." not in parts and "." not in parts and "" not in parts[:-1], uri
        assert "\\" not in key and "%" not in key, uri


@pytest.mark.parametrize("dataset", HOSTILE_DATASETS)
def test_a_dataset_outside_datasets_is_refused(dataset: str) -> None:
    with pytest.raises(UploadRejected) as refused:
        parse_manifest(manifest_bytes(dataset=dataset))
    assert [p.field for p in refused.value.problems] == ["dataset"]


@pytest.mark.parametrize("code", HOSTILE_CODE)
def test_code_outside_code_is_refused(code: str) -> None:
    with pytest.raises(UploadRejected) as refused:
        parse_manifest(manifest_bytes(code=code))
    assert [p.field for p in refused.value.problems] == ["code"]


@pytest.mark.parametrize("hyperparameters", HOSTILE_HYPERPARAMETERS, ids=lambda h: next(iter(h)))
def test_hyperparameters_cannot_redirect_the_container(hyperparameters: dict[str, Any]) -> None:
    with pytest.raises(UploadRejected) as refused:
        parse_manifest(manifest_bytes(hyperparameters=hyperparameters))
    assert all(p.field.startswith("hyperparameters") for p in refused.value.problems)


@pytest.mark.parametrize("extra", [{"bucket": "evil"}, {"s3_uri": "s3://evil/x"}, {"training": {"x": 1}},
                                   {"code_s3_uri": "s3://evil/x"}, {"image": "evil/image:latest"}])
def test_no_other_top_level_field_is_accepted(extra: dict[str, Any]) -> None:
    with pytest.raises(UploadRejected):
        parse_manifest(manifest_bytes(**extra))


ACCEPTED = [
    manifest_bytes(),
    manifest_bytes(dataset=f"datasets/{DATASET_ID}/"),
    manifest_bytes(code=f"code/{CODE_HASH}"),
    manifest_bytes(code=f"code/{'a' * 64}/sourcedir.tar.gz"),
    manifest_bytes(comment="s3://evil/x ../../etc/passwd", experiment="cats-v2"),
    manifest_bytes(hyperparameters={"epochs": 2, "arch": "resnet18", "pretrained": False}),
]


@pytest.mark.parametrize("raw", ACCEPTED)
@pytest.mark.parametrize("key", ["manifests/m.json", "manifests/../../code/evil.json", "manifests/s3:..evil.json"])
def test_every_s3_uri_of_an_accepted_manifest_stays_in_its_prefixes(raw: bytes, key: str) -> None:
    run = run_input(raw, key)
    assert naming.SAGEMAKER_JOB_NAME_RE.match(run["execution_name"])
    walked = {k: v for k, v in run.items() if k not in ("source", "comment")}  # source: the upload itself
    assert_confined(s3_uris(walked), run)
    hyper = trial_run(run, 0)["training"]["hyperparameters"]
    assert hyper["sagemaker_submit_directory"] == f"s3://{BUCKET}/{layout.code_bundle_key(run['code']['hash'])}"
    assert hyper["sagemaker_program"] == "train.py"
    assert {k for k in hyper if k.startswith("sagemaker_")} == {
        "sagemaker_program", "sagemaker_submit_directory", "sagemaker_region",
    }


class RecordingServices:
    """A fake task runner that records each task's evaluated Parameters and answers like the real ones."""

    def __init__(self) -> None:
        self.calls: dict[str, Any] = {}

    def __call__(self, resource: str, parameters: Any, ctx: TaskContext) -> Any:
        self.calls[ctx.state_name] = copy.deepcopy(parameters)
        if resource.endswith("createTrainingJob.sync"):
            output = parameters["OutputDataConfig"]["S3OutputPath"]
            return {
                "TrainingJobName": parameters["TrainingJobName"],
                "TrainingJobStatus": "Completed",
                "SecondaryStatus": "Completed",
                "ModelArtifacts": {"S3ModelArtifacts": f"{output}{parameters['TrainingJobName']}/output/model.tar.gz"},
            }
        if resource.endswith("createProcessingJob.sync"):
            return {"ProcessingJobName": parameters["ProcessingJobName"], "ProcessingJobStatus": "Completed"}
        if resource == "arn:aws:states:::lambda:invoke":
            # RegisterTrial: nothing to reuse (the jobs run); Summarize: one trial completed.
            return {"StatusCode": 200, "Payload": {"subject": "s", "message": "m", "reused_from": "", "completed": 1,
                                                   "registry": "",
                                                   "best_trial": ""}}
        return {"MessageId": "m-1"}


@pytest.mark.parametrize("raw", ACCEPTED[:4])
def test_the_jobs_the_real_asl_starts_only_reference_those_prefixes(raw: bytes) -> None:
    run = run_input(raw)
    text = ASL_FILE.read_text()
    substitutions = {name: f"arn:aws:test:::{name}" for name in PLACEHOLDER.findall(text)}
    services = RecordingServices()
    result = load_state_machine(ASL_FILE, substitutions).run(
        copy.deepcopy(run), execution_name=run["execution_name"], task_runner=services,
        sleep=lambda _s: None, random=lambda: 0.5,
    )
    assert result.status == "SUCCEEDED", result
    train, evaluate = services.calls["Train"], services.calls["Evaluate"]
    assert_confined(s3_uris(train), run)
    assert_confined(s3_uris(evaluate), run)
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in train["InputDataConfig"]}
    dataset = f"s3://{BUCKET}/{layout.dataset_prefix(run['dataset']['id'])}"
    assert channels == {"train": f"{dataset}train/", "val": f"{dataset}val/"}
    inputs = {i["InputName"]: i["S3Input"]["S3Uri"] for i in evaluate["ProcessingInputs"]}
    assert inputs["code"] == f"s3://{BUCKET}/{layout.code_source_prefix(run['code']['hash'])}"
    assert inputs["test"] == f"{dataset}test/"
    for job in (train, evaluate):
        for uri in s3_uris(job):
            assert not uri.startswith(f"s3://{BUCKET}/{layout.code_prefix(run['code']['hash'])}") or (
                uri in (run["code"]["bundle_s3_uri"], run["code"]["source_s3_uri"])
            )
    # Outputs are written only under runs/<execution>/.
    run_prefix = f"s3://{BUCKET}/{layout.run_prefix(run['execution_name'])}"
    assert train["OutputDataConfig"]["S3OutputPath"].startswith(run_prefix)
    assert train["CheckpointConfig"]["S3Uri"].startswith(run_prefix)
    for output in evaluate["ProcessingOutputConfig"]["Outputs"]:
        assert output["S3Output"]["S3Uri"].startswith(run_prefix)
