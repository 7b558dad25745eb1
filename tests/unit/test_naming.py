"""Names AWS constrains: executions (80, no forbidden characters) and SageMaker jobs (63, regex)."""

from __future__ import annotations

import random
import re
import string

import pytest

from nyanops.core import naming

FORBIDDEN_IN_EXECUTION = set(' \t\n<>{}[]?*"#%\\^|~`$&,;:/')
BUCKET = "nyanops-example-bucket"
ALPHABET = string.ascii_letters + string.digits + " -_./+%=&:()[]{}'\"" + "ねこ猫éß\u00a0\u200b🐈"


def assert_valid_names(name: str) -> None:
    assert 1 <= len(name) <= naming.EXECUTION_NAME_MAX
    assert not FORBIDDEN_IN_EXECUTION & set(name), name
    assert all(32 < ord(ch) < 127 for ch in name), name
    for job in (naming.training_job_name(name), naming.processing_job_name(name)):
        assert len(job) <= 63
        assert naming.SAGEMAKER_JOB_NAME_RE.match(job), job
        assert re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", job)


@pytest.mark.parametrize(
    ("kind", "key"),
    [
        ("m", "manifests/epochs10.json"),
        ("m", "manifests/" + "x" * 1000 + ".json"),
        ("m", "manifests/ねこ の 実験.json"),
        ("m", "manifests/----.json"),
        ("m", "manifests/🐈🐈.json"),
        ("ds", "datasets/2026-11-28T064300Z/_dataset.json"),
        ("", "manifests/a.json"),
        ("a-very-long-kind-name", "manifests/a.json"),
    ],
)
def test_names_stay_within_limits(kind: str, key: str) -> None:
    name = naming.execution_name(kind, key.rsplit("/", 1)[-1], BUCKET, key, "v1")
    assert_valid_names(name)


def test_name_is_deterministic_per_upload() -> None:
    a = naming.execution_name("m", "epochs10", BUCKET, "manifests/epochs10.json", "ver-1")
    assert a == naming.execution_name("m", "epochs10", BUCKET, "manifests/epochs10.json", "ver-1")
    assert a.startswith("m-epochs10-")


@pytest.mark.parametrize(
    ("bucket", "key", "version"),
    [
        (BUCKET, "manifests/epochs10.json", "ver-2"),
        (BUCKET, "manifests/epochs10.json", None),
        (BUCKET, "manifests/epochs11.json", "ver-1"),
        ("other-bucket", "manifests/epochs10.json", "ver-1"),
    ],
)
def test_any_difference_in_the_upload_gives_a_different_name(bucket: str, key: str, version: str | None) -> None:
    base = naming.execution_name("m", "epochs10", BUCKET, "manifests/epochs10.json", "ver-1")
    assert naming.execution_name("m", "epochs10", bucket, key, version) != base


def test_fingerprint_fields_do_not_run_into_each_other() -> None:
    assert naming.upload_fingerprint("ab", "c", None) != naming.upload_fingerprint("a", "bc", None)


def test_slug() -> None:
    assert naming.slug("Epochs 10 + Augment!", 100) == "epochs-10-augment"
    assert naming.slug("ねこ", 10) == ""
    assert naming.slug("abc-def", 4) == "abc"  # trimmed, then no trailing hyphen


def test_job_name_from_unusable_execution_name_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot derive"):
        naming.training_job_name("under_score")


@pytest.mark.parametrize(
    ("name", "ok"),
    [("cats", True), ("cats-v2", True), ("a" * 120, True), ("a" * 121, False), ("-cats", False),
     ("cats-", False), ("my_cats", False), ("my cats", False), ("", False), ("ねこ", False)],
)
def test_experiment_names(name: str, ok: bool) -> None:
    assert naming.is_valid_experiment_name(name) is ok


def random_text(rng: random.Random, max_len: int) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, max_len)))


def test_property_random_uploads_give_valid_distinct_names() -> None:
    """Property-style: 2000 random (unicode, long, odd) keys and versions, fixed seed."""
    rng = random.Random(20261128)
    seen: dict[str, tuple[str, str, str]] = {}
    for _ in range(2000):
        kind = rng.choice(["m", "ds", "", "Manifest!", "x" * 30])
        key = "manifests/" + random_text(rng, 300) + ".json"
        version = random_text(rng, 40)
        label = key.rsplit("/", 1)[-1].removesuffix(".json")
        name = naming.execution_name(kind, label, BUCKET, key, version)
        assert_valid_names(name)
        assert name == naming.execution_name(kind, label, BUCKET, key, version)
        upload = (kind, key, version)
        assert seen.setdefault(name, upload) == upload, "two different uploads share an execution name"
