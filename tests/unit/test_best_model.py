"""The best-model decision: completed trials with a finite metric compete; ties keep the earlier one."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from nyanops.core.best_model import (
    COMPLETED,
    DEFAULT_PRIMARY_METRIC,
    FAILED,
    IN_PROGRESS,
    Candidate,
    check_metric,
    choose_best,
    metric_value,
)

T0 = datetime(2026, 11, 28, 6, 43, tzinfo=UTC)


def done(trial: str, value: float | None, minutes: int = 0, status: str = COMPLETED) -> Candidate:
    return Candidate(trial, status, value, T0 + timedelta(minutes=minutes))


def test_no_trials_no_best() -> None:
    assert choose_best([], "macro_f1") is None


def test_first_completed_trial_is_best() -> None:
    assert choose_best([done("a", 0.1)], "macro_f1") == "a"


def test_highest_wins() -> None:
    assert choose_best([done("a", 0.5), done("b", 0.94, 1), done("c", 0.7, 2)], "macro_f1") == "b"


def test_tie_keeps_the_earlier_finish() -> None:
    assert choose_best([done("late", 0.9, 5), done("early", 0.9, 1)], "macro_f1") == "early"
    assert choose_best([done("early", 0.9, 1), done("late", 0.9, 5)], "macro_f1") == "early"


def test_tie_with_mixed_naive_and_aware_times() -> None:
    naive = Candidate("naive", COMPLETED, 0.9, datetime(2026, 11, 28, 6, 0))
    assert choose_best([done("aware", 0.9, 30), naive], "macro_f1") == "naive"


def test_tie_without_finish_time_loses_to_one_with_time() -> None:
    assert choose_best([Candidate("unknown", COMPLETED, 0.9, None), done("known", 0.9)], "macro_f1") == "known"


def test_failed_trials_never_win() -> None:
    assert choose_best([done("f", 1.0, status=FAILED), done("ok", 0.1, 1)], "macro_f1") == "ok"
    assert choose_best([done("f", 1.0, status=FAILED)], "macro_f1") is None


def test_in_progress_trials_are_ignored() -> None:
    assert choose_best([done("running", 0.99, status=IN_PROGRESS), done("ok", 0.5)], "macro_f1") == "ok"


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, None])
def test_non_finite_or_missing_values_are_ignored(bad: float | None) -> None:
    assert choose_best([done("bad", bad), done("ok", 0.2, 1)], "macro_f1") == "ok"
    assert choose_best([done("bad", bad)], "macro_f1") is None


def test_lower_is_better_for_error_rate() -> None:
    assert choose_best([done("a", 0.30), done("b", 0.05, 1), done("c", 0.10, 2)], "error_rate") == "b"
    assert choose_best([done("late", 0.05, 9), done("early", 0.05, 1)], "error_rate") == "early"


def test_error_rate_is_derived_from_accuracy() -> None:
    assert metric_value({"accuracy": 0.9}, "error_rate") == pytest.approx(0.1)
    assert metric_value({}, "error_rate") is None
    assert metric_value({"macro_f1": 0.8}, "macro_f1") == 0.8
    assert metric_value({}, "macro_f1") is None


def test_unknown_metric_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown primary metric 'f2'"):
        choose_best([done("a", 0.5)], "f2")
    with pytest.raises(ValueError, match="macro_f1"):
        check_metric("loss")
    assert check_metric(DEFAULT_PRIMARY_METRIC) == "macro_f1"


def test_decision_does_not_depend_on_order() -> None:
    import random

    rng = random.Random(7)
    trials = [done(f"t{i}", round(rng.random(), 2), rng.randint(0, 50)) for i in range(40)]
    expected = choose_best(trials, "macro_f1")
    for _ in range(20):
        rng.shuffle(trials)
        assert choose_best(trials, "macro_f1") == expected
