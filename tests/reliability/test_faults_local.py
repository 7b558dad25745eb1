"""Faults, through the real state machine on the local executor with the real local integrations and
the real RecordResults handler. The ML code is a tiny bundle of our own (``train.py`` /
``evaluation.py`` that raise, overrun, kill themselves or write garbage), pushed to ``code/<hash>``
and named by the manifest, so no training runs. The executor's sleep and jitter are injected through
``LocalPipeline.sleep`` / ``.random``: retries do not wait, and the delays asked for are asserted.

For each fault: the execution's final status, the states it went through, how often the failing
Task was attempted and the backoff between attempts, the trial's status and cause, the notification
printed, and that no trial is left InProgress.
"""

from __future__ import annotations

import io
import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aws.evaluation_docs import evaluation_doc, score

from nyanops.code_bundle import build_bundle, push_bundle
from nyanops.core.execution_input import trial_run
from nyanops.core.experiments import ExperimentBusy, TrialRecord
from nyanops.local.asl import TaskContext, TaskFailed
from nyanops.local.executions import ExecutionRow
from nyanops.local.experiment_store import SQLiteExperimentStore
from nyanops.local.integrations import LocalSageMaker
from nyanops.local.runner import LocalPipeline

from .corpus import BASE_OBJECTS, CLASSES, manifest

TRAIN_PY = '''\
import os, pathlib, signal, sys, time
MODE = {mode!r}
print("Epoch 1/1", flush=True)
print("train Loss: 0.5000 Acc: 0.7000", flush=True)
print("val Loss: 0.6000 Acc: 0.6500", flush=True)
if MODE == "raise":
    raise RuntimeError("CUDA out of memory (simulated by the reliability tests)")
if MODE == "overrun":
    time.sleep(60)
if MODE == "kill":
    os.kill(os.getpid(), signal.SIGKILL)
pathlib.Path(os.environ["SM_MODEL_DIR"], "model.pth").write_bytes(b"stub weights")
'''

EVALUATION_PY = '''\
import argparse, json, os, pathlib, shutil
MODE = {mode!r}
parser = argparse.ArgumentParser()
for name in ("--model-dir", "--test-dir", "--output-dir", "--expected-test-hash"):
    parser.add_argument(name)
args = parser.parse_args()
if MODE == "raise":  # as ml_code/job_contract.py does: the reason to /opt/ml/output/message (ExitMessage)
    reason = "model.tar.gz holds no model.pth (simulated by the reliability tests)"
    pathlib.Path(os.environ["SM_OUTPUT_DIR"], "message").write_text("error: ValueError: " + reason)
    raise ValueError(reason)
out = pathlib.Path(args.output_dir, "evaluation.json")
if MODE == "garbage":
    out.write_text("{{ not json")
else:
    # The report prepared with the test, signed with the identity the state machine gives the job (as
    # evaluation_report.build_evaluation_report does from the same environment variables).
    doc = json.loads(pathlib.Path(__file__).with_name("evaluation.json").read_text())
    doc["job"] = {{"execution": os.environ["NYANOPS_EXECUTION"],
                  "processing_job": os.environ["NYANOPS_PROCESSING_JOB"]}}
    out.write_text(json.dumps(doc))
'''


@dataclass
class Run:
    row: ExecutionRow
    trial: TrialRecord
    states: list[str]
    attempts: dict[str, int]
    sleeps: list[float]
    printed: str


@pytest.fixture
def sleeps(pipeline: LocalPipeline) -> list[float]:
    delays: list[float] = []
    pipeline.sleep = delays.append
    pipeline.random = lambda: 1.0  # FULL jitter at its maximum: the delays are the backoff ceiling
    return delays


