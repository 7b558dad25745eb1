"""``nyanops watch`` through the CLI: odd entries in the bucket never stop it, each is mentioned once;
``dataset add --no-run`` starts nothing even when watch sees the seal; ``--once`` says what it does."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nyanops import cli
from nyanops.core import layout
from nyanops.local.database import connect
from nyanops.local.executions import ExecutionStore


def nyanops(root: Path, *args: str) -> int:
    return cli.main(["--root", str(root), *args])


def photos(folder: Path) -> Path:
    for split in layout.SPLITS:
        for cls in ("mike", "tama"):
            (folder / split / cls).mkdir(parents=True)
            (folder / split / cls / "a.jpg").write_bytes(f"\xff\xd8 {split} {cls}".encode())
    return folder


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "root"


def odd_bucket(root: Path) -> dict[str, str]:
    """One of each entry that used to stop watch on every start; what watch must say about each."""
    manifests = root / "bucket" / "manifests"
    manifests.mkdir(parents=True)
    os.mkfifo(manifests / "fifo.json")
    os.symlink(root / "nowhere.json", manifests / "dangling.json")
    with open(os.fsencode(manifests) + b"/caf\xe9.json", "wb") as fh:
        fh.write(b'{"experiment": "cats"}')
    long_name = "x" * 240 + ".json"  # 245 characters: its refusal record's name would pass 255 bytes
    (manifests / long_name).write_text("{not json")
    dataset = root / "bucket" / "datasets" / "odd" / "train" / "mike"
    dataset.mkdir(parents=True)
    os.mkfifo(dataset / "pipe.jpg")
    os.symlink(root / "nowhere.jpg", dataset / "gone.jpg")
    return {
        "fifo": "skipped bucket/manifests/fifo.json: a named pipe (FIFO), not a file; remove it",
        "dangling": "skipped bucket/manifests/dangling.json: a symbolic link to nothing; remove it",
        "latin1": "skipped bucket/manifests/caf\\udce9.json: the name is not UTF-8 (S3 keys are UTF-8); rename it",
        "long": f"skipped bucket/manifests/{long_name}: it could not be handled (OSError: [Errno 36] File name "
                "too long",
        "dataset-fifo": "skipped bucket/datasets/odd/train/mike/pipe.jpg: a named pipe (FIFO), not a file; remove it",
        "dataset-link": "skipped bucket/datasets/odd/train/mike/gone.jpg: a symbolic link to nothing; remove it",
    }


def test_odd_entries_are_skipped_with_one_message_each_and_watch_survives_restarts(
        root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    expected = odd_bucket(root)
    assert nyanops(root, "watch", "--once") == 0
    err = capsys.readouterr().err
    for what, message in expected.items():
        assert err.count(message) == 1, (what, err)
    assert "Traceback" not in err
    assert nyanops(root, "watch", "--once") == 0  # a restart meets the same entries and goes on
    again = capsys.readouterr()
    assert "Traceback" not in again.err
    assert expected["long"] not in again.err, "handled (and refused) once, also across restarts"
    assert ExecutionStore(connect(root / "nyanops.db")).list() == []


def test_once_says_it_scans_once(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert nyanops(root, "watch", "--once") == 0
    out = capsys.readouterr().out
    assert "scanning" in out and "once" in out and "Ctrl-C" not in out


def test_dataset_add_no_run_starts_nothing_even_when_watch_sees_the_seal(
        root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert nyanops(root, "dataset", "add", str(photos(tmp_path / "photos")), "--name", "quiet", "--no-run") == 0
    assert nyanops(root, "watch", "--once") == 0
    out = capsys.readouterr().out
    assert "nothing to do for datasets/quiet/_dataset.json: datasets/quiet is sealed with start_run false" in out
    assert ExecutionStore(connect(root / "nyanops.db")).list() == []


def test_the_quiet_period_option_is_checked(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        nyanops(root, "watch", "--quiet", "0")
    assert "must be between 0 and 86400 seconds" in capsys.readouterr().err
