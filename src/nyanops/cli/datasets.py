"""``nyanops dataset add``: a folder in as a new immutable dataset (local root, or a stack's bucket with
``--bucket``); ``nyanops datasets``: every dataset prefix with its state (sealed / waiting / uploading /
refused)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from nyanops.backends import BUCKET_ENV, add_aws_arguments, open_backend
from nyanops.backends.local import LocalBackend
from nyanops.cli.code import push_code
from nyanops.cli.common import EXIT_BAD_INPUT, EXIT_OK, EXIT_RUN_FAILED, CliError, add_command, follow, report_upload
from nyanops.cli.runs import spawn_worker
from nyanops.core import layout
from nyanops.core.dataset_status import list_statuses
from nyanops.core.rejection import UploadRejected
from nyanops.dataset_upload import DEFAULT_JOBS, UploadFailed, upload_dataset
from nyanops.local.dataset_registry import SQLiteDatasetRegistry
from nyanops.local.dataset_watch import DEFAULT_QUIET_SECONDS, QUIET_ENV, local_quiet_seconds
from nyanops.local.datasets import add_dataset
from nyanops.terminal import printable

# What `datasets --bucket` says the quiet period is (the stack's DatasetQuietSeconds; its default here).
AWS_QUIET_ENV = "NYANOPS_DATASET_QUIET_SECONDS"
AWS_DEFAULT_QUIET = 120.0


def cmd_dataset_add(args: argparse.Namespace) -> int:
    if args.bucket:
        return _add_to_bucket(args)
    backend = LocalBackend(args.root, verbose=args.verbose)
    pipeline = backend.pipeline
    push_code(backend)
    try:
        dataset_id, marker = add_dataset(pipeline.store, Path(args.dir), args.name, start_run=not args.no_run)
    except UploadRejected as rejected:
        print_refusal(args.dir, rejected, "nothing was copied")
        return EXIT_BAD_INPUT
    print_added(dataset_id, marker)
    if args.no_run:
        # The seal says "start_run": false, so StartPipeline starts nothing for it, also when `watch` sees it first.
        print(f'no run started (--no-run); name it in a manifest: "dataset": "datasets/{dataset_id}"')
        return EXIT_OK
    names = report_upload(pipeline.fire(layout.dataset_marker_key(dataset_id)))
    if args.wait:
        return follow(pipeline, names)
    if names:
        spawn_worker(args.root)
    return EXIT_OK


def _add_to_bucket(args: argparse.Namespace) -> int:
    if args.wait:
        raise CliError("--wait follows a local run; with --bucket the seal starts the run on AWS: follow it with "
                       "`nyanops executions --bucket` or the Step Functions console")
    backend = open_backend(args)
    dataset_id = args.name or new_dataset_id_for(backend.store)
    print(f"uploading {args.dir} to {backend.where()}/datasets/{dataset_id}/ ({args.jobs} at a time; interrupted, "
          "the same command resumes)")
    try:
        result = upload_dataset(backend.store, Path(args.dir), dataset_id, start_run=not args.no_run, jobs=args.jobs)
    except UploadRejected as rejected:
        print_refusal(args.dir, rejected, "nothing was sealed")
        return EXIT_BAD_INPUT
    except UploadFailed as failed:
        print(f"nyanops: upload interrupted: {printable(failed)}\n  nothing was sealed; run the same command again "
              "to resume", file=sys.stderr)
        return EXIT_RUN_FAILED
    if result.identical:
        print(f"datasets/{dataset_id} is already sealed with exactly these files; nothing to do")
        return EXIT_OK
    if result.skipped:
        print(f"resumed: {result.skipped} file(s) were already uploaded by an interrupted run")
    print_added(dataset_id, result.marker)
    if args.no_run:
        print(f'sealed with no run (--no-run); name it in a manifest: "dataset": "datasets/{dataset_id}"')
    else:
        print("sealed: its arrival starts a run with the default manifest (follow it with "
              "`nyanops executions --bucket`)")
    return EXIT_OK


def new_dataset_id_for(store: Any) -> str:
    """A UTC timestamp id not taken in ``store`` (the local rule, over a listing)."""
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H%M%SZ")
    candidate, n = stamp, 1
    while next(iter(store.list(layout.dataset_prefix(candidate))), None) is not None:
        n += 1
        candidate = f"{stamp}-{n}"
    return candidate


def print_refusal(what: str, rejected: UploadRejected, consequence: str) -> None:
    print(f"refused {printable(what)}:", file=sys.stderr)
    for p in rejected.problems:
        print(f"  - {printable(p.field)}: {printable(p.problem)}\n    fix: {printable(p.fix)}", file=sys.stderr)
    print(f"  {consequence}", file=sys.stderr)


def print_added(dataset_id: str, marker: dict[str, Any]) -> None:
    counts = ", ".join(f"{s} {sum(c.values())}" for s, c in marker["counts"].items())
    print(f"added datasets/{dataset_id}: classes {printable(', '.join(marker['classes']))}; {counts} images")
    if marker.get("not_copied"):
        print(f"  not part of the dataset (beside train/, val/, test/, or hidden): "
              f"{printable(', '.join(marker['not_copied']))}")


def cmd_datasets(args: argparse.Namespace) -> int:
    backend = open_backend(args)
    now = datetime.now(timezone.utc)
    if backend.kind == "local":
        assert isinstance(backend, LocalBackend)
        quiet = local_quiet_seconds()
        records = SQLiteDatasetRegistry(backend.pipeline.db).all()
    else:
        quiet, records = float(os.environ.get(AWS_QUIET_ENV) or AWS_DEFAULT_QUIET), []
    statuses = list_statuses(backend.store, now, quiet, records)
    if args.json:
        print(json.dumps([s.as_dict() for s in statuses], indent=2, ensure_ascii=False))
        return EXIT_OK
    if not statuses:
        print(f"no datasets in {backend.where()}")
        return EXIT_OK
    width = max(len(printable(s.dataset_id)) for s in statuses)
    for s in statuses:
        print(f"{printable(s.dataset_id):<{width}}  {s.state:<9}  {printable(s.detail)}")
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    ds = sub.add_parser(
        "dataset", help="add a folder as a new immutable dataset (dataset add DIR [--bucket B])"
    ).add_subparsers(dest="dataset_command", required=True, metavar="SUBCOMMAND")
    sp = ds.add_parser(
        "add",
        help="copy a folder in as a new immutable dataset, all or nothing (its seal, _dataset.json, is written last)",
        description="Copy a folder in as a new immutable dataset. Every name and image is checked first; the seal "
        "(_dataset.json) is written last and starts a run. Locally the copy is published with one rename (all or "
        "nothing); with --bucket the upload is parallel, resumable (run the same command again) and never sealed "
        "half-way.",
    )
    sp.set_defaults(func=cmd_dataset_add)
    sp.add_argument("dir", help="folder with train/, val/, test/ each holding <class>/<image> files")
    sp.add_argument("--name", help="dataset id (default: a UTC timestamp such as 2026-11-28T064300Z)")
    sp.add_argument("--wait", action="store_true", help="run the started pipeline here and wait for it (local only)")
    sp.add_argument("--no-run", action="store_true",
                    help='seal the dataset with "start_run": false: no run starts, here or on AWS')
    sp.add_argument("--jobs", type=int, default=DEFAULT_JOBS, metavar="N",
                    help=f"files uploaded at a time with --bucket (default {DEFAULT_JOBS})")
    sp.add_argument("-v", "--verbose", action="store_true", help="show every line the jobs print")
    add_aws_arguments(sp)

    sp = add_command(sub, "datasets", cmd_datasets,
                     "list datasets with their state: sealed, waiting (for the upload to settle), uploading, refused")
    sp.add_argument("--json", action="store_true", help="print JSON instead of the table")
    add_aws_arguments(sp)
    sp.epilog = (f"With --bucket (env {BUCKET_ENV}) the quiet period shown is {AWS_QUIET_ENV} (default "
                 f"{AWS_DEFAULT_QUIET:g} s, the stack's DatasetQuietSeconds); locally {QUIET_ENV} (default "
                 f"{DEFAULT_QUIET_SECONDS:g} s).")
