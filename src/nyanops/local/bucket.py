"""A directory with the same keys as the S3 bucket: ``<root>/bucket/<key>``.

Writes are atomic (temp file + rename) so a reader never sees half an object. The "version" of an
object is derived from its modification time and size, so re-uploading a file is a new upload
(a new run) while the same event delivered twice is recognised as a duplicate.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from nyanops.core.ports import ObjectInfo, ObjectNotFound

LOCAL_BUCKET = "nyanops-local"


class UnsafeKey(ValueError):
    pass


class LocalObjectStore:
    def __init__(self, directory: Path, bucket: str = LOCAL_BUCKET) -> None:
        self.directory = Path(directory)
        self._bucket = bucket

    @property
    def bucket(self) -> str:
        return self._bucket

    def path(self, key: str) -> Path:
        """The file for ``key``; keys that would escape the bucket directory are refused."""
        if not key or key.startswith("/") or "\\" in key or any(p in ("..", ".") for p in key.split("/")):
            raise UnsafeKey(f"unsafe key {key!r}")
        return self.directory / key

    def key_of(self, path: Path) -> str:
        return path.resolve().relative_to(self.directory.resolve()).as_posix()

    def get(self, key: str, version_id: str | None = None) -> bytes:
        p = self.path(key)
        try:
            if version_id is not None and version_id != file_version(p):
                raise ObjectNotFound(f"{key} (version {version_id})")
            return p.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectNotFound(key) from None

    def head(self, key: str) -> ObjectInfo | None:
        p = self.path(key)
        if not p.is_file():
            return None
        return _info(key, p)

    def put(self, key: str, body: bytes, content_type: str = "application/json") -> None:
        p = self.path(key)
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(body)
            os.replace(tmp, p)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        base = self.directory
        # Walk only the deepest directory the prefix names, then filter by the full prefix.
        head = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = self.path(head) if head else base
        if not start.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(start):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".tmp-"))
            for name in sorted(filenames):
                if name.startswith(".tmp-"):
                    continue
                p = Path(dirpath) / name
                key = p.relative_to(base).as_posix()
                if key.startswith(prefix):
                    yield _info(key, p)

    def touch(self, key: str) -> None:
        """Mark an existing object as just uploaded (used when re-pushing identical code)."""
        os.utime(self.path(key))


def file_version(p: Path) -> str:
    st = p.stat()
    return f"{st.st_mtime_ns:x}-{st.st_size:x}"


def _info(key: str, p: Path) -> ObjectInfo:
    st = p.stat()
    return ObjectInfo(
        key=key,
        size=st.st_size,
        etag=hashlib.md5(f"{st.st_mtime_ns}:{st.st_size}".encode(), usedforsecurity=False).hexdigest(),
        last_modified=datetime.fromtimestamp(st.st_mtime, tz=timezone.utc),
        version_id=file_version(p),
    )
