"""The refusals of a dataset's layout (``dataset.check_structure``), word for word: what is wrong, which files
(at most five named, then how many more) and the fix."""

from __future__ import annotations

import pytest

from nyanops.core.dataset import MAX_REPORTED, DatasetFile, _describe, _few, check_structure, count_images
from nyanops.core.rejection import Problem, UploadRejected

P = "datasets/d/"
GOOD = [DatasetFile(f"{s}/{c}/{i}.jpg", 10) for s in ("train", "val", "test") for c in ("bengal", "siamese")
        for i in range(2)]


def problems(files: list[DatasetFile]) -> list[Problem]:
    with pytest.raises(UploadRejected) as caught:
        check_structure("d", files)
    return caught.value.problems


def test_a_good_layout_is_counted() -> None:
    counts = check_structure("d", [*GOOD, DatasetFile("train/bengal/extra.PNG", 5)])
    assert counts == {"train": {"bengal": 3, "siamese": 2}, "val": {"bengal": 2, "siamese": 2},
                      "test": {"bengal": 2, "siamese": 2}}


def test_count_images_keeps_the_rest_of_the_path_as_the_file() -> None:
    counts = count_images([DatasetFile("train/a/x.jpg", 1), DatasetFile("train/a/y.jpg", 1),
                           DatasetFile("val/b/z.jpg", 1)])
    assert counts == {"train": {"a": 2}, "val": {"b": 1}, "test": {}}


@pytest.mark.parametrize(
    "path", ["loose.jpg", "train/loose.jpg", "holdout/a/x.jpg", "train/a/b/x.jpg"]
)
def test_files_outside_the_layout(path: str) -> None:
    assert problems([*GOOD, DatasetFile(path, 10)]) == [Problem(
        "dataset", f"files outside {{train,val,test}}/<class>/<image>: {P}{path}",
        "put every image in datasets/<id>/<split>/<class>/ (ImageFolder layout)")]


@pytest.mark.parametrize(("path", "what"), [("train//x.jpg", "class folder"), ("train/a/", "file name")])
def test_an_empty_path_segment_is_named(path: str, what: str) -> None:
    assert problems([*GOOD, DatasetFile(path, 10)]) == [Problem(
        "dataset", f"{what} is empty: '{P}{path}'", "remove the empty path segment (a key with '//')")]


def test_non_images() -> None:
    assert problems([*GOOD, DatasetFile("val/bengal/notes.txt", 10)]) == [Problem(
        "dataset", f"non-image files: {P}val/bengal/notes.txt",
        "keep only images (.jpg, .jpeg, .png, .bmp, .gif, .webp) in the dataset; upload the dataset again under a "
        "new id")]


def test_zero_byte_images() -> None:
    assert problems([*GOOD, DatasetFile("test/siamese/empty.jpg", 0)]) == [Problem(
        "dataset", f"zero-byte images: {P}test/siamese/empty.jpg",
        "re-upload those images (the upload was probably interrupted) under a new dataset id")]


def test_an_empty_split() -> None:
    files = [f for f in GOOD if not f.path.startswith("val/")]
    assert problems(files) == [Problem("dataset", "the val split has no images", f"add {P}val/<class>/<image> files")]


def test_classes_missing_from_a_split() -> None:
    files = [*GOOD, DatasetFile("train/persian/a.jpg", 1), DatasetFile("train/sphynx/a.jpg", 1),
             DatasetFile("val/persian/a.jpg", 1)]
    fix = "use the same class folders in train, val and test, each with at least one image"
    assert problems(files) == [
        Problem("dataset", "the val split lacks classes sphynx that other splits have", fix),
        Problem("dataset", "the test split lacks classes persian, sphynx that other splits have", fix),
    ]


def test_one_class() -> None:
    files = [f for f in GOOD if "/bengal/" in f.path]
    assert problems(files) == [Problem("dataset", "only one class", "a classifier needs at least two class folders")]


def test_every_problem_at_once_in_order() -> None:
    files = [f for f in GOOD if not f.path.startswith("test/")] + [
        DatasetFile("x.jpg", 1), DatasetFile("train/bengal/a.txt", 1), DatasetFile("train/bengal/z.jpg", 0)]
    assert [p.problem.split(":")[0] for p in problems(files)] == [
        "files outside {train,val,test}/<class>/<image>", "non-image files", "zero-byte images",
        "the test split has no images"]


def test_at_most_five_files_are_named() -> None:
    paths = [f"train/a/{i}.txt" for i in range(MAX_REPORTED + 2)]
    assert _few(P, paths) == ", ".join(P + p for p in sorted(paths)[:MAX_REPORTED]) + " and 2 more"
    assert _few(P, paths[:MAX_REPORTED]) == ", ".join(P + p for p in sorted(paths)[:MAX_REPORTED])
    assert _few(P, paths[: MAX_REPORTED + 1]).endswith(" and 1 more")
    assert _few(P, ["b", "a"]) == f"{P}a, {P}b"


def test_describe_counts_per_split() -> None:
    assert _describe({"train": {"a": 2, "b": 1}, "test": {"a": 4}}) == "(train: 3, val: 0, test: 4)"
