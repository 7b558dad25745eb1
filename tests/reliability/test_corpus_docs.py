"""docs/reliability.md lists every case of every corpus module (``tests/reliability/corpus*.py``): a module added
later (``corpus_datasets.py``) is picked up without editing this test, and a case added to any corpus without a
row in the page fails here."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import pytest

from .corpus_record import CASES as RECORD_CASES

HERE = Path(__file__).resolve().parent
DOC = HERE.parents[1] / "docs" / "reliability.md"
MODULES = sorted(p.stem for p in HERE.glob("corpus*.py"))


def doc_rows() -> list[str]:
    return [line for line in DOC.read_text(encoding="utf-8").splitlines() if line.startswith("| ")]


def case_lists(module: Any) -> dict[str, list[Any]]:
    """Every module-level sequence named ``CASES`` or ``*_CASES`` whose items have an ``id``."""
    out = {}
    for name, value in vars(module).items():
        named = name == "CASES" or name.endswith("_CASES")
        if named and isinstance(value, (list, tuple)) and value and all(
            isinstance(getattr(item, "id", None), str) for item in value
        ):
            out[name] = list(value)
    return out


def test_the_known_corpus_modules_are_found() -> None:
    assert {"corpus", "corpus_record"} <= set(MODULES)


@pytest.mark.parametrize("module_name", MODULES)
def test_every_case_of_the_module_has_a_row(module_name: str) -> None:
    module = importlib.import_module(f"{__package__}.{module_name}")
    lists = case_lists(module)
    assert lists, f"{module_name} defines no CASES (a sequence of cases with an id)"
    rows = doc_rows()
    for list_name, cases in lists.items():
        ids = [case.id for case in cases]
        assert len(ids) == len(set(ids)), f"{module_name}.{list_name} repeats a case id"
        missing = [i for i in ids if not any(f"`{i}`" in row for row in rows)]
        assert not missing, f"docs/reliability.md has no table row for {module_name}.{list_name}: {missing}"


def test_the_record_table_is_the_record_corpus_in_order() -> None:
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## What is recorded: the record corpus"):text.index("## Duplicates and concurrency")]
    rows = [line for line in section.splitlines() if re.match(r"^\| `[^`]+` \|", line)]
    assert [re.match(r"^\| `([^`]+)`", row).group(1) for row in rows] == [c.id for c in RECORD_CASES]  # type: ignore
    for case, row in zip(RECORD_CASES, rows, strict=True):
        assert row == f"| `{case.id}` | {case.input} | {case.outcome} | {case.layer} |"
