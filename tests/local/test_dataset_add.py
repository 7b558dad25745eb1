"""`nyanops dataset add` on the local side: what lands in the bucket is exactly the folder's images, byte for
byte, sealed (format 2) with their identity; folders shaped like real ones (notes and licences beside the
splits) are fine; anything refused leaves the bucket untouched."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from nyanops.core import content_identity, layout
from nyanops.core import dataset as datasets
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
    """Two classes per split; each file's bytes differ (a JPEG plus a distinct trailer after EOI)."""
    for split in layout.SPLITS:
        for cls in ("mike", "tama"):
            (root / split / cls).mkdir(parents=True)
            (root / split / cls / "a.jpg").write_bytes(JPEG_1X1 + f"{split}/{cls}".encode())
    return root


def images_of(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for split in layout.SPLITS for p in sorted((folder / split).rglob("*.jpg"))}


def test_the_bucket_holds_exactly_the_folders_images_and_their_seal(tmp_path: Path) -> None:
    source = make_folder(tmp_path / "cats")
    store = LocalObjectStore(tmp_path / "bucket")
    dataset_id, marker = add_dataset(store, source, "mine")
    expected = images_of(source)
    prefix = layout.dataset_prefix(dataset_id)
    copied = {o.key[len(prefix):]: store.get(o.key) for o in store.list(prefix)
              if not o.key.endswith(layout.DATASET_MARKER)}
    assert copied == expected  # every image, byte for byte, nothing else
    assert len(copied) == 6
    seal = datasets.parse_marker(dataset_id, store.get(layout.dataset_marker_key(dataset_id)))
    assert seal.sealed_by.tool == "nyanops dataset add" and seal.start_run is True
    assert {p: f.sha256 for p, f in seal.files.items()} == {
        p: hashlib.sha256(b).hexdigest() for p, b in expected.items()}
    train = [(p.split("/", 1)[1], hashlib.sha256(b).hexdigest()) for p, b in expected.items() if p.startswith("train/")]
    assert seal.split_hashes["train"] == content_identity.split_hash(train)
    # The ETags the seal recorded are the bucket's: the dataset validates as sealed.
    listing = datasets.files_from_listing(dataset_id, ((o.key, o.size, o.etag) for o in store.list(prefix)))
    summary = datasets.validate_dataset(dataset_id, listing, seal)
    assert summary.content_hash == marker["content_hash"] and summary.num_images == 6
    assert not any(p.name.startswith(".tmp-staging-") for p in store.directory.iterdir())


def test_files_beside_the_splits_and_hidden_files_are_left_out_and_listed(tmp_path: Path) -> None:
    source = make_folder(tmp_path / "cats")
    (source / "README.md").write_text("photos of Mike and Tama")
    (source / "SOURCES.tsv").write_text("a.jpg\tmine")
    (source / ".DS_Store").write_bytes(b"\0")
    (source / "train" / "mike" / ".DS_Store").write_bytes(b"\0")
    store = LocalObjectStore(tmp_path / "bucket")
    dataset_id, marker = add_dataset(store, source, "mine")
    assert marker["not_copied"] == ["README.md", "SOURCES.tsv", "train/mike/.DS_Store"]
    keys = [o.key for o in store.list(layout.dataset_prefix(dataset_id))]
    assert all(k.split("/")[2] in layout.SPLITS for k in keys if not k.endswith(layout.DATASET_MARKER))
    assert json.loads(store.get(layout.dataset_marker_key("mine")))["num_images"] == 6


def test_a_stray_file_inside_a_split_is_refused_and_nothing_is_copied(tmp_path: Path) -> None:
    source = make_folder(tmp_path / "cats")
    (source / "train" / "notes.txt").write_text("todo")
    store = LocalObjectStore(tmp_path / "bucket")
    with pytest.raises(UploadRejected) as refused:
        add_dataset(store, source, "mine")
    assert "datasets/mine/train/notes.txt" in refused.value.message
    assert list(store.list("")) == []


def test_no_run_is_written_into_the_seal(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "bucket")
    dataset_id, marker = add_dataset(store, make_folder(tmp_path / "cats"), "quiet", start_run=False)
    assert marker["start_run"] is False
    assert datasets.parse_marker(dataset_id, store.get(layout.dataset_marker_key(dataset_id))).start_run is False
