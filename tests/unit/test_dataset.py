"""Dataset checks on a listing: structure, marker format, completeness against the marker."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import pytest

from nyanops.core import dataset as ds
from nyanops.core.rejection import UploadRejected

DID = "2026-11-28T064300Z"


def files(classes: tuple[str, ...] = ("bengal", "siamese"), per_split: int = 2) -> list[ds.DatasetFile]:
    out = []
    for split in ("train", "val", "test"):
        for cls in classes:
            for i in range(per_split):
                path = f"{split}/{cls}/{i:03d}.jpg"
                out.append(ds.DatasetFile(path, 100 + i, hashlib.sha256(path.encode()).hexdigest()))
    return out


def problems(exc: pytest.ExceptionInfo[UploadRejected]) -> str:
    return " | ".join(p.problem for p in exc.value.problems)


def test_good_structure_counts() -> None:
    counts = ds.check_structure(DID, files())
    assert counts == {s: {"bengal": 2, "siamese": 2} for s in ("train", "val", "test")}


def test_non_image_file() -> None:
    bad = [*files(), ds.DatasetFile("train/bengal/notes.txt", 10)]
    with pytest.raises(UploadRejected) as caught:
        ds.check_structure(DID, bad)
    assert f"non-image files: datasets/{DID}/train/bengal/notes.txt" in problems(caught)
    assert caught.value.problems[0].field == "dataset"


def test_zero_byte_image() -> None:
    bad = [*files(), ds.DatasetFile("val/siamese/empty.png", 0)]
    with pytest.raises(UploadRejected) as caught:
        ds.check_structure(DID, bad)
    assert "zero-byte images" in problems(caught) and "empty.png" in problems(caught)
    assert "re-upload" in caught.value.problems[0].fix


def test_misplaced_file() -> None:
    bad = [*files(), ds.DatasetFile("train/a.jpg", 5), ds.DatasetFile("holdout/bengal/a.jpg", 5)]
    with pytest.raises(UploadRejected) as caught:
        ds.check_structure(DID, bad)
    assert "files outside {train,val,test}/<class>/<image>" in problems(caught)


def test_missing_split() -> None:
    only = [f for f in files() if not f.path.startswith("test/")]
    with pytest.raises(UploadRejected) as caught:
        ds.check_structure(DID, only)
    assert "the test split has no images" in problems(caught)


def test_class_set_mismatch() -> None:
    bad = [f for f in files(("bengal", "siamese", "sphynx")) if f.path != "val/sphynx/000.jpg" and
           f.path != "val/sphynx/001.jpg"]
    with pytest.raises(UploadRejected) as caught:
        ds.check_structure(DID, bad)
    assert "the val split lacks classes sphynx" in problems(caught)


def test_one_class() -> None:
    with pytest.raises(UploadRejected) as caught:
        ds.check_structure(DID, files(("bengal",)))
    assert problems(caught) == "only one class"


def test_many_bad_files_are_summarised() -> None:
    bad = [*files(), *(ds.DatasetFile(f"train/bengal/{i}.txt", 1) for i in range(8))]
    with pytest.raises(UploadRejected) as caught:
        ds.check_structure(DID, bad)
    assert "and 3 more" in problems(caught)


def test_build_and_parse_marker_round_trip() -> None:
    now = datetime(2026, 11, 28, 6, 43, tzinfo=UTC)
    marker = ds.build_marker(DID, files(), now=now)
    assert marker["format"] == ds.MARKER_FORMAT
    assert marker["classes"] == ["bengal", "siamese"]
    assert marker["num_images"] == 12
    assert marker["created_at"] == "2026-11-28T06:43:00+00:00"
    parsed = ds.parse_marker(DID, json.dumps(marker).encode())
    summary = ds.validate_dataset(DID, files(), parsed)
    assert summary.classes == ("bengal", "siamese")
    assert summary.num_images == 12
    assert summary.content_hash == marker["content_hash"]


def test_content_hash_depends_on_bytes_and_paths_not_order() -> None:
    fs = files()
    assert ds.content_hash(fs) == ds.content_hash(list(reversed(fs)))
    changed = [ds.DatasetFile(fs[0].path, fs[0].size, "0" * 64), *fs[1:]]
    assert ds.content_hash(changed) != ds.content_hash(fs)
    with pytest.raises(ValueError, match="no sha256"):
        ds.content_hash([ds.DatasetFile("train/a/b.jpg", 1)])


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"not json", "is not valid JSON"),
        (b"\xff\xfe", "is not valid JSON"),
        (b"[]", "must be a JSON object"),
        (b'{"format": 2, "content_hash": "x", "counts": {"train": {}, "val": {}, "test": {}}}', "lacks format=1"),
        (b'{"format": 1, "counts": {"train": {}, "val": {}, "test": {}}}', "content_hash"),
        (b'{"format": 1, "content_hash": "x", "counts": {"train": {}, "val": {}}}', "per-split counts"),
        (b'{"format": 1, "content_hash": "x", "counts": {"train": {"a": true}, "val": {}, "test": {}}}', "counts"),
        (b'{"format": 1, "content_hash": "x", "counts": {"train": {"a": "2"}, "val": {}, "test": {}}}', "counts"),
    ],
)
def test_parse_marker_refuses_bad_markers(raw: bytes, fragment: str) -> None:
    with pytest.raises(UploadRejected) as caught:
        ds.parse_marker(DID, raw)
    assert caught.value.problems[0].field == f"datasets/{DID}/_dataset.json"
    assert fragment in caught.value.problems[0].problem
    assert "nyanops dataset add" in caught.value.problems[0].fix


def test_incomplete_upload_against_marker_counts() -> None:
    partial = [f for f in files(per_split=3) if f.path != "train/bengal/002.jpg"]
    marker = ds.build_marker(DID, files(per_split=3))
    with pytest.raises(UploadRejected) as caught:
        ds.validate_dataset(DID, partial, marker)
    problem = caught.value.problems[0]
    assert problem.field == f"datasets/{DID}/_dataset.json"
    assert "incomplete or changed" in problem.problem
    assert "lists 18 images" in problem.problem and "the bucket has 17" in problem.problem
    assert "finish uploading" in problem.fix


def test_extra_images_after_marker_are_a_change() -> None:
    marker = ds.build_marker(DID, files())
    more = [*files(), ds.DatasetFile("train/bengal/late.jpg", 5)]
    with pytest.raises(UploadRejected, match="incomplete or changed"):
        ds.validate_dataset(DID, more, marker)


def test_files_from_listing_skips_marker_folders_and_other_prefixes() -> None:
    listing = [
        (f"datasets/{DID}/train/bengal/a.jpg", 3),
        (f"datasets/{DID}/_dataset.json", 100),
        (f"datasets/{DID}/train/", 0),
        (f"datasets/{DID}x/train/bengal/a.jpg", 3),
    ]
    assert ds.files_from_listing(DID, listing) == [ds.DatasetFile("train/bengal/a.jpg", 3)]


@pytest.mark.parametrize(("name", "ok"), [("a.JPG", True), ("a.jpeg", True), ("a.webp", True), ("a.tiff", False),
                                          ("jpg", False)])
def test_is_image_name(name: str, ok: bool) -> None:
    assert ds.is_image_name(name) is ok
