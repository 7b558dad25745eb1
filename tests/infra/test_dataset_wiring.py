"""The dataset-sealing path in template.yaml cannot drift from the code: the rule's pattern comes from the
layout, the queue and event source fit the function, each function's environment is what its settings read,
and each role holds only what the sealing core does (nyanops.core.sealing)."""

from __future__ import annotations

from typing import Any

import pytest
from test_event_rule import matches, object_created
from test_least_privilege import as_list, iam_statements, statement, sub_text
from test_template_wiring import OBSERVABILITY, RUNTIME_VARIABLES, aliases, function_environment

from nyanops.aws.dataset_registry import OPEN_INDEX
from nyanops.core import layout
from nyanops.core.settings import DatasetUploadsSettings, SealDatasetsSettings

BUCKET = "nyanops-databucket-abc123"
FUNCTIONS = {
    "NoteDatasetUploadsFunction": ("note_uploads", DatasetUploadsSettings),
    "SealDatasetsFunction": ("seal_datasets", SealDatasetsSettings),
}


@pytest.fixture(scope="module")
def dataset_pattern(resources: dict[str, Any]) -> dict[str, Any]:
    raw = resources["DatasetUploadRule"]["Properties"]["EventPattern"]
    assert raw["detail"]["bucket"]["name"] == [{"Ref": "DataBucket"}], "only this stack's bucket"
    return {**raw, "detail": {**raw["detail"], "bucket": {"name": [BUCKET]}}}


def test_the_rule_selects_every_object_under_datasets_and_nothing_else(dataset_pattern: dict[str, Any]) -> None:
    assert dataset_pattern["detail"]["object"]["key"] == [{"prefix": layout.DATASETS_PREFIX}]
    noted = [
        "datasets/2026-11-28T064300Z/train/bengal/a.jpg",
        "datasets/cats/val/tama/IMG 0001 ねこ.JPG",
        layout.dataset_marker_key("cats"),
        layout.dataset_claim_key("cats"),
        "datasets/cats/notes.txt",
    ]
    for key in noted:
        assert matches(dataset_pattern, object_created(key, BUCKET)), key
        assert matches(dataset_pattern, object_created(key, BUCKET, "Object Deleted")), key
        assert layout.dataset_id_of(key) == key.split("/")[1]
    for key in ("manifests/epochs10.json", "rejected/datasets/cats/_dataset.json.error.json", "runs/x/model.tar.gz",
                "code/" + "0" * 64 + "/sourcedir.tar.gz", "datasets.json"):
        assert not matches(dataset_pattern, object_created(key, BUCKET)), key
    assert not matches(dataset_pattern, object_created("datasets/x/a.jpg", "someone-elses-bucket"))
    assert not matches(dataset_pattern, object_created("datasets/x/a.jpg", BUCKET, "Object Restore Completed"))


