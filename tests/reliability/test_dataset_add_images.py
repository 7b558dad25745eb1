"""Image contents a bucket listing cannot judge: corrupt, truncated and decompression-bomb images.
``nyanops dataset add`` decodes every image before copying anything and refuses the folder naming each
bad file; nothing lands under ``datasets/``. (If such a file reaches S3 some other way, ``train.py``
fails naming it: ``tests/ml/test_ml_scripts.py``.) Needs Pillow: runs in the ML virtualenv."""

from __future__ import annotations

from pathlib import Path

import pytest

from nyanops.cli import EXIT_BAD_INPUT, main
from nyanops.core import layout
from nyanops.core.rejection import UploadRejected
from nyanops.local.datasets import add_dataset
from nyanops.local.runner import LocalPipeline

from .corpus import CLASSES, IMAGE_CASES, ImageCase, real_jpeg

pytestmark = pytest.mark.e2e
pytest.importorskip("PIL")

FIX = "replace it with a valid JPEG/PNG (at most 50 megapixels) or remove it"


def photo_folder(root: Path, bad: dict[str, bytes]) -> Path:
    """A valid ImageFolder tree of tiny real JPEGs, plus the ``bad`` files."""
    for s, split in enumerate(layout.SPLITS):
        for c, cls in enumerate(CLASSES):
            for i in range(2):
                path = root / split / cls / f"{i:03d}.jpg"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(real_jpeg(s * 10 + c * 3 + i))
    for rel, body in bad.items():
        (root / rel).write_bytes(body)
    return root


def test_a_clean_folder_is_added(pipeline: LocalPipeline, tmp_path: Path) -> None:
    """The control: the same folder without a bad file is accepted, so each refusal below is the file's."""
    dataset_id, marker = add_dataset(pipeline.store, photo_folder(tmp_path / "photos", {}), "cats-clean")
    assert dataset_id == "cats-clean" and marker["num_images"] == 12


@pytest.mark.parametrize("case", IMAGE_CASES, ids=[c.id for c in IMAGE_CASES])
def test_dataset_add_refuses_the_image_before_copying(case: ImageCase, pipeline: LocalPipeline,
                                                      tmp_path: Path) -> None:
    folder = photo_folder(tmp_path / "photos", {case.path: case.make()})
    with pytest.raises(UploadRejected) as caught:
        add_dataset(pipeline.store, folder, "cats-img")
    [problem] = caught.value.problems
    assert problem.field == case.path
    for fragment in case.problem:
        assert fragment in problem.problem, problem.problem
    assert problem.fix == FIX
    assert list(pipeline.store.list(layout.DATASETS_PREFIX)) == []
    assert (folder / case.path).read_bytes() == case.make()  # the source is left alone too


def test_the_cli_names_every_bad_file_and_copies_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    folder = photo_folder(tmp_path / "photos", {c.path: c.make() for c in IMAGE_CASES})
    root = tmp_path / "root"
    assert main(["--root", str(root), "dataset", "add", str(folder), "--name", "cats-img", "--no-run"]) == (
        EXIT_BAD_INPUT)
    err = capsys.readouterr().err
    for case in IMAGE_CASES:
        assert f"  - {case.path}: cannot be used as an image" in err
    assert "nothing was copied" in err
    assert not (root / "bucket" / "datasets").exists() or not any((root / "bucket" / "datasets").rglob("*"))
