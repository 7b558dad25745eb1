"""Dataset checks on a listing: structure, marker format, completeness against the marker."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import pytest

from nyanops.core import content_identity
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


SEALED_BY = ds.SealedBy(ds.TOOL, "unit tests")


def marker(fs: list[ds.DatasetFile] | None = None, **kwargs) -> ds.Marker:
    doc = ds.build_marker(DID, fs if fs is not None else files(), sealed_by=SEALED_BY, **kwargs)
    return ds.parse_marker(DID, ds.marker_bytes(doc))


def test_build_and_parse_marker_round_trip() -> None:
    now = datetime(2026, 11, 28, 6, 43, tzinfo=UTC)
    doc = ds.build_marker(DID, files(), sealed_by=SEALED_BY, now=now)
    assert doc["format"] == ds.MARKER_FORMAT == 2
    assert doc["classes"] == ["bengal", "siamese"]
    assert doc["num_images"] == 12 and len(doc["files"]) == 12
    assert doc["sealed_at"] == "2026-11-28T06:43:00+00:00"
    assert doc["sealed_by"] == {"tool": "nyanops dataset add", "detail": "unit tests"}
    assert doc["start_run"] is True
    assert doc["files"]["train/bengal/000.jpg"] == {
        "size": 100, "sha256": hashlib.sha256(b"train/bengal/000.jpg").hexdigest(), "etag": None}
    assert set(doc["split_hashes"]) == {"train", "val", "test"}
    parsed = ds.parse_marker(DID, ds.marker_bytes(doc))
    summary = ds.validate_dataset(DID, files(), parsed)
    assert summary.classes == ("bengal", "siamese")
    assert summary.num_images == 12
    assert summary.content_hash == doc["content_hash"]
    assert summary.split_hashes == doc["split_hashes"]


def test_the_identity_is_content_identity_over_class_relative_paths() -> None:
    """One definition: the split hash is core/content_identity's, over <class>/<file> within the split."""
    fs = files()
    split_hashes, combined = ds.identity(fs)
    train = [(f.path.split("/", 1)[1], f.sha256) for f in fs if f.path.startswith("train/")]
    assert split_hashes["train"] == content_identity.split_hash(train)
    assert combined == content_identity.combined_hash(split_hashes)
    assert ds.identity(list(reversed(fs))) == (split_hashes, combined)
    changed = [ds.DatasetFile(fs[0].path, fs[0].size, "0" * 64), *fs[1:]]
    assert ds.identity(changed)[0]["train"] != split_hashes["train"]
    assert ds.identity(changed)[0]["val"] == split_hashes["val"]
    with pytest.raises(ValueError, match="no sha256"):
        ds.identity([ds.DatasetFile("train/a/b.jpg", 1)])


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"not json", "is not valid JSON"),
        (b"\xff\xfe", "is not valid JSON"),
        (b"[]", "must be a JSON object"),
        (b'{"format": 1, "content_hash": "x", "counts": {"train": {}, "val": {}, "test": {}}}', "is format 1"),
        (b'{"format": 3}', "lacks format=2"),
        (b'{"format": 2, "counts": {"train": {}, "val": {}, "test": {}}}', "content_hash"),
    ],
)
def test_parse_marker_refuses_bad_markers(raw: bytes, fragment: str) -> None:
    with pytest.raises(UploadRejected) as caught:
        ds.parse_marker(DID, raw)
    assert caught.value.problems[0].field == f"datasets/{DID}/_dataset.json"
    assert fragment in caught.value.problems[0].problem
    assert "nyanops dataset add" in caught.value.problems[0].fix


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"content_hash": "0" * 64}, "inconsistent: content_hash"),
        ({"split_hashes.test": "0" * 64}, "inconsistent: split_hashes do not match"),
        ({"counts.train.bengal": 3}, "inconsistent: counts"),
        ({"num_images": 13}, "inconsistent: num_images"),
        ({"classes": ["bengal"]}, "inconsistent: classes"),
        ({"dataset_id": "other"}, "names dataset 'other'"),
        ({"start_run": "no"}, "start_run must be true or false"),
        ({"files.train/bengal/000.jpg.sha256": "abc"}, "needs size"),
        ({"files.train/bengal/000.jpg.size": -1}, "needs size"),
        ({"sealed_by": {"detail": "x"}}, "sealed_by.tool"),
    ],
)
def test_parse_marker_refuses_a_hand_edited_seal(changes: dict, fragment: str) -> None:
    with pytest.raises(UploadRejected) as caught:
        ds.parse_marker(DID, _edit(changes))
    assert fragment in caught.value.problems[0].problem


def _edit(changes: dict) -> bytes:
    doc = ds.build_marker(DID, files(), sealed_by=SEALED_BY)
    for path, value in changes.items():
        if path.startswith("files."):
            rel, _, leaf = path[len("files."):].rpartition(".")
            doc["files"][rel][leaf] = value
            continue
        node = doc
        *parents, last = path.split(".")
        for part in parents:
            node = node[part]
        node[last] = value
    return json.dumps(doc).encode()


