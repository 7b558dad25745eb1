"""The local pipeline: the same handlers, the same state machine file and the same ML scripts,
wired to a directory bucket and SQLite instead of S3, Step Functions, SageMaker and SNS."""

from __future__ import annotations

import importlib.util
import json
import os
import random as _random
import sys
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import quote_plus

from nyanops.core import layout, limits
from nyanops.core.best_model import DEFAULT_TOLERANCE, IN_PROGRESS
from nyanops.core.execution_input import trial_names
from nyanops.core.record_results import RecordResultsDeps, failure_text
from nyanops.core.settings import PipelineSettings
from nyanops.core.start_pipeline import StartPipelineDeps, UploadResult
from nyanops.local import executions as ex
from nyanops.local.asl import (
    ExecutionListener,
    ExecutionResult,
    NullListener,
    Serialized,
    StateMachine,
    load_state_machine,
)
from nyanops.local.bucket import LOCAL_BUCKET, LocalObjectStore
from nyanops.local.capacity import max_parallel_jobs
from nyanops.local.database import connect
from nyanops.local.dataset_watch import DatasetWatcher, local_quiet_seconds
from nyanops.local.experiment_store import SQLiteExperimentStore
from nyanops.local.integrations import (
    LocalProcessingJobs,
    LocalSageMaker,
    LocalTaskRunner,
    function_arn,
    topic_arn,
)
from nyanops.local.model_registry import SQLiteModelRegistry
from nyanops.local.progress import Progress
from nyanops.local.project import FUNCTIONS, STATE_MACHINE, project_root

# Handlers log JSON to stdout and emit metrics on AWS; locally the CLI speaks for them.
POWERTOOLS_LOCAL_ENV = {
    "POWERTOOLS_SERVICE_NAME": "nyanops-local",
    "POWERTOOLS_METRICS_NAMESPACE": "nyanops",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}
FUNCTION_DIRS = {
    "StartPipeline": "start_pipeline",
    "RecordResults": "record_results",
    "NoteDatasetUploads": "note_uploads",
    "SealDatasets": "seal_datasets",
}
INTERRUPTED_MESSAGE = "interrupted: the local run was stopped (Ctrl-C, kill or crash) before it finished"


def default_root() -> Path:
    return Path(os.environ.get("NYANOPS_ROOT", ".nyanops"))


def local_settings() -> PipelineSettings:
    env = os.environ
    return PipelineSettings.model_validate(
        {
            "BUCKET_NAME": LOCAL_BUCKET,
            "AWS_REGION": "local",
            "DEFAULT_EXPERIMENT": env.get("NYANOPS_DEFAULT_EXPERIMENT", "cats"),
            "PRIMARY_METRIC": env.get("NYANOPS_PRIMARY_METRIC", "macro_f1"),
            "BEST_MODEL_TOLERANCE": env.get("NYANOPS_BEST_MODEL_TOLERANCE", str(DEFAULT_TOLERANCE)),
            "USE_SPOT": "false",
            "MAX_RUNTIME_SECONDS": env.get("NYANOPS_MAX_RUNTIME_SECONDS", "3600"),
            "EVALUATION_MAX_RUNTIME_SECONDS": env.get("NYANOPS_EVALUATION_MAX_RUNTIME_SECONDS", "1800"),
            # Recorded in the job requests only: local jobs run in this machine's Python.
            "TRAINING_INSTANCE_TYPE": "ml.m5.xlarge",
            "PROCESSING_INSTANCE_TYPE": "ml.m5.xlarge",
            # No KMS locally: the job requests carry no KMS field.
            "KMS_KEY_ARN": "",
        }
    )


def substitutions() -> dict[str, str]:
    """The DefinitionSubstitutions ``template.yaml`` fills on AWS, with local values."""
    return {
        "TrainingImage": "local/python",
        "ProcessingImage": "local/python",
        "SageMakerRoleArn": "arn:aws:iam::000000000000:role/nyanops-local-sagemaker",
        "RecordResultsFunctionArn": function_arn("RecordResults"),
        "ResultsTopicArn": topic_arn("nyanops-results"),
    }


