"""The local side: a ``LocalPipeline`` over ``<root>/bucket`` and ``<root>/nyanops.db``."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from nyanops import report_data
from nyanops.backends import CleanupPlan, ExecutionSummary
from nyanops.core import layout
from nyanops.core.execution_input import trial_names
from nyanops.core.experiments import TrialRecord
from nyanops.core.start_pipeline import UploadResult
from nyanops.core.upload_events import Upload
from nyanops.errors import EXIT_OK, EXIT_RUN_FAILED, CliError
from nyanops.execution_view import ExecutionView, StateView, build_view, parse_time
from nyanops.local import executions as ex
from nyanops.local.bucket import LocalObjectStore
from nyanops.local.experiment_store import SQLiteExperimentStore
from nyanops.local.history import sfn_events
from nyanops.local.model_registry import SQLiteModelRegistry
from nyanops.local.progress import Progress
from nyanops.local.project import STATE_MACHINE
from nyanops.local.runner import LocalPipeline
from nyanops.local.storage_errors import open_pipeline
from nyanops.report import ExperimentReport
from nyanops.terminal import printable

JOB_LOG = "output.log"
LOG_TAIL_BYTES = 16_384
DEFAULT_REPORT = "report.html"


class LocalBackend:
    kind = "local"

    def __init__(self, root: str | Path, verbose: bool = False) -> None:
        self.pipeline = open_pipeline(Path(root), Progress(verbose=verbose))
        for name in self.pipeline.reap_orphans():
            print(f"note: execution {name} was left running by a process that is gone; marked INTERRUPTED")

    @property
    def store(self) -> LocalObjectStore:
        return self.pipeline.store

    @property
    def experiments(self) -> SQLiteExperimentStore:
        return self.pipeline.experiments

    @property
    def model_registry(self) -> SQLiteModelRegistry:
        return self.pipeline.model_registry

    @property
    def primary_metric(self) -> str:
        return self.pipeline.settings.primary_metric

    def where(self) -> str:
        return f"local root {self.pipeline.root}"

    def close(self) -> None:
        self.pipeline.close()

    # -- runs --------------------------------------------------------------------------------------------
    def upload(self, key: str, body: bytes) -> Upload:
        self.store.put(key, body)
        info = self.store.head(key)
        assert info is not None
        return Upload(self.store.bucket, key, info.version_id, info.etag, info.size)

    def start_pipeline(self, upload: Upload) -> list[UploadResult]:
        return self.pipeline.fire(upload.key)

    def follow(self, names: list[str]) -> int:
        return follow(self.pipeline, names)

    def follow_later(self, names: list[str]) -> None:
        if names:
            spawn_worker(self.pipeline.root)

    # -- history -----------------------------------------------------------------------------------------
    def list_executions(self, limit: int) -> list[ExecutionSummary]:
        return [summary(r) for r in self.pipeline.executions.list(limit)]

    def find_execution(self, name_or_prefix: str) -> ExecutionSummary:
        matches = self.pipeline.executions.find(name_or_prefix)
        exact = [m for m in matches if m.name == name_or_prefix]
        matches = exact or matches
        if not matches:
            raise CliError(
                f"no execution named {name_or_prefix!r} under {self.pipeline.root}; `nyanops executions` lists them"
            )
        if len(matches) > 1:
            names = ", ".join(m.name for m in matches[:10])
            raise CliError(f"{name_or_prefix!r} matches {len(matches)} executions ({names}); give more of the name")
        return summary(matches[0])

    def execution_view(self, execution: ExecutionSummary) -> ExecutionView:
        row = self.pipeline.executions.get(execution.name)
        events = sfn_events(self.pipeline.executions.events(execution.name))
        return build_view(
            self.definition(),
            events,
            name=execution.name,
            status=execution.status,
            started_at=execution.started_at,
            stopped_at=execution.stopped_at,
            input=row.input if row else None,
            output=row.output if row else None,
            error=execution.error,
            cause=execution.cause,
        )

    def definition(self) -> dict:
        assert self.pipeline.project is not None
        return json.loads((self.pipeline.project / STATE_MACHINE).read_text(encoding="utf-8"))

    def job_progress(self, state: StateView) -> str | None:
        job = state.job
        if job is None:
            return None
        return last_job_line(self.pipeline.root / "jobs" / job.name / JOB_LOG, state)

    def execution_command(self) -> str:
        return "nyanops execution"

    # -- review ------------------------------------------------------------------------------------------
    def console_links(self, record: TrialRecord) -> dict[str, str]:
        return {}

    def report_data(self, experiment: str | None) -> list[ExperimentReport]:
        if not self.experiments.list_trials(experiment):
            raise CliError(f"no trials{f' in experiment {experiment}' if experiment else ''} yet; nothing to report")
        return report_data.gather_local(self.pipeline, self.definition(), experiment)

    def report_output(self, given: str | None) -> Path:
        root = self.pipeline.root
        if given is None:
            return root / DEFAULT_REPORT
        out = Path(given).expanduser().resolve()
        own = {root / "nyanops.db", *(root / f"nyanops.db{s}" for s in ("-wal", "-shm", "-journal"))}
        inside = [root / "bucket", root / "jobs", root / "cache"]
        if out in own or any(out.is_relative_to(d) for d in inside) or out == root / "worker.log":
            raise CliError(
                f"refusing to write the report over {out}: it is one of the local root's own files; "
                f"choose another path (the default is {root / DEFAULT_REPORT})"
            )
        return out

    def plan_cleanup(self, experiment: str | None, runs: bool) -> CleanupPlan:
        pipeline = self.pipeline
        experiment = experiment if experiment is not None else pipeline.settings.default_experiment
        records = self.experiments.list_trials(experiment)
        if not records:
            raise CliError(f"no trials in experiment {experiment!r} under {pipeline.root}; nothing to delete")
        active = [
            r.name
            for r in pipeline.executions.list(limit=100_000)
            if r.experiment == experiment and r.status in ex.ACTIVE
        ]
        if active:
            raise CliError(
                f"experiment {experiment!r} has executions still running or pending ({', '.join(active)}); "
                "wait for them (`nyanops executions`) and try again"
            )
        executions = report_data.trial_executions(pipeline.db, experiment)
        names = sorted({executions.get((r.experiment, r.trial), r.trial) for r in records})
        run_dirs = [d for d in (pipeline.store.path(layout.run_prefix(n).rstrip("/")) for n in names) if d.is_dir()]
        lines = [f"experiment {experiment} under {pipeline.root}: {len(records)} trial records will be deleted"]
        lines += [f"  trial {r.trial}  {r.status}{'  (best)' if r.is_best else ''}  {r.comment}" for r in records]
        if runs:
            lines.append(f"and their run outputs (models, evaluations): {len(run_dirs)} folders")
            lines += [f"  {d}" for d in run_dirs]
        else:
            lines.append(
                "run outputs under bucket/runs/ are kept (add --runs to delete them too); "
                "datasets/, manifests/, code/ and the execution history are never touched"
            )

        def run() -> str:
            count = self.experiments.delete_experiment(experiment)
            done = [f"deleted {count} trial records of experiment {experiment}"]
            if runs:
                for d in run_dirs:
                    shutil.rmtree(d)
                done.append(f"deleted {len(run_dirs)} run output folders")
            return "\n".join(done)

        return CleanupPlan("\n".join(printable(line) for line in lines), run)

    # -- using trials (predict, rerun) --------------------------------------------------------------------
    def default_experiment(self) -> str | None:
        return self.pipeline.settings.default_experiment

    def cache_dir(self) -> Path:
        return self.pipeline.root / "cache" / "predict"


# -- helpers shared with the local-only commands (demo, dataset add, watch) -------------------------------
def summary(r: ex.ExecutionRow) -> ExecutionSummary:
    return ExecutionSummary(
        name=r.name,
        status=r.status,
        experiment=r.experiment,
        source_key=r.source_key,
        started_at=parse_time(r.started_at or r.created_at),
        stopped_at=parse_time(r.stopped_at),
        error=r.error,
        cause=r.cause,
    )


def last_job_line(log: Path, state: StateView) -> str | None:
    """The job's last line, and its last metric line when that is older (a metric being a line one of the
    state's MetricDefinitions matches)."""
    import re

    try:
        with open(log, "rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - LOG_TAIL_BYTES))
            tail = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return None
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    if not lines:
        return None
    params = state.parameters if isinstance(state.parameters, dict) else {}
    definitions = (params.get("AlgorithmSpecification") or {}).get("MetricDefinitions") or []
    regexes = []
    for d in definitions:
        try:
            regexes.append(re.compile(str(d.get("Regex", ""))))
        except re.error:
            continue
    last = lines[-1]
    metric = next((line for line in reversed(lines) if any(r.search(line) for r in regexes)), None)
    if metric is None or metric == last:
        return last
    return f"{last}  | last metric: {metric}"


def spawn_worker(root: str | Path) -> None:
    log = Path(root) / "worker.log"
    with open(log, "a") as fh:
        subprocess.Popen(
            [sys.executable, "-m", "nyanops.local.worker", "--root", str(root)],
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    print(f"running in the background (log: {log}); follow with `nyanops executions` / `nyanops execution NAME`")


def follow(pipeline: LocalPipeline, names: list[str]) -> int:
    """Run the named executions here and now; exit status says whether all succeeded."""
    code = EXIT_OK
    for name in names:
        row = pipeline.executions.get(name)
        if row and row.status == ex.PENDING:
            row = pipeline.execute(name)
        elif row and row.status == ex.RUNNING:
            row = wait_for(pipeline, name)
        if row is None or row.status != ex.SUCCEEDED:
            code = EXIT_RUN_FAILED
            if row is not None:
                text = f"execution {name}: {row.status}: {failure_of(pipeline, row)}".replace("\n", "\n  ")
                print(printable(text, keep_newlines=True), file=sys.stderr)
    return code


def failure_of(pipeline: LocalPipeline, row: ex.ExecutionRow) -> str:
    """The recorded cause (the job's FailureReason) beats the state machine's generic PipelineFailed."""
    names = trial_names(row.input)
    errors = [
        f"{t.trial}: {t.error}" if len(names) > 1 else t.error
        for t in pipeline.experiments.list_trials(row.experiment)
        if t.trial in names and t.error
    ]
    if errors:
        return "\n".join(errors)
    return f"{row.error}: {row.cause}"


def wait_for(pipeline: LocalPipeline, name: str) -> ex.ExecutionRow | None:
    while True:
        row = pipeline.executions.get(name)
        if row is None or row.status not in ex.ACTIVE:
            return row
        time.sleep(1)

