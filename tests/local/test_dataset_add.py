"""`nyanops dataset add` on folders shaped like real ones: notes and licences beside the splits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nyanops.core import layout
from nyanops.core.rejection import UploadRejected
from nyanops.local.bucket import LocalObjectStore
from nyanops.local.datasets import add_dataset

# A real 1x1 JPEG, so the folder also passes the decode check where Pillow is installed.
JPEG_1X1 = bytes.fromhex(
    "ffd8ffe000104a46494600010100000100010000ffdb004300080606070605080707070909080a0c140d0c0b0b0c1912130f"
    "141d1a1f1e1d1a1c1c20242e2720222c231c1c2837292c30313434341f27393d38323c2e333432ffc0000b08000100010101"
    "1100ffc4001f0000010501010101010100000000000000000102030405060708090a0bffc400b5100002010303020403050504"
    "040000017d01020300041105122131410613516107227114328191a1082342b1c11552d1f02433627282090a161718191a2526"
    "2728292a3435363738393a434445464748494a535455565758595a636465666768696a737475767778797a83848586878889"
    "8a92939495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae1e2e3e4"
    "e5e6e7e8e9eaf1f2f3f4f5f6f7f8f9faffda0008010100003f00fbd0ffd9"
)


def make_folder(root: Path) -> Path:
    for split in layout.SPLITS:
        for cls in ("mike", "tama"):
            (root / split / cls).mkdir(parents=True)
            (root / split / cls / "a.jpg").write_bytes(JPEG_1X1)
    return root


def test_files_beside_the_splits_are_left_out_and_listed(tmp_path: Path) -> None:
    source = make_folder(tmp_path / "cats")
    (source / "README.md").write_text("photos of Mike and Tama")
    (source / "SOURCES.tsv").write_text("a.jpg\tmine")
    (source / ".DS_Store").write_bytes(b"\0")
    store = LocalObjectStore(tmp_path / "bucket")
    dataset_id, marker = add_dataset(store, source, "mine")
    assert marker["not_copied"] == ["README.md", "SOURCES.tsv"]
    keys = [o.key for o in store.list(layout.dataset_prefix(dataset_id))]
    assert all(k.split("/")[2] in layout.SPLITS for k in keys if not k.endswith(layout.DATASET_MARKER))
    assert json.loads(store.get(layout.dataset_marker_key("mine")))["num_images"] == 6


def test_a_stray_file_inside_a_split_is_refused_and_nothing_is_copied(tmp_path: Path) -> None:
    source = make_folder(tmp_path / "cats")
    (source / "train" / "notes.txt").write_text("todo")
    store = LocalObjectStore(tmp_path / "bucket")
    with pytest.raises(UploadRejected) as refused:
        add_dataset(store, source, "mine")
    assert "datasets/mine/train/notes.txt" in refused.value.message or "train/notes.txt" in refused.value.message
    assert list(store.list("")) == []