def run_once(pipeline: LocalPipeline, tmp_path: Path, sleeps: list[float], console: io.StringIO,
             train: str = "ok", evaluation: str = "ok", wrong: int = 1) -> Run:
    for key, body in BASE_OBJECTS:
        pipeline.store.put(key, body)
    code = tmp_path / f"ml_code-{train}-{evaluation}"
    code.mkdir()
    (code / "train.py").write_text(TRAIN_PY.format(mode=train))
    (code / "evaluation.py").write_text(EVALUATION_PY.format(mode=evaluation))
    (code / "evaluation.json").write_text(json.dumps(evaluation_doc(wrong, CLASSES)))
    bundle = build_bundle(code)
    push_bundle(pipeline.store, bundle)
    pipeline.store.put("manifests/fault.json", manifest(code=f"code/{bundle.hash}"))
    [started] = pipeline.fire("manifests/fault.json")
    assert started.outcome.value == "started", started
    row = pipeline.execute(started.execution_name)
    events = pipeline.executions.events(row.name)
    states = [e["state"] for e in events if e["type"].endswith("StateEntered")]
    attempts: dict[str, int] = {}
    for e in events:
        if e["type"] == "TaskScheduled":
            attempts[e["state"]] = attempts.get(e["state"], 0) + 1
    trials = pipeline.experiments.list_trials()
    assert [t.status for t in trials if t.status == "InProgress"] == [], "a trial was left in progress"
    [trial] = trials
    return Run(row, trial, states, attempts, list(sleeps), console.getvalue())


# The run's one trial is the Map's one iteration; its failure is recorded there, then compared and notified once.
START = ["Trials", "RegisterTrial", "ReuseOrTrain"]
FAILED_TAIL = ["RecordFailure", "TrialFailed", "Summarize", "Notify", "SweepOutcome", "PipelineFailed"]
FAILURE_PATH = [*START, "Train", *FAILED_TAIL]
SUCCESS_PATH = [*START, "Train", "TrainingCompleted", "Evaluate", "RecordResults", "ChampionToRescore",
                "TrialCompleted", "Summarize", "Notify", "SweepOutcome", "Done"]
EVALUATED = [*START, "Train", "TrainingCompleted", "Evaluate"]
SUBJECT = f"[notification] nyanops: cats macro_f1 {score(1):.3f} (new best)"


def assert_failed(run: Run, states: list[str], cause: str) -> None:
    assert run.row.status == "FAILED" and run.row.error == "PipelineFailed"
    assert run.states == states
    assert run.trial.status == "Failed" and not run.trial.is_best
    assert run.trial.error.startswith(cause), run.trial.error
    assert "[notification] nyanops: cats run failed\n" in run.printed
    assert f"  {run.trial.trial}  failed: {' '.join(cause.split())}" in run.printed


def test_training_script_raises(pipeline: LocalPipeline, tmp_path: Path, sleeps: list[float],
                                console: io.StringIO) -> None:
    run = run_once(pipeline, tmp_path, sleeps, console, train="raise")
    assert_failed(run, FAILURE_PATH, "States.TaskFailed: AlgorithmError: exit code 1\n")
    assert "RuntimeError: CUDA out of memory (simulated by the reliability tests)" in run.trial.error
    assert run.attempts["Train"] == 1 and run.sleeps == []  # a script error is not retried


def test_training_exceeds_its_stopping_condition(pipeline: LocalPipeline, tmp_path: Path, sleeps: list[float],
                                                 console: io.StringIO) -> None:
    # PipelineSettings refuses less than 60 s (a product limit); the test shortens only this run's input.
    pipeline.settings = pipeline.settings.model_copy(update={"max_runtime_seconds": 1})
    run = run_once(pipeline, tmp_path, sleeps, console, train="overrun")
    assert trial_run(run.row.input, 0)["training"]["stopping_condition"] == {"MaxRuntimeInSeconds": 1}
    assert_failed(run, FAILURE_PATH,
                  "States.TaskFailed: training job Stopped: MaxRuntimeExceeded: the job ran longer than its 1 s "
                  "stopping condition")
    assert run.attempts["Train"] == 1 and run.sleeps == []
    assert run.row.duration_seconds is not None and run.row.duration_seconds < 20


