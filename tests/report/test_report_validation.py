"""The report trusts nothing it reads: every evaluation.json is validated (a bad one is an error on its own
trial, the others are drawn), every value is escaped (the timeline and the graph too), and one trial whose
data cannot be drawn does not take the report down."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest

from nyanops import report
from nyanops.core.ports import ObjectNotFound
from nyanops.report import ExperimentReport, TrialReport
from nyanops.report_data import trial_report

from .synthetic import ASL, INJECTION, evaluation, record, view

HTML_IN_A_NUMBER = '<img src=x onerror="alert(1)">'


def good_evaluation() -> dict[str, Any]:
    return evaluation([{"path": "Tama/a.jpg", "true": "Tama", "predicted": "Mike", "confidence": 0.6}])


def store(docs: dict[str, Any]) -> Any:
    def get(key: str) -> bytes:
        if key not in docs:
            raise ObjectNotFound(key)
        value = docs[key]
        return value if isinstance(value, bytes) else json.dumps(value).encode()

    return get


@pytest.mark.parametrize(
    ("damage", "field"),
    [
        (lambda d: d["metrics"].__setitem__("macro_f1", HTML_IN_A_NUMBER), "metrics.macro_f1"),
        (lambda d: d.__setitem__("metrics", ["not", "an", "object"]), "metrics"),
        (lambda d: d["per_class"]["Tama"].__setitem__("support", "4"), "per_class.Tama.support"),
        (lambda d: d["confusion_matrix"]["matrix"][0].__setitem__(0, HTML_IN_A_NUMBER), "confusion_matrix.matrix"),
        (lambda d: d["misclassified"][0].__setitem__("confidence", "high"), "misclassified[0].confidence"),
        (lambda d: d.__setitem__("schema_version", 99), "schema_version"),
    ],
)
def test_a_bad_evaluation_is_an_error_on_its_trial_only(damage: Any, field: str) -> None:
    bad = copy.deepcopy(good_evaluation())
    damage(bad)
    get = store({"runs/bad/evaluation/evaluation.json": bad, "runs/good/evaluation/evaluation.json": good_evaluation()})
    trials = [trial_report(record("good", 0.8, best=True), "good", get), trial_report(record("bad", 0.7), "bad", get)]
    assert trials[0].evaluation is not None and trials[0].problem == ""
    assert trials[1].evaluation is None and field in trials[1].problem and "not a valid evaluation" in trials[1].problem
    html = report.build_report([ExperimentReport("cats", trials)])
    assert html.count('class="heatmap"') == 1  # the good trial is drawn, the bad one is not
    bad_section = html[html.index("<h3>bad"):]
    assert '<p class="problem">' in bad_section and "not a valid evaluation" in bad_section
    assert "<img src=x" not in html and not re.search(r"<img[^>]*onerror", html)


def test_evaluation_that_is_not_json() -> None:
    get = store({"runs/t/evaluation/evaluation.json": b"\xff{ nope"})
    t = trial_report(record("t", 0.5), "t", get)
    assert t.evaluation is None and "is not valid JSON" in t.problem


def test_metrics_of_the_wrong_type_in_a_record_are_text_not_a_crash() -> None:
    r = record("odd", 0.5)
    r.metrics["macro_f1"] = HTML_IN_A_NUMBER  # a store returning a string where a number belongs
    r.metrics["accuracy"] = float("nan")
    html = report.build_report([ExperimentReport("cats", [TrialReport(record=r), TrialReport(record("ok", 0.6))])])
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html and "<img src=x" not in html
    assert "<h3>ok" in html


def test_one_trial_that_cannot_be_drawn_leaves_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> str:
        raise ZeroDivisionError("a chart that cannot be drawn")

    monkeypatch.setattr(report, "_curves_html", broken)
    trials = [TrialReport(record=record("a", 0.5), evaluation=good_evaluation()), TrialReport(record("b", None))]
    html = report.build_report([ExperimentReport("cats", trials)])
    assert "this trial could not be drawn: ZeroDivisionError: a chart that cannot be drawn" in html
    assert "<h3>b" in html


def test_timeline_and_graph_escape_state_names_errors_and_causes() -> None:
    v = view("t-x", "Train", cause=INJECTION)
    timeline = report.timeline_svg(report.timeline_from_view(v))
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in timeline and "<script>" not in timeline
    evil = copy.deepcopy(ASL)
    evil["States"]['<b onmouseover="x">Evil</b>'] = {"Type": "Pass", "End": True}
    evil["States"]["Trials"]["Next"] = '<b onmouseover="x">Evil</b>'
    from nyanops.execution_view import build_view

    graph = report.graph_svg(build_view(evil, [], name="<n>", status="RUNNING"))
    assert "<b " not in graph and "&lt;b onmouseover=&quot;x&quot;&gt;" in graph
    html = report.build_report([ExperimentReport("cats", [TrialReport(record("t-x", None, status="Failed"), view=v)])])
    assert "<script>alert" not in html and html.count("<script>") == 1  # only the sorter


def test_the_graph_colours_states_by_outcome() -> None:
    graph = report.graph_svg(view("t", "Train"))
    assert re.search(r'<g class="state caught"><title>Train \(Task\): caught', graph)
    assert re.search(r'<g class="state succeeded"><title>RecordFailure', graph)
    assert re.search(r'<g class="state not-run"><title>Evaluate', graph)
    assert re.search(r'<g class="state failed"><title>PipelineFailed', graph)
    assert '<g class="arrow catch taken"><title>Train → RecordFailure' in graph
    assert "url(" not in graph  # no external reference, not even a marker


def test_links_go_to_the_aws_console_only() -> None:
    links = {"execution_url": "https://us-east-1.console.aws.amazon.com/states/home?region=us-east-1#/x",
             "evil_url": "https://attacker.example/steal", "script_url": "javascript:alert(1)"}
    html = report.build_report([ExperimentReport("cats", [TrialReport(record("t", 0.5), links=links)])])
    assert 'href="https://us-east-1.console.aws.amazon.com/states/home?region=us-east-1#/x"' in html
    assert "attacker.example" not in html and "javascript:" not in html


def test_control_characters_never_reach_the_html() -> None:
    r = record("t", 0.5, comment="moved \x1b[2A up \u202eesrever", status="Failed")
    r.error = "boom \x1b[31mred\x07"
    html = report.build_report([ExperimentReport("cats", [TrialReport(r, view=view("t", "Train", cause="x\x1by"))])])
    assert not any(ord(c) < 32 and c not in "\n\t" for c in html)  # XML forbids them inside the inline SVG
    assert "\u202e" not in html and "moved \\x1b[2A up \\u202eesrever" in html
