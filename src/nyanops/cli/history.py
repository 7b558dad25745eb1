"""What ran: ``nyanops executions`` and ``nyanops execution ID`` (state by state, timings, errors)."""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from typing import Any

from nyanops.backends.local import LocalBackend
from nyanops.cli.common import EXIT_OK, CliError, add_command, duration
from nyanops.local import executions as ex


def cmd_executions(args: argparse.Namespace) -> int:
    pipeline = LocalBackend(args.root).pipeline
    rows = pipeline.executions.list(args.limit)
    if args.json:
        print(json.dumps([execution_summary(r) for r in rows], indent=2, default=str))
        return EXIT_OK
    if not rows:
        print("no executions yet")
        return EXIT_OK
    table = [
        [r.name, r.status, r.experiment or "", r.created_at[:19], duration(r.duration_seconds), (r.error or "")[:40]]
        for r in rows
    ]
    header = ["execution", "status", "experiment", "created", "duration", "error"]
    widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(header)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    for row in table:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    return EXIT_OK


def execution_summary(r: ex.ExecutionRow) -> dict[str, Any]:
    return {
        "name": r.name,
        "status": r.status,
        "experiment": r.experiment,
        "source_key": r.source_key,
        "created_at": r.created_at,
        "started_at": r.started_at,
        "stopped_at": r.stopped_at,
        "duration_seconds": r.duration_seconds,
        "error": r.error,
        "cause": r.cause,
    }


def cmd_execution(args: argparse.Namespace) -> int:
    pipeline = LocalBackend(args.root).pipeline
    matches = pipeline.executions.find(args.id)
    exact = [m for m in matches if m.name == args.id]
    if exact:
        matches = exact
    if not matches:
        raise CliError(f"no execution named {args.id!r}; `nyanops executions` lists them")
    if len(matches) > 1:
        raise CliError(f"{args.id!r} matches {len(matches)} executions: " + ", ".join(m.name for m in matches))
    row = matches[0]
    events = pipeline.executions.events(row.name)
    if args.json:
        print(
            json.dumps(
                {**execution_summary(row), "input": row.input, "output": row.output, "events": events},
                indent=2,
                default=str,
            )
        )
        return EXIT_OK
    print(
        f"execution {row.name}\n  status     {row.status}\n  experiment {row.experiment}\n  upload     {row.source_key}"
    )
    print(f"  created    {row.created_at}\n  duration   {duration(row.duration_seconds)}")
    if row.error:
        print(f"  error      {row.error}: {row.cause}")
    print("  states:")
    entered: dict[str, str] = {}
    for e in events:
        state = e["state"] or ""
        if e["type"].endswith("StateEntered"):
            entered[state] = e["at"]
        elif e["type"].endswith("StateExited"):
            start = entered.get(state)
            took = _seconds_between(start, e["at"]) if start else None
            print(f"    {e['at'][11:19]}  {state:<20} {'' if took is None else f'{took:7.1f} s'}")
        elif e["type"].endswith("Failed") or e["type"] in ("ExecutionAborted",):
            detail = e["detail"] or {}
            text = detail.get("error") or detail.get("cause") or ""
            print(f"    {e['at'][11:19]}  {e['type']:<20} {str(text)[:160]}")
    return EXIT_OK


def _seconds_between(a: str, b: str) -> float:
    return (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds()


def register(sub: argparse._SubParsersAction) -> None:
    sp = add_command(sub, "executions", cmd_executions, "list executions, newest first")
    sp.add_argument("--limit", type=int, default=50, help="show at most this many (default 50)")
    sp.add_argument("--json", action="store_true", help="machine-readable output")

    sp = add_command(sub, "execution", cmd_execution, "one execution, state by state, with timings and errors")
    sp.add_argument("id", help="execution name (a unique prefix is enough)")
    sp.add_argument("--json", action="store_true", help="machine-readable output: summary, input, output, events")
