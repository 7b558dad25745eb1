"""The dataset registry on the local side: a table in the root's SQLite database, behind the same port as
the DynamoDB table on AWS (``nyanops.core.dataset_registry``). Each conditional change runs in one
``BEGIN IMMEDIATE`` transaction, so two processes (two ``watch`` commands on one root) cannot both claim a
dataset."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from nyanops.core.dataset_registry import (
    REOPENED_BY_UPLOADS,
    SEALED,
    SEALING,
    WAITING,
    DatasetRecord,
)


class SQLiteDatasetRegistry:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._db = conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def note(self, dataset_id: str, count: int, now: float) -> str:
        with self._transaction() as db:
            row = db.execute("SELECT state FROM dataset_registry WHERE dataset_id = ?", (dataset_id,)).fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO dataset_registry (dataset_id, state, last_upload_at, uploads, updated_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (dataset_id, WAITING, now, count, now),
                )
                return WAITING
            state = row["state"]
            if state == SEALED:
                return SEALED
            new_state = WAITING if state in REOPENED_BY_UPLOADS else state
            db.execute(
                "UPDATE dataset_registry SET state = ?, last_upload_at = ?, uploads = uploads + ?, updated_at = ?, "
                "reason = CASE WHEN ? = state THEN reason ELSE '' END WHERE dataset_id = ?",
                (new_state, now, count, now, new_state, dataset_id),
            )
            return new_state

    def mark_sealed(self, dataset_id: str, now: float) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO dataset_registry (dataset_id, state, last_upload_at, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(dataset_id) DO UPDATE SET state = excluded.state, owner = NULL, lease_until = NULL, "
                "reason = '', updated_at = excluded.updated_at",
                (dataset_id, SEALED, now, now),
            )

    def due(self, cutoff: float) -> list[str]:
        rows = self._db.execute(
            "SELECT dataset_id FROM dataset_registry WHERE state IN (?, ?) AND last_upload_at <= ? "
            "ORDER BY last_upload_at",
            (WAITING, SEALING, cutoff),
        ).fetchall()
        return [r["dataset_id"] for r in rows]

    def claim(self, dataset_id: str, owner: str, now: float, lease_until: float, cutoff: float) -> DatasetRecord | None:
        with self._transaction() as db:
            cur = db.execute(
                "UPDATE dataset_registry SET state = ?, owner = ?, lease_until = ?, updated_at = ? "
                "WHERE dataset_id = ? AND ((state = ? AND last_upload_at <= ?) OR (state = ? AND lease_until < ?))",
                (SEALING, owner, lease_until, now, dataset_id, WAITING, cutoff, SEALING, now),
            )
            if cur.rowcount != 1:
                return None
        return self.get(dataset_id)

    def still_quiet(self, dataset_id: str, owner: str, last_upload_at: float) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM dataset_registry WHERE dataset_id = ? AND state = ? AND owner = ? AND last_upload_at = ?",
            (dataset_id, SEALING, owner, last_upload_at),
        ).fetchone()
        return row is not None

    def release(self, dataset_id: str, owner: str, state: str, reason: str, now: float) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE dataset_registry SET state = ?, reason = ?, owner = NULL, lease_until = NULL, updated_at = ? "
                "WHERE dataset_id = ? AND state = ? AND owner = ?",
                (state, reason, now, dataset_id, SEALING, owner),
            )

    def get(self, dataset_id: str) -> DatasetRecord | None:
        row = self._db.execute("SELECT * FROM dataset_registry WHERE dataset_id = ?", (dataset_id,)).fetchone()
        return _record(row) if row is not None else None

    def all(self) -> list[DatasetRecord]:
        rows = self._db.execute("SELECT * FROM dataset_registry ORDER BY dataset_id").fetchall()
        return [_record(r) for r in rows]


def _record(row: sqlite3.Row) -> DatasetRecord:
    return DatasetRecord(
        dataset_id=row["dataset_id"],
        state=row["state"],
        last_upload_at=row["last_upload_at"],
        uploads=row["uploads"],
        owner=row["owner"],
        lease_until=row["lease_until"],
        reason=row["reason"],
        updated_at=row["updated_at"],
    )
