"""The best-model decision: champion / challenger on the same test set, by more than a tolerance."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from nyanops.core import best_model
from nyanops.core.best_model import (
    COMPLETED,
    DEFAULT_PRIMARY_METRIC,
    DEFAULT_TOLERANCE,
    FAILED,
    IN_PROGRESS,
    Contender,
    Rescore,
    Rescored,
    TrialNotRegistered,
    Verdict,
    check_metric,
    check_tolerance,
    close_pending,
    metric_value,
    record_and_decide,
)
from nyanops.core.experiments import DecisionNote, TrialRecord, TrialResult

T0 = datetime(2026, 11, 28, 6, 43, tzinfo=UTC)
TEST_A = "a" * 64
TEST_B = "b" * 64


def who(trial: str, value: float | None, test: str = TEST_A, classes: str = "k1", model: str = "s3://b/m.tar.gz",
        dataset: str = "ds-a") -> Contender:
    return Contender(trial, value, test, classes, model, dataset)


def decide(challenger: Contender, champion: Contender | None, metric: str, tolerance: float,
           *args: object, **kwargs: object) -> best_model.Decision:
    """``best_model.decide`` and what holds for every decision: it is about the challenger, names the
    champion it was compared with, and explains itself in a sentence."""
    d = best_model.decide(challenger, champion, metric, tolerance, *args, **kwargs)  # type: ignore[arg-type]
    assert d.trial == challenger.trial
    assert d.previous_best == (champion.trial if champion else None)
    assert d.note.compared_with == (champion.trial if champion else "")
    assert isinstance(d.note.text, str) and len(d.note.text) > 20
    assert d.is_best == (d.best == challenger.trial) and d.final == (d.verdict is not Verdict.RESCORE)
    assert (d.rescore is not None) == (d.verdict is Verdict.RESCORE)
    return d


# -- settings checks ----------------------------------------------------------------------------------
def test_unknown_metric_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown primary metric 'f2'"):
        decide(who("a", 0.5), None, "f2", 0.0)
    with pytest.raises(ValueError, match="use one of macro_f1, accuracy, macro_precision"):
        check_metric("loss")
    assert check_metric(DEFAULT_PRIMARY_METRIC) == "macro_f1"


@pytest.mark.parametrize("value", [0, 0.0, 0.005, 0.5])
def test_tolerance_bounds_accepted(value: float) -> None:
    assert check_tolerance(value) == value


@pytest.mark.parametrize("value", [-0.0001, 0.5001, math.nan, math.inf, "0.01", None])
def test_tolerance_bounds_refused(value: object) -> None:
    with pytest.raises(ValueError, match=r"tolerance must be a number from 0 to 0\.5"):
        check_tolerance(value)  # type: ignore[arg-type]


def test_default_tolerance_is_half_a_point() -> None:
    assert DEFAULT_TOLERANCE == 0.005


def test_error_rate_is_derived_from_accuracy() -> None:
    assert metric_value({"accuracy": 0.9}, "error_rate") == pytest.approx(0.1)
    assert metric_value({}, "error_rate") is None
    assert metric_value({"macro_f1": 0.8}, "macro_f1") == 0.8
    assert metric_value({}, "macro_f1") is None


# -- the decision ---------------------------------------------------------------------------------------
def test_no_champion_the_challenger_takes_the_flag() -> None:
    d = decide(who("new", 0.4), None, "macro_f1", 0.005)
    assert (d.verdict, d.best, d.previous_best, d.is_best, d.final) == (Verdict.FIRST, "new", None, True, True)
    assert "no trial of this experiment held the best flag" in d.note.text and "0.4000" in d.note.text
    assert d.note.compared_with == "" and d.note.champion_value is None


def test_a_retried_record_of_the_best_trial_changes_nothing() -> None:
    d = decide(who("t", 0.9), who("t", 0.9), "macro_f1", 0.005)
    assert (d.verdict, d.best, d.is_best) == (Verdict.ALREADY_BEST, "t", True)
    assert d.note.text == "this trial holds the best flag"


@pytest.mark.parametrize(
    ("challenger", "champion", "verdict", "best"),
    [
        (0.9125, 0.9000, Verdict.MOVED, "new"),  # +0.0125 > 0.005
        (0.9051, 0.9000, Verdict.MOVED, "new"),  # just over
        (0.9050, 0.9000, Verdict.KEPT, "old"),  # exactly the tolerance: not MORE than it
        (0.9000, 0.9000, Verdict.KEPT, "old"),  # a tie keeps the flag
        (0.900013, 0.9000, Verdict.KEPT, "old"),  # 0.000013 better: invisible, not a new best
        (0.8000, 0.9000, Verdict.KEPT, "old"),
    ],
)
def test_same_test_set_moves_only_by_more_than_the_tolerance(challenger: float, champion: float, verdict: Verdict,
                                                            best: str) -> None:
    d = decide(who("new", challenger), who("old", champion), "macro_f1", 0.005)
    assert (d.verdict, d.best, d.previous_best, d.is_best) == (verdict, best, "old", best == "new")
    assert d.note.compared_with == "old" and d.note.champion_value == champion
    assert f"this trial {challenger:.4f}, best old {champion:.4f}" in d.note.text
    assert f"difference {challenger - champion:+.6f}" in d.note.text
    assert "macro_f1 (higher is better) on the same test set, dataset ds-a (test split aaaaaaaaaaaa)" in d.note.text
    if verdict is Verdict.MOVED:
        assert d.note.text.endswith("more than the tolerance 0.005: the flag moves to this trial")
    else:
        assert d.note.text.endswith("not more than the tolerance 0.005: the flag stays with old")


def test_zero_tolerance_any_gain_moves() -> None:
    assert decide(who("new", 0.9000001), who("old", 0.9), "macro_f1", 0.0).verdict is Verdict.MOVED
    assert decide(who("new", 0.9), who("old", 0.9), "macro_f1", 0.0).verdict is Verdict.KEPT


def test_a_gain_of_float_noise_is_no_gain() -> None:
    """0.905 - 0.900 is 0.00500000000000004: with a 0.005 tolerance that must not count as more than it."""
    assert decide(who("new", 0.905), who("old", 0.9), "macro_f1", 0.005).verdict is Verdict.KEPT
    at_epsilon = decide(who("new", best_model.GAIN_EPSILON), who("old", 0.0), "macro_f1", 0.0)
    assert at_epsilon.verdict is Verdict.KEPT
    beyond = decide(who("new", 2 * best_model.GAIN_EPSILON), who("old", 0.0), "macro_f1", 0.0)
    assert beyond.verdict is Verdict.MOVED


def test_lower_is_better_for_error_rate() -> None:
    better = decide(who("new", 0.05), who("old", 0.10), "error_rate", 0.005)
    worse = decide(who("new", 0.10), who("old", 0.05), "error_rate", 0.005)
    assert (better.verdict, worse.verdict) == (Verdict.MOVED, Verdict.KEPT)
    assert "error_rate (lower is better)" in better.note.text and "difference +0.050000" in better.note.text


def test_another_test_set_asks_to_rescore_the_champion() -> None:
    d = decide(who("new", 0.99, TEST_B, dataset="ds-b"), who("old", 0.5), "macro_f1", 0.005)
    assert (d.verdict, d.final, d.best, d.is_best) == (Verdict.RESCORE, False, "old", False)
    assert d.rescore == Rescore("old", "s3://b/m.tar.gz", 1)
    assert d.note.text.startswith("pending: the best trial old was evaluated on dataset ds-a")


def test_an_unknown_test_set_identity_is_another_test_set() -> None:
    d = decide(who("new", 0.9, ""), who("old", 0.5, "", dataset=""), "macro_f1", 0.0)
    assert d.verdict is Verdict.RESCORE
    assert d.note.text.startswith("pending: the best trial old was evaluated on test split of unknown identity; ")
    assert "this trial's dataset ds-a (test split of unknown identity)" in d.note.text


def test_rescored_figures_decide_on_the_challengers_test_set() -> None:
    """The new dataset's trial wins on raw F1 (0.95 vs 0.80) but loses on its own test set (0.95 vs 0.97)."""
    challenger, champion = who("new", 0.95, TEST_B, dataset="ds-b"), who("old", 0.80)
    kept = decide(challenger, champion, "macro_f1", 0.005, Rescored("old", 0.97), attempt=1)
    assert (kept.verdict, kept.best) == (Verdict.KEPT, "old")
    assert kept.note.champion_value == 0.97
    assert "macro_f1 (higher is better) on this trial's dataset ds-b (test split bbbbbbbbbbbb), where the best trial " \
           "old was re-scored" in kept.note.text
    moved = decide(challenger, champion, "macro_f1", 0.005, Rescored("old", 0.90), attempt=1)
    assert (moved.verdict, moved.best, moved.note.champion_value) == (Verdict.MOVED, "new", 0.90)


