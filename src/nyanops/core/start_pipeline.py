"""StartPipeline's logic: turn one upload into exactly one started run, or a clear refusal.

For ``manifests/*.json``: parse and validate the manifest, check the dataset it names is complete
and consistent, resolve the code bundle, build the execution input, start the execution under a
name derived from the upload (a duplicated event is a no-op). For ``datasets/<id>/_dataset.json``:
the same with the default manifest. A refused upload gets ``rejected/<key>.error.json`` and a
notification; the upload itself is never modified or deleted.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import Any

from nyanops.core import dataset as datasets
from nyanops.core import layout
from nyanops.core.execution_input import RunRequest, build_execution_input, run_execution_name
from nyanops.core.manifest import Manifest, parse_manifest, validate_manifest
from nyanops.core.ports import ExecutionStarter, Notifier, ObjectNotFound, ObjectStore
from nyanops.core.rejection import Problem, UploadRejected, rejection_record
from nyanops.core.settings import PipelineSettings
from nyanops.core.upload_events import Upload


class Outcome(str, Enum):
    STARTED = "started"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"
    IGNORED = "ignored"


@dataclass
class UploadResult:
    outcome: Outcome
    key: str
    execution_name: str | None = None
    problems: list[Problem] = field(default_factory=list)
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome.value,
            "key": self.key,
            "execution_name": self.execution_name,
            "problems": [p.__dict__ for p in self.problems],
            "reason": self.reason,
        }


@dataclass
class StartPipelineDeps:
    store: ObjectStore
    starter: ExecutionStarter
    notifier: Notifier
    settings: PipelineSettings
    clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)


def handle_upload(upload: Upload, deps: StartPipelineDeps) -> UploadResult:
    """Decide what one upload means and act on it."""
    classified = layout.classify_key(upload.key)
    if upload.bucket != deps.settings.bucket:
        return UploadResult(Outcome.IGNORED, upload.key, reason=f"bucket {upload.bucket} is not this pipeline's")
    if classified.kind is layout.KeyKind.IGNORED:
        return UploadResult(Outcome.IGNORED, upload.key, reason="neither a manifest nor a dataset marker")
    try:
        request = _run_request(upload, classified, deps)
    except _Vanished as gone:
        return UploadResult(Outcome.IGNORED, upload.key, reason=str(gone))
    except UploadRejected as rejected:
        _reject(upload, rejected, deps)
        return UploadResult(Outcome.REJECTED, upload.key, problems=rejected.problems, reason=rejected.message)
    name = run_execution_name(request)
    started = deps.starter.start(name, build_execution_input(request, deps.settings))
    outcome = Outcome.STARTED if started.started else Outcome.DUPLICATE
    return UploadResult(outcome, upload.key, execution_name=name)


class _Vanished(Exception):
    """The uploaded object (that version) is gone: nothing to run, nothing to refuse."""


def _run_request(upload: Upload, classified: layout.ClassifiedKey, deps: StartPipelineDeps) -> RunRequest:
    store = deps.store
    if classified.kind is layout.KeyKind.MANIFEST:
        try:
            raw = store.get(upload.key, upload.version_id)
        except ObjectNotFound:
            raise _Vanished(f"{upload.key} no longer exists") from None
        manifest = parse_manifest(raw)
        kind = "manifest"
    else:
        assert classified.dataset_id is not None
        if not layout.is_dataset_id(classified.dataset_id):
            raise UploadRejected.one(
                "dataset", f"invalid dataset id {classified.dataset_id!r}", "use letters, digits, '.', '_' and '-'"
            )
        manifest = default_manifest(classified.dataset_id, deps.settings)
        kind = "dataset"
    summary = check_dataset(store, manifest.dataset_id, marker_version=upload.version_id if kind == "dataset" else None)
    num_classes = manifest.hyperparameters.num_classes
    if num_classes is not None and num_classes != len(summary.classes):
        raise UploadRejected.one(
            "hyperparameters.num-classes",
            f"is {num_classes} but dataset {summary.dataset_id} has {len(summary.classes)} classes "
            f"({', '.join(summary.classes)})",
            f"set num-classes to {len(summary.classes)} or leave it out (it is taken from the dataset)",
        )
    code_hash = resolve_code(store, manifest.code_hash)
    return RunRequest(kind=kind, manifest=manifest, dataset=summary, code_hash=code_hash, upload=upload)


def default_manifest(dataset_id: str, settings: PipelineSettings) -> Manifest:
    """The run a completed dataset starts: the default experiment, default hyperparameters."""
    return validate_manifest(
        {
            "experiment": settings.default_experiment,
            "dataset": layout.dataset_prefix(dataset_id).rstrip("/"),
            "comment": f"new dataset {dataset_id}",
        }
    )


def check_dataset(store: ObjectStore, dataset_id: str, marker_version: str | None = None) -> datasets.DatasetSummary:
    """The dataset must exist, be complete (marker present and matching) and be consistent."""
    marker_key = layout.dataset_marker_key(dataset_id)
    try:
        raw = store.get(marker_key, marker_version)
    except ObjectNotFound:
        if marker_version is not None:
            raise _Vanished(f"{marker_key} no longer exists") from None
        has_objects = next(iter(store.list(layout.dataset_prefix(dataset_id))), None) is not None
        problem = (
            "is still uploading or incomplete: no _dataset.json yet" if has_objects else "does not exist in this bucket"
        )
        raise UploadRejected.one(
            "dataset",
            f"datasets/{dataset_id} {problem}",
            "upload the dataset with `nyanops dataset add` (it writes _dataset.json last) and name it here",
        ) from None
    marker = datasets.parse_marker(dataset_id, raw)
    listing = ((o.key, o.size) for o in store.list(layout.dataset_prefix(dataset_id)))
    return datasets.validate_dataset(dataset_id, datasets.files_from_listing(dataset_id, listing), marker)


def resolve_code(store: ObjectStore, code_hash: str | None) -> str:
    """The manifest's code bundle, or the most recently pushed one; it must exist in ``code/``."""
    fix = "push ml_code with `nyanops code push` (it uploads code/<hash>/) and name it, or leave `code` out"
    if code_hash is not None:
        if store.head(layout.code_bundle_key(code_hash)) is None:
            raise UploadRejected.one("code", f"code/{code_hash} does not exist in this bucket", fix)
        return code_hash
    newest: tuple[datetime, str] | None = None
    for obj in store.list(layout.CODE_PREFIX):
        found = layout.parse_code_bundle_key(obj.key)
        if found and obj.last_modified is not None and (newest is None or obj.last_modified > newest[0]):
            newest = (obj.last_modified, found)
    if newest is None:
        raise UploadRejected.one("code", "no ml_code bundle has been pushed to this bucket yet", fix)
    return newest[1]


def _reject(upload: Upload, rejected: UploadRejected, deps: StartPipelineDeps) -> None:
    """Write the record, notify, then mark the record notified. A redelivered event of the same upload
    version finds it notified and does nothing more (one record, one notification); one whose earlier
    delivery failed to notify (the handler raised, so the event is retried) notifies now."""
    key = layout.rejection_key(upload.key)
    if upload.version is not None and _already_notified(deps.store, key, upload.version):
        return
    record = {**rejection_record(upload.key, rejected, deps.clock()), "version": upload.version, "notified": False}
    deps.store.put(key, json.dumps(record, indent=2, ensure_ascii=False).encode())
    deps.notifier.publish(f"nyanops: upload refused: {upload.key}", f"{upload.key} was refused.\n\n{rejected.message}")
    record["notified"] = True
    deps.store.put(key, json.dumps(record, indent=2, ensure_ascii=False).encode())


def _already_notified(store: ObjectStore, key: str, version: str) -> bool:
    try:
        previous = json.loads(store.get(key))
    except (ObjectNotFound, ValueError):
        return False
    return isinstance(previous, dict) and previous.get("version") == version and previous.get("notified") is True
