"""The dataset side of ``nyanops watch``: scans of the local bucket turned into object events for the same
sealing core as on AWS, with the clock under the test's control."""

from __future__ import annotations

import io
import json
import os
import shutil
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from nyanops.core import dataset as datasets
from nyanops.core import layout
from nyanops.core.dataset_registry import REFUSED, SEALED, WAITING
from nyanops.core.sealing import REFUSED_NOW, SEALED_NOW
from nyanops.core.start_pipeline import Outcome
from nyanops.local.dataset_watch import DatasetWatcher
from nyanops.local.datasets import add_dataset
from nyanops.local.progress import Progress
from nyanops.local.runner import ConsoleNotifier, LocalPipeline

QUIET = 5.0


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 28, 6, 43, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def console() -> io.StringIO:
    return io.StringIO()


@pytest.fixture
def pipeline(tmp_path: Path, console: io.StringIO) -> Iterator[LocalPipeline]:
    p = LocalPipeline(tmp_path / "root", Progress(console, interactive=False))
    try:
        yield p
    finally:
        p.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def watcher(pipeline: LocalPipeline, clock: Clock) -> Iterator[DatasetWatcher]:
    w = DatasetWatcher(pipeline.store, pipeline.db, ConsoleNotifier(pipeline.progress), QUIET)
    w.deps.clock = clock
    yield w


def photos(root: Path, classes: tuple[str, ...] = ("mike", "tama"), per_class: int = 2) -> Path:
    for split in layout.SPLITS:
        for cls in classes:
            (root / split / cls).mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                (root / split / cls / f"{i}.jpg").write_bytes(f"\xff\xd8 {split} {cls} {i}".encode())
    return root


def drop(pipeline: LocalPipeline, folder: Path, dataset_id: str) -> Path:
    """What `cp -r folder bucket/datasets/<id>` does."""
    target = pipeline.store.directory / layout.DATASETS_PREFIX / dataset_id
    shutil.copytree(folder, target)
    return target


def test_a_dropped_folder_is_sealed_once_it_has_been_quiet(pipeline: LocalPipeline, watcher: DatasetWatcher,
                                                           clock: Clock, tmp_path: Path) -> None:
    drop(pipeline, photos(tmp_path / "photos"), "cats-drop")
    first = watcher.scan()
    assert [(n.dataset_id, n.state, n.noted) for n in first.noted] == [("cats-drop", WAITING, 12)]
    assert first.sealed == []
    clock.advance(QUIET - 1)
    assert watcher.scan().sealed == [], "not quiet long enough"
    clock.advance(2)
    [sealed] = watcher.scan().sealed
    assert sealed.outcome == SEALED_NOW and sealed.marker is not None
    seal = datasets.parse_marker("cats-drop", pipeline.store.get(layout.dataset_marker_key("cats-drop")))
    assert seal.sealed_by.tool == "pipeline" and len(seal.files) == 12 and seal.start_run is True
    assert watcher.registry.get("cats-drop").state == SEALED  # type: ignore[union-attr]
    # The seal starts the run through StartPipeline, exactly as a tool's seal does.
    pipeline.store.put(layout.code_bundle_key("c" * 64), b"a code bundle")
    [started] = pipeline.fire(layout.dataset_marker_key("cats-drop"))
    assert started.outcome is Outcome.STARTED
    clock.advance(60)
    again = watcher.scan()
    assert again.sealed == [] and [n.state for n in again.noted] == [SEALED]  # the seal's own event, noted
    assert watcher.scan().noted == [], "nothing new"


def test_an_upload_still_going_keeps_the_dataset_waiting(pipeline: LocalPipeline, watcher: DatasetWatcher,
                                                         clock: Clock, tmp_path: Path) -> None:
    target = drop(pipeline, photos(tmp_path / "photos"), "cats-slow")
    watcher.scan()
    for i in range(3):  # one more photo every few seconds, each before the quiet period ends
        clock.advance(QUIET - 1)
        (target / "train" / "mike" / f"late-{i}.jpg").write_bytes(b"\xff\xd8 more")
        assert watcher.scan().sealed == []
    clock.advance(QUIET + 1)
    [sealed] = watcher.scan().sealed
    assert sealed.outcome == SEALED_NOW and sealed.marker is not None and sealed.marker["num_images"] == 15