def test_a_rescore_of_another_champion_does_not_count() -> None:
    """The best trial changed between "which champion" and "record": re-score the new one (attempt 2)."""
    d = decide(who("new", 0.95, TEST_B), who("newer", 0.9), "macro_f1", 0.005, Rescored("old", 0.5), attempt=1)
    assert d.verdict is Verdict.RESCORE and d.rescore == Rescore("newer", "s3://b/m.tar.gz", 2)


def test_a_champion_that_changed_too_often_keeps_the_flag() -> None:
    d = decide(who("new", 0.95, TEST_B), who("newest", 0.9), "macro_f1", 0.005, Rescored("other", 0.5), attempt=3)
    assert (d.verdict, d.best) == (Verdict.KEPT, "newest")
    assert "the best trial changed 3 times" in d.note.text


def test_a_champion_that_could_not_be_rescored_keeps_the_flag() -> None:
    d = decide(who("new", 0.99, TEST_B), who("old", 0.5), "macro_f1", 0.005,
               Rescored("old", None, "the re-scoring job failed (boom)"), attempt=1)
    assert (d.verdict, d.best) == (Verdict.KEPT, "old")
    assert "could not be re-scored" in d.note.text and "boom" in d.note.text


def test_a_champion_without_a_model_gives_up_the_flag() -> None:
    d = decide(who("new", 0.5, TEST_B), who("old", 0.99, model=""), "macro_f1", 0.005)
    assert (d.verdict, d.best) == (Verdict.MOVED, "new") and "has no model to re-score" in d.note.text


