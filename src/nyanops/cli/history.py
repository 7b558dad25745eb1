"""What ran: ``nyanops executions`` and ``nyanops execution ID``, locally or on a deployed stack: every state
of the state machine in order, the one in progress with its job's last line, the one that failed with its
cause, and any state's input and output (``--state NAME``)."""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timezone
from typing import Any

from nyanops.backends import ExecutionSummary, add_aws_arguments, open_backend
from nyanops.cli.common import EXIT_OK, CliError, add_command, duration, printable
from nyanops.execution_view import readable_cause, render_state, render_view
from nyanops.terminal import elide, terminal_width


def cmd_executions(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise CliError(f"--limit must be at least 1, got {args.limit}")
    backend = open_backend(args)
    rows = backend.list_executions(args.limit)
    if args.json:
        print(json.dumps([execution_summary(r) for r in rows], indent=2, default=str))
        return EXIT_OK
    if not rows:
        print(f"no executions yet in {backend.where()}")
        return EXIT_OK
    table = [
        [
            r.name,
            r.status,
            r.experiment or "-",
            _when(r.started_at),
            duration(r.duration_seconds),
            readable_cause(r.cause, 200) or r.error or "",
        ]
        for r in rows
    ]
    header = ["execution", "status", "experiment", "started", "duration", "error"]
    table = [[printable(v) for v in row] for row in table]
    widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(header)]
    width = terminal_width()
    if width is not None:  # the error column takes what is left of the line
        widths[-1] = max(10, min(widths[-1], width - sum(widths[:-1]) - 2 * (len(widths) - 1)))
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
    for row in table:
        row[-1] = elide(row[-1], widths[-1]) if width is not None else row[-1]
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    return EXIT_OK


def _when(at: datetime | None) -> str:
    return at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S") if at else "-"


def execution_summary(r: ExecutionSummary) -> dict[str, Any]:
    return {
        "name": r.name,
        "status": r.status,
        "experiment": r.experiment,
        "source_key": r.source_key,
        "started_at": r.started_at.isoformat() if r.started_at else None,
        "stopped_at": r.stopped_at.isoformat() if r.stopped_at else None,
        "duration_seconds": r.duration_seconds,
        "error": r.error,
        "cause": r.cause,
    }


def cmd_execution(args: argparse.Namespace) -> int:
    backend = open_backend(args)
    summary = backend.find_execution(args.id)
    view = backend.execution_view(summary)
    now = datetime.now(timezone.utc)
    if args.state is not None:
        state = view.state(args.state) or next(
            (s for s in view.states if s.name.lower() == args.state.lower()), None
        )
        if state is None:
            names = ", ".join(s.name for s in view.states)
            raise CliError(f"no state {printable(args.state)!r} in this state machine; its states: {names}")
        if args.json:
            print(json.dumps(next(d for d in view.as_dict()["states"] if d["name"] == state.name), indent=2))
        else:
            print(render_state(state, now))
        return EXIT_OK
    if args.json:
        print(json.dumps({**execution_summary(summary), "view": view.as_dict()}, indent=2, default=str))
        return EXIT_OK
    facts = [("experiment", summary.experiment or "-"), ("upload", summary.source_key or "-")]
    print(render_view(view, now=now, facts=facts, progress=backend.job_progress, command=backend.execution_command()))
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    sp = add_command(sub, "executions", cmd_executions, "list executions, newest first")
    sp.add_argument("--limit", type=int, default=50, help="show at most this many (default 50)")
    sp.add_argument("--json", action="store_true", help="machine-readable output")
    add_aws_arguments(sp)

    sp = add_command(
        sub,
        "execution",
        cmd_execution,
        "one execution as the console shows it: every state in order, the running one with its job's progress, "
        "the failed one with its cause",
    )
    sp.add_argument("id", help="execution name (a unique prefix is enough)")
    sp.add_argument("--state", metavar="NAME", help="show one state in full: times, error, input, request and output")
    sp.add_argument("--json", action="store_true", help="machine-readable output: summary and every state")
    add_aws_arguments(sp)
