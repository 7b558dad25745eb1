"""Why an upload was refused: one error type carrying every problem found, each naming its field
and the fix, so a data scientist can correct the file without reading code; and the one writer of
refusal records (``record_refusal``): ``rejected/<key>.error.json`` plus one notification per upload
version, never replaced by an older version's refusal.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from nyanops.core import layout
from nyanops.core.ports import Notifier, ObjectNotFound, ObjectStore
from nyanops.core.upload_events import Upload


@dataclass(frozen=True)
class Problem:
    field: str
    problem: str
    fix: str

    def line(self) -> str:
        return f"{self.field}: {self.problem}. Fix: {self.fix}"


@dataclass
class UploadRejected(Exception):
    """An upload that must not start a run. ``problems`` lists every reason, most important first."""

    problems: list[Problem] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    @property
    def message(self) -> str:
        return "; ".join(p.line() for p in self.problems)

    @classmethod
    def one(cls, field_name: str, problem: str, fix: str) -> UploadRejected:
        return cls([Problem(field_name, problem, fix)])


def rejection_record(key: str, rejected: UploadRejected, now: datetime | None = None) -> dict[str, Any]:
    """The JSON body written to ``rejected/<key>.error.json``."""
    when = (now or datetime.now(timezone.utc)).isoformat(timespec="seconds")
    return {
        "key": key,
        "rejected_at": when,
        "message": rejected.message,
        "problems": [asdict(p) for p in rejected.problems],
        "note": "The upload itself was left untouched. Fix it and upload it again under a new name "
        "(or the same name: a new version is a new upload).",
    }


def sequencer_is_older(candidate: str | None, recorded: str | None) -> bool:
    """Whether the event with ``candidate`` happened before the one with ``recorded`` (same key).

    S3 sequencers are hexadecimal strings: left-pad the shorter with zeros, then compare. Unknown (None or
    not hexadecimal) is never "older": a refusal is then written as before."""
    if not candidate or not recorded:
        return False
    try:
        int(candidate, 16), int(recorded, 16)
    except ValueError:
        return False
    width = max(len(candidate), len(recorded))
    return candidate.lower().rjust(width, "0") < recorded.lower().rjust(width, "0")


def record_refusal(
    store: ObjectStore, notifier: Notifier, upload: Upload, rejected: UploadRejected, now: datetime
) -> bool:
    """Write the record, notify, then mark the record notified. Returns False when nothing was written.

    A redelivered event of the same upload version finds its record notified and does nothing more (one
    record, one notification); one whose earlier delivery failed to notify (the handler raised, so the event
    is retried) notifies now. A replayed event of an OLDER upload (its S3 sequencer is lower than the
    recorded one's) leaves the newer refusal in place and notifies nobody.
    """
    key = layout.rejection_key(upload.key)
    previous = _previous_record(store, key)
    if previous is not None:
        if upload.version is not None and previous.get("version") == upload.version and previous.get("notified"):
            return False
        if sequencer_is_older(upload.sequencer, previous.get("sequencer")):
            return False
    record = {
        **rejection_record(upload.key, rejected, now),
        "version": upload.version,
        "sequencer": upload.sequencer,
        "notified": False,
    }
    store.put(key, json.dumps(record, indent=2, ensure_ascii=False).encode())
    notifier.publish(f"nyanops: upload refused: {upload.key}", f"{upload.key} was refused.\n\n{rejected.message}")
    record["notified"] = True
    store.put(key, json.dumps(record, indent=2, ensure_ascii=False).encode())
    return True


def _previous_record(store: ObjectStore, key: str) -> dict[str, Any] | None:
    try:
        previous = json.loads(store.get(key))
    except (ObjectNotFound, ValueError):
        return None
    return previous if isinstance(previous, dict) else None
