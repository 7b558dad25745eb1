"""Every case of the record corpus (``corpus_record.py``) on the local side: the local bucket, the real
StartPipeline and RecordResults handlers, SQLite, the local job records."""

from __future__ import annotations

import io

import pytest

from nyanops.local.runner import LocalPipeline

from .corpus_record import CASES, Case
from .sides import LocalSide


def test_the_record_corpus_has_at_least_thirty_cases() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_record_case_locally(case: Case, pipeline: LocalPipeline, console: io.StringIO) -> None:
    case.run(LocalSide(pipeline, console))
