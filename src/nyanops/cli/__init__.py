"""nyanops: the cat-classifier training pipeline on one machine, and the same commands for a deployed stack.

Local commands keep everything under --root (env NYANOPS_ROOT, default ./.nyanops): bucket/ mirrors
the S3 keys, nyanops.db holds trials and execution history, jobs/ the job working directories and logs.
Commands that take --bucket (env NYANOPS_BUCKET) act on a deployed stack instead, with the standard AWS
environment (profile, region, AWS_ENDPOINT_URL).
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from typing import Any

from nyanops.cli import code, datasets, demo, history, review, runs
from nyanops.cli.common import EXIT_BAD_INPUT, EXIT_INTERRUPTED, EXIT_OK, CliError
from nyanops.local.asl import DefinitionError
from nyanops.local.capacity import InvalidSetting
from nyanops.local.project import ProjectNotFound
from nyanops.local.runner import default_root

COMMAND_GROUPS = (demo, datasets, runs, history, review, code)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="nyanops", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--root", default=str(default_root()), help="local pipeline root (env NYANOPS_ROOT; default ./.nyanops)"
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.register(sub)
    return p


def _on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return int(args.func(args))
    except CliError as exc:
        print(f"nyanops: {exc}", file=sys.stderr)
        return exc.code
    except (ProjectNotFound, DefinitionError, InvalidSetting) as exc:
        print(f"nyanops: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return EXIT_OK
    except KeyboardInterrupt:
        print(
            "\nnyanops: interrupted; the execution is marked INTERRUPTED and a new run can start at once",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