def test_training_process_is_killed(pipeline: LocalPipeline, tmp_path: Path, sleeps: list[float],
                                    console: io.StringIO) -> None:
    run = run_once(pipeline, tmp_path, sleeps, console, train="kill")
    assert_failed(run, FAILURE_PATH, "States.TaskFailed: AlgorithmError: exit code -9")
    assert run.attempts["Train"] == 1 and run.sleeps == []


def test_evaluation_fails(pipeline: LocalPipeline, tmp_path: Path, sleeps: list[float],
                          console: io.StringIO) -> None:
    run = run_once(pipeline, tmp_path, sleeps, console, evaluation="raise")
    # A processing job's FailureReason is SageMaker's generic one; the script's reason is its ExitMessage.
    assert_failed(run, [*EVALUATED, *FAILED_TAIL],
                  "States.TaskFailed: error: ValueError: model.tar.gz holds no model.pth")
    failed = [e for e in pipeline.executions.events(run.row.name) if e["type"] == "TaskFailed"]
    described = json.loads(failed[0]["detail"]["cause"])
    assert described["FailureReason"] == "AlgorithmError: See job logs for more information"
    assert described["ExitMessage"].startswith("error: ValueError: model.tar.gz holds no model.pth")
    assert "ValueError: model.tar.gz holds no model.pth" in run.trial.error
    assert run.attempts == {"RegisterTrial": 1, "Train": 1, "Evaluate": 1, "RecordFailure": 1, "Summarize": 1,
                            "Notify": 1}
    # The processing job's reason (its ExitMessage) is what is recorded and notified, not a generic text.
    describe = json.loads((pipeline.root / "jobs" / f"{run.row.name}-eval" / "describe.json").read_text())
    assert describe["ExitMessage"] in run.trial.error


def test_evaluation_writes_an_invalid_report(pipeline: LocalPipeline, tmp_path: Path, sleeps: list[float],
                                             console: io.StringIO) -> None:
    """RecordResults raises (not retried: the same file would fail again) → recorded as failed."""
    run = run_once(pipeline, tmp_path, sleeps, console, evaluation="garbage")
    assert_failed(run, [*EVALUATED, "RecordResults", *FAILED_TAIL], "EvaluationRefused: s3://nyanops-local/runs/")
    assert "evaluation.json: not JSON" in run.trial.error
    assert run.attempts["RecordResults"] == 1 and run.sleeps == []


class FlakyStore(SQLiteExperimentStore):
    """The SQLite store, but the best-model ``decision`` / ``fail_trial`` first raise the given exceptions."""

    def __init__(self, base: SQLiteExperimentStore, complete: list[Exception] | None = None,
                 fail: list[Exception] | None = None) -> None:
        super().__init__(base._db)
        self.complete_errors, self.fail_errors = list(complete or []), list(fail or [])
        self.calls: list[str] = []

    @contextmanager
    def decision(self, experiment: str) -> Iterator[Any]:
        self.calls.append("complete")
        if self.complete_errors:
            raise self.complete_errors.pop(0)
        with super().decision(experiment) as session:
            yield session

    def fail_trial(self, experiment: str, trial: str, error: str, finished_at: datetime) -> None:
        self.calls.append("fail")
        if self.fail_errors:
            raise self.fail_errors.pop(0)
        super().fail_trial(experiment, trial, error, finished_at)


def busy() -> ExperimentBusy:
    return ExperimentBusy("experiment 'cats' is locked by another evaluation")


def test_record_results_busy_once_is_retried(pipeline: LocalPipeline, tmp_path: Path, sleeps: list[float],
                                             console: io.StringIO) -> None:
    pipeline.experiments = store = FlakyStore(pipeline.experiments, complete=[busy()])  # type: ignore[arg-type]
    run = run_once(pipeline, tmp_path, sleeps, console)
    assert run.row.status == "SUCCEEDED" and run.states == SUCCESS_PATH
    assert run.attempts["RecordResults"] == 2 and run.sleeps == [2.0]
    # the decision (busy, then done), then the model registry's hand-over in its own session of the lock
    assert store.calls == ["complete", "complete", "complete"]
    assert run.trial.status == "Completed" and run.trial.is_best
    assert "RecordResults  ExperimentBusy; retry 1 in 2.0 s" in run.printed
    assert SUBJECT in run.printed


