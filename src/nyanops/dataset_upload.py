"""``nyanops dataset add DIR --bucket B``: upload a folder as a new dataset to a deployed stack's bucket, in
parallel, resumable, and never sealed half-way.

1. The folder is checked as locally (``local.datasets.check_source``: entries, names, layout, every image
   decoded) and every file hashed, before anything is uploaded.
2. A claim, ``datasets/<id>/_uploading.json``, is written first with ``put_new`` (S3 ``If-None-Match: *``):
   the pipeline's sealer never seals a prefix that holds one, and a second ``dataset add`` of another folder
   to the same id is refused. The claim records the folder's identity and, as the upload goes, every file
   uploaded with its sha256 and the ETag S3 gave it.
3. Files go up ``jobs`` at a time, each retried (boto3's standard retry mode, then here) with a progress line.
4. Interrupted (Ctrl-C, a lost connection, SIGKILL) and run again with the same folder and id, it finds its
   claim and uploads only what is missing or different. An abandoned claim stays until that re-run (or until
   someone removes it: the sealer then seals what is there after the quiet period); ``nyanops datasets``
   shows it as "uploading" with its host and age.
5. When every file is there with the ETag recorded, the seal (format 2) is written with ``put_new`` and the
   claim removed. The seal's arrival starts the run through StartPipeline (unless ``start_run`` is false).
"""

from __future__ import annotations

import json
import mimetypes
import socket
import sys
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from nyanops.core import content_identity, layout
from nyanops.core import dataset as datasets
from nyanops.core.dataset_names import check_dataset_id, shown
from nyanops.core.ports import ObjectNotFound, ObjectStore
from nyanops.core.rejection import UploadRejected
from nyanops.local.datasets import SourceFile, check_source

DEFAULT_JOBS = 8
ATTEMPTS = 4
# How often the claim records progress: what a re-run may skip (files uploaded since are uploaded again).
CLAIM_EVERY_SECONDS = 1.0


class UploadFailed(RuntimeError):
    """A file could not be uploaded after retries; the claim stays and a re-run resumes."""


@dataclass
class UploadResult:
    dataset_id: str
    marker: dict[str, Any]
    uploaded: int
    skipped: int  # already there from an interrupted run
    identical: bool = False  # the dataset was already sealed with exactly this content


@dataclass
class Progress:
    """One status line redrawn on a terminal; a line per tenth otherwise."""

    total_files: int
    total_bytes: int
    out: TextIO = field(default_factory=lambda: sys.stderr)
    done_files: int = 0
    done_bytes: int = 0
    started: float = field(default_factory=time.monotonic)
    _last_tenth: int = -1

    def add(self, size: int) -> None:
        self.done_files += 1
        self.done_bytes += size
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = self.done_bytes / elapsed
        left = (self.total_bytes - self.done_bytes) / rate if rate else 0
        line = (f"uploading {self.done_files}/{self.total_files} files, {self.done_bytes / 1e6:.1f}/"
                f"{self.total_bytes / 1e6:.1f} MB, {rate / 1e6:.1f} MB/s, ETA {int(left) // 60}:{int(left) % 60:02d}")
        if self.out.isatty():
            self.out.write("\r\033[K" + line)
            if self.done_files == self.total_files:
                self.out.write("\n")
        else:
            tenth = self.done_files * 10 // max(self.total_files, 1)
            if tenth == self._last_tenth:
                return
            self._last_tenth = tenth
            self.out.write(line + "\n")
        self.out.flush()


