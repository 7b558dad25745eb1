"""What goes wrong with the local root that is not a bug, said in one line with the fix: ``--root`` names a
file, the root is read-only, the disk is full, ``nyanops.db`` is not a database (corrupt, or another file),
or another process holds the database locked longer than the busy timeout (``NYANOPS_DB_TIMEOUT``)."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

from nyanops.errors import CliError
from nyanops.local.progress import Progress
from nyanops.local.runner import LocalPipeline

DB_FILE = "nyanops.db"


def open_pipeline(root: Path, progress: Progress) -> LocalPipeline:
    """The local pipeline at ``root``, or a CliError saying what is wrong with the root and how to fix it."""
    if root.exists() and not root.is_dir():
        raise CliError(
            f"--root {root} is a file, not a directory: give a directory for the local pipeline "
            "(it is created if missing), or move the file away"
        )
    try:
        return LocalPipeline(root, progress)
    except (OSError, sqlite3.Error) as exc:
        described = storage_error(exc, root)
        if described is None:
            raise
        raise described from None


def storage_error(exc: BaseException, root: Path | str | None) -> CliError | None:
    """``exc`` as a one-line CliError with the fix, when it is a known storage problem; else None (a bug,
    which keeps its traceback)."""
    where = Path(root) if root is not None else None
    db = where / DB_FILE if where is not None else Path(DB_FILE)
    place = str(where) if where is not None else "this machine"
    if isinstance(exc, sqlite3.Error):
        text = str(exc).lower()
        if "locked" in text or "busy" in text:
            return CliError(
                f"{db} is locked by another process (another nyanops command writing to it?): wait for it to "
                "finish and re-run (the wait is NYANOPS_DB_TIMEOUT seconds, 30 by default)"
            )
        if "not a database" in text or "malformed" in text or "corrupt" in text:
            return CliError(
                f"{db} is not a readable nyanops database (corrupt, or another file): move it aside "
                f"(mv {db} {db}.bad) and re-run to start a fresh one; its trials and history stay in the moved file"
            )
        if "readonly" in text or "read-only" in text or "unable to open" in text:
            return CliError(
                f"cannot write {db}: the root {place} is read-only or not yours; make it writable or choose "
                "another --root"
            )
        if "full" in text:
            return _disk_full(place)
        return None
    if isinstance(exc, OSError):
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return _disk_full(place, exc.filename)
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            target = exc.filename or place
            return CliError(
                f"cannot write {target}: {exc.strerror or 'permission denied'}; make the root {place} writable "
                "or choose another --root"
            )
        if exc.errno in (errno.ENOTDIR, errno.EEXIST) and where is not None and not where.is_dir():
            return CliError(
                f"--root {where} is not a directory (a file is in the way): give a directory, or move the file away"
            )
    return None


def _disk_full(place: str, filename: object = None) -> CliError:
    what = f" while writing {filename}" if filename else ""
    return CliError(
        f"no space left on the disk of {place}{what}: free some space (or use --root on another disk) and re-run; "
        "objects are written whole or not at all, so nothing half-written was kept"
    )
