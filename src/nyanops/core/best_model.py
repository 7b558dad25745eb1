"""The best-model decision: champion / challenger, on the same test set, by more than a tolerance.

Each experiment has at most one best trial (the champion). When a trial (the challenger) finishes:

- no champion yet: the challenger takes the flag;
- the champion was trained for other classes (the class list changed): it cannot be scored on this
  test set, so the flag moves to the challenger, trained for the current classes;
- same test set (the same test-split identity, ``dataset.split_hashes.test``): the challenger takes
  the flag only if its primary metric beats the champion's by MORE than the tolerance;
- another test set: the figures are not comparable, so the champion's model is re-scored on the
  challenger's test split in the same execution (a second processing job), and the same rule applies
  to the two figures on that one test set. A champion that cannot be re-scored (its job failed) keeps
  the flag, a champion without a model gives it up; both say so.

The tolerance (``BEST_MODEL_TOLERANCE``, default ``DEFAULT_TOLERANCE``) keeps the flag from moving on a
difference no one can see or explain: docs/decisions.md. Every decision is stored with the challenger
as a sentence naming both figures, the test set and why the flag moved or stayed.

The decision is taken inside the experiment's lock (``record_and_decide``): the champion read there is
the one whose flag is flipped, even when other trials of the experiment finish at the same moment.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

from nyanops.core import naming
from nyanops.core.experiments import COMPLETED as COMPLETED
from nyanops.core.experiments import FAILED as FAILED
from nyanops.core.experiments import IN_PROGRESS as IN_PROGRESS
from nyanops.core.experiments import (
    DecisionNote,
    ExperimentStore,
    TrialRecord,
    TrialResult,
)

HIGHER_IS_BETTER = ("macro_f1", "accuracy", "macro_precision", "macro_recall", "weighted_f1")
LOWER_IS_BETTER = ("error_rate",)
PRIMARY_METRICS = HIGHER_IS_BETTER + LOWER_IS_BETTER
DEFAULT_PRIMARY_METRIC = "macro_f1"
# Half a percentage point of the primary metric (docs/decisions.md, "A fair best model").
DEFAULT_TOLERANCE = 0.005
MAX_TOLERANCE = 0.5
# A gain counts as "more than the tolerance" only beyond float noise (0.905 - 0.900 is 0.00500000000000004).
GAIN_EPSILON = 1e-9

def check_metric(name: str) -> str:
    if name not in PRIMARY_METRICS:
        raise ValueError(f"unknown primary metric {name!r}; use one of {', '.join(PRIMARY_METRICS)}")
    return name


def check_tolerance(value: float) -> float:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and 0 <= value <= MAX_TOLERANCE):
        raise ValueError(f"the best-model tolerance must be a number from 0 to {MAX_TOLERANCE}, got {value!r}")
    return float(value)


def metric_value(metrics: dict[str, float], name: str) -> float | None:
    """The primary metric from an evaluation's metrics, deriving ``error_rate`` from accuracy."""
    if name == "error_rate":
        acc = metrics.get("accuracy")
        return None if acc is None else 1.0 - acc
    return metrics.get(name)


class Verdict(str, Enum):
    FIRST = "first"  # no champion: the challenger takes the flag
    MOVED = "moved"  # the challenger beat the champion (or the champion cannot compete)
    KEPT = "kept"  # the champion keeps the flag
    ALREADY_BEST = "already-best"  # the challenger holds the flag already (a retried record)
    RESCORE = "rescore"  # not decided yet: re-score the champion on the challenger's test set


@dataclass(frozen=True)
class Contender:
    """What the decision needs of a trial."""

    trial: str
    value: float | None  # the primary metric on its own test set
    test_hash: str
    classes_key: str
    model_location: str
    dataset_id: str

    @classmethod
    def of(cls, record: TrialRecord, metric: str) -> Contender:
        value = metric_value(record.metrics, metric)
        usable = value if value is not None and math.isfinite(value) else None
        return cls(record.trial, usable, record.test_hash, record.classes_key, record.model_location,
                   record.dataset_id)