def test_other_classes_cannot_be_compared_the_flag_moves() -> None:
    d = decide(who("new", 0.5, TEST_B, classes="k2"), who("old", 0.99), "macro_f1", 0.005)
    assert (d.verdict, d.best) == (Verdict.MOVED, "new") and "trained for other classes" in d.note.text
    # an unknown class identity (older record) is not "different": it is re-scored
    assert decide(who("new", 0.5, TEST_B, classes=""), who("old", 0.99), "macro_f1", 0.0).verdict is Verdict.RESCORE


@pytest.mark.parametrize("bad", [None, math.nan, math.inf])
def test_a_challenger_without_a_usable_value_never_takes_the_flag(bad: float | None) -> None:
    record = TrialRecord("cats", "new", COMPLETED, T0, T0, metrics={"macro_f1": bad} if bad is not None else {})
    d = decide(Contender.of(record, "macro_f1"), who("old", 0.1), "macro_f1", 0.0)
    assert (d.verdict, d.best) == (Verdict.KEPT, "old")
    assert decide(Contender.of(record, "macro_f1"), None, "macro_f1", 0.0).best is None


def test_a_champion_without_a_usable_value_gives_up_the_flag() -> None:
    d = decide(who("new", 0.1), who("old", None), "macro_f1", 0.005)
    assert (d.verdict, d.best) == (Verdict.MOVED, "new")


# -- inside the store's session -------------------------------------------------------------------------
class MemorySession:
    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    def trials(self) -> list[TrialRecord]:
        self.store.reads += 1
        return [replace(r) for r in self.store.records.values()]

    def complete(self, trial: str, result: TrialResult) -> None:
        self.store.records[trial] = replace(self.store.records[trial], status=COMPLETED, metrics=result.metrics,
                                            model_location=result.model_location)

    def set_best(self, trial: str) -> None:
        self.store.writes.append(f"set_best {trial}")
        for name, r in self.store.records.items():
            self.store.records[name] = replace(r, is_best=name == trial)

    def note_decision(self, trial: str, note: DecisionNote) -> None:
        self.store.records[trial] = replace(self.store.records[trial], decision=note.text,
                                            compared_with=note.compared_with, champion_value=note.champion_value)


class MemoryStore:
    def __init__(self, *records: TrialRecord) -> None:
        self.records = {r.trial: r for r in records}
        self.reads = 0
        self.held = False
        self.writes: list[str] = []

    @contextmanager
    def decision(self, experiment: str) -> Iterator[MemorySession]:
        assert not self.held
        self.held = True
        try:
            yield MemorySession(self)
        finally:
            self.held = False


