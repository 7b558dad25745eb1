"""Datasets: the ``_dataset.json`` seal and the checks that a dataset is complete, unchanged and usable.

A dataset is ``datasets/<id>/{train,val,test}/<class>/<image>`` plus ``_dataset.json``, its seal, written
last: by ``nyanops dataset add`` or by the pipeline's sealer once an upload has settled. The seal (format 2)
records the classes, per-split counts, the content identity (``core/content_identity``: one hash per
split and their combination) and every file it covers with its size, sha256 and ETag. A dataset is
*usable* when its names and layout are right and the bucket holds exactly the sealed files, unchanged.
These checks work on a listing (key, size, ETag), so StartPipeline never downloads images.

Format 1 seals (written by earlier versions) carry one hash with no per-file record: they cannot prove
which files a trial learns from, so they are refused with a fix (add the folder again under a new id).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from nyanops.core import content_identity, layout
from nyanops.core.dataset_names import check_dataset_id, name_problems, shown
from nyanops.core.rejection import Problem, UploadRejected

MARKER_FORMAT = 2
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
MAX_REPORTED = 5
TOOL = "nyanops dataset add"
PIPELINE = "pipeline"
HEX64 = re.compile(r"[0-9a-f]{64}")
MARKER_FIX = (
    "write _dataset.json last with `nyanops dataset add` (see docs/datasets.md for its format), or upload only "
    "the images and let the pipeline seal them"
)


@dataclass(frozen=True)
class DatasetFile:
    """One object of a dataset, ``path`` relative to ``datasets/<id>/`` (e.g. ``train/bengal/a.jpg``)."""

    path: str
    size: int
    sha256: str | None = None
    etag: str | None = None


@dataclass(frozen=True)
class SealedBy:
    tool: str  # TOOL or PIPELINE
    detail: str = ""


@dataclass(frozen=True)
class Marker:
    """A parsed, self-consistent ``_dataset.json`` (format 2)."""

    dataset_id: str
    classes: tuple[str, ...]
    counts: dict[str, dict[str, int]]
    split_hashes: dict[str, str]
    content_hash: str
    files: dict[str, DatasetFile]
    sealed_by: SealedBy
    sealed_at: str
    start_run: bool = True


@dataclass(frozen=True)
class DatasetSummary:
    dataset_id: str
    classes: tuple[str, ...]
    counts: dict[str, dict[str, int]]
    content_hash: str
    split_hashes: dict[str, str] = field(default_factory=dict)
    start_run: bool = True

    @property
    def num_images(self) -> int:
        return sum(sum(per_class.values()) for per_class in self.counts.values())


def is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def identity(files: Iterable[DatasetFile]) -> tuple[dict[str, str], str]:
    """The split hashes and the content hash of ``files`` (each with its sha256): THE identity a seal records
    and the jobs recompute (``content_identity``: ``<class>/<file>`` relative to its split)."""
    per_split: dict[str, list[tuple[str, str]]] = {split: [] for split in layout.SPLITS}
    for f in files:
        if f.sha256 is None:
            raise ValueError(f"{f.path}: no sha256 to hash")
        split, _, rel = f.path.partition("/")
        per_split[split].append((rel, f.sha256))
    split_hashes = {split: content_identity.split_hash(entries) for split, entries in per_split.items()}
    return split_hashes, content_identity.combined_hash(split_hashes)


def count_images(files: Iterable[DatasetFile]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {split: {} for split in layout.SPLITS}
    for f in files:
        split, cls, _ = f.path.split("/", 2)
        counts[split][cls] = counts[split].get(cls, 0) + 1
    return {split: dict(sorted(per.items())) for split, per in counts.items()}


def check_structure(dataset_id: str, files: list[DatasetFile]) -> dict[str, dict[str, int]]:
    """Check the names and layout of a dataset's files; return per-split, per-class counts.

    Refuses (all problems at once): names the rules of ``dataset_names`` refuse, files outside
    ``<split>/<class>/<file>``, non-image files, zero-byte files, a missing split, class sets that differ
    between splits, fewer than two classes.
    """
    problems, bad_names = name_problems(dataset_id, (f.path for f in files))
    misplaced, non_images, empty = [], [], []
    good: list[DatasetFile] = []
    for f in files:
        parts = f.path.split("/")
        if f.path in bad_names:
            continue
        if len(parts) != 3 or parts[0] not in layout.SPLITS or not parts[1] or not parts[2]:
            misplaced.append(f.path)
        elif not is_image_name(parts[2]):
            non_images.append(f.path)
        elif f.size == 0:
            empty.append(f.path)
        else:
            good.append(f)
    prefix = layout.dataset_prefix(dataset_id)
    if misplaced:
        problems.append(
            Problem(
                "dataset",
                f"files outside {{train,val,test}}/<class>/<image>: {_few(prefix, misplaced)}",
                "put every image in datasets/<id>/<split>/<class>/ (ImageFolder layout)",
            )
        )
    if non_images:
        problems.append(
            Problem(
                "dataset",
                f"non-image files: {_few(prefix, non_images)}",
                f"keep only images ({', '.join(IMAGE_EXTENSIONS)}) in the dataset; "
                "upload the dataset again under a new id",
            )
        )
    if empty:
        problems.append(
            Problem(
                "dataset",
                f"zero-byte images: {_few(prefix, empty)}",
                "re-upload those images (the upload was probably interrupted) under a new dataset id",
            )
        )
    counts = count_images(good)
    class_sets = {split: set(per) for split, per in counts.items()}
    for split in layout.SPLITS:
        if not class_sets[split]:
            problems.append(
                Problem("dataset", f"the {split} split has no images", f"add {prefix}{split}/<class>/<image> files")
            )
    present = [s for s in layout.SPLITS if class_sets[s]]
    if present:
        union = set().union(*(class_sets[s] for s in present))
        for split in present:
            missing = sorted(union - class_sets[split])
            if missing:
                problems.append(
                    Problem(
                        "dataset",
                        f"the {split} split lacks classes {', '.join(shown(m)[1:-1] for m in missing)} that other "
                        "splits have",
                        "use the same class folders in train, val and test, each with at least one image",
                    )
                )
        if len(union) < 2 and not problems:
            problems.append(Problem("dataset", "only one class", "a classifier needs at least two class folders"))
    if problems:
        raise UploadRejected(problems)
    return counts


def build_marker(
    dataset_id: str,
    files: list[DatasetFile],
    *,
    sealed_by: SealedBy,
    now: datetime | None = None,
    start_run: bool = True,
    not_copied: list[str] | None = None,
) -> dict[str, Any]:
    """The ``_dataset.json`` body (format 2) sealing ``files``: every file with its size and sha256 (and its
    ETag where the writer knows it)."""
    check_dataset_id(dataset_id)
    counts = check_structure(dataset_id, files)
    split_hashes, combined = identity(files)
    marker: dict[str, Any] = {
        "format": MARKER_FORMAT,
        "dataset_id": dataset_id,
        "sealed_at": (now or datetime.now(timezone.utc)).isoformat(timespec="seconds"),
        "sealed_by": {"tool": sealed_by.tool, "detail": sealed_by.detail},
        "classes": sorted(counts["train"]),
        "counts": counts,
        "num_images": len(files),
        "split_hashes": split_hashes,
        "content_hash": combined,
        "files": {
            f.path: {"size": f.size, "sha256": f.sha256, "etag": f.etag} for f in sorted(files, key=lambda f: f.path)
        },
        "start_run": start_run,
    }
    if not_copied:
        marker["not_copied"] = list(not_copied)
    return marker


def marker_bytes(marker: dict[str, Any]) -> bytes:
    return (json.dumps(marker, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def parse_marker(dataset_id: str, raw: bytes) -> Marker:
    """Decode ``_dataset.json``; refuse one that is not the documented, self-consistent format 2."""
    field_name = layout.dataset_marker_key(dataset_id)

    def refuse(problem: str, fix: str = MARKER_FIX) -> UploadRejected:
        return UploadRejected.one(field_name, problem, fix)

    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise refuse(f"is not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise refuse("must be a JSON object")
    if doc.get("format") == 1:
        raise refuse(
            "is format 1 (written by an earlier nyanops): it records no per-file identity, so it cannot prove "
            "which files a trial learns from",
            "add the folder again as a new dataset with `nyanops dataset add DIR --name NEW-ID` (or upload the "
            "images under a new id and let the pipeline seal them), and name the new id",
        )
    missing = [
        name
        for name, kind in (
            ("format", int), ("dataset_id", str), ("classes", list), ("counts", dict), ("split_hashes", dict),
            ("content_hash", str), ("files", dict), ("sealed_by", dict),
        )
        if not isinstance(doc.get(name), kind) or isinstance(doc.get(name), bool)
    ]
    if missing or doc["format"] != MARKER_FORMAT:
        raise refuse(f"lacks format={MARKER_FORMAT} or has wrong types for: {', '.join(missing) or 'format'}")
    if doc["dataset_id"] != dataset_id:
        raise refuse(f"names dataset {shown(doc['dataset_id'])} but is the seal of datasets/{dataset_id}")
    start_run = doc.get("start_run", True)
    if not isinstance(start_run, bool):
        raise refuse("start_run must be true or false")
    files: dict[str, DatasetFile] = {}
    for path, entry in doc["files"].items():
        ok = (
            isinstance(entry, dict)
            and isinstance(entry.get("size"), int)
            and not isinstance(entry.get("size"), bool)
            and entry["size"] >= 0
            and isinstance(entry.get("sha256"), str)
            and HEX64.fullmatch(entry["sha256"]) is not None
            and (entry.get("etag") is None or isinstance(entry.get("etag"), str))
        )
        if not ok:
            raise refuse(f"files[{shown(path)}] needs size (a whole number), sha256 (64 hex digits) and etag")
        files[path] = DatasetFile(path, entry["size"], entry["sha256"], entry.get("etag"))
    sealed_by = doc["sealed_by"]
    if not isinstance(sealed_by.get("tool"), str):
        raise refuse("sealed_by.tool must say who sealed the dataset")
    # Self-consistency: the numbers are what the files say (a hand-edited seal cannot claim another identity).
    try:
        counts = count_images(files.values())
        split_hashes, combined = identity(files.values())
    except (ValueError, KeyError):
        raise refuse("lists files outside {train,val,test}/<class>/<image>") from None
    inconsistent = [
        name
        for name, ok in (
            ("counts", doc["counts"] == counts),
            ("classes", doc["classes"] == sorted(counts["train"])),
            ("num_images", doc.get("num_images") == len(files)),
            ("split_hashes", doc["split_hashes"] == split_hashes),
            ("content_hash", doc["content_hash"] == combined),
        )
        if not ok
    ]
    if inconsistent:
        raise refuse(f"is inconsistent: {', '.join(inconsistent)} do not match its files")
    return Marker(
        dataset_id=dataset_id,
        classes=tuple(doc["classes"]),
        counts=counts,
        split_hashes=split_hashes,
        content_hash=combined,
        files=files,
        sealed_by=SealedBy(sealed_by["tool"], str(sealed_by.get("detail", ""))),
        sealed_at=str(doc.get("sealed_at", "")),
        start_run=start_run,
    )


def identity_problem(dataset_id: str, files: list[DatasetFile], marker: Marker) -> Problem | None:
    """How the listed ``files`` differ from what the seal covers (missing, extra, or changed in size or
    ETag), as one problem naming the files; None when they are exactly the sealed files."""
    listed = {f.path: f for f in files}
    missing = sorted(set(marker.files) - set(listed))
    extra = sorted(set(listed) - set(marker.files))
    changed = sorted(
        path
        for path, f in listed.items()
        if path in marker.files
        and (
            f.size != marker.files[path].size
            or (marker.files[path].etag is not None and f.etag is not None and f.etag != marker.files[path].etag)
        )
    )
    if not (missing or extra or changed):
        return None
    prefix = layout.dataset_prefix(dataset_id)
    counts = count_images(f for f in files if _countable(f.path))
    parts = [
        f"the dataset is incomplete or changed: _dataset.json lists {_total(marker.counts)} images "
        f"{_describe(marker.counts)}, the bucket has {_total(counts)} {_describe(counts)}"
    ]
    if missing:
        parts.append(f"not in the bucket: {_few(prefix, missing)}")
    if extra:
        parts.append(f"not sealed (added after _dataset.json): {_few(prefix, extra)}")
    if changed:
        parts.append(f"replaced after sealing (size or ETag differ): {_few(prefix, changed)}")
    return Problem(
        layout.dataset_marker_key(dataset_id),
        "; ".join(parts),
        "finish uploading every image before _dataset.json; datasets are immutable, so remove files added or "
        "replaced after sealing, or upload the dataset again under a new id",
    )


def validate_dataset(dataset_id: str, files: list[DatasetFile], marker: Marker) -> DatasetSummary:
    """A dataset is usable when its names and layout are right and the bucket holds exactly the files the
    seal covers, with the sizes and ETags it recorded."""
    check_structure(dataset_id, files)
    problem = identity_problem(dataset_id, files, marker)
    if problem is not None:
        raise UploadRejected([problem])
    return DatasetSummary(
        dataset_id=dataset_id,
        classes=marker.classes,
        counts=marker.counts,
        content_hash=marker.content_hash,
        split_hashes=dict(marker.split_hashes),
        start_run=marker.start_run,
    )


def _countable(path: str) -> bool:
    parts = path.split("/")
    return len(parts) == 3 and parts[0] in layout.SPLITS


def _total(counts: dict[str, dict[str, int]]) -> int:
    return sum(sum(c.values()) for c in counts.values())


def _describe(counts: dict[str, dict[str, int]]) -> str:
    return "(" + ", ".join(f"{s}: {sum(counts.get(s, {}).values())}" for s in layout.SPLITS) + ")"


def _few(prefix: str, paths: list[str]) -> str:
    shown_paths = ", ".join(shown(prefix + p)[1:-1] for p in sorted(paths)[:MAX_REPORTED])
    more = len(paths) - MAX_REPORTED
    return shown_paths + (f" and {more} more" if more > 0 else "")


RESERVED_NAMES = (layout.DATASET_MARKER, layout.DATASET_CLAIM)


def files_from_listing(dataset_id: str, listing: Iterable[tuple[str, int, str | None]]) -> list[DatasetFile]:
    """Turn (key, size, ETag) triples under ``datasets/<id>/`` into the dataset's files: what lies under
    ``train/``, ``val/`` and ``test/``. Left out: the seal, a tool's upload claim, folder placeholders, and
    whatever lies beside the splits (a README, a licence: the jobs never download it; ``beside_splits``)."""
    prefix = layout.dataset_prefix(dataset_id)
    out = []
    for key, size, etag in listing:
        rel = key[len(prefix) :]
        if key.startswith(prefix) and not key.endswith("/") and rel.split("/", 1)[0] in layout.SPLITS:
            out.append(DatasetFile(rel, size, etag=etag))
    return out


def beside_splits(dataset_id: str, keys: Iterable[str]) -> list[str]:
    """The objects of ``datasets/<id>/`` that are not part of the dataset: beside ``train/``, ``val/`` and
    ``test/`` (the seal and a tool's claim excepted). Recorded in the seal under ``not_copied``."""
    prefix = layout.dataset_prefix(dataset_id)
    return sorted(
        key[len(prefix) :]
        for key in keys
        if key.startswith(prefix)
        and not key.endswith("/")
        and key[len(prefix) :] not in RESERVED_NAMES
        and key[len(prefix) :].split("/", 1)[0] not in layout.SPLITS
    )
