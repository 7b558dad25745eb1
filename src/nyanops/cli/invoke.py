"""``nyanops invoke FUNCTION --event FILE``: what ``sam local invoke`` does, without Docker: the function's
real handler, in-process, with a Lambda context, against the local root; its result printed as JSON.

The example events name the example stack's bucket (``nyanops-example-bucket``); every reference to it is
mapped to the local bucket (also inside SQS message bodies). What an event needs to find there (the manifest
it names, that manifest's dataset, a code bundle; for RecordResults the registered trial and the
evaluation.json; for NoteDatasetUploads the images it announces; for SealDatasets a dropped dataset that has
been quiet in the local dataset registry for longer than the quiet period) is created in the local root when
missing (``nyanops.event_fixtures``), and listed; ``--no-prepare`` only lists what is missing. The dataset
functions use what ``nyanops watch`` uses: the root's registry and the local quiet period.
"""

from __future__ import annotations

import argparse
import json
import traceback
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from nyanops.backends.local import LocalBackend
from nyanops.cli.code import push_code
from nyanops.cli.common import EXIT_BAD_INPUT, EXIT_OK, EXIT_RUN_FAILED, CliError, add_command, printable
from nyanops.core import layout
from nyanops.core.dataset_registry import WAITING
from nyanops.event_fixtures import Ports, announced_datasets, event_buckets, map_bucket, needs
from nyanops.local.integrations import LambdaContext, LocalProcessingJobs, record_processing_job
from nyanops.local.project import project_root
from nyanops.local.runner import FUNCTION_DIRS
from nyanops.sam_template import TEMPLATE_FILE, FunctionSpec, functions, load_template


def template_functions() -> dict[str, FunctionSpec]:
    return functions(load_template(project_root() / TEMPLATE_FILE))


def find_function(name: str, specs: dict[str, FunctionSpec]) -> FunctionSpec:
    """A function by its logical id in template.yaml (``StartPipelineFunction``), case-insensitively, with or
    without the ``Function`` suffix."""
    wanted = name.lower().removesuffix("function")
    for logical_id, spec in specs.items():
        if logical_id.lower().removesuffix("function") == wanted:
            return spec
    raise CliError(f"no function {printable(name)!r} in {TEMPLATE_FILE}; its functions: {', '.join(specs)}")


def local_name(spec: FunctionSpec) -> str:
    """The local pipeline's name for a template function (by its code folder)."""
    for name, directory in FUNCTION_DIRS.items():
        if directory == spec.code_dir:
            return name
    raise CliError(
        f"{spec.logical_id} ({spec.code_uri}) has no local wiring yet: add its folder to FUNCTION_DIRS and its "
        "dependencies to LocalPipeline.function in nyanops/local/runner.py"
    )


