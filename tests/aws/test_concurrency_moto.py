"""Duplicates and concurrency on the AWS side (moto).

* The same EventBridge event delivered three times (a manifest, and a dataset marker) → one execution.
* Five manifests for one experiment uploaded at once → five executions running at the same time in
  moto's Step Functions engine (the real ASL; SageMaker ``.sync`` faked and RecordResults run
  in-process by ``moto_sfn_patches``) → five trials, exactly one best, the highest score. The lock
  itself is proven under interleaving in ``test_best_concurrency.py``; here it is the whole workflow.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote_plus

import pytest

from nyanops.aws.s3_store import S3ObjectStore
from nyanops.aws.sagemaker_experiments import SageMakerExperimentStore
from nyanops.aws.sagemaker_jobs import SageMakerProcessingJobs
from nyanops.core import layout
from nyanops.core.record_results import RecordResultsDeps

from .conftest import BUCKET, DATASET_ID, EXAMPLE_MANIFEST, RECORD_RESULTS_ARN, World
from .evaluation_docs import score
from .moto_sfn_patches import FakeSageMaker, patched_engine
from .test_best_concurrency import best_flags, fast_lock


def invoke(world: World, event: dict[str, Any], ctx: Any) -> dict[str, Any]:
    [result] = world.handlers[0].lambda_handler(event, ctx)["results"]
    return result


@pytest.fixture
def ready(world: World) -> World:
    world.put_dataset(per_split=10)
    world.put_code()
    return world


def test_the_same_manifest_event_three_times_is_one_execution(ready: World, lambda_context: Any) -> None:
    key = "manifests/three times ねこ.json"
    info = ready.put(key, json.dumps(EXAMPLE_MANIFEST).encode())
    event = ready.eventbridge(quote_plus(key, safe="/"), info)
    results = [invoke(ready, event, lambda_context) for _ in range(3)]
    assert [r["outcome"] for r in results] == ["started", "duplicate", "duplicate"]
    assert len({r["execution_name"] for r in results}) == 1
    [execution] = ready.executions()
    assert execution["name"] == results[0]["execution_name"]
    assert ready.notifications() == []
    # The run itself is not served here (it fails at once): let it end before the next test's world starts.
    ready.wait(execution["executionArn"], timeout=60)


def test_the_same_dataset_marker_event_three_times_is_one_execution(world: World, lambda_context: Any) -> None:
    world.put_code()
    marker = world.put_dataset()
    event = world.eventbridge(layout.dataset_marker_key(DATASET_ID), marker["_upload"])
    assert [invoke(world, event, lambda_context)["outcome"] for _ in range(3)] == ["started", "duplicate", "duplicate"]
    [execution] = world.executions()
    world.wait(execution["executionArn"], timeout=60)  # not served here: let it end before the next test


def test_image_uploads_of_a_dataset_still_going_start_nothing(world: World, lambda_context: Any) -> None:
    world.put_code()
    world.put_dataset(marker=False)
    for key in world.keys(layout.dataset_prefix(DATASET_ID)):
        event = world.eventbridge(quote_plus(key, safe="/"), {"size": 1, "etag": "e", "version_id": None})
        assert invoke(world, event, lambda_context)["outcome"] == "ignored"
    assert world.executions() == [] and world.notifications() == [] and world.keys("rejected/") == []


@pytest.fixture
def execute_state_machine() -> bool:
    return True


@pytest.fixture
def engine(ready: World, lambda_context: Any) -> Iterator[tuple[World, FakeSageMaker]]:
    record_results = ready.handlers[1]
    record_results.set_deps(RecordResultsDeps(S3ObjectStore(ready.s3, BUCKET),
                                              SageMakerExperimentStore(ready.sm, fast_lock(ready)),
                                              SageMakerProcessingJobs(ready.sm)))
    fake = FakeSageMaker()
    with patched_engine(fake, {RECORD_RESULTS_ARN: lambda event: record_results.lambda_handler(event, lambda_context)}):
        yield ready, fake


def test_five_manifests_at_once_five_trials_one_best(engine: tuple[World, FakeSageMaker],
                                                     lambda_context: Any) -> None:
    world, fake = engine
    misses = {f"manifests/at-once-{i}.json": w for i, w in enumerate([3, 0, 4, 1, 2])}
    by_job: dict[str, int] = {}
    fake.wrong = lambda request: by_job[request["ProcessingJobName"]]
    fake.support = 10
    names = {}
    for key, wrong in misses.items():
        body = json.dumps({**EXAMPLE_MANIFEST, "comment": key, "force": True}).encode()  # five trainings
        info = world.put(key, body)
        result = invoke(world, world.eventbridge(quote_plus(key, safe="/"), info), lambda_context)
        assert result["outcome"] == "started"
        names[result["execution_name"]] = score(wrong, support=10)
        by_job[f"{result['execution_name']}-eval"] = wrong
    # All five are started before any is awaited: moto runs each execution in its own thread.
    arns = [e["executionArn"] for e in world.executions()]
    assert len(arns) == 5
    done = [world.wait(arn, timeout=60) for arn in arns]
    assert [d["status"] for d in done] == ["SUCCEEDED"] * 5, [d.get("error") for d in done]
    assert fake.request_errors == []
    spans = sorted((d["startDate"], d["stopDate"]) for d in done)
    assert any(spans[i + 1][0] < spans[i][1] for i in range(4)), f"the executions did not overlap: {spans}"
    trials = [t["TrialName"] for t in world.sm.list_trials(ExperimentName="cats")["TrialSummaries"]]
    assert sorted(trials) == sorted(names)
    flags = best_flags(world, trials)
    assert sum(flags.values()) == 1
    assert flags[max(names, key=names.__getitem__)] == 1
    for trial, value in names.items():
        component = world.trial_component(trial)
        assert component["Status"]["PrimaryStatus"] == "Completed"
        assert component["Parameters"]["macro_f1"]["NumberValue"] == pytest.approx(value)
    assert len(world.notifications()) == 5
    assert world.ddb.scan(TableName="nyanops-experiment-locks")["Items"] == []


def test_a_refused_upload_delivered_three_times_is_one_notification(ready: World, lambda_context: Any) -> None:
    key = "manifests/refused ねこ.json"
    info = ready.put(key, b"[]")
    event = ready.eventbridge(quote_plus(key, safe="/"), info)
    assert [invoke(ready, event, lambda_context)["outcome"] for _ in range(3)] == ["rejected"] * 3
    assert len(ready.notifications()) == 1
    assert ready.keys("rejected/") == [layout.rejection_key(key)]
    assert len(ready.versions(layout.rejection_key(key))) == 2  # written, then marked notified; not rewritten
    assert ready.executions() == []