def rec(trial: str, value: float | None = None, status: str = COMPLETED, best: bool = False,
        test: str = TEST_A) -> TrialRecord:
    return TrialRecord("cats", trial, status, T0, T0, dataset_id="ds", metrics={} if value is None else
                       {"macro_f1": value}, model_location="s3://b/m", is_best=best, test_hash=test, classes_key="k")


def result(value: float) -> TrialResult:
    return TrialResult({"macro_f1": value}, {}, "s3://b/new", "s3://b/e", T0)


def test_record_and_decide_flips_the_flag_and_stores_the_reason() -> None:
    store = MemoryStore(rec("old", 0.80, best=True), rec("new", status=IN_PROGRESS))
    d = record_and_decide(store, "cats", "new", "macro_f1", 0.005, result=result(0.90))  # type: ignore[arg-type]
    assert d.verdict is Verdict.MOVED
    assert {n: r.is_best for n, r in store.records.items()} == {"old": False, "new": True}
    assert store.records["new"].decision == d.note.text and store.records["new"].champion_value == 0.80
    assert store.records["new"].metrics == {"macro_f1": 0.90}


def test_record_and_decide_keeps_the_flag_and_stores_the_reason() -> None:
    store = MemoryStore(rec("old", 0.90, best=True), rec("new", status=IN_PROGRESS))
    d = record_and_decide(store, "cats", "new", "macro_f1", 0.005, result=result(0.903))  # type: ignore[arg-type]
    assert d.verdict is Verdict.KEPT
    assert {n: r.is_best for n, r in store.records.items()} == {"old": True, "new": False}
    assert "not more than the tolerance" in store.records["new"].decision
    assert store.records["new"].compared_with == "old" and store.records["new"].champion_value == 0.90
    assert store.writes == []  # a kept flag writes no flag (each write is API calls on SageMaker)


def test_record_and_decide_moves_the_flag_with_one_write() -> None:
    store = MemoryStore(rec("old", 0.80, best=True), rec("new", status=IN_PROGRESS))
    record_and_decide(store, "cats", "new", "macro_f1", 0.005, result=result(0.90))  # type: ignore[arg-type]
    assert store.writes == ["set_best new"]


def test_two_bests_including_this_trial_leave_this_one() -> None:
    store = MemoryStore(rec("other", 0.95, best=True), rec("new", 0.9, best=True))
    d = record_and_decide(store, "cats", "new", "macro_f1", 0.005)  # type: ignore[arg-type]
    assert d.verdict is Verdict.ALREADY_BEST
    assert [n for n, r in store.records.items() if r.is_best] == ["new"] and store.writes == ["set_best new"]


def test_a_contender_is_read_whole_from_its_record() -> None:
    record = replace(rec("t", 0.7), dataset_id="ds-x", classes_key="k9", model_location="s3://b/t.tar.gz")
    assert Contender.of(record, "macro_f1") == Contender("t", 0.7, TEST_A, "k9", "s3://b/t.tar.gz", "ds-x")
    assert Contender.of(record, "accuracy").value is None


def test_record_and_decide_first_trial() -> None:
    store = MemoryStore(rec("failed", None, status=FAILED), rec("new", status=IN_PROGRESS))
    d = record_and_decide(store, "cats", "new", "macro_f1", 0.005, result=result(0.1))  # type: ignore[arg-type]
    assert d.verdict is Verdict.FIRST and store.records["new"].is_best and not store.records["failed"].is_best


def test_record_and_decide_pending_rescore_changes_no_flag() -> None:
    store = MemoryStore(rec("old", 0.5, best=True), rec("new", status=IN_PROGRESS, test=TEST_B))
    d = record_and_decide(store, "cats", "new", "macro_f1", 0.005, result=result(0.99))  # type: ignore[arg-type]
    assert d.verdict is Verdict.RESCORE and store.records["old"].is_best and not store.records["new"].is_best
    assert store.records["new"].decision.startswith("pending:")
    done = record_and_decide(store, "cats", "new", "macro_f1", 0.005, rescored=Rescored("old", 0.6),  # type: ignore[arg-type]
                             attempt=1)
    assert done.verdict is Verdict.MOVED and store.records["new"].is_best and not store.records["old"].is_best


