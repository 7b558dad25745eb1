"""``nyanops watch``'s dataset side: what S3's object events and the two dataset Lambdas do on AWS, done from
scans of the local bucket through the same core (``nyanops.core.sealing``).

Each scan lists ``bucket/datasets/`` and turns every object whose version (modification time and size) it
has not seen, and every seen object that is gone, into an object event, remembered in the root's database
so a restarted watch notes nothing twice. The events go to ``note_uploads`` (the registry, late files);
then ``seal_due`` seals what has been quiet for the quiet period (a few seconds locally). A folder under
``datasets/`` whose name is not UTF-8 can never be a dataset (S3 keys are UTF-8): it is mentioned once and
left alone.
"""

from __future__ import annotations

import os
import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field

from nyanops.core import layout
from nyanops.core.ports import Notifier
from nyanops.core.sealing import NoteResult, SealingDeps, SealResult, note_uploads, seal_due
from nyanops.core.upload_events import ObjectEvent
from nyanops.local.bucket import LocalObjectStore
from nyanops.local.dataset_registry import SQLiteDatasetRegistry

DEFAULT_QUIET_SECONDS = 5.0
QUIET_ENV = "NYANOPS_QUIET_SECONDS"


def local_quiet_seconds() -> float:
    """The local quiet period: ``NYANOPS_QUIET_SECONDS``, else ``DEFAULT_QUIET_SECONDS``."""
    return float(os.environ.get(QUIET_ENV) or DEFAULT_QUIET_SECONDS)


@dataclass
class ScanResult:
    noted: list[NoteResult] = field(default_factory=list)
    sealed: list[SealResult] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # dataset folders that can never be datasets (messages)


class DatasetWatcher:
    def __init__(self, store: LocalObjectStore, db: sqlite3.Connection, notifier: Notifier,
                 quiet_seconds: float = DEFAULT_QUIET_SECONDS) -> None:
        self.store = store
        self.db = db
        self.registry = SQLiteDatasetRegistry(db)
        self.deps = SealingDeps(store=store, registry=self.registry, notifier=notifier, quiet_seconds=quiet_seconds)

    def events(self) -> tuple[list[ObjectEvent], list[str]]:
        """Object events since the last scan (created or changed, and removed), and dataset folder names that
        cannot be datasets."""
        current: dict[bytes, tuple[str, str, str | None, int]] = {}
        bad_ids: set[str] = set()
        for obj in self.store.list(layout.DATASETS_PREFIX):
            dataset_id = layout.dataset_id_of(obj.key)
            if dataset_id is None:
                continue
            if not _utf8(dataset_id):
                bad_ids.add(dataset_id)
                continue
            current[_raw(obj.key)] = (obj.key, obj.version_id or "", obj.etag, obj.size)
        seen = {bytes(r["key"]): r["version"] for r in self.db.execute("SELECT key, version FROM dataset_objects_seen")}
        out = [
            ObjectEvent(self.store.bucket, key, version, etag, size)
            for raw, (key, version, etag, size) in sorted(current.items())
            if seen.get(raw) != version
        ]
        out += [
            ObjectEvent(self.store.bucket, raw.decode("utf-8", "surrogateescape"), version, None, None, deleted=True)
            for raw, version in sorted(seen.items())
            if raw not in current
        ]
        return out, sorted(bad_ids)

    def remember(self, events: list[ObjectEvent]) -> None:
        with_rows = [(_raw(e.key), e.version or "") for e in events if not e.deleted]
        gone = [(_raw(e.key),) for e in events if e.deleted]
        self.db.executemany("INSERT OR REPLACE INTO dataset_objects_seen (key, version) VALUES (?, ?)", with_rows)
        self.db.executemany("DELETE FROM dataset_objects_seen WHERE key = ?", gone)

    def scan(self) -> ScanResult:
        """Note what changed, then seal what has settled."""
        events, bad_ids = self.events()
        result = ScanResult(skipped=[f"{layout.DATASETS_PREFIX}{i}" for i in bad_ids])
        by_dataset: dict[str, list[ObjectEvent]] = defaultdict(list)
        for e in events:
            by_dataset[layout.dataset_id_of(e.key) or ""].append(e)
        for batch in by_dataset.values():
            result.noted += note_uploads(batch, self.deps)
            self.remember(batch)  # after noting: a crash in between notes the batch again (at least once)
        result.sealed = seal_due(self.deps)
        return result


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _raw(key: str) -> bytes:
    return key.encode("utf-8", "surrogateescape")
