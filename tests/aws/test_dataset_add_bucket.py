"""``nyanops dataset add DIR --bucket B``: the real CLI, as a separate process, against moto's HTTP server
(``AWS_ENDPOINT_URL``, the standard AWS environment), interrupted midway by SIGKILL and run again.

It must never leave a sealed partial dataset: while its claim is there the pipeline's sealer leaves the prefix
alone; the re-run uploads only what is missing and seals the complete dataset; the seal's event starts exactly
one run (StartPipeline's handler, in this process, on the same server), on the complete dataset.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer
from pytest_socket import enable_socket, socket_allow_hosts

from nyanops.aws.dataset_registry import DynamoDatasetRegistry
from nyanops.aws.s3_store import S3ObjectStore
from nyanops.aws.sns import SnsNotifier
from nyanops.core import dataset as datasets
from nyanops.core import layout
from nyanops.core.sealing import LEFT_TO_TOOL, SealingDeps, note_uploads, seal_due
from nyanops.core.upload_events import ObjectEvent

from .conftest import BUCKET, CODE_HASH, REGION, World, asl_definition
from .dataset_registry_table import REGISTRY_TABLE, create_registry_table

SRC = Path(__file__).resolve().parents[2] / "src"
IMAGES = 3 * 2 * 100  # splits x classes x per class


@pytest.fixture(autouse=True)
def _no_sockets() -> Iterator[None]:
    """This module talks HTTP to moto's server on 127.0.0.1, and to nothing else."""
    enable_socket()
    socket_allow_hosts(["127.0.0.1"], allow_unix_socket=True)
    yield


@dataclass
class Server:
    endpoint: str
    env: dict[str, str]
    state_machine_arn: str
    topic_arn: str

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION, endpoint_url=self.endpoint, aws_access_key_id="testing",
                            aws_secret_access_key="testing")

    def keys(self, prefix: str) -> list[str]:
        pages = self.client("s3").get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        return [o["Key"] for page in pages for o in page.get("Contents", [])]

    def cli(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-m", "nyanops.cli", *args], env=self.env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    aws_env = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION}
    for name, value in aws_env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    env = {**os.environ, **aws_env, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "NYANOPS_BUCKET": ""}
    s = Server(endpoint, env, "", "")
    s3 = s.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=BUCKET, Key=layout.code_bundle_key(CODE_HASH), Body=b"fake sourcedir.tar.gz")
    create_registry_table(s.client("dynamodb"))
    s.topic_arn = s.client("sns").create_topic(Name="nyanops-results")["TopicArn"]
    s.state_machine_arn = s.client("stepfunctions").create_state_machine(
        name="nyanops-training-pipeline", definition=asl_definition(s.topic_arn),
        roleArn="arn:aws:iam::123456789012:role/nyanops-states")["stateMachineArn"]
    try:
        yield s
    finally:
        # The server keeps moto's backends in this process: reset them for the next test.
        urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=30)
        moto.stop()


def photos(folder: Path, per_class: int = 100) -> Path:
    for split in layout.SPLITS:
        for cls in ("mike", "tama"):
            (folder / split / cls).mkdir(parents=True)
            for i in range(per_class):
                (folder / split / cls / f"IMG_{i:04d}.jpg").write_bytes(f"\xff\xd8 {split} {cls} {i} ".encode() * 200)
    (folder / "README.md").write_text("Mike and Tama")
    return folder


def sealer(server: Server, later: datetime) -> SealingDeps:
    """The SealDatasets / NoteDatasetUploads core on the server (the template's quiet period, clock past it)."""
    return SealingDeps(
        store=S3ObjectStore(server.client("s3"), BUCKET),
        registry=DynamoDatasetRegistry(server.client("dynamodb"), REGISTRY_TABLE),
        notifier=SnsNotifier(server.client("sns"), server.topic_arn),
        quiet_seconds=120,
        clock=lambda: later,
    )


def recorded(server: Server, dataset_id: str) -> dict[str, Any]:
    try:
        body = server.client("s3").get_object(Bucket=BUCKET, Key=layout.dataset_claim_key(dataset_id))["Body"].read()
    except server.client("s3").exceptions.NoSuchKey:
        return {}
    return json.loads(body)["uploaded"]


def note_everything(server: Server, deps: SealingDeps) -> None:
    """Each object of the bucket's datasets/ as its S3 event would announce it."""
    events = []
    for page in server.client("s3").get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="datasets/"):
        for o in page.get("Contents", []):
            events.append(ObjectEvent(BUCKET, o["Key"], None, o["ETag"].strip('"'), o["Size"]))
    note_uploads(events, deps)


