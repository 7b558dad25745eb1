"""The comparison table: which hyperparameters are columns, sorting, the best marker, JSON."""

from __future__ import annotations

import json
import re

import pytest

from nyanops import compare

from .synthetic import record


def test_only_differing_hyperparameters_become_columns() -> None:
    records = [
        record("a", 0.8, hp={"epochs": 10, "lr": 0.01, "augment": True, "workers": 4}),
        record("b", 0.7, hp={"epochs": 3, "lr": 0.01, "augment": True, "workers": 8}),
    ]
    assert compare.differing_hyperparameters(records) == ["epochs"]  # workers is operational, lr the same
    columns, _ = compare.rows(records)
    assert columns[:5] == ["best", "when", "status", "dataset", "epochs"]
    assert {"acc", "prec", "rec", "f1", "duration", "comment"} <= set(columns)
    assert "lr" not in columns and "workers" not in columns


def test_a_hyperparameter_missing_in_one_trial_differs() -> None:
    records = [record("a", 0.8, hp={"augment": False}), record("b", 0.7, hp={})]
    assert compare.differing_hyperparameters(records) == ["augment"]


def test_failed_trials_do_not_widen_the_table_when_two_completed_exist() -> None:
    records = [
        record("a", 0.8, hp={"epochs": 10, "lr": 0.01}),
        record("b", 0.7, hp={"epochs": 3, "lr": 0.01}),
        record("c", None, status="Failed", hp={"lr": 0.5}),
    ]
    assert compare.differing_hyperparameters(records) == ["epochs"]
    _, table = compare.rows(records)
    assert table[2]["comment"] == "TrainingFailed: out of memory"  # a failed trial shows its error


def test_sort_descending_ascending_and_missing_last() -> None:
    records = [record("a", 0.5), record("b", 0.9), record("c", None, status="Failed"), record("d", 0.7)]
    columns, table = compare.rows(records)
    by, desc = compare.parse_sort("f1")
    assert [r["trial"] for r in compare.sort_rows(columns, table, by, desc)] == ["b", "d", "a", "c"]
    by, desc = compare.parse_sort("+f1")
    assert [r["trial"] for r in compare.sort_rows(columns, table, by, desc)] == ["a", "d", "b", "c"]
    assert compare.parse_sort(None) == (None, False)
    assert compare.sort_rows(columns, table, None, False) == table


def test_sort_by_a_hyperparameter_of_mixed_types_does_not_crash() -> None:
    records = [record("a", 0.5, hp={"lr": 0.1}), record("b", 0.9, hp={"lr": "0.01"}), record("c", 0.7, hp={"lr": 1})]
    columns, table = compare.rows(records)
    assert [r["trial"] for r in compare.sort_rows(columns, table, "lr", False)] == ["a", "c", "b"]


def test_unknown_sort_column_names_the_columns() -> None:
    columns, table = compare.rows([record("a", 0.5)])
    with pytest.raises(ValueError, match=r"cannot sort by 'nope'.*f1"):
        compare.sort_rows(columns, table, "nope", True)


def test_best_marker_in_text_and_json() -> None:
    records = [record("a", 0.5), record("b", 0.9, best=True)]
    text = compare.format_experiments(records, "f1")
    lines = text.splitlines()
    assert lines[0] == "experiment cats (2 trials, * = best)"
    assert lines[3].startswith("*") and "b" in lines[3].split()  # best first when sorted by f1
    assert not lines[4].startswith("*")
    rows = json.loads(compare.format_experiments(records, "+f1", json_output=True))
    assert [(r["trial"], r["best"], r["experiment"]) for r in rows] == [("a", False, "cats"), ("b", True, "cats")]
    assert rows[1]["f1"] == 0.9 and rows[1]["duration"] == 95.0


def test_one_table_per_experiment() -> None:
    a, b = record("a", 0.5, hp={"epochs": 1}), record("b", 0.9, hp={"epochs": 2})
    b.experiment = "dogs"
    text = compare.format_experiments([a, b])
    assert "experiment cats (1 trials" in text and "experiment dogs (1 trials" in text


def test_cells() -> None:
    assert compare.format_cell("best", True) == "*"
    assert compare.format_cell("f1", 0.912345) == "0.9123"
    assert compare.format_cell("duration", 95.0) == "1m35s"
    assert compare.format_cell("augment", False) == "false"
    assert compare.format_cell("lr", 0.001) == "0.001"
    assert compare.format_cell("comment", None) == "-"
    assert compare.format_cell("comment", "x" * 60).endswith("...")


def test_the_text_table_fits_a_width_eliding_long_columns_only() -> None:
    records = [record("m-epochs10-490f2666abda64e1", 0.5, comment="c" * 80), record("m-b-0123456789abcdef", 0.9)]
    full = compare.format_experiments(records)
    assert "c" * 80 in full and "m-epochs10-490f2666abda64e1" in full
    narrow = compare.format_experiments(records, width=110)
    table = narrow.splitlines()[1:]
    assert max(len(line) for line in table) <= 110
    assert "0.5000" in narrow and "0.9000" in narrow  # metrics are never cut
    assert re.search(r" m-epo\S*…\S*a64e1 ", narrow)  # a trial keeps its head and the end of its hash


def test_control_characters_in_cells_are_shown_escaped() -> None:
    text = compare.format_experiments([record("a", 0.5, comment="x\x1b[2Ay\u202ez")])
    assert "\x1b" not in text and "\u202e" not in text and "x\\x1b[2Ay\\u202ez" in text


def test_console_links_go_under_the_table_and_into_json() -> None:
    links = {"execution_url": "https://us-east-1.console.aws.amazon.com/states/home#/e"}
    text = compare.format_experiments([record("a", 0.5)], links=lambda r: links)
    assert text.splitlines()[-1] == "  a  https://us-east-1.console.aws.amazon.com/states/home#/e"
    rows = json.loads(compare.format_experiments([record("a", 0.5)], json_output=True, links=lambda r: links))
    assert rows[0]["execution_url"] == links["execution_url"]
    assert "console" not in compare.format_experiments([record("a", 0.5)], links=lambda r: {})
