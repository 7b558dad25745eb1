"""StartPipeline's logic: turn one upload into exactly one started run, or a clear refusal.

For ``manifests/*.json``: parse and validate the manifest, check the dataset it names is complete
and consistent, resolve the code bundle, build the execution input, start the execution under a
name derived from the upload (a duplicated event is a no-op). For ``datasets/<id>/_dataset.json`` (the
seal, written by ``nyanops dataset add`` or by the pipeline's sealer): the same with the default manifest,
unless the seal says ``"start_run": false``. Either way the dataset must hold exactly the files its seal
covers (names, sizes, ETags). A refused upload gets ``rejected/<key>.error.json`` and a notification; the
upload itself is never modified or deleted.

What would break later is refused now: a manifest larger than ``limits.MANIFEST_MAX_BYTES`` (judged from
the event's size or a HEAD, before a byte is read, so a 600 MB upload cannot exhaust the function's
memory), a dataset of more than ``limits.MAX_CLASSES`` classes, and a run whose input would not fit Step
Functions' payload limit with room for its results.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import Any

from nyanops.core import dataset as datasets
from nyanops.core import layout, limits
from nyanops.core.dataset_names import check_dataset_id
from nyanops.core.execution_input import RunRequest, build_execution_input, run_execution_name
from nyanops.core.manifest import (
    Manifest,
    check_manifest_size,
    parse_manifest,
    trial_hyperparameters,
    validate_manifest,
)
from nyanops.core.ports import ExecutionStarter, Notifier, ObjectNotFound, ObjectStore
from nyanops.core.refusals import Refusal, refuse
from nyanops.core.rejection import Problem, UploadRejected
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
        execution_input = build_execution_input(request, deps.settings)
        check_execution_input(execution_input, request)
    except _Vanished as gone:
        return UploadResult(Outcome.IGNORED, upload.key, reason=str(gone))
    except _NoRun as no_run:
        return UploadResult(Outcome.IGNORED, upload.key, reason=str(no_run))
    except UploadRejected as rejected:
        _reject(upload, rejected, deps)
        return UploadResult(Outcome.REJECTED, upload.key, problems=rejected.problems, reason=rejected.message)
    name = run_execution_name(request)
    started = deps.starter.start(name, execution_input)
    outcome = Outcome.STARTED if started.started else Outcome.DUPLICATE
    return UploadResult(outcome, upload.key, execution_name=name)


class _Vanished(Exception):
    """The uploaded object (that version) is gone: nothing to run, nothing to refuse."""


class _NoRun(Exception):
    """A valid seal that asks for no run (``"start_run": false``, from ``dataset add --no-run``)."""


def _run_request(upload: Upload, classified: layout.ClassifiedKey, deps: StartPipelineDeps) -> RunRequest:
    store = deps.store
    if classified.kind is layout.KeyKind.MANIFEST:
        check_manifest_size(upload_size(store, upload))
        try:
            raw = store.get(upload.key, upload.version_id)
        except ObjectNotFound:
            raise _Vanished(f"{upload.key} no longer exists") from None
        manifest = parse_manifest(raw)
        kind = "manifest"
    else:
        assert classified.dataset_id is not None
        check_dataset_id(classified.dataset_id)
        manifest = default_manifest(classified.dataset_id, deps.settings)
        kind = "dataset"
    summary = check_dataset(store, manifest.dataset_id, marker_version=upload.version_id if kind == "dataset" else None)
    check_class_count(summary)
    if kind == "dataset" and not summary.start_run:
        raise _NoRun(
            f"datasets/{summary.dataset_id} is sealed with start_run false (dataset add --no-run): "
            f'runs start from manifests naming "datasets/{summary.dataset_id}"'
        )
    sweep = manifest.sweep if isinstance(manifest.sweep, (dict, list)) else {}
    in_sweep = "num-classes" in sweep if isinstance(sweep, dict) else any("num-classes" in t for t in sweep)
    wrong = [
        t["num-classes"]
        for t in trial_hyperparameters(manifest)
        if t.get("num-classes") not in (None, len(summary.classes))
    ]
    if wrong:
        num_classes = wrong[0]
        raise UploadRejected.one(
            "sweep.num-classes" if in_sweep else "hyperparameters.num-classes",
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
    """The dataset must exist, be sealed, hold exactly the sealed files and have valid names and layout."""
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
            "upload the dataset with `nyanops dataset add` (it writes _dataset.json last) and name it here; "
            "images uploaded any other way are sealed by the pipeline once the upload has been quiet for a while "
            "(`nyanops datasets` shows each dataset's state)",
        ) from None
    marker = datasets.parse_marker(dataset_id, raw)
    listing = ((o.key, o.size, o.etag) for o in store.list(layout.dataset_prefix(dataset_id)))
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
    """Record and notify once per upload version (``core/refusals``): a redelivered event of the same upload
    version, even one handled concurrently, finds its record and sends nothing more."""
    refusal = Refusal(
        key=upload.key,
        version=upload.version,
        sequencer=upload.sequencer,
        rejected=rejected,
        subject=f"nyanops: upload refused: {upload.key}",
        message=f"{upload.key} was refused.\n\n{rejected.message}",
    )
    refuse(deps.store, deps.notifier, refusal, deps.clock)


def upload_size(store: ObjectStore, upload: Upload) -> int | None:
    """The uploaded version's size: from the event, else from a HEAD of that version (never by reading it)."""
    if upload.size is not None:
        return int(upload.size)
    info = store.head(upload.key)
    if info is None or (upload.version_id is not None and info.version_id not in (None, upload.version_id)):
        return None
    return info.size


def check_class_count(summary: datasets.DatasetSummary) -> None:
    if len(summary.classes) > limits.MAX_CLASSES:
        raise UploadRejected.one(
            "dataset",
            f"datasets/{summary.dataset_id} has {len(summary.classes)} classes, more than the {limits.MAX_CLASSES} "
            "the pipeline supports",
            f"split the classes over several datasets (and experiments) of at most {limits.MAX_CLASSES} classes",
        )


def check_execution_input(execution_input: dict[str, Any], request: RunRequest) -> None:
    """The run's state must fit Step Functions' 256 KiB payload limit in every state, with room for what the
    run adds (results, an error and its cause); past it the execution would end in States.DataLimitExceeded,
    which no Catch can handle, leaving the trial unrecorded."""
    size = limits.utf8_len(json.dumps(execution_input))
    if size > limits.EXECUTION_INPUT_MAX_BYTES:
        longest = max((len(c) for c in request.dataset.classes), default=0)
        trials = len(execution_input.get("trials") or ())
        if trials > 1:
            raise UploadRejected.one(
                "sweep",
                f"the run's input would be {size} bytes for {trials} trials, more than the "
                f"{limits.EXECUTION_INPUT_MAX_BYTES} bytes a Step Functions execution can carry with its results "
                f"({len(request.dataset.classes)} classes, names of up to {longest} characters)",
                "sweep fewer values (or split the sweep over several manifests)",
            )
        raise UploadRejected.one(
            "dataset",
            f"the run's input would be {size} bytes, more than the {limits.EXECUTION_INPUT_MAX_BYTES} bytes a Step "
            f"Functions execution can carry with its results ({len(request.dataset.classes)} classes, names of up "
            f"to {longest} characters)",
            "use shorter class folder names or fewer classes per dataset",
        )
