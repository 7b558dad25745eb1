"""Every file in events/ runs through its handler against the moto world it describes
(bucket nyanops-example-bucket, us-east-1: the dataset, the code bundle, the manifests)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from nyanops.aws.dataset_registry import DynamoDatasetRegistry
from nyanops.core import console, layout
from nyanops.core import dataset as datasets
from nyanops.core.execution_input import trial_run

from .conftest import BUCKET, CODE_HASH, DATASET_ID, REGION, SPACED_MANIFEST_KEY, World
from .dataset_registry_table import QUIET_SECONDS, REGISTRY_TABLE
from .evaluation_docs import score

EVENTS = Path(__file__).resolve().parents[2] / "events"
NOT_EVENTS = {"env.json"}  # sam local invoke --env-vars: the example stack's names, not an event


def event_files() -> list[str]:
    return sorted(p.name for p in EVENTS.glob("*.json") if p.name not in NOT_EVENTS)


def check_manifest_eventbridge(world: World, event: dict[str, Any], ctx: Any) -> None:
    out = world.handlers[0].lambda_handler(event, ctx)
    [result] = out["results"]
    assert result["outcome"] == "started", result
    assert result["key"] == "manifests/epochs10.json"
    [execution] = world.executions()
    assert execution["name"] == result["execution_name"]
    run = json.loads(world.sfn.describe_execution(executionArn=execution["executionArn"])["input"])
    # The RecordResults examples carry exactly the state this run's (one) trial starts with (the Map's iteration).
    state = trial_run(run, 0)
    for name in ("record_results_success.json", "record_results_failure.json"):
        example = json.loads((EVENTS / name).read_text())["run"]
        assert {k: v for k, v in example.items() if k not in ("results", "error")} == state, f"{name} drifted"


def check_dataset_ready(world: World, event: dict[str, Any], ctx: Any) -> None:
    [result] = world.handlers[0].lambda_handler(event, ctx)["results"]
    assert result["outcome"] == "started", result
    assert result["execution_name"].startswith("ds-2026-11-28t064300z-")
    [execution] = world.executions()
    run = json.loads(world.sfn.describe_execution(executionArn=execution["executionArn"])["input"])
    assert run["experiment"] == "cats" and run["comment"] == f"new dataset {DATASET_ID}"
    assert run["source"]["kind"] == "dataset"


def check_dataset_refused(world: World, event: dict[str, Any], ctx: Any) -> None:
    [result] = world.handlers[0].lambda_handler(event, ctx)["results"]
    assert result["outcome"] == "rejected", result
    assert result["problems"][0]["field"] == "dataset" and "-draft" in result["problems"][0]["problem"]
    assert world.executions() == []
    assert "-draft" in json.loads(world.get(layout.rejection_key(result["key"])))["message"]
    [(subject, _)] = world.notifications()
    assert subject == "nyanops: upload refused: datasets/-draft/_dataset.json"


def check_s3_put_manifest(world: World, event: dict[str, Any], ctx: Any) -> None:
    [result] = world.handlers[0].lambda_handler(event, ctx)["results"]
    assert result["key"] == SPACED_MANIFEST_KEY  # '+' and %E3%81%AD%E3%81%93 decoded
    assert result["outcome"] == "started", result
    assert len(world.executions()) == 1


def check_record_success(world: World, event: dict[str, Any], ctx: Any) -> None:
    run = event["run"]
    handler = world.handlers[1]
    handler.lambda_handler({"mode": "started", "run": run}, ctx)
    world.put_evaluation(run, wrong=1)  # what the run's Evaluate job writes (and the job itself)
    result = handler.lambda_handler(event, ctx)
    assert result["status"] == "Completed" and result["is_best"] is True
    assert result["metrics"]["macro_f1"] == pytest.approx(score(1))
    assert result["subject"] == f"nyanops: cats macro_f1 {score(1):.3f} (new best)"
    # The notification links the execution and the jobs in the console (the event carries $$.Execution.Id).
    assert f"execution: {console.execution_url(REGION, event['execution_arn'])}" in result["message"]
    assert f"evaluation job: {console.processing_job_url(REGION, run['evaluation']['job_name'])}" in result["message"]
    params = world.trial_component(run["trial"])["Parameters"]
    assert params["is_best"]["NumberValue"] == 1
    assert params["model_location"]["StringValue"] == run["results"]["training"]["model_artifacts"]


def check_record_failure(world: World, event: dict[str, Any], ctx: Any) -> None:
    result = world.handlers[1].lambda_handler(event, ctx)
    assert result["status"] == "Failed" and result["is_best"] is False
    assert result["error"].startswith("States.TaskFailed: AlgorithmError: ExecuteUserScriptError")
    component = world.trial_component(event["run"]["trial"])
    assert component["Status"]["PrimaryStatus"] == "Failed"
    assert "no images found" in component["Parameters"]["error"]["StringValue"]


# The dataset the upload examples describe: one image per class and split, dropped without a seal.
DROPPED = "2026-11-29T070000Z"


def put_dropped_images(world: World) -> list[dict[str, Any]]:
    """The objects events/dataset_uploads_sqs.json announces, in the bucket (each body as its size says)."""
    bodies = [json.loads(r["body"]) for r in json.loads((EVENTS / "dataset_uploads_sqs.json").read_text())["Records"]]
    for body in bodies:
        key = body["detail"]["object"]["key"]
        world.put(key, f"jpeg {key}".encode())
        assert len(f"jpeg {key}".encode()) == body["detail"]["object"]["size"]
    return bodies


def check_dataset_uploads(world: World, event: dict[str, Any], ctx: Any) -> None:
    bodies = put_dropped_images(world)
    note = world.handlers[2]
    assert note.lambda_handler(event, ctx) == {"batchItemFailures": []}
    record = DynamoDatasetRegistry(world.ddb, REGISTRY_TABLE).get(DROPPED)
    assert record is not None and record.state == "waiting" and record.uploads == len(bodies) == 6
    assert world.notifications() == [] and world.executions() == []


def check_seal_schedule(world: World, event: dict[str, Any], ctx: Any) -> None:
    put_dropped_images(world)
    world.handlers[2].lambda_handler(json.loads((EVENTS / "dataset_uploads_sqs.json").read_text()), ctx)
    seal = world.handlers[3]
    assert seal.lambda_handler(event, ctx) == {"results": []}, "not quiet for QUIET_SECONDS yet"
    later = datetime.now(timezone.utc) + timedelta(seconds=QUIET_SECONDS + 1)
    seal.get_deps().clock = lambda: later
    [result] = seal.lambda_handler(event, ctx)["results"]
    assert result["dataset_id"] == DROPPED and result["outcome"] == "sealed"
    marker = datasets.parse_marker(DROPPED, world.get(layout.dataset_marker_key(DROPPED)))
    assert marker.sealed_by.tool == "pipeline" and marker.classes == ("bengal", "siamese") and len(marker.files) == 6


CHECKS: dict[str, Callable[[World, dict[str, Any], Any], None]] = {
    "manifest_eventbridge.json": check_manifest_eventbridge,
    "dataset_ready_eventbridge.json": check_dataset_ready,
    "dataset_refused_eventbridge.json": check_dataset_refused,
    "s3_put_manifest.json": check_s3_put_manifest,
    "record_results_success.json": check_record_success,
    "record_results_failure.json": check_record_failure,
    "dataset_uploads_sqs.json": check_dataset_uploads,
    "seal_datasets_schedule.json": check_seal_schedule,
}


def test_every_event_file_has_a_test() -> None:
    files = event_files()
    assert files, "events/ is empty"
    assert sorted(CHECKS) == files, "add a check for each new file in events/ (and remove checks for deleted ones)"


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_event_file_through_its_handler(name: str, world: World, load_event: Any, lambda_context: Any) -> None:
    event = load_event(name)
    world.put_example_world()
    CHECKS[name](world, event, lambda_context)


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_event_files_use_the_example_bucket_and_region(name: str) -> None:
    text = (EVENTS / name).read_text()
    if json.loads(text).get("detail-type") != "Scheduled Event":  # a schedule names its rule, not the bucket
        assert BUCKET in text
    for region in ("us-west-2", "eu-west-1", "ap-northeast-1"):
        assert region not in text
    event = json.loads(text)
    if "region" in event:
        assert event["region"] == REGION
    if "run" in event:
        assert event["run"]["code"]["hash"] == CODE_HASH
