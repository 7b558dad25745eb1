"""The best-model decision: which completed trial of an experiment holds ``is_best = 1``.

Rules: only completed trials with a finite value of the primary metric compete; higher is better
except for metrics listed as lower-is-better; on a tie the trial that finished first keeps the flag
(so a re-run with equal results does not steal it). Failed and in-progress trials never win.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

HIGHER_IS_BETTER = ("macro_f1", "accuracy", "macro_precision", "macro_recall", "weighted_f1")
LOWER_IS_BETTER = ("error_rate",)
PRIMARY_METRICS = HIGHER_IS_BETTER + LOWER_IS_BETTER
DEFAULT_PRIMARY_METRIC = "macro_f1"

COMPLETED = "Completed"
FAILED = "Failed"
IN_PROGRESS = "InProgress"


@dataclass(frozen=True)
class Candidate:
    trial: str
    status: str
    value: float | None
    finished_at: datetime | None


def check_metric(name: str) -> str:
    if name not in PRIMARY_METRICS:
        raise ValueError(f"unknown primary metric {name!r}; use one of {', '.join(PRIMARY_METRICS)}")
    return name


def choose_best(candidates: list[Candidate], metric: str) -> str | None:
    """Return the name of the best trial, or None when no trial has completed with a usable value."""
    check_metric(metric)
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    eligible = [c for c in candidates if c.status == COMPLETED and c.value is not None and math.isfinite(c.value)]
    if not eligible:
        return None
    earliest = datetime.max

    def key(c: Candidate) -> tuple[float, datetime, str]:
        # max() over (score, -time) is not expressible with datetimes, so sort ascending on the negation.
        return (
            -sign * float(c.value or 0.0),
            c.finished_at.replace(tzinfo=None) if c.finished_at else earliest,
            c.trial,
        )

    return sorted(eligible, key=key)[0].trial


def metric_value(metrics: dict[str, float], name: str) -> float | None:
    """The primary metric from an evaluation's metrics, deriving ``error_rate`` from accuracy."""
    if name == "error_rate":
        acc = metrics.get("accuracy")
        return None if acc is None else 1.0 - acc
    return metrics.get(name)
