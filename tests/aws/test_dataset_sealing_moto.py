"""Drop images, get exactly one run, on moto: the real path from S3 to the run.

The bucket sends its events to EventBridge (moto's S3 → EventBridge notifications), the template's own
DatasetUploadRule pattern routes ``datasets/`` objects to an SQS queue, and the test plays Lambda's SQS poller:
it receives batches and hands them, as the SQS event, to the real NoteDatasetUploads handler, several at once,
deleting what the handler did not report as failed. The SealDatasets handler then runs (several invocations at
once) with its clock past the quiet period, and the seal's own S3 event reaches the real StartPipeline handler
(several deliveries at once). Two test-only corrections make moto's conditional writes atomic across threads
as S3's and DynamoDB's are (``atomic_conditional_writes``); product code never imports moto.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from moto.dynamodb.models import DynamoDBBackend
from moto.events.models import events_backends
from moto.s3.models import S3Backend
from moto.s3.responses import S3Response
from moto.sqs.models import sqs_backends

from nyanops.aws.dataset_registry import DynamoDatasetRegistry
from nyanops.core import dataset as datasets
from nyanops.core import layout
from nyanops.core.dataset_registry import REFUSED, SEALED, UPLOADING, WAITING

from .conftest import ACCOUNT, BUCKET, REGION, World
from .dataset_registry_table import QUIET_SECONDS, REGISTRY_TABLE

QUIET = QUIET_SECONDS
TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
_WRITE_LOCK = threading.RLock()


def _serialised(method: Any) -> Any:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _WRITE_LOCK:
            return method(*args, **kwargs)

    return wrapper


@pytest.fixture
def atomic_conditional_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto checks If-None-Match / If-Match and DynamoDB conditions, then writes, without a lock; S3 and
    DynamoDB evaluate and write atomically. Serialise those calls so concurrent handlers see the real rule.
    And send the EventBridge event of a delete marker, which moto leaves out."""
    monkeypatch.setattr(S3Response, "put_object", _serialised(S3Response.put_object))
    monkeypatch.setattr(DynamoDBBackend, "update_item", _serialised(DynamoDBBackend.update_item))
    monkeypatch.setattr(S3Backend, "delete_object", _delete_object_with_event)


_ORIG_DELETE_OBJECT = S3Backend.delete_object


def _delete_object_with_event(self: S3Backend, bucket_name: str, key_name: str, version_id: str | None = None,
                              bypass: bool = False) -> tuple[bool, dict[str, Any]]:
    """moto 5.2 sends no event when a DELETE on a versioned bucket creates a delete marker; S3 sends "Object
    Deleted" (deletion-type "Delete Marker Created", no size or ETag) to EventBridge. Send it, as S3 does."""
    done, meta = _ORIG_DELETE_OBJECT(self, bucket_name, key_name, version_id, bypass)
    bucket = self.get_bucket(bucket_name)
    if done and meta.get("delete-marker") == "true" and version_id is None and bucket.notification_configuration:
        event = {
            "version": "0", "id": str(uuid.uuid4()), "detail-type": "Object Deleted", "source": "aws.s3",
            "account": self.account_id, "time": time.time(), "region": bucket.region_name,
            "resources": [bucket.arn],
            "detail": {"version": "0", "bucket": {"name": bucket_name},
                       "object": {"key": key_name, "version-id": meta["version-id"], "sequencer": "617f08299329d189"},
                       "request-id": "N4N7GDK58NMKJ12R", "requester": self.account_id,
                       "source-ip-address": "1.2.3.4", "reason": "DeleteObject",
                       "deletion-type": "Delete Marker Created"},
        }
        for bus in events_backends[self.account_id][bucket.region_name].event_buses.values():
            for rule in bus.rules.values():
                rule.send_to_targets(event, transform_input=False)
    return done, meta


def dataset_rule_pattern() -> dict[str, Any]:
    """The template's DatasetUploadRule pattern, with the bucket reference resolved to the test bucket."""

    class Loader(yaml.SafeLoader):
        """CloudFormation's short tags (!Ref, !Sub...) read as {tag: value}: only the rule's pattern is used."""

    def intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            return {suffix: loader.construct_scalar(node)}
        if isinstance(node, yaml.SequenceNode):
            return {suffix: loader.construct_sequence(node, deep=True)}
        return {suffix: loader.construct_mapping(node, deep=True)}  # type: ignore[arg-type]

    Loader.add_multi_constructor("!", intrinsic)
    template = yaml.load(TEMPLATE.read_text(), Loader=Loader)
    pattern = template["Resources"]["DatasetUploadRule"]["Properties"]["EventPattern"]
    pattern["detail"]["bucket"]["name"] = [BUCKET]
    return pattern


