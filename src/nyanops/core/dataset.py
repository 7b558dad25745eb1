"""Datasets: the ``_dataset.json`` marker and the checks that a dataset is complete and usable.

A dataset is ``datasets/<id>/{train,val,test}/<class>/<image>`` plus ``_dataset.json`` written last.
The marker records the class names, per-split counts and a content hash; a dataset is *complete*
when the marker exists and the objects under the prefix match it. Checks here work on a listing
(key, size), so the Lambda never downloads images.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from nyanops.core import layout
from nyanops.core.rejection import Problem, UploadRejected

MARKER_FORMAT = 1
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
MAX_REPORTED = 5


@dataclass(frozen=True)
class DatasetFile:
    """One object of a dataset, ``path`` relative to ``datasets/<id>/`` (e.g. ``train/bengal/a.jpg``)."""

    path: str
    size: int
    sha256: str | None = None


@dataclass(frozen=True)
class DatasetSummary:
    dataset_id: str
    classes: tuple[str, ...]
    counts: dict[str, dict[str, int]]
    content_hash: str

    @property
    def num_images(self) -> int:
        return sum(sum(per_class.values()) for per_class in self.counts.values())


def is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def content_hash(files: Iterable[DatasetFile]) -> str:
    """sha256 over ``<path>\\t<sha256 of bytes>\\n`` lines sorted by path: the dataset's identity."""
    digest = hashlib.sha256()
    for f in sorted(files, key=lambda f: f.path):
        if f.sha256 is None:
            raise ValueError(f"{f.path}: no sha256 to hash")
        digest.update(f"{f.path}\t{f.sha256}\n".encode())
    return digest.hexdigest()


def count_images(files: Iterable[DatasetFile]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {split: {} for split in layout.SPLITS}
    for f in files:
        split, cls, _ = f.path.split("/", 2)
        counts[split][cls] = counts[split].get(cls, 0) + 1
    return {split: dict(sorted(per.items())) for split, per in counts.items()}


def check_structure(dataset_id: str, files: list[DatasetFile]) -> dict[str, dict[str, int]]:
    """Check the layout of a dataset's image files; return per-split, per-class counts.

    Refuses (all problems at once): files outside ``<split>/<class>/<file>``, non-image files,
    zero-byte files, a missing split, class sets that differ between splits, fewer than two classes.
    """
    problems: list[Problem] = []
    misplaced, non_images, empty = [], [], []
    good: list[DatasetFile] = []
    for f in files:
        parts = f.path.split("/")
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
                        f"the {split} split lacks classes {', '.join(missing)} that other splits have",
                        "use the same class folders in train, val and test, each with at least one image",
                    )
                )
        if len(union) < 2 and not problems:
            problems.append(Problem("dataset", "only one class", "a classifier needs at least two class folders"))
    if problems:
        raise UploadRejected(problems)
    return counts


def build_marker(dataset_id: str, files: list[DatasetFile], now: datetime | None = None) -> dict[str, Any]:
    """The ``_dataset.json`` body for a dataset whose files (with sha256) are all uploaded."""
    counts = check_structure(dataset_id, files)
    return {
        "format": MARKER_FORMAT,
        "dataset_id": dataset_id,
        "created_at": (now or datetime.now(timezone.utc)).isoformat(timespec="seconds"),
        "classes": sorted(counts["train"]),
        "counts": counts,
        "num_images": sum(sum(c.values()) for c in counts.values()),
        "content_hash": content_hash(files),
    }


def parse_marker(dataset_id: str, raw: bytes) -> dict[str, Any]:
    """Decode ``_dataset.json``; refuse one that is not the documented shape."""
    field = layout.dataset_marker_key(dataset_id)
    fix = "write _dataset.json last with `nyanops dataset add` (see docs/datasets.md for its format)"
    try:
        marker = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UploadRejected.one(field, f"is not valid JSON ({exc})", fix) from None
    if not isinstance(marker, dict):
        raise UploadRejected.one(field, "must be a JSON object", fix)
    counts = marker.get("counts")
    ok = (
        marker.get("format") == MARKER_FORMAT
        and isinstance(marker.get("content_hash"), str)
        and isinstance(counts, dict)
        and all(
            isinstance(counts.get(s), dict)
            and all(isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) for k, v in counts[s].items())
            for s in layout.SPLITS
        )
    )
    if not ok:
        raise UploadRejected.one(
            field, f"lacks format={MARKER_FORMAT}, content_hash or per-split counts {{train,val,test}}", fix
        )
    return marker


def validate_dataset(dataset_id: str, files: list[DatasetFile], marker: dict[str, Any]) -> DatasetSummary:
    """A dataset is usable when its structure is right and the objects match what the marker promises."""
    counts = check_structure(dataset_id, files)
    if counts != marker["counts"]:
        raise UploadRejected.one(
            layout.dataset_marker_key(dataset_id),
            f"the dataset is incomplete or changed: _dataset.json lists {_total(marker['counts'])} images "
            f"{_describe(marker['counts'])}, the bucket has {_total(counts)} {_describe(counts)}",
            "finish uploading every image before _dataset.json, or upload the dataset again under a new id",
        )
    return DatasetSummary(
        dataset_id=dataset_id,
        classes=tuple(sorted(counts["train"])),
        counts=counts,
        content_hash=str(marker["content_hash"]),
    )


def _total(counts: dict[str, dict[str, int]]) -> int:
    return sum(sum(c.values()) for c in counts.values())


def _describe(counts: dict[str, dict[str, int]]) -> str:
    return "(" + ", ".join(f"{s}: {sum(counts.get(s, {}).values())}" for s in layout.SPLITS) + ")"


def _few(prefix: str, paths: list[str]) -> str:
    shown = ", ".join(prefix + p for p in sorted(paths)[:MAX_REPORTED])
    more = len(paths) - MAX_REPORTED
    return shown + (f" and {more} more" if more > 0 else "")


def files_from_listing(dataset_id: str, listing: Iterable[tuple[str, int]]) -> list[DatasetFile]:
    """Turn (key, size) pairs under ``datasets/<id>/`` into dataset files, leaving out the marker."""
    prefix = layout.dataset_prefix(dataset_id)
    out = []
    for key, size in listing:
        rel = key[len(prefix) :]
        if key.startswith(prefix) and rel != layout.DATASET_MARKER and not key.endswith("/"):
            out.append(DatasetFile(rel, size))
    return out
