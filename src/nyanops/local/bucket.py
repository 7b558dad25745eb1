"""A directory with the same keys as the S3 bucket: ``<root>/bucket/<key>``.

Writes are atomic (temp file + rename) so a reader never sees half an object. The "version" of an
object is derived from its modification time and size, so re-uploading a file is a new upload
(a new run) while the same event delivered twice is recognised as a duplicate; its "ETag" is derived
from the same two numbers (``local_etag``), so a file rewritten in place has a new ETag, as on S3.

Only regular files are objects. Anything else a person can put in a directory (a symbolic link, a FIFO,
a socket, a link to nothing) is left out of listings and reads, and noted in ``odd`` (path → why) for the
CLI to mention once; it can never block, crash or leak a file from outside the bucket.

Conditional writes follow S3's ``If-None-Match: *`` and ``If-Match: <etag>`` (``put_new``, ``put_if_match``):
``put_new`` links a complete temp file to its name (the link fails if the name exists), ``put_if_match``
compares and replaces under a lock file, so concurrent writers (watch, ``dataset add``) see exactly one win.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import stat
import tempfile
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from nyanops.core.ports import ObjectInfo, ObjectNotFound

LOCAL_BUCKET = "nyanops-local"
TMP_PREFIX = ".tmp-"
LOCK_FILE = ".tmp-lock"


class UnsafeKey(ValueError):
    pass


class LocalObjectStore:
    def __init__(self, directory: Path, bucket: str = LOCAL_BUCKET) -> None:
        self.directory = Path(directory)
        self._bucket = bucket
        self.odd: dict[str, str] = {}

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
        st = _regular(p)
        if st is None or (version_id is not None and version_id != _version(st)):
            raise ObjectNotFound(key if version_id is None else f"{key} (version {version_id})")
        try:
            return p.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectNotFound(key) from None

    def head(self, key: str) -> ObjectInfo | None:
        p = self.path(key)
        st = _regular(p)
        return None if st is None else _info(key, st)

    def put(self, key: str, body: bytes, content_type: str = "application/json") -> str | None:
        p = self.path(key)
        tmp = self._write_temp(p, body)
        try:
            st = tmp.stat()
            os.replace(tmp, p)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return local_etag(st.st_size, st.st_mtime_ns)

    def put_new(self, key: str, body: bytes, content_type: str = "application/json") -> bool:
        """Write ``key`` only if nothing is there (S3 ``If-None-Match: *``); False if it exists."""
        p = self.path(key)
        tmp = self._write_temp(p, body)
        try:
            os.link(tmp, p)
        except FileExistsError:
            return False
        finally:
            tmp.unlink(missing_ok=True)
        return True

    def put_if_match(self, key: str, body: bytes, etag: str, content_type: str = "application/json") -> bool:
        """Replace ``key`` only if its ETag is still ``etag`` (S3 ``If-Match``); False otherwise."""
        with self._locked():
            current = self.head(key)
            if current is None or current.etag != etag:
                return False
            self.put(key, body, content_type)
            return True

    def delete(self, key: str) -> None:
        """Remove ``key`` (S3 DeleteObject: on a versioned bucket the older versions stay; here it is gone)."""
        with contextlib.suppress(FileNotFoundError):
            self.path(key).unlink()

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        base = self.directory
        # Walk only the deepest directory the prefix names, then filter by the full prefix.
        head = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = self.path(head) if head else base
        if not start.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(start):
            kept = []
            for d in sorted(dirnames):
                if d.startswith(TMP_PREFIX):
                    continue
                if os.path.islink(os.path.join(dirpath, d)):
                    self._note_odd(Path(dirpath) / d, "a symbolic link (the bucket holds files, not links)")
                    continue
                kept.append(d)
            dirnames[:] = kept
            for name in sorted(filenames):
                if name.startswith(TMP_PREFIX):
                    continue
                p = Path(dirpath) / name
                key = p.relative_to(base).as_posix()
                if not key.startswith(prefix):
                    continue
                st = _lstat(p)
                if st is None:
                    continue  # removed while listing
                if not stat.S_ISREG(st.st_mode):
                    self._note_odd(p, _odd_reason(p, st))
                    continue
                yield _info(key, st)

    def touch(self, key: str) -> None:
        """Mark an existing object as just uploaded (used when re-pushing identical code)."""
        os.utime(self.path(key))

    # -- helpers ------------------------------------------------------------------------------------
    def _write_temp(self, p: Path, body: bytes) -> Path:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=TMP_PREFIX)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(body)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return Path(tmp)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / LOCK_FILE, "a+b") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _note_odd(self, p: Path, reason: str) -> None:
        self.odd[os.fsdecode(p.relative_to(self.directory))] = reason


def local_etag(size: int, mtime_ns: int) -> str:
    """The local bucket's ETag: from modification time and size (S3's is the body's MD5 or a KMS-derived
    value; either way it changes whenever the object is written again)."""
    return hashlib.md5(f"{mtime_ns}:{size}".encode(), usedforsecurity=False).hexdigest()


def file_version(p: Path) -> str:
    return _version(p.stat())


def file_etag(p: Path) -> str:
    st = p.stat()
    return local_etag(st.st_size, st.st_mtime_ns)


def _version(st: os.stat_result) -> str:
    return f"{st.st_mtime_ns:x}-{st.st_size:x}"


def _lstat(p: Path) -> os.stat_result | None:
    try:
        return p.lstat()
    except (FileNotFoundError, NotADirectoryError):
        return None


def _regular(p: Path) -> os.stat_result | None:
    st = _lstat(p)
    return st if st is not None and stat.S_ISREG(st.st_mode) else None


def _odd_reason(p: Path, st: os.stat_result) -> str:
    if stat.S_ISLNK(st.st_mode):
        return "a symbolic link to nothing" if not p.exists() else "a symbolic link (the bucket holds files, not links)"
    if stat.S_ISFIFO(st.st_mode):
        return "a named pipe (FIFO), not a file"
    if stat.S_ISSOCK(st.st_mode):
        return "a socket, not a file"
    return "not a regular file"


def _info(key: str, st: os.stat_result) -> ObjectInfo:
    return ObjectInfo(
        key=key,
        size=st.st_size,
        etag=local_etag(st.st_size, st.st_mtime_ns),
        last_modified=datetime.fromtimestamp(st.st_mtime, tz=timezone.utc),
        version_id=_version(st),
    )