def test_record_results_busy_forever_gives_up_and_records_the_failure(
        pipeline: LocalPipeline, tmp_path: Path, sleeps: list[float], console: io.StringIO) -> None:
    pipeline.experiments = FlakyStore(pipeline.experiments, complete=[busy() for _ in range(7)])  # type: ignore
    run = run_once(pipeline, tmp_path, sleeps, console)
    assert_failed(run, [*EVALUATED, "RecordResults", *FAILED_TAIL],
                  "ExperimentBusy: experiment 'cats' is locked by another evaluation")
    assert run.attempts["RecordResults"] == 7  # 1 + MaxAttempts 6
    assert run.sleeps == [2.0, 4.0, 8.0, 16.0, 32.0, 60.0]  # BackoffRate 2, MaxDelaySeconds 60


def test_record_results_other_error_is_recorded_not_retried(
        pipeline: LocalPipeline, tmp_path: Path, sleeps: list[float], console: io.StringIO) -> None:
    error = sqlite3.OperationalError("disk I/O error")
    pipeline.experiments = FlakyStore(pipeline.experiments, complete=[error])  # type: ignore[arg-type]
    run = run_once(pipeline, tmp_path, sleeps, console)
    assert_failed(run, [*EVALUATED, "RecordResults", *FAILED_TAIL], "OperationalError: disk I/O error")
    assert run.attempts["RecordResults"] == 1 and run.sleeps == []


def test_recording_the_failure_fails_too(pipeline: LocalPipeline, tmp_path: Path, sleeps: list[float],
                                         console: io.StringIO) -> None:
    """Training fails and RecordFailure raises: the iteration ends TrialNotRecorded with both error names, the
    comparison records the trial as failed with them and notifies; the trial must not stay InProgress."""
    error = sqlite3.OperationalError("database disk image is malformed")
    pipeline.experiments = FlakyStore(pipeline.experiments, fail=[error])  # type: ignore[arg-type]
    run = run_once(pipeline, tmp_path, sleeps, console, train="raise")
    assert run.row.status == "FAILED"
    assert run.states == [*START, "Train", "RecordFailure", "TrialNotRecorded", "Summarize", "Notify",
                          "SweepOutcome", "PipelineFailed"]
    assert "[notification] nyanops: cats run failed\n" in run.printed
    assert run.trial.status == "Failed"
    assert run.trial.error == "States.TaskFailed (recording the failure failed: OperationalError)"
    assert f"  {run.trial.trial}  failed: {run.trial.error}" in run.printed


def failing_publish(pipeline: LocalPipeline, times: int) -> list[str]:
    attempts: list[str] = []
    original = pipeline.progress.publish

    def publish(topic: str, subject: str, message: str) -> None:
        attempts.append(subject)
        if len(attempts) <= times:
            raise ConnectionError("SNS endpoint unreachable (simulated)")
        original(topic, subject, message)

    pipeline.progress.publish = publish  # type: ignore[method-assign]
    return attempts


def test_notification_cannot_be_sent(pipeline: LocalPipeline, tmp_path: Path, sleeps: list[float],
                                     console: io.StringIO) -> None:
    attempts = failing_publish(pipeline, times=99)
    run = run_once(pipeline, tmp_path, sleeps, console)
    assert run.row.status == "SUCCEEDED"
    assert run.states == [*SUCCESS_PATH[:-2], "NotificationNotSent", "SweepOutcome", "Done"]
    assert run.attempts["Notify"] == 4 and len(attempts) == 4 and run.sleeps == [2.0, 4.0, 8.0]
    assert run.trial.status == "Completed" and run.trial.is_best  # the result is kept
    assert run.row.output["notification_error"] == {"Error": "States.TaskFailed",
                                                    "Cause": "SNS endpoint unreachable (simulated)"}


