"""nyanops: the cat-classifier training pipeline on one machine (and a few commands for a deployed stack).

Local commands keep everything under --root (env NYANOPS_ROOT, default ./.nyanops): bucket/ mirrors
the S3 keys, nyanops.db holds trials and execution history, jobs/ the job working directories and logs.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from nyanops import compare
from nyanops.code_bundle import build_bundle, push_bundle
from nyanops.core import layout
from nyanops.core.rejection import UploadRejected
from nyanops.core.start_pipeline import Outcome, UploadResult
from nyanops.local import executions as ex
from nyanops.local.asl import DefinitionError
from nyanops.local.datasets import add_dataset
from nyanops.local.progress import Progress
from nyanops.local.project import ML_CODE, ProjectNotFound
from nyanops.local.runner import LocalPipeline, default_root
from nyanops.sample_photos import SAMPLE_DATA_ENV, SamplePhotosUnavailable, find_or_fetch_sample_photos

EXIT_OK, EXIT_RUN_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


class CliError(Exception):
    """A problem the user can fix; printed without a traceback."""

    def __init__(self, message: str, code: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message)
        self.code = code


# -- helpers -------------------------------------------------------------------------------------------
def _pipeline(args: argparse.Namespace) -> LocalPipeline:
    pipeline = LocalPipeline(Path(args.root), Progress(verbose=getattr(args, "verbose", False)))
    for name in pipeline.reap_orphans():
        print(f"note: execution {name} was left running by a process that is gone; marked INTERRUPTED")
    return pipeline


def _push_code(pipeline: LocalPipeline) -> str:
    assert pipeline.project is not None
    bundle = build_bundle(pipeline.project / ML_CODE)
    if not push_bundle(pipeline.store, bundle):
        # Re-pushing identical code makes it the newest again, as `nyanops code push` does on S3.
        pipeline.store.touch(layout.code_bundle_key(bundle.hash))
    return bundle.hash


def _report_upload(results: list[UploadResult]) -> list[str]:
    """Print what StartPipeline did; return the names of executions started (or already started)."""
    names = []
    for r in results:
        if r.outcome is Outcome.STARTED:
            print(f"started execution {r.execution_name}")
            names.append(r.execution_name)
        elif r.outcome is Outcome.DUPLICATE:
            print(f"already started for this upload: execution {r.execution_name} (duplicate event ignored)")
            names.append(r.execution_name)
        elif r.outcome is Outcome.REJECTED:
            print(f"refused {r.key}:", file=sys.stderr)
            for p in r.problems:
                print(f"  - {p.field}: {p.problem}\n    fix: {p.fix}", file=sys.stderr)
            print(f"  (details in {layout.rejection_key(r.key)}; the upload itself is untouched)", file=sys.stderr)
        else:
            print(f"nothing to do for {r.key}: {r.reason}")
    return names


def _follow(pipeline: LocalPipeline, names: list[str]) -> int:
    """Run the named executions here and now; exit status says whether all succeeded."""
    code = EXIT_OK
    for name in names:
        row = pipeline.executions.get(name)
        if row and row.status == ex.PENDING:
            row = pipeline.execute(name)
        elif row and row.status == ex.RUNNING:
            row = _wait_for(pipeline, name)
        if row is None or row.status != ex.SUCCEEDED:
            code = EXIT_RUN_FAILED
            if row is not None:
                print(f"execution {name}: {row.status}: {_failure_of(pipeline, row)}", file=sys.stderr)
    return code


def _failure_of(pipeline: LocalPipeline, row: ex.ExecutionRow) -> str:
    """The recorded cause (the job's FailureReason) beats the state machine's generic PipelineFailed."""
    trial = next(
        (t for t in pipeline.experiments.list_trials(row.experiment) if t.trial == row.input.get("trial")), None
    )
    if trial is not None and trial.error:
        return trial.error
    return f"{row.error}: {row.cause}"


def _wait_for(pipeline: LocalPipeline, name: str) -> ex.ExecutionRow | None:
    while True:
        row = pipeline.executions.get(name)
        if row is None or row.status not in ex.ACTIVE:
            return row
        time.sleep(1)


def _spawn_worker(root: str) -> None:
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


def _print_table(pipeline: LocalPipeline, experiment: str | None, sort: str | None, as_json: bool) -> None:
    records = pipeline.experiments.list_trials(experiment)
    if not records and not as_json:
        print(f"no trials yet{f' in experiment {experiment}' if experiment else ''}")
        return
    print(compare.format_experiments(records, sort, as_json))


# -- commands ------------------------------------------------------------------------------------------
def cmd_code_push(args: argparse.Namespace) -> int:
    if args.bucket:
        import boto3

        from nyanops.core.aws_adapters import S3ObjectStore
        from nyanops.local.project import project_root

        session = boto3.Session(profile_name=args.profile, region_name=args.region)
        bundle = build_bundle(project_root() / ML_CODE)
        store = S3ObjectStore(session.client("s3"), args.bucket)
        new = push_bundle(store, bundle)
        if not new:
            key = layout.code_bundle_key(bundle.hash)
            session.client("s3").copy_object(
                Bucket=args.bucket, Key=key, CopySource={"Bucket": args.bucket, "Key": key}, MetadataDirective="REPLACE"
            )
        print(f"code/{bundle.hash} {'uploaded' if new else 'already there; marked newest'} in s3://{args.bucket}")
        return EXIT_OK
    pipeline = _pipeline(args)
    print(f"code/{_push_code(pipeline)}")
    return EXIT_OK


def cmd_dataset_add(args: argparse.Namespace) -> int:
    pipeline = _pipeline(args)
    _push_code(pipeline)
    try:
        dataset_id, marker = add_dataset(pipeline.store, Path(args.dir), args.name)
    except UploadRejected as rejected:
        print(f"refused {args.dir}:", file=sys.stderr)
        for p in rejected.problems:
            print(f"  - {p.field}: {p.problem}\n    fix: {p.fix}", file=sys.stderr)
        print("  nothing was copied", file=sys.stderr)
        return EXIT_BAD_INPUT
    _print_added(dataset_id, marker)
    if args.no_run:
        marker_key = layout.dataset_marker_key(dataset_id)
        info = pipeline.store.head(marker_key)
        assert info is not None and info.version_id is not None
        pipeline.executions.mark_seen(marker_key, info.version_id, "not-run")
        print(f'no run started (--no-run); name it in a manifest: "dataset": "datasets/{dataset_id}"')
        return EXIT_OK
    names = _report_upload(pipeline.fire(layout.dataset_marker_key(dataset_id)))
    if args.wait:
        return _follow(pipeline, names)
    if names:
        _spawn_worker(args.root)
    return EXIT_OK


def _print_added(dataset_id: str, marker: dict[str, Any]) -> None:
    counts = ", ".join(f"{s} {sum(c.values())}" for s, c in marker["counts"].items())
    print(f"added datasets/{dataset_id}: classes {', '.join(marker['classes'])}; {counts} images")
    if marker.get("not_copied"):
        print(f"  not part of the dataset (beside train/, val/, test/): {', '.join(marker['not_copied'])}")


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
        import hashlib

        key = layout.manifest_key(f"{stem}-{hashlib.sha256(body).hexdigest()[:8]}")
    pipeline.store.put(key, body)  # identical content again = a new upload (a new version on S3)
    return key


def cmd_run(args: argparse.Namespace) -> int:
    pipeline = _pipeline(args)
    _push_code(pipeline)
    key = put_manifest(pipeline, Path(args.manifest))
    print(f"uploaded {key}")
    results = pipeline.fire(key)
    names = _report_upload(results)
    if any(r.outcome is Outcome.REJECTED for r in results):
        return EXIT_BAD_INPUT
    if args.wait:
        return _follow(pipeline, names)
    if names:
        _spawn_worker(args.root)
    return EXIT_OK


def cmd_watch(args: argparse.Namespace) -> int:
    pipeline = _pipeline(args)
    _push_code(pipeline)
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
                _report_upload(pipeline.fire(obj.key))
        pipeline.run_pending()
        if args.once:
            return EXIT_OK
        time.sleep(args.interval)


def cmd_experiments(args: argparse.Namespace) -> int:
    if args.bucket:
        import boto3

        from nyanops.core.sagemaker_experiments import SageMakerExperimentStore

        session = boto3.Session(profile_name=args.profile, region_name=args.region)
        store = SageMakerExperimentStore(session.client("sagemaker"), lock=None)  # type: ignore[arg-type]
        records = store.list_trials(args.name)
        try:
            print(compare.format_experiments(records, args.sort, args.json))
        except ValueError as exc:
            raise CliError(str(exc)) from None
        return EXIT_OK
    pipeline = _pipeline(args)
    try:
        _print_table(pipeline, args.name, args.sort, args.json)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    return EXIT_OK


def cmd_executions(args: argparse.Namespace) -> int:
    pipeline = _pipeline(args)
    rows = pipeline.executions.list(args.limit)
    if args.json:
        print(json.dumps([_execution_summary(r) for r in rows], indent=2, default=str))
        return EXIT_OK
    if not rows:
        print("no executions yet")
        return EXIT_OK
    table = [
        [r.name, r.status, r.experiment or "", r.created_at[:19], _duration(r.duration_seconds), (r.error or "")[:40]]
        for r in rows
    ]
    header = ["execution", "status", "experiment", "created", "duration", "error"]
    widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(header)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    for row in table:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    return EXIT_OK


def _duration(seconds: float | None) -> str:
    return "-" if seconds is None else f"{int(seconds) // 60}m{int(seconds) % 60:02d}s"


def _execution_summary(r: ex.ExecutionRow) -> dict[str, Any]:
    return {
        "name": r.name,
        "status": r.status,
        "experiment": r.experiment,
        "source_key": r.source_key,
        "created_at": r.created_at,
        "started_at": r.started_at,
        "stopped_at": r.stopped_at,
        "duration_seconds": r.duration_seconds,
        "error": r.error,
        "cause": r.cause,
    }


def cmd_execution(args: argparse.Namespace) -> int:
    pipeline = _pipeline(args)
    matches = pipeline.executions.find(args.id)
    exact = [m for m in matches if m.name == args.id]
    if exact:
        matches = exact
    if not matches:
        raise CliError(f"no execution named {args.id!r}; `nyanops executions` lists them")
    if len(matches) > 1:
        raise CliError(f"{args.id!r} matches {len(matches)} executions: " + ", ".join(m.name for m in matches))
    row = matches[0]
    events = pipeline.executions.events(row.name)
    if args.json:
        print(
            json.dumps(
                {**_execution_summary(row), "input": row.input, "output": row.output, "events": events},
                indent=2,
                default=str,
            )
        )
        return EXIT_OK
    print(
        f"execution {row.name}\n  status     {row.status}\n  experiment {row.experiment}\n  upload     {row.source_key}"
    )
    print(f"  created    {row.created_at}\n  duration   {_duration(row.duration_seconds)}")
    if row.error:
        print(f"  error      {row.error}: {row.cause}")
    print("  states:")
    entered: dict[str, str] = {}
    for e in events:
        state = e["state"] or ""
        if e["type"].endswith("StateEntered"):
            entered[state] = e["at"]
        elif e["type"].endswith("StateExited"):
            start = entered.get(state)
            took = _seconds_between(start, e["at"]) if start else None
            print(f"    {e['at'][11:19]}  {state:<20} {'' if took is None else f'{took:7.1f} s'}")
        elif e["type"].endswith("Failed") or e["type"] in ("ExecutionAborted",):
            detail = e["detail"] or {}
            text = detail.get("error") or detail.get("cause") or ""
            print(f"    {e['at'][11:19]}  {e['type']:<20} {str(text)[:160]}")
    return EXIT_OK


def _seconds_between(a: str, b: str) -> float:
    from datetime import datetime

    return (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds()


def find_sample_data(given: str | None, project: Path | None, cache_dir: str | None = None) -> Path:
    try:
        return find_or_fetch_sample_photos(given, project, cache_dir=Path(cache_dir) if cache_dir else None)
    except SamplePhotosUnavailable as exc:
        raise CliError(str(exc)) from None


def cmd_demo(args: argparse.Namespace) -> int:
    pipeline = _pipeline(args)
    data = find_sample_data(args.data, pipeline.project, args.cache_dir)
    print(f"== nyanops demo: the whole pipeline on this machine (root {args.root}) ==")
    print(f"1/3 adding the sample photos from {data} as a new dataset (its arrival starts the first run)")
    _push_code(pipeline)
    try:
        dataset_id, marker = add_dataset(pipeline.store, data)
    except UploadRejected as rejected:
        raise CliError(f"the sample data was refused: {rejected.message}") from None
    _print_added(dataset_id, marker)
    first = _report_upload(pipeline.fire(layout.dataset_marker_key(dataset_id)))
    code = _follow(pipeline, first)
    print("2/3 a second manifest that differs in one hyperparameter (a smaller backbone)")
    manifest = {
        "experiment": pipeline.settings.default_experiment,
        "dataset": f"datasets/{dataset_id}",
        "comment": "demo: the smaller EfficientNet-Lite0 backbone",
        "hyperparameters": {"arch": "efficientnet_lite0"},
    }
    path = pipeline.root / "demo-lite0.json"
    path.write_text(json.dumps(manifest, indent=2))
    key = put_manifest(pipeline, path)
    code = max(code, _follow(pipeline, _report_upload(pipeline.fire(key))))
    print("3/3 comparison")
    _print_table(pipeline, pipeline.settings.default_experiment, "f1", False)
    report_path = _write_report(pipeline, pipeline.settings.default_experiment, pipeline.root / "report.html")
    print(f"report (confusion matrices, learning curves, misclassified photos): {report_path}")
    return code


def _write_report(pipeline: LocalPipeline, experiment: str | None, output: Path) -> Path:
    from nyanops import report, report_data

    experiments = report_data.gather_local(pipeline, experiment)
    html = report.build_report(
        experiments, primary_metric=pipeline.settings.primary_metric, source=f"local root {pipeline.root}"
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(html, encoding="utf-8")
    return output.resolve()


def cmd_report(args: argparse.Namespace) -> int:
    if args.bucket:
        import boto3

        from nyanops import report, report_data

        session = boto3.Session(profile_name=args.profile, region_name=args.region)
        experiments = report_data.gather_aws(session.client("sagemaker"), session.client("s3"), args.bucket, args.name)
        if not experiments:
            raise CliError(f"no trials{f' in experiment {args.name}' if args.name else ''} in SageMaker Experiments")
        out = Path(args.output or "nyanops-report.html")
        out.write_text(report.build_report(experiments, source=f"s3://{args.bucket}"), encoding="utf-8")
        print(out.resolve())
        return EXIT_OK
    pipeline = _pipeline(args)
    if not pipeline.experiments.list_trials(args.name):
        raise CliError(f"no trials{f' in experiment {args.name}' if args.name else ''} yet; nothing to report")
    print(_write_report(pipeline, args.name, Path(args.output) if args.output else pipeline.root / "report.html"))
    return EXIT_OK


def _confirm(question: str, assume_yes: bool) -> bool:
    if assume_yes:
        return True
    if not sys.stdin.isatty():
        raise CliError("refusing to delete without confirmation: no terminal to ask on; re-run with --yes")
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def cmd_cleanup(args: argparse.Namespace) -> int:
    if args.bucket:
        return _cleanup_aws(args)
    import shutil

    from nyanops import report_data

    pipeline = _pipeline(args)
    experiment = args.name or pipeline.settings.default_experiment
    records = pipeline.experiments.list_trials(experiment)
    if not records:
        raise CliError(f"no trials in experiment {experiment!r} under {pipeline.root}; nothing to delete")
    active = [
        r.name for r in pipeline.executions.list(limit=100_000) if r.experiment == experiment and r.status in ex.ACTIVE
    ]
    if active:
        raise CliError(
            f"experiment {experiment!r} has executions still running or pending ({', '.join(active)}); "
            "wait for them (`nyanops executions`) and try again"
        )
    executions = report_data.trial_executions(pipeline.db, experiment)
    runs = sorted({executions.get((r.experiment, r.trial), r.trial) for r in records})
    run_dirs = [d for d in (pipeline.store.path(layout.run_prefix(n).rstrip("/")) for n in runs) if d.is_dir()]
    print(f"experiment {experiment} under {pipeline.root}: {len(records)} trial records will be deleted")
    for r in records:
        print(f"  trial {r.trial}  {r.status}{'  (best)' if r.is_best else ''}  {r.comment}")
    if args.runs:
        print(f"and their run outputs (models, evaluations): {len(run_dirs)} folders")
        for d in run_dirs:
            print(f"  {d}")
    else:
        print(
            "run outputs under bucket/runs/ are kept (add --runs to delete them too); "
            "datasets/, manifests/, code/ and the execution history are never touched"
        )
    if not _confirm("delete?", args.yes):
        print("nothing deleted")
        return EXIT_OK
    count = pipeline.experiments.delete_experiment(experiment)  # type: ignore[attr-defined]
    print(f"deleted {count} trial records of experiment {experiment}")
    if args.runs:
        for d in run_dirs:
            shutil.rmtree(d)
        print(f"deleted {len(run_dirs)} run output folders")
    return EXIT_OK


def _cleanup_aws(args: argparse.Namespace) -> int:
    import boto3

    from nyanops.experiment_cleanup import ExperimentCleaner, ExperimentNotFound

    if not args.name:
        raise CliError("name the experiment to delete: nyanops cleanup NAME --bucket BUCKET")
    session = boto3.Session(profile_name=args.profile, region_name=args.region)
    cleaner = ExperimentCleaner(session.client("sagemaker"), log=print)
    try:
        plan = cleaner.plan(args.name)
    except ExperimentNotFound:
        raise CliError(f"no SageMaker experiment named {args.name!r} in this account and region") from None
    print("SageMaker Experiments: this will be deleted")
    print(plan.describe())
    print(f"(the bucket s3://{args.bucket} and its run outputs are not touched)")
    if not _confirm("delete?", args.yes):
        print("nothing deleted")
        return EXIT_OK
    result = cleaner.delete(plan)
    print(
        f"deleted {len(result.deleted_components)} trial components, {len(result.deleted_trials)} trials"
        f"{' and the experiment' if result.deleted_experiment else ''}"
    )
    if result.kept_components:
        print(f"kept {len(result.kept_components)} components still used by other trials")
    return EXIT_OK


# -- parsing -------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="nyanops", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--root", default=str(default_root()), help="local pipeline root (env NYANOPS_ROOT; default ./.nyanops)"
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_text, description=help_text)
        sp.set_defaults(func=func)
        return sp

    sp = add("demo", cmd_demo, "run the whole pipeline locally on the sample cats and compare two trials")
    sp.add_argument(
        "--data",
        help=f"ImageFolder with train/val/test (env {SAMPLE_DATA_ENV}; default ../shared/datasets/cats-dev, else "
        "the public Oxford-IIIT Pet cat photos, downloaded once and built into a sample in the cache)",
    )
    sp.add_argument(
        "--cache-dir",
        help="where that download and sample go (env NYANOPS_CACHE_DIR; default $XDG_CACHE_HOME/nyanops, else "
        "~/.cache/nyanops)",
    )
    sp.add_argument("-v", "--verbose", action="store_true", help="show every line the jobs print")

    ds = sub.add_parser("dataset", help="add a folder as a new immutable dataset (dataset add DIR)").add_subparsers(
        dest="dataset_command", required=True
    )
    sp = ds.add_parser("add", help="copy a folder in as a new immutable dataset (writes _dataset.json last)")
    sp.set_defaults(func=cmd_dataset_add)
    sp.add_argument("dir", help="folder with train/, val/, test/ each holding <class>/<image> files")
    sp.add_argument("--name", help="dataset id (default: a UTC timestamp such as 2026-11-28T064300Z)")
    sp.add_argument("--wait", action="store_true", help="run the started pipeline here and wait for it")
    sp.add_argument("--no-run", action="store_true", help="add the dataset without notifying the pipeline")
    sp.add_argument("-v", "--verbose", action="store_true", help="show every line the jobs print")

    sp = add("run", cmd_run, "start a run exactly as dropping MANIFEST into manifests/ would")
    sp.add_argument("manifest", help="manifest JSON file (see docs/manifest.md)")
    sp.add_argument("--wait", action="store_true", help="follow the run to its end; exit status 0 only if it succeeded")
    sp.add_argument("-v", "--verbose", action="store_true", help="show every line the jobs print")

    sp = add("watch", cmd_watch, "watch the local bucket and start runs for new manifests and completed datasets")
    sp.add_argument("--interval", type=float, default=2.0, help="seconds between scans (default 2)")
    sp.add_argument("--once", action="store_true", help="scan once, run what was found, and exit")
    sp.add_argument("-v", "--verbose", action="store_true", help="show every line the jobs print")

    sp = add("experiments", cmd_experiments, "compare trials, best flagged")
    sp.add_argument("name", nargs="?", help="experiment (default: all)")
    sp.add_argument("--json", action="store_true", help="machine-readable output")
    sp.add_argument("--sort", help="column to sort by, descending (prefix + for ascending), e.g. f1, +when, epochs")
    sp.add_argument("--bucket", help="read a deployed stack's SageMaker Experiments instead of the local store")
    sp.add_argument("--profile", help="AWS profile (with --bucket)")
    sp.add_argument("--region", help="AWS region (with --bucket)")

    sp = add("executions", cmd_executions, "list executions, newest first")
    sp.add_argument("--limit", type=int, default=50)
    sp.add_argument("--json", action="store_true")

    sp = add("execution", cmd_execution, "one execution, state by state, with timings and errors")
    sp.add_argument("id", help="execution name (a unique prefix is enough)")
    sp.add_argument("--json", action="store_true")

    sp = add("report", cmd_report, "write one self-contained HTML report: table, confusion matrices, curves, photos")
    sp.add_argument("name", nargs="?", help="experiment (default: all)")
    sp.add_argument("-o", "--output", help="HTML file to write (default: <root>/report.html)")
    sp.add_argument("--bucket", help="report on a deployed stack (SageMaker Experiments + S3; no execution timeline)")
    sp.add_argument("--profile", help="AWS profile (with --bucket)")
    sp.add_argument("--region", help="AWS region (with --bucket)")

    sp = add("cleanup", cmd_cleanup, "delete an experiment's trial records (asks first; shows what will go)")
    sp.add_argument("name", nargs="?", help="experiment (default: the default experiment; required with --bucket)")
    sp.add_argument("--yes", action="store_true", help="do not ask (required when there is no terminal)")
    sp.add_argument("--runs", action="store_true", help="local: also delete bucket/runs/<execution>/")
    sp.add_argument("--bucket", help="delete the experiment in SageMaker Experiments of a deployed stack")
    sp.add_argument("--profile", help="AWS profile (with --bucket)")
    sp.add_argument("--region", help="AWS region (with --bucket)")

    code = sub.add_parser("code", help="push ml_code as a content-addressed bundle (code push)").add_subparsers(
        dest="code_command", required=True
    )
    sp = code.add_parser("push", help="upload ml_code as code/<sha256>/ (local root, or a deployed bucket)")
    sp.set_defaults(func=cmd_code_push)
    sp.add_argument("--bucket", help="the deployed stack's bucket (BucketName output)")
    sp.add_argument("--profile")
    sp.add_argument("--region")

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
    except (ProjectNotFound, DefinitionError) as exc:
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


if __name__ == "__main__":
    sys.exit(main())
