"""The comparison table of an experiment's trials: one row per trial, the hyperparameters that
differ between trials, the metrics, the best trial marked. Works on ``TrialRecord`` lists from
either store (SQLite locally, SageMaker Experiments on AWS)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from nyanops.core.experiments import TrialRecord
from nyanops.core.hyperparameters import MECHANICS_NAMES
from nyanops.terminal import display_width, elide, pad, printable

METRIC_COLUMNS = (("accuracy", "acc"), ("macro_precision", "prec"), ("macro_recall", "rec"), ("macro_f1", "f1"))
BASE_COLUMNS = ("best", "when", "status", "dataset")
TAIL_COLUMNS = ("duration", "trial", "comment")
# Shown when a trial reused an identical one's results (nyanops.core.reuse): the trial that trained.
REUSED_COLUMN = "reused_from"
# Arguments that change how a job runs, not what it learns (the table's run mechanics): never a column.
OPERATIONAL = MECHANICS_NAMES
# Columns that keep their full width on a narrow terminal (short by nature, and what a comparison is for).
FIXED_COLUMNS = {"best", "when", "status", "duration", *(short for _, short in METRIC_COLUMNS)}
# Cut in the middle: their end (the upload hash of an execution name) tells them apart.
MIDDLE_ELIDED = {"trial", REUSED_COLUMN}
MIN_SHRUNK = 8


def differing_hyperparameters(records: list[TrialRecord]) -> list[str]:
    """Hyperparameter names whose value is not the same in every trial (missing counts as different)."""
    # Completed trials carry the values train.py actually used; others only what their manifest set.
    completed = [r for r in records if r.status == "Completed"]
    pool = completed if len(completed) >= 2 else records
    names = sorted({k for r in pool for k in r.hyperparameters} - OPERATIONAL)
    if len(pool) < 2:
        return names
    # freeze-epochs follows epochs when every epoch is classifier-only (train.py caps it): not a difference.
    capped = all(r.hyperparameters.get("freeze-epochs") == r.hyperparameters.get("epochs") for r in pool)
    return [n for n in names if len({json.dumps(r.hyperparameters.get(n), sort_keys=True) for r in pool}) > 1
            and not (n == "freeze-epochs" and capped)]


def rows(records: list[TrialRecord]) -> tuple[list[str], list[dict[str, Any]]]:
    """Column names and row dicts (raw values, for sorting and JSON)."""
    hp = differing_hyperparameters(records)
    tail = list(TAIL_COLUMNS)
    if any(r.reused_from for r in records):  # trials that were not trained: the trial whose results they took
        tail.insert(tail.index("trial") + 1, REUSED_COLUMN)
    columns = [*BASE_COLUMNS, *hp, *(short for _, short in METRIC_COLUMNS), *tail]
    out = []
    for r in records:
        row: dict[str, Any] = {
            "best": r.is_best,
            "when": r.started_at.strftime("%Y-%m-%d %H:%M") if r.started_at else "",
            "status": r.status,
            "dataset": r.dataset_id,
        }
        row.update({name: r.hyperparameters.get(name) for name in hp})
        row.update({short: r.metrics.get(key) for key, short in METRIC_COLUMNS})
        row["duration"] = r.duration_seconds
        row["trial"] = r.trial
        if REUSED_COLUMN in columns:
            row[REUSED_COLUMN] = r.reused_from
        row["comment"] = r.comment if r.status != "Failed" else (r.error or r.comment)
        out.append(row)
    return columns, out


def _sort_key(value: Any) -> tuple[int, Any]:
    """Numbers (bools included) before strings, each in their natural order: hyperparameters read back
    from SageMaker can mix types in one column, and Python refuses to compare 1 with "1"."""
    if isinstance(value, (bool, int, float)):
        return (0, float(value))
    return (1, str(value))


def parse_sort(spec: str | None) -> tuple[str | None, bool]:
    """``--sort`` syntax: ``f1`` or ``-f1`` descending, ``+f1`` ascending. Returns (column, descending)."""
    if not spec:
        return None, False
    return spec.lstrip("+-"), not spec.startswith("+")


def sort_rows(
    columns: list[str], table: list[dict[str, Any]], by: str | None, descending: bool
) -> list[dict[str, Any]]:
    """Rows sorted by one column; rows without a value in it go last whichever the direction."""
    if by is None:
        return table
    if by not in columns:
        raise ValueError(f"cannot sort by {by!r}; columns are: {', '.join(columns)}")
    present = [r for r in table if r.get(by) is not None]
    missing = [r for r in table if r.get(by) is None]
    return sorted(present, key=lambda r: _sort_key(r[by]), reverse=descending) + missing


def format_cell(column: str, value: Any, limit: int | None = 48) -> str:
    """One cell as text (the plain table and the HTML report show the same values); text longer than
    ``limit`` characters is cut (None: never; the terminal table fits its width itself)."""
    if column == "best":
        return "*" if value else ""
    if value is None:
        return "-"
    if column == "duration":
        seconds = int(value)
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if isinstance(value, float):
        return f"{value:.4f}" if column in {s for _, s in METRIC_COLUMNS} else f"{value:g}"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    return text if limit is None or len(text) <= limit else text[: limit - 3] + "..."


def fit_widths(columns: list[str], widths: list[int], width: int | None) -> list[int]:
    """Column widths for a table at most ``width`` columns wide (two spaces between columns): the widest
    of the columns that may shrink (comment, trial, dataset, hyperparameters) loses a column at a time,
    none below its header or 8. None keeps the natural widths. A table that cannot fit stays wider."""
    out = list(widths)
    if width is None:
        return out
    floors = [
        w if c in FIXED_COLUMNS else min(w, max(display_width(c), MIN_SHRUNK))
        for c, w in zip(columns, out, strict=True)
    ]
    excess = sum(out) + 2 * (len(out) - 1) - width
    while excess > 0:
        candidates = [i for i in range(len(out)) if out[i] > floors[i]]
        if not candidates:
            break
        widest = max(candidates, key=lambda i: out[i])
        out[widest] -= 1
        excess -= 1
    return out


def render(columns: list[str], table: list[dict[str, Any]], width: int | None = None) -> str:
    """A plain-text table, best trial marked with ``*``. Every value is made printable (no control
    characters or escape sequences reach the terminal). With ``width``, long columns are elided with
    ``…`` so the table fits; without it (a pipe, or ``--wide``) every value is shown in full."""
    cells = [[printable(format_cell(c, row.get(c), limit=None)) for c in columns] for row in table]
    natural = [max([display_width(c), *(display_width(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    widths = fit_widths(columns, natural, width)
    cells = [
        [elide(v, w, middle=c in MIDDLE_ELIDED) for c, v, w in zip(columns, r, widths, strict=True)] for r in cells
    ]
    header = [elide(c, w) for c, w in zip(columns, widths, strict=True)]
    lines = ["  ".join(pad(c, w) for c, w in zip(header, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(pad(v, w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def as_json(table: list[dict[str, Any]]) -> str:
    return json.dumps(table, indent=2, default=str)


def format_experiments(
    records: list[TrialRecord],
    sort: str | None = None,
    json_output: bool = False,
    width: int | None = None,
    links: Callable[[TrialRecord], dict[str, str]] | None = None,
) -> str:
    """What ``nyanops experiments`` prints for records of any store: one table per experiment (the
    differing hyperparameters are decided per experiment), sorted as ``--sort`` says, best marked,
    fitted to ``width`` columns when given. ``json_output`` gives one JSON list of rows, each with its
    ``experiment``. ``links(record)`` adds named URLs (console pages) to each JSON row and, in text, the
    ``execution`` one under the table. Raises ValueError for an unknown sort column."""
    by, descending = parse_sort(sort)
    parts: list[str] = []
    all_rows: list[dict[str, Any]] = []
    for exp in sorted({r.experiment for r in records}):
        mine = [r for r in records if r.experiment == exp]
        by_trial = {r.trial: r for r in mine}
        columns, table = rows(mine)
        table = sort_rows(columns, table, by, descending)
        urls = {t: u for t, r in by_trial.items() if (u := links(r))} if links else {}
        all_rows += [{"experiment": exp, **row, **urls.get(row["trial"], {})} for row in table]
        text = f"experiment {printable(exp)} ({len(mine)} trials, * = best)\n{render(columns, table, width)}"
        listed = [(row["trial"], urls[row["trial"]].get("execution_url")) for row in table if row["trial"] in urls]
        if any(url for _, url in listed):
            text += "\nconsole (execution graph, with links to its jobs):"
            text += "".join(f"\n  {printable(trial)}  {url}" for trial, url in listed if url)
        parts.append(text)
    return as_json(all_rows) if json_output else "\n\n".join(parts)
