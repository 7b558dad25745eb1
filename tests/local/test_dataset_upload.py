"""``dataset add --bucket``'s uploader (nyanops.dataset_upload) over the ObjectStore port, with a store that
fails on purpose: retries, progress lines, what an interrupted upload leaves, and the resume."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from nyanops.core import dataset as datasets
from nyanops.core import layout
from nyanops.core.rejection import UploadRejected
from nyanops.dataset_upload import UploadFailed, upload_dataset
from nyanops.local.bucket import LocalObjectStore


class Flaky(LocalObjectStore):
    """Image PUTs fail ``failures`` times in a row, then succeed; or always, after ``give_up_after`` files."""

    def __init__(self, directory: Path, failures: int = 0, give_up_after: int | None = None) -> None:
        super().__init__(directory)
        self.failures, self.give_up_after, self.images = failures, give_up_after, 0

    def put(self, key: str, body: bytes, content_type: str = "application/json") -> str | None:
        if key.endswith(".jpg"):
            if self.give_up_after is not None and self.images >= self.give_up_after:
                raise ConnectionError("the network went away")
            if self.failures:
                self.failures -= 1
                raise ConnectionError("a passing fault")
            self.images += 1
        return super().put(key, body, content_type)


def photos(folder: Path, per_class: int = 5) -> Path:
    for split in layout.SPLITS:
        for cls in ("mike", "tama"):
            (folder / split / cls).mkdir(parents=True)
            for i in range(per_class):
                (folder / split / cls / f"{i}.jpg").write_bytes(f"\xff\xd8 {split} {cls} {i}".encode())
    return folder


def test_passing_faults_are_retried_and_progress_is_reported(tmp_path: Path) -> None:
    store = Flaky(tmp_path / "bucket", failures=3)
    out = io.StringIO()
    sleeps: list[float] = []
    result = upload_dataset(store, photos(tmp_path / "photos"), "cats", jobs=1, progress_out=out, sleep=sleeps.append)
    assert result.uploaded == 30 and result.skipped == 0 and sleeps == [0.5, 1.0, 2.0]
    lines = out.getvalue().splitlines()
    assert 1 < len(lines) <= 11 and lines[-1].startswith("uploading 30/30 files")
    seal = datasets.parse_marker("cats", store.get(layout.dataset_marker_key("cats")))
    assert len(seal.files) == 30 and all(f.etag for f in seal.files.values())
    assert store.head(layout.dataset_claim_key("cats")) is None, "the claim goes once sealed"


def test_an_upload_that_keeps_failing_stops_unsealed_and_the_rerun_resumes(tmp_path: Path) -> None:
    folder = photos(tmp_path / "photos")
    store = Flaky(tmp_path / "bucket", give_up_after=12)
    with pytest.raises(UploadFailed, match="the network went away"):
        upload_dataset(store, folder, "cats", jobs=1, progress_out=io.StringIO(), sleep=lambda s: None)
    assert store.head(layout.dataset_marker_key("cats")) is None, "never sealed half-way"
    claim: dict[str, Any] = json.loads(store.get(layout.dataset_claim_key("cats")))
    assert len(claim["uploaded"]) == 12 and claim["files"] == 30
    store.give_up_after = None
    result = upload_dataset(store, folder, "cats", jobs=4, progress_out=io.StringIO())
    assert (result.uploaded, result.skipped) == (18, 12)
    assert len(datasets.parse_marker("cats", store.get(layout.dataset_marker_key("cats"))).files) == 30
    again = upload_dataset(store, folder, "cats", progress_out=io.StringIO())
    assert again.identical and again.uploaded == 0


def test_a_sealed_id_with_other_content_is_refused(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "bucket")
    upload_dataset(store, photos(tmp_path / "a"), "cats", progress_out=io.StringIO())
    with pytest.raises(UploadRejected, match="sealed already with other content"):
        upload_dataset(store, photos(tmp_path / "b", per_class=6), "cats", progress_out=io.StringIO())


def test_files_dropped_into_the_prefix_meanwhile_stop_the_seal(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "bucket")
    folder = photos(tmp_path / "photos")
    store.put("datasets/cats/_uploading.json", b"{}")  # not ours: refused, nothing uploaded
    with pytest.raises(UploadRejected, match="being uploaded by another"):
        upload_dataset(store, folder, "cats", progress_out=io.StringIO())
    assert [o.key for o in store.list("datasets/")] == ["datasets/cats/_uploading.json"]
