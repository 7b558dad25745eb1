"""The state machine of one execution as a picture, like the Step Functions console's graph view: one box per
state, arrows for Next, Choice and Catch, each box coloured by what happened to the state in that
execution, the arrows the execution followed drawn bold. Inline SVG, no script, no external reference.

Layout: states in rows by their longest distance from ``StartAt`` (so the main path runs straight down and
failure paths branch off to the side), ordered in a row by where their predecessors are.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from nyanops.execution_view import (
    CAUGHT,
    FAILED,
    INTERRUPTED,
    NOT_RUN,
    RUNNING,
    SUCCEEDED,
    TIMED_OUT,
    ExecutionView,
    StateView,
    Transition,
    clock,
    readable_cause,
)
from nyanops.terminal import printable

BOX_H, GAP_X, GAP_Y, MARGIN = 34, 28, 30, 12
MIN_BOX_W, MAX_BOX_W, CHAR_W = 120, 210, 7.2  # boxes as wide as the longest state name needs
# fill, stroke: the console's colours (green succeeded, red failed, orange caught, blue in progress).
COLOURS = {
    SUCCEEDED: ("#e3f1df", "#3b8132"),
    FAILED: ("#fbe3e0", "#d13212"),
    CAUGHT: ("#fdf0d5", "#e07700"),
    RUNNING: ("#e1ecf8", "#0972d3"),
    INTERRUPTED: ("#f1e3f3", "#8a3f96"),
    TIMED_OUT: ("#f1e3f3", "#8a3f96"),
    NOT_RUN: ("#ffffff", "#aab7b8"),
}
LEGEND = (SUCCEEDED, CAUGHT, FAILED, RUNNING, INTERRUPTED, NOT_RUN)


def _esc(value: object) -> str:
    return html.escape(printable(str(value), keep_newlines=True), quote=True)


def _layers(names: Sequence[str], start: str | None, transitions: Sequence[Transition]) -> dict[str, int]:
    """Longest distance from the start along the arrows, back arrows (loops) left out."""
    succ: dict[str, list[str]] = {n: [] for n in names}
    for t in transitions:
        if t.source in succ and t.target in succ:
            succ[t.source].append(t.target)
    order: list[str] = []  # reverse post-order of a depth-first walk: a topological order without back arrows
    state: dict[str, int] = {}
    back: set[tuple[str, str]] = set()

    def visit(node: str) -> None:
        stack = [(node, iter(succ[node]))]
        state[node] = 1
        while stack:
            current, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[current] = 2
                order.append(current)
                stack.pop()
            elif state.get(child) == 1:
                back.add((current, child))
            elif child not in state:
                state[child] = 1
                stack.append((child, iter(succ[child])))

    for root in ([start] if start in succ else []) + list(names):
        if root not in state:
            visit(root)
    layer = {n: 0 for n in names}
    for node in reversed(order):
        for child in succ[node]:
            if (node, child) not in back:
                layer[child] = max(layer[child], layer[node] + 1)
    return layer


def _columns(names: Sequence[str], layer: dict[str, int], transitions: Sequence[Transition]) -> dict[str, float]:
    """A horizontal slot per state: under its predecessors where it can be, never overlapping a neighbour."""
    preds: dict[str, list[str]] = {n: [] for n in names}
    for t in transitions:
        if t.source in layer and t.target in preds and layer[t.source] < layer[t.target]:
            preds[t.target].append(t.source)
    rank = {n: i for i, n in enumerate(names)}
    # A state reached by a Next (or a Choice) goes straight under its predecessor; one reached only by a
    # Catch goes beside it: the normal path stays a straight line, failure paths branch off to the right.
    on_path = {t.target for t in transitions if t.kind != "catch"}
    column: dict[str, float] = {}
    for row in sorted(set(layer.values())):
        members = [n for n in names if layer[n] == row]
        wanted = {
            n: (sum(column[p] for p in preds[n]) / len(preds[n]) if preds[n] else 0.0) for n in members
        }
        x = None
        for n in sorted(members, key=lambda m: (wanted[m], m not in on_path, rank[m])):
            column[n] = wanted[n] if x is None else max(wanted[n], x + 1)
            x = column[n]
    return column


def graph_svg(view: ExecutionView, title: str = "") -> str:
    """The execution's state machine as an SVG graph coloured by outcome."""
    states = [s for s in view.states if s.type or s.ran]
    names = [s.name for s in states]
    if not names:
        return ""
    by_name = {s.name: s for s in states}
    layer = _layers(names, view.start_at, view.transitions)
    column = _columns(names, layer, view.transitions)
    box_w = max(MIN_BOX_W, min(MAX_BOX_W, int(max(len(n) for n in names) * CHAR_W + 24)))
    left = -min(column.values())
    rows = max(layer.values()) + 1
    width = int(MARGIN * 2 + (max(column.values()) + left + 1) * (box_w + GAP_X))
    legend_y = MARGIN + rows * (BOX_H + GAP_Y)
    height = legend_y + 26

    def box(name: str) -> tuple[float, float]:
        return MARGIN + (column[name] + left) * (box_w + GAP_X), MARGIN + layer[name] * (BOX_H + GAP_Y)

    taken = view.taken()
    label = title or f"state machine graph of {view.name}"
    parts = [
        f'<svg class="graph" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{_esc(label)}">'
    ]
    pairs = {(t.source, t.target) for t in view.transitions if t.kind != "catch"}
    for t in view.transitions:
        if t.kind == "catch" and (t.source, t.target) in pairs:
            continue  # the same arrow as the state's Next (a failure goes where success goes)
        if t.source in by_name and t.target in by_name:
            parts.append(_arrow(box(t.source), box(t.target), t, (t.source, t.target) in taken, box_w))
    for s in states:
        parts.append(_node(s, *box(s.name), box_w))
    x = MARGIN
    for status in LEGEND:
        fill, stroke = COLOURS[status]
        parts.append(
            f'<rect x="{x}" y="{legend_y + 6}" width="12" height="12" fill="{fill}" stroke="{stroke}"/>'
            f'<text x="{x + 16}" y="{legend_y + 16}" class="tick">{_esc(status)}</text>'
        )
        x += 16 + 7 * len(status) + 14
    parts.append("</svg>")
    return "".join(parts)


