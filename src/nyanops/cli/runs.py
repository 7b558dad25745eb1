"""Starting runs: ``nyanops run MANIFEST`` (locally or on a deployed stack) and ``nyanops watch`` (local)."""

from __future__ import annotations

import argparse
import hashlib
import time
from pathlib import Path

from nyanops.backends import Backend, add_aws_arguments, open_backend
from nyanops.backends.local import LocalBackend, spawn_worker
from nyanops.cli.code import push_code
from nyanops.cli.common import EXIT_BAD_INPUT, EXIT_OK, CliError, add_command, printable, report_upload
from nyanops.core import layout
from nyanops.core.ports import ObjectStore
from nyanops.core.start_pipeline import Outcome
from nyanops.core.upload_events import Upload

__all__ = ["cmd_run", "cmd_watch", "manifest_key_for", "put_manifest", "register", "spawn_worker"]


def manifest_key_for(store: ObjectStore, path: Path, body: bytes) -> str:
    """``manifests/<file name>``, or with a content suffix when a different manifest has that name already:
    an upload never overwrites someone else's manifest (identical content again is a new upload of it)."""
    stem = path.name[: -len(".json")] if path.name.endswith(".json") else path.name
    key = layout.manifest_key(stem)
    if store.head(key) is not None and store.get(key) != body:
        key = layout.manifest_key(f"{stem}-{hashlib.sha256(body).hexdigest()[:8]}")
    return key


def read_manifest(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read manifest {printable(path)}: {exc.strerror}") from None


def upload_manifest(backend: Backend, path: Path) -> Upload:
    body = read_manifest(path)
    return backend.upload(manifest_key_for(backend.store, path, body), body)


def put_manifest(backend: LocalBackend, path: Path) -> str:
    """Copy a manifest file under manifests/ of the local root; its key."""
    return upload_manifest(backend, path).key


def cmd_run(args: argparse.Namespace) -> int:
    backend = open_backend(args, verbose=args.verbose)
    push_code(backend)
    upload = upload_manifest(backend, Path(args.manifest))
    print(f"uploaded {printable(upload.key)} to {backend.where()}")
    results = backend.start_pipeline(upload)
    names = report_upload(results)
    if any(r.outcome is Outcome.REJECTED for r in results):
        return EXIT_BAD_INPUT
    if args.wait:
        return backend.follow(names)
    backend.follow_later(names)
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
    sp = add_command(
        sub,
        "run",
        cmd_run,
        "start a run exactly as dropping MANIFEST into manifests/ would (exit status: 0 started or succeeded, "
        "1 the run failed, 2 refused)",
    )
    sp.add_argument("manifest", help="manifest JSON file (see docs/manifest.md)")
    sp.add_argument("--wait", action="store_true", help="follow the run to its end; exit status 0 only if it succeeded")
    sp.add_argument("-v", "--verbose", action="store_true", help="local: show every line the jobs print")
    add_aws_arguments(sp)

    sp = add_command(
        sub, "watch", cmd_watch, "watch the local bucket and start runs for new manifests and completed datasets"
    )
    sp.add_argument("--interval", type=float, default=2.0, help="seconds between scans (default 2)")
    sp.add_argument("--once", action="store_true", help="scan once, run what was found, and exit")
    sp.add_argument("-v", "--verbose", action="store_true", help="show every line the jobs print")
