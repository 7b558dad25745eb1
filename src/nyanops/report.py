"""The experiment report: one self-contained HTML file to look at results rather than read them.

Pure: it takes plain data (``TrialRecord``s, evaluation.json documents, execution timelines,
thumbnail bytes) and returns one HTML string. Nothing in it is fetched: CSS is inline, charts and
heatmaps are inline SVG, photos are base64 ``data:`` URIs, and a Content-Security-Policy forbids any
other source, so the file works offline and from an e-mail attachment. The only script is the table
sorter below (allowed by its hash; no other script can run). Every string that comes from a user
(comments, class names, paths, hyperparameters, errors) is escaped.

What it shows, per experiment: the comparison table (``nyanops.compare``: the hyperparameters that
differ, the metrics, the best trial marked; click a header to sort), the primary metric across
trials, and for each trial its confusion matrix as a heatmap, its learning curves, its misclassified
photos (true class, predicted class, confidence), its execution as a graph of the state machine coloured
by outcome (``nyanops.state_graph``) and the execution timeline, state by state.

Numbers come only from validated documents (``core.evaluation_report``) or the stores; anything that is not
a finite number is shown as text, escaped. A trial whose part of the report cannot be drawn shows an error
in its own section; the other trials are unaffected.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from nyanops import compare
from nyanops.core.experiments import TrialRecord
from nyanops.execution_view import CAUGHT, FAILED, INTERRUPTED, TIMED_OUT, ExecutionView, readable_cause
from nyanops.state_graph import graph_svg
from nyanops.terminal import printable

GENERATOR = "nyanops report"
# Links out of the report go to the AWS console only (navigation, never a fetched resource).
CONSOLE_URL = re.compile(r"^https://[a-z0-9-]+\.console\.aws\.amazon\.com/")

THUMBNAIL_PX = 160
MAX_THUMBNAILS = 60  # per trial: the report stays a few MB even for a bad model on a big test set
METRIC_LABELS = {
    "accuracy": "accuracy",
    "macro_precision": "macro precision",
    "macro_recall": "macro recall",
    "macro_f1": "macro F1",
    "weighted_f1": "weighted F1",
}


@dataclass
class TimelineStep:
    """One state of an execution: when it was entered and left, and how it ended."""

    state: str
    entered_at: datetime | None
    exited_at: datetime | None
    outcome: str  # an execution_view status: succeeded | caught | failed | running | interrupted | timed out
    detail: str = ""
    attempts: int = 1

    @property
    def seconds(self) -> float | None:
        if self.entered_at and self.exited_at:
            return (self.exited_at - self.entered_at).total_seconds()
        return None


@dataclass
class TrialReport:
    """Everything the report shows about one trial; only ``record`` is required."""

    record: TrialRecord
    execution: str = ""
    execution_status: str = ""
    evaluation: Mapping[str, Any] | None = None  # a validated evaluation.json (core.evaluation_report)
    view: ExecutionView | None = None  # the execution, state by state (graph and timeline)
    thumbnails: Mapping[str, bytes] = field(default_factory=dict)  # misclassified path -> image bytes
    note: str = ""  # why something is missing (e.g. "evaluation.json not found")
    problem: str = ""  # an error about this trial's data (e.g. an evaluation.json that fails validation)
    links: Mapping[str, str] = field(default_factory=dict)  # console URLs (execution, jobs) on AWS

    @property
    def timeline(self) -> list[TimelineStep]:
        return timeline_from_view(self.view) if self.view else []


@dataclass
class ExperimentReport:
    name: str
    trials: list[TrialReport]


# -- helpers ---------------------------------------------------------------------------------------------
def esc(value: Any) -> str:
    """Escape for HTML text and quoted attributes (SVG inline in HTML uses the same rules). Control
    characters and bidirectional overrides are shown as visible escapes (``printable``): XML forbids the
    former inside SVG, and the latter would reorder what the reader sees."""
    return html.escape(printable("" if value is None else str(value), keep_newlines=True), quote=True)


def _number(value: Any) -> float | None:
    """A finite number, or None (a string, a bool, NaN or anything else is never drawn or formatted as one)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def timeline_from_view(view: ExecutionView) -> list[TimelineStep]:
    """The states the execution entered, in order, with their outcome and (for a failure) error and cause."""
    steps = []
    for name in dict.fromkeys(view.path):
        s = view.state(name)
        if s is None:
            continue
        detail = ""
        if s.status in (FAILED, CAUGHT, INTERRUPTED, TIMED_OUT) and (s.error or s.cause):
            detail = f"{s.error or s.status}: {readable_cause(s.cause, 300)}".rstrip(": ")
        steps.append(TimelineStep(s.name, s.entered_at, s.exited_at, s.status, detail, max(1, s.attempts)))
    return steps


