"""StartPipeline's handler on moto: one upload → one run, or a clear refusal; the upload is never touched."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest

from nyanops.core import hyperparameters, layout
from nyanops.core.execution_input import trial_run

from .conftest import BUCKET, CODE_HASH, DATASET_ID, EXAMPLE_MANIFEST, World


def manifest(**overrides: Any) -> bytes:
    return json.dumps({**EXAMPLE_MANIFEST, **overrides}).encode()


def invoke(world: World, event: dict[str, Any], ctx: Any) -> list[dict[str, Any]]:
    return world.handlers[0].lambda_handler(event, ctx)["results"]


@pytest.fixture
def ready(world: World) -> World:
    world.put_dataset()
    world.put_code()
    return world


def test_manifest_starts_a_run_with_a_deterministic_name(ready: World, lambda_context: Any) -> None:
    event = ready.upload_event("manifests/epochs10.json", manifest())
    [result] = invoke(ready, event, lambda_context)
    assert result["outcome"] == "started"
    [execution] = ready.executions()
    assert execution["name"] == result["execution_name"]
    run = json.loads(ready.sfn.describe_execution(executionArn=execution["executionArn"])["input"])
    version = event["detail"]["object"]["version-id"]
    assert run["source"]["version_id"] == version
    assert run["code"]["hash"] == CODE_HASH and run["dataset"]["classes"] == ["bengal", "siamese"]
    assert trial_run(run, 0)["hyperparameters"]["num-classes"] == 2
    assert ready.notifications() == []


def test_the_same_event_twice_is_one_run(ready: World, lambda_context: Any) -> None:
    event = ready.upload_event("manifests/epochs10.json", manifest())
    first = invoke(ready, event, lambda_context)[0]
    second = invoke(ready, event, lambda_context)[0]
    assert first["outcome"] == "started"
    assert first["execution_name"] == second["execution_name"]
    assert len(ready.executions()) == 1


def test_the_same_event_after_the_run_finished_is_a_duplicate(ready: World, lambda_context: Any) -> None:
    event = ready.upload_event("manifests/epochs10.json", manifest())
    invoke(ready, event, lambda_context)
    ready.sfn.stop_execution(executionArn=ready.executions()[0]["executionArn"])
    assert invoke(ready, event, lambda_context)[0]["outcome"] == "duplicate"
    assert len(ready.executions()) == 1


def test_the_same_event_while_the_run_is_running_is_reported_as_duplicate(ready: World, lambda_context: Any) -> None:
    event = ready.upload_event("manifests/epochs10.json", manifest())
    invoke(ready, event, lambda_context)
    assert invoke(ready, event, lambda_context)[0]["outcome"] == "duplicate"


def test_a_new_version_of_the_manifest_is_a_new_run(ready: World, lambda_context: Any) -> None:
    invoke(ready, ready.upload_event("manifests/epochs10.json", manifest()), lambda_context)
    invoke(ready, ready.upload_event("manifests/epochs10.json", manifest(comment="again")), lambda_context)
    assert len(ready.executions()) == 2


def test_bad_manifest_is_rejected_and_left_untouched(ready: World, lambda_context: Any) -> None:
    body = json.dumps({**EXAMPLE_MANIFEST, "hyperparameters": {"epochs": "10"}}).encode()
    event = ready.upload_event("manifests/bad.json", body)
    version = event["detail"]["object"]["version-id"]
    [result] = invoke(ready, event, lambda_context)
    assert result["outcome"] == "rejected"
    assert result["problems"][0]["field"] == "hyperparameters.epochs"
    record = json.loads(ready.get("rejected/manifests/bad.json.error.json"))
    assert record["problems"] == [{"field": "hyperparameters.epochs", "problem": 'must be a whole number, got "10"',
                                   "fix": "write an integer without quotes, e.g. 10"}]
    [(subject, message)] = ready.notifications()
    assert subject == "nyanops: upload refused: manifests/bad.json"
    assert "hyperparameters.epochs" in message and "Fix:" in message
    assert ready.executions() == []
    assert ready.get("manifests/bad.json") == body
    assert ready.versions("manifests/bad.json") == [version]


def test_rejection_file_does_not_start_anything(ready: World, lambda_context: Any) -> None:
    invoke(ready, ready.upload_event("manifests/bad.json", b"{"), lambda_context)
    key = "rejected/manifests/bad.json.error.json"
    [result] = invoke(ready, ready.eventbridge(key, {"size": 1, "etag": "x", "version_id": None}), lambda_context)
    assert result["outcome"] == "ignored"


def test_dataset_marker_runs_the_default_manifest(world: World, lambda_context: Any) -> None:
    world.put_code()
    marker = world.put_dataset()
    event = world.eventbridge(layout.dataset_marker_key(DATASET_ID), marker["_upload"])
    [result] = invoke(world, event, lambda_context)
    assert result["outcome"] == "started"
    [execution] = world.executions()
    run = json.loads(world.sfn.describe_execution(executionArn=execution["executionArn"])["input"])
    assert run["experiment"] == "cats" and run["source"]["kind"] == "dataset"
    assert trial_run(run, 0)["hyperparameters"] == hyperparameters.resolve({}, 2)  # train.py's defaults
    assert run["dataset"]["content_hash"] == marker["content_hash"]


def test_manifest_naming_a_dataset_still_uploading_is_rejected(world: World, lambda_context: Any) -> None:
    world.put_code()
    world.put_dataset(marker=False)
    [result] = invoke(world, world.upload_event("manifests/early.json", manifest()), lambda_context)
    assert result["outcome"] == "rejected"
    assert result["problems"][0]["field"] == "dataset"
    assert "still uploading or incomplete: no _dataset.json yet" in result["problems"][0]["problem"]
    assert world.executions() == []


def test_manifest_naming_a_missing_dataset_is_rejected(world: World, lambda_context: Any) -> None:
    world.put_code()
    [result] = invoke(world, world.upload_event("manifests/x.json", manifest()), lambda_context)
    assert "does not exist in this bucket" in result["problems"][0]["problem"]


def test_marker_that_promises_more_images_than_uploaded_is_rejected(world: World, lambda_context: Any) -> None:
    world.put_code()
    marker = world.put_dataset(skip=("train/bengal/001.jpg",))
    event = world.eventbridge(layout.dataset_marker_key(DATASET_ID), marker["_upload"])
    [result] = invoke(world, event, lambda_context)
    assert result["outcome"] == "rejected"
    assert "incomplete or changed" in result["problems"][0]["problem"]
    record = json.loads(world.get(f"rejected/datasets/{DATASET_ID}/_dataset.json.error.json"))
    assert "finish uploading" in record["problems"][0]["fix"]
    assert world.executions() == []


def test_num_classes_disagreeing_with_the_dataset_is_rejected(ready: World, lambda_context: Any) -> None:
    body = manifest(hyperparameters={"num-classes": 3})
    [result] = invoke(ready, ready.upload_event("manifests/n.json", body), lambda_context)
    assert result["problems"][0]["field"] == "hyperparameters.num-classes"
    assert "set num-classes to 2" in result["problems"][0]["fix"]


def test_image_uploads_are_ignored(ready: World, lambda_context: Any) -> None:
    event = ready.upload_event(f"datasets/{DATASET_ID}/train/bengal/new.jpg", b"jpeg")
    [result] = invoke(ready, event, lambda_context)
    assert result["outcome"] == "ignored"
    assert ready.executions() == [] and ready.notifications() == []
    assert not ready.keys("rejected/")


def test_other_buckets_are_ignored(ready: World, lambda_context: Any) -> None:
    event = ready.eventbridge("manifests/epochs10.json", {"size": 1, "etag": "e"}, bucket="someone-elses-bucket")
    assert invoke(ready, event, lambda_context)[0]["outcome"] == "ignored"


def test_vanished_manifest_version_is_ignored(ready: World, lambda_context: Any) -> None:
    event = ready.upload_event("manifests/epochs10.json", manifest())
    ready.s3.delete_object(Bucket=BUCKET, Key="manifests/epochs10.json",
                           VersionId=event["detail"]["object"]["version-id"])
    [result] = invoke(ready, event, lambda_context)
    assert result["outcome"] == "ignored" and "no longer exists" in result["reason"]


def test_missing_code_reference_is_rejected(ready: World, lambda_context: Any) -> None:
    body = manifest(code="code/" + "f" * 64)
    [result] = invoke(ready, ready.upload_event("manifests/c.json", body), lambda_context)
    assert result["outcome"] == "rejected" and result["problems"][0]["field"] == "code"
    assert f"code/{'f' * 64} does not exist" in result["problems"][0]["problem"]


def test_named_code_bundle_is_used(ready: World, lambda_context: Any) -> None:
    other = ready.put_code("e" * 64, modified=datetime(2020, 1, 1))
    invoke(ready, ready.upload_event("manifests/c.json", manifest(code=f"code/{other}")), lambda_context)
    [execution] = ready.executions()
    assert json.loads(ready.sfn.describe_execution(executionArn=execution["executionArn"])["input"])["code"][
        "hash"] == other


def test_newest_code_bundle_is_chosen_when_omitted(world: World, lambda_context: Any) -> None:
    world.put_dataset()
    world.put_code("0" * 64, modified=datetime(2026, 11, 28, 6, 0))
    world.put_code("f" * 64, modified=datetime(2026, 11, 28, 5, 0))
    world.put_code("a" * 64, modified=datetime(2026, 11, 28, 7, 0))
    world.put("code/" + "b" * 64 + "/src/train.py", b"not a bundle")
    invoke(world, world.upload_event("manifests/m.json", manifest()), lambda_context)
    [execution] = world.executions()
    run = json.loads(world.sfn.describe_execution(executionArn=execution["executionArn"])["input"])
    assert run["code"]["hash"] == "a" * 64


def test_no_code_pushed_yet_is_rejected(world: World, lambda_context: Any) -> None:
    world.put_dataset()
    [result] = invoke(world, world.upload_event("manifests/m.json", manifest()), lambda_context)
    assert result["problems"][0]["field"] == "code"
    assert "no ml_code bundle has been pushed" in result["problems"][0]["problem"]


def test_unsupported_event_raises(world: World, lambda_context: Any) -> None:
    from nyanops.core.upload_events import UnsupportedEvent

    with pytest.raises(UnsupportedEvent):
        world.handlers[0].lambda_handler({"hello": "world"}, lambda_context)


def test_get_deps_names_missing_configuration(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from nyanops.core.settings import SettingsError

    monkeypatch.delenv("STATE_MACHINE_ARN")
    world.handlers[0].set_deps(None)
    with pytest.raises(SettingsError, match="STATE_MACHINE_ARN"):
        world.handlers[0].get_deps()
