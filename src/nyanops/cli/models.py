"""``nyanops models [EXPERIMENT]``: the model registry, locally or on a deployed stack (``--bucket``): every
version of each experiment's package group, newest first, with its approval status, trial, primary metric,
dataset and creation time. A version is registered when a trial takes an experiment's best flag; the one
Approved is the model a deployment takes (docs/aws.md, "The approved model")."""

from __future__ import annotations

import argparse
import json
from datetime import timezone
from typing import Any

from nyanops.backends import add_aws_arguments, open_backend
from nyanops.cli.common import EXIT_OK, CliError, add_command, printable
from nyanops.core import naming
from nyanops.core.model_registry import ModelPackage

HEADER = ("experiment", "version", "status", "trial", "metric", "dataset", "created")


def package_dict(p: ModelPackage) -> dict[str, Any]:
    return {
        "experiment": p.experiment,
        "version": p.version,
        "status": p.status,
        "trial": p.trial,
        "metric": p.metric,
        "value": p.value,
        "dataset_id": p.dataset_id,
        "created_at": p.created_at.isoformat() if p.created_at else None,
        "model_location": p.model_location or p.metadata.get("model_uri", ""),
        "arn": p.arn,
        "description": p.description,
    }


def _row(p: ModelPackage) -> list[str]:
    metric = f"{p.metric} {p.value:.4f}" if p.metric and p.value is not None else (p.metric or "-")
    created = p.created_at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S") if p.created_at else "-"
    return [p.experiment, str(p.version), p.status, p.trial or "-", metric, p.dataset_id or "-", created]


def cmd_models(args: argparse.Namespace) -> int:
    if args.experiment is not None and not naming.is_valid_experiment_name(args.experiment):
        raise CliError(
            f"EXPERIMENT: {printable(args.experiment)!r} is not an experiment name (letters, digits and single "
            "hyphens, at most 120 characters); fix: give a name `nyanops experiments` lists, or none for all"
        )
    backend = open_backend(args)
    registry = backend.model_registry
    names = [args.experiment] if args.experiment else registry.experiments()
    packages = [p for name in names for p in sorted(registry.packages(name), key=lambda p: -p.version)]
    if args.json:
        print(json.dumps([package_dict(p) for p in packages], indent=2))
        return EXIT_OK
    if not packages:
        where = f"experiment {printable(args.experiment)}" if args.experiment else backend.where()
        print(f"no model packages yet in {where}: a trial's model is registered when it takes the best flag")
        return EXIT_OK
    table = [[printable(v) for v in _row(p)] for p in packages]
    widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(HEADER)]
    print("  ".join(h.ljust(w) for h, w in zip(HEADER, widths, strict=True)).rstrip())
    for row in table:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    sp = add_command(
        sub,
        "models",
        cmd_models,
        "the model registry: each experiment's best models, newest first; the Approved one is what a deployment "
        "takes",
    )
    sp.add_argument("experiment", nargs="?", metavar="EXPERIMENT", help="experiment (default: all)")
    sp.add_argument("--json", action="store_true", help="machine-readable output (with model locations and ARNs)")
    add_aws_arguments(sp, state_machine=False)
