"""scripts/static_checks.py's checkov step fails on any unsuppressed finding, a parse error or an empty scan."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import static_checks


def fake_checkov(tmp_path: Path, report: Any, rc: int) -> str:
    exe = tmp_path / "checkov"
    exe.write_text(f"#!{sys.executable}\nimport sys\nprint({json.dumps(json.dumps(report))})\nsys.exit({rc})\n")
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    return str(exe)


def summary(passed: int = 10, failed: int = 0, skipped: int = 2, errors: int = 0, resources: int = 5) -> dict:
    return {"passed": passed, "failed": failed, "skipped": skipped, "parsing_errors": errors,
            "resource_count": resources}


FAILED = {"check_id": "CKV_AWS_18", "resource": "AWS::S3::Bucket.DataBucket", "check_name": "access logging"}


@pytest.mark.parametrize(
    ("report", "rc", "ok"),
    [
        ({"summary": summary(), "results": {"failed_checks": []}}, 0, True),
        ({"summary": summary(failed=1), "results": {"failed_checks": [FAILED]}}, 1, False),
        ({"summary": summary(errors=1), "results": {"failed_checks": []}}, 0, False),
        ({"summary": summary(resources=0), "results": {"failed_checks": []}}, 0, False),
        (summary(passed=0, resources=0), 0, False),
    ],
)
def test_checkov_scan_verdict(tmp_path: Path, report: Any, rc: int, ok: bool) -> None:
    step = static_checks.checkov_scan("checkov", fake_checkov(tmp_path, report, rc), static_checks.TEMPLATE)
    assert step.ok is ok, step.output
    assert step.output.startswith("passed ")
    if report.get("results", {}).get("failed_checks"):
        assert "CKV_AWS_18 AWS::S3::Bucket.DataBucket" in step.output


def test_a_missing_checkov_fails(tmp_path: Path) -> None:
    step = static_checks.checkov_scan("checkov", str(tmp_path / "nope"), static_checks.TEMPLATE)
    assert not step.ok and "not found" in step.output


def test_the_command_line_suppresses_nothing() -> None:
    assert "--skip-check" not in static_checks.CHECKOV_ARGS and "--soft-fail" not in static_checks.CHECKOV_ARGS
    assert "--skip-download" in static_checks.CHECKOV_ARGS  # offline: no Prisma Cloud calls
