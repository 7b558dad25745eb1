"""The naming rules of core/dataset_names, as check_structure applies them to a listing or a folder."""

from __future__ import annotations

import unicodedata

import pytest

from nyanops.core import dataset as ds
from nyanops.core import dataset_names as names
from nyanops.core.rejection import UploadRejected

DID = "cats-names"
NFC_CAFE = unicodedata.normalize("NFC", "café")
NFD_CAFE = unicodedata.normalize("NFD", "café")


def tree(classes: tuple[str, ...] = ("bengal", "siamese"), extra: tuple[str, ...] = ()) -> list[ds.DatasetFile]:
    paths = [f"{s}/{c}/{i}.jpg" for s in ("train", "val", "test") for c in classes for i in range(2)]
    return [ds.DatasetFile(p, 10) for p in (*paths, *extra)]


def refusal(files: list[ds.DatasetFile]) -> str:
    with pytest.raises(UploadRejected) as caught:
        ds.check_structure(DID, files)
    assert all(p.field == "dataset" for p in caught.value.problems)
    return caught.value.message


@pytest.mark.parametrize(
    ("extra", "problem", "fix"),
    [
        (("train/.thumbs/a.jpg",), "class folder starts with '.' (a hidden name: train.py skips it): "
         "'datasets/cats-names/train/.thumbs/a.jpg'", "so it does not start with '.'"),
        (("train/./a.jpg",), "class folder starts with '.'", "or remove it"),
        (("train/../a.jpg",), "class folder starts with '.'", "or remove it"),
        (("train/bengal/.a.jpg",), "file name starts with '.' (a hidden name: train.py skips it)", "file name"),
        (("train/ben\tgal/a.jpg",), "class folder contains control characters: "
         "'datasets/cats-names/train/ben\\x09gal/a.jpg'", "without control characters"),
        (("val/bengal/a\x1b[2J.jpg",), "file name contains control characters", "without control characters"),
        (("train/ben\u202egal/a.jpg",), "bidirectional control characters: 'datasets/cats-names/train/ben\\u202egal",
         "without bidirectional"),
        (("train/ben\\gal/a.jpg",), "class folder contains a backslash", "Windows"),
        (("train/bengal/caf\udce9.jpg",), "file name is not valid UTF-8: 'datasets/cats-names/train/bengal/caf\\udce9",
         "UTF-8 characters"),
        (("train/" + "c" * 256 + "/a.jpg",), "class folder is 256 bytes long (a class folder may have at most 255",
         "shorter class folder"),
        (("train/bengal/" + "ね" * 86 + ".jpg",), "file name is 262 bytes long", "shorter file name"),
        (("train//a.jpg",), "class folder is empty", "'//'"),
    ],
)
def test_each_rule(extra: tuple[str, ...], problem: str, fix: str) -> None:
    with pytest.raises(UploadRejected) as caught:
        ds.check_structure(DID, tree(extra=extra))
    [first] = caught.value.problems
    assert problem in first.problem and fix in first.fix


def test_keys_longer_than_s3_allows() -> None:
    long_file = "train/bengal/" + "x" * 250 + ".jpg"
    deep = "train/" + "/".join(["d" * 250] * 4) + "/a.jpg"  # every segment fine, the key too long
    message = refusal(tree(extra=(long_file, deep)))
    assert "keys longer than S3's 1024 bytes" in message and "bytes)" in message
    assert names.MAX_KEY_BYTES == 1024


def test_class_names_that_differ_only_in_normalisation_are_refused() -> None:
    files = tree(("bengal", NFC_CAFE))
    files = [ds.DatasetFile(f.path.replace(NFC_CAFE, NFD_CAFE), f.size) if f.path.startswith("val/") else f
             for f in files]
    message = refusal(files)
    assert "class folders differ only in Unicode normalisation" in message
    assert "(NFC)" in message and "(NFD)" in message


def test_a_dataset_written_consistently_in_nfd_is_fine() -> None:
    counts = ds.check_structure(DID, tree(("bengal", NFD_CAFE)))
    assert set(counts["train"]) == {"bengal", NFD_CAFE}


def test_class_names_that_differ_only_in_case_are_refused() -> None:
    message = refusal(tree(("Tama", "tama", "mike")))
    assert "class folders differ only in case" in message and "'Tama' and 'tama'" in message


def test_file_names_that_differ_only_in_normalisation_are_refused() -> None:
    message = refusal(tree(extra=(f"train/bengal/{NFC_CAFE}.jpg", f"train/bengal/{NFD_CAFE}.jpg")))
    assert "file names differ only in Unicode normalisation (one file on macOS)" in message


def test_all_problems_at_once_and_bad_names_do_not_add_layout_noise() -> None:
    message = refusal(tree(extra=("train/.thumbs/a.jpg", "val/bengal/b\x07.jpg", "train/bengal/notes.txt")))
    assert "class folder starts with '.'" in message and "control characters" in message and "non-image" in message
    assert "lacks classes" not in message  # .thumbs is refused, not counted as a class val and test lack


def test_shown_escapes_what_a_terminal_would_obey() -> None:
    assert names.shown("ねこ 2026") == "'ねこ 2026'"
    assert names.shown("a\x1b[31mred") == "'a\\x1b[31mred'"
    assert names.shown("x\u202ey") == "'x\\u202ey'"
    assert names.shown("caf\udce9") == "'caf\\udce9'"


@pytest.mark.parametrize("bad", ["", "-x", "a/b", "ねこ", "cats\n", "a" * 129, ".hidden"])
def test_dataset_ids(bad: str) -> None:
    with pytest.raises(UploadRejected) as caught:
        names.check_dataset_id(bad, "--name")
    assert caught.value.problems[0].field == "--name"
    names.check_dataset_id("2026-11-28T064300Z")
    names.check_dataset_id("cats.v2_final-1")
