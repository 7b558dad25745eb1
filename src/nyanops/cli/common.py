"""What every command shares: exit statuses, the user-error type, making user text printable, and printing
what StartPipeline did.

``printable(text)`` (from ``nyanops.terminal``) is the one function every command uses on user-controlled
text before it reaches the terminal: manifest comments and keys, class and file names, job output, error
messages. It shows control characters, escape sequences and bidirectional overrides as visible escapes.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from nyanops.backends.local import failure_of, follow, spawn_worker, wait_for
from nyanops.core import layout
from nyanops.core.start_pipeline import Outcome, UploadResult
from nyanops.errors import EXIT_BAD_INPUT, EXIT_INTERRUPTED, EXIT_OK, EXIT_RUN_FAILED, CliError
from nyanops.terminal import printable

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_RUN_FAILED",
    "CliError",
    "add_command",
    "confirm",
    "duration",
    "failure_of",
    "follow",
    "printable",
    "report_upload",
    "spawn_worker",
    "wait_for",
]


def report_upload(results: list[UploadResult]) -> list[str]:
    """Print what StartPipeline did; return the names of executions started (or already started)."""
    names = []
    for r in results:
        key = printable(r.key)
        if r.outcome is Outcome.STARTED:
            print(f"started execution {r.execution_name}")
            names.append(r.execution_name)
        elif r.outcome is Outcome.DUPLICATE:
            print(f"already started for this upload: execution {r.execution_name} (duplicate event ignored)")
            names.append(r.execution_name)
        elif r.outcome is Outcome.REJECTED:
            print(f"refused {key}:", file=sys.stderr)
            for p in r.problems:
                print(
                    f"  - {printable(p.field)}: {printable(p.problem)}\n    fix: {printable(p.fix)}", file=sys.stderr
                )
            rejection = printable(layout.rejection_key(r.key))
            print(f"  (details in {rejection}; the upload itself is untouched)", file=sys.stderr)
        else:
            print(f"nothing to do for {key}: {printable(r.reason)}")
    return [n for n in names if n is not None]


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
