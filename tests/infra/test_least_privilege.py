"""Least privilege and data safety, read from template.yaml."""

from __future__ import annotations

from typing import Any

import pytest

# Statements allowed to use Resource "*": the action has no resource type in the IAM service
# authorization reference. Each carries a comment in template.yaml saying so.
STAR_EXCEPTIONS = {
    "ExperimentsListingHasNoResourceType": {"sagemaker:ListExperiments", "sagemaker:ListTrials"},
    "ModelRegistryListingHasNoResourceType": {"sagemaker:ListModelPackages"},
    "LogDeliveryHasNoResourceType": {
        "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
        "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies",
        "logs:DescribeLogGroups",
    },
    "XRayHasNoResourceType": {
        "xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets",
    },
    "EcrAuthTokenHasNoResourceType": {"ecr:GetAuthorizationToken"},
    "JobMetricsHaveNoResourceType": {"cloudwatch:PutMetricData"},
}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def iam_statements(resources: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every Allow/Deny statement of the roles and of the SAM functions' inline policies."""
    out = []
    for logical_id, res in resources.items():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                out += [(logical_id, s) for s in policy["PolicyDocument"]["Statement"]]
        elif res["Type"] == "AWS::Serverless::Function":
            for policy in props.get("Policies", []):
                assert isinstance(policy, dict) and "Statement" in policy, f"{logical_id}: inline statements only"
                out += [(logical_id, s) for s in policy["Statement"]]
    return out


def statement(resources, role: str, sid: str) -> dict[str, Any]:
    found = [s for r, s in iam_statements(resources) if r == role and s.get("Sid") == sid]
    assert len(found) == 1, f"{role} has no single statement {sid}"
    return found[0]


def sub_text(value: Any) -> str:
    return value["Fn::Sub"] if isinstance(value, dict) and "Fn::Sub" in value else str(value)


def test_no_star_resource_except_documented(resources):
    for role, st in iam_statements(resources):
        if "*" in as_list(st["Resource"]):
            sid = st.get("Sid")
            assert sid in STAR_EXCEPTIONS, f"{role}: Resource '*' without a documented reason ({st})"
            assert set(as_list(st["Action"])) <= STAR_EXCEPTIONS[sid]


def test_no_wildcard_actions(resources):
    for role, st in iam_statements(resources):
        for action in as_list(st["Action"]):
            assert "*" not in action, f"{role}: wildcard action {action}"


def test_pass_role_only_for_sagemaker_role_to_sagemaker(resources):
    passing = [(r, s) for r, s in iam_statements(resources) if "iam:PassRole" in as_list(s["Action"])]
    assert [r for r, _ in passing] == ["StateMachineRole"]
    _, st = passing[0]
    assert as_list(st["Resource"]) == [{"Fn::GetAtt": ["SageMakerExecutionRole", "Arn"]}]
    assert st["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}


def test_sagemaker_role_limited_to_bucket_prefixes(resources):
    read = statement(resources, "SageMakerExecutionRole", "ReadInputs")
    assert {sub_text(r) for r in read["Resource"]} == {
        "${DataBucket.Arn}/datasets/*", "${DataBucket.Arn}/code/*", "${DataBucket.Arn}/runs/*",
    }
    write = statement(resources, "SageMakerExecutionRole", "WriteRunOutputs")
    assert sub_text(write["Resource"]) == "${DataBucket.Arn}/runs/*"
    listing = statement(resources, "SageMakerExecutionRole", "ListInputs")
    assert set(listing["Condition"]["StringLike"]["s3:prefix"]) == {"datasets/*", "code/*", "runs/*"}
    logs = statement(resources, "SageMakerExecutionRole", "JobLogs")
    assert sub_text(logs["Resource"]).endswith(":log-group:/aws/sagemaker/*")


def test_state_machine_role_scoped_to_jobs_rules_and_targets(resources):
    jobs = statement(resources, "StateMachineRole", "SageMakerJobs")
    assert {sub_text(r).rsplit(":", 1)[-1] for r in jobs["Resource"]} == {"training-job/*", "processing-job/*"}
    assert all("${AWS::Region}:${AWS::AccountId}" in sub_text(r) for r in jobs["Resource"])
    rules = statement(resources, "StateMachineRole", "SyncJobEvents")
    assert {sub_text(r).rsplit("/", 1)[-1] for r in rules["Resource"]} == {
        "StepFunctionsGetEventsForSageMakerTrainingJobsRule", "StepFunctionsGetEventsForSageMakerProcessingJobsRule",
    }
    invoke = statement(resources, "StateMachineRole", "InvokeRecordResults")
    assert invoke["Resource"][0] == {"Fn::GetAtt": ["RecordResultsFunction", "Arn"]}
    assert statement(resources, "StateMachineRole", "NotifyResults")["Resource"] == {"Ref": "ResultsTopic"}


def test_start_pipeline_permissions(resources):
    fn = "StartPipelineFunction"
    reads = statement(resources, fn, "ReadUploads")
    assert {sub_text(r) for r in reads["Resource"]} == {"${DataBucket.Arn}/manifests/*", "${DataBucket.Arn}/datasets/*"}
    assert sub_text(statement(resources, fn, "WriteRejections")["Resource"]) == "${DataBucket.Arn}/rejected/*"
    listing = statement(resources, fn, "ListDatasetsAndCode")
    (operator, keys), = listing["Condition"].items()
    assert operator.startswith("StringLike") and set(keys["s3:prefix"]) == {"datasets/*", "code/*"}
    assert statement(resources, fn, "StartRuns")["Resource"] == {"Ref": "TrainingPipeline"}


def test_record_results_permissions(resources):
    fn = "RecordResultsFunction"
    assert sub_text(statement(resources, fn, "ReadEvaluations")["Resource"]) == "${DataBucket.Arn}/runs/*"
    lock = statement(resources, fn, "ExperimentLock")
    assert set(lock["Action"]) == {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"}
    experiments = statement(resources, fn, "ExperimentsWrite")
    assert all("${AWS::Region}:${AWS::AccountId}:experiment" in sub_text(r) for r in experiments["Resource"])


def test_record_results_writes_only_the_pipelines_model_package_groups(resources):
    """Groups named nyanops-* (naming.model_package_group_name) and their versions; nothing to delete."""
    from nyanops.core import naming

    registry = statement(resources, "RecordResultsFunction", "ModelRegistryWrite")
    assert set(registry["Action"]) == {
        "sagemaker:CreateModelPackageGroup", "sagemaker:DescribeModelPackageGroup", "sagemaker:CreateModelPackage",
        "sagemaker:UpdateModelPackage",
    }
    prefix = naming.MODEL_PACKAGE_GROUP_PREFIX
    assert {sub_text(r).rsplit(":", 1)[-1] for r in registry["Resource"]} == {
        f"model-package-group/{prefix}*", f"model-package/{prefix}*/*"}
    assert all("${AWS::Region}:${AWS::AccountId}:model-package" in sub_text(r) for r in registry["Resource"])
    assert naming.model_package_group_name("Cats").startswith(prefix)


@pytest.mark.parametrize("role", ["StateMachineRole", "SageMakerExecutionRole"])
def test_roles_trust_only_their_service_in_this_account(resources, role):
    (trust,) = resources[role]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}


def test_bucket_is_private_encrypted_versioned_and_kept(resources):
    bucket = resources["DataBucket"]
    assert bucket["DeletionPolicy"] == "Retain" and bucket["UpdateReplacePolicy"] == "Retain"
    props = bucket["Properties"]
    assert "BucketName" not in props, "S3 names are global: a fixed name breaks the second deploy"
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    assert all(props["PublicAccessBlockConfiguration"].values()) and len(props["PublicAccessBlockConfiguration"]) == 4
    assert props["NotificationConfiguration"]["EventBridgeConfiguration"]["EventBridgeEnabled"] is True
    assert "Expiration" not in str(props.get("LifecycleConfiguration")), "nothing uploaded is ever deleted"


def test_bucket_policy_denies_insecure_transport(resources):
    policy = resources["DataBucketPolicy"]["Properties"]
    assert policy["Bucket"] == {"Ref": "DataBucket"}
    denies = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert any(
        s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} and s["Principal"] == "*" and s["Action"] == "s3:*"
        and len(s["Resource"]) == 2
        for s in denies
    )


def test_lock_table_and_queue_encrypted(resources):
    table = resources["ExperimentLockTable"]["Properties"]
    assert table["KeySchema"] == [{"AttributeName": "experiment", "KeyType": "HASH"}]
    assert table["AttributeDefinitions"] == [{"AttributeName": "experiment", "AttributeType": "S"}]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["SSESpecification"]["SSEEnabled"] is True
    assert resources["UploadEventsDeadLetterQueue"]["Properties"]["SqsManagedSseEnabled"] is True