@dataclass
class Sealing:
    world: World
    queue_url: str
    note: Any
    seal: Any
    start: Any
    ctx: Any
    taken: list[str] = field(default_factory=list)

    # -- SQS → NoteDatasetUploads, as Lambda's poller does it --------------------------------------------
    def take(self) -> list[str]:
        """Every message the rule put on the queue, taken off it (moto's ReceiveMessage scans the whole queue
        per call, far too slow for thousands of messages; the handler gets the same bodies either way)."""
        queue = sqs_backends[ACCOUNT][REGION].queues["dataset-uploads"]
        with queue._messages_lock:
            bodies = [m.body for m in queue._messages]
            queue._messages.clear()
        earlier, self.taken = self.taken, []
        return earlier + bodies

    def deliver(self, bodies: list[str]) -> dict[str, Any]:
        """One invocation of the handler with an SQS event of ``bodies``, as the event source mapping sends it."""
        records = [{"messageId": str(uuid.uuid4()), "receiptHandle": uuid.uuid4().hex, "body": body,
                    "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
                    "md5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
                    "eventSource": "aws:sqs", "awsRegion": REGION,
                    "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:dataset-uploads"} for body in bodies]
        response = self.note.lambda_handler({"Records": records}, self.ctx)
        assert response["batchItemFailures"] == []
        return response

    def drain(self, pollers: int = 4, batch: int = 100, extra: list[str] | None = None,
              rng: random.Random | None = None) -> int:
        """Deliver everything queued (plus ``extra`` duplicates, shuffled in) in batches of up to ``batch``,
        ``pollers`` invocations at a time; the number of records handled."""
        bodies = self.take() + (extra or [])
        (rng or random.Random(0)).shuffle(bodies)
        batches = [bodies[i:i + batch] for i in range(0, len(bodies), batch)]
        with ThreadPoolExecutor(pollers) as pool:
            for f in [pool.submit(self.deliver, b) for b in batches]:
                f.result()
        return len(bodies)

    # -- SealDatasets, its clock past the quiet period ------------------------------------------------
    def seal_after_quiet(self, invocations: int = 1, extra: float = 1.0) -> list[dict[str, Any]]:
        deps = self.seal.get_deps()
        later = datetime.now(timezone.utc) + timedelta(seconds=QUIET + extra)
        deps.clock = lambda: later
        with ThreadPoolExecutor(invocations) as pool:
            outs = list(pool.map(lambda _: self.seal.lambda_handler({"source": "aws.events"}, self.ctx),
                                 range(invocations)))
        return [r for out in outs for r in out["results"]]

    def registry(self) -> DynamoDatasetRegistry:
        return DynamoDatasetRegistry(self.world.ddb, REGISTRY_TABLE)


@pytest.fixture
def sealing(world: World, lambda_context: Any, atomic_conditional_writes: None) -> Iterator[Sealing]:
    import boto3

    sqs = boto3.client("sqs", region_name=REGION)
    queue_url = sqs.create_queue(QueueName="dataset-uploads")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events = boto3.client("events", region_name=REGION)
    events.put_rule(Name="dataset-uploads", EventPattern=json.dumps(dataset_rule_pattern()))
    events.put_targets(Rule="dataset-uploads", Targets=[{"Id": "queue", "Arn": queue_arn}])
    world.s3.put_bucket_notification_configuration(
        Bucket=BUCKET, NotificationConfiguration={"EventBridgeConfiguration": {}})
    world.put_code()
    start, _, note, seal = world.handlers
    yield Sealing(world, queue_url, note, seal, start, lambda_context)


def images(dataset_id: str, classes: int, per_class: int) -> dict[str, bytes]:
    return {
        f"{layout.dataset_prefix(dataset_id)}{split}/cat{c:02d}/{i:04d}.jpg": f"jpeg {split} {c} {i}".encode()
        for split in layout.SPLITS for c in range(classes) for i in range(per_class)
    }


