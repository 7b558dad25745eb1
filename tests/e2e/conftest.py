"""Fixtures for local end-to-end runs: a small slice of the cats-dev photos copied into a temp dir
(the photos are read from ../shared, never committed) and a fresh pipeline root per test."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PER_CLASS = 4
# Small and fast: the point is the plumbing, not the accuracy.
FAST_HYPERPARAMETERS = {"epochs": 2, "freeze-epochs": 1, "image-size": 64, "batch-size": 8}


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory: pytest.TempPathFactory, real_photos: Path) -> Path:
    source = real_photos
    target = tmp_path_factory.mktemp("cats-small")
    for split in ("train", "val", "test"):
        for cls in sorted(p.name for p in (source / split).iterdir() if p.is_dir()):
            (target / split / cls).mkdir(parents=True)
            for photo in sorted((source / split / cls).iterdir())[:PER_CLASS]:
                shutil.copyfile(photo, target / split / cls / photo.name)
    # Real photo folders carry notes beside the splits (cats-dev has README.md and SOURCES.tsv).
    (target / "README.md").write_text("a slice of cats-dev for tests\n")
    return target


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "root"


def write_manifest(directory: Path, name: str, dataset: str, **overrides: object) -> Path:
    hyper = {**FAST_HYPERPARAMETERS, **overrides.pop("hyperparameters", {})}  # type: ignore[dict-item]
    body = {"experiment": "e2e", "dataset": dataset, "comment": name, "hyperparameters": hyper, **overrides}
    path = directory / f"{name}.json"
    path.write_text(json.dumps(body))
    return path
