"""What the example events in ``events/`` need to find in a bucket, and how to put it there.

The events describe an example stack: bucket ``nyanops-example-bucket``, a manifest ``manifests/epochs10.json``
naming dataset ``datasets/2026-11-28T064300Z`` (classes bengal and siamese), a pushed ml_code bundle, and for
RecordResults a run whose trial was registered and whose evaluation wrote ``evaluation.json``. Handed an
event, ``needs`` lists the objects and records that event needs (derived from the event itself, so a new
event file is covered without a list to keep in step), each with how to check it and how to make it. The
makers work through the ports (an ``ObjectStore`` and small callables), so ``nyanops invoke`` prepares a
local root with them and the tests prepare moto the same way.
"""

from __future__ import annotations

import contextlib
import copy
import json
import struct
import tempfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nyanops.core import layout
from nyanops.core.evaluation_report import build_evaluation_report
from nyanops.core.experiments import ExperimentStore
from nyanops.core.ports import ObjectStore
from nyanops.core.upload_events import UnsupportedEvent, uploads_from_event

EXAMPLE_BUCKET = "nyanops-example-bucket"
EXAMPLE_DATASET_ID = "2026-11-28T064300Z"
EXAMPLE_CLASSES = ("bengal", "siamese")
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
    """Where to look and write: the bucket, the trial records, and two actions of the pipeline."""

    store: ObjectStore
    experiments: ExperimentStore
    register_trial: Callable[[dict[str, Any]], None]  # as RegisterTrial does: RecordResults in mode "started"
    push_code: Callable[[], None]  # push ml_code (as `nyanops code push`)
    default_experiment: str = "cats"


# -- the bucket an event names ------------------------------------------------------------------------------
def event_buckets(event: Any) -> set[str]:
    """The bucket names an event refers to: its uploads' buckets, and a RecordResults run's source bucket."""
    found: set[str] = set()
    with contextlib.suppress(UnsupportedEvent, KeyError, TypeError):
        found |= {u.bucket for u in uploads_from_event(event)}
    run = event.get("run") if isinstance(event, dict) else None
    if isinstance(run, dict) and isinstance(run.get("source"), dict) and run["source"].get("bucket"):
        found.add(str(run["source"]["bucket"]))
    return found


def map_bucket(event: Any, buckets: Iterable[str], target: str) -> Any:
    """A copy of ``event`` with every reference to ``buckets`` (the name itself, ``s3://name/...`` URIs and
    ``arn:aws:s3:::name`` ARNs) pointing at ``target`` instead."""
    names = [b for b in buckets if b and b != target]

    def swap(value: Any) -> Any:
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
            and layout.DATASET_ID_RE.match(classified.dataset_id)
        ):  # an invalid id is refused without reading anything: it needs nothing
            out.append(_dataset(ports, classified.dataset_id))
            out.append(_code(ports))
    run = event.get("run") if isinstance(event, dict) else None
    if isinstance(run, dict) and event.get("mode") == "succeeded":
        out.append(_trial(ports, run))
        key = _evaluation_key(run, ports.store.bucket)
        if key is not None:
            out.append(_object(ports, key, lambda: example_evaluation(run), "an evaluation.json"))
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
        return dataset_id if layout.DATASET_ID_RE.match(dataset_id) else EXAMPLE_DATASET_ID
    except Exception:  # missing, not JSON, not an object: the example manifest will name the example dataset
        return EXAMPLE_DATASET_ID


def _dataset(ports: Ports, dataset_id: str) -> Need:
    def make() -> None:
        from nyanops.local.datasets import add_dataset  # the same path `nyanops dataset add` takes

        with tempfile.TemporaryDirectory(prefix="nyanops-example-") as tmp:
            write_example_images(Path(tmp), EXAMPLE_CLASSES)
            add_dataset(ports.store, Path(tmp), dataset_id)

    return Need(
        f"datasets/{dataset_id}/ (a dataset of {len(EXAMPLE_CLASSES)} classes of generated images)",
        lambda: ports.store.head(layout.dataset_marker_key(dataset_id)) is not None,
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


def write_example_images(folder: Path, classes: Iterable[str]) -> None:
    """An ImageFolder tree of small solid-colour photos: train/val/test, ``IMAGES_PER_CLASS`` per class."""
    for split in layout.SPLITS:
        for c, name in enumerate(classes):
            target = folder / split / name
            target.mkdir(parents=True, exist_ok=True)
            for i in range(IMAGES_PER_CLASS):
                colour = COLOURS[(c + i) % len(COLOURS)]
                (target / f"example-{i}.png").write_bytes(png(32, 32, colour))


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
    )
    return json.dumps(doc, indent=2).encode()
