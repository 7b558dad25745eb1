"""Which recorded trial a command means: ``predict`` takes an experiment's current best (or a named trial),
``rerun`` a named trial. Pure functions over the records an ``ExperimentStore`` lists; each refusal says what
was asked, what is there, and how to find the right name.
"""

from __future__ import annotations

from collections.abc import Sequence

from nyanops.core.experiments import COMPLETED, TrialRecord


class TrialChoiceError(ValueError):
    """The trial asked for does not exist or cannot be used; the message says why and what to do."""


def _listing(experiment: str | None) -> str:
    return f"`nyanops experiments {experiment}`" if experiment else "`nyanops experiments`"


def find_trial(records: Sequence[TrialRecord], trial: str, experiment: str | None = None) -> TrialRecord:
    """The trial named ``trial`` among ``records`` (of ``experiment``, or of every experiment)."""
    found = [r for r in records if r.trial == trial]
    if not found:
        where = f"in experiment {experiment}" if experiment else "in any experiment"
        raise TrialChoiceError(f"no trial named {trial!r} {where}; {_listing(experiment)} lists the trials")
    if len(found) > 1:  # trial names are execution names: one per execution, so this means two experiments
        names = ", ".join(sorted({r.experiment for r in found}))
        raise TrialChoiceError(f"trial {trial!r} is in several experiments ({names}); name one with --experiment")
    return found[0]


def best_trial(records: Sequence[TrialRecord], experiment: str) -> TrialRecord:
    """The experiment's current best trial (``records`` are that experiment's)."""
    if not records:
        raise TrialChoiceError(
            f"no experiment {experiment!r} (no trials recorded); `nyanops experiments` lists the experiments, "
            "--experiment names one"
        )
    best = [r for r in records if r.is_best]
    if not best:
        raise TrialChoiceError(
            f"experiment {experiment} has no best trial yet (no trial completed: {_counts(records)}); "
            "wait for a run to finish, or name a trial with --trial"
        )
    return best[0]


def experiment_with_a_best(records: Sequence[TrialRecord]) -> str:
    """The one experiment that has a best trial, when none is named (``--experiment`` otherwise)."""
    names = sorted({r.experiment for r in records if r.is_best})
    if len(names) == 1:
        return names[0]
    if not names:
        raise TrialChoiceError("no experiment has a best trial yet; run a manifest first (`nyanops experiments`)")
    raise TrialChoiceError(f"several experiments have a best trial ({', '.join(names)}); name one with --experiment")


def with_model(record: TrialRecord) -> TrialRecord:
    """``record`` when it is completed with a model; why not otherwise."""
    if record.status != COMPLETED:
        raise TrialChoiceError(f"trial {record.trial} is {record.status}{_cause(record)}: it has no model to use")
    if not record.model_location:
        raise TrialChoiceError(f"trial {record.trial} has no model location recorded; it cannot be used")
    return record


def completed(record: TrialRecord) -> TrialRecord:
    """``record`` when it completed (its results are recorded); why not otherwise."""
    if record.status != COMPLETED:
        raise TrialChoiceError(
            f"trial {record.trial} did not complete (status {record.status}{_cause(record)}); only a completed "
            f"trial has results to compare a rerun with: {_listing(record.experiment)} shows each trial's status"
        )
    return record


def _cause(record: TrialRecord) -> str:
    return f": {record.error.splitlines()[0][:200]}" if record.error else ""


def _counts(records: Sequence[TrialRecord]) -> str:
    counts: dict[str, int] = {}
    for r in records:
        counts[r.status] = counts.get(r.status, 0) + 1
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