def upload(sealing: Sealing, objects: dict[str, bytes], rng: random.Random) -> None:
    keys = list(objects)
    rng.shuffle(keys)  # any order
    for n, key in enumerate(keys, 1):
        sealing.world.s3.put_object(Bucket=BUCKET, Key=key, Body=objects[key])
        if n % 50 == 0:  # moto's SendMessage scans the whole queue: keep it short
            sealing.taken = sealing.take()


def start_from_seal(sealing: Sealing, dataset_id: str, deliveries: int = 3) -> list[dict[str, Any]]:
    """The seal's S3 event, as the UploadRule delivers it to StartPipeline, several times at once."""
    key = layout.dataset_marker_key(dataset_id)
    head = sealing.world.s3.head_object(Bucket=BUCKET, Key=key)
    event = World.eventbridge(key, {"size": head["ContentLength"], "etag": head["ETag"].strip('"'),
                                    "version_id": head["VersionId"]})
    with ThreadPoolExecutor(deliveries) as pool:
        outs = list(pool.map(lambda _: sealing.start.lambda_handler(event, sealing.ctx), range(deliveries)))
    return [r for out in outs for r in out["results"]]


def test_a_thousand_image_events_shuffled_duplicated_and_concurrent_make_one_seal_and_one_run(
        sealing: Sealing) -> None:
    world, rng = sealing.world, random.Random(7)
    objects = images("cats-drop", classes=4, per_class=85)  # 3 splits x 4 classes x 85 = 1,020 images
    upload(sealing, objects, rng)
    queued = sealing.take()
    assert len(queued) == len(objects), "one S3 event per object reached the queue through the template's rule"
    # At-least-once delivery: a quarter of the events arrive twice; all in random order, four handlers at once.
    duplicates = rng.sample(queued, len(queued) // 4)
    handled = sealing.drain(pollers=4, batch=100, extra=queued + duplicates, rng=rng)
    assert handled == len(objects) + len(duplicates) == 1275

    record = sealing.registry().get("cats-drop")
    assert record is not None and record.state == WAITING
    assert record.uploads == len(objects) + len(duplicates)  # noted per batch, counted per event
    assert not world.keys(layout.dataset_marker_key("cats-drop")), "nothing is sealed before the quiet period"
    assert sealing.seal.lambda_handler({}, sealing.ctx)["results"] == [], "not due yet: the upload just happened"

    results = sealing.seal_after_quiet(invocations=3)
    outcomes = sorted(r["outcome"] for r in results)
    assert outcomes.count("sealed") == 1 and set(outcomes) <= {"sealed", "busy", "already-sealed"}, outcomes
    marker_key = layout.dataset_marker_key("cats-drop")
    assert len(world.versions(marker_key)) == 1, "exactly one seal"
    seal = datasets.parse_marker("cats-drop", world.get(marker_key))
    assert seal.sealed_by.tool == "pipeline" and len(seal.files) == len(objects) == 1020
    assert seal.counts == {s: {f"cat{c:02d}": 85 for c in range(4)} for s in layout.SPLITS}
    listed = {o["Key"]: o["ETag"].strip('"') for page in world.s3.get_paginator("list_objects_v2").paginate(
        Bucket=BUCKET, Prefix="datasets/cats-drop/") for o in page.get("Contents", [])}
    assert {layout.dataset_prefix("cats-drop") + p: f.etag for p, f in seal.files.items()} == {
        k: v for k, v in listed.items() if k != marker_key}
    # The seal's own S3 event went to the queue too: noting it marks the dataset sealed.
    assert sealing.drain(pollers=2) == 1
    assert sealing.registry().get("cats-drop").state == SEALED  # type: ignore[union-attr]
    assert sealing.seal_after_quiet(invocations=2) == []  # nothing due any more

    started = start_from_seal(sealing, "cats-drop", deliveries=3)
    assert sorted(r["outcome"] for r in started) in (["duplicate", "duplicate", "started"],
                                                     ["duplicate", "started", "started"])
    [execution] = world.executions()
    run = json.loads(world.sfn.describe_execution(executionArn=execution["executionArn"])["input"])
    assert run["dataset"]["id"] == "cats-drop" and run["dataset"]["split_hashes"] == seal.split_hashes
    [trial] = run["trials"]
    assert trial["training"]["hyperparameters"]["expected-train-hash"] == seal.split_hashes["train"]
    assert trial["evaluation"]["container_arguments"] == ["--expected-test-hash", seal.split_hashes["test"]]
    assert world.notifications() == []


def sealed_dataset(sealing: Sealing, dataset_id: str = "cats-small") -> dict[str, bytes]:
    objects = images(dataset_id, classes=2, per_class=3)
    upload(sealing, objects, random.Random(1))
    sealing.drain()
    assert [r["outcome"] for r in sealing.seal_after_quiet()] == ["sealed"]
    sealing.drain()
    return objects


def test_a_late_file_is_refused_once_and_changes_nothing(sealing: Sealing) -> None:
    world = sealing.world
    objects = sealed_dataset(sealing)
    marker_key = layout.dataset_marker_key("cats-small")
    seal_before = world.get(marker_key)
    late = "datasets/cats-small/train/cat00/late.jpg"
    world.s3.put_object(Bucket=BUCKET, Key=late, Body=b"jpeg, too late")
    # The late file's event three times, and a late-delivered event of a sealed file twice, all at once.
    [late_body] = sealing.take()
    sealed_key = sorted(objects)[0]
    head = world.s3.head_object(Bucket=BUCKET, Key=sealed_key)
    sealed_event = json.dumps(World.eventbridge(sealed_key, {"size": head["ContentLength"],
                                                             "etag": head["ETag"].strip('"'),
                                                             "version_id": head["VersionId"]}))
    sealing.drain(pollers=5, batch=1, extra=[late_body] * 3 + [sealed_event] * 2)

    [(subject, message)] = world.notifications()
    assert subject == "nyanops: file refused: datasets/cats-small is sealed"
    assert f"{late} arrived after datasets/cats-small was sealed" in message and "immutable" in message
    record = json.loads(world.get(layout.rejection_key(late)))
    assert record["key"] == late and record["notified"] is True
    [problem] = record["problems"]
    assert problem["field"] == late and "datasets are immutable" in problem["problem"]
    assert "upload the changed dataset to a new id" in problem["fix"]
    assert world.get(marker_key) == seal_before and len(world.versions(marker_key)) == 1
    assert sealing.registry().get("cats-small").state == SEALED  # type: ignore[union-attr]
    assert world.executions() == [] and world.get(late) == b"jpeg, too late"  # nothing started, nothing removed


def test_a_refused_prefix_is_notified_once_and_checked_again_after_the_fix(sealing: Sealing) -> None:
    world = sealing.world
    objects = images("cats-notes", classes=2, per_class=2)
    objects["datasets/cats-notes/train/cat00/notes.txt"] = b"remember to feed Tama"
    upload(sealing, objects, random.Random(3))
    sealing.drain()
    looked = sealing.seal_after_quiet(invocations=2)  # one takes it; the other finds it taken or not due
    [refused] = [r for r in looked if r["outcome"] != "busy"]
    assert refused["outcome"] == "refused" and "non-image files" in refused["detail"]
    record_key = layout.rejection_key(layout.dataset_marker_key("cats-notes"))
    record = json.loads(world.get(record_key))
    assert record["problems"][0]["field"] == "dataset"
    assert "non-image files: datasets/cats-notes/train/cat00/notes.txt" in record["problems"][0]["problem"]
    [(subject, message)] = world.notifications()
    assert subject == "nyanops: dataset refused: datasets/cats-notes" and "checked again" in message
    assert sealing.registry().get("cats-notes").state == REFUSED  # type: ignore[union-attr]
    assert sealing.seal_after_quiet(extra=600) == [], "a refused prefix waits for a change"

    world.s3.delete_object(Bucket=BUCKET, Key="datasets/cats-notes/train/cat00/notes.txt")  # the fix
    sealing.drain()
    assert sealing.registry().get("cats-notes").state == WAITING  # type: ignore[union-attr]
    assert [r["outcome"] for r in sealing.seal_after_quiet()] == ["sealed"]
    assert len(world.notifications()) == 1
    assert datasets.parse_marker("cats-notes", world.get(layout.dataset_marker_key("cats-notes"))).counts["train"] == {
        "cat00": 2, "cat01": 2}


def test_a_tools_claim_is_left_alone_and_its_seal_is_respected(sealing: Sealing) -> None:
    world = sealing.world
    objects = images("cats-tool", classes=2, per_class=2)
    claim = json.dumps({"tool": "nyanops dataset add", "host": "laptop", "started_at": "2026-11-28T06:40:00Z"})
    world.s3.put_object(Bucket=BUCKET, Key=layout.dataset_claim_key("cats-tool"), Body=claim.encode())
    partial = dict(list(sorted(objects.items()))[:5])
    upload(sealing, partial, random.Random(5))
    sealing.drain()
    [left] = sealing.seal_after_quiet()
    assert left["outcome"] == "uploading" and "re-run that command" in left["detail"] and "laptop" in left["detail"]
    assert not world.keys(layout.dataset_marker_key("cats-tool")), "a partial dataset is never sealed"
    assert sealing.registry().get("cats-tool").state == UPLOADING  # type: ignore[union-attr]
    # The tool finishes: the rest, its own seal, then its claim removed.
    upload(sealing, {k: v for k, v in objects.items() if k not in partial}, random.Random(6))
    files = [datasets.DatasetFile(k.split("/", 2)[2], len(v), hashlib.sha256(v).hexdigest(),
                                  world.s3.head_object(Bucket=BUCKET, Key=k)["ETag"].strip('"'))
             for k, v in objects.items()]
    doc = datasets.build_marker("cats-tool", files, sealed_by=datasets.SealedBy(datasets.TOOL, "tests"))
    world.s3.put_object(Bucket=BUCKET, Key=layout.dataset_marker_key("cats-tool"), Body=datasets.marker_bytes(doc))
    world.s3.delete_object(Bucket=BUCKET, Key=layout.dataset_claim_key("cats-tool"))
    sealing.drain()
    assert sealing.registry().get("cats-tool").state == SEALED  # type: ignore[union-attr]
    assert sealing.seal_after_quiet(extra=600) == []
    assert len(world.versions(layout.dataset_marker_key("cats-tool"))) == 1 and world.notifications() == []
    assert [r["outcome"] for r in start_from_seal(sealing, "cats-tool", deliveries=1)] == ["started"]


def test_a_sealer_that_died_is_replaced_after_its_lease(sealing: Sealing) -> None:
    upload(sealing, images("cats-crash", classes=2, per_class=2), random.Random(8))
    sealing.drain()
    registry = sealing.registry()
    now = datetime.now(timezone.utc).timestamp() + QUIET + 1
    assert registry.claim("cats-crash", "dead-sealer", now, now + 900, now - QUIET) is not None  # then it died
    assert sealing.seal_after_quiet() == [{"dataset_id": "cats-crash", "outcome": "busy",
                                           "detail": "another sealer has it, or it is no longer quiet"}]
    assert [r["outcome"] for r in sealing.seal_after_quiet(extra=901)] == ["sealed"]


def test_an_upload_during_sealing_makes_the_sealer_back_off(sealing: Sealing) -> None:
    world = sealing.world
    upload(sealing, images("cats-busy", classes=2, per_class=2), random.Random(9))
    sealing.drain()
    deps = sealing.seal.get_deps()
    original: Callable[..., Any] = deps.parallel_map

    def upload_while_hashing(fn: Callable[[Any], Any], items: Any) -> Any:
        out = list(original(fn, items))
        world.s3.put_object(Bucket=BUCKET, Key="datasets/cats-busy/val/cat01/9999.jpg", Body=b"jpeg, mid-seal")
        sealing.drain()  # its event is noted while the sealer still holds the dataset
        return out

    deps.parallel_map = upload_while_hashing
    [changed] = sealing.seal_after_quiet()
    deps.parallel_map = original
    assert changed["outcome"] == "changed"
    assert not world.keys(layout.dataset_marker_key("cats-busy"))
    [sealed] = sealing.seal_after_quiet(extra=QUIET + 5)
    assert sealed["outcome"] == "sealed"
    seal = datasets.parse_marker("cats-busy", world.get(layout.dataset_marker_key("cats-busy")))
    assert "val/cat01/9999.jpg" in seal.files and len(seal.files) == 13


def test_a_message_that_is_not_an_s3_event_is_dropped_not_retried(sealing: Sealing) -> None:
    response = sealing.note.lambda_handler({"Records": [
        {"messageId": str(uuid.uuid4()), "body": "not json"},
        {"messageId": str(uuid.uuid4()), "body": json.dumps({"source": "aws.events", "detail": {}})},
    ]}, sealing.ctx)
    assert response == {"batchItemFailures": []}
    assert sealing.registry().all() == []
