"""Local executions: starting them under their deterministic names (a duplicate name is reported,
as Step Functions' ``ExecutionAlreadyExists``), persisting their state-by-state history, and
finding runs whose process died (marked ``INTERRUPTED`` so they never look alive forever).

A process is identified by its PID and its start time: after the run's process died, the operating
system may give its PID to another process, which must not keep the run looking alive."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from nyanops.core.ports import StartResult

PENDING = "PENDING"
RUNNING = "RUNNING"
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
INTERRUPTED = "INTERRUPTED"
ACTIVE = (PENDING, RUNNING)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@dataclass
class ExecutionRow:
    name: str
    status: str
    input: dict[str, Any]
    output: Any
    error: str | None
    cause: str | None
    source_key: str | None
    experiment: str | None
    created_at: str
    started_at: str | None
    stopped_at: str | None
    pid: int | None

    @classmethod
    def from_row(cls, r: sqlite3.Row) -> ExecutionRow:
        return cls(
            name=r["name"],
            status=r["status"],
            input=json.loads(r["input"]),
            output=json.loads(r["output"]) if r["output"] else None,
            error=r["error"],
            cause=r["cause"],
            source_key=r["source_key"],
            experiment=r["experiment"],
            created_at=r["created_at"],
            started_at=r["started_at"],
            stopped_at=r["stopped_at"],
            pid=r["pid"],
        )

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.stopped_at:
            return (datetime.fromisoformat(self.stopped_at) - datetime.fromisoformat(self.started_at)).total_seconds()
        return None


class ExecutionStore:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._db = conn

    # -- the ExecutionStarter port ----------------------------------------------------------------
    def start(self, name: str, execution_input: dict[str, Any]) -> StartResult:
        try:
            self._db.execute(
                "INSERT INTO executions (name, status, input, source_key, experiment, created_at) VALUES (?,?,?,?,?,?)",
                (
                    name,
                    PENDING,
                    json.dumps(execution_input),
                    (execution_input.get("source") or {}).get("key"),
                    execution_input.get("experiment"),
                    now_iso(),
                ),
            )
        except sqlite3.IntegrityError:
            return StartResult(name, started=False)
        return StartResult(name, started=True, execution_id=name)

    # -- lifecycle ----------------------------------------------------------------------------------
    def claim(self, name: str) -> bool:
        """Mark a pending execution as running in this process; False if someone else has it."""
        pid = os.getpid()
        cur = self._db.execute(
            "UPDATE executions SET status = ?, started_at = ?, pid = ?, pid_started = ?, host = ? "
            "WHERE name = ? AND status = ?",
            (RUNNING, now_iso(), pid, process_start(pid), socket.gethostname(), name, PENDING),
        )
        return cur.rowcount == 1

    def finish(
        self, name: str, status: str, output: Any = None, error: str | None = None, cause: str | None = None
    ) -> None:
        self._db.execute(
            "UPDATE executions SET status = ?, output = ?, error = ?, cause = ?, stopped_at = ? WHERE name = ?",
            (status, json.dumps(output) if output is not None else None, error, cause, now_iso(), name),
        )

    def add_event(self, name: str, event_type: str, state: str | None, detail: Any) -> None:
        self._db.execute(
            """INSERT INTO execution_events (execution, seq, at, type, state, detail)
               VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM execution_events WHERE execution = ?), ?, ?, ?, ?)""",
            (name, name, now_iso(), event_type, state, json.dumps(detail, default=str) if detail is not None else None),
        )

    def mark_seen(self, key: str, version: str, outcome: str) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO uploads_seen (key, version, outcome, at) VALUES (?, ?, ?, ?)",
            (key, version, outcome, now_iso()),
        )

    def seen(self, key: str, version: str) -> bool:
        row = self._db.execute("SELECT 1 FROM uploads_seen WHERE key = ? AND version = ?", (key, version)).fetchone()
        return row is not None

    # -- reading ------------------------------------------------------------------------------------
    def get(self, name: str) -> ExecutionRow | None:
        r = self._db.execute("SELECT * FROM executions WHERE name = ?", (name,)).fetchone()
        return ExecutionRow.from_row(r) if r else None

    def find(self, prefix: str) -> list[ExecutionRow]:
        rows = self._db.execute(
            "SELECT * FROM executions WHERE name LIKE ? ESCAPE '\\' ORDER BY created_at",
            (prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%",),
        ).fetchall()
        return [ExecutionRow.from_row(r) for r in rows]

    def list(self, limit: int = 50) -> list[ExecutionRow]:
        rows = self._db.execute("SELECT * FROM executions ORDER BY created_at DESC LIMIT ?", (limit,)).fetchall()
        return [ExecutionRow.from_row(r) for r in rows]

    def pending(self) -> list[str]:
        rows = self._db.execute("SELECT name FROM executions WHERE status = ? ORDER BY created_at", (PENDING,))
        return [r["name"] for r in rows]

    def events(self, name: str) -> list[dict[str, Any]]:
        rows = self._db.execute(
            "SELECT seq, at, type, state, detail FROM execution_events WHERE execution = ? ORDER BY seq", (name,)
        ).fetchall()
        return [
            {
                "seq": r["seq"],
                "at": r["at"],
                "type": r["type"],
                "state": r["state"],
                "detail": json.loads(r["detail"]) if r["detail"] else None,
            }
            for r in rows
        ]

    def orphaned(self) -> list[ExecutionRow]:
        """Running executions whose process on this host is gone (killed, crashed, power cut)."""
        rows = self._db.execute(
            "SELECT * FROM executions WHERE status = ? AND host = ?", (RUNNING, socket.gethostname())
        ).fetchall()
        return [ExecutionRow.from_row(r) for r in rows if not _alive(r["pid"], r["pid_started"])]


def process_start(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, from /proc/<pid>/stat), or None where unknown."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return start_time_from_stat(fh.read())
    except OSError:
        return None


def start_time_from_stat(stat: str) -> str | None:
    """Field 22 (starttime) of a /proc/<pid>/stat line; the command name in parentheses may hold spaces and ")"."""
    fields = stat.rsplit(")", 1)[-1].split()  # after "pid (comm)": state is field 3, starttime field 22
    return fields[19] if len(fields) > 19 else None


def _alive(pid: int | None, started: str | None = None) -> bool:
    """The run's process still runs: the PID exists and, when its start time was recorded, is the same process."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if started is None:
        return True
    return process_start(pid) in (None, started)
