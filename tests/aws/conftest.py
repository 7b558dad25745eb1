"""A moto world for handler and workflow tests: the example bucket (versioned), the SNS topic, the
DynamoDB lock table and the real state machine (ASL with its substitutions filled with fake ARNs).

Sockets are off: moto answers in-process. Test-only corrections to moto are installed here: SageMaker
Experiments refuses and matches names as AWS does (``moto_limits``: parameter limits, case-insensitive
names, ``DescribeExperiment`` of a missing experiment answering ``ResourceNotFound`` instead of moto 5.2's
Python ``KeyError``), and moto's DynamoDB conditional writes are atomic across threads (DynamoDB's are),
which the lock tests need.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb.models import DynamoDBBackend
from moto.s3.models import s3_backends
from moto.sagemaker.models import sagemaker_backends
from moto.sns.models import sns_backends
from pytest_socket import disable_socket, enable_socket

from nyanops.core import dataset as datasets
from nyanops.core import layout

from . import moto_limits
from .dataset_registry_table import QUIET_SECONDS, REGISTRY_TABLE, create_registry_table
from .evaluation_docs import CLASSES, evaluation_doc, job_identity

REGION = "us-east-1"
ACCOUNT = "123456789012"
BUCKET = "nyanops-example-bucket"
DATASET_ID = "2026-11-28T064300Z"
LOCK_TABLE = "nyanops-experiment-locks"
# What template.yaml gives RecordResults in us-east-1 with the default EvaluationImage (its FrameworkImage mapping).
MODEL_IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch:2.14-cpu-amzn2023-sagemaker"
RECORD_RESULTS_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:nyanops-RecordResults"
ASL_FILE = Path(__file__).resolve().parents[2] / "statemachine" / "training_pipeline.asl.json"
# The code bundle the example events and fixtures use (a fixed, valid sha256 hex).
CODE_HASH = hashlib.sha256(b"nyanops example ml_code").hexdigest()


@pytest.fixture(autouse=True)
def _no_sockets() -> Iterator[None]:
    disable_socket(allow_unix_socket=False)
    yield
    enable_socket()


def asl_definition(topic_arn: str) -> str:
    text = ASL_FILE.read_text()
    for name, value in {
        "RecordResultsFunctionArn": RECORD_RESULTS_ARN,
        "SageMakerRoleArn": f"arn:aws:iam::{ACCOUNT}:role/nyanops-sagemaker",
        "TrainingImage": f"763104351884.dkr.ecr.{REGION}.amazonaws.com/pytorch:2.14-cpu-amzn2023-sagemaker",
        "ProcessingImage": f"763104351884.dkr.ecr.{REGION}.amazonaws.com/pytorch:2.14-cpu-amzn2023-sagemaker",
        "ResultsTopicArn": topic_arn,
    }.items():
        text = text.replace("${" + name + "}", value)
    assert "${" not in text, "an ASL placeholder has no test value"
    return text


_ORIG_CLIENT = boto3.client
_CLIENTS: dict[Any, Any] = {}


def _cached_client(*args: Any, **kwargs: Any) -> Any:
    """boto3.client, but one client per (service, options) for the whole session: building a SageMaker
    client costs ~0.3 s, and moto intercepts every client however old (its hook is registered globally)."""
    key = (args, tuple(sorted(kwargs.items())))
    if key not in _CLIENTS:
        _CLIENTS[key] = _ORIG_CLIENT(*args, **kwargs)
    return _CLIENTS[key]
_DDB_WRITE_LOCK = threading.RLock()


def _atomic(method: Any) -> Any:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _DDB_WRITE_LOCK:
            return method(*args, **kwargs)

    return wrapper


@dataclass
class World:
    s3: Any
    sfn: Any
    sns: Any
    sm: Any
    ddb: Any
    topic_arn: str
    state_machine_arn: str
    handlers: list[Any] = field(default_factory=list)

    # -- bucket ---------------------------------------------------------------------------------
    def put(self, key: str, body: bytes) -> dict[str, Any]:
        r = self.s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        return {"version_id": r.get("VersionId"), "etag": r["ETag"].strip('"'), "size": len(body)}

    def get(self, key: str, version_id: str | None = None) -> bytes:
        kwargs = {"VersionId": version_id} if version_id else {}
        return self.s3.get_object(Bucket=BUCKET, Key=key, **kwargs)["Body"].read()

    def keys(self, prefix: str = "") -> list[str]:
        return [o["Key"] for o in self.s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])]

    def versions(self, key: str) -> list[str]:
        r = self.s3.list_object_versions(Bucket=BUCKET, Prefix=key)
        return [v["VersionId"] for v in r.get("Versions", []) if v["Key"] == key]

    def put_dataset(self, dataset_id: str = DATASET_ID, classes: tuple[str, ...] = CLASSES, per_split: int = 2,
                    marker: bool = True, skip: tuple[str, ...] = ()) -> dict[str, Any]:
        """Upload images (tiny fake bytes) and, last, the ``_dataset.json`` built by the core."""
        files = []
        for split in layout.SPLITS:
            for cls in classes:
                for i in range(per_split):
                    path = f"{split}/{cls}/{i:03d}.jpg"
                    body = f"jpeg {dataset_id} {path}".encode()
                    etag = None
                    if path not in skip:
                        etag = self.put(layout.dataset_prefix(dataset_id) + path, body)["etag"]
                    files.append(datasets.DatasetFile(path, len(body), hashlib.sha256(body).hexdigest(), etag))
        doc = datasets.build_marker(dataset_id, files, sealed_by=datasets.SealedBy(datasets.TOOL, "tests"),
                                    now=datetime(2026, 11, 28, 6, 43, tzinfo=UTC))
        if marker:
            info = self.put(layout.dataset_marker_key(dataset_id), datasets.marker_bytes(doc))
            doc["_upload"] = info
        return doc

    def put_code(self, code_hash: str = CODE_HASH, modified: datetime | None = None) -> str:
        key = layout.code_bundle_key(code_hash)
        self.put(key, b"fake sourcedir.tar.gz " + code_hash.encode())
        if modified is not None:  # S3 LastModified has one-second resolution; set it instead of sleeping
            s3_backends[ACCOUNT]["aws"].get_object(BUCKET, key).last_modified = modified.replace(tzinfo=None)
        return code_hash

    def put_example_world(self) -> None:
        """What the files in events/ expect to find: the dataset, the code bundle, the manifest."""
        self.put_dataset()
        self.put_code()
        self.put(layout.manifest_key("epochs10"), EXAMPLE_MANIFEST_BYTES)
        self.put(SPACED_MANIFEST_KEY, EXAMPLE_MANIFEST_BYTES)

    # -- events -----------------------------------------------------------------------------------
    @staticmethod
    def eventbridge(key: str, info: dict[str, Any], bucket: str = BUCKET) -> dict[str, Any]:
        obj = {"key": key, "size": info["size"], "etag": info["etag"], "sequencer": "0062E99A88DC407460"}
        if info.get("version_id"):
            obj["version-id"] = info["version_id"]
        return {
            "version": "0",
            "id": "2d4eba74-fd51-3966-4bfa-b013c9da8ff1",
            "detail-type": "Object Created",
            "source": "aws.s3",
            "account": ACCOUNT,
            "time": "2026-11-28T06:43:00Z",
            "region": REGION,
            "resources": [f"arn:aws:s3:::{bucket}"],
            "detail": {"version": "0", "bucket": {"name": bucket}, "object": obj, "request-id": "57H08PA84AB1JZ1D",
                       "requester": ACCOUNT, "source-ip-address": "198.51.100.7", "reason": "PutObject"},
        }

    def upload_event(self, key: str, body: bytes) -> dict[str, Any]:
        return self.eventbridge(key, self.put(key, body))

    # -- services ---------------------------------------------------------------------------------
    def notifications(self) -> list[tuple[str, str]]:
        topic = sns_backends[ACCOUNT][REGION].topics[self.topic_arn]
        return [(subject, message) for _, message, subject, *_ in topic.sent_notifications]

    def executions(self) -> list[dict[str, Any]]:
        return self.sfn.list_executions(stateMachineArn=self.state_machine_arn)["executions"]

    def wait(self, execution_arn: str, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            described = self.sfn.describe_execution(executionArn=execution_arn)
            if described["status"] != "RUNNING":
                return described
            if time.monotonic() > deadline:
                raise TimeoutError(f"{execution_arn} still RUNNING after {timeout}s")
            time.sleep(0.05)

    def trial_component(self, trial: str) -> dict[str, Any]:
        return self.sm.describe_trial_component(TrialComponentName=f"{trial}-results")

    # -- a processing job's evaluation, as the job would write it --------------------------------------
    def processing_job(self, job_name: str, output_uri: str, *, started: datetime | None = None,
                       ended: datetime | None = None, status: str = "Completed", exit_message: str = "") -> None:
        """Register the job in moto's SageMaker as CreateProcessingJob would (with its start and end times)."""
        self.sm.create_processing_job(
            ProcessingJobName=job_name, RoleArn=f"arn:aws:iam::{ACCOUNT}:role/nyanops-sagemaker",
            AppSpecification={"ImageUri": "image"},
            ProcessingResources={"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge",
                                                   "VolumeSizeInGB": 30}},
            ProcessingOutputConfig={"Outputs": [{"OutputName": "evaluation", "S3Output": {
                "S3Uri": output_uri, "LocalPath": "/opt/ml/processing/evaluation", "S3UploadMode": "EndOfJob"}}]},
        )
        job = sagemaker_backends[ACCOUNT][REGION].processing_jobs[job_name]
        now = datetime.now(UTC).replace(tzinfo=None)
        job.processing_start_time = (started or now).replace(tzinfo=None)
        job.processing_end_time = (ended or now).replace(tzinfo=None)
        job.processing_job_status = status
        if exit_message:
            job.exit_message = exit_message

    def put_evaluation(self, run: dict[str, Any], wrong: int = 1, doc: dict[str, Any] | None = None,
                       **options: Any) -> dict[str, Any]:
        """What ``run``'s Evaluate job does: register the job, write evaluation.json where it was told to (by
        default a consistent report of the run's dataset: its classes, 2 test images each, ``wrong`` missed)."""
        execution, job_name = run["execution_name"], run["evaluation"]["job_name"]
        if doc is None:
            counts = run["dataset"]["counts"]["test"]
            support = next(iter(counts.values()))
            doc = evaluation_doc(wrong, tuple(run["dataset"]["classes"]), support,
                                 job=job_identity(execution, job_name))
        options.setdefault("started", datetime.now(UTC))
        output = run["evaluation"]["output_s3_uri"]
        self.put(layout.evaluation_key(execution), json.dumps(doc).encode())
        self.processing_job(job_name, output, **options)
        return doc


