"""``nyanops dataset add``: copy a folder in as a new immutable dataset."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from nyanops.backends.local import LocalBackend
from nyanops.cli.code import push_code
from nyanops.cli.common import EXIT_BAD_INPUT, EXIT_OK, follow, report_upload
from nyanops.cli.runs import spawn_worker
from nyanops.core import layout
from nyanops.core.rejection import UploadRejected
from nyanops.local.datasets import add_dataset


def cmd_dataset_add(args: argparse.Namespace) -> int:
    backend = LocalBackend(args.root, verbose=args.verbose)
    pipeline = backend.pipeline
    push_code(backend)
    try:
        dataset_id, marker = add_dataset(pipeline.store, Path(args.dir), args.name, start_run=not args.no_run)
    except UploadRejected as rejected:
        print(f"refused {args.dir}:", file=sys.stderr)
        for p in rejected.problems:
            print(f"  - {p.field}: {p.problem}\n    fix: {p.fix}", file=sys.stderr)
        print("  nothing was copied", file=sys.stderr)
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


def print_added(dataset_id: str, marker: dict[str, Any]) -> None:
    counts = ", ".join(f"{s} {sum(c.values())}" for s, c in marker["counts"].items())
    print(f"added datasets/{dataset_id}: classes {', '.join(marker['classes'])}; {counts} images")
    if marker.get("not_copied"):
        print(f"  not part of the dataset (beside train/, val/, test/): {', '.join(marker['not_copied'])}")


def register(sub: argparse._SubParsersAction) -> None:
    ds = sub.add_parser("dataset", help="add a folder as a new immutable dataset (dataset add DIR)").add_subparsers(
        dest="dataset_command", required=True, metavar="SUBCOMMAND"
    )
    sp = ds.add_parser("add", help="copy a folder in as a new immutable dataset (writes _dataset.json last)")
    sp.set_defaults(func=cmd_dataset_add)
    sp.add_argument("dir", help="folder with train/, val/, test/ each holding <class>/<image> files")
    sp.add_argument("--name", help="dataset id (default: a UTC timestamp such as 2026-11-28T064300Z)")
    sp.add_argument("--wait", action="store_true", help="run the started pipeline here and wait for it")
    sp.add_argument("--no-run", action="store_true", help="add the dataset without notifying the pipeline")
    sp.add_argument("-v", "--verbose", action="store_true", help="show every line the jobs print")
