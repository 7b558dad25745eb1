"""Reviewing results: ``nyanops experiments``, ``nyanops report`` and ``nyanops cleanup``."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from nyanops import compare, report, report_data
from nyanops.backends import Backend, add_aws_arguments, open_backend
from nyanops.backends.aws import AwsBackend
from nyanops.backends.local import LocalBackend
from nyanops.cli.common import EXIT_OK, CliError, add_command, confirm
from nyanops.core import layout
from nyanops.local import executions as ex
from nyanops.local.runner import LocalPipeline


def print_table(backend: Backend, experiment: str | None, sort: str | None, as_json: bool) -> None:
    records = backend.experiments.list_trials(experiment)
    if not records and not as_json:
        print(f"no trials yet{f' in experiment {experiment}' if experiment else ''}")
        return
    try:
        print(compare.format_experiments(records, sort, as_json))
    except ValueError as exc:
        raise CliError(str(exc)) from None


def cmd_experiments(args: argparse.Namespace) -> int:
    print_table(open_backend(args), args.name, args.sort, args.json)
    return EXIT_OK


def write_report(pipeline: LocalPipeline, experiment: str | None, output: Path) -> Path:
    experiments = report_data.gather_local(pipeline, experiment)
    html = report.build_report(
        experiments, primary_metric=pipeline.settings.primary_metric, source=f"local root {pipeline.root}"
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(html, encoding="utf-8")
    return output.resolve()


def cmd_report(args: argparse.Namespace) -> int:
    backend = open_backend(args)
    if isinstance(backend, AwsBackend):
        experiments = report_data.gather_aws(backend.experiments, backend.store, args.name)
        if not experiments:
            raise CliError(f"no trials{f' in experiment {args.name}' if args.name else ''} in SageMaker Experiments")
        out = Path(args.output or "nyanops-report.html")
        out.write_text(report.build_report(experiments, source=backend.where()), encoding="utf-8")
        print(out.resolve())
        return EXIT_OK
    assert isinstance(backend, LocalBackend)
    pipeline = backend.pipeline
    if not pipeline.experiments.list_trials(args.name):
        raise CliError(f"no trials{f' in experiment {args.name}' if args.name else ''} yet; nothing to report")
    print(write_report(pipeline, args.name, Path(args.output) if args.output else pipeline.root / "report.html"))
    return EXIT_OK


def cmd_cleanup(args: argparse.Namespace) -> int:
    backend = open_backend(args)
    if isinstance(backend, AwsBackend):
        return _cleanup_aws(backend, args)
    assert isinstance(backend, LocalBackend)
    pipeline = backend.pipeline
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
    if not confirm("delete?", args.yes):
        print("nothing deleted")
        return EXIT_OK
    count = pipeline.experiments.delete_experiment(experiment)  # type: ignore[attr-defined]
    print(f"deleted {count} trial records of experiment {experiment}")
    if args.runs:
        for d in run_dirs:
            shutil.rmtree(d)
        print(f"deleted {len(run_dirs)} run output folders")
    return EXIT_OK


def _cleanup_aws(backend: AwsBackend, args: argparse.Namespace) -> int:
    from nyanops.aws.experiment_cleanup import ExperimentCleaner, ExperimentNotFound

    if not args.name:
        raise CliError("name the experiment to delete: nyanops cleanup NAME --bucket BUCKET")
    cleaner = ExperimentCleaner(backend.client("sagemaker"), log=print)
    try:
        plan = cleaner.plan(args.name)
    except ExperimentNotFound:
        raise CliError(f"no SageMaker experiment named {args.name!r} in this account and region") from None
    print("SageMaker Experiments: this will be deleted")
    print(plan.describe())
    print(f"(the bucket {backend.where()} and its run outputs are not touched)")
    if not confirm("delete?", args.yes):
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


def register(sub: argparse._SubParsersAction) -> None:
    sp = add_command(sub, "experiments", cmd_experiments, "compare trials, best flagged")
    sp.add_argument("name", nargs="?", help="experiment (default: all)")
    sp.add_argument("--json", action="store_true", help="machine-readable output")
    sp.add_argument("--sort", help="column to sort by, descending (prefix + for ascending), e.g. f1, +when, epochs")
    add_aws_arguments(sp)

    sp = add_command(
        sub, "report", cmd_report, "write one self-contained HTML report: table, confusion matrices, curves, photos"
    )
    sp.add_argument("name", nargs="?", help="experiment (default: all)")
    sp.add_argument(
        "-o", "--output", help="HTML file to write (default: <root>/report.html; with --bucket ./nyanops-report.html)"
    )
    add_aws_arguments(sp)

    sp = add_command(
        sub, "cleanup", cmd_cleanup, "delete an experiment's trial records (asks first; shows what will go)"
    )
    sp.add_argument("name", nargs="?", help="experiment (default: the default experiment; required with --bucket)")
    sp.add_argument("--yes", action="store_true", help="do not ask (required when there is no terminal)")
    sp.add_argument("--runs", action="store_true", help="local: also delete bucket/runs/<execution>/")
    add_aws_arguments(sp)