def load_handler(project: Path, function_dir: str) -> ModuleType:
    """Import ``functions/<dir>/app.py`` under a unique name (every function's module is ``app``)."""
    for key, value in POWERTOOLS_LOCAL_ENV.items():
        os.environ.setdefault(key, value)
    # Metrics are off locally; Powertools still warns when a handler added none (a sealer's tick with nothing
    # due), which means nothing here.
    warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)
    path = project / FUNCTIONS / function_dir / "app.py"
    name = f"nyanops_function_{function_dir}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class ConsoleNotifier:
    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def publish(self, subject: str, message: str) -> None:
        self.progress.publish("local", subject, message)


class HistoryRecorder(NullListener):
    """Persists every history event of one execution (so other processes can show it), and
    forwards the progress callbacks to the display. The executor never calls a listener from two
    threads at once (see ``nyanops.local.asl``); the display is shared with job output, so pass
    it ``Serialized``."""

    def __init__(self, store: ex.ExecutionStore, name: str, display: ExecutionListener) -> None:
        self.store, self.name, self.display = store, name, display

    def history_event(self, event: dict[str, Any]) -> None:
        details = event.get("details") or {}
        state = details.get("name") if isinstance(details, dict) else None
        self.store.add_event(self.name, event["type"], state, details)

    def execution_started(self, name: str, input: Any) -> None:
        self.display.execution_started(name, input)

    def state_entered(self, state_name: str, state_type: str, input: Any) -> None:
        self.display.state_entered(state_name, state_type, input)

    def state_exited(self, state_name: str, output: Any) -> None:
        self.display.state_exited(state_name, output)

    def state_retry(self, state_name: str, error: str, cause: str | None, attempt: int, delay_seconds: float) -> None:
        self.display.state_retry(state_name, error, cause, attempt, delay_seconds)

    def state_caught(self, state_name: str, error: str, next_state: str) -> None:
        self.display.state_caught(state_name, error, next_state)

    def execution_succeeded(self, output: Any) -> None:
        self.display.execution_succeeded(output)

    def execution_failed(self, error: str | None, cause: str | None) -> None:
        self.display.execution_failed(error, cause)

    def execution_aborted(self, reason: str) -> None:
        self.display.execution_aborted(reason)


class NotPending(RuntimeError):
    """The execution is not waiting to run (another process took it, or it already ran)."""


