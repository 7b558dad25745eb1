"""``nyanops datasets``: each dataset prefix with its state, the same way for the local root and a bucket."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from nyanops import cli
from nyanops.core import layout


def nyanops(root: Path, *args: str) -> int:
    return cli.main(["--root", str(root), *args])


def photos(folder: Path) -> Path:
    for split in layout.SPLITS:
        for cls in ("mike", "tama"):
            (folder / split / cls).mkdir(parents=True, exist_ok=True)
            (folder / split / cls / "a.jpg").write_bytes(f"\xff\xd8 {split} {cls}".encode())
    return folder


def test_every_state_with_its_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "root"
    monkeypatch.setenv("NYANOPS_QUIET_SECONDS", "1")
    assert nyanops(root, "dataset", "add", str(photos(tmp_path / "a")), "--name", "added", "--no-run") == 0
    bucket = root / "bucket" / "datasets"
    photos(bucket / "dropped")
    photos(bucket / "notes")
    (bucket / "notes" / "train" / "mike" / "notes.txt").write_text("feed Tama")
    photos(bucket / "claimed")
    (bucket / "claimed" / layout.DATASET_CLAIM).write_text(json.dumps(
        {"tool": "nyanops dataset add", "host": "laptop", "started_at": "2026-11-28T06:40:00+00:00", "files": 12}))
    assert nyanops(root, "watch", "--once") == 0  # notices the uploads (nothing has been quiet yet)
    time.sleep(1.2)
    assert nyanops(root, "watch", "--once") == 0  # seals "dropped", refuses "notes", leaves "claimed"
    capsys.readouterr()

    assert nyanops(root, "datasets", "--json") == 0
    table = {row["dataset"]: row for row in json.loads(capsys.readouterr().out)}
    assert set(table) == {"added", "dropped", "notes", "claimed"}
    assert table["added"]["state"] == "sealed" and "sealed by `nyanops dataset add`" in table["added"]["detail"]
    assert "(no run: --no-run)" in table["added"]["detail"]
    assert table["dropped"]["state"] == "sealed" and "sealed by the pipeline" in table["dropped"]["detail"]
    assert table["notes"]["state"] == "refused"
    assert "non-image files: datasets/notes/train/mike/notes.txt" in table["notes"]["detail"]
    assert table["claimed"]["state"] == "uploading" and "`dataset add` from laptop" in table["claimed"]["detail"]
    assert "re-run the same command to resume" in table["claimed"]["detail"] and table["claimed"]["files"] == 6

    photos(bucket / "fresh")
    (bucket / "added" / "train" / "mike" / "late.jpg").write_bytes(b"\xff\xd8 late")
    assert nyanops(root, "datasets") == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert "waiting" in lines["fresh"] and "last file" in lines["fresh"] and "s ago" in lines["fresh"]
    assert "CHANGED since sealing (1 file(s) not sealed)" in lines["added"]


def test_an_empty_root_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert nyanops(tmp_path / "root", "datasets") == 0
    assert "no datasets in local root" in capsys.readouterr().out
