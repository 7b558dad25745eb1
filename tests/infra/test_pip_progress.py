"""scripts/pip_progress.py: the virtualenv installs `make demo` and `make test` start show how far they are
(resolving, downloading n/N, installing) instead of minutes of silence, keep pip's full log, and on failure
show its last lines and pass pip's exit status on."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pip_progress
import pytest

PIP_OUTPUT = """\
Looking in indexes: https://pypi.org/simple
Collecting torch==2.14.1
  Downloading torch-2.14.1-cp311-cp311-manylinux_2_28_x86_64.whl.metadata (30 kB)
Collecting numpy
  Using cached numpy-2.1.0-cp311-cp311-manylinux_2_17_x86_64.whl.metadata (60 kB)
Processing /wheels/pillow-11.0.0-cp311-cp311-manylinux_2_28_x86_64.whl
Downloading torch-2.14.1-cp311-cp311-manylinux_2_28_x86_64.whl (887.4 MB)
Using cached numpy-2.1.0-cp311-cp311-manylinux_2_17_x86_64.whl (16.3 MB)
Installing collected packages: pillow, numpy, torch
Successfully installed numpy-2.1.0 pillow-11.0.0 torch-2.14.1
"""


def fake_pip(tmp_path: Path, status: int) -> list[str]:
    script = tmp_path / "pip.py"
    script.write_text(f"import sys\nsys.stdout.write({PIP_OUTPUT!r})\nsys.exit({status})\n")
    return [sys.executable, str(script)]


def test_each_phase_is_shown_with_counts(tmp_path: Path) -> None:
    out = io.StringIO()
    log = tmp_path / "venv" / "pip-install.log"
    assert pip_progress.run(fake_pip(tmp_path, 0), ".venv-ml", log, out, interactive=False) == 0
    lines = [line.split("] ", 1)[1] for line in out.getvalue().splitlines()]
    assert "resolving: 1 packages so far (last: torch)" in lines
    assert "resolving: 3 packages so far (last: pillow)" in lines
    assert "downloading 1/3: torch-2.14.1-cp311-cp311-manylinux_2_28_x86_64.whl (887.4 MB)" in lines
    assert "from the cache 2/3: numpy-2.1.0-cp311-cp311-manylinux_2_17_x86_64.whl" in lines
    assert "installing 3 packages (torch alone takes a minute to unpack)" in lines
    assert lines[-1] == "done: 3 packages installed"
    assert all(line.startswith("[.venv-ml ") for line in out.getvalue().splitlines())
    assert log.read_text() == PIP_OUTPUT  # the whole of pip's output is kept


def test_a_terminal_gets_one_line_redrawn(tmp_path: Path) -> None:
    out = io.StringIO()
    assert pip_progress.run(fake_pip(tmp_path, 0), ".venv-ml", tmp_path / "log", out, interactive=True) == 0
    text = out.getvalue()
    assert text.count("\r\033[K") >= 6 and text.count("\n") == 1 and text.rstrip().endswith("3 packages installed")


def test_a_failure_shows_the_end_of_the_log_and_pips_status(tmp_path: Path) -> None:
    out = io.StringIO()
    assert pip_progress.run(fake_pip(tmp_path, 7), ".venv-ml", tmp_path / "log", out, interactive=False) == 7
    text = out.getvalue()
    assert "FAILED (pip exit status 7)" in text and "    Installing collected packages: pillow, numpy, torch" in text


def test_quiet_flags_are_dropped_so_there_is_something_to_show(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = {}
    monkeypatch.setattr(pip_progress, "run", lambda command, *a: seen.setdefault("command", command) and 0)
    pip_progress.main(["--label", "x", "--log", str(tmp_path / "l"), "--", "pip", "install", "-q", "torch"])
    assert seen["command"] == ["pip", "install", "torch"]
