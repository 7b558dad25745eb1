"""The SageMaker Model Registry on moto, through the RecordResults handler: one model package group per
experiment, the new best Approved with its metadata and the previous one Rejected when the flag moves, nothing
when it stays, one package per trial under retries; and how a deployment takes the approved model."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from nyanops.aws.model_registry import SageMakerModelRegistry
from nyanops.aws.sagemaker_experiments import ExperimentsThrottled
from nyanops.core import limits
from nyanops.core.experiments import TrialRecord
from nyanops.core.model_registry import APPROVED, REJECTED, PackageSpec

from .conftest import ACCOUNT, BUCKET, MODEL_IMAGE, REGION, World
from .evaluation_docs import score
from .test_record_results import finish, record, run_state

GROUP = "nyanops-cats"


def versions(world: World, group: str = GROUP) -> list[dict[str, Any]]:
    return world.sm.list_model_packages(ModelPackageGroupName=group, SortBy="CreationTime",
                                        SortOrder="Ascending")["ModelPackageSummaryList"]


def the_approved_model(world: World, group: str = GROUP) -> dict[str, Any]:
    """What a deployment does (docs/aws.md): the newest Approved version of the experiment's group."""
    [latest] = world.sm.list_model_packages(
        ModelPackageGroupName=group, ModelApprovalStatus="Approved", SortBy="CreationTime",
        SortOrder="Descending", MaxResults=1,
    )["ModelPackageSummaryList"]
    return dict(world.sm.describe_model_package(ModelPackageName=latest["ModelPackageArn"]))


