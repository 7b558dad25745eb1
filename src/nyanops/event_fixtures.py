"""What the example events in ``events/`` need to find in a bucket, and how to put it there.

The events describe an example stack: bucket ``nyanops-example-bucket``, a manifest ``manifests/epochs10.json``
naming dataset ``datasets/2026-11-28T064300Z`` (classes bengal and siamese), a pushed ml_code bundle, and for
RecordResults a run whose trial was registered and whose evaluation wrote ``evaluation.json``. For the two
dataset Lambdas: the images an SQS batch of upload events announces (dropped under
``datasets/2026-11-29T070000Z/``, not sealed), and for the sealer's schedule that dropped dataset waiting in
the dataset registry, its last upload noticed longer ago than the quiet period. Handed an event, ``needs``
lists the objects and records that event needs (derived from the event itself, so a new event file is
covered without a list to keep in step), each with how to check it and how to make it. The makers work
through the ports (an ``ObjectStore``, a ``DatasetRegistry`` and small callables), so ``nyanops invoke``
prepares a local root with them and the tests prepare moto the same way.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import struct
import tempfile
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nyanops.core import layout
from nyanops.core.dataset_registry import SEALED, WAITING, DatasetRegistry
from nyanops.core.evaluation_report import build_evaluation_report
from nyanops.core.experiments import ExperimentStore
from nyanops.core.ports import ObjectStore, ProcessingJobs
from nyanops.core.upload_events import ObjectEvent, UnsupportedEvent, object_events, uploads_from_event

EXAMPLE_BUCKET = "nyanops-example-bucket"
EXAMPLE_DATASET_ID = "2026-11-28T064300Z"
EXAMPLE_CLASSES = ("bengal", "siamese")
# The dataset events/dataset_uploads_sqs.json announces: images dropped without a seal, for the pipeline to seal.
EXAMPLE_DROPPED_ID = "2026-11-29T070000Z"
IMAGES_PER_CLASS = 2
COLOURS = ((200, 120, 40), (230, 220, 200), (90, 90, 90), (160, 60, 30))


@dataclass
class Need:
    """One thing an event needs: ``present()`` checks, ``make()`` creates it."""

    what: str
    present: Callable[[], bool]
    make: Callable[[], None]


@dataclass
class Ports:
    """Where to look and write: the bucket, the trial records, the dataset registry, and two actions of the
    pipeline."""

    store: ObjectStore
    experiments: ExperimentStore
    registry: DatasetRegistry
    register_trial: Callable[[dict[str, Any]], None]  # as RegisterTrial does: RecordResults in mode "started"
    push_code: Callable[[], None]  # push ml_code (as `nyanops code push`)
    quiet_seconds: float  # the sealer's quiet period (SealDatasets' QUIET_SECONDS; locally NYANOPS_QUIET_SECONDS)
    default_experiment: str = "cats"
    # RecordResults accepts only an evaluation.json its own processing job wrote (core/evaluation_source): where
    # the jobs are looked up, and how to leave the record of a finished evaluation job (job name, output S3
    # URI) as the job would. Locally the jobs are records under <root>/jobs; on AWS only a real job can make
    # one, so there both are None and the example's evaluation is refused as not the run's own.
    evaluation_jobs: ProcessingJobs | None = None
    record_evaluation_job: Callable[[str, str], None] | None = None


# -- the object events an event carries ---------------------------------------------------------------------
def _is_sqs_record(record: Any) -> bool:
    return isinstance(record, dict) and record.get("eventSource") == "aws:sqs" and isinstance(record.get("body"), str)


def object_events_in(event: Any) -> list[ObjectEvent]:
    """The S3 object events in ``event``: an EventBridge event from S3, or an SQS batch whose messages are such
    events (what NoteDatasetUploads gets); anything else carries none."""
    bodies = [event]
    records = event.get("Records") if isinstance(event, dict) else None
    for record in records if isinstance(records, list) else []:
        if _is_sqs_record(record):
            with contextlib.suppress(ValueError):
                bodies.append(json.loads(record["body"]))
    found: list[ObjectEvent] = []
    for body in bodies:
        with contextlib.suppress(UnsupportedEvent, KeyError, TypeError, AttributeError):
            found += object_events(body)
    return found


def announced_datasets(event: Any) -> dict[str, list[str]]:
    """The dataset files (``datasets/<id>/<split>/<class>/<file>``) the event announces as created, by dataset id;
    seals, claims and anything else are left out."""
    out: dict[str, list[str]] = {}
    for e in object_events_in(event):
        dataset_id = layout.dataset_id_of(e.key)
        if e.deleted or dataset_id is None or not layout.DATASET_ID_RE.fullmatch(dataset_id):
            continue
        parts = e.key[len(layout.dataset_prefix(dataset_id)) :].split("/")
        if len(parts) == 3 and parts[0] in layout.SPLITS and all(parts) and e.key not in out.get(dataset_id, []):
            out.setdefault(dataset_id, []).append(e.key)
    return out


def is_schedule(event: Any) -> bool:
    """An EventBridge schedule's event (what SealDatasets gets every minute)."""
    if not isinstance(event, dict):
        return False
    return event.get("source") == "aws.events" and event.get("detail-type") == "Scheduled Event"