@dataclass(frozen=True)
class Rescore:
    """Re-score ``champion``'s model (``model_location``) on the challenger's test split; attempt 1..N."""

    champion: str
    model_location: str
    attempt: int


@dataclass(frozen=True)
class Rescored:
    """The champion's primary metric on the challenger's test set, or why there is none."""

    champion: str
    value: float | None
    reason: str = ""


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    trial: str
    best: str | None  # the best trial after this decision (the champion while a re-score is pending)
    previous_best: str | None
    note: DecisionNote
    rescore: Rescore | None = None

    @property
    def is_best(self) -> bool:
        return self.best == self.trial

    @property
    def final(self) -> bool:
        return self.verdict is not Verdict.RESCORE


def _fmt(value: float) -> str:
    return f"{value:.4f}"


def _test_set(c: Contender) -> str:
    identity = f"test split {c.test_hash[:12]}" if c.test_hash else "test split of unknown identity"
    return f"dataset {c.dataset_id} ({identity})" if c.dataset_id else identity


def decide(
    challenger: Contender,
    champion: Contender | None,
    metric: str,
    tolerance: float,
    rescored: Rescored | None = None,
    attempt: int = 0,
    max_attempts: int = naming.MAX_CHAMPION_ATTEMPTS,
) -> Decision:
    """The decision for ``challenger`` against the current ``champion`` (pure; see the module docstring)."""
    check_metric(metric)
    check_tolerance(tolerance)
    me = challenger.trial
    if challenger.value is None:
        best = champion.trial if champion else None
        text = f"this trial has no usable {metric}, so it cannot take the best flag"
        return Decision(Verdict.KEPT, me, best, best, DecisionNote(text, best or ""))
    if champion is None:
        text = (
            f"no trial of this experiment held the best flag: this trial takes it ({metric} "
            f"{_fmt(challenger.value)} on {_test_set(challenger)})"
        )
        return Decision(Verdict.FIRST, me, me, None, DecisionNote(text))
    if champion.trial == me:
        return Decision(Verdict.ALREADY_BEST, me, me, me, DecisionNote("this trial holds the best flag", me))
    if champion.classes_key and challenger.classes_key and champion.classes_key != challenger.classes_key:
        text = (
            f"the best trial {champion.trial} was trained for other classes than this trial's dataset, so it "
            f"cannot be scored on this test set: the flag moves to this trial, trained for the current classes"
        )
        return Decision(Verdict.MOVED, me, me, champion.trial, DecisionNote(text, champion.trial))
    if champion.test_hash and champion.test_hash == challenger.test_hash:
        return _compare(challenger, champion, champion.value, metric, tolerance, rescored=False)
    if rescored is not None and rescored.champion == champion.trial:
        if rescored.value is None:
            text = (
                f"the best trial {champion.trial} (evaluated on {_test_set(champion)}) could not be re-scored on "
                f"this trial's {_test_set(challenger)}: {rescored.reason}. The figures are not comparable, so "
                f"the flag stays with {champion.trial}; upload the manifest again to compare once more"
            )
            return Decision(Verdict.KEPT, me, champion.trial, champion.trial, DecisionNote(text, champion.trial))
        return _compare(challenger, champion, rescored.value, metric, tolerance, rescored=True)
    if not champion.model_location:
        text = (
            f"the best trial {champion.trial} was evaluated on another test set and has no model to re-score "
            f"on this one: the flag moves to this trial"
        )
        return Decision(Verdict.MOVED, me, me, champion.trial, DecisionNote(text, champion.trial))
    if attempt >= max_attempts:
        text = (
            f"the best trial changed {attempt} times while this trial was being compared (other runs of the "
            f"experiment finished meanwhile); the flag stays with {champion.trial}. Upload the manifest again "
            f"to compare with it"
        )
        return Decision(Verdict.KEPT, me, champion.trial, champion.trial, DecisionNote(text, champion.trial))
    text = (
        f"pending: the best trial {champion.trial} was evaluated on {_test_set(champion)}; its model is being "
        f"re-scored on this trial's {_test_set(challenger)} to compare both on the same test set"
    )
    return Decision(
        Verdict.RESCORE, me, champion.trial, champion.trial, DecisionNote(text, champion.trial),
        Rescore(champion.trial, champion.model_location, attempt + 1),
    )