def test_incomplete_upload_names_the_missing_files() -> None:
    partial = [f for f in files(per_split=3) if f.path != "train/bengal/002.jpg"]
    with pytest.raises(UploadRejected) as caught:
        ds.validate_dataset(DID, partial, marker(files(per_split=3)))
    [problem] = caught.value.problems
    assert problem.field == f"datasets/{DID}/_dataset.json"
    assert "incomplete or changed" in problem.problem
    assert "lists 18 images" in problem.problem and "the bucket has 17" in problem.problem
    assert f"not in the bucket: datasets/{DID}/train/bengal/002.jpg" in problem.problem
    assert "finish uploading" in problem.fix


def test_a_file_added_after_sealing_is_named() -> None:
    more = [*files(), ds.DatasetFile("train/bengal/late.jpg", 5)]
    with pytest.raises(UploadRejected) as caught:
        ds.validate_dataset(DID, more, marker())
    assert f"not sealed (added after _dataset.json): datasets/{DID}/train/bengal/late.jpg" in caught.value.message


def test_a_file_replaced_with_the_same_count_is_named() -> None:
    """Counts alone would pass: the identity (size and ETag of every sealed file) catches it."""
    sealed = [ds.DatasetFile(f.path, f.size, f.sha256, f"etag-{i}") for i, f in enumerate(files())]
    listed = [ds.DatasetFile(f.path, f.size, etag=f.etag) for f in sealed]
    ds.validate_dataset(DID, listed, marker(sealed))  # unchanged: fine
    listed[3] = ds.DatasetFile(listed[3].path, listed[3].size, etag="a-new-upload")
    with pytest.raises(UploadRejected) as caught:
        ds.validate_dataset(DID, listed, marker(sealed))
    assert f"replaced after sealing (size or ETag differ): datasets/{DID}/{listed[3].path}" in caught.value.message
    resized = [ds.DatasetFile(f.path, f.size + (1 if i == 0 else 0)) for i, f in enumerate(files())]
    with pytest.raises(UploadRejected, match="replaced after sealing"):
        ds.validate_dataset(DID, resized, marker())  # no ETags sealed: sizes still compared
    renamed = [*files()[1:], ds.DatasetFile("train/bengal/zzz.jpg", files()[0].size)]
    with pytest.raises(UploadRejected, match=r"not in the bucket.*not sealed"):
        ds.validate_dataset(DID, renamed, marker())


def test_files_from_listing_skips_the_seal_the_claim_folders_and_other_prefixes() -> None:
    listing = [
        (f"datasets/{DID}/train/bengal/a.jpg", 3, "e1"),
        (f"datasets/{DID}/_dataset.json", 100, "e2"),
        (f"datasets/{DID}/_uploading.json", 100, "e3"),
        (f"datasets/{DID}/train/", 0, "e4"),
        (f"datasets/{DID}x/train/bengal/a.jpg", 3, "e5"),
    ]
    assert ds.files_from_listing(DID, listing) == [ds.DatasetFile("train/bengal/a.jpg", 3, etag="e1")]


@pytest.mark.parametrize(("name", "ok"), [("a.JPG", True), ("a.jpeg", True), ("a.webp", True), ("a.tiff", False),
                                          ("jpg", False)])
def test_is_image_name(name: str, ok: bool) -> None:
    assert ds.is_image_name(name) is ok


def test_build_marker_records_no_run_and_what_was_left_out() -> None:
    doc = ds.build_marker(DID, files(), sealed_by=SEALED_BY, start_run=False, not_copied=["README.md"])
    assert doc["start_run"] is False and doc["not_copied"] == ["README.md"]
    assert ds.parse_marker(DID, ds.marker_bytes(doc)).start_run is False


def test_what_lies_beside_the_splits_is_not_part_of_the_dataset() -> None:
    listing = [
        (f"datasets/{DID}/train/bengal/a.jpg", 3, "e1"),
        (f"datasets/{DID}/README.md", 10, "e2"),
        (f"datasets/{DID}/extra/bengal/b.jpg", 3, "e3"),
        (f"datasets/{DID}/_dataset.json", 100, "e4"),
        (f"datasets/{DID}/_uploading.json", 100, "e5"),
    ]
    assert ds.files_from_listing(DID, listing) == [ds.DatasetFile("train/bengal/a.jpg", 3, etag="e1")]
    assert ds.beside_splits(DID, (k for k, _, _ in listing)) == ["README.md", "extra/bengal/b.jpg"]


# -- what a seal says, read back exactly (mutation testing found these unasserted) -----------------------------
def _refusal(raw: bytes) -> tuple[str, str]:
    with pytest.raises(UploadRejected) as caught:
        ds.parse_marker(DID, raw)
    [problem] = caught.value.problems
    assert problem.field == f"datasets/{DID}/_dataset.json"
    return problem.problem, problem.fix


