"""Reuse of identical trials: a trial whose dataset content, code and recipe equal a completed trial's of the same
experiment is not trained again; it is recorded as reusing that trial.

The identity is (dataset content hash, code bundle hash, the recipe: every hyperparameter that decides what the
model learns, seed included, run mechanics such as ``workers`` left out; ``hyperparameters.recipe_identity``).
The same inputs train the same model, so the earlier trial's metrics, model and evaluation stand for the new one:
the new trial is recorded Completed with ``reused_from`` naming the trial that trained (never a reused one: a
chain of reuses names the original) and those locations. A reused trial never takes the best flag (its figures
are the original's, which was decided already), so exactly one best per experiment still holds.

The check runs when the trial is registered (RecordResults' ``started`` mode, before any job), inside the
experiment's lock: a retried registration finds its own record and answers the same.
"""

from __future__ import annotations

from datetime import datetime

from nyanops.core import hyperparameters
from nyanops.core.experiments import COMPLETED, DecisionNote, ExperimentStore, TrialRecord, TrialResult, TrialStart
from nyanops.core.naming import experiment_key


def same_inputs(record: TrialRecord, start: TrialStart) -> bool:
    """Whether ``record`` trained on the same dataset content, with the same code and recipe, as ``start`` asks."""
    if not (record.dataset_hash and record.code_hash):
        return False
    mine = hyperparameters.recipe_identity(start.hyperparameters)
    return (
        record.dataset_hash == start.dataset_hash
        and record.code_hash == start.code_hash
        and mine is not None
        and hyperparameters.recipe_identity(record.hyperparameters) == mine
    )


def find_original(records: list[TrialRecord], start: TrialStart) -> TrialRecord | None:
    """The completed trial ``start`` may reuse: the earliest one that trained with the same inputs (a trial that
    reused one leads to its original)."""
    by_name = {experiment_key(r.trial): r for r in records}
    for record in records:  # in start order
        if record.status != COMPLETED or experiment_key(record.trial) == experiment_key(start.trial):
            continue
        if not same_inputs(record, start):
            continue
        original = by_name.get(experiment_key(record.reused_from)) if record.reused_from else record
        if original is not None and original.status == COMPLETED:
            return original
    return None


def reused_result(original: TrialRecord, now: datetime) -> TrialResult:
    """What the reusing trial records: the original's figures and locations, marked with its name."""
    return TrialResult(
        metrics=dict(original.metrics),
        hyperparameters=dict(original.hyperparameters),
        model_location=original.model_location,
        evaluation_location=original.evaluation_location,
        finished_at=now,
        best_epoch=original.best_epoch,
        num_test_images=original.num_test_images,
        reused_from=original.trial,
    )


def register_reuse(store: ExperimentStore, start: TrialStart, now: datetime) -> str:
    """Under the experiment's lock: record ``start``'s trial (registered already) as reusing an identical completed
    trial, if there is one; returns that trial's name, or "" (then the trial trains). Idempotent: a trial recorded
    as reusing answers the same again."""
    with store.decision(start.experiment) as session:
        records = session.trials()
        mine = next((r for r in records if experiment_key(r.trial) == experiment_key(start.trial)), None)
        if mine is not None and mine.status == COMPLETED:
            return mine.reused_from
        original = find_original(records, start)
        if original is None:
            return ""
        session.complete(start.trial, reused_result(original, now))
        best = next((r.trial for r in records if r.is_best), "")
        session.note_decision(
            start.trial,
            DecisionNote(
                f"reuses the results of {original.trial} (same dataset content, code and recipe; not trained); "
                f"the best flag stays with {best or 'no trial'}",
                compared_with=original.trial,
            ),
        )
        return original.trial
