"""Every corpus case through the local side: the upload lands in the local bucket and its EventBridge
event goes to the real StartPipeline handler (``LocalPipeline.fire``). Each must be refused with the
exact problems, a ``rejected/<key>.error.json`` record, a printed notification, no execution, no
trial, and the bucket otherwise unchanged (the upload's bytes and version included)."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from nyanops.core import layout
from nyanops.core.start_pipeline import Outcome
from nyanops.local.runner import LocalPipeline

from .corpus import BASE_OBJECTS, CASES, IMAGE_CASES, Case, image_tree, manifest, marker_bytes, prefixed


def test_the_corpus_has_at_least_forty_distinct_cases() -> None:
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)
    assert len({c.key for c in CASES}) == len(CASES), "each case has its own key, so its record is its own"
    assert all(c.expected for c in CASES)


def snapshot(pipeline: LocalPipeline) -> dict[str, str | None]:
    return {o.key: o.version_id for o in pipeline.store.list("")}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_upload_is_refused_locally(case: Case, pipeline: LocalPipeline, console: io.StringIO) -> None:
    for key, body in BASE_OBJECTS + case.objects:
        pipeline.store.put(key, body)
    pipeline.store.put(case.key, case.body)
    before = snapshot(pipeline)

    [result] = pipeline.fire(case.key)

    assert result.outcome is Outcome.REJECTED
    assert result.key == case.key and result.execution_name is None
    assert len(result.problems) == len(case.expected), result.problems
    for want, got in zip(case.expected, result.problems, strict=True):
        assert got.field == want.field
        assert want.problem in got.problem
        assert want.fix in got.fix
    record = json.loads(pipeline.store.get(case.rejection_key))
    assert record["key"] == case.key
    assert record["problems"] == [p.__dict__ for p in result.problems]
    assert record["message"] == "; ".join(p.line() for p in result.problems)
    assert "untouched" in record["note"]
    assert record["version"] == before[case.key] and record["notified"] is True
    printed = console.getvalue()
    assert f"[notification] nyanops: upload refused: {case.key}\n" in printed
    assert f"{case.expected[0].field}: " in printed and "Fix: " in printed
    assert pipeline.executions.list() == []
    assert pipeline.experiments.list_trials() == []
    # Nothing else written, nothing changed: the upload keeps its bytes and its version.
    after = snapshot(pipeline)
    assert after.pop(case.rejection_key) is not None
    assert after == before
    assert pipeline.store.get(case.key) == case.body


def test_a_refused_manifest_fixed_and_uploaded_again_starts_a_run(pipeline: LocalPipeline) -> None:
    for key, body in BASE_OBJECTS:
        pipeline.store.put(key, body)
    key = "manifests/epochs 10 ねこ.json"
    pipeline.store.put(key, manifest(hyperparameters={"epochs": "10"}))
    assert pipeline.fire(key)[0].outcome is Outcome.REJECTED
    pipeline.store.put(key, manifest(hyperparameters={"epochs": 10}) + b"\n")  # a new version
    [result] = pipeline.fire(key)
    assert result.outcome is Outcome.STARTED
    [row] = pipeline.executions.list()
    assert row.name == result.execution_name and row.status == "PENDING"
    assert row.input["source"]["key"] == key


def test_image_contents_are_not_judged_from_the_listing(pipeline: LocalPipeline) -> None:
    """The layer boundary: StartPipeline sees names and sizes only, so a corrupt .jpg or a
    decompression bomb with a correct marker starts a run; `nyanops dataset add` (which decodes every
    image) and train.py (which names the file) are the layers that refuse them."""
    for key, body in BASE_OBJECTS:
        pipeline.store.put(key, body)
    bad = {c.path: c.make() for c in IMAGE_CASES if c.id in ("corrupt-jpeg", "decompression-bomb")}
    files = image_tree("cats-badpixels", extra=bad)
    for key, body in prefixed("cats-badpixels", files):
        pipeline.store.put(key, body)
    pipeline.store.put(layout.dataset_marker_key("cats-badpixels"), marker_bytes("cats-badpixels", files))
    [result] = pipeline.fire(layout.dataset_marker_key("cats-badpixels"))
    assert result.outcome is Outcome.STARTED


def test_docs_table_lists_every_case() -> None:
    """docs/reliability.md summarises the corpus; keep it in step with the table here."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "reliability.md").read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if re.match(r"^\| \d+ \| `", line)]
    assert [re.match(r"^\| \d+ \| `([^`]+)`", r).group(1) for r in rows] == [c.id for c in CASES]  # type: ignore
    for case in CASES:
        row = rows[CASES.index(case)]
        assert f"`{case.expected[0].field.replace('|', chr(92) + '|')}`: " in row and case.layer in row
    for image in IMAGE_CASES:
        assert f"| `{image.id}` |" in text