def upload_dataset(
    store: ObjectStore,
    source: Path,
    dataset_id: str,
    *,
    start_run: bool = True,
    jobs: int = DEFAULT_JOBS,
    progress_out: TextIO | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    sleep: Callable[[float], None] = time.sleep,
) -> UploadResult:
    check_dataset_id(dataset_id, "--name")
    files, not_copied = check_source(source, dataset_id)
    hashed = {f.rel: content_identity.stream_hash(_chunks(f.path)) for f in files}
    split_hashes, combined = datasets.identity(datasets.DatasetFile(r, 0, h) for r, h in hashed.items())
    marker_key = layout.dataset_marker_key(dataset_id)
    existing = _sealed_identity(store, dataset_id)
    if existing is not None:
        if existing == combined:
            doc = json.loads(store.get(marker_key))
            return UploadResult(dataset_id, doc, 0, len(files), identical=True)
        raise UploadRejected.one(
            "--name", f"datasets/{dataset_id} is sealed already with other content, and datasets are immutable",
            "choose a new name",
        )
    claim = _take_claim(store, dataset_id, combined, len(files), clock)
    listing = {o.key: o.etag for o in store.list(layout.dataset_prefix(dataset_id))}
    prefix = layout.dataset_prefix(dataset_id)
    done: dict[str, dict[str, str]] = {
        rel: entry for rel, entry in claim["uploaded"].items()
        if rel in hashed and entry.get("sha256") == hashed[rel] and listing.get(prefix + rel) == entry.get("etag")
    }
    todo = [f for f in files if f.rel not in done]
    progress = Progress(len(todo), sum(f.size for f in todo), progress_out or sys.stderr)
    _upload_all(store, prefix, todo, hashed, done, claim, dataset_id, jobs, progress, sleep)
    _check_complete(store, dataset_id, files, done)
    sealed = [datasets.DatasetFile(f.rel, f.size, hashed[f.rel], done[f.rel]["etag"]) for f in files]
    host = socket.gethostname()
    marker = datasets.build_marker(
        dataset_id, sealed, sealed_by=datasets.SealedBy(datasets.TOOL, f"from {shown(host)[1:-1]}:"
                                                                       f"{shown(str(source.resolve()))[1:-1]}"),
        now=clock(), start_run=start_run, not_copied=not_copied,
    )
    assert marker["split_hashes"] == split_hashes
    if not store.put_new(marker_key, datasets.marker_bytes(marker)):
        if _sealed_identity(store, dataset_id) != combined:
            raise UploadRejected.one(
                "--name", f"datasets/{dataset_id} was sealed by someone else while this upload ran",
                "choose a new name",
            )
        marker = json.loads(store.get(marker_key))
    store.delete(layout.dataset_claim_key(dataset_id))
    return UploadResult(dataset_id, marker, len(todo), len(files) - len(todo))


def _content_type(rel: str) -> str:
    return mimetypes.guess_type(rel)[0] or "application/octet-stream"


def _chunks(path: Path) -> Any:
    with open(path, "rb") as fh:
        while chunk := fh.read(content_identity.CHUNK):
            yield chunk


def _sealed_identity(store: ObjectStore, dataset_id: str) -> str | None:
    try:
        raw = store.get(layout.dataset_marker_key(dataset_id))
    except ObjectNotFound:
        return None
    try:
        return datasets.parse_marker(dataset_id, raw).content_hash
    except UploadRejected:
        return ""  # a seal, though not one this folder could match


def _take_claim(store: ObjectStore, dataset_id: str, combined: str, total: int,
                clock: Callable[[], datetime]) -> dict[str, Any]:
    claim_key = layout.dataset_claim_key(dataset_id)
    for _ in range(3):
        current = _read_claim(store, claim_key)
        if current is not None:
            if current.get("source_hash") != combined:
                raise UploadRejected.one(
                    "--name",
                    f"datasets/{dataset_id} is being uploaded by another `dataset add` (from "
                    f"{shown(str(current.get('host', '?')))[1:-1]}, started {current.get('started_at', '?')}) with "
                    "other files",
                    "choose another name, or wait for that upload (`nyanops datasets --bucket` shows it)",
                )
            current.setdefault("uploaded", {})
            return current
        if next(iter(store.list(layout.dataset_prefix(dataset_id))), None) is not None:
            raise UploadRejected.one(
                "--name",
                f"datasets/{dataset_id} already has files (uploaded some other way; the pipeline seals them)",
                "choose a new name (datasets are immutable)",
            )
        claim = {
            "tool": datasets.TOOL,
            "host": socket.gethostname(),
            "started_at": clock().isoformat(timespec="seconds"),
            "source_hash": combined,
            "files": total,
            "uploaded": {},
        }
        if store.put_new(claim_key, _dump(claim)):
            return claim
    raise UploadRejected.one("--name", f"datasets/{dataset_id}: its upload claim keeps changing",
                             "another `dataset add` is racing for this id; choose another name")