def _sniff(data: bytes) -> str | None:
    """The image type of ``data`` from its magic bytes; SVG and anything unknown are refused."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:2] == b"BM":
        return "image/bmp"
    return None


def thumbnail_data_uri(data: bytes, size: int = THUMBNAIL_PX) -> str | None:
    """A ``data:`` URI for a photo, shrunk to ``size`` px with Pillow when it is installed (the
    original bytes otherwise; the sample photos are small). None when the bytes are not an image."""
    mime = _sniff(data)
    if mime is None:
        return None
    try:
        from PIL import Image  # optional: the report builder must work without it
    except ImportError:
        Image = None  # type: ignore[assignment]
    if Image is not None:
        try:
            with Image.open(io.BytesIO(data)) as im:
                if max(im.size) > size:
                    im.thumbnail((size, size))
                    out = io.BytesIO()
                    im.convert("RGB").save(out, format="JPEG", quality=82)
                    data, mime = out.getvalue(), "image/jpeg"
        except Exception:  # a photo Pillow cannot read is embedded as it is
            pass
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _fmt(value: Any, digits: int = 4) -> str:
    """A number with ``digits`` decimals; anything else as (escaped) text."""
    if value is None:
        return "-"
    number = _number(value)
    if number is not None and not isinstance(value, int):
        return f"{number:.{digits}f}"
    return esc(value)


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- charts ------------------------------------------------------------------------------------------------
def _mix(a: tuple[int, int, int], b: tuple[int, int, int], t: float) -> str:
    t = max(0.0, min(1.0, t))
    r, g, bl = (round(x + (y - x) * t) for x, y in zip(a, b, strict=True))
    return f"#{r:02x}{g:02x}{bl:02x}"


WHITE, BLUE, RED = (255, 255, 255), (33, 102, 172), (214, 96, 77)


def confusion_svg(labels: Sequence[str], matrix: Sequence[Sequence[int]], title: str = "") -> str:
    """A heatmap: rows = true class, columns = predicted class, shaded by the share of the row (blue on
    the diagonal, red off it, so the confusions stand out); counts written in the cells."""
    n = len(labels)
    cell = max(22, min(64, 420 // max(n, 1)))
    name_px = min(160, 12 + 7 * max((len(_short(str(label), 20)) for label in labels), default=4))
    left, top = name_px + 28, name_px + 12
    width, height = left + n * cell + 10, top + n * cell + 34
    parts = [
        f'<svg class="heatmap" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{esc(title or "confusion matrix")}">'
    ]
    for j, label in enumerate(labels):
        x = left + j * cell + cell / 2
        parts.append(
            f'<text x="{x:.1f}" y="{top - 6}" transform="rotate(-45 {x:.1f} {top - 6})" class="axis">'
            f"<title>{esc(label)}</title>{esc(_short(str(label), 20))}</text>"
        )
    for i, label in enumerate(labels):
        y = top + i * cell + cell / 2
        parts.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" class="axis">'
            f"<title>{esc(label)}</title>{esc(_short(str(label), 20))}</text>"
        )
        row = [int(_number(c) or 0) for c in (matrix[i] if i < len(matrix) else [])]
        total = sum(row) or 1
        for j in range(n):
            count = row[j] if j < len(row) else 0
            share = count / total
            colour = _mix(WHITE, BLUE if i == j else RED, share if count else 0.0)
            x0, y0 = left + j * cell, top + i * cell
            ink = "#fff" if share > 0.55 else "#222"
            parts.append(
                f'<rect class="cell" x="{x0}" y="{y0}" width="{cell}" height="{cell}" fill="{colour}" '
                f'stroke="#ccc"><title>true {esc(label)}, predicted {esc(labels[j])}: {count} '
                f"({share:.0%} of {esc(label)})</title></rect>"
                f'<text x="{x0 + cell / 2:.1f}" y="{y0 + cell / 2 + 4:.1f}" text-anchor="middle" '
                f'fill="{ink}" class="count">{count}</text>'
            )
    parts.append(
        f'<text x="{left + n * cell / 2:.1f}" y="{height - 8}" text-anchor="middle" class="axis-title">'
        f"predicted</text>"
        f'<text x="12" y="{top + n * cell / 2:.1f}" transform="rotate(-90 12 {top + n * cell / 2:.1f})" '
        f'text-anchor="middle" class="axis-title">true</text></svg>'
    )
    return "".join(parts)


def line_chart_svg(
    title: str,
    series: Sequence[tuple[str, str, Sequence[tuple[float, float]]]],
    *,
    y_unit: bool = False,
    marker_x: float | None = None,
    width: int = 360,
    height: int = 220,
) -> str:
    """Lines over epochs: ``series`` = (name, colour, [(x, y), ...]); ``marker_x`` draws the kept epoch."""
    points = [p for _, _, pts in series for p in pts]
    left, right, top, bottom = 46, 12, 28, 34
    pw, ph = width - left - right, height - top - bottom
    head = (
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{esc(title)}">'
        f'<text x="{left}" y="16" class="chart-title">{esc(title)}</text>'
    )
    if not points:
        return head + f'<text x="{left}" y="{top + ph / 2}" class="axis">no data</text></svg>'
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    x0, x1 = min(xs), max(xs)
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    y0, y1 = (0.0, 1.0) if y_unit else (min(0.0, min(ys)), max(ys) * 1.08 or 1.0)
    if y1 == y0:
        y1 = y0 + 1

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * pw

    def sy(y: float) -> float:
        return top + ph - (y - y0) / (y1 - y0) * ph

    parts = [head, f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#fafafa" stroke="#ddd"/>']
    for k in range(5):
        yv = y0 + (y1 - y0) * k / 4
        parts.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{sy(yv):.1f}" y2="{sy(yv):.1f}" stroke="#e5e5e5"/>'
            f'<text x="{left - 4}" y="{sy(yv) + 4:.1f}" text-anchor="end" class="tick">{yv:.2g}</text>'
        )
    ticks = sorted(set(xs))
    step = max(1, len(ticks) // 10)
    for xv in ticks[::step]:
        parts.append(
            f'<text x="{sx(xv):.1f}" y="{top + ph + 14}" text-anchor="middle" class="tick">{xv:g}</text>'
        )
    parts.append(
        f'<text x="{left + pw / 2}" y="{height - 4}" text-anchor="middle" class="axis-title">epoch</text>'
    )
    if marker_x is not None and x0 <= marker_x <= x1:
        parts.append(
            f'<line x1="{sx(marker_x):.1f}" x2="{sx(marker_x):.1f}" y1="{top}" y2="{top + ph}" '
            f'stroke="#888" stroke-dasharray="4 3"><title>kept weights: epoch {marker_x:g}</title></line>'
        )
    for i, (name, colour, pts) in enumerate(series):
        coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
        dash = ' stroke-dasharray="6 3"' if name.startswith("train") else ""
        if len(pts) > 1:
            parts.append(f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>')
        for x, y in pts:
            parts.append(
                f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.5" fill="{colour}">'
                f"<title>{esc(name)} epoch {x:g}: {y:.4g}</title></circle>"
            )
        lx = left + 8 + i * 90
        parts.append(
            f'<line x1="{lx}" x2="{lx + 16}" y1="{top + 10}" y2="{top + 10}" stroke="{colour}" stroke-width="2"{dash}/>'
            f'<text x="{lx + 20}" y="{top + 14}" class="tick">{esc(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def metric_bars_svg(metric: str, values: Sequence[tuple[str, float | None, bool]], width: int = 720) -> str:
    """The primary metric across trials: one horizontal bar per trial, the best one highlighted."""
    bar, gap, label_px, top = 20, 8, 260, 10
    height = top + len(values) * (bar + gap) + 24
    parts = [
        f'<svg class="chart metric-bars" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{esc(metric)} across trials">'
    ]
    span = width - label_px - 70
    for i, (label, value, best) in enumerate(values):
        y = top + i * (bar + gap)
        parts.append(
            f'<text x="{label_px - 8}" y="{y + 15}" text-anchor="end" class="axis"><title>{esc(label)}</title>'
            f"{esc(_short(label, 36))}</text>"
        )
        if value is None:
            parts.append(f'<text x="{label_px + 4}" y="{y + 15}" class="tick">no result</text>')
            continue
        w = max(1.0, max(0.0, min(1.0, value)) * span)
        parts.append(
            f'<rect x="{label_px}" y="{y}" width="{w:.1f}" height="{bar}" fill="{"#1a9850" if best else "#91bfdb"}">'
            f"<title>{esc(label)}: {value:.4f}</title></rect>"
            f'<text x="{label_px + w + 6:.1f}" y="{y + 15}" class="tick">{value:.4f}{" ★ best" if best else ""}</text>'
        )
    axis_y = top + len(values) * (bar + gap) + 4
    for k in range(0, 11, 2):
        x = label_px + span * k / 10
        parts.append(f'<text x="{x:.1f}" y="{axis_y + 12}" text-anchor="middle" class="tick">{k / 10:.1f}</text>')
    parts.append("</svg>")
    return "".join(parts)


def timeline_svg(steps: Sequence[TimelineStep], width: int = 720) -> str:
    """A Gantt chart of the execution's states: one bar per state entered, coloured by outcome."""
    times = [t for s in steps for t in (s.entered_at, s.exited_at) if t is not None]
    row, label_px, top = 22, 150, 8
    height = top + len(steps) * row + 26
    parts = [
        f'<svg class="chart timeline" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="execution timeline">'
    ]
    if not times:
        return parts[0] + '<text x="10" y="20" class="axis">no history</text></svg>'
    start, end = min(times), max(times)
    total = max((end - start).total_seconds(), 0.001)
    span = width - label_px - 110
    colours = {
        "succeeded": "#4575b4", "failed": "#d73027", "caught": "#f0a030", "running": "#74add1",
        "interrupted": "#8a3f96", "timed out": "#8a3f96",
    }
    for i, s in enumerate(steps):
        y = top + i * row
        begin = ((s.entered_at or start) - start).total_seconds()
        finish = ((s.exited_at or end) - start).total_seconds()
        x = label_px + begin / total * span
        w = max(2.0, (finish - begin) / total * span)
        took = "running" if s.seconds is None and s.outcome == "running" else _seconds_text(s.seconds)
        info = f"{s.state}: {s.outcome}, {took}" + (f", {s.attempts} attempts" if s.attempts > 1 else "")
        info += f" — {s.detail}" if s.detail else ""
        parts.append(
            f'<text x="{label_px - 8}" y="{y + 15}" text-anchor="end" class="axis">{esc(_short(s.state, 22))}</text>'
            f'<rect x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="{row - 6}" fill="{colours.get(s.outcome, "#999")}">'
            f"<title>{esc(info)}</title></rect>"
            f'<text x="{x + w + 6:.1f}" y="{y + 15}" class="tick">{esc(took)}'
            f"{' ✗' if s.outcome == 'failed' else ''}</text>"
        )
    parts.append(
        f'<text x="{label_px}" y="{height - 6}" class="tick">0 s</text>'
        f'<text x="{label_px + span:.1f}" y="{height - 6}" text-anchor="end" class="tick">'
        f"{_seconds_text(total)}</text></svg>"
    )
    return "".join(parts)