def _node(s: StateView, x: float, y: float, box_w: float) -> str:
    fill, stroke = COLOURS.get(s.status, COLOURS[NOT_RUN])
    info = [f"{s.name} ({s.type}): {s.status}"]
    if s.ran:
        info.append(clock(s.seconds()))
    if s.attempts > 1:
        info.append(f"{s.attempts} attempts")
    if s.error or s.cause:
        info.append(f"{s.error or ''}: {readable_cause(s.cause, 300)}")
    limit = int((box_w - 16) / CHAR_W)
    name = s.name if len(s.name) <= limit else s.name[: limit - 1] + "…"
    dash = ' stroke-dasharray="4 3"' if s.status == NOT_RUN else ""
    width = 3 if s.status in (FAILED, CAUGHT, RUNNING) else 1.5
    return (
        f'<g class="state {_esc(s.status.replace(" ", "-"))}"><title>{_esc(" — ".join(info))}</title>'
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{box_w}" height="{BOX_H}" rx="6" fill="{fill}" stroke="{stroke}" '
        f'stroke-width="{width}"{dash}/>'
        f'<text x="{x + box_w / 2:.1f}" y="{y + BOX_H / 2 + 4:.1f}" text-anchor="middle" class="axis">'
        f"{_esc(name)}</text></g>"
    )


def _arrow(a: tuple[float, float], b: tuple[float, float], t: Transition, taken: bool, box_w: float) -> str:
    (ax, ay), (bx, by) = a, b
    x1, y1 = ax + box_w / 2, ay + BOX_H
    x2, y2 = bx + box_w / 2, by
    if t.kind == "catch" and by > ay:  # a Catch leaves from the lower right, apart from the Next arrow
        x1 = ax + box_w * 0.85
        mid = (y1 + y2) / 2
        path = f"M{x1:.1f},{y1:.1f} C{x1:.1f},{mid:.1f} {x2:.1f},{mid:.1f} {x2:.1f},{y2 - 2:.1f}"
        tip = (x2, y2, 0.0, 1.0)
    elif by <= ay:  # a loop back up: around the right side
        x1, y1, x2, y2 = ax + box_w, ay + BOX_H / 2, bx + box_w, by + BOX_H / 2
        bend = max(x1, x2) + GAP_X / 2
        path = f"M{x1:.1f},{y1:.1f} C{bend:.1f},{y1:.1f} {bend:.1f},{y2:.1f} {x2 + 2:.1f},{y2:.1f}"
        tip = (x2, y2, -1.0, 0.0)
    else:
        mid = (y1 + y2) / 2
        path = f"M{x1:.1f},{y1:.1f} C{x1:.1f},{mid:.1f} {x2:.1f},{mid:.1f} {x2:.1f},{y2 - 2:.1f}"
        tip = (x2, y2, 0.0, 1.0)
    colour = "#16191f" if taken else ("#d13212" if t.kind == "catch" else "#879596")
    dash = ' stroke-dasharray="5 3"' if t.kind == "catch" else ""
    stroke = 2.2 if taken else 1.1
    tx, ty, dx, dy = tip
    # An arrowhead as a small triangle pointing along (dx, dy) at the tip.
    p1 = (tx - 5 * dy - 7 * dx, ty - 7 * dy + 5 * dx)
    p2 = (tx + 5 * dy - 7 * dx, ty - 7 * dy - 5 * dx)
    head = f"{tx:.1f},{ty:.1f} {p1[0]:.1f},{p1[1]:.1f} {p2[0]:.1f},{p2[1]:.1f}"
    label = f"{t.source} → {t.target} ({t.kind}{', taken' if taken else ''})"
    return (
        f'<g class="arrow {t.kind}{" taken" if taken else ""}"><title>{_esc(label)}</title>'
        f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="{stroke}"{dash}/>'
        f'<polygon points="{head}" fill="{colour}"/></g>'
    )
