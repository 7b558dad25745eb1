"""Reading uploads out of the two event shapes StartPipeline accepts: the EventBridge
``Object Created`` event (what the deployed rule sends) and the classic S3 notification
(``Records[].s3``, what ``sam local generate-event s3 put`` produces). Keys arrive URL-encoded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus


class UnsupportedEvent(ValueError):
    pass


@dataclass(frozen=True)
class Upload:
    bucket: str
    key: str
    version_id: str | None
    etag: str | None
    size: int | None = None
    # S3's per-key event order: a hexadecimal string; of two events on one key, the greater (left-padded with
    # zeros to the same length) happened later (Amazon S3 user guide, "Event message structure").
    sequencer: str | None = None

    @property
    def version(self) -> str | None:
        """What makes this upload distinct from an earlier one of the same key."""
        return self.version_id or self.etag


def uploads_from_event(event: Any) -> list[Upload]:
    """Every upload in ``event``; raises ``UnsupportedEvent`` for anything else."""
    if not isinstance(event, dict):
        raise UnsupportedEvent("event is not a JSON object")
    if event.get("source") == "aws.s3" and "detail" in event:
        if event.get("detail-type") != "Object Created":
            return []
        detail = event["detail"]
        obj = detail.get("object") or {}
        return [
            Upload(
                bucket=str(detail["bucket"]["name"]),
                key=unquote_plus(str(obj["key"])),
                version_id=obj.get("version-id"),
                etag=obj.get("etag"),
                size=obj.get("size"),
                sequencer=obj.get("sequencer"),
            )
        ]
    records = event.get("Records")
    if isinstance(records, list):
        out = []
        for record in records:
            if not str(record.get("eventName", "")).startswith("ObjectCreated:"):
                continue
            s3 = record["s3"]
            obj = s3.get("object") or {}
            out.append(
                Upload(
                    bucket=str(s3["bucket"]["name"]),
                    key=unquote_plus(str(obj["key"])),
                    version_id=obj.get("versionId"),
                    etag=obj.get("eTag"),
                    size=obj.get("size"),
                    sequencer=obj.get("sequencer"),
                )
            )
        return out
    raise UnsupportedEvent("neither an EventBridge 'Object Created' event nor an S3 notification (Records[].s3)")


@dataclass(frozen=True)
class ObjectEvent:
    """An object created or deleted, as the upload noter sees it (``Object Created`` / ``Object Deleted``)."""

    bucket: str
    key: str
    version_id: str | None
    etag: str | None
    size: int | None
    deleted: bool = False

    @property
    def version(self) -> str | None:
        return self.version_id or self.etag


OBJECT_EVENT_TYPES = {"Object Created": False, "Object Deleted": True}


def object_events(event: Any) -> list[ObjectEvent]:
    """The object event in one EventBridge event (S3 sends one per object); [] for other detail types."""
    if not isinstance(event, dict) or event.get("source") != "aws.s3" or "detail" not in event:
        raise UnsupportedEvent("not an EventBridge event from S3")
    deleted = OBJECT_EVENT_TYPES.get(str(event.get("detail-type")))
    if deleted is None:
        return []
    detail = event["detail"]
    obj = detail.get("object") or {}
    return [
        ObjectEvent(
            bucket=str(detail["bucket"]["name"]),
            key=unquote_plus(str(obj["key"])),
            version_id=obj.get("version-id"),
            etag=obj.get("etag"),
            size=obj.get("size"),
            deleted=deleted,
        )
    ]
