"""A fresh local pipeline root per test, its console output captured (notifications are printed)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from nyanops.local.progress import Progress
from nyanops.local.runner import LocalPipeline


@pytest.fixture
def console() -> io.StringIO:
    return io.StringIO()


@pytest.fixture
def pipeline(tmp_path: Path, console: io.StringIO) -> Iterator[LocalPipeline]:
    p = LocalPipeline(tmp_path / "root", Progress(console, interactive=False))
    try:
        yield p
    finally:
        p.close()