def test_an_interrupted_upload_is_never_sealed_and_the_rerun_makes_one_run_on_the_complete_dataset(
        server: Server, tmp_path: Path, load_handler: Any, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = photos(tmp_path / "photos")
    args = ("dataset", "add", str(folder), "--name", "cats-up", "--bucket", BUCKET, "--jobs", "2")
    first = server.cli(*args)
    deadline = time.monotonic() + 120
    while len(recorded(server, "cats-up")) < 30:  # the claim has recorded some progress a re-run can skip
        assert first.poll() is None, f"finished before it could be interrupted: {first.communicate()}"
        assert time.monotonic() < deadline, "the upload did not start"
        time.sleep(0.02)
    first.send_signal(signal.SIGKILL)
    first.wait()
    uploaded = server.keys("datasets/cats-up/")
    assert layout.dataset_claim_key("cats-up") in uploaded
    assert layout.dataset_marker_key("cats-up") not in uploaded
    assert 30 <= len(uploaded) - 1 < IMAGES, "interrupted midway"

    # The pipeline notices the partial upload, the quiet period passes: the claim keeps it from being sealed.
    note_everything(server, sealer(server, datetime.now(timezone.utc)))
    deps = sealer(server, datetime.now(timezone.utc) + timedelta(minutes=30))
    [left] = seal_due(deps)
    assert left.outcome == LEFT_TO_TOOL and "re-run that command to finish" in left.detail
    assert layout.dataset_marker_key("cats-up") not in server.keys("datasets/cats-up/")
    listing = server.cli("datasets", "--bucket", BUCKET)
    out, err = listing.communicate(timeout=120)
    assert listing.returncode == 0, err
    assert "cats-up" in out and "uploading" in out and "re-run the same command to resume" in out

    second = server.cli(*args)
    out, err = second.communicate(timeout=300)
    assert second.returncode == 0, err
    skipped = int(out.split("resumed: ", 1)[1].split(" ", 1)[0])
    assert 30 <= skipped < IMAGES and "file(s) were already uploaded by an interrupted run" in out
    assert "added datasets/cats-up: classes mike, tama; train 200, val 200, test 200 images" in out
    assert "not part of the dataset (beside train/, val/, test/, or hidden): README.md" in out
    keys = server.keys("datasets/cats-up/")
    assert layout.dataset_claim_key("cats-up") not in keys, "the claim goes once the seal is written"
    assert len(keys) == IMAGES + 1
    seal = datasets.parse_marker("cats-up", server.client("s3").get_object(
        Bucket=BUCKET, Key=layout.dataset_marker_key("cats-up"))["Body"].read())
    assert seal.sealed_by.tool == "nyanops dataset add" and len(seal.files) == IMAGES
    assert seal.counts == {s: {"mike": 100, "tama": 100} for s in layout.SPLITS}

    # The seal's event: StartPipeline (twice, a duplicated delivery) and the noter; the sealer finds it sealed.
    for name, value in {"BUCKET_NAME": BUCKET, "STATE_MACHINE_ARN": server.state_machine_arn,
                        "TOPIC_ARN": server.topic_arn, "TRAINING_INSTANCE_TYPE": "ml.m5.xlarge",
                        "PROCESSING_INSTANCE_TYPE": "ml.m5.xlarge", "KMS_KEY_ARN": ""}.items():
        monkeypatch.setenv(name, value)
    start = load_handler("start_pipeline")
    start.set_deps(None)  # its clients from the environment: the server
    try:
        head = server.client("s3").head_object(Bucket=BUCKET, Key=layout.dataset_marker_key("cats-up"))
        event = World.eventbridge(layout.dataset_marker_key("cats-up"), {
            "size": head["ContentLength"], "etag": head["ETag"].strip('"'), "version_id": head["VersionId"]})
        outcomes = [start.lambda_handler(event, lambda_context)["results"][0]["outcome"] for _ in range(2)]
    finally:
        start.set_deps(None)
    assert outcomes == ["started", "duplicate"]
    note_everything(server, sealer(server, datetime.now(timezone.utc)))
    assert seal_due(sealer(server, datetime.now(timezone.utc) + timedelta(minutes=60))) == []
    [execution] = server.client("stepfunctions").list_executions(
        stateMachineArn=server.state_machine_arn)["executions"]
    run = json.loads(server.client("stepfunctions").describe_execution(
        executionArn=execution["executionArn"])["input"])
    assert run["dataset"]["id"] == "cats-up" and run["dataset"]["counts"] == seal.counts
    assert run["dataset"]["split_hashes"] == seal.split_hashes

    again = server.cli(*args)
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0 and "already sealed with exactly these files" in out, err


def test_a_bad_folder_uploads_nothing(server: Server, tmp_path: Path) -> None:
    folder = photos(tmp_path / "photos", per_class=2)
    (folder / "train" / "mike" / "notes.txt").write_text("feed Tama")
    proc = server.cli("dataset", "add", str(folder), "--name", "cats-bad", "--bucket", BUCKET)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert "non-image files: datasets/cats-bad/train/mike/notes.txt" in err and "nothing was sealed" in err
    assert "Traceback" not in err
    assert server.keys("datasets/") == []


def test_another_folder_to_a_claimed_id_is_refused(server: Server, tmp_path: Path) -> None:
    claim = {"tool": "nyanops dataset add", "host": "laptop", "started_at": "2026-11-28T06:40:00+00:00",
             "source_hash": "0" * 64, "files": 12, "uploaded": {}}
    server.client("s3").put_object(Bucket=BUCKET, Key=layout.dataset_claim_key("cats-claimed"),
                                   Body=json.dumps(claim).encode())
    proc = server.cli("dataset", "add", str(photos(tmp_path / "photos", per_class=2)), "--name", "cats-claimed",
                      "--bucket", BUCKET)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert "is being uploaded by another `dataset add` (from laptop" in err
    assert server.keys("datasets/") == [layout.dataset_claim_key("cats-claimed")]