def _read_claim(store: ObjectStore, key: str) -> dict[str, Any] | None:
    try:
        doc = json.loads(store.get(key))
    except ObjectNotFound:
        return None
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def _upload_all(store: ObjectStore, prefix: str, todo: list[SourceFile], hashed: dict[str, str],
                done: dict[str, dict[str, str]], claim: dict[str, Any], dataset_id: str, jobs: int,
                progress: Progress, sleep: Callable[[float], None]) -> None:
    claim_key = layout.dataset_claim_key(dataset_id)
    last_saved = time.monotonic()

    def one(f: SourceFile) -> tuple[SourceFile, str]:
        body = f.path.read_bytes()
        if content_identity.file_hash(body) != hashed[f.rel]:
            raise UploadFailed(f"{f.rel} changed while it was being uploaded; run the command again")
        for attempt in range(ATTEMPTS):
            try:
                etag = store.put(prefix + f.rel, body, content_type=_content_type(f.rel))
                if not etag:
                    raise UploadFailed(f"{f.rel}: the bucket gave no ETag")
                return f, etag
            except UploadFailed:
                raise
            except Exception as exc:
                if attempt == ATTEMPTS - 1:
                    raise UploadFailed(f"{f.rel}: {type(exc).__name__}: {exc}") from exc
                sleep(min(8.0, 0.5 * 2**attempt))
        raise AssertionError("unreachable")

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        pending = {pool.submit(one, f) for f in todo}
        try:
            while pending:
                finished, pending = wait(pending, timeout=CLAIM_EVERY_SECONDS, return_when=FIRST_EXCEPTION)
                failures = [fut.exception() for fut in finished if fut.exception() is not None]
                for future in finished:
                    if future.exception() is None:
                        f, etag = future.result()
                        done[f.rel] = {"sha256": hashed[f.rel], "etag": etag}
                        progress.add(f.size)
                if failures:
                    raise failures[0]  # every success before it is recorded in the claim (below)
                if time.monotonic() - last_saved >= CLAIM_EVERY_SECONDS:
                    store.put(claim_key, _dump({**claim, "uploaded": done}))
                    last_saved = time.monotonic()
        finally:
            for future in pending:
                future.cancel()
            store.put(claim_key, _dump({**claim, "uploaded": done}))  # what a re-run can skip


def _check_complete(store: ObjectStore, dataset_id: str, files: list[SourceFile], done: dict[str, dict[str, str]]
                    ) -> None:
    prefix = layout.dataset_prefix(dataset_id)
    listed = {o.key[len(prefix):]: o.etag for o in store.list(prefix)}
    listed.pop(layout.DATASET_CLAIM, None)
    expected = {f.rel: done[f.rel]["etag"] for f in files}
    strangers = sorted(set(listed) - set(expected))
    changed = sorted(rel for rel, etag in expected.items() if listed.get(rel) != etag)
    if strangers or changed:
        raise UploadRejected.one(
            f"datasets/{dataset_id}",
            "objects this upload did not write are in the prefix"
            + (f": {', '.join(shown(prefix + s)[1:-1] for s in strangers[:5])}" if strangers else "")
            + (f"; changed or missing: {', '.join(shown(prefix + c)[1:-1] for c in changed[:5])}" if changed else ""),
            "nothing was sealed; remove what does not belong and run the same command again, or use a new name",
        )


def _dump(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, indent=1, ensure_ascii=False).encode("utf-8", "backslashreplace")
