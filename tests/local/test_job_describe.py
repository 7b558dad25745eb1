"""The local jobs' describe-shaped results are SageMaker's: a processing job's script reason travels in
ExitMessage (from /opt/ml/output/message) next to a generic FailureReason; a training job's checkpoints
live at its CheckpointConfig.S3Uri in the local bucket."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from nyanops.local.asl import TaskContext, TaskFailed
from nyanops.local.bucket import LocalObjectStore
from nyanops.local.integrations import PROCESSING_FAILURE_REASON, LocalSageMaker

SCRIPT = """\
import os, pathlib, sys
MODE = {mode!r}
out = pathlib.Path(os.environ["SM_OUTPUT_DIR"])  # the local stand-in for /opt/ml/output
if MODE in ("fail", "ok-with-message"):
    (out / "message").write_text("error: test/x.jpg: cannot decode image; remove or replace it\\n" + "x" * 2000)
if MODE == "fail":
    sys.exit(2)
"""


def ctx(state: str) -> TaskContext:
    return TaskContext(state, "exec-1", 1, None, None, {})


def processing_params(store: LocalObjectStore) -> dict[str, Any]:
    return {
        "ProcessingJobName": "eval-1",
        "RoleArn": "arn:aws:iam::000000000000:role/r",
        "AppSpecification": {
            "ImageUri": "image",
            "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/evaluation.py"],
        },
        "ProcessingInputs": [
            {
                "InputName": "code",
                "S3Input": {
                    "S3Uri": f"s3://{store.bucket}/code/abc/src",
                    "LocalPath": "/opt/ml/processing/input/code",
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                },
            }
        ],
        "ProcessingResources": {
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 10}
        },
    }


@pytest.fixture
def store(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "bucket")


@pytest.mark.parametrize("mode", ["fail", "ok-with-message", "ok"])
def test_processing_job_returns_the_message_file_as_exit_message(mode: str, store: LocalObjectStore, tmp_path: Path):
    store.put("code/abc/src/evaluation.py", SCRIPT.format(mode=mode).encode())
    sagemaker = LocalSageMaker(store, tmp_path / "jobs", sys.executable)
    params = processing_params(store)
    if mode != "fail":
        described = sagemaker.create_processing_job(params, ctx("Evaluate"))
        assert described["ProcessingJobStatus"] == "Completed" and "FailureReason" not in described
        if mode == "ok":
            assert "ExitMessage" not in described
        else:
            assert described["ExitMessage"].startswith("error: test/x.jpg: cannot decode image")
        return
    with pytest.raises(TaskFailed) as caught:
        sagemaker.create_processing_job(params, ctx("Evaluate"))
    described = json.loads(caught.value.cause)
    assert described["ProcessingJobStatus"] == "Failed"
    assert described["FailureReason"] == PROCESSING_FAILURE_REASON
    message = described["ExitMessage"]
    assert message.startswith("error: test/x.jpg: cannot decode image; remove or replace it\nxxx")
    assert len(message.encode()) == 1024  # SageMaker keeps the first 1 KB


def test_training_job_checkpoints_live_at_the_checkpoint_s3_uri(store: LocalObjectStore, tmp_path: Path):
    sagemaker = LocalSageMaker(store, tmp_path / "jobs", sys.executable)
    params = {"CheckpointConfig": {"S3Uri": f"s3://{store.bucket}/runs/exec-1/checkpoints/"}}
    folder = sagemaker._checkpoint_dir(params, tmp_path / "jobs" / "train-1")
    assert folder == store.path("runs/exec-1/checkpoints") and folder.is_dir()
    with pytest.raises(TaskFailed, match="outside the local bucket"):
        sagemaker._checkpoint_dir({"CheckpointConfig": {"S3Uri": "s3://other/x/"}}, tmp_path)
