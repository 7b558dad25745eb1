"""Security properties of template.yaml beyond tests/infra/test_least_privilege.py (which this extends):
every policy document in the template (roles, SAM functions, standalone IAM policies, resource policies),
the optional KMS key, the checkov suppressions and the SageMaker job settings in the ASL."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
ASL_FILE = ROOT / "statemachine" / "training_pipeline.asl.json"
SECURITY_DOC = ROOT / "docs" / "security.md"


def _infra_module(name: str) -> Any:
    """tests/infra's modules by path (no package there; its conftest has the CloudFormation YAML loader)."""
    spec = importlib.util.spec_from_file_location(f"nyanops_infra_{name}", ROOT / "tests" / "infra" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_infra = _infra_module("conftest")
STAR_EXCEPTIONS: dict[str, set[str]] = _infra_module("test_least_privilege").STAR_EXCEPTIONS


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return _infra.load_template((ROOT / "template.yaml").read_text())


@pytest.fixture(scope="module")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    return template["Resources"]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def policy_statements(resources: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(resource, kind, statement) for every policy document: identity ("iam") and resource ("resource")."""
    out: list[tuple[str, str, dict[str, Any]]] = []
    for logical_id, res in resources.items():
        props = res.get("Properties", {})
        kind = res["Type"]
        docs: list[tuple[str, dict[str, Any]]] = []
        if kind == "AWS::IAM::Role":
            docs = [("iam", p["PolicyDocument"]) for p in props.get("Policies", [])]
            assert not props.get("ManagedPolicyArns"), f"{logical_id}: managed policies are not reviewed here"
        elif kind in ("AWS::IAM::Policy", "AWS::IAM::RolePolicy", "AWS::IAM::ManagedPolicy"):
            docs = [("iam", props["PolicyDocument"])]
        elif kind == "AWS::Serverless::Function":
            for policy in props.get("Policies", []):
                assert isinstance(policy, dict) and "Statement" in policy, f"{logical_id}: inline statements only"
                docs.append(("iam", policy))
        elif kind in ("AWS::S3::BucketPolicy", "AWS::SQS::QueuePolicy", "AWS::SNS::TopicPolicy"):
            docs = [("resource", props["PolicyDocument"])]
        for doc_kind, doc in docs:
            out += [(logical_id, doc_kind, st) for st in as_list(doc["Statement"])]
    return out


def test_the_walk_sees_every_policy(resources):
    seen = {r for r, _, _ in policy_statements(resources)}
    assert {"StateMachineRole", "SageMakerExecutionRole", "StartPipelineFunction", "RecordResultsFunction",
            "DataBucketPolicy", "UploadEventsDeadLetterQueuePolicy", "SageMakerKmsKeyPolicy",
            "FunctionsKmsKeyPolicy"} <= seen
    types = {res["Type"] for res in resources.values()}
    assert "AWS::Lambda::Permission" in types  # checked below, not a policy document
    assert not types & {"AWS::IAM::User", "AWS::IAM::Group", "AWS::IAM::AccessKey", "AWS::KMS::Key"}


def test_every_star_resource_is_a_documented_exception_everywhere(resources):
    for logical_id, kind, st in policy_statements(resources):
        if kind == "iam" and "*" in as_list(st.get("Resource")):
            sid = st.get("Sid")
            assert st["Effect"] == "Allow" and sid in STAR_EXCEPTIONS, f"{logical_id}: Resource '*' in {st}"
            assert set(as_list(st["Action"])) <= STAR_EXCEPTIONS[sid]
            assert sid.endswith(("HasNoResourceType", "HaveNoResourceType")), "name the reason in the Sid"
        assert "NotAction" not in st and "NotResource" not in st, f"{logical_id}: Not* widens a statement"


def test_star_exceptions_are_each_explained_in_the_template():
    lines = (ROOT / "template.yaml").read_text().splitlines()
    for sid in STAR_EXCEPTIONS:
        (at,) = [i for i, line in enumerate(lines) if f"Sid: {sid}" in line]
        above = "\n".join(lines[max(0, at - 3):at])
        assert "#" in above and "resource" in above.lower(), f"{sid}: no comment above it saying why '*'"


def test_resource_policies_allow_only_scoped_service_principals(resources):
    for logical_id, kind, st in policy_statements(resources):
        if kind != "resource":
            continue
        if st["Effect"] == "Allow":
            assert st["Principal"] != "*" and "AWS" not in st["Principal"], f"{logical_id}: {st}"
            assert "aws:SourceArn" in json.dumps(st.get("Condition")), f"{logical_id}: an unconditioned service grant"
        elif st.get("Sid") == "OnlyThePipelineWritesRuns":
            continue  # the results guard: tested in test_only_the_pipeline_may_write_runs
        else:
            assert st["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_only_the_pipeline_may_write_runs(resources):
    """Results cannot be forged by someone who can write the bucket: writes, overwrites and deletes under runs/
    are denied to every principal but the SageMaker job role and the pipeline's own roles."""
    statements = resources["DataBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    (guard,) = [s for s in statements if s.get("Sid") == "OnlyThePipelineWritesRuns"]
    assert guard["Effect"] == "Deny" and guard["Principal"] == "*"
    assert guard["Resource"] == {"Fn::Sub": "${DataBucket.Arn}/runs/*"}
    assert {"s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion"} <= set(guard["Action"])
    allowed = guard["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]
    assert {a["Fn::GetAtt"][0] for a in allowed} == {
        "SageMakerExecutionRole", "StateMachineRole", "StartPipelineFunctionRole", "RecordResultsFunctionRole"}
    # Of those, only the jobs may write runs/ at all (least privilege): the guard adds no write right.
    writers = [logical_id for logical_id, kind, st in policy_statements(resources) if kind == "iam"
               and st["Effect"] == "Allow" and "s3:PutObject" in as_list(st["Action"])
               and "runs/" in json.dumps(st["Resource"])]
    assert writers == ["SageMakerExecutionRole"]


def test_every_resource_policy_denies_plain_http(resources):
    for logical_id, res in resources.items():
        if res["Type"] in ("AWS::S3::BucketPolicy", "AWS::SQS::QueuePolicy"):
            denies = [s for s in res["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
            assert any(s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}} and s["Principal"] == "*"
                       for s in denies), logical_id


def test_lambda_permissions_are_tied_to_their_source(resources):
    for logical_id, res in resources.items():
        if res["Type"] == "AWS::Lambda::Permission":
            props = res["Properties"]
            assert props["Principal"].endswith(".amazonaws.com") and "SourceArn" in props, logical_id


def test_pass_role_nowhere_else(resources):
    passing = [(r, st) for r, kind, st in policy_statements(resources)
               if kind == "iam" and any(a.lower() in ("iam:passrole", "iam:*") for a in as_list(st.get("Action")))]
    assert [r for r, _ in passing] == ["StateMachineRole"]
    (_, st), = passing
    assert st["Resource"] == {"Fn::GetAtt": ["SageMakerExecutionRole", "Arn"]}
    assert st["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}


def test_bucket_encryption_uses_kms_and_the_optional_key(template, resources):
    param = template["Parameters"]["KmsKeyArn"]
    assert param["Default"] == ""
    rule = re.compile(param["AllowedPattern"])
    assert rule.match("") and rule.match("arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab")
    assert not rule.match("alias/aws/s3") and not rule.match("arn:aws:kms:eu-west-1:123456789012:alias/x")
    assert template["Conditions"]["HasKmsKey"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "KmsKeyArn"}, ""]}]}
    (sse,) = resources["DataBucket"]["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert sse["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": {"Fn::If": ["HasKmsKey", {"Ref": "KmsKeyArn"}, {"Ref": "AWS::NoValue"}]},
    }
    assert sse["BucketKeyEnabled"] is True


def test_kms_permissions_only_with_a_key_and_only_on_it(resources):
    kms = {r: res for r, res in resources.items()
           if res["Type"] == "AWS::IAM::Policy" and "kms:" in json.dumps(res["Properties"]["PolicyDocument"])}
    assert set(kms) == {"SageMakerKmsKeyPolicy", "FunctionsKmsKeyPolicy"}
    for logical_id, res in kms.items():
        assert res["Condition"] == "HasKmsKey", logical_id
        for st in res["Properties"]["PolicyDocument"]["Statement"]:
            assert st["Resource"] == {"Ref": "KmsKeyArn"}, logical_id
            actions = set(as_list(st["Action"]))
            assert actions <= {"kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey",
                               "kms:CreateGrant"}, logical_id
            if "kms:CreateGrant" in actions:
                assert st["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}
    assert resources["SageMakerKmsKeyPolicy"]["Properties"]["Roles"] == [{"Ref": "SageMakerExecutionRole"}]
    assert resources["FunctionsKmsKeyPolicy"]["Properties"]["Roles"] == [
        {"Ref": "StartPipelineFunctionRole"}, {"Ref": "RecordResultsFunctionRole"},
        {"Ref": "NoteDatasetUploadsFunctionRole"}, {"Ref": "SealDatasetsFunctionRole"},
    ]
    # No other statement anywhere grants KMS.
    for logical_id, _, st in policy_statements(resources):
        if logical_id not in kms:
            assert not any(a.startswith("kms:") for a in as_list(st.get("Action"))), logical_id


def checkov_skips(resources: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(r, skip) for r, res in resources.items()
            for skip in res.get("Metadata", {}).get("checkov", {}).get("skip", [])]


def test_every_checkov_suppression_carries_its_reason(resources):
    skips = checkov_skips(resources)
    assert skips
    for logical_id, skip in skips:
        assert set(skip) == {"id", "comment"}, f"{logical_id}: {skip}"
        assert re.fullmatch(r"CKV2?_AWS_\d+", skip["id"]), skip
        assert len(skip["comment"].split()) >= 8, f"{logical_id} {skip['id']}: say why, in a sentence"
    pairs = [(r, s["id"]) for r, s in skips]
    assert len(pairs) == len(set(pairs)), "a suppression is listed twice"


def test_docs_list_every_suppression(resources):
    doc = SECURITY_DOC.read_text()
    for logical_id, skip in checkov_skips(resources):
        assert re.search(rf"{skip['id']}\b.*{logical_id}|{logical_id}.*{skip['id']}\b", doc), (
            f"docs/security.md does not list {skip['id']} on {logical_id}"
        )


def test_no_global_checkov_skips_in_the_tooling():
    static = (ROOT / "scripts" / "static_checks.py").read_text()
    assert "--skip-check" not in static.replace('no ``--skip-check``', "")
    assert not (ROOT / ".checkov.yaml").exists() and not (ROOT / ".checkov.yml").exists()


def test_sagemaker_jobs_encrypt_traffic_and_isolate_evaluation():
    states = json.loads(ASL_FILE.read_text())["States"]
    trial = states["Trials"]["ItemProcessor"]["States"]  # the per-trial states, inside the sweep's Map
    train, evaluate = trial["Train"]["Parameters"], trial["Evaluate"]["Parameters"]
    assert train["EnableInterContainerTrafficEncryption"] is True
    assert evaluate["NetworkConfig"]["EnableInterContainerTrafficEncryption"] is True
    # Evaluation needs nothing from the network: its inputs are staged by SageMaker from S3.
    assert evaluate["NetworkConfig"]["EnableNetworkIsolation"] is True
    # Training is not isolated: the framework container pip-installs ml_code/requirements.txt when the
    # job starts, and resnet18 may download its ImageNet weights (docs/security.md).
    assert "EnableNetworkIsolation" not in train
    assert "VpcConfig" not in json.dumps(states)


def test_sagemaker_jobs_take_the_optional_kms_key_from_the_execution_input(template, resources):
    """With a KmsKeyArn, StartPipeline puts the key into the jobs' output and volume configs (never an empty
    field; no VolumeKmsKeyId for local NVMe instance types); the ASL takes those configs whole."""
    trial = json.loads(ASL_FILE.read_text())["States"]["Trials"]["ItemProcessor"]["States"]
    train, evaluate = trial["Train"]["Parameters"], trial["Evaluate"]["Parameters"]
    assert train["OutputDataConfig.$"] == "$.training.output_data_config"
    assert train["ResourceConfig.$"] == "$.training.resource_config"
    assert evaluate["ProcessingOutputConfig.$"] == "$.evaluation.output_config"
    assert evaluate["ProcessingResources"] == {"ClusterConfig.$": "$.evaluation.cluster_config"}
    # No literal config beside them that could override or shadow the input's.
    assert not {"OutputDataConfig", "ResourceConfig"} & set(train)
    assert "ProcessingOutputConfig" not in evaluate
    assert "Kms" not in ASL_FILE.read_text()
    env = resources["StartPipelineFunction"]["Properties"]["Environment"]["Variables"]
    assert env["KMS_KEY_ARN"] == {"Fn::If": ["HasKmsKey", {"Ref": "KmsKeyArn"}, ""]}
    # The state machine role (the caller of CreateTrainingJob/CreateProcessingJob) gets no KMS permission:
    # the key's grants are the SageMaker execution role's (SageMakerKmsKeyPolicy, checked above).
    role = json.dumps(resources["StateMachineRole"]["Properties"])
    assert "kms:" not in role
