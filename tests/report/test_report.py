"""The report builder: self-contained, everything shown, every user string escaped."""

from __future__ import annotations

import base64
import hashlib
import re
from html.parser import HTMLParser

from nyanops import report
from nyanops.report import ExperimentReport, TrialReport

from .synthetic import INJECTION, experiment, png, record


class Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)


def parse(html: str) -> Collect:
    c = Collect()
    c.feed(html)
    return c


def test_report_shows_table_chart_heatmaps_curves_photos_and_timelines() -> None:
    html = report.build_report([experiment()])
    doc = parse(html)
    tags = [t for t, _ in doc.tags]
    assert tags.count("table") >= 1 and 'class="compare sortable"' in html
    assert html.count('class="heatmap"') == 2  # the failed trial has no confusion matrix
    assert html.count('aria-label="loss"') == 2 and html.count('aria-label="accuracy"') == 2
    assert html.count('class="chart timeline"') == 3
    assert 'class="chart metric-bars"' in html
    imgs = [a for t, a in doc.tags if t == "img"]
    assert len(imgs) == 3 and all(str(a["src"]).startswith("data:image/") for a in imgs)
    # class names in the heatmap axes, true -> predicted with confidence under each photo
    assert ">Tama</text>" in html and ">Mike</text>" in html
    assert '<span class="true">other</span> → <span class="pred">Tama</span> <span class="conf">93%</span>' in html
    assert "★ best" in html and 'class="best-row"' in html
    assert "TrainingFailed: out of memory" in html


def test_best_trial_first_and_table_sorted_by_f1() -> None:
    html = report.build_report([experiment()])
    assert html.index("<h3>t-best") < html.index("<h3>t-worse") < html.index("<h3>t-failed")
    tbody = html[html.index("<tbody>"):html.index("</tbody>")]
    assert tbody.index("t-best") < tbody.index("t-worse") < tbody.index("t-failed")


def test_self_contained_nothing_fetched() -> None:
    html = report.build_report([experiment()])
    doc = parse(html)
    for tag, attrs in doc.tags:
        for name in ("src", "href", "srcset", "action", "poster", "data"):
            value = attrs.get(name)
            if value is not None and tag != "svg":
                assert value.startswith(("data:", "#")), (tag, name, value[:60])
    assert "<link" not in html and "@import" not in html and "url(" not in html
    # the only script is the sorter, and the CSP allows exactly it (by hash) and data: images
    assert len(doc.scripts) == 1 and doc.scripts[0] == report.SORT_SCRIPT
    digest = base64.b64encode(hashlib.sha256(report.SORT_SCRIPT.encode()).digest()).decode()
    csp = next(a["content"] for t, a in doc.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy")
    assert f"script-src 'sha256-{digest}'" in str(csp) and "default-src 'none'" in str(csp)
    assert "img-src data:" in str(csp)


def test_user_strings_are_escaped_everywhere() -> None:
    evil_class = '<b onmouseover="x">Tama</b>'
    m = [{"path": 'x/"><script>alert(2)</script>.jpg', "true": evil_class, "predicted": "Mike", "confidence": 0.5}]
    from .synthetic import evaluation

    ev = evaluation(m, classes=["Mike", evil_class])
    r = record('"><script>alert(3)</script>', 0.5, comment=INJECTION, hp={"<i>hp</i>": "<u>v</u>"})
    r.error = "<script>alert(4)</script>"
    r.dataset_id = "<ds>"
    t = TrialReport(record=r, execution="<exec>", evaluation=ev, thumbnails={m[0]["path"]: png(8, 8, (1, 2, 3))},
                    note="<note>")
    html = report.build_report([ExperimentReport("<exp>&", [t])], title="<title>", source="<src>")
    doc = parse(html)
    assert len(doc.scripts) == 1 and doc.scripts[0] == report.SORT_SCRIPT
    assert not [t for t, _ in doc.tags if t in ("i", "u", "ds", "exec", "note", "exp", "src")]  # <b> is ours
    assert not any(k.startswith("on") for _, a in doc.tags for k in a)
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert "&lt;b onmouseover=&quot;x&quot;&gt;Tama&lt;/b&gt;" in html
    assert not re.search(r"<script>alert", html)


def test_thumbnails_embed_original_bytes_without_pillow_and_refuse_non_images() -> None:
    data = png(4, 4, (255, 0, 0))
    uri = report.thumbnail_data_uri(data)
    assert uri is not None and uri.startswith("data:image/")
    assert report.thumbnail_data_uri(b"<svg onload=alert(1)>") is None
    assert report.thumbnail_data_uri(b"not an image") is None


def test_missing_photo_and_missing_evaluation_are_notes_not_errors() -> None:
    from .synthetic import evaluation

    m = [{"path": "Tama/gone.jpg", "true": "Tama", "predicted": "Mike", "confidence": 0.6}]
    t1 = TrialReport(record=record("a", 0.5), evaluation=evaluation(m))
    t2 = TrialReport(record=record("b", 0.4), note="runs/b/evaluation/evaluation.json not found")
    html = report.build_report([ExperimentReport("cats", [t1, t2])])
    assert "photo not available" in html
    assert "evaluation.json not found" in html and "evaluation.json not available" in html


def test_empty_report() -> None:
    assert "No trials yet" in report.build_report([])


def test_timeline_from_the_execution_view_marks_failure_and_retries() -> None:
    from .synthetic import view

    steps = report.timeline_from_view(view("t", "Train"))
    assert [(s.state, s.outcome) for s in steps] == [
        ("RegisterTrial", "succeeded"), ("Train", "caught"), ("RecordFailure", "succeeded"),
        ("NotifyFailure", "succeeded"), ("PipelineFailed", "failed")]
    assert "out of memory" in steps[1].detail and steps[1].seconds is not None
    ok = report.timeline_from_view(view("t"))
    assert [s.outcome for s in ok] == ["succeeded"] * 6
    assert abs((ok[1].seconds or 0) - 60.02) < 0.1
    from nyanops.execution_view import build_view

    from .synthetic import ASL, T0

    def at(seconds: int) -> str:
        return (T0.replace(second=seconds)).isoformat()

    retried = build_view(ASL, [
        {"type": "TaskStateEntered", "timestamp": at(0), "stateEnteredEventDetails": {"name": "Evaluate"}},
        {"type": "TaskScheduled", "timestamp": at(1), "taskScheduledEventDetails": {"resource": "x"}},
        {"type": "TaskFailed", "timestamp": at(2), "taskFailedEventDetails": {"error": "Busy"}},
        {"type": "TaskScheduled", "timestamp": at(3), "taskScheduledEventDetails": {"resource": "x"}},
        {"type": "TaskSucceeded", "timestamp": at(4), "taskSucceededEventDetails": {}},
        {"type": "TaskStateExited", "timestamp": at(5), "stateExitedEventDetails": {"name": "Evaluate"}},
    ], name="r", status="RUNNING")
    assert [(s.outcome, s.attempts) for s in report.timeline_from_view(retried)] == [("succeeded", 2)]
