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
    per_class_f1 TEXT DEFAULT '{}',
    confusion_matrix TEXT DEFAULT '{}',
    model_location TEXT DEFAULT '',
    evaluation_location TEXT DEFAULT '',
    best_epoch INTEGER,
    is_best INTEGER NOT NULL DEFAULT 0,
    error TEXT DEFAULT '',
    PRIMARY KEY (experiment, trial)
);
-- The exactly-one-best rule, enforced by the database itself as well as by the decision code.
CREATE UNIQUE INDEX IF NOT EXISTS one_best_per_experiment ON trials(experiment) WHERE is_best = 1;

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


def connect(path: Path) -> sqlite3.Connection:
    """Open (and create if needed) the database at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.executescript(SCHEMA)
    return conn
