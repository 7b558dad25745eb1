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
    assert "| `nyanops.core.a` | 5 | 3 | 0 | 1 | 1 | 60.0 % |" in out
    assert "| `nyanops.core.b` | 2 | | | | | not run |" in out
    assert "nyanops.core.a: nyanops.core.a.x_f__mutmut_4" in out
    assert "nyanops.core.a: nyanops.core.a.x_f__mutmut_5" in out and not any("mutmut_6" in line for line in out)


def test_equivalent_mutants_named_in_the_docs_leave_the_score(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    # 8 killed, 2 survived of which the explanation file names one (and names a killed one: reported as stale)
    results(tmp_path / "mutants", "nyanops.core.a", {str(i): 1 for i in range(8)} | {"8": 0, "9": 0})
    docs = tmp_path / "reliability.md"
    docs.write_text("A killed one, `nyanops.core.a.x_f__mutmut_1`, named in passing.\n\n### Equivalent mutants\n\n"
                    "- `nyanops.core.a.x_f__mutmut_8`, `nyanops.core.a.x_f__mutmut_0`: no test can tell\n\n"
                    "## Next section\n\n`nyanops.core.a.x_f__mutmut_9`\n")
    args = ["--root", str(tmp_path / "mutants"), "--equivalents", str(docs), "--survivors", "--min", "88"]
    assert mutation_scores.main(args) == 0
    captured = capsys.readouterr()
    out = captured.out.splitlines()
    assert "| `nyanops.core.a` | 10 | 8 | 1 | 1 | 0 | 88.9 % |" in out  # 8 / (10 - 1)
    assert "nyanops.core.a: nyanops.core.a.x_f__mutmut_9" in out and not any("mutmut_8" in line for line in out)
    assert "listed as equivalent but killed by a test: nyanops.core.a.x_f__mutmut_0" in captured.err
    assert mutation_scores.main([*args[:4], "--min", "89"]) == 1
    assert mutation_scores.main(["--root", str(tmp_path / "mutants"), "--equivalents", str(tmp_path / "none.md"),
                                 "--min", "80"]) == 0  # no such file: nothing is equivalent, 80.0 %


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
