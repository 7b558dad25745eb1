"""A trial's model and code as local files, for ``nyanops predict``.

- The model (``TrialRecord.model_location``, a ``model.tar.gz``): locally the bucket's own file; from S3 a
  download cached per model URI under ``<cache>/models/<sha256 of the URI>/``, used again while the object's
  ETag is the one downloaded (model outputs are never overwritten, so in practice it is downloaded once).
- The code (``code/<hash>/sourcedir.tar.gz``, the bundle the trial's jobs ran): its SHA-256 must be the
  recorded hash (the bundle is content-addressed), then it is unpacked once per hash under
  ``<cache>/code/<hash>/``. Scoring with the trial's own ``inference.py`` is what makes ``predict`` give
  what its evaluation gave, even after ``ml_code`` changed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from nyanops.core import layout
from nyanops.core.ports import ObjectNotFound, ObjectStore
from nyanops.errors import CliError
from nyanops.local.bucket import LocalObjectStore

ETAG_FILE = "etag"


@dataclass(frozen=True)
class LocalCopy:
    path: Path
    downloaded: bool  # False: the local bucket's own file, or the cached download


def model_key(store: ObjectStore, model_uri: str) -> str:
    """The key of ``model_uri`` in this store's bucket (a model elsewhere is not fetched)."""
    try:
        bucket, key = layout.parse_s3_uri(model_uri)
    except ValueError:
        raise CliError(f"the trial's model location {model_uri!r} is not an s3:// URI") from None
    if bucket != store.bucket:
        raise CliError(f"the trial's model {model_uri} is outside this pipeline's bucket {store.bucket}")
    return key


def object_file(store: ObjectStore, key: str, cache: Path, what: str) -> LocalCopy:
    """The object at ``key`` as a local file (see the module docstring)."""
    if isinstance(store, LocalObjectStore):
        path = store.path(key)
        if not path.is_file():
            raise CliError(f"{what} {layout.s3_uri(store.bucket, key)} is gone from the local bucket ({path})")
        return LocalCopy(path, False)
    info = store.head(key)
    if info is None:
        raise CliError(f"{what} {layout.s3_uri(store.bucket, key)} does not exist (any more)")
    uri = layout.s3_uri(store.bucket, key)
    folder = cache / "models" / hashlib.sha256(uri.encode("utf-8")).hexdigest()[:32]
    target = folder / key.rsplit("/", 1)[-1]
    tag = folder / ETAG_FILE
    cached = target.is_file() and tag.is_file() and tag.read_text() == (info.etag or "")
    if cached and target.stat().st_size == info.size:
        return LocalCopy(target, False)
    try:
        body = store.get(key)
    except ObjectNotFound:
        raise CliError(f"{what} {uri} does not exist (any more)") from None
    folder.mkdir(parents=True, exist_ok=True)
    _write_atomically(target, body)
    _write_atomically(tag, (info.etag or "").encode("utf-8"))
    return LocalCopy(target, True)


def code_dir(store: ObjectStore, code_hash: str, cache: Path) -> Path:
    """The trial's code bundle, checked against its hash and unpacked (once per hash)."""
    target = cache / "code" / code_hash
    if (target / "inference.py").is_file():
        return target
    key = layout.code_bundle_key(code_hash)
    if isinstance(store, LocalObjectStore):
        path = store.path(key)
        if not path.is_file():
            raise CliError(f"code/{code_hash} is gone from the local bucket")
        archive = path.read_bytes()
    else:
        try:
            archive = store.get(key)
        except ObjectNotFound:
            raise CliError(f"code/{code_hash} is gone from s3://{store.bucket}") from None
    actual = hashlib.sha256(archive).hexdigest()
    if actual != code_hash:
        raise CliError(
            f"code/{code_hash}/{layout.CODE_BUNDLE} has the SHA-256 {actual}: it is not the bundle the trial ran "
            "(it was replaced); nothing is run from it"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{code_hash[:12]}-", dir=target.parent))
    try:
        with tempfile.TemporaryFile() as fh:
            fh.write(archive)
            fh.seek(0)
            with tarfile.open(fileobj=fh, mode="r:gz") as tar:
                tar.extractall(tmp, filter="data")
        if not (tmp / "inference.py").is_file():
            raise CliError(f"code/{code_hash} has no inference.py: it predates `nyanops predict`")
        with contextlib.suppress(OSError):  # unpacked meanwhile by another predict: that copy is used
            tmp.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _write_atomically(path: Path, body: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(body)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
