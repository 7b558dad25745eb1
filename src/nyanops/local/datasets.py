"""``nyanops dataset add`` on the local side: copy a folder in as a new, immutable dataset, all or nothing.

1. Everything is checked before anything is written: the folder's entries (symbolic links and special
   files are refused by name: a link is not followed, see docs/datasets.md), every name by the rules
   StartPipeline applies (``core/dataset_names``), the layout, and every image decoded.
2. The files and the seal (``_dataset.json``, format 2) are written into a hidden staging folder inside the
   bucket directory (``.tmp-staging-<pid>-<random>/``, which no listing shows), hashing each file as it is
   copied.
3. One ``rename`` publishes the staged folder as ``datasets/<id>``. It fails if that folder exists with
   anything in it, so of two concurrent adds of one id exactly one wins; the other is refused and leaves
   nothing. An error or a kill (even SIGKILL) before the rename leaves only the staging folder, which the
   next ``dataset add`` or ``watch`` removes (its process is gone): a dataset is never seen half-copied.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
import uuid
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from nyanops.core import dataset as datasets
from nyanops.core import layout
from nyanops.core.dataset_names import check_dataset_id, shown
from nyanops.core.rejection import Problem, UploadRejected
from nyanops.local.bucket import LocalObjectStore, local_etag

MAX_PIXELS = 50_000_000  # far above any photo worth training on, far below a decompression bomb
STAGING_PREFIX = ".tmp-staging-"
NOTHING_ADDED = "nothing was added; fix it and run the command again"


@dataclass(frozen=True)
class SourceFile:
    rel: str  # <split>/<class>/<file>, posix
    path: Path
    size: int


def new_dataset_id(store: LocalObjectStore, now: datetime | None = None) -> str:
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H%M%SZ")
    candidate, n = stamp, 1
    while (store.directory / layout.DATASETS_PREFIX / candidate).exists():
        n += 1
        candidate = f"{stamp}-{n}"
    return candidate


def scan_folder(source: Path) -> tuple[list[SourceFile], list[str]]:
    """The files of an ImageFolder tree under ``train/``, ``val/`` and ``test/``, and what is left out: the
    entries beside those folders (a README, a licence file) and hidden files inside them (``.DS_Store``).
    Symbolic links and special files (FIFOs, sockets, devices) are refused by name, never followed."""
    if not source.is_dir():
        raise UploadRejected.one(
            "DIR", f"{source} is not a directory", "give a folder with train/, val/ and test/ class folders"
        )
    found: list[SourceFile] = []
    left_out: list[str] = []
    problems: list[Problem] = []
    for split in layout.SPLITS:
        top = source / split
        if top.is_symlink():
            problems.append(_link_problem(split))
        elif top.is_dir():
            _walk(top, split, found, left_out, problems)
    try:
        beside = sorted(e.name for e in os.scandir(source) if e.name not in layout.SPLITS and e.name[:1] != ".")
    except OSError as exc:
        raise UploadRejected.one("DIR", f"cannot read {source}: {exc.strerror}", "check its permissions") from None
    if problems:
        raise UploadRejected(problems)
    return found, [shown(name)[1:-1] for name in beside + left_out]


def _walk(folder: Path, rel: str, found: list[SourceFile], left_out: list[str], problems: list[Problem]) -> None:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        problems.append(Problem(rel, f"cannot be read ({exc.strerror})", "check its permissions"))
        return
    for entry in entries:
        child = f"{rel}/{entry.name}"
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError as exc:
            problems.append(Problem(child, f"cannot be read ({exc.strerror})", "check its permissions"))
            continue
        if stat.S_ISLNK(st.st_mode):
            problems.append(_link_problem(child))
        elif stat.S_ISDIR(st.st_mode):
            _walk(Path(entry.path), child, found, left_out, problems)  # names are judged by the rules, hidden or not
        elif not stat.S_ISREG(st.st_mode):
            problem = "is not a regular file (a FIFO, socket or device)"
            problems.append(Problem(shown(child)[1:-1], problem, "remove it from the folder"))
        elif entry.name.startswith("."):
            left_out.append(child)  # .DS_Store and the like: never part of a dataset, listed as not copied
        else:
            found.append(SourceFile(child, Path(entry.path), st.st_size))


def _link_problem(rel: str) -> Problem:
    return Problem(
        shown(rel)[1:-1],
        "is a symbolic link; links are not followed (a dataset holds the files themselves)",
        "replace the link by the folder or file it points to (e.g. copy with `cp -RL`), or remove it",
    )


def check_images(files: list[SourceFile]) -> None:
    """Decode every image; refuse corrupt, truncated, non-image and decompression-bomb files by name."""
    try:
        from PIL import Image
    except ImportError:  # the serverless venv has no Pillow; the layout checks still ran
        return
    problems: list[Problem] = []
    for f in files:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(f.path) as im:
                    if im.width * im.height > MAX_PIXELS:
                        raise ValueError(f"{im.width}x{im.height} pixels is larger than the {MAX_PIXELS} pixel limit")
                    im.load()
        except Exception as exc:  # PIL raises many types for bad files
            problems.append(
                Problem(
                    f.rel,
                    f"cannot be used as an image ({type(exc).__name__}: {exc})",
                    "replace it with a valid JPEG/PNG (at most 50 megapixels) or remove it",
                )
            )
    if problems:
        raise UploadRejected(problems)


def check_source(source: Path, dataset_id: str | None) -> tuple[list[SourceFile], list[str]]:
    """Everything ``dataset add`` checks before writing anything: entries, names, layout, image contents."""
    files, not_copied = scan_folder(source)
    datasets.check_structure(dataset_id or "<new>", [datasets.DatasetFile(f.rel, f.size) for f in files])
    check_images(files)
    return files, not_copied


def add_dataset(
    store: LocalObjectStore, source: Path, dataset_id: str | None = None, start_run: bool = True
) -> tuple[str, dict]:
    """Copy ``source`` into ``datasets/<id>/`` with its seal, all or nothing; return the id and the seal
    written (which lists what was left out under ``not_copied``)."""
    remove_stale_staging(store)
    if dataset_id is not None:
        check_dataset_id(dataset_id, "--name")
        _refuse_if_taken(store, dataset_id)
    files, not_copied = check_source(source, dataset_id)
    dataset_id = dataset_id or new_dataset_id(store)
    staging = store.directory / f"{STAGING_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    staged = staging / dataset_id
    try:
        sealed = [_copy(f, staged) for f in files]
        marker = datasets.build_marker(
            dataset_id,
            sealed,
            sealed_by=datasets.SealedBy(datasets.TOOL, f"from {shown(str(source.resolve()))[1:-1]}"),
            start_run=start_run,
            not_copied=not_copied,
        )
        (staged / layout.DATASET_MARKER).write_bytes(datasets.marker_bytes(marker))
        _publish(store, staged, dataset_id)
    except OSError as exc:
        raise UploadRejected.one(
            "(local bucket)",
            f"copying into {store.directory} failed: {exc.strerror or exc}"
            + (f" ({shown(exc.filename)[1:-1]})" if isinstance(exc.filename, str) else ""),
            f"free disk space or fix permissions; {NOTHING_ADDED}",
        ) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dataset_id, marker


def _refuse_if_taken(store: LocalObjectStore, dataset_id: str) -> None:
    target = store.directory / layout.DATASETS_PREFIX / dataset_id
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UploadRejected.one(
            "--name",
            f"datasets/{dataset_id} exists already and datasets are immutable",
            "choose a new name (or leave --name out for a timestamp id)",
        )


def _copy(f: SourceFile, staged: Path) -> datasets.DatasetFile:
    dest = staged / f.rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    with open(f.path, "rb") as src, open(dest, "wb") as out:
        while chunk := src.read(1 << 20):
            digest.update(chunk)
            out.write(chunk)
            size += len(chunk)
    st = dest.stat()
    return datasets.DatasetFile(f.rel, size, digest.hexdigest(), local_etag(st.st_size, st.st_mtime_ns))


def _publish(store: LocalObjectStore, staged: Path, dataset_id: str) -> None:
    parent = store.directory / layout.DATASETS_PREFIX
    parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(staged, parent / dataset_id)  # atomic; fails onto a folder that has anything in it
    except OSError as exc:
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
            raise UploadRejected.one(
                "--name",
                f"datasets/{dataset_id} appeared while this dataset was being copied (another `dataset add` or an "
                "upload won the name); datasets are immutable",
                f"choose another name; {NOTHING_ADDED.split(';')[0]}",
            ) from None
        raise


def remove_stale_staging(store: LocalObjectStore) -> list[Path]:
    """Remove the staging folders of ``dataset add`` runs whose process is gone (killed, crashed)."""
    removed = []
    if not store.directory.is_dir():
        return removed
    for path in store.directory.glob(STAGING_PREFIX + "*"):
        pid_text = path.name[len(STAGING_PREFIX) :].split("-", 1)[0]
        if pid_text.isdigit() and not _alive(int(pid_text)):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
