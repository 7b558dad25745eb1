"""Refusal records: one per upload version, one notification each, never replaced by an older version's."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from nyanops.core import layout
from nyanops.core.refusals import Refusal, refuse
from nyanops.core.rejection import Problem, UploadRejected, rejection_record, sequencer_is_older
from nyanops.core.upload_events import Upload

from .memory_ports import T0, MemoryNotifier, MemoryObjects

KEY = "manifests/cats.json"
RECORD = layout.rejection_key(KEY)
REFUSED = UploadRejected.one("experiment", "is not a valid SageMaker experiment name", "use letters")
LATER = UploadRejected.one("dataset", "is a URI", "write datasets/<id>")


def upload(version: str | None, sequencer: str | None, key: str = KEY) -> Upload:
    return Upload("b", key, version, None, 10, sequencer)


def record_refusal(
    objects: MemoryObjects, notifier: MemoryNotifier, up: Upload, rejected: UploadRejected, now: datetime
) -> bool:
    """What StartPipeline does with a refused upload (``start_pipeline._reject``)."""
    refusal = Refusal(up.key, up.version, rejected, f"nyanops: upload refused: {up.key}",
                      f"{up.key} was refused.\n\n{rejected.message}", up.sequencer)
    return refuse(objects, notifier, refusal, lambda: now)


def recorded(objects: MemoryObjects, key: str = RECORD) -> dict[str, object]:
    return json.loads(objects.get(key))


@pytest.mark.parametrize(
    ("candidate", "recorded_seq", "older"),
    [
        ("0055AED6DCD90281E5", "0055AED6DCD90281E6", True),
        ("0055AED6DCD90281E6", "0055AED6DCD90281E5", False),
        ("0055AED6DCD90281E5", "0055AED6DCD90281E5", False),  # the same event again is not older
        ("55AED6DCD90281E5", "0055AED6DCD90281E6", True),  # left-padded to the same width
        ("0155AED6DCD90281E5", "55AED6DCD90281E6", False),
        ("ff", "100", True),
        ("FF", "fe", False),  # case does not matter
        ("fe", "FF", True),
        (None, "0055", False),
        ("0055", None, False),
        ("", "0055", False),
        ("zz", "0055", False),  # unknown is never "older"
        ("0055", "zz", False),
        ("0g", "ff", False),  # not hexadecimal (though a valid base-17 number)
        ("00", "0g", False),
        ("!!", "ff", False),
        ("1", "01", False),  # the same sequencer once padded with zeros
        ("00", "1", True),
    ],
)
def test_sequencer_order(candidate: str | None, recorded_seq: str | None, older: bool) -> None:
    assert sequencer_is_older(candidate, recorded_seq) is older


def test_a_refusal_is_written_and_notified_once() -> None:
    objects, notifier = MemoryObjects(), MemoryNotifier()
    assert record_refusal(objects, notifier, upload("v1", "0A"), REFUSED, T0)
    body = recorded(objects)
    assert body["key"] == KEY and body["version"] == "v1" and body["sequencer"] == "0A" and body["notified"] is True
    assert body["problems"] == [{"field": "experiment", "problem": "is not a valid SageMaker experiment name",
                                 "fix": "use letters"}]
    assert notifier.sent == [(f"nyanops: upload refused: {KEY}", f"{KEY} was refused.\n\n{REFUSED.message}")]
    # The same event again (a redelivery): nothing written, nobody notified.
    assert not record_refusal(objects, notifier, upload("v1", "0A"), REFUSED, T0)
    assert len(notifier.sent) == 1 and objects.puts == [RECORD, RECORD]


def test_a_redelivery_after_a_failed_notification_notifies_now() -> None:
    objects, notifier = MemoryObjects(), MemoryNotifier(fail=True)
    with pytest.raises(RuntimeError):
        record_refusal(objects, notifier, upload("v1", "0A"), REFUSED, T0)
    assert recorded(objects)["notified"] is False
    notifier.fail = False
    assert record_refusal(objects, notifier, upload("v1", "0A"), REFUSED, T0)
    assert recorded(objects)["notified"] is True and len(notifier.sent) == 1


def test_a_newer_version_replaces_the_record_and_notifies() -> None:
    objects, notifier = MemoryObjects(), MemoryNotifier()
    record_refusal(objects, notifier, upload("v1", "0A"), REFUSED, T0)
    assert record_refusal(objects, notifier, upload("v2", "0B"), LATER, T0 + timedelta(minutes=1))
    body = recorded(objects)
    assert body["version"] == "v2" and body["message"] == LATER.message
    assert [s for s, _ in notifier.sent] == [f"nyanops: upload refused: {KEY}"] * 2


def test_a_replayed_older_version_leaves_the_newer_refusal() -> None:
    objects, notifier = MemoryObjects(), MemoryNotifier()
    record_refusal(objects, notifier, upload("v2", "0B"), LATER, T0)
    assert not record_refusal(objects, notifier, upload("v1", "0A"), REFUSED, T0 + timedelta(hours=1))
    body = recorded(objects)
    assert body["version"] == "v2" and body["message"] == LATER.message
    assert len(notifier.sent) == 1


def test_without_sequencers_the_latest_event_wins() -> None:
    """Events without a sequencer (the classic notification of a tool) cannot be ordered: the record is
    written as before, never silently dropped."""
    objects, notifier = MemoryObjects(), MemoryNotifier()
    record_refusal(objects, notifier, upload("v2", None), LATER, T0)
    assert record_refusal(objects, notifier, upload("v1", None), REFUSED, T0)
    assert recorded(objects)["version"] == "v1"


def test_an_unversioned_redelivery_is_not_mistaken_for_the_same_version() -> None:
    objects, notifier = MemoryObjects(), MemoryNotifier()
    record_refusal(objects, notifier, upload(None, "0A"), REFUSED, T0)
    assert record_refusal(objects, notifier, upload(None, "0B"), LATER, T0)
    assert len(notifier.sent) == 2


def test_an_unreadable_previous_record_is_replaced() -> None:
    objects, notifier = MemoryObjects(), MemoryNotifier()
    objects.put(RECORD, b"not json")
    assert record_refusal(objects, notifier, upload("v1", "0A"), REFUSED, T0)
    objects.put(RECORD, b"[1, 2]")
    assert record_refusal(objects, notifier, upload("v1", "0A"), REFUSED, T0)
    assert recorded(objects)["notified"] is True


def test_a_refusal_of_a_very_long_key_stays_within_s3s_limit_and_keeps_the_full_key() -> None:
    key = "manifests/" + "n" * 1000 + ".json"
    objects, notifier = MemoryObjects(), MemoryNotifier()
    record_refusal(objects, notifier, upload("v1", "0A", key=key), REFUSED, T0)
    [stored] = objects.versions
    assert stored == layout.rejection_key(key) and len(stored.encode()) <= 1024
    assert recorded(objects, stored)["key"] == key


def test_rejection_record_shape() -> None:
    rejected = UploadRejected([Problem("a", "b", "c"), Problem("d", "e", "f")])
    body = rejection_record(KEY, rejected, T0)
    assert body == {
        "key": KEY,
        "rejected_at": "2026-11-28T07:00:00+00:00",
        "message": "a: b. Fix: c; d: e. Fix: f",
        "problems": [{"field": "a", "problem": "b", "fix": "c"}, {"field": "d", "problem": "e", "fix": "f"}],
        "note": "The upload itself was left untouched. Fix it and upload it again under a new name (or the same "
                "name: a new version is a new upload).",
    }
    assert rejection_record(KEY, rejected)["rejected_at"].endswith("+00:00")  # now, in UTC


def test_the_record_is_readable_json_written_at_the_given_time() -> None:
    key = "manifests/ねこ.json"
    objects, notifier = MemoryObjects(), MemoryNotifier()
    record_refusal(objects, notifier, upload("v1", "0A", key=key), REFUSED, T0 - timedelta(days=1))
    raw = objects.get(layout.rejection_key(key))
    body = json.loads(raw)
    assert raw == json.dumps(body, indent=2, ensure_ascii=False).encode()  # indented, non-ASCII kept
    assert "ねこ".encode() in raw and body["rejected_at"] == "2026-11-27T07:00:00+00:00"
    # the first write (before the notification) has the same shape
    first = json.loads(objects.versions[layout.rejection_key(key)][0][1])
    assert objects.versions[layout.rejection_key(key)][0][1] == json.dumps(first, indent=2, ensure_ascii=False).encode()
    assert first["notified"] is False and first["rejected_at"] == body["rejected_at"]
