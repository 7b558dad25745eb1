"""The local SQLite database: trials (what SageMaker Experiments holds on AWS) and executions with
their state-by-state history (what Step Functions shows). One file, WAL mode, so the CLI can read
while a run writes, from any process."""

from __future__ import annotations

import sqlite3
from pathlib import Path

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
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.executescript(SCHEMA)
    _migrate(conn)
    return conn


def _migrate(conn: sqlite3.Connection) -> None:
    """Add the newer trial columns, fill the experiment keys, and keep one best per key (an older database
    may hold "cats" and "Cats" as two experiments, each with a best: the first flagged one keeps it)."""
    have = {r["name"] for r in conn.execute("PRAGMA table_info(trials)")}
    missing = {name: kind for name, kind in TRIAL_COLUMNS_ADDED.items() if name not in have}
    have_executions = {r["name"] for r in conn.execute("PRAGMA table_info(executions)")}
    missing_executions = {n: k for n, k in EXECUTION_COLUMNS_ADDED.items() if n not in have_executions}
    if missing or missing_executions or conn.execute(
        "SELECT 1 FROM trials WHERE experiment_key IS NULL LIMIT 1"
    ).fetchone():
        conn.execute("BEGIN IMMEDIATE")
        try:
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
    conn.executescript(INDEXES)