def _compare(
    challenger: Contender, champion: Contender, champion_value: float | None, metric: str, tolerance: float,
    rescored: bool,
) -> Decision:
    me = challenger.trial
    assert challenger.value is not None
    if champion_value is None or not math.isfinite(champion_value):
        text = f"the best trial {champion.trial} has no usable {metric}: the flag moves to this trial"
        return Decision(Verdict.MOVED, me, me, champion.trial, DecisionNote(text, champion.trial))
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    gain = sign * (challenger.value - champion_value)
    where = (
        f"on this trial's {_test_set(challenger)}, where the best trial {champion.trial} was re-scored"
        if rescored
        else f"on the same test set, {_test_set(challenger)}"
    )
    direction = "lower is better" if sign < 0 else "higher is better"
    figures = (
        f"{metric} ({direction}) {where}: this trial {_fmt(challenger.value)}, best {champion.trial} "
        f"{_fmt(champion_value)}, difference {gain:+.6f} in this trial's favour"
    )
    note_value = champion_value
    if gain - tolerance > GAIN_EPSILON:
        text = f"{figures}, more than the tolerance {tolerance:g}: the flag moves to this trial"
        return Decision(Verdict.MOVED, me, me, champion.trial, DecisionNote(text, champion.trial, note_value))
    text = f"{figures}, not more than the tolerance {tolerance:g}: the flag stays with {champion.trial}"
    return Decision(Verdict.KEPT, me, champion.trial, champion.trial, DecisionNote(text, champion.trial, note_value))


class TrialNotRegistered(LookupError):
    """The trial has no record to complete (RegisterTrial never ran for it)."""


def record_and_decide(
    store: ExperimentStore,
    experiment: str,
    trial: str,
    metric: str,
    tolerance: float,
    result: TrialResult | None = None,
    rescored: Rescored | None = None,
    attempt: int = 0,
) -> Decision:
    """Record ``result`` (when given) and decide the best flag, all inside the experiment's lock.

    The champion is read, compared and (if beaten) flipped in one session, so two trials finishing at
    once are decided one after the other: exactly one best per experiment.
    """
    with store.decision(experiment) as session:
        if result is not None:
            session.complete(trial, result)
        records = session.trials()
        mine = next((r for r in records if r.trial == trial), None)
        if mine is None or mine.status != COMPLETED:
            raise TrialNotRegistered(f"trial {trial} of experiment {experiment} has no completed record to decide on")
        bests = [r for r in records if r.is_best]
        champion = next((r for r in bests if r.trial == trial), bests[0] if bests else None)
        decision = decide(
            Contender.of(mine, metric),
            Contender.of(champion, metric) if champion else None,
            metric,
            tolerance,
            rescored,
            attempt,
        )
        if (decision.verdict in (Verdict.FIRST, Verdict.MOVED) or len(bests) > 1) and decision.best is not None:
            session.set_best(decision.best)
        if decision.verdict is not Verdict.ALREADY_BEST:
            session.note_decision(trial, decision.note)
        return decision


@dataclass(frozen=True)
class Closed:
    best: str | None
    text: str


def close_pending(store: ExperimentStore, experiment: str, trial: str, reason: str) -> Closed | None:
    """The run failed after its results were recorded (while the best flag was being decided): the flag
    stays where it is, and the trial says why. None when the trial has no recorded results."""
    with store.decision(experiment) as session:
        records = session.trials()
        mine = next((r for r in records if r.trial == trial), None)
        if mine is None or mine.status != COMPLETED:
            return None
        best = next((r.trial for r in records if r.is_best), None)
        if mine.is_best:
            return Closed(best, mine.decision or "this trial holds the best flag")
        text = f"the best-model decision could not be completed ({reason}); the flag stays with {best or 'no trial'}"
        session.note_decision(trial, DecisionNote(text, best or ""))
        return Closed(best, text)
