"""The one writer of refusals: ``rejected/<key>.error.json`` plus one notification per upload version.

StartPipeline (a refused manifest or seal), the sealer (a dataset prefix that fails validation) and the
upload noter (a file that arrived after its dataset was sealed) all refuse through ``refuse``. S3 delivers
events at least once and several handlers may get the same one at the same moment; the record itself is
the arbiter, written with conditional writes (``ObjectStore.put_new`` / ``put_if_match``, S3's
``If-None-Match`` / ``If-Match``): exactly one writer creates (or replaces) the record of an upload version
and notifies. A writer that died between writing and notifying leaves ``notified: false`` with a short
lease; after the lease a redelivery notifies (and a writer whose notification raised clears its lease
first, so the retry of that very event notifies at once). A replayed event of an OLDER upload of the same
key (its S3 sequencer is lower than the recorded one's) leaves the newer refusal in place and notifies
nobody.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from nyanops.core import layout
from nyanops.core.ports import Notifier, ObjectNotFound, ObjectStore
from nyanops.core.rejection import UploadRejected, rejection_record, sequencer_is_older

NOTIFY_LEASE = timedelta(seconds=30)
ATTEMPTS = 5


@dataclass(frozen=True)
class Refusal:
    key: str  # the refused upload (the record is rejected/<key>.error.json)
    version: str | None  # what makes this upload distinct from an earlier one of the same key
    rejected: UploadRejected
    subject: str
    message: str
    sequencer: str | None = None  # the S3 event's sequencer: orders events of one key


def refuse(store: ObjectStore, notifier: Notifier, refusal: Refusal, clock: Callable[[], datetime]) -> bool:
    """Record and notify ``refusal`` once per (key, version); True when this call sent the notification."""
    record_key = layout.rejection_key(refusal.key)
    for _ in range(ATTEMPTS):
        current = store.head(record_key)
        previous = _read(store, record_key) if current is not None else None
        now = clock()
        if (
            previous is not None
            and refusal.version is not None
            and previous.get("version") == refusal.version
            and (previous.get("notified") is True or _lease_running(previous, now))
        ):
            return False  # done, or another writer of this very upload is notifying right now
        if previous is not None and sequencer_is_older(refusal.sequencer, previous.get("sequencer")):
            return False  # a replayed event of an older upload: the newer refusal stays, nobody is notified
        record = {
            **rejection_record(refusal.key, refusal.rejected, now),
            "version": refusal.version,
            "sequencer": refusal.sequencer,
            "notified": False,
            "notifying_until": (now + NOTIFY_LEASE).isoformat(timespec="seconds"),
        }
        body = _dump(record)
        if current is None:
            won = store.put_new(record_key, body)
        else:
            assert current.etag is not None
            won = store.put_if_match(record_key, body, current.etag)
        if not won:
            continue  # another writer changed the record: read it again
        written = store.head(record_key)
        try:
            notifier.publish(refusal.subject, refusal.message)
        except BaseException:
            if written is not None and written.etag is not None:
                store.put_if_match(record_key, _dump({**record, "notifying_until": None}), written.etag)
            raise
        if written is not None and written.etag is not None:
            store.put_if_match(record_key, _dump({**record, "notified": True, "notifying_until": None}), written.etag)
        return True
    return False


def _lease_running(record: dict[str, Any], now: datetime) -> bool:
    until = record.get("notifying_until")
    if not isinstance(until, str):
        return False
    try:
        return datetime.fromisoformat(until) > now
    except ValueError:
        return False


def _read(store: ObjectStore, key: str) -> dict[str, Any] | None:
    try:
        doc = json.loads(store.get(key))
    except (ObjectNotFound, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _dump(record: dict[str, Any]) -> bytes:
    return json.dumps(record, indent=2, ensure_ascii=False).encode("utf-8", "backslashreplace")
