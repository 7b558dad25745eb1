"""The ``--bucket`` commands end to end against moto's server, as they run against AWS: the CLI's boto3
clients reach it only through the standard environment (``AWS_ENDPOINT_URL``), nothing in-process.

The server plays the stack: a versioned bucket tagged by "CloudFormation" with its stack name, the stack with
its ``StateMachineArn`` output, the real state machine executing on moto's engine with the test-only
SageMaker ``.sync`` and Lambda patches (applied in the server's process, where its engine runs), the SNS
topic and the lock table. EventBridge -> StartPipeline is played by a hook on the server's PutObject that hands
the ``Object Created`` event of a manifest or a dataset marker to the real StartPipeline handler, in a thread,
a moment later (delivery is asynchronous on AWS too).
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.core.config import default_user_config
from moto.s3.models import S3Backend, s3_backends
from moto.server import ThreadedMotoServer
from pytest_socket import enable_socket, socket_allow_hosts

from nyanops.backends.aws import AwsBackend
from nyanops.cli import main
from nyanops.core import layout

from . import moto_limits
from .conftest import (
    ACCOUNT,
    BUCKET,
    LOCK_TABLE,
    MODEL_IMAGE,
    RECORD_RESULTS_ARN,
    REGION,
    asl_definition,
)
from .evaluation_docs import score
from .moto_sfn_patches import FakeSageMaker, patched_engine

STACK = "nyanops-test-stack"


class Context:
    """The attributes Powertools reads from a Lambda context."""

    function_name, function_version, memory_limit_in_mb = "nyanops-test", "$LATEST", 512
    invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:nyanops-test"
    aws_request_id = "00000000-0000-0000-0000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@pytest.fixture(autouse=True)
def _no_sockets() -> Iterator[None]:
    """Sockets only to the moto server on this machine (the package's autouse fixture allows none)."""
    enable_socket()
    socket_allow_hosts(["127.0.0.1"], allow_unix_socket=True)
    yield
    enable_socket()


@dataclass
class Stack:
    endpoint: str
    state_machine_arn: str
    topic_arn: str
    fake: FakeSageMaker
    tmp: Path
    events: list[dict[str, Any]]

    def manifest(self, name: str, **fields: Any) -> Path:
        body = {"experiment": "cats", "dataset": "datasets/2026-11-28T064300Z", "comment": f"trial {name}",
                "hyperparameters": {"epochs": 2}, **fields}
        path = self.tmp / f"{name}.json"
        path.write_text(json.dumps(body))
        return path


DELIVERIES: list[threading.Timer] = []


def _deliver_uploads(events: list[dict[str, Any]], load_handler: Any) -> Any:
    """S3 -> EventBridge -> StartPipeline: the real handler gets the event of each manifest / dataset marker."""
    original = S3Backend.put_object
    start_pipeline = load_handler("start_pipeline")

    def put_object(self: S3Backend, bucket_name: str, key_name: str, value: bytes, *args: Any, **kwargs: Any) -> Any:
        key = original(self, bucket_name, key_name, value, *args, **kwargs)
        if layout.classify_key(key_name).kind is not layout.KeyKind.IGNORED:
            obj = {"key": key_name, "size": len(value), "etag": key.etag.strip('"'), "version-id": key.version_id}
            event = {"version": "0", "id": "test", "detail-type": "Object Created", "source": "aws.s3",
                     "account": ACCOUNT, "region": REGION, "resources": [f"arn:aws:s3:::{bucket_name}"],
                     "detail": {"bucket": {"name": bucket_name}, "object": obj, "reason": "PutObject"}}
            events.append(event)
            timer = threading.Timer(0.3, start_pipeline.lambda_handler, args=(event, Context()))
            timer.daemon = True
            DELIVERIES.append(timer)
            timer.start()
        return key

    return put_object


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, load_handler: Any) -> Iterator[Stack]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")).read()
    for name, value in {
        "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION,
        "BUCKET_NAME": BUCKET, "EXPERIMENT_LOCK_TABLE": LOCK_TABLE, "MODEL_IMAGE": MODEL_IMAGE,
        "TRAINING_INSTANCE_TYPE": "ml.m5.xlarge",
        "PROCESSING_INSTANCE_TYPE": "ml.m5.xlarge", "KMS_KEY_ARN": "",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "NYANOPS_BUCKET", "NYANOPS_STATE_MACHINE_ARN", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setitem(default_user_config["stepfunctions"], "execute_state_machine", True)
    moto_limits.install(monkeypatch)  # SageMaker's limits and case-insensitive names, as AWS
    monkeypatch.setattr(AwsBackend, "poll_seconds", 0.1)
    monkeypatch.setattr(AwsBackend, "start_timeout_seconds", 30.0)

    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    # CloudFormation tags what it creates with its stack name; S3 refuses aws: tags from anyone else.
    s3_backends[ACCOUNT]["aws"].put_bucket_tagging(BUCKET, {"aws:cloudformation:stack-name": STACK})
    topic_arn = boto3.client("sns", region_name=REGION).create_topic(Name="nyanops-results")["TopicArn"]
    boto3.client("dynamodb", region_name=REGION).create_table(
        TableName=LOCK_TABLE, KeySchema=[{"AttributeName": "experiment", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "experiment", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
    arn = boto3.client("stepfunctions", region_name=REGION).create_state_machine(
        name="nyanops-training-pipeline", definition=asl_definition(topic_arn),
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/nyanops-states")["stateMachineArn"]
    template = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}, "Outputs": {"StateMachineArn": {"Value": arn}}}
    boto3.client("cloudformation", region_name=REGION).create_stack(StackName=STACK, TemplateBody=json.dumps(template))
    monkeypatch.setenv("STATE_MACHINE_ARN", arn)
    monkeypatch.setenv("TOPIC_ARN", topic_arn)

    handlers = [load_handler("start_pipeline"), load_handler("record_results")]
    for handler in handlers:
        handler.set_deps(None)  # built from the environment: the server
    _put_dataset(s3)  # before the upload rule exists: the tests look at their own manifests' runs
    events: list[dict[str, Any]] = []
    monkeypatch.setattr(S3Backend, "put_object", _deliver_uploads(events, load_handler))
    fake = FakeSageMaker()
    world = Stack(endpoint, arn, topic_arn, fake, tmp_path, events)
    record_results = handlers[1]
    try:
        invoke = {RECORD_RESULTS_ARN: lambda e: record_results.lambda_handler(e, Context())}
        with patched_engine(fake, invoke):
            yield world
            # Nothing may still talk to the server when it stops: pending deliveries, running executions.
            for timer in DELIVERIES:
                timer.join(timeout=30)
            sfn = boto3.client("stepfunctions", region_name=REGION)
            deadline = time.monotonic() + 30
            while sfn.list_executions(stateMachineArn=arn, statusFilter="RUNNING")["executions"]:
                assert time.monotonic() < deadline, "an execution is still running"
                time.sleep(0.1)
    finally:
        DELIVERIES.clear()
        for handler in handlers:
            handler.set_deps(None)
        server.stop()


def _put_dataset(s3: Any) -> None:
    """The example dataset, marker last."""
    import hashlib

    from nyanops.core import dataset as datasets

    files = []
    for split in layout.SPLITS:
        for cls in ("bengal", "siamese"):
            for i in range(2):
                path = f"{split}/{cls}/{i:03d}.jpg"
                body = f"jpeg {path}".encode()
                put = s3.put_object(Bucket=BUCKET, Key=layout.dataset_prefix("2026-11-28T064300Z") + path, Body=body)
                etag = put["ETag"].strip('"')
                files.append(datasets.DatasetFile(path, len(body), hashlib.sha256(body).hexdigest(), etag))
    marker = datasets.build_marker("2026-11-28T064300Z", files, sealed_by=datasets.SealedBy(datasets.TOOL, "tests"))
    key = layout.dataset_marker_key("2026-11-28T064300Z")
    s3.put_object(Bucket=BUCKET, Key=key, Body=datasets.marker_bytes(marker))


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([*args, "--bucket", BUCKET])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def started(out: str) -> str:
    match = re.search(r"started execution (\S+)", out)
    assert match, out
    return match.group(1)


def test_run_wait_follows_the_execution_to_its_recorded_best_trial(stack: Stack,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    stack.fake.wrong = lambda request: 0
    code, out, err = cli(capsys, "run", str(stack.manifest("good")), "--wait")
    assert code == 0, out + err
    name = started(out)
    upload = next(e for e in stack.events if e["detail"]["object"]["key"] == "manifests/good.json")
    assert name.startswith("m-good-")  # the name StartPipeline gave it is the one the CLI waited for
    assert f"execution {name}: https://{REGION}.console.aws.amazon.com/states/home" in out
    for line in ("  RegisterTrial ...", "  Train ...", "  Evaluate ...", "  RecordResults ..."):
        assert line in out
    assert re.search(r"  Train +done in", out) and "  SUCCEEDED" in out
    assert re.search(rf"  {name}  macro_f1 [0-9.]+  trained \(best\)", out)  # the run's comparison (notification)
    assert upload["detail"]["object"]["version-id"]

    code, out, err = cli(capsys, "execution", name)
    assert code == 0, err
    assert "status      SUCCEEDED" in out and "upload      manifests/good.json" in out
    assert re.search(r"Train\s+succeeded", out) and re.search(r"RecordFailure\s+not run", out)
    code, out, _ = cli(capsys, "execution", name, "--state", "Train")
    assert f'"TrainingJobName": "{name}-train"' in out and "job       training job" in out


def test_a_failed_run_exits_1_and_the_execution_names_the_failing_state(stack: Stack,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    stack.fake.fail_training = lambda request: "AlgorithmError: CUDA out of memory"
    code, out, _ = cli(capsys, "run", str(stack.manifest("bad")), "--wait")
    assert code == 1, out
    name = started(out)
    assert "Train          failed with States.TaskFailed -> RecordFailure" in out
    assert "FAILED in Train: States.TaskFailed" in out and "CUDA out of memory" in out
    code, out, _ = cli(capsys, "execution", name[:12])  # a unique prefix is enough
    assert code == 0
    assert re.search(r"Train\s+caught\s+\S+( s)?\s+States.TaskFailed: AlgorithmError: CUDA out of memory", out), out
    assert "failed in Train: States.TaskFailed" in out
    assert "the execution ended FAILED: PipelineFailed" in out


def test_a_refused_manifest_exits_2_with_the_reasons(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "run", str(stack.manifest("refused", dataset="datasets/missing")), "--wait")
    assert code == 2, out + err
    assert "refused manifests/refused.json:" in err and "datasets/missing does not exist" in err
    assert "rejected/manifests/refused.json.error.json" in err


def test_executions_experiments_and_report_on_the_stack(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "run", str(stack.manifest("one")), "--wait")
    assert code == 0
    name = started(out)
    code, out, _ = cli(capsys, "executions", "--json")
    listed = {e["name"]: e for e in json.loads(out)}
    assert listed[name]["status"] == "SUCCEEDED" and listed[name]["experiment"] == "cats"
    assert listed[name]["source_key"] == "manifests/one.json"
    code, out, _ = cli(capsys, "experiments", "cats", "--json")
    row = next(r for r in json.loads(out) if r["trial"] == name)
    arn = f"{stack.state_machine_arn.replace(':stateMachine:', ':execution:')}:{name}"
    assert row["execution_url"] == (f"https://{REGION}.console.aws.amazon.com/states/home?region={REGION}"
                                    f"#/v2/executions/details/{arn}")
    assert row["training_job_url"].endswith(f"#/jobs/{name}-train")
    assert row["processing_job_url"].endswith(f"#/processing-jobs/{name}-eval")
    code, out, _ = cli(capsys, "experiments", "cats")
    assert f"  {name}  https://{REGION}.console.aws.amazon.com/states/home" in out
    report = stack.tmp / "report.html"
    code, out, err = cli(capsys, "report", "cats", "-o", str(report))
    assert code == 0, err
    html = report.read_text()
    assert f'aria-label="state machine graph of {name}"' in html and 'class="chart timeline"' in html
    assert f'href="https://{REGION}.console.aws.amazon.com/states/home' in html


def test_without_the_stack_tag_the_state_machine_can_be_named(stack: Stack,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    s3_backends[ACCOUNT]["aws"].put_bucket_tagging(BUCKET, {})
    code, _, err = cli(capsys, "executions")
    assert code == 2 and "has no aws:cloudformation:stack-name tag" in err and "--state-machine-arn" in err
    code, _, err = cli(capsys, "executions", "--state-machine-arn", stack.state_machine_arn)
    assert code == 0, err


def test_without_wait_it_returns_once_started_and_execution_shows_the_running_state(
        stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    gate = threading.Event()

    def training_in_progress(request: dict[str, Any]) -> None:
        gate.wait(60)  # the training job "runs" until the test has looked at it
        return None

    stack.fake.fail_training = training_in_progress
    try:
        code, out, err = cli(capsys, "run", str(stack.manifest("slow")))
        assert code == 0, out + err
        name = started(out)
        assert f"follow with `nyanops execution {name} --bucket {BUCKET}`" in out
        deadline = time.monotonic() + 30
        while True:
            code, out, err = cli(capsys, "execution", name)
            lines = out.splitlines()
            running = [i for i, line in enumerate(lines) if re.search(r"Train\s+RUNNING", line)]
            # Wait until the job exists too (its describe status is the line under the state).
            if running and running[0] + 1 < len(lines) and lines[running[0] + 1].strip().startswith("> "):
                break
            assert time.monotonic() < deadline, out + err
            time.sleep(0.2)
        assert "status      RUNNING (" in out and re.search(r"RegisterTrial\s+succeeded", out)
        train = out.splitlines().index(next(line for line in out.splitlines() if re.search(r"Train\s+RUNNING", line)))
        assert out.splitlines()[train + 1].strip().startswith("> ")  # the job's status from DescribeTrainingJob
        assert re.search(r"Evaluate\s+not run", out)
    finally:
        gate.set()


def test_models_lists_the_registry_the_runs_handed_over(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    """Two runs on the stack, the second better: its model is Approved, the first's Rejected; a worse third
    registers nothing; ``nyanops models --bucket`` lists the versions, newest first."""
    names = []
    for label, wrong in (("first", 2), ("second", 0), ("third", 1)):
        stack.fake.wrong = lambda request, wrong=wrong: wrong
        # force: the same recipe three times is trained three times (otherwise the later ones reuse the first)
        code, out, err = cli(capsys, "run", str(stack.manifest(label, force=True)), "--wait")
        assert code == 0, out + err
        names.append(started(out))
    first, second, _ = names
    code, out, err = cli(capsys, "models")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["experiment", "version", "status", "trial", "metric", "dataset", "created"]
    assert [line.split()[:6] for line in lines[1:]] == [
        ["cats", "2", "Approved", second, "macro_f1", f"{score(0):.4f}"],
        ["cats", "1", "Rejected", first, "macro_f1", f"{score(2):.4f}"]]
    code, out, _ = cli(capsys, "models", "Cats", "--json")
    listed = json.loads(out)
    assert [(m["version"], m["status"], m["trial"]) for m in listed] == [
        (2, "Approved", second), (1, "Rejected", first)]
    assert listed[0]["arn"] == f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/nyanops-cats/2"
    assert listed[0]["dataset_id"] == "2026-11-28T064300Z" and listed[0]["created_at"]
