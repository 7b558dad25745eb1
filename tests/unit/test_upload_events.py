"""Reading uploads out of EventBridge 'Object Created' events and classic S3 notifications."""

from __future__ import annotations

from typing import Any

import pytest

from nyanops.core.upload_events import UnsupportedEvent, Upload, uploads_from_event


def eventbridge(key: str, **obj: Any) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2026-11-28T06:43:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:s3:::nyanops-example-bucket"],
        "detail": {
            "version": "0",
            "bucket": {"name": "nyanops-example-bucket"},
            "object": {"key": key, "size": 120, "etag": "d41d8cd98f00b204e9800998ecf8427e", **obj},
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": "123456789012",
            "reason": "PutObject",
        },
    }


def s3_record(key: str, event_name: str = "ObjectCreated:Put", **obj: Any) -> dict[str, Any]:
    return {
        "eventVersion": "2.0",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventName": event_name,
        "s3": {
            "bucket": {"name": "nyanops-example-bucket", "arn": "arn:aws:s3:::nyanops-example-bucket"},
            "object": {"key": key, "size": 120, "eTag": "0123456789abcdef0123456789abcdef", **obj},
        },
    }


def test_eventbridge_object_created() -> None:
    [up] = uploads_from_event(eventbridge("manifests/epochs10.json", **{"version-id": "v1"}))
    etag = "d41d8cd98f00b204e9800998ecf8427e"
    assert up == Upload("nyanops-example-bucket", "manifests/epochs10.json", "v1", etag, 120)
    assert up.version == "v1"


def test_eventbridge_without_version_uses_etag() -> None:
    [up] = uploads_from_event(eventbridge("manifests/a.json"))
    assert up.version_id is None and up.version == "d41d8cd98f00b204e9800998ecf8427e"


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("manifests/my+cats+epochs+10.json", "manifests/my cats epochs 10.json"),
        ("manifests/%E3%81%AD%E3%81%93.json", "manifests/ねこ.json"),
        ("manifests/a%2Bb.json", "manifests/a+b.json"),
        ("datasets/2026-11-28T064300Z/_dataset.json", "datasets/2026-11-28T064300Z/_dataset.json"),
    ],
)
def test_keys_are_url_decoded_in_both_shapes(raw: str, key: str) -> None:
    assert uploads_from_event(eventbridge(raw))[0].key == key
    assert uploads_from_event({"Records": [s3_record(raw)]})[0].key == key


def test_other_eventbridge_detail_types_give_nothing() -> None:
    event = eventbridge("manifests/a.json")
    event["detail-type"] = "Object Deleted"
    assert uploads_from_event(event) == []


def test_s3_notification_several_records_and_non_create_events() -> None:
    event = {
        "Records": [
            s3_record("manifests/a.json", versionId="v9"),
            s3_record("manifests/b.json", event_name="ObjectRemoved:Delete"),
            s3_record("manifests/c.json", event_name="ObjectCreated:CompleteMultipartUpload"),
        ]
    }
    ups = uploads_from_event(event)
    assert [u.key for u in ups] == ["manifests/a.json", "manifests/c.json"]
    assert ups[0].version_id == "v9" and ups[1].version == "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize("event", [[], "x", None, {"hello": "world"}, {"source": "aws.ec2"}])
def test_unsupported_events(event: Any) -> None:
    with pytest.raises(UnsupportedEvent):
        uploads_from_event(event)
