"""Fixtures for the ML script tests: ml_code on sys.path, tiny ImageFolders built in tmp dirs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ML_CODE = Path(__file__).resolve().parents[2] / "ml_code"
if str(ML_CODE) not in sys.path:
    sys.path.insert(0, str(ML_CODE))

CLASSES = ("bengal", "other", "persian")


def make_image_folder(root: Path, per_class: int = 2, classes=CLASSES, size=(48, 40)) -> Path:
    """An ImageFolder of small generated JPEGs, one colour per class."""
    from PIL import Image

    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            colour = (60 + 80 * c, 30 * i, 200 - 60 * c)
            Image.new("RGB", size, colour).save(root / name / f"img{i}.jpg", quality=90)
    return root


@pytest.fixture
def image_splits(tmp_path: Path) -> Path:
    """tmp/{train,val,test}/<class>/*.jpg with generated images (2 per class)."""
    for split in ("train", "val", "test"):
        make_image_folder(tmp_path / "data" / split)
    return tmp_path / "data"


@pytest.fixture(scope="session")
def cats_sample(tmp_path_factory, real_photos: Path) -> Path:
    """A handful of real cats-dev photos (symlinked, never copied into the repo): 2 per class per split."""
    photos = real_photos
    root = tmp_path_factory.mktemp("cats")
    for split in ("train", "val", "test"):
        for name in CLASSES:
            (root / split / name).mkdir(parents=True)
            for photo in sorted((photos / split / name).glob("*.jpg"))[:2]:
                (root / split / name / photo.name).symlink_to(photo)
    return root
