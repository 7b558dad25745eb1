"""Every case of the bad-input corpus (``tests/reliability/corpus.py``) through the StartPipeline
handler on moto: the object is put in the versioned bucket, the EventBridge event carries the key
URL-encoded as S3 sends it. Each must end in a ``rejected/<key>.error.json`` object, one SNS
notification naming the problem and the fix, no Step Functions execution, and the upload with the
same bytes and still exactly one version."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote_plus

import pytest
from reliability.corpus import BASE_OBJECTS, CASES, Case

from nyanops.aws.sns import SNS_SUBJECT_MAX

from .conftest import BUCKET, World


def snapshot(world: World) -> set[tuple[str, str, str]]:
    """Every version of every object in the bucket: (key, version id, ETag)."""
    r = world.s3.list_object_versions(Bucket=BUCKET)
    assert not r.get("IsTruncated") and not r.get("DeleteMarkers")
    return {(v["Key"], v["VersionId"], v["ETag"]) for v in r.get("Versions", [])}


def sns_subject(text: str) -> str:
    """What SNS accepts as a subject (ASCII, at most 100 characters): the adapter's substitution."""
    return "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in text)[:SNS_SUBJECT_MAX]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_upload_is_refused_on_aws(case: Case, world: World, lambda_context: Any) -> None:
    for key, body in BASE_OBJECTS + case.objects:
        world.put(key, body)
    info = world.put(case.key, case.body)
    before = snapshot(world)
    event = world.eventbridge(quote_plus(case.key, safe="/"), info)
    if case.key != quote_plus(case.key, safe="/"):
        assert event["detail"]["object"]["key"] != case.key  # the handler must decode it

    [result] = world.handlers[0].lambda_handler(event, lambda_context)["results"]

    assert result["outcome"] == "rejected"
    assert result["key"] == case.key and result["execution_name"] is None
    assert len(result["problems"]) == len(case.expected), result["problems"]
    for want, got in zip(case.expected, result["problems"], strict=True):
        assert got["field"] == want.field
        assert want.problem in got["problem"]
        assert want.fix in got["fix"]
    record = json.loads(world.get(case.rejection_key))
    assert record["key"] == case.key and record["problems"] == result["problems"]
    assert record["message"] == result["reason"]
    [(subject, message)] = world.notifications()
    assert subject == sns_subject(f"nyanops: upload refused: {case.key}")
    assert message == f"{case.key} was refused.\n\n{result['reason']}"
    assert f"{case.expected[0].field}: " in message and "Fix: " in message
    assert world.executions() == []
    # The upload is untouched (same bytes, still one version) and nothing but the record was written.
    assert world.get(case.key) == case.body
    assert world.versions(case.key) == [info["version_id"]]
    added = snapshot(world) - before
    assert {key for key, *_ in added} == {case.rejection_key}  # written, then marked notified
    assert before <= snapshot(world)
    assert record["version"] == info["version_id"] and record["notified"] is True