def test_a_late_file_is_refused_once_and_a_replaced_one_too(pipeline: LocalPipeline, watcher: DatasetWatcher,
                                                            clock: Clock, tmp_path: Path,
                                                            console: io.StringIO) -> None:
    target = drop(pipeline, photos(tmp_path / "photos"), "cats-late")
    watcher.scan()
    clock.advance(QUIET + 1)
    watcher.scan()
    seal = pipeline.store.get(layout.dataset_marker_key("cats-late"))
    (target / "val" / "tama" / "stray.jpg").write_bytes(b"\xff\xd8 stray")
    replaced = target / "test" / "mike" / "0.jpg"
    replaced.write_bytes(b"\xff\xd8 another photo")
    os.utime(replaced, ns=(1, 1))  # another version whatever the clock says
    [noted] = watcher.scan().noted
    assert sorted(noted.late_refused) == ["datasets/cats-late/test/mike/0.jpg", "datasets/cats-late/val/tama/stray.jpg"]
    printed = console.getvalue()
    assert printed.count("[notification] nyanops: file refused: datasets/cats-late is sealed") == 2
    record = json.loads(pipeline.store.get(layout.rejection_key("datasets/cats-late/val/tama/stray.jpg")))
    assert "arrived after datasets/cats-late was sealed" in record["problems"][0]["problem"]
    assert watcher.scan().noted == [] and printed == console.getvalue(), "one notification per file version"
    assert pipeline.store.get(layout.dataset_marker_key("cats-late")) == seal  # nothing changed
    [refused] = pipeline.fire(layout.dataset_marker_key("cats-late"))
    assert refused.outcome is Outcome.REJECTED  # runs naming it are refused while the late files are there
    assert "not sealed (added after _dataset.json): datasets/cats-late/val/tama/stray.jpg" in refused.problems[
        0].problem
    assert "replaced after sealing (size or ETag differ): datasets/cats-late/test/mike/0.jpg" in refused.problems[
        0].problem


def test_a_refused_prefix_is_checked_again_after_the_fix(pipeline: LocalPipeline, watcher: DatasetWatcher,
                                                         clock: Clock, tmp_path: Path, console: io.StringIO) -> None:
    target = drop(pipeline, photos(tmp_path / "photos"), "cats-notes")
    (target / "train" / "mike" / "notes.txt").write_text("feed Tama")
    watcher.scan()
    clock.advance(QUIET + 1)
    [refused] = watcher.scan().sealed
    assert refused.outcome == REFUSED_NOW and "non-image files: datasets/cats-notes/train/mike/notes.txt" in (
        refused.detail)
    assert watcher.registry.get("cats-notes").state == REFUSED  # type: ignore[union-attr]
    clock.advance(600)
    assert watcher.scan().sealed == [], "unchanged: not looked at again"
    assert console.getvalue().count("nyanops: dataset refused: datasets/cats-notes") == 1
    (target / "train" / "mike" / "notes.txt").unlink()  # the fix is a removal
    assert [n.state for n in watcher.scan().noted] == [WAITING]
    clock.advance(QUIET + 1)
    [sealed] = watcher.scan().sealed
    assert sealed.outcome == SEALED_NOW


def test_a_dataset_added_by_the_tool_is_sealed_and_none_of_its_files_is_late(
        pipeline: LocalPipeline, watcher: DatasetWatcher, clock: Clock, tmp_path: Path) -> None:
    add_dataset(pipeline.store, photos(tmp_path / "photos"), "cats-tool")
    [noted] = watcher.scan().noted
    assert noted.state == SEALED and noted.late_refused == []
    clock.advance(QUIET + 1)
    assert watcher.scan().sealed == []


