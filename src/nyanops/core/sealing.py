"""Drop images, get exactly one run: noticing uploads under ``datasets/<id>/`` and sealing a prefix once the
upload has settled.

Two steps, the same on AWS (the NoteDatasetUploads and SealDatasets Lambdas) and locally (``nyanops watch``):

``note_uploads``
    Gets object events (S3 sends one per object, in any order, at least once) and groups them by dataset:
    one registry update per dataset per batch, never work per image. A ``_dataset.json`` marks the dataset
    sealed. Any other object of a sealed dataset that is not exactly one the seal covers (same size and
    ETag) arrived after sealing: it is refused (``rejected/<key>.error.json`` and one notification naming the
    dataset) and nothing else changes.

``seal_due``
    Takes each dataset whose last upload was noticed at least ``quiet_seconds`` ago (a conditional claim:
    one sealer per dataset), lists the prefix, validates names and layout with StartPipeline's rules, hashes
    every object, checks nothing changed meanwhile (the listing, and no upload noticed since the claim), and
    writes ``_dataset.json`` with ``put_new`` (S3 ``If-None-Match: *``): exactly one seal even when two sealers
    or a tool race. The seal's arrival starts the run through StartPipeline, as a tool's seal does. A prefix
    that fails validation gets a refusal record and one notification per distinct listing, and is looked at
    again after the next upload's quiet period. A prefix holding a tool's claim (``_uploading.json``) is left
    to that tool.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, TypeVar

from nyanops.core import content_identity, layout
from nyanops.core import dataset as datasets
from nyanops.core.dataset_names import check_dataset_id, shown
from nyanops.core.dataset_registry import REFUSED, SEALED, UPLOADING, WAITING, DatasetRegistry
from nyanops.core.ports import Notifier, ObjectInfo, ObjectNotFound, ObjectStore
from nyanops.core.refusals import Refusal, refuse
from nyanops.core.rejection import Problem, UploadRejected
from nyanops.core.upload_events import ObjectEvent

T = TypeVar("T")
R = TypeVar("R")
# A sealer holds a dataset at most this long (the SealDatasets Lambda's timeout); one that died is replaced then.
DEFAULT_LEASE_SECONDS = 900.0
# Stop taking new datasets when less than this is left of the invocation.
TIME_MARGIN_SECONDS = 60.0
# What one SealDatasets invocation (15 minutes, 16 readers) can be trusted to read and hash; a larger prefix is
# refused with the fix to upload it with `nyanops dataset add --bucket` (which hashes on the user's machine)
# instead of being retried every minute without end. See docs/datasets.md ("How large").
MAX_SEAL_OBJECTS = 200_000
MAX_SEAL_BYTES = 50 * 1024**3

# Outcomes of seal_one
SEALED_NOW = "sealed"
ALREADY_SEALED = "already-sealed"
REFUSED_NOW = "refused"
LEFT_TO_TOOL = "uploading"
CHANGED = "changed"
BUSY = "busy"


def _serial_map(fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
    return map(fn, items)


@dataclass
class SealingDeps:
    store: ObjectStore
    registry: DatasetRegistry
    notifier: Notifier
    quiet_seconds: float
    clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)
    # How the sealer reads many objects: a thread pool's map on AWS, plain map in tests.
    parallel_map: Callable[[Callable[[Any], Any], Iterable[Any]], Iterable[Any]] = _serial_map
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    # Seconds left in this invocation (Lambda's context); None: no limit.
    time_left: Callable[[], float] | None = None
    new_owner: Callable[[], str] = lambda: uuid.uuid4().hex

    def now(self) -> float:
        return self.clock().timestamp()


@dataclass
class NoteResult:
    dataset_id: str
    state: str
    noted: int
    late_refused: list[str] = field(default_factory=list)


@dataclass
class SealResult:
    dataset_id: str
    outcome: str
    detail: str = ""
    marker: dict[str, Any] | None = None
    problems: list[Problem] = field(default_factory=list)


# -- noting uploads ----------------------------------------------------------------------------------------
def note_uploads(events: Iterable[ObjectEvent], deps: SealingDeps) -> list[NoteResult]:
    """Note a batch of object events: one registry update per dataset; late files refused."""
    by_dataset: dict[str, list[ObjectEvent]] = defaultdict(list)
    for event in events:
        dataset_id = layout.dataset_id_of(event.key)
        if event.bucket == deps.store.bucket and dataset_id is not None:
            by_dataset[dataset_id].append(event)
    return [_note_dataset(dataset_id, evs, deps) for dataset_id, evs in sorted(by_dataset.items())]


def _note_dataset(dataset_id: str, events: list[ObjectEvent], deps: SealingDeps) -> NoteResult:
    marker_key = layout.dataset_marker_key(dataset_id)
    if any(e.key == marker_key and not e.deleted for e in events):
        deps.registry.mark_sealed(dataset_id, deps.now())
    others = [e for e in events if e.key != marker_key]
    if not others:
        return NoteResult(dataset_id, SEALED, 0)
    state = deps.registry.note(dataset_id, len(others), deps.now())
    result = NoteResult(dataset_id, state, len(others))
    if state == SEALED:
        result.late_refused = _refuse_late_files(dataset_id, others, deps)
    return result


def _refuse_late_files(dataset_id: str, events: list[ObjectEvent], deps: SealingDeps) -> list[str]:
    marker = _read_marker(deps.store, dataset_id)
    if marker is None:
        return []  # a seal StartPipeline refuses anyway (format 1, hand-edited): no per-file verdicts on it
    prefix = layout.dataset_prefix(dataset_id)
    refused = []
    for event in events:
        rel = event.key[len(prefix) :]
        if event.deleted or rel.split("/", 1)[0] not in layout.SPLITS:
            continue  # a removal, a tool's claim, or a README beside the splits: not part of the dataset
        sealed = marker.files.get(rel)
        if sealed is not None and (event.size is None or event.size == sealed.size) and (
            event.etag is None or sealed.etag is None or event.etag.strip('"') == sealed.etag
        ):
            continue  # a late-delivered event of a file the seal covers
        message = (
            f"{event.key} arrived after datasets/{dataset_id} was sealed ({marker.sealed_at}, by "
            f"{marker.sealed_by.tool}). Datasets are immutable: the file is not part of the dataset and changed "
            "nothing, but runs naming the dataset are refused while it is there."
        )
        rejected = UploadRejected.one(
            event.key,
            f"arrived after datasets/{dataset_id} was sealed; datasets are immutable",
            f"remove it (on AWS its versions stay in the bucket), and upload the changed dataset to a new id, e.g. "
            f"datasets/{dataset_id}-v2/",
        )
        refusal = Refusal(
            key=event.key,
            version=event.version,
            rejected=rejected,
            subject=f"nyanops: file refused: datasets/{dataset_id} is sealed",
            message=f"{message}\n\n{rejected.message}",
        )
        refuse(deps.store, deps.notifier, refusal, deps.clock)
        refused.append(event.key)
    return refused


def _read_marker(store: ObjectStore, dataset_id: str) -> datasets.Marker | None:
    try:
        return datasets.parse_marker(dataset_id, store.get(layout.dataset_marker_key(dataset_id)))
    except (ObjectNotFound, UploadRejected):
        return None


# -- sealing -------------------------------------------------------------------------------------------------
def seal_due(deps: SealingDeps) -> list[SealResult]:
    """Seal (or refuse) every dataset that has been quiet for the quiet period."""
    results = []
    for dataset_id in deps.registry.due(deps.now() - deps.quiet_seconds):
        if deps.time_left is not None and deps.time_left() < TIME_MARGIN_SECONDS:
            break
        results.append(seal_one(dataset_id, deps))
    return results


def seal_one(dataset_id: str, deps: SealingDeps) -> SealResult:
    owner = deps.new_owner()
    now = deps.now()
    record = deps.registry.claim(dataset_id, owner, now, now + deps.lease_seconds, now - deps.quiet_seconds)
    if record is None:
        return SealResult(dataset_id, BUSY, "another sealer has it, or it is no longer quiet")
    try:
        return _seal_claimed(dataset_id, owner, record.last_upload_at, deps)
    except BaseException:
        deps.registry.release(dataset_id, owner, WAITING, "the sealer failed; it tries again", deps.now())
        raise


def _seal_claimed(dataset_id: str, owner: str, last_upload_at: float, deps: SealingDeps) -> SealResult:
    store, registry = deps.store, deps.registry
    if store.head(layout.dataset_marker_key(dataset_id)) is not None:
        registry.mark_sealed(dataset_id, deps.now())
        return SealResult(dataset_id, ALREADY_SEALED, "_dataset.json exists (written by a tool)")
    claim = store.head(layout.dataset_claim_key(dataset_id))
    if claim is not None:
        reason = _claim_reason(store, dataset_id, claim)
        registry.release(dataset_id, owner, UPLOADING, reason, deps.now())
        return SealResult(dataset_id, LEFT_TO_TOOL, reason)
    listing = _listing(store, dataset_id)
    files = datasets.files_from_listing(dataset_id, ((o.key, o.size, o.etag) for o in listing))
    try:
        check_dataset_id(dataset_id)
        _check_size(dataset_id, files)
        datasets.check_structure(dataset_id, files)
    except UploadRejected as rejected:
        _refuse_prefix(dataset_id, listing, rejected, deps)
        registry.release(dataset_id, owner, REFUSED, rejected.message, deps.now())
        return SealResult(dataset_id, REFUSED_NOW, rejected.message, problems=rejected.problems)
    hashed = list(deps.parallel_map(lambda f: _hashed(store, dataset_id, f), files))
    if _listing(store, dataset_id) != listing or not registry.still_quiet(dataset_id, owner, last_upload_at):
        registry.release(dataset_id, owner, WAITING, "objects changed while it was being sealed", deps.now())
        return SealResult(dataset_id, CHANGED, "objects changed while it was being sealed; it waits again")
    detail = f"{len(files)} files quiet for {deps.quiet_seconds:g} s after the last upload"
    beside = [shown(b)[1:-1] for b in datasets.beside_splits(dataset_id, (o.key for o in listing))]
    marker = datasets.build_marker(
        dataset_id, hashed, sealed_by=datasets.SealedBy(datasets.PIPELINE, detail), now=deps.clock(),
        not_copied=beside,
    )
    if not store.put_new(layout.dataset_marker_key(dataset_id), datasets.marker_bytes(marker)):
        registry.mark_sealed(dataset_id, deps.now())
        return SealResult(dataset_id, ALREADY_SEALED, "another writer sealed it first")
    registry.mark_sealed(dataset_id, deps.now())
    return SealResult(dataset_id, SEALED_NOW, detail, marker=marker)


def _check_size(dataset_id: str, files: list[datasets.DatasetFile]) -> None:
    total = sum(f.size for f in files)
    if len(files) > MAX_SEAL_OBJECTS or total > MAX_SEAL_BYTES:
        raise UploadRejected.one(
            "dataset",
            f"datasets/{dataset_id} has {len(files)} files, {total / 1024**3:.1f} GiB: more than the pipeline's sealer "
            f"reads in one go ({MAX_SEAL_OBJECTS} files, {MAX_SEAL_BYTES // 1024**3} GiB)",
            "upload it with `nyanops dataset add DIR --bucket B`, which hashes on your machine and seals it itself",
        )


def _listing(store: ObjectStore, dataset_id: str) -> list[ObjectInfo]:
    return sorted(
        (ObjectInfo(o.key, o.size, o.etag) for o in store.list(layout.dataset_prefix(dataset_id))),
        key=lambda o: o.key,
    )


def _hashed(store: ObjectStore, dataset_id: str, f: datasets.DatasetFile) -> datasets.DatasetFile:
    data = store.get(layout.dataset_prefix(dataset_id) + f.path)
    return datasets.DatasetFile(f.path, f.size, content_identity.file_hash(data), f.etag)


def _refuse_prefix(dataset_id: str, listing: list[ObjectInfo], rejected: UploadRejected, deps: SealingDeps) -> None:
    """The record sits where the seal would be refused (``rejected/datasets/<id>/_dataset.json.error.json``);
    its version is the listing, so the same prefix is notified once, a changed one again."""
    fingerprint = hashlib.sha256(
        "".join(f"{o.key}\0{o.size}\0{o.etag}\n" for o in listing).encode("utf-8", "surrogateescape")
    ).hexdigest()[:32]
    message = (
        f"datasets/{shown(dataset_id)[1:-1]} was not sealed: the upload has settled but it cannot be used as it is. "
        "Nothing was changed; fix it (upload or remove files under the same prefix) and it is checked again "
        f"once the upload has been quiet for {deps.quiet_seconds:g} s.\n\n{rejected.message}"
    )
    refusal = Refusal(
        key=layout.dataset_marker_key(dataset_id),
        version=f"listing-{fingerprint}",
        rejected=rejected,
        subject=f"nyanops: dataset refused: datasets/{dataset_id}",
        message=message,
    )
    refuse(deps.store, deps.notifier, refusal, deps.clock)


def _claim_reason(store: ObjectStore, dataset_id: str, claim: ObjectInfo) -> str:
    try:
        doc = json.loads(store.get(claim.key))
    except (ObjectNotFound, ValueError):
        doc = {}
    doc = doc if isinstance(doc, dict) else {}
    who = shown(str(doc.get("host", "?")))[1:-1]
    started = shown(str(doc.get("started_at", "?")))[1:-1]
    return (
        f"`nyanops dataset add` from {who} has claimed it since {started} (datasets/{dataset_id}/"
        f"{layout.DATASET_CLAIM}); re-run that command to finish, or remove the claim to let the pipeline seal "
        "what is there"
    )
