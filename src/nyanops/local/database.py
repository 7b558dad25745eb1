"""The local SQLite database: trials (what SageMaker Experiments holds on AWS), the model registry (SageMaker's
Model Registry) and executions with their state-by-state history (what Step Functions shows). One file, WAL
mode, so the CLI can read while a run writes, from any process, and each thread of a run (a Map state's
iterations) has its own connection. Tables added since the first release are created when an older database
is opened (``CREATE TABLE IF NOT EXISTS``), columns by ``_migrate``."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

# How long a command waits for another process's write to the database to finish (seconds).
TIMEOUT_ENV = "NYANOPS_DB_TIMEOUT"
DEFAULT_TIMEOUT = 30.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS trials (
    experiment TEXT NOT NULL,
    trial TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    execution_name TEXT,
    dataset_id TEXT DEFAULT '',
    dataset_hash TEXT DEFAULT '',
    code_hash TEXT DEFAULT '',
    comment TEXT DEFAULT '',
    source_key TEXT DEFAULT '',
    hyperparameters TEXT DEFAULT '{}',
    metrics TEXT DEFAULT '{}',
    model_location TEXT DEFAULT '',
    evaluation_location TEXT DEFAULT '',
    best_epoch INTEGER,
    is_best INTEGER NOT NULL DEFAULT 0,
    error TEXT DEFAULT '',
    PRIMARY KEY (experiment, trial)
);
CREATE TABLE IF NOT EXISTS executions (
    name TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    input TEXT NOT NULL,
    output TEXT,
    error TEXT,
    cause TEXT,
    source_key TEXT,
    experiment TEXT,
    created_at TEXT NOT NULL,
    started_at TEXT,
    stopped_at TEXT,
    pid INTEGER,
    host TEXT
);
-- Uploads already handed to StartPipeline (or deliberately not, with `dataset add --no-run`), so that
-- `nyanops watch` acts once per upload even across restarts.
CREATE TABLE IF NOT EXISTS uploads_seen (
    key TEXT NOT NULL,
    version TEXT NOT NULL,
    outcome TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (key, version)
);
-- The dataset registry (nyanops.core.dataset_registry): one row per datasets/<id>/ prefix, what the DynamoDB
-- table holds on AWS.
CREATE TABLE IF NOT EXISTS dataset_registry (
    dataset_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    last_upload_at REAL NOT NULL,
    uploads INTEGER NOT NULL DEFAULT 0,
    owner TEXT,
    lease_until REAL,
    reason TEXT NOT NULL DEFAULT '',
    updated_at REAL NOT NULL DEFAULT 0
);
-- The objects under datasets/ that `nyanops watch` has noticed (key as UTF-8 bytes, undecodable ones kept as
-- they are), so it sends each creation, change or removal to the upload noter once, also across restarts.
CREATE TABLE IF NOT EXISTS dataset_objects_seen (
    key BLOB PRIMARY KEY,
    version TEXT NOT NULL
);
-- The model registry (nyanops.core.model_registry): each experiment's best models as versions numbered from 1
-- per experiment key, what SageMaker's model package groups hold on AWS. One package per trial.
CREATE TABLE IF NOT EXISTS model_packages (
    experiment_key TEXT NOT NULL,
    experiment TEXT NOT NULL,
    version INTEGER NOT NULL,
    trial TEXT NOT NULL,
    status TEXT NOT NULL,
    description TEXT NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}',
    metric TEXT NOT NULL DEFAULT '',
    value REAL,
    dataset_id TEXT NOT NULL DEFAULT '',
    model_location TEXT NOT NULL DEFAULT '',
    approval_description TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    updated_at TEXT,
    PRIMARY KEY (experiment_key, version),
    UNIQUE (experiment_key, trial)
);
CREATE TABLE IF NOT EXISTS execution_events (
    execution TEXT NOT NULL REFERENCES executions(name),
    seq INTEGER NOT NULL,
    at TEXT NOT NULL,
    type TEXT NOT NULL,
    state TEXT,
    detail TEXT,
    PRIMARY KEY (execution, seq)
);
"""


_OPTIONS: dict[str, Any] = {"timeout": 30, "isolation_level": None, "check_same_thread": False}


class ThreadedConnection(sqlite3.Connection):
    """A connection whose statements run on a connection of the calling thread's own.

    One sqlite3 connection used from several threads would share its transaction between them: a Map state's
    iterations record their trials (``BEGIN IMMEDIATE`` ... ``COMMIT``) and the history at the same time. So
    the thread that opened it uses it directly and every other thread gets its own connection to the same
    file on first use (WAL and the busy timeout serialize the writers); ``close`` closes them all.
    """

    def __init__(self, path: Path, **options: Any) -> None:
        super().__init__(path, **options)
        self._path, self._options = path, options
        self._owner = threading.get_ident()
        self._local = threading.local()
        self._others: list[sqlite3.Connection] = []
        self._others_lock = threading.Lock()

    def _for_this_thread(self) -> sqlite3.Connection | None:
        if threading.get_ident() == self._owner:
            return None
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self._path, **self._options)
            conn.row_factory = self.row_factory
            conn.execute(f"PRAGMA busy_timeout={int(self._options['timeout'] * 1000)}")
            self._local.conn = conn
            with self._others_lock:
                self._others.append(conn)
        return conn

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        other = self._for_this_thread()
        return super().execute(sql, parameters) if other is None else other.execute(sql, parameters)

    def executescript(self, sql_script: str, /) -> sqlite3.Cursor:
        other = self._for_this_thread()
        return super().executescript(sql_script) if other is None else other.executescript(sql_script)

    def close(self) -> None:
        with self._others_lock:
            others, self._others = self._others, []
        for conn in others:
            conn.close()
        super().close()


