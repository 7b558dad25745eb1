"""What every command shares: exit statuses, the user-error type, and printing what StartPipeline did."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

from nyanops.core import layout
from nyanops.core.start_pipeline import Outcome, UploadResult
from nyanops.local import executions as ex
from nyanops.local.runner import LocalPipeline

EXIT_OK, EXIT_RUN_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


class CliError(Exception):
    """A problem the user can fix; printed without a traceback."""

    def __init__(self, message: str, code: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message)
        self.code = code


def report_upload(results: list[UploadResult]) -> list[str]:
    """Print what StartPipeline did; return the names of executions started (or already started)."""
    names = []
    for r in results:
        if r.outcome is Outcome.STARTED:
            print(f"started execution {r.execution_name}")
            names.append(r.execution_name)
        elif r.outcome is Outcome.DUPLICATE:
            print(f"already started for this upload: execution {r.execution_name} (duplicate event ignored)")
            names.append(r.execution_name)
        elif r.outcome is Outcome.REJECTED:
            print(f"refused {r.key}:", file=sys.stderr)
            for p in r.problems:
                print(f"  - {p.field}: {p.problem}\n    fix: {p.fix}", file=sys.stderr)
            print(f"  (details in {layout.rejection_key(r.key)}; the upload itself is untouched)", file=sys.stderr)
        else:
            print(f"nothing to do for {r.key}: {r.reason}")
    return [n for n in names if n is not None]


def follow(pipeline: LocalPipeline, names: list[str]) -> int:
    """Run the named executions here and now; exit status says whether all succeeded."""
    code = EXIT_OK
    for name in names:
        row = pipeline.executions.get(name)
        if row and row.status == ex.PENDING:
            row = pipeline.execute(name)
        elif row and row.status == ex.RUNNING:
            row = wait_for(pipeline, name)
        if row is None or row.status != ex.SUCCEEDED:
            code = EXIT_RUN_FAILED
            if row is not None:
                print(f"execution {name}: {row.status}: {failure_of(pipeline, row)}", file=sys.stderr)
    return code


def failure_of(pipeline: LocalPipeline, row: ex.ExecutionRow) -> str:
    """The recorded cause (the job's FailureReason) beats the state machine's generic PipelineFailed."""
    trial = next(
        (t for t in pipeline.experiments.list_trials(row.experiment) if t.trial == row.input.get("trial")), None
    )
    if trial is not None and trial.error:
        return trial.error
    return f"{row.error}: {row.cause}"


def wait_for(pipeline: LocalPipeline, name: str) -> ex.ExecutionRow | None:
    while True:
        row = pipeline.executions.get(name)
        if row is None or row.status not in ex.ACTIVE:
            return row
        time.sleep(1)


def confirm(question: str, assume_yes: bool) -> bool:
    if assume_yes:
        return True
    if not sys.stdin.isatty():
        raise CliError("refusing to delete without confirmation: no terminal to ask on; re-run with --yes")
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def duration(seconds: float | None) -> str:
    return "-" if seconds is None else f"{int(seconds) // 60}m{int(seconds) % 60:02d}s"


def add_command(
    sub: argparse._SubParsersAction, name: str, func: Callable[[argparse.Namespace], int], help_text: str
) -> argparse.ArgumentParser:
    """A subcommand whose one-line help is also its description in ``nyanops NAME --help``."""
    sp = sub.add_parser(name, help=help_text, description=help_text)
    sp.set_defaults(func=func)
    return sp