def test_a_seal_reads_back_who_sealed_it_when_and_whether_it_starts_a_run() -> None:
    when = datetime(2026, 11, 28, 6, 43, tzinfo=UTC)
    parsed = ds.parse_marker(DID, ds.marker_bytes(ds.build_marker(DID, files(), sealed_by=SEALED_BY, now=when)))
    assert (parsed.dataset_id, parsed.sealed_by, parsed.sealed_at, parsed.start_run) == (
        DID, SEALED_BY, "2026-11-28T06:43:00+00:00", True)
    doc = json.loads(_edit({}))
    del doc["sealed_at"], doc["sealed_by"]["detail"], doc["start_run"]
    bare = ds.parse_marker(DID, json.dumps(doc).encode())
    assert (bare.sealed_by, bare.sealed_at, bare.start_run) == (ds.SealedBy(ds.TOOL, ""), "", True)
    assert ds.build_marker(DID, files(), sealed_by=SEALED_BY)["sealed_at"].endswith("+00:00")  # always UTC


def test_a_seal_is_written_as_readable_utf8_json() -> None:
    doc = ds.build_marker(DID, files(("bengal", "sphynx-ä")), sealed_by=SEALED_BY)
    text = ds.marker_bytes(doc).decode("utf-8")
    assert text == json.dumps(doc, indent=2, ensure_ascii=False) + "\n" and "sphynx-ä" in text


def test_a_seal_may_list_a_zero_byte_file_for_the_layout_check_to_name() -> None:
    parsed = ds.parse_marker(DID, _edit({"files.train/bengal/000.jpg.size": 0}))
    assert parsed.files["train/bengal/000.jpg"].size == 0


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"[]", "must be a JSON object"),
        (b'{"format": 2}', "lacks format=2 or has wrong types for: dataset_id, classes, counts, split_hashes, "
                           "content_hash, files, sealed_by"),
        (_edit({"format": 3}), "lacks format=2 or has wrong types for: format"),
        (_edit({"start_run": "no"}), "start_run must be true or false"),
        (_edit({"sealed_by": {"detail": "x"}}), "sealed_by.tool must say who sealed the dataset"),
        (_edit({"files.train/bengal/000.jpg.etag": 5}),
         "files['train/bengal/000.jpg'] needs size (a whole number), sha256 (64 hex digits) and etag"),
        (_edit({"num_images": 13, "content_hash": "0" * 64}),
         "is inconsistent: num_images, content_hash do not match its files"),
    ],
)
def test_a_bad_seal_is_refused_with_exactly_this_problem(raw: bytes, problem: str) -> None:
    assert _refusal(raw)[0] == problem


def test_a_seal_listing_files_outside_the_layout_is_refused_by_name() -> None:
    doc = json.loads(_edit({}))
    doc["files"]["holdout/bengal/x.jpg"] = {"size": 1, "sha256": "0" * 64, "etag": None}
    assert _refusal(json.dumps(doc).encode())[0] == "lists files outside {train,val,test}/<class>/<image>"


def test_a_format_1_seal_says_why_and_how_to_replace_it() -> None:
    raw = b'{"format": 1, "content_hash": "x", "counts": {"train": {}, "val": {}, "test": {}}}'
    assert _refusal(raw) == (
        "is format 1 (written by an earlier nyanops): it records no per-file identity, so it cannot prove which "
        "files a trial learns from",
        "add the folder again as a new dataset with `nyanops dataset add DIR --name NEW-ID` (or upload the images "
        "under a new id and let the pipeline seal them), and name the new id",
    )


def test_a_changed_dataset_names_every_difference_and_the_fix() -> None:
    sealed = files(per_split=3)
    listed = [f for f in sealed if f.path != "train/bengal/002.jpg"] + [ds.DatasetFile("val/bengal/late.jpg", 5)]
    with pytest.raises(UploadRejected) as caught:
        ds.validate_dataset(DID, listed, marker(sealed))
    [problem] = caught.value.problems
    assert problem.problem.split("; ")[1:] == [
        f"not in the bucket: datasets/{DID}/train/bengal/002.jpg",
        f"not sealed (added after _dataset.json): datasets/{DID}/val/bengal/late.jpg",
    ]
    assert problem.fix == (
        "finish uploading every image before _dataset.json; datasets are immutable, so remove files added or "
        "replaced after sealing, or upload the dataset again under a new id"
    )


def test_layout_problems_name_the_dataset_they_are_in() -> None:
    bad = [*files(), ds.DatasetFile("train/bengal/notes.txt", 10)]
    for check in (lambda: ds.build_marker(DID, bad, sealed_by=SEALED_BY),
                  lambda: ds.validate_dataset(DID, bad, marker(files()))):
        with pytest.raises(UploadRejected) as caught:
            check()
        assert f"datasets/{DID}/train/bengal/notes.txt" in problems(caught)


def test_folder_placeholders_are_not_objects_beside_the_splits() -> None:
    keys = [f"datasets/{DID}/notes/", f"datasets/{DID}/README.md", f"datasets/{DID}/train/a/1.jpg"]
    assert ds.beside_splits(DID, keys) == ["README.md"]