def busy_timeout() -> float:
    """Seconds to wait for a lock held by another process (``NYANOPS_DB_TIMEOUT``, default 30)."""
    try:
        return max(0.0, float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT)))
    except ValueError:
        return DEFAULT_TIMEOUT


# Columns added since the first release: added to an existing database on open.
TRIAL_COLUMNS_ADDED = {
    # Experiment names are case-insensitive in SageMaker: "cats" and "Cats" are one experiment locally too.
    "experiment_key": "TEXT",
    "test_hash": "TEXT DEFAULT ''",
    "classes_key": "TEXT DEFAULT ''",
    "decision": "TEXT DEFAULT ''",
    "compared_with": "TEXT DEFAULT ''",
    "champion_value": "REAL",
    "num_test_images": "INTEGER",
    # The completed trial whose results a reused trial took (nyanops.core.reuse); '' for a trained one.
    "reused_from": "TEXT DEFAULT ''",
}
EXECUTION_COLUMNS_ADDED = {
    # When the process that claimed the run started (Linux: /proc/<pid>/stat), so a reused PID is not taken
    # for the run's process (local.executions.orphaned).
    "pid_started": "TEXT",
}
INDEXES = """
-- One trial per name within an experiment, and the exactly-one-best rule, both per experiment KEY (the
-- case-insensitive name), enforced by the database itself as well as by the decision code.
CREATE UNIQUE INDEX IF NOT EXISTS trial_per_experiment_key ON trials(experiment_key, trial);
CREATE UNIQUE INDEX IF NOT EXISTS one_best_per_experiment_key ON trials(experiment_key) WHERE is_best = 1;
"""


def connect(path: Path) -> sqlite3.Connection:
    """Open (and create if needed) the database at ``path``, bringing an older one up to date."""
    path.parent.mkdir(parents=True, exist_ok=True)
    timeout = busy_timeout()
    deadline = time.monotonic() + timeout
    while True:
        conn = ThreadedConnection(path, **{**_OPTIONS, "timeout": timeout})
        try:
            _prepare(conn, timeout)
            return conn
        except sqlite3.OperationalError as exc:
            conn.close()
            # Setting up a new file (WAL mode, the schema) can meet another process doing the same; SQLite
            # then answers "locked" at once, without its busy wait: try again within the same timeout.
            if not _is_busy(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


def _prepare(conn: sqlite3.Connection, timeout: float) -> None:
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(SCHEMA)
    _migrate(conn)
    conn.executescript(INDEXES)


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _migrate(conn: sqlite3.Connection) -> None:
    """Add the newer trial columns, fill the experiment keys, and keep one best per key (an older database
    may hold "cats" and "Cats" as two experiments, each with a best: the first flagged one keeps it).

    What is missing is looked at again inside the write lock: two processes opening a new root at once (two
    `dataset add`, a `watch` and a `run`) both see the columns missing, and the second must not add them again."""
    if not _needs_migration(conn):
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        missing, missing_executions = _missing_columns(conn)
        for name, kind in missing.items():
            conn.execute(f"ALTER TABLE trials ADD COLUMN {name} {kind}")
        for name, kind in missing_executions.items():
            conn.execute(f"ALTER TABLE executions ADD COLUMN {name} {kind}")
        conn.execute("UPDATE trials SET experiment_key = lower(experiment) WHERE experiment_key IS NULL")
        conn.execute(
            "UPDATE trials SET is_best = 0 WHERE is_best = 1 AND rowid NOT IN "
            "(SELECT min(rowid) FROM trials WHERE is_best = 1 GROUP BY experiment_key)"
        )
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _missing_columns(conn: sqlite3.Connection) -> tuple[dict[str, str], dict[str, str]]:
    have = {r["name"] for r in conn.execute("PRAGMA table_info(trials)")}
    have_executions = {r["name"] for r in conn.execute("PRAGMA table_info(executions)")}
    return (
        {name: kind for name, kind in TRIAL_COLUMNS_ADDED.items() if name not in have},
        {name: kind for name, kind in EXECUTION_COLUMNS_ADDED.items() if name not in have_executions},
    )


def _needs_migration(conn: sqlite3.Connection) -> bool:
    missing, missing_executions = _missing_columns(conn)
    if missing or missing_executions:
        return True
    return conn.execute("SELECT 1 FROM trials WHERE experiment_key IS NULL LIMIT 1").fetchone() is not None