def read_event(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CliError(f"cannot read event {printable(path)}: {exc.strerror}") from None
    except ValueError as exc:
        raise CliError(f"event {printable(path)} is not JSON: {exc}") from None


def record_finished_job(jobs_dir: Path, job: str, output_uri: str) -> None:
    """The record a finished evaluation job leaves locally (what DescribeProcessingJob answers on AWS): it ran
    the minute up to now, so the example evaluation.json written just before lies within its run."""
    now = datetime.now(timezone.utc)
    record_processing_job(jobs_dir, {
        "ProcessingJobName": job,
        "ProcessingJobStatus": "Completed",
        "ProcessingStartTime": (now - timedelta(minutes=1)).isoformat(),
        "ProcessingEndTime": now.isoformat(),
        "ProcessingOutputConfig": {"Outputs": [{"OutputName": "evaluation", "S3Output": {
            "S3Uri": output_uri, "LocalPath": "/opt/ml/processing/evaluation", "S3UploadMode": "EndOfJob"}}]},
    })


def cmd_invoke(args: argparse.Namespace) -> int:
    spec = find_function(args.function, template_functions())
    name = local_name(spec)
    backend = LocalBackend(args.root)
    pipeline = backend.pipeline
    event = read_event(Path(args.event))
    buckets = event_buckets(event) - {pipeline.store.bucket}
    if buckets:
        event = map_bucket(event, buckets, pipeline.store.bucket)
        print(f"event bucket {', '.join(sorted(buckets))} -> the local bucket ({pipeline.store.directory})")
    watcher = pipeline.dataset_watcher
    ports = Ports(
        store=pipeline.store,
        experiments=pipeline.experiments,
        registry=watcher.registry,
        register_trial=lambda run: pipeline.function("RecordResults").lambda_handler(
            {"mode": "started", "run": run}, LambdaContext("RecordResultsFunction")
        ),
        push_code=lambda: print(f"  pushed ml_code as code/{push_code(backend)}"),
        quiet_seconds=watcher.deps.quiet_seconds,
        default_experiment=pipeline.settings.default_experiment,
        evaluation_jobs=LocalProcessingJobs(pipeline.root / "jobs"),
        record_evaluation_job=lambda job, output: record_finished_job(pipeline.root / "jobs", job, output),
    )
    missing = [n for n in needs(event, ports) if not n.present()]
    for need in missing:
        if args.no_prepare:
            print(f"missing: {printable(need.what)}")
            continue
        need.make()
        print(f"prepared: {printable(need.what)}")
    if missing and args.no_prepare:
        print("the event would not reach its intended outcome; run again without --no-prepare to create them")
        return EXIT_BAD_INPUT
    module = pipeline.function(name)
    print(f"invoking {spec.logical_id} ({spec.code_uri}/{spec.handler.split('.')[0]}.py, in-process)")
    # The template's timeout and memory, as Lambda gives them (SealDatasets stops taking datasets when less than
    # a minute of its 900 s is left: with a 60 s context it would take none).
    context = LambdaContext(spec.logical_id, memory_limit_in_mb=spec.memory_mb, timeout_seconds=spec.timeout_seconds)
    try:
        result = module.lambda_handler(event, context)
    except Exception as exc:  # what Lambda reports for an unhandled exception
        error = {"errorType": type(exc).__name__, "errorMessage": str(exc),
                 "stackTrace": traceback.format_exception(exc)[-3:]}
        print(printable(json.dumps(error, indent=2, ensure_ascii=False), keep_newlines=True))
        return EXIT_RUN_FAILED
    print(printable(json.dumps(result, indent=2, ensure_ascii=False, default=str), keep_newlines=True))
    _mark_handled(pipeline, event)
    started = [r["execution_name"] for r in (result or {}).get("results", []) if r.get("outcome") == "started"]
    for execution in started:
        print(f"execution {execution} is PENDING in the local root: `nyanops watch --once` (or the next background "
              "run) runs it; `nyanops execution NAME` shows it")
    _say_datasets(ports, event, result)
    return EXIT_OK


def _say_datasets(ports: Ports, event: Any, result: Any) -> None:
    """What the dataset functions did, which their results alone do not show: the registry state of each dataset
    an upload batch announced, and what follows a seal."""
    for dataset_id in announced_datasets(event):
        record = ports.registry.get(dataset_id)
        if record is not None:
            then = f"; sealed once nothing new arrives for {ports.quiet_seconds:g} s" if record.state == WAITING else ""
            print(f"datasets/{printable(dataset_id)}: {record.state} in the local dataset registry ({record.uploads} "
                  f"upload(s) noted){then}")
    results = result.get("results") if isinstance(result, dict) else None
    for r in results if isinstance(results, list) else []:
        if isinstance(r, dict) and r.get("outcome") == "sealed" and r.get("dataset_id"):
            marker = layout.dataset_marker_key(str(r["dataset_id"]))
            print(f"{printable(marker)} written: its arrival starts a run through StartPipeline (locally "
                  "`nyanops watch --once` hands it over)")


def _mark_handled(pipeline: Any, event: Any) -> None:
    """Uploads this invocation handed to StartPipeline count as seen, so ``nyanops watch`` does not start
    them a second time."""
    from nyanops.core.upload_events import UnsupportedEvent, uploads_from_event

    try:
        uploads = uploads_from_event(event)
    except (UnsupportedEvent, KeyError, TypeError):
        return
    for upload in uploads:
        info = pipeline.store.head(upload.key) if upload.bucket == pipeline.store.bucket else None
        if info is not None and info.version_id:
            pipeline.executions.mark_seen(upload.key, info.version_id, "invoked")


def register(sub: argparse._SubParsersAction) -> None:
    sp = add_command(
        sub,
        "invoke",
        cmd_invoke,
        "run a Lambda function's handler in-process on an event file, against the local root (sam local invoke "
        "without Docker)",
    )
    sp.add_argument("function", help="the function's logical id in template.yaml, e.g. StartPipelineFunction")
    sp.add_argument("--event", required=True, help="event JSON file, e.g. events/manifest_eventbridge.json")
    sp.add_argument(
        "--no-prepare",
        action="store_true",
        help="only list what the event needs that the local root lacks (by default it is created)",
    )
