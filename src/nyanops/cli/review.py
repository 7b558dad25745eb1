"""Reviewing results: ``nyanops experiments``, ``nyanops report`` and ``nyanops cleanup``, locally or on a
deployed stack (``--bucket``)."""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from nyanops import compare, report
from nyanops.backends import Backend, add_aws_arguments, open_backend
from nyanops.cli.common import EXIT_OK, CliError, add_command, confirm, printable
from nyanops.terminal import terminal_width


def print_table(
    backend: Backend, experiment: str | None, sort: str | None, as_json: bool, wide: bool = False
) -> None:
    records = backend.experiments.list_trials(experiment)
    if not records and not as_json:
        print(f"no trials yet{f' in experiment {printable(experiment)}' if experiment else ''}")
        return
    width = None if wide or as_json else terminal_width()
    try:
        print(compare.format_experiments(records, sort, as_json, width=width, links=backend.console_links))
    except ValueError as exc:
        raise CliError(str(exc)) from None


def cmd_experiments(args: argparse.Namespace) -> int:
    print_table(open_backend(args), args.name, args.sort, args.json, args.wide)
    return EXIT_OK


def write_report(backend: Backend, experiment: str | None, output: Path) -> Path:
    """Write the HTML report atomically (a full disk leaves no half-written file); refuse to overwrite a file
    that is not a report (a database, a photo, a manifest)."""
    html = report.build_report(
        backend.report_data(experiment), primary_metric=backend.primary_metric, source=backend.where()
    )
    output = output.expanduser()
    if output.is_dir():
        raise CliError(f"{output} is a directory: give a file name for the report (e.g. {output / 'report.html'})")
    if output.exists() and not _is_report(output):
        raise CliError(
            f"refusing to overwrite {output}: it is not a report nyanops wrote; choose another file name "
            "(or delete it first if you mean it)"
        )
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(html)
        os.replace(tmp, output)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return output.resolve()


def _is_report(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(2048)
    except OSError:
        return False
    # Reports written before the generator tag carry the default title.
    marker = f'name="generator" content="{report.GENERATOR}"'.encode()
    return marker in head or b"<title>nyanops: experiment report" in head


def cmd_report(args: argparse.Namespace) -> int:
    backend = open_backend(args)
    output = backend.report_output(args.output)
    print(write_report(backend, args.name, output))
    return EXIT_OK


def cmd_cleanup(args: argparse.Namespace) -> int:
    if args.name is not None and not args.name.strip():
        raise CliError(
            "the experiment name is empty: name the experiment to delete (`nyanops experiments` lists them); "
            "leave NAME out for the default experiment"
        )
    backend = open_backend(args)
    plan = backend.plan_cleanup(args.name, args.runs)
    print(plan.description)
    if not confirm("delete?", args.yes):
        print("nothing deleted")
        return EXIT_OK
    print(plan.run())
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    sp = add_command(sub, "experiments", cmd_experiments, "compare trials, best flagged")
    sp.add_argument("name", nargs="?", help="experiment (default: all)")
    sp.add_argument("--json", action="store_true", help="machine-readable output (full values; console URLs on AWS)")
    sp.add_argument(
        "--wide",
        action="store_true",
        help="show every value in full even on a narrow terminal (a pipe always gets full values)",
    )
    sp.add_argument("--sort", help="column to sort by, descending (prefix + for ascending), e.g. f1, +when, epochs")
    add_aws_arguments(sp)

    sp = add_command(
        sub,
        "report",
        cmd_report,
        "write one self-contained HTML report: table, confusion matrices, curves, photos, execution graphs and "
        "timelines",
    )
    sp.add_argument("name", nargs="?", help="experiment (default: all)")
    sp.add_argument(
        "-o",
        "--output",
        help="HTML file to write (default: <root>/report.html; with --bucket ./nyanops-report.html); never "
        "overwrites a file that is not a report, nor the local root's own files",
    )
    add_aws_arguments(sp)

    sp = add_command(
        sub, "cleanup", cmd_cleanup, "delete an experiment's trial records (asks first; shows what will go)"
    )
    sp.add_argument("name", nargs="?", help="experiment (default: the default experiment; required with --bucket)")
    sp.add_argument("--yes", action="store_true", help="do not ask (required when there is no terminal)")
    sp.add_argument("--runs", action="store_true", help="local: also delete bucket/runs/<execution>/")
    add_aws_arguments(sp)