def test_the_flag_moving_hands_the_approval_over(world: World, load_event: Any, lambda_context: Any) -> None:
    first = run_state(load_event, "m-first-0000000000000001")
    better = run_state(load_event, "m-better-000000000000002")
    worse = run_state(load_event, "m-worse-0000000000000003")
    answer = finish(world, first, 2, lambda_context)
    assert answer["model_package"]["version"] == 1 and answer["model_package"]["arn"] == (
        f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{GROUP}/1")
    group = world.sm.describe_model_package_group(ModelPackageGroupName=GROUP)
    assert group["ModelPackageGroupDescription"].startswith("nyanops: the best models of experiment cats,")
    assert [(v["ModelPackageVersion"], v["ModelApprovalStatus"]) for v in versions(world)] == [(1, APPROVED)]

    moved = finish(world, better, 0, lambda_context)
    assert moved["model_package"] == {"version": 2, "status": APPROVED, "created": True,
                                      "arn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{GROUP}/2",
                                      "rejected": [1]}
    assert "version 1 (m-first-0000000000000001) Rejected" in moved["message"]
    assert [(v["ModelPackageVersion"], v["ModelApprovalStatus"]) for v in versions(world)] == [
        (1, REJECTED), (2, APPROVED)]
    old = world.sm.describe_model_package(ModelPackageName=versions(world)[0]["ModelPackageArn"])
    assert "superseded by version 2 (trial m-better-000000000000002)" in old["ApprovalDescription"]
    assert old["CustomerMetadataProperties"]["trial"] == "m-first-0000000000000001"  # kept by the update

    kept = finish(world, worse, 3, lambda_context)  # the flag stays: nothing is registered
    assert kept["is_best"] is False and "model_package" not in kept
    assert len(versions(world)) == 2

    record(world, "succeeded", better, lambda_context)  # a retried RecordResults of the best: nothing new
    assert len(versions(world)) == 2

    model = the_approved_model(world)
    meta = model["CustomerMetadataProperties"]
    assert meta["trial"] == "m-better-000000000000002" and meta["experiment"] == "cats"
    assert meta["dataset_id"] == better["dataset"]["id"] and meta["dataset_hash"] == better["dataset"]["content_hash"]
    assert meta["code_hash"] == better["code"]["hash"] and meta["primary_metric"] == "macro_f1"
    assert float(meta["macro_f1"]) == pytest.approx(score(0))
    assert meta["evaluation_uri"] == f"s3://{BUCKET}/runs/m-better-000000000000002/evaluation/evaluation.json"
    assert meta["hp:epochs"] == "10"
    [container] = model["InferenceSpecification"]["Containers"]
    assert container["Image"] == MODEL_IMAGE
    assert container["ModelDataUrl"] == better["results"]["training"]["model_artifacts"] == meta["model_uri"]
    assert model["ModelPackageDescription"].startswith("nyanops trial m-better-000000000000002: macro_f1 ")


def test_one_group_per_experiment_key(world: World, load_event: Any, lambda_context: Any) -> None:
    finish(world, run_state(load_event, "m-a-0000000000000000001", "cats"), 1, lambda_context)
    finish(world, run_state(load_event, "m-b-0000000000000000002", "Cats"), 0, lambda_context)
    finish(world, run_state(load_event, "m-c-0000000000000000003", "dogs"), 0, lambda_context)
    assert [v["ModelApprovalStatus"] for v in versions(world)] == [REJECTED, APPROVED]
    assert [v["ModelApprovalStatus"] for v in versions(world, "nyanops-dogs")] == [APPROVED]
    registry = SageMakerModelRegistry(world.sm)
    assert registry.experiments() == ["cats", "dogs"]
    assert [(p.version, p.trial, p.status) for p in registry.packages("CATS")] == [
        (1, "m-a-0000000000000000001", REJECTED), (2, "m-b-0000000000000000002", APPROVED)]


def test_metadata_beyond_sagemakers_limits_is_fitted_not_refused(world: World) -> None:
    """moto (patched as AWS) refuses more than 50 properties or a 257-character value: the adapter fits them."""
    hyper = {f"param{i:02d}": "v" * 300 for i in range(70)}
    record_ = TrialRecord("cats", "m-a-1", "Completed", None, None, dataset_id="d1", dataset_hash="h" * 64,
                          code_hash="c" * 64, hyperparameters=hyper, metrics={"macro_f1": 0.5},
                          model_location=f"s3://{BUCKET}/runs/m-a-1/model.tar.gz")
    registry = SageMakerModelRegistry(world.sm, MODEL_IMAGE)
    registry.register(PackageSpec.of(record_, "macro_f1"))
    [summary] = versions(world)
    meta = world.sm.describe_model_package(ModelPackageName=summary["ModelPackageArn"])["CustomerMetadataProperties"]
    assert len(meta) == limits.CUSTOMER_METADATA_PROPERTIES_MAX and "omitted" in meta
    with pytest.raises(ClientError, match="customerMetadataProperties"):  # the patched moto does refuse
        world.sm.create_model_package(ModelPackageGroupName=GROUP, CustomerMetadataProperties={"k": "v" * 257},
                                      InferenceSpecification={"Containers": [{"Image": MODEL_IMAGE}]})


def test_no_image_no_registration(world: World) -> None:
    record_ = TrialRecord("cats", "m-a-1", "Completed", None, None, metrics={"macro_f1": 0.5})
    with pytest.raises(ValueError, match="MODEL_IMAGE"):
        SageMakerModelRegistry(world.sm, "").register(PackageSpec.of(record_, "macro_f1"))
    assert world.sm.list_model_package_groups()["ModelPackageGroupSummaryList"] == []


def test_an_experiment_without_a_group_has_no_packages(world: World) -> None:
    assert SageMakerModelRegistry(world.sm).packages("never") == []


def test_throttling_is_retried_then_reported_for_the_state_machine(world: World) -> None:
    """botocore's Stubber: SageMaker throttles ListModelPackages twice, then answers; or throttles every time."""
    waits: list[float] = []
    stubber = Stubber(world.sm)
    params = {"ModelPackageGroupName": GROUP, "SortBy": "CreationTime", "SortOrder": "Ascending", "MaxResults": 100}
    for _ in range(2):
        stubber.add_client_error("list_model_packages", "ThrottlingException", "Rate exceeded",
                                 expected_params=params)
    stubber.add_response("list_model_packages", {"ModelPackageSummaryList": []}, params)
    for _ in range(3):
        stubber.add_client_error("list_model_packages", "ThrottlingException", "Rate exceeded",
                                 expected_params=params)
    with stubber:
        registry = SageMakerModelRegistry(world.sm, MODEL_IMAGE, attempts=3, backoff_seconds=0.1, sleep=waits.append)
        assert registry.packages("cats") == []
        assert waits == [0.1, 0.2]
        with pytest.raises(ExperimentsThrottled):
            registry.packages("cats")


def test_a_group_created_meanwhile_is_used_and_a_refusal_is_reported(world: World) -> None:
    """CreateModelPackageGroup refused: the group another run created meanwhile is used; otherwise the refusal."""
    registry = SageMakerModelRegistry(world.sm, MODEL_IMAGE)
    missing = {"Error": {"Code": "ValidationException", "Message": "ModelPackageGroup nyanops-cats does not exist."}}
    stubber = Stubber(world.sm)
    stubber.add_client_error("describe_model_package_group", "ValidationException", missing["Error"]["Message"])
    stubber.add_client_error("create_model_package_group", "ValidationException", "Group already exists")
    stubber.add_response("describe_model_package_group", {
        "ModelPackageGroupName": GROUP, "ModelPackageGroupArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:"
        f"model-package-group/{GROUP}", "CreationTime": "2026-12-02T00:00:00Z", "CreatedBy": {},
        "ModelPackageGroupStatus": "Completed"})
    stubber.add_client_error("describe_model_package_group", "ValidationException", missing["Error"]["Message"])
    stubber.add_client_error("create_model_package_group", "AccessDeniedException", "not authorized")
    stubber.add_client_error("describe_model_package_group", "ValidationException", missing["Error"]["Message"])
    with stubber:
        assert registry._ensure_group("cats") == GROUP
        with pytest.raises(ClientError, match="AccessDeniedException"):
            registry._ensure_group("cats")
