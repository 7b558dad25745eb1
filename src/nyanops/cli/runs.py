"""Starting runs: ``nyanops run MANIFEST`` (locally or on a deployed stack) and ``nyanops watch`` (local)."""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import time
from pathlib import Path

from nyanops.backends import Backend, add_aws_arguments, open_backend
from nyanops.backends.local import LocalBackend, spawn_worker
from nyanops.cli.code import push_code
from nyanops.cli.common import EXIT_BAD_INPUT, EXIT_OK, CliError, add_command, printable, report_upload
from nyanops.core import layout
from nyanops.core.ports import ObjectStore
from nyanops.core.sealing import LEFT_TO_TOOL, REFUSED_NOW, SEALED_NOW
from nyanops.core.start_pipeline import Outcome
from nyanops.core.upload_events import Upload
from nyanops.local.dataset_watch import DEFAULT_QUIET_SECONDS, QUIET_ENV, DatasetWatcher, local_quiet_seconds
from nyanops.local.datasets import remove_stale_staging
from nyanops.local.runner import ConsoleNotifier, LocalPipeline

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
    for path in remove_stale_staging(pipeline.store):
        print(f"removed {printable(path.name)}: the staging folder of a `dataset add` that was killed")
    watcher = DatasetWatcher(pipeline.store, pipeline.db, ConsoleNotifier(pipeline.progress), args.quiet)
    what = f"manifests/*.json, dataset uploads (sealed after {args.quiet:g} s without new files) and seals"
    if args.once:
        print(f"scanning {pipeline.store.directory} once for {what}")
    else:
        print(f"watching {pipeline.store.directory} for {what} (Ctrl-C stops)")
    said: set[str] = set()
    worker: subprocess.Popen[bytes] | None = None
    while True:
        fire_new_uploads(pipeline, said)
        watch_datasets(pipeline, watcher, said)
        for path, reason in sorted(pipeline.store.odd.items()):
            _say_once(said, f"odd:{path}", f"skipped bucket/{printable(path)}: {reason}; remove it")
        if args.once:
            pipeline.run_pending()
            return EXIT_OK
        worker = keep_worker(args.root, pipeline, worker)
        time.sleep(args.interval)


def fire_new_uploads(pipeline: LocalPipeline, said: set[str]) -> None:
    """Hand each new manifest and seal (key + version) to StartPipeline once, also across restarts. An entry
    that cannot be handled (a name that is not UTF-8, a key whose refusal record cannot be written, any
    handler error) is skipped with one message; nothing in the bucket can stop the watch."""
    for prefix in (layout.MANIFESTS_PREFIX, layout.DATASETS_PREFIX):
        for obj in pipeline.store.list(prefix):
            if layout.classify_key(obj.key).kind is layout.KeyKind.IGNORED:
                continue
            if not _utf8(obj.key):
                _say_once(said, f"key:{printable(obj.key)}", f"skipped bucket/{printable(obj.key)}: the name is not "
                          "UTF-8 (S3 keys are UTF-8); rename it")
                continue
            # Each upload once; the deterministic execution name would make a repeat a no-op anyway, but a
            # refused upload would be refused (and notified) again.
            if obj.version_id is None or pipeline.executions.seen(obj.key, obj.version_id):
                continue
            try:
                report_upload(pipeline.fire(obj.key))
            except Exception as exc:  # anything the handler raises for one upload: say so, go on
                pipeline.executions.mark_seen(obj.key, obj.version_id, "error")
                _say_once(said, f"key:{obj.key}", f"skipped bucket/{printable(obj.key)}: it could not be handled "
                          f"({type(exc).__name__}: {printable(exc)}); fix or remove it")


def watch_datasets(pipeline: LocalPipeline, watcher: DatasetWatcher, said: set[str]) -> None:
    """Note dataset uploads, seal what has settled, and start the run of each new seal now."""
    try:
        result = watcher.scan()
    except Exception as exc:  # a fault of the local side (disk, database): say so once, try again next scan
        _say_once(said, f"datasets:{type(exc).__name__}", f"nyanops: the dataset scan failed ({type(exc).__name__}: "
                  f"{printable(exc)}); retrying every scan")
        return
    for name in result.skipped:
        _say_once(said, f"dataset:{printable(name)}", f"skipped bucket/{printable(name)}/: the folder name is not "
                  "UTF-8 and can never be a dataset id; rename it")
    for noted in result.noted:
        if noted.state == "waiting":
            print(f"datasets/{printable(noted.dataset_id)}: {noted.noted} new or changed file(s); it is sealed "
                  f"once nothing new arrives for {watcher.deps.quiet_seconds:g} s")
        for key in noted.late_refused:
            print(f"refused {printable(key)}: datasets/{printable(noted.dataset_id)} is sealed (details in "
                  f"{printable(layout.rejection_key(key))})", file=sys.stderr)
    for sealed in result.sealed:
        name = f"datasets/{printable(sealed.dataset_id)}"
        if sealed.outcome == SEALED_NOW and sealed.marker is not None:
            print(f"sealed {name}: {describe_seal(sealed.marker)}")
            marker_key = layout.dataset_marker_key(sealed.dataset_id)
            info = pipeline.store.head(marker_key)
            if info is not None and info.version_id is not None and not pipeline.executions.seen(marker_key,
                                                                                                   info.version_id):
                report_upload(pipeline.fire(marker_key))
        elif sealed.outcome == REFUSED_NOW:
            print(f"not sealed {name}: it cannot be used as it is (details in "
                  f"{printable(layout.rejection_key(layout.dataset_marker_key(sealed.dataset_id)))}); it is checked "
                  "again after the next upload", file=sys.stderr)
        elif sealed.outcome == LEFT_TO_TOOL:
            _say_once(said, f"claim:{sealed.dataset_id}", f"not sealed {name}: {printable(sealed.detail)}")


def describe_seal(marker: dict) -> str:
    counts = ", ".join(f"{s} {sum(c.values())}" for s, c in marker["counts"].items())
    return f"{len(marker['classes'])} classes ({printable(', '.join(marker['classes']))}); {counts} images"


def keep_worker(root: str, pipeline: LocalPipeline, worker: subprocess.Popen[bytes] | None
                ) -> subprocess.Popen[bytes] | None:
    """Runs execute in a child worker, one at a time, so the watch keeps noticing uploads during a run."""
    if worker is not None and worker.poll() is None:
        return worker
    if not pipeline.executions.pending():
        return None
    return subprocess.Popen([sys.executable, "-m", "nyanops.local.worker", "--root", root], stdin=subprocess.DEVNULL)


def _say_once(said: set[str], key: str, message: str) -> None:
    if key not in said:
        said.add(key)
        print(message, file=sys.stderr)


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


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
        sub,
        "watch",
        cmd_watch,
        "watch the local bucket: start runs for new manifests and seals, seal dataset uploads once they settle",
    )
    sp.add_argument("--interval", type=float, default=2.0, help="seconds between scans (default 2)")
    sp.add_argument(
        "--quiet",
        type=_positive_seconds,
        default=local_quiet_seconds(),
        metavar="SECONDS",
        help=f"seal a dataset upload once no file arrived for this long (env {QUIET_ENV}; "
        f"default {DEFAULT_QUIET_SECONDS:g})",
    )
    sp.add_argument("--once", action="store_true", help="scan once, run what was found, and exit")
    sp.add_argument("-v", "--verbose", action="store_true", help="show every line the jobs print")


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value <= 86400:
        raise argparse.ArgumentTypeError(f"must be between 0 and 86400 seconds, got {text}")
    return value
