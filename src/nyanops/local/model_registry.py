"""The model registry on one machine: the ``model_packages`` table of the SQLite database, what SageMaker's
model package groups hold on AWS (``nyanops.core.model_registry``).

Versions are numbered from 1 per experiment key (``Cats`` and ``cats`` are one experiment, as in the experiment
store), like SageMaker's ``ModelPackageVersion``; the metadata is the same ``CustomerMetadataProperties``,
checked against the same limits. RecordResults calls it inside the experiment's decision transaction
(``BEGIN IMMEDIATE`` on the same connection), so a hand-over is atomic here; the table's unique keys hold one
package per trial and one row per version even if the calling code were wrong.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import datetime, timezone

from nyanops.core import limits
from nyanops.core.model_registry import APPROVAL_STATUSES, APPROVED, ModelPackage, PackageSpec, check_metadata
from nyanops.core.naming import experiment_key


class SQLiteModelRegistry:
    def __init__(
        self, conn: sqlite3.Connection, clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)
    ) -> None:
        self._db = conn
        self._clock = clock

    def packages(self, experiment: str) -> list[ModelPackage]:
        rows = self._db.execute(
            "SELECT * FROM model_packages WHERE experiment_key = ? ORDER BY version", (experiment_key(experiment),)
        ).fetchall()
        return [_package(r) for r in rows]

    def experiments(self) -> list[str]:
        rows = self._db.execute(
            "SELECT experiment FROM model_packages WHERE version = "
            "(SELECT min(version) FROM model_packages AS m WHERE m.experiment_key = model_packages.experiment_key) "
            "ORDER BY experiment_key"
        ).fetchall()
        return [r["experiment"] for r in rows]

    def register(self, spec: PackageSpec) -> ModelPackage:
        key = experiment_key(spec.experiment)
        metadata = spec.metadata()
        check_metadata(metadata)
        known = self._db.execute(
            "SELECT experiment, max(version) AS last FROM model_packages WHERE experiment_key = ?", (key,)
        ).fetchone()
        experiment = known["experiment"] or spec.experiment
        version = (known["last"] or 0) + 1
        now = self._clock().isoformat()
        self._db.execute(
            """INSERT INTO model_packages (experiment_key, experiment, version, trial, status, description, metadata,
               metric, value, dataset_id, model_location, created_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (
                key, experiment, version, spec.trial, APPROVED, spec.description(), json.dumps(metadata),
                spec.metric, spec.value, spec.dataset_id, spec.model_location, now,
            ),
        )
        row = self._db.execute(
            "SELECT * FROM model_packages WHERE experiment_key = ? AND version = ?", (key, version)
        ).fetchone()
        return _package(row)

    def set_status(self, package: ModelPackage, status: str, reason: str) -> None:
        if status not in APPROVAL_STATUSES:
            raise ValueError(f"unknown approval status {status!r}; use one of {', '.join(APPROVAL_STATUSES)}")
        changed = self._db.execute(
            "UPDATE model_packages SET status = ?, approval_description = ?, updated_at = ? "
            "WHERE experiment_key = ? AND version = ?",
            (
                status, limits.clip(reason, limits.MODEL_PACKAGE_DESCRIPTION_MAX), self._clock().isoformat(),
                experiment_key(package.experiment), package.version,
            ),
        ).rowcount
        if changed != 1:
            raise LookupError(f"no version {package.version} in the model registry of experiment {package.experiment}")


def _package(r: sqlite3.Row) -> ModelPackage:
    return ModelPackage(
        experiment=r["experiment"],
        version=r["version"],
        trial=r["trial"],
        status=r["status"],
        created_at=datetime.fromisoformat(r["created_at"]),
        metric=r["metric"],
        value=r["value"],
        dataset_id=r["dataset_id"],
        model_location=r["model_location"],
        description=r["description"],
        metadata=json.loads(r["metadata"] or "{}"),
    )
