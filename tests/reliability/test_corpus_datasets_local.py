"""The datasets corpus (``corpus_datasets.py``) on the local side: files written into the local bucket as
``cp`` would (any name the file system holds), ``nyanops watch``'s dataset side with a controlled clock, the
real StartPipeline handler."""

from __future__ import annotations

import io
import json
import os
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from nyanops.core import layout
from nyanops.local.dataset_watch import DatasetWatcher
from nyanops.local.runner import ConsoleNotifier, LocalPipeline

from .corpus_datasets import CASES, DatasetCase, run_case

QUIET = 5.0


class LocalSide:
    def __init__(self, pipeline: LocalPipeline, console: io.StringIO) -> None:
        self.pipeline, self.console = pipeline, console
        self.now = datetime(2026, 11, 28, 6, 43, tzinfo=timezone.utc)
        self.watcher = DatasetWatcher(pipeline.store, pipeline.db, ConsoleNotifier(pipeline.progress), QUIET)
        self.watcher.deps.clock = lambda: self.now
        pipeline.store.put(layout.code_bundle_key("c" * 64), b"a code bundle")

    def _path(self, key: str) -> bytes:
        return os.fsencode(self.pipeline.store.directory) + b"/" + key.encode("utf-8", "surrogateescape")

    def _write(self, key: str, body: bytes | None) -> None:
        path = self._path(key)
        if body is None:
            os.unlink(path)
            return
        os.makedirs(os.path.dirname(path), exist_ok=True)
        existed = os.path.exists(path)
        with open(path, "wb") as fh:
            fh.write(body)
        if existed:  # a new version even within the clock's resolution
            st = os.stat(path)
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))

    def _scan(self) -> Any:
        return self.watcher.scan()

    def drop(self, dataset_id: str, files: dict[str, bytes], note: bool) -> None:
        for rel, body in files.items():
            self._write(layout.dataset_prefix(dataset_id) + rel, body)
        if note:
            assert self._scan().sealed == []

    def replay(self, dataset_id: str) -> None:
        prefix = layout.dataset_prefix(dataset_id).encode("utf-8", "surrogateescape")
        self.pipeline.db.execute("DELETE FROM dataset_objects_seen WHERE substr(key, 1, ?) = ?", (len(prefix), prefix))
        self._scan()

    def seal(self) -> list[str]:
        self.now += timedelta(seconds=QUIET + 1)
        return [r.outcome for r in self._scan().sealed]

    def put_seal(self, dataset_id: str, body: bytes, note: bool) -> None:
        self._write(layout.dataset_marker_key(dataset_id), body)
        if note:
            self._scan()

    def etag(self, key: str) -> str | None:
        info = self.pipeline.store.head(key)
        return info.etag if info else None

    def change(self, dataset_id: str, changes: dict[str, bytes | None], note: bool, deliveries: int) -> None:
        for rel, body in changes.items():
            self._write(layout.dataset_prefix(dataset_id) + rel, body)
        if note:
            self._scan()
            for _ in range(deliveries - 1):  # the same events again: forget them, scan again
                for rel in changes:
                    key = (layout.dataset_prefix(dataset_id) + rel).encode("utf-8", "surrogateescape")
                    self.pipeline.db.execute("DELETE FROM dataset_objects_seen WHERE key = ?", (key,))
                self._scan()

    def start(self, dataset_id: str, deliveries: int) -> list[str]:
        return [r.outcome.value for _ in range(deliveries)
                for r in self.pipeline.fire(layout.dataset_marker_key(dataset_id))]

    def record(self, key: str) -> dict[str, Any] | None:
        info = self.pipeline.store.head(layout.rejection_key(key))
        return json.loads(self.pipeline.store.get(layout.rejection_key(key))) if info else None

    def exists(self, key: str) -> bool:
        return self.pipeline.store.head(key) is not None

    def notifications(self) -> int:
        return len(re.findall(r"\[notification\] ", self.console.getvalue()))

    def executions(self) -> int:
        return len(self.pipeline.executions.list())

    def snapshot(self) -> dict[str, str]:
        return {o.key: o.version_id or "" for o in self.pipeline.store.list(layout.DATASETS_PREFIX)}


LOCAL_CASES = [c for c in CASES if "local" in c.sides]


@pytest.mark.parametrize("case", LOCAL_CASES, ids=[c.id for c in LOCAL_CASES])
def test_dataset_case_locally(case: DatasetCase, pipeline: LocalPipeline, console: io.StringIO) -> None:
    run_case(case, LocalSide(pipeline, console))
    assert "Traceback" not in console.getvalue()


def test_the_corpus_is_large_and_described() -> None:
    assert len(CASES) >= 30 and len({c.id for c in CASES}) == len(CASES)
    assert all(c.input and c.layer for c in CASES)
    assert all(set(c.sides) <= {"local", "moto"} and c.sides for c in CASES)
    assert Path(__file__).with_name("corpus_datasets.py").is_file()