def test_notification_recovers_after_a_retry(pipeline: LocalPipeline, tmp_path: Path, sleeps: list[float],
                                             console: io.StringIO) -> None:
    failing_publish(pipeline, times=1)
    run = run_once(pipeline, tmp_path, sleeps, console)
    assert run.row.status == "SUCCEEDED" and run.states == SUCCESS_PATH
    assert run.attempts["Notify"] == 2 and run.sleeps == [2.0]
    assert SUBJECT in run.printed


def test_failure_notification_cannot_be_sent(pipeline: LocalPipeline, tmp_path: Path, sleeps: list[float],
                                             console: io.StringIO) -> None:
    failing_publish(pipeline, times=99)
    run = run_once(pipeline, tmp_path, sleeps, console, train="raise")
    assert run.row.status == "FAILED" and run.states == [*FAILURE_PATH[:-2], "NotificationNotSent", "SweepOutcome",
                                                         "PipelineFailed"]
    assert run.attempts["Notify"] == 4 and run.sleeps == [2.0, 4.0, 8.0]
    assert run.trial.status == "Failed" and "RuntimeError: CUDA out of memory" in run.trial.error


def sagemaker_refuses(monkeypatch: pytest.MonkeyPatch, method: str, error: str, times: int,
                      code: str = "ThrottlingException") -> list[int]:
    """The local SageMaker answers ``error`` (with the AWS SDK's cause naming ``code``) ``times`` times first."""
    calls: list[int] = []
    original: Callable[..., Any] = getattr(LocalSageMaker, method)

    def refusing(self: LocalSageMaker, params: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
        calls.append(ctx.attempt)
        if len(calls) <= times:
            raise TaskFailed(f"SageMaker.{error}",
                             f"Rate exceeded (Service: AmazonSageMaker; Status Code: 400; Error Code: {code}; "
                             "Request ID: 0f0e0d0c-0000-4000-8000-000000000000; Proxy: null)")
        return original(self, params, ctx)

    monkeypatch.setattr(LocalSageMaker, method, refusing)
    return calls


THROTTLED_TRAIN = [*START, "Train", "TrainApiError", "TrainBackoff", "TrainWait", "Train"]


def test_sagemaker_throttles_training_once(pipeline: LocalPipeline, tmp_path: Path, sleeps: list[float],
                                           console: io.StringIO, monkeypatch: pytest.MonkeyPatch) -> None:
    """Step Functions reports SageMaker's throttling as SageMaker.AmazonSageMakerException: the Choice on the
    cause retries it after the backoff delay."""
    calls = sagemaker_refuses(monkeypatch, "create_training_job", "AmazonSageMakerException", times=1)
    run = run_once(pipeline, tmp_path, sleeps, console)
    assert run.row.status == "SUCCEEDED" and run.states == [*THROTTLED_TRAIN, *SUCCESS_PATH[len(START) + 1 :]]
    assert len(calls) == 2 and run.attempts["Train"] == 2 and run.sleeps == [30.0]
    # The counter lives in the trial's iteration (its state), as its TrainBackoff left it.
    [backoff] = [e["detail"]["output"] for e in pipeline.executions.events(run.row.name)
                 if e["type"] == "PassStateExited" and e["state"] == "TrainBackoff"]
    assert backoff["retries"]["train"] == {"count": 1, "wait_seconds": 30}
    assert run.trial.status == "Completed" and run.trial.is_best


def test_sagemaker_validation_errors_are_not_retried(pipeline: LocalPipeline, tmp_path: Path, sleeps: list[float],
                                                     console: io.StringIO, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = sagemaker_refuses(monkeypatch, "create_training_job", "AmazonSageMakerException", times=99,
                              code="ValidationException")
    run = run_once(pipeline, tmp_path, sleeps, console)
    assert_failed(run, [*START, "Train", "TrainApiError", "SageMakerApiFailed", *FAILED_TAIL],
                  "SageMaker.AmazonSageMakerException: Rate exceeded (Service: AmazonSageMaker; Status Code: 400; "
                  "Error Code: ValidationException")
    assert len(calls) == 1 and run.sleeps == []


def test_sagemaker_throttles_evaluation_once(pipeline: LocalPipeline, tmp_path: Path, sleeps: list[float],
                                             console: io.StringIO, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = sagemaker_refuses(monkeypatch, "create_processing_job", "AmazonSageMakerException", times=1)
    run = run_once(pipeline, tmp_path, sleeps, console)
    assert run.row.status == "SUCCEEDED" and len(calls) == 2
    assert run.attempts["Evaluate"] == 2 and run.sleeps == [30.0]
    assert run.states[5:9] == ["Evaluate", "EvaluateApiError", "EvaluateBackoff", "EvaluateWait"]


def test_sagemaker_throttling_that_persists_is_recorded(pipeline: LocalPipeline, tmp_path: Path,
                                                        sleeps: list[float], console: io.StringIO,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    calls = sagemaker_refuses(monkeypatch, "create_training_job", "AmazonSageMakerException", times=99)
    run = run_once(pipeline, tmp_path, sleeps, console)
    assert run.row.status == "FAILED" and len(calls) == 5  # 1 + 4 retries
    assert run.sleeps == [30.0, 60.0, 120.0, 240.0]
    assert run.trial.error.startswith("SageMaker.AmazonSageMakerException: Rate exceeded")
    assert run.states[-8:] == ["TrainApiError", "SageMakerApiFailed", *FAILED_TAIL]


def test_sagemaker_resource_limit_once_is_retried(pipeline: LocalPipeline, tmp_path: Path, sleeps: list[float],
                                                  console: io.StringIO, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = sagemaker_refuses(monkeypatch, "create_training_job", "ResourceLimitExceededException", times=1)
    run = run_once(pipeline, tmp_path, sleeps, console)
    assert run.row.status == "SUCCEEDED" and run.states == SUCCESS_PATH
    assert calls == [0, 1] and run.attempts["Train"] == 2 and run.sleeps == [30.0]
    assert "Train          SageMaker.ResourceLimitExceededException; retry 1 in 30.0 s" in run.printed


def test_sagemaker_resource_limit_persists(pipeline: LocalPipeline, tmp_path: Path, sleeps: list[float],
                                           console: io.StringIO, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = sagemaker_refuses(monkeypatch, "create_training_job", "ResourceLimitExceededException", times=99)
    run = run_once(pipeline, tmp_path, sleeps, console)
    assert_failed(run, FAILURE_PATH, "SageMaker.ResourceLimitExceededException: Rate exceeded")
    assert len(calls) == 5 and run.attempts["Train"] == 5  # 1 + MaxAttempts 4
    assert run.sleeps == [30.0, 60.0, 120.0, 240.0]  # IntervalSeconds 30, BackoffRate 2, cap 600


def test_jitter_spreads_the_retries(pipeline: LocalPipeline, tmp_path: Path, sleeps: list[float],
                                   console: io.StringIO, monkeypatch: pytest.MonkeyPatch) -> None:
    """FULL jitter: each delay is a random share of the backoff ceiling (here a quarter)."""
    pipeline.random = lambda: 0.25
    sagemaker_refuses(monkeypatch, "create_training_job", "ResourceLimitExceededException", times=2)
    run = run_once(pipeline, tmp_path, sleeps, console)
    assert run.row.status == "SUCCEEDED" and run.sleeps == [7.5, 15.0]


@pytest.fixture(autouse=True)
def _no_stray_trials(pipeline: LocalPipeline) -> Iterator[None]:
    yield
    assert all(t.status != "InProgress" for t in SQLiteExperimentStore(pipeline.db).list_trials())