@dataclass
class LocalPipeline:
    root: Path
    progress: Progress
    python: str = sys.executable
    project: Path | None = None
    # How the executor waits between Retry attempts and draws FULL jitter (tests make both instant/fixed);
    # None: the executor's own wait, which Ctrl-C and aborted Map iterations cut short.
    sleep: Callable[[float], None] | None = None
    random: Callable[[], float] = _random.random
    # How many Map iterations (trials) may run at once on this machine: NYANOPS_MAX_PARALLEL_JOBS, or what
    # the machine's cores and memory allow (nyanops.local.capacity); None reads the setting.
    max_parallel_jobs: int | None = None

    def __post_init__(self) -> None:
        if self.max_parallel_jobs is None:
            self.max_parallel_jobs = max_parallel_jobs()
        self.project = self.project or project_root()
        self.root = self.root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.store = LocalObjectStore(self.root / "bucket")
        self.store.directory.mkdir(exist_ok=True)
        self.db = connect(self.root / "nyanops.db")
        self.experiments = SQLiteExperimentStore(self.db)
        self.model_registry = SQLiteModelRegistry(self.db)
        self.executions = ex.ExecutionStore(self.db)
        # The Map's MaxConcurrency in the execution input is this pipeline's own cap (the executor applies it too).
        cap = min(self.max_parallel_jobs or 1, limits.SWEEP_MAX_CONCURRENCY)
        self.settings = local_settings().model_copy(update={"sweep_max_concurrency": cap})
        self._machine: StateMachine | None = None
        self._dataset_watcher: DatasetWatcher | None = None
        self._functions: dict[str, ModuleType] = {}
        self.display: Any = Serialized(self.progress, threading.RLock())

    # -- wiring --------------------------------------------------------------------------------------
    @property
    def machine(self) -> StateMachine:
        if self._machine is None:
            assert self.project is not None
            self._machine = load_state_machine(self.project / STATE_MACHINE, substitutions())
        return self._machine

    def function(self, name: str) -> ModuleType:
        """The real handler module, wired to this pipeline's local adapters."""
        if name not in self._functions:
            assert self.project is not None
            self._functions[name] = load_handler(self.project, FUNCTION_DIRS[name])
        module = self._functions[name]
        # Handler modules are process-wide; (re)point them at this root every time.
        if name == "StartPipeline":
            module.set_deps(
                StartPipelineDeps(self.store, self.executions, ConsoleNotifier(self.progress), self.settings)
            )
        elif name == "RecordResults":
            module.set_deps(
                RecordResultsDeps(
                    self.store, self.experiments, LocalProcessingJobs(self.root / "jobs"), registry=self.model_registry
                )
            )
        else:  # NoteDatasetUploads and SealDatasets: what `nyanops watch` notes and seals with
            module.set_deps(self.dataset_watcher.deps)
        return module

    @property
    def dataset_watcher(self) -> DatasetWatcher:
        """The dataset side of ``nyanops watch`` for this root (the SQLite registry, the local quiet period)."""
        if self._dataset_watcher is None:
            self._dataset_watcher = DatasetWatcher(
                self.store, self.db, ConsoleNotifier(self.progress), local_quiet_seconds()
            )
        return self._dataset_watcher

    def task_runner(self) -> LocalTaskRunner:
        sagemaker = LocalSageMaker(self.store, self.root / "jobs", self.python, self.display.job_line)
        functions = {function_arn(n): self.function(n) for n in FUNCTION_DIRS}
        return LocalTaskRunner(sagemaker, functions, self.display.publish)

    # -- uploads -------------------------------------------------------------------------------------
    def upload_event(self, key: str) -> dict[str, Any]:
        """The EventBridge ``Object Created`` event S3 would send for ``key``."""
        info = self.store.head(key)
        if info is None:
            raise FileNotFoundError(f"{key} is not in the local bucket {self.store.directory}")
        return {
            "version": "0",
            "id": f"local-{info.version_id}",
            "detail-type": "Object Created",
            "source": "aws.s3",
            "account": "000000000000",
            "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "region": "local",
            "resources": [f"arn:aws:s3:::{self.store.bucket}"],
            "detail": {
                "version": "0",
                "bucket": {"name": self.store.bucket},
                "object": {
                    "key": quote_plus(key, safe="/"),
                    "size": info.size,
                    "etag": info.etag,
                    "version-id": info.version_id,
                    # S3 sequencers grow with each event on a key: the local version's modification time (hex).
                    "sequencer": (info.version_id or "").split("-")[0],
                },
                "request-id": "local",
                "requester": "local",
                "reason": "PutObject",
            },
        }

    def fire(self, key: str) -> list[UploadResult]:
        """Send the upload event for ``key`` to the real StartPipeline handler."""
        from nyanops.core.start_pipeline import Outcome

        event = self.upload_event(key)
        response = self.function("StartPipeline").lambda_handler(event, _context("StartPipeline"))
        for r in response["results"]:
            self.executions.mark_seen(key, event["detail"]["object"]["version-id"], r["outcome"])
        return [
            UploadResult(
                Outcome(r["outcome"]),
                r["key"],
                r["execution_name"],
                [_problem(p) for p in r["problems"]],
                r["reason"],
            )
            for r in response["results"]
        ]

    # -- executions ----------------------------------------------------------------------------------
    def reap_orphans(self) -> list[str]:
        """Executions left RUNNING by a process that died: mark them interrupted, fail their trial."""
        names = []
        for row in self.executions.orphaned():
            self._interrupt(row.name, row.input)
            names.append(row.name)
        return names

    def _interrupt(self, name: str, execution_input: dict[str, Any]) -> None:
        self.executions.add_event(name, "ExecutionAborted", None, {"cause": INTERRUPTED_MESSAGE})
        self.executions.finish(name, ex.INTERRUPTED, error="Interrupted", cause=INTERRUPTED_MESSAGE)
        for trial in trial_names(execution_input):  # a recorded trial stays Completed
            self.experiments.fail_trial(
                execution_input["experiment"], trial, INTERRUPTED_MESSAGE, datetime.now(timezone.utc)
            )

    def execute(self, name: str) -> ex.ExecutionRow:
        """Run one pending execution in this process, to the end (or until interrupted)."""
        machine = self.machine  # a definition the executor refuses must fail before the run is claimed
        if not self.executions.claim(name):
            row = self.executions.get(name)
            raise NotPending(f"execution {name} is not pending (status {row.status if row else 'unknown'})")
        row = self.executions.get(name)
        assert row is not None
        recorder = HistoryRecorder(self.executions, name, self.display)
        try:
            result = machine.run(
                row.input,
                execution_name=name,
                task_runner=self.task_runner(),
                listener=recorder,
                sleep=self.sleep,
                random=self.random,
                max_parallel=self.max_parallel_jobs,
            )
        except (KeyboardInterrupt, SystemExit):
            self._interrupt(name, row.input)
            raise
        except Exception as exc:  # a fault of the local runner itself, not of a task
            self.executions.finish(name, ex.FAILED, error=type(exc).__name__, cause=str(exc))
            for trial in trial_names(row.input):
                self.experiments.fail_trial(
                    row.input["experiment"], trial, f"local runner error: {exc}", datetime.now(timezone.utc)
                )
            raise
        status = ex.SUCCEEDED if result.status == "SUCCEEDED" else ex.FAILED
        self.executions.finish(name, status, output=result.output, error=result.error, cause=result.cause)
        if status == ex.FAILED:
            self._close_open_trial(row.input, result)
        final = self.executions.get(name)
        assert final is not None
        return final

    def _close_open_trial(self, execution_input: dict[str, Any], result: ExecutionResult) -> None:
        """A failed run whose trials' failure could not be recorded (the Map or the comparison failed) must not
        leave a trial InProgress forever: record each such trial here, with the run's error."""
        experiment = execution_input["experiment"]
        names = set(trial_names(execution_input))
        open_trials = [t.trial for t in self.experiments.list_trials(experiment)
                       if t.trial in names and t.status == IN_PROGRESS]
        if not open_trials:
            return
        state = next(
            (e["details"].get("input") for e in reversed(result.history) if e["type"] == "FailStateEntered"), None
        )
        state = state if isinstance(state, dict) else {}
        error = state.get("summary_error") or state.get("error")
        text = failure_text(error) if error else f"{result.error}: {result.cause}"
        for trial in open_trials:
            self.experiments.fail_trial(experiment, trial, text, datetime.now(timezone.utc))

    def run_pending(self) -> list[ex.ExecutionRow]:
        done = []
        for name in self.executions.pending():
            try:
                done.append(self.execute(name))
            except NotPending:
                continue
        return done

    def close(self) -> None:
        self.db.close()


def _context(function_name: str) -> Any:
    from nyanops.local.integrations import LambdaContext

    return LambdaContext(function_name)


def _problem(p: dict[str, str]) -> Any:
    from nyanops.core.rejection import Problem

    return Problem(p["field"], p["problem"], p["fix"])


def dataset_key_for(dataset_id: str) -> str:
    return layout.dataset_marker_key(dataset_id)


def dump(value: Any) -> str:
    return json.dumps(value, indent=2, default=str, ensure_ascii=False)
