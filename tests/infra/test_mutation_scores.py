"""scripts/mutation_scores.py: the per-module table docs/reliability.md shows, from mutmut's result files."""

from __future__ import annotations

import json
from pathlib import Path

import mutation_scores
import pytest


def results(root: Path, module: str, codes: dict[str, int | None]) -> None:
    meta = root / "src" / (module.replace(".", "/") + ".py.meta")
    meta.parent.mkdir(parents=True, exist_ok=True)
    meta.write_text(json.dumps({"exit_code_by_key": {f"{module}.x_f__mutmut_{k}": v for k, v in codes.items()}}))


def test_scores_per_module(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # killed (1, 3, a timeout), survived (0), no tests (33), skipped (34): 3 of 5 counted mutants killed
    results(tmp_path, "nyanops.core.a", {"1": 1, "2": 3, "3": 36, "4": 0, "5": 33, "6": 34})
    results(tmp_path, "nyanops.core.b", {"1": None, "2": None})
    assert mutation_scores.main(["--root", str(tmp_path), "--survivors"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "| `nyanops.core.a` | 5 | 3 | 1 | 1 | 60.0 % |" in out
    assert "| `nyanops.core.b` | 2 | | | | not run |" in out
    assert "nyanops.core.a: nyanops.core.a.x_f__mutmut_4" in out
    assert "nyanops.core.a: nyanops.core.a.x_f__mutmut_5" in out and not any("mutmut_6" in line for line in out)


def test_min_fails_below_the_goal_or_unrun(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results(tmp_path, "nyanops.core.a", {str(i): 1 for i in range(9)} | {"9": 0})
    assert mutation_scores.main(["--root", str(tmp_path), "--min", "90"]) == 0
    assert mutation_scores.main(["--root", str(tmp_path), "--min", "91"]) == 1
    results(tmp_path, "nyanops.core.b", {"1": None})
    assert mutation_scores.main(["--root", str(tmp_path), "--min", "90"]) == 1
    assert "below 90 %: nyanops.core.b" in capsys.readouterr().err


def test_no_results(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert mutation_scores.main(["--root", str(tmp_path)]) == 2
    assert "run `make mutation` first" in capsys.readouterr().err