EXAMPLE_MANIFEST = {
    "experiment": "cats",
    "dataset": f"datasets/{DATASET_ID}",
    "comment": "epochs 10 + augmentation",
    "hyperparameters": {"epochs": 10, "batch-size": 8, "lr": 0.01, "momentum": 0.9, "augment": True},
}
EXAMPLE_MANIFEST_BYTES = (json.dumps(EXAMPLE_MANIFEST, indent=2) + "\n").encode()
# events/s3_put_manifest.json carries this key URL-encoded ('+' for spaces, %E3%81%AD%E3%81%93 for ねこ).
SPACED_MANIFEST_KEY = "manifests/epochs 10 ねこ.json"


@pytest.fixture
def execute_state_machine() -> bool:
    """Handler tests only look at the started executions; the workflow tests override this to True."""
    return False


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch, load_handler: Any, execute_state_machine: bool) -> Iterator[World]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "BUCKET_NAME": BUCKET,
        "EXPERIMENT_LOCK_TABLE": LOCK_TABLE,
        "MODEL_IMAGE": MODEL_IMAGE,
        "DATASET_REGISTRY_TABLE": REGISTRY_TABLE,
        "QUIET_SECONDS": str(QUIET_SECONDS),
        # As template.yaml sets them with its defaults (no KmsKeyArn: an empty KMS_KEY_ARN).
        "TRAINING_INSTANCE_TYPE": "ml.m5.xlarge",
        "PROCESSING_INSTANCE_TYPE": "ml.m5.xlarge",
        "KMS_KEY_ARN": "",
    }.items():
        monkeypatch.setenv(name, value)
    moto_limits.install(monkeypatch)
    monkeypatch.setattr(DynamoDBBackend, "put_item", _atomic(DynamoDBBackend.put_item))
    monkeypatch.setattr(DynamoDBBackend, "delete_item", _atomic(DynamoDBBackend.delete_item))
    monkeypatch.setattr(boto3, "client", _cached_client)
    handlers = [load_handler(name) for name in ("start_pipeline", "record_results", "note_uploads", "seal_datasets")]
    config: Any = {"stepfunctions": {"execute_state_machine": execute_state_machine}, "lambda": {"use_docker": False}}
    with mock_aws(config=config):
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        sns = boto3.client("sns", region_name=REGION)
        topic_arn = sns.create_topic(Name="nyanops-results")["TopicArn"]
        ddb = boto3.client("dynamodb", region_name=REGION)
        ddb.create_table(
            TableName=LOCK_TABLE,
            KeySchema=[{"AttributeName": "experiment", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "experiment", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        create_registry_table(ddb)
        sfn = boto3.client("stepfunctions", region_name=REGION)
        state_machine_arn = sfn.create_state_machine(
            name="nyanops-training-pipeline",
            definition=asl_definition(topic_arn),
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/nyanops-states",
        )["stateMachineArn"]
        monkeypatch.setenv("STATE_MACHINE_ARN", state_machine_arn)
        monkeypatch.setenv("TOPIC_ARN", topic_arn)
        for handler in handlers:
            handler.set_deps(None)  # get_deps() builds the real adapters from the environment, on moto
        w = World(s3, sfn, sns, boto3.client("sagemaker", region_name=REGION), ddb, topic_arn, state_machine_arn,
                  handlers)
        try:
            yield w
        finally:
            for handler in handlers:
                handler.set_deps(None)