def _seconds_text(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s"
    return f"{int(seconds) // 60}m{int(seconds) % 60:02d}s"


# -- sections ----------------------------------------------------------------------------------------------
def _table_html(experiment: str, records: list[TrialRecord], anchors: Mapping[str, str]) -> str:
    columns, table = compare.rows(records)
    table = compare.sort_rows(columns, table, "f1", descending=True)
    head = "".join(
        f'<th data-col="{i}" title="click to sort">{esc("best" if c == "best" else c)}</th>'
        for i, c in enumerate(columns)
    )
    body = []
    for row in table:
        cells = []
        for c in columns:
            value = row.get(c)
            if isinstance(value, bool):
                sort_value = "1" if value else "0"
            else:
                sort_value = "" if value is None else (repr(value) if isinstance(value, (int, float)) else str(value))
            if c == "best":
                text = '<span class="badge">★ best</span>' if value else ""
            elif c == "trial":
                text = f'<a href="#{esc(anchors.get(str(value), ""))}">{esc(value)}</a>'
            else:
                text = esc(compare.format_cell(c, value))
            cells.append(f'<td data-sort="{esc(sort_value)}">{text}</td>')
        failed = row.get("status") == "Failed"
        cls = ' class="best-row"' if row.get("best") else (' class="failed-row"' if failed else "")
        body.append(f"<tr{cls}>{''.join(cells)}</tr>")
    return (
        f'<table class="compare sortable" data-experiment="{esc(experiment)}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def _metrics_list(record: TrialRecord, primary_metric: str) -> str:
    items = []
    for key, label in METRIC_LABELS.items():
        if key in record.metrics:
            strong = ' class="primary"' if key == primary_metric else ""
            items.append(f"<li{strong}><b>{esc(label)}</b> {_fmt(record.metrics[key])}</li>")
    return f'<ul class="metrics">{"".join(items)}</ul>' if items else ""


def _per_class_html(evaluation: Mapping[str, Any]) -> str:
    per_class = evaluation.get("per_class") or {}
    if not per_class:
        return ""
    rows = "".join(
        f"<tr><td>{esc(name)}</td><td>{_fmt(v.get('precision'))}</td><td>{_fmt(v.get('recall'))}</td>"
        f"<td>{_fmt(v.get('f1'))}</td><td>{esc(v.get('support'))}</td></tr>"
        for name, v in per_class.items()
        if isinstance(v, Mapping)
    )
    return (
        '<table class="per-class"><thead><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th>'
        f"<th>support</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def _curves_html(evaluation: Mapping[str, Any]) -> str:
    model = evaluation.get("model") or {}
    history = [h for h in model.get("history") or [] if isinstance(h, Mapping)]
    if not history:
        return '<p class="note">no training history recorded</p>'

    def pts(key: str) -> list[tuple[float, float]]:
        out = []
        for i, h in enumerate(history, start=1):
            value, epoch = _number(h.get(key)), _number(h.get("epoch", i))
            if value is not None and epoch is not None:
                out.append((epoch, value))
        return out

    best = _number(model.get("best_epoch"))
    marker = best if best is not None and best > 0 else None
    loss = line_chart_svg(
        "loss", [("train loss", "#d6604d", pts("train_loss")), ("val loss", "#2166ac", pts("val_loss"))],
        marker_x=marker,
    )
    acc = line_chart_svg(
        "accuracy", [("train acc", "#d6604d", pts("train_acc")), ("val acc", "#2166ac", pts("val_acc"))],
        y_unit=True, marker_x=marker,
    )
    caption = f"dashed grey line: epoch {int(marker)}, whose weights were kept" if marker else ""
    return f'<div class="curves">{loss}{acc}</div><p class="note">{esc(caption)}</p>'


def _thumbnails_html(evaluation: Mapping[str, Any], thumbnails: Mapping[str, bytes], size: int) -> str:
    missed = [m for m in evaluation.get("misclassified") or [] if isinstance(m, Mapping)]
    if not missed:
        return '<p class="note">no misclassified test photos</p>'
    missed = sorted(missed, key=lambda m: -(_number(m.get("confidence")) or 0.0))
    figures = []
    for m in missed[:MAX_THUMBNAILS]:
        path = str(m.get("path", ""))
        data = thumbnails.get(path)
        uri = thumbnail_data_uri(data, size) if data else None
        confidence = _number(m.get("confidence"))
        conf_text = f"{confidence:.0%}" if confidence is not None else "?"
        caption = (
            f'<figcaption><span class="true">{esc(m.get("true"))}</span> → '
            f'<span class="pred">{esc(m.get("predicted"))}</span> <span class="conf">{esc(conf_text)}</span>'
            f'<br><span class="path">{esc(_short(path, 40))}</span></figcaption>'
        )
        if uri is None:
            image = f'<div class="missing" style="width:{size}px;height:{size // 2}px">photo not available</div>'
        else:
            image = f'<img class="thumb" src="{uri}" alt="{esc(path)}" title="{esc(path)}" style="max-width:{size}px">'
        figures.append(f"<figure>{image}{caption}</figure>")
    more = len(missed) - MAX_THUMBNAILS
    tail = f'<p class="note">and {more} more (lowest confidence not shown)</p>' if more > 0 else ""
    return f'<div class="thumbs">{"".join(figures)}</div>{tail}'


def _trial_html(t: TrialReport, anchor: str, primary_metric: str, thumb_px: int) -> str:
    r = t.record
    badge = ' <span class="badge">★ best</span>' if r.is_best else ""
    head = f'<section class="trial" id="{esc(anchor)}"><h3>{esc(r.trial)}{badge}</h3>'
    try:
        body = _trial_body(t, primary_metric, thumb_px)
    except Exception as exc:  # one trial's odd data must not take the whole report down
        body = f'<p class="problem">this trial could not be drawn: {esc(type(exc).__name__)}: {esc(exc)}</p>'
    return f"{head}{body}</section>"


def _trial_body(t: TrialReport, primary_metric: str, thumb_px: int) -> str:
    r = t.record
    status_cls = "failed" if r.status == "Failed" else ("ok" if r.status == "Completed" else "other")
    started = r.started_at.strftime("%Y-%m-%d %H:%M:%S %Z") if isinstance(r.started_at, datetime) else "-"
    facts = [
        ("status", f'<span class="status {status_cls}">{esc(r.status)}</span>'),
        ("started", esc(started)),
        ("duration", esc(_seconds_text(r.duration_seconds))),
        ("dataset", esc(r.dataset_id or "-")),
        ("code", esc(str(r.code_hash)[:12] if r.code_hash else "-")),
        ("execution", esc(t.execution or "-") + (f" ({esc(t.execution_status)})" if t.execution_status else "")),
        ("comment", esc(r.comment or "-")),
    ]
    if r.error:
        facts.append(("error", f'<span class="error">{esc(r.error)}</span>'))
    if r.hyperparameters:
        hp = ", ".join(f"{esc(k)}={esc(compare.format_cell(k, v))}" for k, v in sorted(r.hyperparameters.items()))
        facts.append(("hyperparameters", f'<span class="hp">{hp}</span>'))
    if t.links:
        links = " · ".join(
            f'<a href="{esc(url)}" rel="noreferrer">{esc(name.removesuffix("_url").replace("_", " "))}</a>'
            for name, url in t.links.items()
            if CONSOLE_URL.match(str(url))
        )
        facts.append(("AWS console", links))
    dl = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)
    parts = [f'<dl class="facts">{dl}</dl>', _metrics_list(r, primary_metric)]
    if t.problem:
        parts.append(f'<p class="problem">{esc(t.problem)}</p>')
    if t.note:
        parts.append(f'<p class="note">{esc(t.note)}</p>')
    ev = t.evaluation
    cm = (ev or {}).get("confusion_matrix") or {}  # the matrix lives in evaluation.json only
    labels, matrix = cm.get("labels") or [], cm.get("matrix") or []
    if labels and matrix:
        parts.append(
            '<div class="row"><div><h4>confusion matrix</h4>'
            f"{confusion_svg([str(x) for x in labels], matrix, f'confusion matrix of {r.trial}')}</div>"
            f"<div><h4>per class</h4>{_per_class_html(ev) if ev else ''}</div></div>"
        )
    if ev:
        parts.append(f"<h4>learning curves</h4>{_curves_html(ev)}")
        parts.append(f"<h4>misclassified test photos</h4>{_thumbnails_html(ev, t.thumbnails, thumb_px)}")
    elif r.status == "Completed" and not t.problem:
        parts.append('<p class="note">evaluation.json not available: no curves or photos</p>')
    if t.view is not None:
        parts.append(f"<h4>execution graph</h4>{graph_svg(t.view, f'state machine graph of {t.view.name}')}")
    if t.timeline:
        parts.append(f"<h4>execution timeline</h4>{timeline_svg(t.timeline)}")
    return "".join(parts)


def _anchor(experiment: str, trial: str) -> str:
    return "t-" + hashlib.sha256(f"{experiment}/{trial}".encode()).hexdigest()[:12]


# A tiny sorter for the comparison tables: click a header, click again to reverse. No user data inside.
SORT_SCRIPT = """
document.querySelectorAll('table.sortable').forEach(function (table) {
  table.querySelectorAll('th').forEach(function (th) {
    th.addEventListener('click', function () {
      var col = Number(th.dataset.col), desc = th.dataset.dir !== 'desc';
      table.querySelectorAll('th').forEach(function (h) { delete h.dataset.dir; });
      th.dataset.dir = desc ? 'desc' : 'asc';
      var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[col].dataset.sort, y = b.cells[col].dataset.sort;
        if (x === '' && y !== '') return 1;
        if (y === '' && x !== '') return -1;
        var nx = Number(x), ny = Number(y), order;
        if (x !== '' && y !== '' && !isNaN(nx) && !isNaN(ny)) order = nx - ny;
        else order = x < y ? -1 : x > y ? 1 : 0;
        return order * (desc ? -1 : 1);
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
""".strip()

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:19px;margin:28px 0 8px;border-bottom:2px solid #ddd}
h3{font-size:16px;margin:0 0 6px}h4{font-size:14px;margin:14px 0 4px;color:#444}
table{border-collapse:collapse;margin:6px 0}th,td{border:1px solid #ddd;padding:3px 7px;text-align:left}
th{background:#f3f3f3;cursor:pointer;white-space:nowrap}th[data-dir=desc]::after{content:" ▼"}
th[data-dir=asc]::after{content:" ▲"}tr.best-row td{background:#e6f5e6;font-weight:600}
tr.failed-row td{color:#a33}.badge{background:#1a9850;color:#fff;border-radius:8px;padding:0 7px;font-size:12px}
.trial{border:1px solid #ddd;border-radius:6px;padding:12px 16px;margin:14px 0}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:0}dt{color:#666}dd{margin:0}
ul.metrics{list-style:none;padding:0;display:flex;gap:18px;flex-wrap:wrap}li.primary{color:#1a6b3a}
.row,.curves{display:flex;gap:24px;flex-wrap:wrap;align-items:flex-start}
.thumbs{display:flex;flex-wrap:wrap;gap:10px}figure{margin:0;width:170px;font-size:12px}
figure img{display:block;border:1px solid #ccc}figcaption{overflow-wrap:anywhere}
.pred{color:#b2182b;font-weight:600}.true{font-weight:600}
.path,.note{color:#777;font-size:12px}.problem{color:#b2182b;background:#fdecea;border:1px solid #f5c6c0;
padding:4px 8px;border-radius:4px}
.missing{background:#eee;color:#777;display:flex;align-items:center;
justify-content:center}.status.failed,.error{color:#b2182b}.status.ok{color:#1a6b3a}
svg text{font:11px system-ui,sans-serif}svg .chart-title{font-weight:600;font-size:12px}
svg .axis-title{fill:#555}svg .tick{fill:#555;font-size:10px}svg .count{font-size:12px}
""".strip()


def build_report(
    experiments: Sequence[ExperimentReport],
    *,
    primary_metric: str = "macro_f1",
    title: str = "nyanops: experiment report",
    generated_at: datetime | None = None,
    source: str = "",
    thumbnail_px: int = THUMBNAIL_PX,
) -> str:
    """One self-contained HTML document for the given experiments."""
    when = (generated_at or datetime.now(timezone.utc)).strftime("%Y-%m-%d %H:%M:%S %Z")
    script_hash = base64.b64encode(hashlib.sha256(SORT_SCRIPT.encode()).digest()).decode()
    csp = (
        "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
        f"script-src 'sha256-{script_hash}'; base-uri 'none'; form-action 'none'"
    )
    metric_label = METRIC_LABELS.get(primary_metric, primary_metric)
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{esc(csp)}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta name="generator" content="{GENERATOR}">',
        f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        f'<p class="note">generated {esc(when)}{" from " + esc(source) if source else ""}; '
        f"primary metric: {esc(metric_label)}; ★ = the best trial of its experiment</p>",
    ]
    if not experiments:
        out.append("<p>No trials yet.</p>")
    for exp in experiments:
        records = [t.record for t in exp.trials]
        anchors = {t.record.trial: _anchor(exp.name, t.record.trial) for t in exp.trials}
        completed = sum(1 for r in records if r.status == "Completed")
        out.append(
            f'<section class="experiment"><h2>experiment {esc(exp.name)}</h2>'
            f'<p class="note">{len(records)} trials, {completed} completed; click a column header to sort</p>'
            f"{_table_html(exp.name, records, anchors)}"
        )
        bars = [
            (f"{r.trial}" + (f" — {r.comment}" if r.comment else ""), _number(r.metrics.get(primary_metric)), r.is_best)
            for r in records
        ]
        out.append(f"<h4>{esc(metric_label)} across trials</h4>{metric_bars_svg(metric_label, bars)}")
        ordered = sorted(
            exp.trials, key=lambda t: (not t.record.is_best, -(_number(t.record.metrics.get(primary_metric)) or -1.0))
        )
        out += [_trial_html(t, anchors[t.record.trial], primary_metric, thumbnail_px) for t in ordered]
        out.append("</section>")
    out.append(f"<script>{SORT_SCRIPT}</script></body></html>")
    return "\n".join(out)
