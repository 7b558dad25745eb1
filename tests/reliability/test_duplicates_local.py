"""Duplicates and concurrency on the local side.

* The same EventBridge event delivered three times starts exactly one execution.
* A dataset whose upload is still going (images arriving, no ``_dataset.json``) starts nothing; its
  marker then starts exactly one run.
* Five manifests for one experiment at once: five executions run concurrently by five worker
  processes, each with its own ``LocalPipeline`` on the same root (claims are atomic), through the
  real state machine, RecordResults handler and SQLite store. Only the SageMaker jobs are stubbed (a
  Describe-shaped result after botocore validates the real request; a schema-valid evaluation.json
  with a different score per run), so no training runs. Result: five trials, exactly one best, the max.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aws.evaluation_docs import evaluation_doc, score

from nyanops.core import layout
from nyanops.core.evaluation_report import job_from_environment
from nyanops.core.start_pipeline import Outcome
from nyanops.local import integrations
from nyanops.local.asl import TaskContext
from nyanops.local.integrations import LambdaContext, LocalSageMaker, validate_request
from nyanops.local.progress import Progress
from nyanops.local.runner import LocalPipeline

from .corpus import BASE_OBJECTS, CLASSES, image_tree, manifest, marker_bytes, prefixed

JOB_SECONDS = 0.4  # each stubbed job takes this long, so the five runs overlap


def seed(pipeline: LocalPipeline) -> None:
    for key, body in BASE_OBJECTS:
        pipeline.store.put(key, body)


def test_the_same_event_three_times_is_one_execution(pipeline: LocalPipeline) -> None:
    seed(pipeline)
    pipeline.store.put("manifests/triple.json", manifest())
    event = pipeline.upload_event("manifests/triple.json")
    handler = pipeline.function("StartPipeline")
    outcomes = [handler.lambda_handler(event, LambdaContext("StartPipeline"))["results"][0] for _ in range(3)]
    assert [o["outcome"] for o in outcomes] == ["started", "duplicate", "duplicate"]
    assert len({o["execution_name"] for o in outcomes}) == 1
    [row] = pipeline.executions.list()
    assert row.name == outcomes[0]["execution_name"]


def test_the_same_dataset_marker_event_three_times_is_one_execution(pipeline: LocalPipeline) -> None:
    seed(pipeline)
    files = image_tree("cats-triple")
    for key, body in prefixed("cats-triple", files):
        pipeline.store.put(key, body)
    marker = layout.dataset_marker_key("cats-triple")
    pipeline.store.put(marker, marker_bytes("cats-triple", files))
    outcomes = [pipeline.fire(marker)[0].outcome for _ in range(3)]
    assert outcomes == [Outcome.STARTED, Outcome.DUPLICATE, Outcome.DUPLICATE]
    assert len(pipeline.executions.list()) == 1


def test_a_dataset_still_uploading_starts_nothing(pipeline: LocalPipeline, console: io.StringIO) -> None:
    seed(pipeline)
    files = image_tree("cats-arriving")
    for key, body in prefixed("cats-arriving", files):
        pipeline.store.put(key, body)
        [result] = pipeline.fire(key)  # every image's own event
        assert result.outcome is Outcome.IGNORED
    assert pipeline.executions.list() == []
    assert list(pipeline.store.list(layout.REJECTED_PREFIX)) == []
    assert "[notification]" not in console.getvalue()
    marker = layout.dataset_marker_key("cats-arriving")
    pipeline.store.put(marker, marker_bytes("cats-arriving", files))
    assert pipeline.fire(marker)[0].outcome is Outcome.STARTED
    [row] = pipeline.executions.list()
    assert row.input["dataset"]["id"] == "cats-arriving" and row.input["source"]["kind"] == "dataset"


# -- five at once ------------------------------------------------------------------------------------------
def _tag(params: dict[str, Any], key: str) -> str:
    return next(t["Value"] for t in params["Tags"] if t["Key"] == key)


def _stub_jobs(misses: dict[str, int]) -> None:
    """Replace the two SageMaker jobs (in this worker process only) by stubs that keep the contract."""

    def training(self: LocalSageMaker, params: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
        validate_request("CreateTrainingJob", params)
        time.sleep(JOB_SECONDS)
        name = params["TrainingJobName"]
        out = self._local_key(params["OutputDataConfig"]["S3OutputPath"], "S3OutputPath").rstrip("/")
        model_key = f"{out}/{name}/output/model.tar.gz"
        self.store.put(model_key, b"stub model", "application/x-tar")
        return {
            "TrainingJobName": name,
            "TrainingJobStatus": "Completed",
            "SecondaryStatus": "Completed",
            "ModelArtifacts": {"S3ModelArtifacts": layout.s3_uri(self.store.bucket, model_key)},
        }

    def processing(self: LocalSageMaker, params: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
        validate_request("CreateProcessingJob", params)
        started = datetime.now(UTC).isoformat()
        time.sleep(JOB_SECONDS)
        out = next(o for o in params["ProcessingOutputConfig"]["Outputs"] if o["OutputName"] == "evaluation")
        prefix = self._local_key(out["S3Output"]["S3Uri"], "evaluation").rstrip("/")
        identity = job_from_environment(params["Environment"])
        doc = evaluation_doc(misses[_tag(params, "nyanops:execution")], CLASSES, job=identity)
        self.store.put(f"{prefix}/{layout.EVALUATION_FILE}", json.dumps(doc).encode())
        describe = {"ProcessingJobName": params["ProcessingJobName"], "ProcessingJobStatus": "Completed",
                    "ProcessingOutputConfig": params["ProcessingOutputConfig"], "ProcessingStartTime": started,
                    "ProcessingEndTime": datetime.now(UTC).isoformat()}
        integrations.record_processing_job(self.jobs_dir, describe)
        return describe

    LocalSageMaker.create_training_job = training  # type: ignore[method-assign]
    LocalSageMaker.create_processing_job = processing  # type: ignore[method-assign]


def _worker(root: Path, misses: dict[str, int], barrier: Any, results: Any) -> None:
    try:
        _stub_jobs(misses)
        pipeline = LocalPipeline(root, Progress(io.StringIO(), interactive=False))
        pipeline.machine  # noqa: B018 (load the ASL before the race starts)
        barrier.wait(30)
        done = pipeline.run_pending()
        results.put(("ok", [(row.name, row.status) for row in done]))
    except BaseException:
        results.put(("error", traceback.format_exc()))


def test_five_manifests_for_one_experiment_at_once(pipeline: LocalPipeline) -> None:
    seed(pipeline)
    names = []
    for i in range(5):
        key = f"manifests/at-once-{i}.json"
        pipeline.store.put(key, manifest(comment=f"run {i}"))
        [result] = pipeline.fire(key)
        assert result.outcome is Outcome.STARTED
        names.append(result.execution_name)
    assert sorted(pipeline.executions.pending()) == sorted(names)
    misses = dict(zip(names, [3, 0, 4, 1, 2], strict=True))
    scores = {name: score(wrong) for name, wrong in misses.items()}
    integrations._sagemaker_model()  # botocore's model, loaded once before forking

    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(5), ctx.Queue()
    workers = [ctx.Process(target=_worker, args=(pipeline.root, misses, barrier, results)) for _ in range(5)]
    for w in workers:
        w.start()
    reports = [results.get(timeout=60) for _ in workers]
    for w in workers:
        w.join(10)
    assert [kind for kind, _ in reports] == ["ok"] * 5, [detail for kind, detail in reports if kind != "ok"]

    ran = [entry for _, done in reports for entry in done]
    assert sorted(ran) == sorted((name, "SUCCEEDED") for name in names), "each execution ran exactly once"
    rows = {n: pipeline.executions.get(n) for n in names}
    assert all(r is not None and r.status == "SUCCEEDED" for r in rows.values())
    spans = sorted((r.started_at, r.stopped_at) for r in rows.values() if r)
    assert any(spans[i + 1][0] < spans[i][1] for i in range(len(spans) - 1)), f"the runs did not overlap: {spans}"

    trials = pipeline.experiments.list_trials("cats")
    assert sorted(t.trial for t in trials) == sorted(names)
    assert {t.status for t in trials} == {"Completed"}
    assert [t.trial for t in trials if t.is_best] == [max(scores, key=scores.__getitem__)]
    assert {t.trial: t.metrics["macro_f1"] for t in trials} == scores


def test_a_refused_upload_delivered_three_times_is_one_record_and_one_notification(
    pipeline: LocalPipeline, console: io.StringIO
) -> None:
    seed(pipeline)
    pipeline.store.put("manifests/bad twice.json", manifest(hyperparameters={"epochs": 0}))
    outcomes = [pipeline.fire("manifests/bad twice.json")[0].outcome for _ in range(3)]
    assert outcomes == [Outcome.REJECTED] * 3
    assert console.getvalue().count("[notification] nyanops: upload refused: manifests/bad twice.json") == 1
    records = [o.key for o in pipeline.store.list(layout.REJECTED_PREFIX)]
    assert records == ["rejected/manifests/bad twice.json.error.json"]
    assert pipeline.executions.list() == []


def test_a_refusal_whose_notification_failed_is_notified_on_redelivery(
    pipeline: LocalPipeline, console: io.StringIO
) -> None:
    """SNS down during the first delivery: the handler raises (so EventBridge/Lambda retry the event);
    the retry finds the record not yet notified and notifies."""
    seed(pipeline)
    pipeline.store.put("manifests/bad.json", b"{")
    original, calls = pipeline.progress.publish, []

    def publish(topic: str, subject: str, message: str) -> None:
        calls.append(subject)
        if len(calls) == 1:
            raise ConnectionError("SNS endpoint unreachable (simulated)")
        original(topic, subject, message)

    pipeline.progress.publish = publish  # type: ignore[method-assign]
    try:
        pipeline.fire("manifests/bad.json")
    except ConnectionError:
        pass
    else:
        raise AssertionError("the handler must fail so the event is delivered again")
    record = json.loads(pipeline.store.get("rejected/manifests/bad.json.error.json"))
    assert record["notified"] is False and "(file): not valid JSON" in record["message"]
    assert pipeline.fire("manifests/bad.json")[0].outcome is Outcome.REJECTED
    assert pipeline.fire("manifests/bad.json")[0].outcome is Outcome.REJECTED
    assert len(calls) == 2
    assert console.getvalue().count("[notification] nyanops: upload refused: manifests/bad.json") == 1
    assert json.loads(pipeline.store.get("rejected/manifests/bad.json.error.json"))["notified"] is True