def test_the_rule_feeds_the_queue_and_only_it_may_send(resources: dict[str, Any]) -> None:
    [target] = resources["DatasetUploadRule"]["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["DatasetUploadQueue", "Arn"]}
    assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["DatasetUploadDeadLetterQueue", "Arn"]}
    policy = resources["DatasetUploadQueuePolicy"]["Properties"]
    assert policy["Queues"] == [{"Ref": "DatasetUploadQueue"}, {"Ref": "DatasetUploadDeadLetterQueue"}]
    [allow] = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "events.amazonaws.com"} and allow["Action"] == "sqs:SendMessage"
    assert allow["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["DatasetUploadRule", "Arn"]}}}
    [deny] = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_the_queue_fits_the_function(template: dict[str, Any], resources: dict[str, Any]) -> None:
    queue = resources["DatasetUploadQueue"]["Properties"]
    fn = resources["NoteDatasetUploadsFunction"]["Properties"]
    timeout = fn.get("Timeout", template["Globals"]["Function"]["Timeout"])
    # Lambda developer guide: the queue's visibility timeout at least six times the function's timeout.
    assert queue["VisibilityTimeout"] >= 6 * timeout
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["DatasetUploadDeadLetterQueue", "Arn"]}, "maxReceiveCount": 5}
    assert queue["SqsManagedSseEnabled"] is True
    assert resources["DatasetUploadDeadLetterQueue"]["Properties"]["MessageRetentionPeriod"] == 1209600
    source = fn["Events"]["DatasetUploads"]
    assert source["Type"] == "SQS" and source["Properties"]["Queue"] == {"Fn::GetAtt": ["DatasetUploadQueue", "Arn"]}
    # Batching is what makes noting cheap; partial failures retry only the failed datasets' messages.
    assert source["Properties"]["BatchSize"] == 1000 and source["Properties"]["MaximumBatchingWindowInSeconds"] > 0
    assert source["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_the_sealer_runs_every_minute_within_its_lease(resources: dict[str, Any]) -> None:
    from nyanops.core.sealing import DEFAULT_LEASE_SECONDS

    fn = resources["SealDatasetsFunction"]["Properties"]
    assert fn["Events"]["EveryMinute"] == {
        "Type": "Schedule",
        "Properties": {"Schedule": "rate(1 minute)", "Description": "nyanops - seal dataset uploads that have settled"},
    }
    assert fn["Timeout"] <= DEFAULT_LEASE_SECONDS  # a claim outlives the invocation that holds it


def test_quiet_period_parameter_follows_the_settings(template: dict[str, Any]) -> None:
    param = template["Parameters"]["DatasetQuietSeconds"]
    field = SealDatasetsSettings.model_fields["quiet_seconds"]
    bounds = {type(m).__name__: m for m in field.metadata}
    assert param["MinValue"] == bounds["Ge"].ge and param["MaxValue"] == bounds["Le"].le
    assert param["Default"] == 120
    assert function_environment(template, "SealDatasetsFunction")["QUIET_SECONDS"] == {"Ref": "DatasetQuietSeconds"}


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_every_variable_the_function_reads_is_set_and_nothing_else(template: dict[str, Any], logical_id: str) -> None:
    code, model = FUNCTIONS[logical_id]
    assert template["Resources"][logical_id]["Properties"]["CodeUri"] == f"functions/{code}"
    env = function_environment(template, logical_id)
    read = aliases(model) - RUNTIME_VARIABLES
    assert read - set(env) == set()
    assert {n for n in set(env) - read if not OBSERVABILITY.match(n)} == set()
    assert env["DATASET_REGISTRY_TABLE"] == {"Ref": "DatasetRegistryTable"}
    assert env["TOPIC_ARN"] == {"Ref": "ResultsTopic"}


def test_registry_table_and_its_sparse_index(resources: dict[str, Any]) -> None:
    table = resources["DatasetRegistryTable"]["Properties"]
    assert table["KeySchema"] == [{"AttributeName": "dataset_id", "KeyType": "HASH"}]
    [index] = table["GlobalSecondaryIndexes"]
    assert index["IndexName"] == OPEN_INDEX
    assert index["KeySchema"] == [{"AttributeName": "open", "KeyType": "HASH"},
                                  {"AttributeName": "last_upload_at", "KeyType": "RANGE"}]
    assert table["BillingMode"] == "PAY_PER_REQUEST" and table["SSESpecification"]["SSEEnabled"] is True


def _actions(resources: dict[str, Any], role: str) -> set[str]:
    return {a for r, st in iam_statements(resources) if r == role for a in as_list(st["Action"])}


def test_note_uploads_permissions(resources: dict[str, Any]) -> None:
    fn = "NoteDatasetUploadsFunction"
    assert _actions(resources, fn) == {"dynamodb:GetItem", "dynamodb:UpdateItem", "s3:GetObject", "s3:ListBucket",
                                       "s3:PutObject", "sns:Publish"}
    assert statement(resources, fn, "DatasetRegistry")["Resource"] == {"Fn::GetAtt": ["DatasetRegistryTable", "Arn"]}
    assert sub_text(statement(resources, fn, "ReadSeals")["Resource"]) == "${DataBucket.Arn}/datasets/*"
    assert sub_text(statement(resources, fn, "WriteRejections")["Resource"]) == "${DataBucket.Arn}/rejected/*"
    listing = statement(resources, fn, "HonestNotFound")
    assert listing["Condition"] == {"StringLikeIfExists": {"s3:prefix": ["rejected/*"]}}
    writes = [st for r, st in iam_statements(resources) if r == fn and "s3:PutObject" in as_list(st["Action"])]
    assert [sub_text(st["Resource"]) for st in writes] == ["${DataBucket.Arn}/rejected/*"], "it never writes data"


def test_seal_datasets_permissions(resources: dict[str, Any]) -> None:
    fn = "SealDatasetsFunction"
    assert _actions(resources, fn) == {"dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:Query", "s3:GetObject",
                                       "s3:ListBucket", "s3:PutObject", "sns:Publish"}
    assert sub_text(statement(resources, fn, "DueDatasets")["Resource"]) == (
        "${DatasetRegistryTable.Arn}/index/" + OPEN_INDEX)
    writes = {sub_text(st["Resource"]) for r, st in iam_statements(resources)
              if r == fn and "s3:PutObject" in as_list(st["Action"])}
    assert writes == {f"${{DataBucket.Arn}}/{layout.DATASETS_PREFIX}*/{layout.DATASET_MARKER}",
                      "${DataBucket.Arn}/rejected/*"}, "the seal and refusals only: never an image"
    listing = statement(resources, fn, "ListDatasets")
    assert listing["Condition"] == {"StringLikeIfExists": {"s3:prefix": ["datasets/*"]}}
    for sid in ("DatasetRegistry", "DueDatasets", "ReadDatasets", "WriteSeals", "WriteRejections", "NotifyRejections"):
        statement(resources, fn, sid)


def test_the_new_functions_share_the_layer_and_log_groups(resources: dict[str, Any]) -> None:
    for logical_id in FUNCTIONS:
        group = resources[logical_id.removesuffix("Function") + "LogGroup"]["Properties"]
        assert group["LogGroupName"] == {"Fn::Sub": f"/aws/lambda/${{{logical_id}}}"}
        assert group["RetentionInDays"] == 90
        assert "Layers" not in resources[logical_id]["Properties"], "the Globals layer, not a copy"
