"""Every file in events/ runs through its handler against the moto world it describes
(bucket nyanops-example-bucket, us-east-1: the dataset, the code bundle, the manifests)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from nyanops.core import console

from .conftest import BUCKET, CODE_HASH, DATASET_ID, REGION, SPACED_MANIFEST_KEY, World
from .evaluation_docs import score

EVENTS = Path(__file__).resolve().parents[2] / "events"


def check_manifest_eventbridge(world: World, event: dict[str, Any], ctx: Any) -> None:
    out = world.handlers[0].lambda_handler(event, ctx)
    [result] = out["results"]
    assert result["outcome"] == "started", result
    assert result["key"] == "manifests/epochs10.json"
    [execution] = world.executions()
    assert execution["name"] == result["execution_name"]
    run = json.loads(world.sfn.describe_execution(executionArn=execution["executionArn"])["input"])
    # The RecordResults examples carry exactly the state this run starts with.
    for name in ("record_results_success.json", "record_results_failure.json"):
        example = json.loads((EVENTS / name).read_text())["run"]
        assert {k: v for k, v in example.items() if k not in ("results", "error")} == run, f"{name} drifted"


def check_dataset_ready(world: World, event: dict[str, Any], ctx: Any) -> None:
    [result] = world.handlers[0].lambda_handler(event, ctx)["results"]
    assert result["outcome"] == "started", result
    assert result["execution_name"].startswith("ds-2026-11-28t064300z-")
    [execution] = world.executions()
    run = json.loads(world.sfn.describe_execution(executionArn=execution["executionArn"])["input"])
    assert run["experiment"] == "cats" and run["comment"] == f"new dataset {DATASET_ID}"
    assert run["source"]["kind"] == "dataset"


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


CHECKS: dict[str, Callable[[World, dict[str, Any], Any], None]] = {
    "manifest_eventbridge.json": check_manifest_eventbridge,
    "dataset_ready_eventbridge.json": check_dataset_ready,
    "s3_put_manifest.json": check_s3_put_manifest,
    "record_results_success.json": check_record_success,
    "record_results_failure.json": check_record_failure,
}


def test_every_event_file_has_a_test() -> None:
    files = sorted(p.name for p in EVENTS.glob("*.json"))
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
    json.loads(text)
    assert BUCKET in text
    for region in ("us-west-2", "eu-west-1", "ap-northeast-1"):
        assert region not in text
    event = json.loads(text)
    if "region" in event:
        assert event["region"] == REGION
    if "run" in event:
        assert event["run"]["code"]["hash"] == CODE_HASH
