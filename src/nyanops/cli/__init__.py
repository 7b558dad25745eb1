"""nyanops: the cat-classifier training pipeline on one machine, and the same commands for a deployed stack.

Local commands keep everything under --root (env NYANOPS_ROOT, default ./.nyanops; given before or after
the command): bucket/ mirrors the S3 keys, nyanops.db holds trials, the model registry and execution history,
jobs/ the job working directories and logs. Commands that take --bucket (env NYANOPS_BUCKET) act on a deployed
stack instead, with the standard AWS environment (profile, region, AWS_ENDPOINT_URL).
"""

from __future__ import annotations

import argparse
import signal
import sqlite3
import sys
from collections.abc import Sequence
from typing import Any

from nyanops.cli import code, datasets, demo, history, invoke, models, predict, rerun, review, runs
from nyanops.cli.common import EXIT_BAD_INPUT, EXIT_INTERRUPTED, EXIT_OK, CliError, printable
from nyanops.local.asl import DefinitionError
from nyanops.local.capacity import InvalidSetting
from nyanops.local.project import ProjectNotFound
from nyanops.local.runner import default_root
from nyanops.local.storage_errors import storage_error

COMMAND_GROUPS = (demo, datasets, runs, rerun, history, review, predict, models, invoke, code)
ROOT_HELP = "local pipeline root (env NYANOPS_ROOT; default ./.nyanops)"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="nyanops", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--root", default=str(default_root()), help=ROOT_HELP)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.register(sub)
    add_root_everywhere(p)
    return p


def subcommand_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """Every parser below ``parser`` (commands, and the subcommands of command groups), each once."""
    found: list[argparse.ArgumentParser] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                found.append(child)
                found += subcommand_parsers(child)
    return found


def add_root_everywhere(parser: argparse.ArgumentParser) -> None:
    """``--root`` after the command too (``nyanops experiments --root DIR``), for every command a group adds,
    and each command's one-line help as its description where it has none (``nyanops code push --help``).
    The default of ``--root`` is left out there, so a ``--root`` given before the command still counts."""
    for p in [parser, *subcommand_parsers(parser)]:
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                helps = {c.dest: c.help for c in action._choices_actions}
                for name, child in action.choices.items():
                    if not child.description and helps.get(name):
                        child.description = helps[name]
    for child in subcommand_parsers(parser):
        if not any("--root" in a.option_strings for a in child._actions):
            child.add_argument("--root", default=argparse.SUPPRESS, help=ROOT_HELP)


def _on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> int:
    print(f"nyanops: {printable(message, keep_newlines=True)}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, _on_sigterm)
    on_aws = bool(getattr(args, "bucket", None))
    try:
        return int(args.func(args))
    except CliError as exc:
        return _fail(str(exc), exc.code)
    except (ProjectNotFound, DefinitionError, InvalidSetting) as exc:
        return _fail(str(exc))
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return EXIT_OK
    except KeyboardInterrupt:
        if on_aws:
            print("\nnyanops: interrupted; anything already started keeps running on AWS", file=sys.stderr)
        else:
            print(
                "\nnyanops: interrupted; the execution is marked INTERRUPTED and a new run can start at once",
                file=sys.stderr,
            )
        return EXIT_INTERRUPTED
    except (OSError, sqlite3.Error) as exc:
        described = storage_error(exc, None if on_aws else getattr(args, "root", None))
        if described is None:
            raise
        return _fail(str(described), described.code)
    except Exception as exc:
        described = aws_error(exc) if on_aws else None
        if described is None:
            raise
        return _fail(described)


def aws_error(exc: Exception) -> str | None:
    """An AWS error the user can act on, in one line (credentials, access, an unreachable endpoint)."""
    try:
        from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError, NoRegionError
    except ImportError:
        return None
    if isinstance(exc, NoCredentialsError):
        return "no AWS credentials: configure a profile (aws configure) and pass --profile, or set AWS_PROFILE"
    if isinstance(exc, NoRegionError):
        return "no AWS region: pass --region, or set AWS_REGION or a region in your profile"
    if isinstance(exc, EndpointConnectionError):
        return f"cannot reach AWS ({exc}): check the network, the region, or AWS_ENDPOINT_URL"
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        operation = getattr(exc, "operation_name", "a call")
        return (
            f"AWS refused {operation}: {err.get('Code', '?')}: {err.get('Message', '')} "
            "(check the bucket, region and your permissions)"
        )
    return None
