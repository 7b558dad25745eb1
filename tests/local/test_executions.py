"""Local executions: a run whose process died is found (and a reused PID does not keep it alive)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from nyanops.local import executions as ex
from nyanops.local.database import connect


@pytest.fixture
def store(tmp_path: Path) -> ex.ExecutionStore:
    return ex.ExecutionStore(connect(tmp_path / "nyanops.db"))


def running(store: ex.ExecutionStore, name: str, pid: int, started: str | None) -> None:
    store.start(name, {"experiment": "cats", "trial": name, "source": {"key": "manifests/x.json"}})
    store._db.execute("UPDATE executions SET status = ?, pid = ?, pid_started = ?, host = ? WHERE name = ?",
                      (ex.RUNNING, pid, started, socket.gethostname(), name))


def test_claim_records_the_process_and_its_start_time(store: ex.ExecutionStore) -> None:
    store.start("run-1", {"experiment": "cats"})
    assert store.claim("run-1") is True and store.claim("run-1") is False
    row = store._db.execute("SELECT pid, pid_started FROM executions WHERE name = 'run-1'").fetchone()
    assert row["pid"] == os.getpid()
    if sys.platform.startswith("linux"):
        assert row["pid_started"] == ex.process_start(os.getpid()) is not None
    assert store.orphaned() == []  # this very process is alive


def test_a_dead_process_leaves_an_orphan(store: ex.ExecutionStore) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    running(store, "run-dead", child.pid, None)
    assert [r.name for r in store.orphaned()] == ["run-dead"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process start times come from /proc (Linux)")
def test_a_reused_pid_does_not_keep_a_run_alive(store: ex.ExecutionStore) -> None:
    """The run's process died and the OS gave its PID to another process (here: this one): still an orphan."""
    mine = ex.process_start(os.getpid())
    assert mine is not None
    running(store, "run-reused", os.getpid(), str(int(mine) - 1))
    running(store, "run-alive", os.getpid(), mine)
    assert [r.name for r in store.orphaned()] == ["run-reused"]


def test_runs_of_another_host_are_left_alone(store: ex.ExecutionStore) -> None:
    running(store, "run-elsewhere", 999_999_999, None)
    store._db.execute("UPDATE executions SET host = 'another-host' WHERE name = 'run-elsewhere'")
    assert store.orphaned() == []


def test_start_time_parsing() -> None:
    fields = " ".join(str(i) for i in range(3, 53))  # fields 3..52
    assert ex.start_time_from_stat(f"4242 (tricky) name)) {fields}") == "22"
    assert ex.start_time_from_stat("4242 (short) S 1 2") is None
    assert ex.process_start(2**22 + 12345) is None  # no such process


def test_an_older_database_gets_the_new_column(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.executescript("""CREATE TABLE executions (name TEXT PRIMARY KEY, status TEXT NOT NULL, input TEXT NOT NULL,
        output TEXT, error TEXT, cause TEXT, source_key TEXT, experiment TEXT, created_at TEXT NOT NULL,
        started_at TEXT, stopped_at TEXT, pid INTEGER, host TEXT);""")
    old.execute("INSERT INTO executions (name, status, input, created_at) VALUES ('r', 'PENDING', ?, 'x')",
                (json.dumps({}),))
    old.commit()
    old.close()
    store = ex.ExecutionStore(connect(path))
    assert store.claim("r") is True