# -- the bucket an event names ------------------------------------------------------------------------------
def event_buckets(event: Any) -> set[str]:
    """The bucket names an event refers to: its uploads' buckets (also those of the S3 events inside an SQS
    batch), and a RecordResults run's source bucket."""
    found: set[str] = {e.bucket for e in object_events_in(event)}
    with contextlib.suppress(UnsupportedEvent, KeyError, TypeError):
        found |= {u.bucket for u in uploads_from_event(event)}
    run = event.get("run") if isinstance(event, dict) else None
    if isinstance(run, dict) and isinstance(run.get("source"), dict) and run["source"].get("bucket"):
        found.add(str(run["source"]["bucket"]))
    return found


def map_bucket(event: Any, buckets: Iterable[str], target: str) -> Any:
    """A copy of ``event`` with every reference to ``buckets`` (the name itself, ``s3://name/...`` URIs and
    ``arn:aws:s3:::name`` ARNs) pointing at ``target`` instead, also inside the JSON bodies of SQS messages."""
    names = [b for b in buckets if b and b != target]

    def swap(value: Any) -> Any:
        if _is_sqs_record(value):
            with contextlib.suppress(ValueError):
                body = json.dumps(swap(json.loads(value["body"])), ensure_ascii=False)
                return {k: body if k == "body" else swap(v) for k, v in value.items()}
        if isinstance(value, dict):
            return {k: swap(v) for k, v in value.items()}
        if isinstance(value, list):
            return [swap(v) for v in value]
        if isinstance(value, str):
            for name in names:
                if value == name:
                    return target
                for prefix in (f"s3://{name}/", f"arn:aws:s3:::{name}"):
                    if value.startswith(prefix):
                        value = prefix.replace(name, target) + value[len(prefix) :]
            return value
        return value

    return swap(copy.deepcopy(event))


# -- what an event needs -------------------------------------------------------------------------------------
def needs(event: Any, ports: Ports) -> list[Need]:
    """Everything ``event`` needs to reach its intended outcome, in the order to make it."""
    out: list[Need] = []
    try:
        uploads = uploads_from_event(event)
    except (UnsupportedEvent, KeyError, TypeError):
        uploads = []
    for upload in uploads:
        classified = layout.classify_key(upload.key)
        if classified.kind is layout.KeyKind.MANIFEST:
            out.append(_object(ports, upload.key, lambda: example_manifest(ports.default_experiment), "a manifest"))
            out.append(_dataset(ports, _manifest_dataset(ports, upload.key)))
            out.append(_code(ports))
        elif (
            classified.kind is layout.KeyKind.DATASET_READY
            and classified.dataset_id
            and layout.DATASET_ID_RE.fullmatch(classified.dataset_id)
        ):  # an invalid id is refused without reading anything: it needs nothing
            out.append(_dataset(ports, classified.dataset_id))
            out.append(_code(ports))
    for dataset_id, keys in announced_datasets(event).items():
        out.append(_announced(ports, dataset_id, keys))
    if is_schedule(event):  # the sealer looks at the registry: the example is a dropped dataset, settled
        out.append(_dropped(ports, EXAMPLE_DROPPED_ID))
        out.append(_settled(ports, EXAMPLE_DROPPED_ID))
    run = event.get("run") if isinstance(event, dict) else None
    if isinstance(run, dict) and event.get("mode") == "succeeded":
        out.append(_trial(ports, run))
        key = _evaluation_key(run, ports.store.bucket)
        if key is not None:
            out.append(_object(ports, key, lambda: example_evaluation(run), "an evaluation.json"))
            job = _evaluation_job(ports, run)
            if job is not None:
                out.append(job)
    return _unique(out)


def _unique(items: list[Need]) -> list[Need]:
    by_what: dict[str, Need] = {}
    for need in items:
        by_what.setdefault(need.what, need)
    return list(by_what.values())


def _object(ports: Ports, key: str, body: Callable[[], bytes], what: str) -> Need:
    return Need(
        f"{key} ({what})",
        lambda: ports.store.head(key) is not None,
        lambda: ports.store.put(key, body()),
    )