def test_record_and_decide_repairs_two_bests() -> None:
    """Should two trials ever be flagged (a store written by an older version), the decision leaves one."""
    store = MemoryStore(rec("a", 0.9, best=True), rec("b", 0.8, best=True), rec("new", status=IN_PROGRESS))
    record_and_decide(store, "cats", "new", "macro_f1", 0.5, result=result(0.1))  # type: ignore[arg-type]
    assert [n for n, r in store.records.items() if r.is_best] == ["a"]


def test_a_retried_decision_of_the_best_keeps_its_reason() -> None:
    store = MemoryStore(rec("old", 0.8), rec("new", status=IN_PROGRESS))
    first = record_and_decide(store, "cats", "new", "macro_f1", 0.005, result=result(0.9))  # type: ignore[arg-type]
    again = record_and_decide(store, "cats", "new", "macro_f1", 0.005, result=result(0.9))  # type: ignore[arg-type]
    assert (first.verdict, again.verdict) == (Verdict.FIRST, Verdict.ALREADY_BEST)
    assert store.records["new"].decision == first.note.text


def test_a_trial_without_a_record_is_refused() -> None:
    with pytest.raises(TrialNotRegistered, match="trial ghost of experiment cats"):
        record_and_decide(MemoryStore(rec("old", 0.8)), "cats", "ghost", "macro_f1", 0.0)  # type: ignore[arg-type]
    with pytest.raises(TrialNotRegistered):
        record_and_decide(MemoryStore(rec("new", status=FAILED)), "cats", "new", "macro_f1", 0.0)  # type: ignore[arg-type]


def test_close_pending_without_a_best_or_a_record() -> None:
    store = MemoryStore(rec("new", 0.9))
    closed = close_pending(store, "cats", "new", "boom")  # type: ignore[arg-type]
    assert closed is not None and closed.best is None
    assert closed.text.endswith("the flag stays with no trial")
    assert store.records["new"].compared_with == ""
    assert close_pending(MemoryStore(rec("other", 0.9)), "cats", "ghost", "e") is None  # type: ignore[arg-type]


def test_close_pending_of_the_best_keeps_its_reason() -> None:
    store = MemoryStore(replace(rec("new", 0.9, best=True), decision="it beat old"))
    assert close_pending(store, "cats", "new", "e").text == "it beat old"  # type: ignore[arg-type, union-attr]
    store = MemoryStore(rec("new", 0.9, best=True))
    assert close_pending(store, "cats", "new", "e").text == "this trial holds the best flag"  # type: ignore[arg-type, union-attr]


def test_close_pending_keeps_the_flag_and_says_why() -> None:
    store = MemoryStore(rec("old", 0.5, best=True), rec("new", 0.9))
    closed = close_pending(store, "cats", "new", "ExperimentBusy: busy")  # type: ignore[arg-type]
    assert closed is not None and closed.best == "old"
    assert store.records["new"].decision == closed.text
    assert "could not be completed (ExperimentBusy: busy); the flag stays with old" in closed.text
    assert store.records["new"].compared_with == "old"
    assert close_pending(MemoryStore(rec("x", status=FAILED)), "cats", "x", "e") is None  # type: ignore[arg-type]
    best = MemoryStore(rec("new", 0.9, best=True))
    assert close_pending(best, "cats", "new", "e").best == "new"  # type: ignore[arg-type, union-attr]
    assert best.records["new"].decision == ""


def test_decision_is_taken_in_one_session() -> None:
    """record_and_decide reads and writes inside the store's decision session (the lock)."""
    store = MemoryStore(rec("old", 0.8, best=True), rec("new", status=IN_PROGRESS))
    calls: list[bool] = []
    original = MemorySession.set_best

    def spy(self: MemorySession, trial: str) -> None:
        calls.append(self.store.held)
        original(self, trial)

    MemorySession.set_best = spy  # type: ignore[method-assign]
    try:
        record_and_decide(store, "cats", "new", "macro_f1", 0.0, result=result(0.9))  # type: ignore[arg-type]
    finally:
        MemorySession.set_best = original  # type: ignore[method-assign]
    assert calls == [True] and store.reads == 1


def test_module_constants() -> None:
    assert best_model.PRIMARY_METRICS == best_model.HIGHER_IS_BETTER + best_model.LOWER_IS_BETTER
    assert best_model.MAX_TOLERANCE == 0.5
