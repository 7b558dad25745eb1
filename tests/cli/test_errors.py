"""Problems with the local root and dangerous arguments get one line with the fix, never a traceback, and
change nothing: --root naming a file, a read-only root, a full disk, a database that is not one, a database
locked by another process, `cleanup ""`, and `report -o` over the root's own files or a file that is not a
report."""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path

import pytest

from nyanops.cli import main
from nyanops.local.bucket import LocalObjectStore

from .conftest import Local


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def one_line_error(text: str) -> str:
    lines = [line for line in text.splitlines() if line.startswith("nyanops: ")]
    assert len(lines) == 1 and "Traceback" not in text, text
    return lines[0]


def test_root_that_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "a-file"
    root.write_text("not a directory")
    code, out = run_cli(capsys, "experiments", "--root", str(root))
    assert code == 2 and "is a file, not a directory" in one_line_error(out)
    assert root.read_text() == "not a directory"


def test_read_only_root(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "ro"
    root.mkdir()
    if os.geteuid() == 0:  # root ignores permission bits: fail the writes as a read-only file system does
        real_mkdir = Path.mkdir

        def read_only(self: Path, *args: object, **kwargs: object) -> None:
            if self.is_relative_to(root):
                raise OSError(errno.EROFS, "Read-only file system", str(self))
            real_mkdir(self, *args, **kwargs)

        monkeypatch.setattr(Path, "mkdir", read_only)
    else:
        root.chmod(0o555)
    try:
        code, out = run_cli(capsys, "executions", "--root", str(root))
    finally:
        root.chmod(0o755)
    line = one_line_error(out)
    assert code == 2 and "make the root" in line and "writable or choose another --root" in line
    assert list(root.iterdir()) == []


def test_corrupt_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "nyanops.db").write_bytes(b"garbage, not SQLite" * 100)
    code, out = run_cli(capsys, "experiments", "--root", str(root))
    line = one_line_error(out)
    assert code == 2 and "is not a readable nyanops database" in line and "nyanops.db.bad" in line
    assert (root / "nyanops.db").read_bytes().startswith(b"garbage")


def test_database_locked_by_another_process(local: Local, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    assert local.cli("run", str(local.manifest()), "--wait").code == 0
    monkeypatch.setenv("NYANOPS_DB_TIMEOUT", "0.2")
    other = sqlite3.connect(local.root / "nyanops.db", isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        code, out = run_cli(capsys, "cleanup", "--yes", "--root", str(local.root))
    finally:
        other.execute("ROLLBACK")
        other.close()
    line = one_line_error(out)
    assert code == 2 and "is locked by another process" in line and "NYANOPS_DB_TIMEOUT" in line
    assert len(local.cli("experiments", "--json").out.strip()) > 2  # nothing was deleted


def test_disk_full(local: Local, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    def full(self: LocalObjectStore, key: str, body: bytes, content_type: str = "") -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(self.path(key)))

    monkeypatch.setattr(LocalObjectStore, "put", full)
    code, out = run_cli(capsys, "run", str(local.manifest()), "--root", str(local.root))
    line = one_line_error(out)
    assert code == 2 and "no space left on the disk" in line and "free some space" in line


def test_cleanup_of_an_empty_name_is_refused(local: Local) -> None:
    assert local.cli("run", str(local.manifest()), "--wait").code == 0
    for name in ("", "  "):
        refused = local.cli("cleanup", name, "--yes")
        assert refused.code == 2 and "the experiment name is empty" in refused.err
    assert '"experiment": "cats"' in local.cli("experiments", "--json").out


def test_report_never_overwrites_the_roots_files_or_other_files(local: Local) -> None:
    assert local.cli("run", str(local.manifest()), "--wait").code == 0
    db = local.root / "nyanops.db"
    before = db.read_bytes()
    for target in (db, local.root / "nyanops.db-wal", local.root / "bucket" / "x.html"):
        refused = local.cli("report", "-o", str(target))
        assert refused.code == 2 and "refusing to write the report over" in refused.err, refused.err
    assert db.read_bytes() == before
    photo = local.tmp / "holiday.jpg"
    photo.write_bytes(b"\xff\xd8\xff not a report")
    refused = local.cli("report", "-o", str(photo))
    assert refused.code == 2 and "it is not a report nyanops wrote" in refused.err
    assert photo.read_bytes() == b"\xff\xd8\xff not a report"
    out = local.tmp / "r.html"
    assert local.cli("report", "-o", str(out)).code == 0
    assert local.cli("report", "-o", str(out)).code == 0  # its own report is replaced
