"""What ``nyanops datasets`` shows for each ``datasets/<id>/`` prefix, read from the bucket itself (the same
way on both sides): one listing of ``datasets/``, each seal, each tool's claim and the refusal records.

- ``sealed``: ``_dataset.json`` is there and valid (how many images, who sealed it, when; files added after
  the seal are counted: runs naming the dataset are refused while they are there);
- ``uploading``: a ``dataset add`` claim is there (from which host, since when): it is running, or it was
  interrupted (re-run the same command to resume; remove the claim to let the pipeline seal what is there);
- ``waiting``: files and no seal yet; the pipeline seals it once nothing new arrived for the quiet period;
- ``refused``: the last look at it found a problem (the refusal's first reason), and nothing changed since.

The registry's record, where the caller has one, says when uploads were last *noticed* (a copy can keep old
modification times); otherwise the newest object's LastModified is used.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from nyanops.core import dataset as datasets
from nyanops.core import layout
from nyanops.core.dataset_registry import DatasetRecord
from nyanops.core.ports import ObjectInfo, ObjectNotFound, ObjectStore
from nyanops.core.rejection import UploadRejected

SEALED = "sealed"
UPLOADING = "uploading"
WAITING = "waiting"
REFUSED = "refused"


@dataclass(frozen=True)
class DatasetStatus:
    dataset_id: str
    state: str
    detail: str
    files: int

    def as_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset_id, "state": self.state, "detail": self.detail, "files": self.files}


def list_statuses(store: ObjectStore, now: datetime, quiet_seconds: float,
                  records: Iterable[DatasetRecord] = ()) -> list[DatasetStatus]:
    """The state of every dataset prefix in the bucket, sorted by id."""
    by_dataset: dict[str, list[ObjectInfo]] = defaultdict(list)
    for obj in store.list(layout.DATASETS_PREFIX):
        dataset_id = layout.dataset_id_of(obj.key)
        if dataset_id is not None:
            by_dataset[dataset_id].append(obj)
    known = {r.dataset_id: r for r in records}
    return [status_of(store, dataset_id, objs, now, quiet_seconds, known.get(dataset_id))
            for dataset_id, objs in sorted(by_dataset.items())]


def status_of(store: ObjectStore, dataset_id: str, objects: list[ObjectInfo], now: datetime, quiet_seconds: float,
              record: DatasetRecord | None = None) -> DatasetStatus:
    marker_key = layout.dataset_marker_key(dataset_id)
    claim_key = layout.dataset_claim_key(dataset_id)
    present = {o.key: o for o in objects}
    files = datasets.files_from_listing(dataset_id, ((o.key, o.size, o.etag) for o in objects))
    refusal = _refusal(store, layout.rejection_key(marker_key))
    if marker_key in present:
        return _sealed(store, dataset_id, present[marker_key], files, refusal)
    if claim_key in present:
        return DatasetStatus(dataset_id, UPLOADING, _claim(store, claim_key, len(files), now), len(files))
    newest = max((o.last_modified for o in objects if o.last_modified is not None), default=None)
    noticed = datetime.fromtimestamp(record.last_upload_at, tz=now.tzinfo) if record is not None else newest
    if refusal is not None and record is not None and record.state == REFUSED:
        return DatasetStatus(dataset_id, REFUSED, _first_reason(refusal), len(files))
    if refusal is not None and record is None and newest is not None and _at(refusal) >= newest:
        return DatasetStatus(dataset_id, REFUSED, _first_reason(refusal), len(files))
    ago = f"last file {_ago(now, noticed)}" if noticed is not None else "no files yet"
    return DatasetStatus(dataset_id, WAITING, f"{ago}; sealed after {quiet_seconds:g} s without new files",
                         len(files))


def _sealed(store: ObjectStore, dataset_id: str, marker_obj: ObjectInfo, files: list[datasets.DatasetFile],
            refusal: dict[str, Any] | None) -> DatasetStatus:
    try:
        marker = datasets.parse_marker(dataset_id, store.get(marker_obj.key))
    except (ObjectNotFound, UploadRejected) as exc:
        reason = exc.problems[0].problem if isinstance(exc, UploadRejected) else "the seal vanished"
        return DatasetStatus(dataset_id, REFUSED, f"_dataset.json {reason}", len(files))
    version = marker_obj.version_id or marker_obj.etag
    if refusal is not None and version is not None and refusal.get("version") == version:
        return DatasetStatus(dataset_id, REFUSED, _first_reason(refusal), len(files))
    by = "the pipeline" if marker.sealed_by.tool == datasets.PIPELINE else f"`{marker.sealed_by.tool}`"
    detail = f"{len(marker.files)} images, {len(marker.classes)} classes; sealed by {by} at {marker.sealed_at}"
    if not marker.start_run:
        detail += " (no run: --no-run)"
    problem = datasets.identity_problem(dataset_id, files, marker)
    if problem is not None:
        extra = len({f.path for f in files} - set(marker.files))
        detail += f"; CHANGED since sealing ({extra} file(s) not sealed): runs naming it are refused; see rejected/"
    return DatasetStatus(dataset_id, SEALED, detail, len(files))


def _claim(store: ObjectStore, claim_key: str, present: int, now: datetime) -> str:
    try:
        doc = json.loads(store.get(claim_key))
    except (ObjectNotFound, ValueError):
        doc = {}
    doc = doc if isinstance(doc, dict) else {}
    started = doc.get("started_at")
    since = f"started {_ago(now, datetime.fromisoformat(started))}" if isinstance(started, str) and _iso(
        started) else "started at an unknown time"
    total = doc.get("files")
    of = f" of {total}" if isinstance(total, int) else ""
    return (f"`dataset add` from {doc.get('host', '?')} {since}; {present}{of} files uploaded. Running, or "
            "interrupted: re-run the same command to resume, or remove _uploading.json to let the pipeline seal "
            "what is there")


def _refusal(store: ObjectStore, key: str) -> dict[str, Any] | None:
    try:
        doc = json.loads(store.get(key))
    except (ObjectNotFound, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _first_reason(refusal: dict[str, Any]) -> str:
    problems = refusal.get("problems") or []
    first = problems[0] if problems and isinstance(problems[0], dict) else {}
    text = f"{first.get('problem', refusal.get('message', 'refused'))}"
    more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
    return f"{text}{more}; fix: {first.get('fix', 'see the record')}"


def _at(refusal: dict[str, Any]) -> datetime:
    try:
        return datetime.fromisoformat(str(refusal.get("rejected_at")))
    except ValueError:
        return datetime.min.replace(tzinfo=timezone.utc)


def _iso(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _ago(now: datetime, then: datetime) -> str:
    if then.tzinfo is None:
        then = then.replace(tzinfo=now.tzinfo)
    seconds = max(0, int((now - then).total_seconds()))
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h ago"
