"""The EventBridge rule starts runs for exactly the keys nyanops.core.layout says start runs.

A tiny matcher for the EventBridge operators the template uses (exact strings, prefix, suffix,
wildcard); an operator it does not know fails the test instead of being ignored.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from nyanops.core import layout

BUCKET = "nyanops-databucket-abc123"


def _value_matches(condition: Any, value: Any) -> bool:
    if isinstance(condition, str):
        return condition == value
    if isinstance(condition, dict) and len(condition) == 1:
        (op, arg), = condition.items()
        if not isinstance(value, str):
            return False
        if op == "prefix":
            return value.startswith(arg)
        if op == "suffix":
            return value.endswith(arg)
        if op == "wildcard":
            # EventBridge: '*' matches any run of characters (slashes included); no other specials.
            regex = "".join(".*" if ch == "*" else re.escape(ch) for ch in arg)
            return re.fullmatch(regex, value, re.S) is not None
    raise AssertionError(f"the test matcher does not know EventBridge operator {condition!r}")


def matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    """EventBridge semantics: every pattern field must be present; a list is an OR of conditions."""
    for field, condition in pattern.items():
        if field not in event:
            return False
        if isinstance(condition, dict):
            if not isinstance(event[field], dict) or not matches(condition, event[field]):
                return False
        elif not any(_value_matches(c, event[field]) for c in condition):
            return False
    return True


def object_created(key: str, bucket: str = BUCKET, detail_type: str = "Object Created") -> dict[str, Any]:
    return {
        "version": "0",
        "source": "aws.s3",
        "detail-type": detail_type,
        "detail": {"bucket": {"name": bucket}, "object": {"key": key, "size": 10, "etag": "e"}, "reason": "PutObject"},
    }


@pytest.fixture(scope="module")
def pattern(resources) -> dict[str, Any]:
    """The rule's pattern with the bucket reference resolved to a concrete name."""
    raw = resources["UploadRule"]["Properties"]["EventPattern"]
    names = raw["detail"]["bucket"]["name"]
    assert names == [{"Ref": "DataBucket"}], "the rule must be limited to this stack's bucket"
    resolved = {**raw, "detail": {**raw["detail"], "bucket": {"name": [BUCKET]}}}
    return resolved


STARTS_RUNS = [
    layout.dataset_marker_key("2026-11-28T064300Z"),
    layout.dataset_marker_key("cats-dev"),
    layout.manifest_key("epochs10"),
    layout.manifest_key("augment-300"),
]
STARTS_NOTHING = [
    "datasets/x/train/bengal/a.jpg",
    "datasets/2026-11-28T064300Z/val/tama/b.png",
    "datasets/2026-11-28T064300Z/_dataset.json.tmp",
    layout.rejection_key(layout.manifest_key("epochs10")),
    layout.rejection_key(layout.dataset_marker_key("2026-11-28T064300Z")),
    layout.evaluation_key("m-epochs10-0123456789abcdef"),
    layout.run_model_prefix("m-epochs10-0123456789abcdef") + "model.tar.gz",
    layout.code_bundle_key("0" * 64),
    layout.code_source_prefix("0" * 64) + "train.py",
    "manifests/notes.txt",
    "manifests.json",
    "other/manifests/epochs10.json",
]


@pytest.mark.parametrize("key", STARTS_RUNS)
def test_rule_fires_for_run_starting_keys(pattern, key):
    assert layout.classify_key(key).kind is not layout.KeyKind.IGNORED
    assert matches(pattern, object_created(key))


@pytest.mark.parametrize("key", STARTS_NOTHING)
def test_rule_ignores_everything_else(pattern, key):
    assert layout.classify_key(key).kind is layout.KeyKind.IGNORED
    assert not matches(pattern, object_created(key))


def test_rule_ignores_other_buckets_and_event_types(pattern):
    key = layout.manifest_key("epochs10")
    assert not matches(pattern, object_created(key, bucket="someone-elses-bucket"))
    assert not matches(pattern, object_created(key, detail_type="Object Deleted"))
    assert not matches(pattern, {**object_created(key), "source": "aws.s3.fake"})


def test_pattern_uses_the_layout_constants(pattern):
    keys = pattern["detail"]["object"]["key"]
    wildcards = {c["wildcard"] for c in keys}
    assert wildcards == {
        f"{layout.DATASETS_PREFIX}*/{layout.DATASET_MARKER}",
        f"{layout.MANIFESTS_PREFIX}*{layout.MANIFEST_SUFFIX}",
    }


def test_the_matcher_itself():
    assert _value_matches({"wildcard": "a/*.json"}, "a/b/c.json")
    assert not _value_matches({"wildcard": "a/*.json"}, "a/b.jsonx")
    assert _value_matches({"prefix": "a/"}, "a/b") and _value_matches({"suffix": ".j"}, "x.j")
    with pytest.raises(AssertionError):
        _value_matches({"numeric": [">", 0]}, "1")


def test_only_the_rule_invokes_start_pipeline(resources):
    props = resources["StartPipelineFunction"]["Properties"]
    assert "Events" not in props, "StartPipeline must be triggered by UploadRule only"
    permissions = [r for r in resources.values() if r["Type"] == "AWS::Lambda::Permission"]
    assert [p["Properties"]["SourceArn"] for p in permissions] == [{"Fn::GetAtt": ["UploadRule", "Arn"]}]
    target = resources["UploadRule"]["Properties"]["Targets"][0]
    assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["UploadEventsDeadLetterQueue", "Arn"]}
    on_failure = props["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]
    assert on_failure["Destination"] == {"Fn::GetAtt": ["UploadEventsDeadLetterQueue", "Arn"]}
