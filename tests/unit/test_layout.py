"""The storage layout: which uploads start runs, and the keys the pipeline derives."""

from __future__ import annotations

import pytest

from nyanops.core import layout
from nyanops.core.layout import KeyKind


@pytest.mark.parametrize(
    ("key", "kind", "dataset_id", "manifest_name"),
    [
        ("datasets/2026-11-28T064300Z/_dataset.json", KeyKind.DATASET_READY, "2026-11-28T064300Z", None),
        ("datasets/my.cats_v2/_dataset.json", KeyKind.DATASET_READY, "my.cats_v2", None),
        ("datasets/a/b/_dataset.json", KeyKind.IGNORED, None, None),
        ("datasets//_dataset.json", KeyKind.IGNORED, None, None),
        ("datasets/_dataset.json", KeyKind.IGNORED, None, None),
        ("datasets/x/train/bengal/a.jpg", KeyKind.IGNORED, None, None),
        ("datasets/x/_dataset.json.bak", KeyKind.IGNORED, None, None),
        ("manifests/epochs10.json", KeyKind.MANIFEST, None, "epochs10"),
        ("manifests/sub/dir/x.json", KeyKind.MANIFEST, None, "sub/dir/x"),
        ("manifests/ねこ.json", KeyKind.MANIFEST, None, "ねこ"),
        ("manifests/.json", KeyKind.IGNORED, None, None),
        ("manifests/x.yaml", KeyKind.IGNORED, None, None),
        ("manifests/", KeyKind.IGNORED, None, None),
        ("rejected/manifests/x.json.error.json", KeyKind.IGNORED, None, None),
        ("code/" + "a" * 64 + "/sourcedir.tar.gz", KeyKind.IGNORED, None, None),
        ("runs/m-x/evaluation/evaluation.json", KeyKind.IGNORED, None, None),
        ("other/manifests/x.json", KeyKind.IGNORED, None, None),
    ],
)
def test_classify_key(key: str, kind: KeyKind, dataset_id: str | None, manifest_name: str | None) -> None:
    classified = layout.classify_key(key)
    assert (classified.kind, classified.dataset_id, classified.manifest_name) == (kind, dataset_id, manifest_name)
    assert classified.key == key


def test_rejection_file_never_starts_a_run() -> None:
    for key in ("manifests/x.json", "datasets/d/_dataset.json"):
        assert layout.classify_key(layout.rejection_key(key)).kind is KeyKind.IGNORED


def test_derived_keys() -> None:
    h = "0" * 64
    assert layout.dataset_marker_key("d") == "datasets/d/_dataset.json"
    assert layout.dataset_split_prefix("d", "val") == "datasets/d/val/"
    assert layout.manifest_key("epochs10") == "manifests/epochs10.json"
    assert layout.code_bundle_key(h) == f"code/{h}/sourcedir.tar.gz"
    assert layout.code_source_prefix(h) == f"code/{h}/src/"
    assert layout.evaluation_key("m-x") == "runs/m-x/evaluation/evaluation.json"
    assert layout.run_model_prefix("m-x") == "runs/m-x/model/"
    assert layout.run_checkpoint_prefix("m-x") == "runs/m-x/checkpoints/"
    assert layout.rejection_key("manifests/a.json") == "rejected/manifests/a.json.error.json"
    with pytest.raises(ValueError, match="unknown split"):
        layout.dataset_split_prefix("d", "holdout")


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("code/" + "a" * 64 + "/sourcedir.tar.gz", "a" * 64),
        ("code/" + "A" * 64 + "/sourcedir.tar.gz", None),
        ("code/abc/sourcedir.tar.gz", None),
        ("code/" + "a" * 64 + "/src/train.py", None),
        ("x/code/" + "a" * 64 + "/sourcedir.tar.gz", None),
    ],
)
def test_parse_code_bundle_key(key: str, expected: str | None) -> None:
    assert layout.parse_code_bundle_key(key) == expected


def test_s3_uris() -> None:
    assert layout.s3_uri("b", "k/x") == "s3://b/k/x"
    assert layout.parse_s3_uri("s3://b/k/x") == ("b", "k/x")
    assert layout.parse_s3_uri("s3://b") == ("b", "")
    for bad in ("https://b/k", "s3:///k", "b/k"):
        with pytest.raises(ValueError):
            layout.parse_s3_uri(bad)
