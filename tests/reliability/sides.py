"""One interface over the two sides a corpus case runs on: the local pipeline (a directory bucket, SQLite,
the local job records) and moto (versioned S3, Step Functions, SNS, SageMaker). A case written against
``Side`` runs unchanged on both (``corpus_record.py``); ``LocalSide`` is here, ``MotoSide`` in
``tests/aws/side_moto.py``.

Events are EventBridge ``Object Created`` events; ``send`` hands one to the real StartPipeline handler,
``record`` drives the real RecordResults handler, ``evaluate`` plays the Evaluate job (its record as
DescribeProcessingJob would report it, and the file it wrote).
"""

from __future__ import annotations

import copy
import io
import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from nyanops.core import layout
from nyanops.core.execution_input import trial_run
from nyanops.core.experiments import TrialRecord
from nyanops.core.record_results import RecordResultsDeps, record
from nyanops.local import integrations
from nyanops.local.database import connect
from nyanops.local.experiment_store import SQLiteExperimentStore
from nyanops.local.integrations import LambdaContext, LocalProcessingJobs
from nyanops.local.runner import LocalPipeline

from .corpus import BASE_OBJECTS


class Side(Protocol):
    name: str
    keeps_versions: bool  # S3 keeps every version; the local bucket only the newest

    def put(self, key: str, body: bytes) -> dict[str, Any]: ...
    def send(self, event: dict[str, Any]) -> dict[str, Any]: ...
    def refusal(self, key: str) -> dict[str, Any] | None: ...
    def keys(self, prefix: str) -> list[str]: ...
    def notifications(self) -> list[tuple[str, str]]: ...
    def executions(self) -> list[str]: ...
    def reads(self) -> list[str]: ...
    def run_input(self, execution: str) -> dict[str, Any]:
        """The state the execution's (first) trial's states get: the shared input and that trial (trial_run)."""
        ...
    def record(self, mode: str, run: dict[str, Any]) -> dict[str, Any]: ...
    def evaluate(self, run: dict[str, Any], body: bytes, *, started: datetime | None = None,
                 ended: datetime | None = None, status: str = "Completed", exit_message: str = "",
                 rescore: dict[str, Any] | None = None) -> None:
        """The run's processing job (or, with ``rescore``, the champion's re-scoring job it asked for) wrote
        ``body``."""
        ...
    def trials(self, experiment: str) -> list[TrialRecord]: ...
    def experiments(self) -> list[str]: ...
    def record_at_once(self, mode: str, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """RecordResults for every run at the same moment (separate invocations, released together)."""
        ...


def at_once(calls: list[Callable[[], dict[str, Any]]]) -> list[dict[str, Any]]:
    """Run ``calls`` in threads released by one barrier; their answers in order (the first error raised)."""
    barrier = threading.Barrier(len(calls))
    answers: list[dict[str, Any] | None] = [None] * len(calls)
    errors: list[BaseException] = []

    def one(i: int) -> None:
        barrier.wait()
        try:
            answers[i] = calls[i]()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    if errors:
        raise errors[0]
    assert all(a is not None for a in answers), "a record did not finish"
    return [a for a in answers if a is not None]


def with_object(event: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A copy of ``event`` with ``detail.object`` fields replaced (``None`` removes one)."""
    out = copy.deepcopy(event)
    obj = out["detail"]["object"]
    for name, value in fields.items():
        key = name.replace("_", "-")
        if value is None:
            obj.pop(key, None)
        else:
            obj[key] = value
    return out


def later(hours: float) -> datetime:
    return datetime.now(UTC) + timedelta(hours=hours)


class LocalSide:
    name = "local"
    keeps_versions = False

    def __init__(self, pipeline: LocalPipeline, console: io.StringIO) -> None:
        self.pipeline, self.console = pipeline, console
        for key, body in BASE_OBJECTS:
            pipeline.store.put(key, body)
        self._reads: list[str] = []
        store = pipeline.store
        original = store.get

        def spy(key: str, version_id: str | None = None) -> bytes:
            self._reads.append(key)
            return original(key, version_id)

        store.get = spy  # type: ignore[method-assign]

    def put(self, key: str, body: bytes) -> dict[str, Any]:
        self.pipeline.store.put(key, body)
        return self.pipeline.upload_event(key)

    def send(self, event: dict[str, Any]) -> dict[str, Any]:
        handler = self.pipeline.function("StartPipeline")
        [result] = handler.lambda_handler(event, LambdaContext("StartPipeline"))["results"]
        return result

    def refusal(self, key: str) -> dict[str, Any] | None:
        info = self.pipeline.store.head(layout.rejection_key(key))
        if info is None:
            return None
        return json.loads(self.pipeline.store.path(info.key).read_bytes())

    def keys(self, prefix: str) -> list[str]:
        return [o.key for o in self.pipeline.store.list(prefix)]

    def notifications(self) -> list[tuple[str, str]]:
        out = []
        for block in self.console.getvalue().split("[notification] ")[1:]:
            subject, _, rest = block.partition("\n")
            lines = [line[4:] for line in rest.splitlines() if line.startswith("    ")]
            out.append((subject, "\n".join(lines)))
        return out

    def executions(self) -> list[str]:
        return [row.name for row in self.pipeline.executions.list()]

    def reads(self) -> list[str]:
        return list(self._reads)

    def run_input(self, execution: str) -> dict[str, Any]:
        row = self.pipeline.executions.get(execution)
        assert row is not None
        return trial_run(copy.deepcopy(row.input), 0)  # the state the run's (first) trial's states get

    def record(self, mode: str, run: dict[str, Any]) -> dict[str, Any]:
        handler = self.pipeline.function("RecordResults")
        return handler.lambda_handler({"mode": mode, "run": run}, LambdaContext("RecordResults"))

    def evaluate(self, run: dict[str, Any], body: bytes, *, started: datetime | None = None,
                 ended: datetime | None = None, status: str = "Completed", exit_message: str = "",
                 rescore: dict[str, Any] | None = None) -> None:
        begin = started or datetime.now(UTC) - timedelta(seconds=1)
        job = rescore or run["evaluation"]
        self.pipeline.store.put(layout.parse_s3_uri(job["output_s3_uri"].rstrip("/") + "/evaluation.json")[1], body)
        describe = {
            "ProcessingJobName": job["job_name"], "ProcessingJobStatus": status,
            "ProcessingOutputConfig": job["output_config"],
            "ProcessingStartTime": begin.isoformat(),
            "ProcessingEndTime": (ended or datetime.now(UTC)).isoformat(),
        }
        if exit_message:
            describe["ExitMessage"] = exit_message
        integrations.record_processing_job(self.pipeline.root / "jobs", describe)

    def trials(self, experiment: str) -> list[TrialRecord]:
        return self.pipeline.experiments.list_trials(experiment)

    def experiments(self) -> list[str]:
        return sorted({t.experiment for t in self.pipeline.experiments.list_trials()})

    def record_at_once(self, mode: str, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # Each local RecordResults runs in its own process with its own connection (five workers at once);
        # here each thread opens its own, as such a process would.
        def call(run: dict[str, Any]) -> Callable[[], dict[str, Any]]:
            own = SQLiteExperimentStore(connect(self.pipeline.root / "nyanops.db"))
            deps = RecordResultsDeps(self.pipeline.store, own, LocalProcessingJobs(self.pipeline.root / "jobs"))
            return lambda: record({"mode": mode, "run": run}, deps)

        return at_once([call(run) for run in runs])