def test_a_restarted_watch_notes_nothing_twice(pipeline: LocalPipeline, watcher: DatasetWatcher, clock: Clock,
                                               tmp_path: Path) -> None:
    drop(pipeline, photos(tmp_path / "photos"), "cats-restart")
    watcher.scan()
    restarted = DatasetWatcher(pipeline.store, pipeline.db, watcher.deps.notifier, QUIET)
    restarted.deps.clock = clock
    assert restarted.scan().noted == []
    clock.advance(QUIET + 1)
    assert [s.outcome for s in restarted.scan().sealed] == [SEALED_NOW]


def test_an_old_format_1_dataset_is_not_turned_into_late_files(pipeline: LocalPipeline, watcher: DatasetWatcher,
                                                               tmp_path: Path) -> None:
    target = drop(pipeline, photos(tmp_path / "photos"), "cats-old")
    (target / layout.DATASET_MARKER).write_text(json.dumps({"format": 1, "content_hash": "0" * 64}))
    [noted] = watcher.scan().noted
    assert noted.state == SEALED and noted.late_refused == []
    [refused] = pipeline.fire(layout.dataset_marker_key("cats-old"))
    assert refused.outcome is Outcome.REJECTED and "is format 1" in refused.problems[0].problem


def test_a_folder_whose_name_is_not_utf8_is_skipped(pipeline: LocalPipeline, watcher: DatasetWatcher,
                                                    tmp_path: Path) -> None:
    bad = os.fsencode(pipeline.store.directory / layout.DATASETS_PREFIX) + b"/caf\xe9"
    os.makedirs(bad + b"/train/mike")
    with open(bad + b"/train/mike/0.jpg", "wb") as fh:
        fh.write(b"\xff\xd8")
    result = watcher.scan()
    assert result.noted == [] and result.skipped == ["datasets/caf\udce9"]


def test_a_file_name_that_is_not_utf8_gets_the_prefix_refused(pipeline: LocalPipeline, watcher: DatasetWatcher,
                                                               clock: Clock, tmp_path: Path) -> None:
    target = drop(pipeline, photos(tmp_path / "photos"), "cats-latin1")
    with open(os.fsencode(target / "train" / "mike") + b"/caf\xe9.jpg", "wb") as fh:
        fh.write(b"\xff\xd8 latin-1 name")
    watcher.scan()
    clock.advance(QUIET + 1)
    [refused] = watcher.scan().sealed
    assert refused.outcome == REFUSED_NOW
    assert "file name is not valid UTF-8: 'datasets/cats-latin1/train/mike/caf\\udce9.jpg'" in refused.detail


def test_a_prefix_too_large_for_one_seal_is_refused_with_the_tool_as_the_fix(
        pipeline: LocalPipeline, watcher: DatasetWatcher, clock: Clock, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from nyanops.core import sealing

    monkeypatch.setattr(sealing, "MAX_SEAL_OBJECTS", 11)
    drop(pipeline, photos(tmp_path / "photos"), "cats-big")  # 12 files
    watcher.scan()
    clock.advance(QUIET + 1)
    [refused] = watcher.scan().sealed
    assert refused.outcome == REFUSED_NOW
    assert "has 12 files" in refused.detail and "nyanops dataset add DIR --bucket B" in refused.detail


def test_a_readme_beside_the_splits_is_left_out_of_the_seal_and_named(
        pipeline: LocalPipeline, watcher: DatasetWatcher, clock: Clock, tmp_path: Path) -> None:
    folder = photos(tmp_path / "photos")
    (folder / "README.md").write_text("Mike and Tama")
    (folder / "SOURCES.tsv").write_text("0.jpg\tmine")
    drop(pipeline, folder, "cats-readme")
    watcher.scan()
    clock.advance(QUIET + 1)
    [sealed] = watcher.scan().sealed
    assert sealed.outcome == SEALED_NOW and sealed.marker is not None
    assert sealed.marker["not_copied"] == ["README.md", "SOURCES.tsv"] and sealed.marker["num_images"] == 12
    pipeline.store.put(layout.code_bundle_key("c" * 64), b"a code bundle")
    [started] = pipeline.fire(layout.dataset_marker_key("cats-readme"))
    assert started.outcome is Outcome.STARTED
