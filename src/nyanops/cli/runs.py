"""Starting runs locally: ``nyanops run MANIFEST`` and ``nyanops watch``."""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import time
from pathlib import Path

from nyanops.backends.local import LocalBackend
from nyanops.cli.code import push_code
from nyanops.cli.common import EXIT_BAD_INPUT, EXIT_OK, CliError, add_command, follow, report_upload
from nyanops.core import layout
from nyanops.core.start_pipeline import Outcome
from nyanops.local.runner import LocalPipeline


def spawn_worker(root: str) -> None:
    log = Path(root) / "worker.log"
    with open(log, "a") as fh:
        subprocess.Popen(
            [sys.executable, "-m", "nyanops.local.worker", "--root", root],
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    print(f"running in the background (log: {log}); follow with `nyanops executions` / `nyanops execution NAME`")


def put_manifest(pipeline: LocalPipeline, path: Path) -> str:
    """Copy a manifest file under manifests/ without overwriting a different one of the same name."""
    try:
        body = path.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read manifest {path}: {exc.strerror}") from None
    stem = path.name[: -len(".json")] if path.name.endswith(".json") else path.name
    key = layout.manifest_key(stem)
    existing = pipeline.store.head(key)
    if existing is not None and pipeline.store.get(key) != body:
        key = layout.manifest_key(f"{stem}-{hashlib.sha256(body).hexdigest()[:8]}")
    pipeline.store.put(key, body)  # identical content again = a new upload (a new version on S3)
    return key


def cmd_run(args: argparse.Namespace) -> int:
    backend = LocalBackend(args.root, verbose=args.verbose)
    pipeline = backend.pipeline
    push_code(backend)
    key = put_manifest(pipeline, Path(args.manifest))
    print(f"uploaded {key}")
    results = pipeline.fire(key)
    names = report_upload(results)
    if any(r.outcome is Outcome.REJECTED for r in results):
        return EXIT_BAD_INPUT
    if args.wait:
        return follow(pipeline, names)
    if names:
        spawn_worker(args.root)
    return EXIT_OK


def cmd_watch(args: argparse.Namespace) -> int:
    backend = LocalBackend(args.root, verbose=args.verbose)
    pipeline = backend.pipeline
    push_code(backend)
    print(f"watching {pipeline.store.directory} for manifests/*.json and datasets/<id>/_dataset.json (Ctrl-C stops)")
    while True:
        for prefix in (layout.MANIFESTS_PREFIX, layout.DATASETS_PREFIX):
            for obj in pipeline.store.list(prefix):
                if layout.classify_key(obj.key).kind is layout.KeyKind.IGNORED:
                    continue
                # Each upload once, also across restarts; the deterministic execution name would make a
                # repeat a no-op anyway, but a refused upload would be refused (and notified) again.
                if obj.version_id is None or pipeline.executions.seen(obj.key, obj.version_id):
                    continue
                report_upload(pipeline.fire(obj.key))
        pipeline.run_pending()
        if args.once:
            return EXIT_OK
        time.sleep(args.interval)


def register(sub: argparse._SubParsersAction) -> None:
    sp = add_command(sub, "run", cmd_run, "start a run exactly as dropping MANIFEST into manifests/ would")
    sp.add_argument("manifest", help="manifest JSON file (see docs/manifest.md)")
    sp.add_argument("--wait", action="store_true", help="follow the run to its end; exit status 0 only if it succeeded")
    sp.add_argument("-v", "--verbose", action="store_true", help="show every line the jobs print")

    sp = add_command(
        sub, "watch", cmd_watch, "watch the local bucket and start runs for new manifests and completed datasets"
    )
    sp.add_argument("--interval", type=float, default=2.0, help="seconds between scans (default 2)")
    sp.add_argument("--once", action="store_true", help="scan once, run what was found, and exit")
    sp.add_argument("-v", "--verbose", action="store_true", help="show every line the jobs print")
