"""Content-addressed ml_code bundles: ``code/<sha256>/sourcedir.tar.gz`` for the training job (the
SageMaker framework container unpacks it) and ``code/<sha256>/src/...`` for the processing job
(which gets files, not archives). The archive is byte-for-byte reproducible (sorted entries, fixed
timestamps and owners, symlinks followed), so the same code always has the same hash and a pushed
bundle is never overwritten."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from dataclasses import dataclass
from pathlib import Path

from nyanops.core import layout
from nyanops.core.ports import ObjectStore

EXCLUDED_DIRS = {"__pycache__", ".pytest_cache", ".ipynb_checkpoints"}
EXCLUDED_SUFFIXES = (".pyc", ".pyo")


@dataclass(frozen=True)
class CodeBundle:
    hash: str
    archive: bytes
    files: dict[str, bytes]


def bundle_files(source_dir: Path) -> dict[str, bytes]:
    """Every file of ``source_dir`` (symlinks followed), keyed by its relative POSIX path."""
    files: dict[str, bytes] = {}
    for path in sorted(source_dir.rglob("*")):
        rel = path.relative_to(source_dir)
        if any(part in EXCLUDED_DIRS or part.startswith(".") for part in rel.parts):
            continue
        if path.is_file() and not path.name.endswith(EXCLUDED_SUFFIXES):
            files[rel.as_posix()] = path.read_bytes()
    if not files:
        raise FileNotFoundError(f"no files to bundle in {source_dir}")
    return files


def build_bundle(source_dir: Path) -> CodeBundle:
    files = bundle_files(source_dir)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755 if name.endswith(".py") else 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    archive = gzip.compress(raw.getvalue(), compresslevel=9, mtime=0)
    return CodeBundle(hashlib.sha256(archive).hexdigest(), archive, files)


def push_bundle(store: ObjectStore, bundle: CodeBundle) -> bool:
    """Upload the bundle unless it is there already; return True when something new was written."""
    key = layout.code_bundle_key(bundle.hash)
    if store.head(key) is not None:
        return False
    for name, data in bundle.files.items():
        store.put(layout.code_source_prefix(bundle.hash) + name, data, content_type="application/octet-stream")
    # The archive last: its presence means the bundle is complete (StartPipeline looks for it).
    store.put(key, bundle.archive, content_type="application/gzip")
    return True
