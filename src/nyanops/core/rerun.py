"""``nyanops rerun TRIAL``: the manifest that trains a recorded trial again from exactly its inputs, and the
comparison of the two trials' figures. Pure functions.

The manifest names the trial's dataset and code bundle (``code/<hash>``, not the newest push), sets every
hyperparameter a manifest may set to the value the trial recorded (the values train.py resolved, seed
included) and ``"force": true`` (train even though a completed trial has the same inputs). A value the record
lacks resolves to the same default as in the original run, since the code bundle is the same. What a manifest
cannot set (``num-gpus``, ``dry-run``, ``weights``) is left to the pipeline, as for the original run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nyanops.core import hyperparameters, layout
from nyanops.core.experiments import TrialRecord


class NotRerunnable(ValueError):
    """The recorded inputs cannot be used again; the message names which and why."""


def rerun_comment(trial: str) -> str:
    return f"rerun of {trial}"


def recorded_hyperparameters(record: TrialRecord) -> dict[str, Any]:
    """The trial's recorded hyperparameters that a manifest may set, typed as the manifest schema wants them
    (SageMaker Experiments gives numbers back as floats, booleans as text)."""
    out: dict[str, Any] = {}
    for name in hyperparameters.MANIFEST_NAMES:
        if name not in record.hyperparameters:
            continue
        row, raw = hyperparameters.BY_NAME[name], record.hyperparameters[name]
        if row.type == "int" and isinstance(raw, float) and not raw.is_integer():
            raise NotRerunnable(f"trial {record.trial}'s recorded {name} ({raw}) is not a whole number")
        try:
            value = row.check(raw)
        except ValueError as exc:
            raise NotRerunnable(f"trial {record.trial}'s recorded {name} ({raw!r}) is not valid today: {exc}") from None
        if row.zero_means and value == 0:
            continue  # train.py's "take it from the data" (num-classes 0): what leaving it out means
        out[name] = value
    return out


def rerun_manifest(record: TrialRecord) -> dict[str, Any]:
    """The manifest that reruns ``record`` (a completed trial with a dataset and a code hash)."""
    if not record.dataset_id or not layout.is_dataset_id(record.dataset_id):
        raise NotRerunnable(f"trial {record.trial} has no dataset recorded")
    if not layout.is_code_hash(record.code_hash):
        raise NotRerunnable(f"trial {record.trial} has no code bundle recorded (code hash {record.code_hash!r})")
    return {
        "experiment": record.experiment,
        "dataset": layout.dataset_prefix(record.dataset_id).rstrip("/"),
        "code": layout.code_prefix(record.code_hash).rstrip("/"),
        "comment": rerun_comment(record.trial),
        "hyperparameters": recorded_hyperparameters(record),
        "force": True,
    }


def rerun_manifest_name(trial: str) -> str:
    """``manifests/<this>.json``: the trial's name after ``rerun-`` (an execution name: already a safe key)."""
    return f"rerun-{trial}"


@dataclass(frozen=True)
class MetricDifference:
    name: str
    original: float | None
    rerun: float | None

    @property
    def difference(self) -> float | None:
        if self.original is None or self.rerun is None:
            return None
        return self.rerun - self.original


def metric_differences(original: TrialRecord, rerun: TrialRecord) -> list[MetricDifference]:
    """Every metric either trial recorded: both values and rerun - original (the original's order first)."""
    names = list(dict.fromkeys([*original.metrics, *rerun.metrics]))
    return [MetricDifference(n, original.metrics.get(n), rerun.metrics.get(n)) for n in names]


def identical(differences: list[MetricDifference]) -> bool:
    """Whether every metric is bit-for-bit the same (float equality, not a tolerance)."""
    return bool(differences) and all(
        d.original is not None and d.rerun is not None and d.original == d.rerun for d in differences
    )


@dataclass(frozen=True)
class PredictionAgreement:
    """How the two evaluations' per-photo predictions compare (both evaluation.json ``predictions``)."""

    photos: int
    same_class: int
    largest_confidence_difference: float
    only_in_one: int


def compare_predictions(original: list[dict[str, Any]], rerun: list[dict[str, Any]]) -> PredictionAgreement:
    a = {p["path"]: p for p in original}
    b = {p["path"]: p for p in rerun}
    shared = [path for path in a if path in b]
    same = sum(a[p]["predicted"] == b[p]["predicted"] for p in shared)
    largest = max((abs(float(a[p]["confidence"]) - float(b[p]["confidence"])) for p in shared), default=0.0)
    return PredictionAgreement(len(shared), same, largest, len(set(a) ^ set(b)))
