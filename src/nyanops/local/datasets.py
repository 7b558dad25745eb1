"""``nyanops dataset add``: copy a folder in as a new, immutable dataset.

Everything is checked before anything is written (layout, class sets, and every image decoded), so
a refused folder leaves the bucket unchanged. Images are copied first and ``_dataset.json`` last:
its arrival is what marks the dataset complete and starts a run.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from datetime import datetime, timezone
from pathlib import Path

from nyanops.core import dataset as datasets
from nyanops.core import layout
from nyanops.core.ports import ObjectStore
from nyanops.core.rejection import Problem, UploadRejected

MAX_PIXELS = 50_000_000  # far above any photo worth training on, far below a decompression bomb


def new_dataset_id(store: ObjectStore, now: datetime | None = None) -> str:
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H%M%SZ")
    candidate, n = stamp, 1
    while next(iter(store.list(layout.dataset_prefix(candidate))), None) is not None:
        n += 1
        candidate = f"{stamp}-{n}"
    return candidate


def scan_folder(source: Path) -> tuple[list[tuple[datasets.DatasetFile, Path]], list[str]]:
    """The files of an ImageFolder tree under ``train/``, ``val/`` and ``test/``, and the names of
    what lies beside those folders (a README, a licence file), which is not part of the dataset.
    Hidden files such as .DS_Store are skipped."""
    if not source.is_dir():
        raise UploadRejected.one(
            "DIR", f"{source} is not a directory", "give a folder with train/, val/ and test/ class folders"
        )
    found = []
    for split in layout.SPLITS:
        for path in sorted((source / split).rglob("*")):
            rel = path.relative_to(source)
            if any(part.startswith(".") for part in rel.parts) or not path.is_file():
                continue
            found.append((datasets.DatasetFile(rel.as_posix(), path.stat().st_size), path))
    beside = sorted(p.name for p in source.iterdir() if p.name not in layout.SPLITS and not p.name.startswith("."))
    return found, beside


def check_images(files: list[tuple[datasets.DatasetFile, Path]]) -> None:
    """Decode every image; refuse corrupt, truncated, non-image and decompression-bomb files by name."""
    try:
        from PIL import Image
    except ImportError:  # the serverless venv has no Pillow; the layout checks still ran
        return
    problems: list[Problem] = []
    for f, path in files:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(path) as im:
                    if im.width * im.height > MAX_PIXELS:
                        raise ValueError(f"{im.width}x{im.height} pixels is larger than the {MAX_PIXELS} pixel limit")
                    im.load()
        except Exception as exc:  # PIL raises many types for bad files
            problems.append(
                Problem(
                    f.path,
                    f"cannot be used as an image ({type(exc).__name__}: {exc})",
                    "replace it with a valid JPEG/PNG (at most 50 megapixels) or remove it",
                )
            )
    if problems:
        raise UploadRejected(problems)


def add_dataset(store: ObjectStore, source: Path, dataset_id: str | None = None) -> tuple[str, dict]:
    """Copy ``source`` into ``datasets/<id>/``; return the id and the marker written (which lists what
    was left out under ``not_copied``)."""
    if dataset_id is not None:
        if not layout.is_dataset_id(dataset_id):
            raise UploadRejected.one(
                "--name", f"{dataset_id!r} is not a valid dataset id", "use letters, digits, '.', '_' and '-'"
            )
        if next(iter(store.list(layout.dataset_prefix(dataset_id))), None) is not None:
            raise UploadRejected.one(
                "--name",
                f"datasets/{dataset_id} exists already and datasets are immutable",
                "choose a new name (or leave --name out for a timestamp id)",
            )
    files, beside = scan_folder(source)
    datasets.check_structure(dataset_id or "<new>", [f for f, _ in files])
    check_images(files)
    dataset_id = dataset_id or new_dataset_id(store)
    hashed = []
    for f, path in files:
        data = path.read_bytes()
        store.put(layout.dataset_prefix(dataset_id) + f.path, data, content_type="image/jpeg")
        hashed.append(datasets.DatasetFile(f.path, len(data), hashlib.sha256(data).hexdigest()))
    marker = datasets.build_marker(dataset_id, hashed)
    if beside:
        marker["not_copied"] = beside
    store.put(layout.dataset_marker_key(dataset_id), json.dumps(marker, indent=2).encode())
    return dataset_id, marker