def _manifest_dataset(ports: Ports, key: str) -> str:
    """The dataset a manifest names: from the manifest in the bucket, else the example's."""
    try:
        doc = json.loads(ports.store.get(key))
        named = str(doc.get("dataset", "")).strip("/")
        dataset_id = named.removeprefix(layout.DATASETS_PREFIX.rstrip("/")).strip("/")
        return dataset_id if layout.DATASET_ID_RE.fullmatch(dataset_id) else EXAMPLE_DATASET_ID
    except Exception:  # missing, not JSON, not an object: the example manifest will name the example dataset
        return EXAMPLE_DATASET_ID


def _dataset(ports: Ports, dataset_id: str) -> Need:
    def make() -> None:
        # The path `nyanops dataset add DIR --bucket B` takes, through the port: a claim, the files, then a
        # format 2 seal built by the core with the ETags the store gave each file.
        from nyanops.dataset_upload import upload_dataset

        with tempfile.TemporaryDirectory(prefix="nyanops-example-") as tmp:
            write_example_images(Path(tmp), EXAMPLE_CLASSES)
            upload_dataset(ports.store, Path(tmp), dataset_id, jobs=4, progress_out=io.StringIO())

    return Need(
        f"datasets/{dataset_id}/ (a sealed dataset of {len(EXAMPLE_CLASSES)} classes of generated images)",
        lambda: ports.store.head(layout.dataset_marker_key(dataset_id)) is not None,
        make,
    )


def _announced(ports: Ports, dataset_id: str, keys: list[str]) -> Need:
    """The files an upload event announces are in the bucket (small generated PNG images; no seal)."""
    classes = sorted({key.split("/")[-2] for key in keys})

    def make() -> None:
        for key in keys:
            if ports.store.head(key) is None:
                colour = COLOURS[classes.index(key.split("/")[-2]) % len(COLOURS)]
                ports.store.put(key, png(32, 32, colour), content_type="image/png")

    return Need(
        f"datasets/{dataset_id}/: the {len(keys)} files the event announces (generated images, not sealed)",
        lambda: all(ports.store.head(key) is not None for key in keys),
        make,
    )


def _dropped(ports: Ports, dataset_id: str) -> Need:
    """Images dropped under ``datasets/<id>/`` (any there will do; else generated ones), no seal yet."""
    prefix = layout.dataset_prefix(dataset_id)

    def make() -> None:
        for rel, body in example_images(EXAMPLE_CLASSES).items():
            ports.store.put(prefix + rel, body, content_type="image/png")

    return Need(
        f"datasets/{dataset_id}/ (images dropped without a seal: {len(EXAMPLE_CLASSES)} classes of generated "
        "images)",
        lambda: next(iter(ports.store.list(prefix)), None) is not None,
        make,
    )


def _settled(ports: Ports, dataset_id: str) -> Need:
    """The dataset waits in the registry and its last upload was noticed longer ago than the quiet period, as
    NoteDatasetUploads would have left it that long ago. A sealed one counts as there: nothing unseals a
    dataset, and the sealer rightly finds nothing due."""
    def present() -> bool:
        record = ports.registry.get(dataset_id)
        if record is None:
            return False
        settled = record.state == WAITING and record.last_upload_at <= time.time() - ports.quiet_seconds
        return settled or record.state == SEALED

    def make() -> None:
        files = sum(1 for _ in ports.store.list(layout.dataset_prefix(dataset_id)))
        ports.registry.note(dataset_id, files, time.time() - ports.quiet_seconds - 1)

    return Need(
        f"datasets/{dataset_id} in the dataset registry: waiting, its last upload noticed more than the quiet "
        f"period ({ports.quiet_seconds:g} s) ago",
        present,
        make,
    )


def _code(ports: Ports) -> Need:
    def present() -> bool:
        return any(layout.parse_code_bundle_key(o.key) for o in ports.store.list(layout.CODE_PREFIX))

    return Need("code/<sha256>/ (the ml_code bundle)", present, ports.push_code)


def _trial(ports: Ports, run: dict[str, Any]) -> Need:
    experiment, trial = str(run.get("experiment", "")), str(run.get("trial", ""))

    def present() -> bool:
        return any(t.trial == trial for t in ports.experiments.list_trials(experiment))

    return Need(f"trial {trial} of experiment {experiment} (registered, as RegisterTrial does)", present,
                lambda: ports.register_trial(run))


def _evaluation_job(ports: Ports, run: dict[str, Any]) -> Need | None:
    """The processing job that wrote the example evaluation.json (made after it, so the file's time lies
    within the job's run, as RecordResults checks)."""
    evaluation = run.get("evaluation") or {}
    name, output = str(evaluation.get("job_name") or ""), str(evaluation.get("output_s3_uri") or "")
    jobs, record = ports.evaluation_jobs, ports.record_evaluation_job
    if jobs is None or record is None or not name:
        return None
    return Need(f"processing job {name} (its record, as the finished evaluation job leaves it)",
                lambda: jobs.describe(name) is not None, lambda: record(name, output))


def _evaluation_key(run: dict[str, Any], bucket: str) -> str | None:
    uri = str((run.get("evaluation") or {}).get("output_s3_uri") or "")
    try:
        found_bucket, prefix = layout.parse_s3_uri(uri)
    except ValueError:
        return None
    return f"{prefix.rstrip('/')}/{layout.EVALUATION_FILE}" if found_bucket == bucket else None


# -- the example objects --------------------------------------------------------------------------------------
def example_manifest(experiment: str) -> bytes:
    doc = {
        "experiment": experiment,
        "dataset": f"datasets/{EXAMPLE_DATASET_ID}",
        "comment": "example manifest (made by nyanops invoke for an example event)",
        "hyperparameters": {"epochs": 2},
    }
    return (json.dumps(doc, indent=2) + "\n").encode()


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A solid-colour 8-bit RGB PNG (standard library only)."""
    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def example_images(classes: Iterable[str]) -> dict[str, bytes]:
    """Small solid-colour photos by ImageFolder path (``<split>/<class>/example-<i>.png``), ``IMAGES_PER_CLASS``
    per class and split."""
    names = list(classes)
    return {
        f"{split}/{name}/example-{i}.png": png(32, 32, COLOURS[(c + i) % len(COLOURS)])
        for split in layout.SPLITS
        for c, name in enumerate(names)
        for i in range(IMAGES_PER_CLASS)
    }


def write_example_images(folder: Path, classes: Iterable[str]) -> None:
    """``example_images`` written as an ImageFolder tree under ``folder``."""
    for rel, body in example_images(classes).items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(body)


def example_evaluation(run: dict[str, Any]) -> bytes:
    """An evaluation.json (schema v1) for the run's classes and test counts, one test image misclassified."""
    dataset = run.get("dataset") or {}
    classes = [str(c) for c in dataset.get("classes") or EXAMPLE_CLASSES]
    test_counts = (dataset.get("counts") or {}).get("test") or {}
    support = [max(1, int(test_counts.get(c, IMAGES_PER_CLASS))) for c in classes]
    n = len(classes)
    matrix = [[support[i] if i == j else 0 for j in range(n)] for i in range(n)]
    missed = []
    if n > 1 and support[0] > 1:
        matrix[0][0] -= 1
        matrix[0][1] += 1
        missed.append({"path": f"{classes[0]}/example-0.png", "true": classes[0], "predicted": classes[1],
                       "confidence": 0.62})
    per_class = {}
    for i, c in enumerate(classes):
        tp = matrix[i][i]
        predicted = sum(matrix[r][i] for r in range(n))
        precision = tp / predicted if predicted else 0.0
        recall = tp / support[i]
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[c] = {"precision": precision, "recall": recall, "f1": f1, "support": support[i]}
    total = sum(support)
    metrics = {
        "accuracy": sum(matrix[i][i] for i in range(n)) / total,
        "macro_precision": sum(v["precision"] for v in per_class.values()) / n,
        "macro_recall": sum(v["recall"] for v in per_class.values()) / n,
        "macro_f1": sum(v["f1"] for v in per_class.values()) / n,
        "weighted_f1": sum(v["f1"] * v["support"] for v in per_class.values()) / total,
    }
    history = [{"epoch": e, "train_loss": 1.0 / e, "train_acc": 0.5 + 0.2 * e, "val_loss": 1.1 / e,
                "val_acc": 0.45 + 0.2 * e, "seconds": 1.0} for e in (1, 2)]
    doc = build_evaluation_report(
        class_names=classes,
        metrics=metrics,
        per_class=per_class,
        confusion_matrix=matrix,
        misclassified=missed,
        model_meta={"arch": "efficientnet_lite2", "best_epoch": 2, "history": history,
                    "hyperparameters": dict(run.get("hyperparameters") or {}),
                    "dataset_hash": dataset.get("content_hash")},
        job={"execution": str(run.get("execution_name", "")),
             "processing_job": str((run.get("evaluation") or {}).get("job_name", ""))},
    )
    return json.dumps(doc, indent=2).encode()
