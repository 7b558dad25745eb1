"""AWS's limits in one module (core/limits), names matched whole and case-insensitively, keys within S3's limit."""

from __future__ import annotations

import hashlib

import pytest

from nyanops.core import layout, limits, naming
from nyanops.core.limits import LimitExceeded

# -- trial-component parameters -------------------------------------------------------------------


def params(count: int, value: str = "x", key_len: int = 8) -> dict[str, dict[str, object]]:
    return {f"{i:0{key_len}d}": {"StringValue": value} for i in range(count)}


def test_parameter_count_at_both_ends() -> None:
    limits.check_trial_parameters(params(limits.TRIAL_COMPONENT_PARAMETERS_MAX))
    with pytest.raises(LimitExceeded) as caught:
        limits.check_trial_parameters(params(limits.TRIAL_COMPONENT_PARAMETERS_MAX + 1))
    assert caught.value.field == "Parameters"
    assert "301 parameters, more than SageMaker's 300" in caught.value.problem


def test_parameter_value_length_at_both_ends() -> None:
    limits.check_trial_parameters({"k": {"StringValue": "v" * 2500}})
    with pytest.raises(LimitExceeded) as caught:
        limits.check_trial_parameters({"k": {"StringValue": "v" * 2501}})
    assert caught.value.field == "Parameters.k"
    assert "2501 characters, more than SageMaker's 2500" in str(caught.value)


def test_parameter_key_length_at_both_ends() -> None:
    limits.check_trial_parameters(params(1, key_len=320))
    with pytest.raises(LimitExceeded) as caught:
        limits.check_trial_parameters(params(1, key_len=321))
    assert "321 characters, more than SageMaker's 320" in caught.value.problem
    assert caught.value.field.endswith("...") and len(caught.value.field) < 60


def test_number_values_have_no_length() -> None:
    limits.check_trial_parameters({"k": {"NumberValue": 1e300}})


def test_status_message_at_both_ends() -> None:
    limits.check_status_message("m" * 1024)
    with pytest.raises(LimitExceeded, match="1025 characters, more than SageMaker's 1024"):
        limits.check_status_message("m" * 1025)


def test_limit_exceeded_is_a_value_error_naming_the_field() -> None:
    exc = LimitExceeded("Parameters.x", "too long")
    assert isinstance(exc, ValueError) and str(exc) == "Parameters.x: too long"


def test_execution_input_budget_leaves_room_for_three_causes() -> None:
    assert limits.PAYLOAD_MAX_BYTES == 256 * 1024
    assert limits.EXECUTION_INPUT_MAX_BYTES == 256 * 1024 - 3 * 32_768


# -- clipping -------------------------------------------------------------------------------------


def test_clip_at_both_ends() -> None:
    assert limits.clip("a" * 10, 10) == "a" * 10
    clipped = limits.clip("a" * 11, 10)
    assert clipped == "aaaa [...]" and len(clipped) == 10
    assert limits.clip("abcdef", 5, marker="~") == "abcd~"


def test_clip_utf8_cuts_on_a_character_boundary() -> None:
    text = "ね" * 10  # 3 bytes each
    assert limits.clip_utf8(text, 30) == text
    clipped = limits.clip_utf8(text, 29)
    assert limits.utf8_len(clipped) <= 29 and clipped.endswith(" [...]")
    assert clipped == "ね" * 7 + " [...]"  # 23 bytes of room: seven whole characters
    assert limits.clip_utf8("abc", 3, marker="") == "abc"
    assert limits.utf8_len(limits.clip_utf8("é" * 600, 1024)) == 1024  # 509 two-byte characters + the marker


# -- names ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["cats\n", "cats\r", "\ncats", "ca\nts", "cats ", "cats\x00", "cats\u200b"])
def test_names_are_matched_whole(name: str) -> None:
    assert not naming.is_valid_experiment_name(name)
    assert not naming.SAGEMAKER_JOB_NAME_RE.fullmatch(name)


@pytest.mark.parametrize("text", ["x\n", "\nx", "x/y", "", "-x", "x" * 129])
def test_dataset_ids_are_matched_whole(text: str) -> None:
    assert not layout.is_dataset_id(text)


def test_dataset_id_bounds() -> None:
    assert layout.is_dataset_id("x") and layout.is_dataset_id("x" * 128)
    assert layout.is_dataset_id("2026-11-28T064300Z") and layout.is_dataset_id("my.cats_v2")


def test_code_hash_is_matched_whole() -> None:
    assert layout.is_code_hash("a" * 64)
    for bad in ("a" * 64 + "\n", "a" * 63, "a" * 65, "A" * 64, "g" * 64):
        assert not layout.is_code_hash(bad)


@pytest.mark.parametrize(("a", "b"), [("cats", "Cats"), ("cats", "CATS"), ("Cats-V2", "cats-v2")])
def test_experiment_names_are_case_insensitive(a: str, b: str) -> None:
    assert naming.experiment_key(a) == naming.experiment_key(b) == a.lower()
    assert naming.same_experiment(a, b)


def test_different_names_stay_different() -> None:
    assert not naming.same_experiment("cats", "cats2")
    assert not naming.same_experiment("cats", "cats\n")
    assert naming.experiment_key("a-b") != naming.experiment_key("ab")


def test_experiment_name_length_at_both_ends() -> None:
    assert naming.is_valid_experiment_name("a" * limits.EXPERIMENT_ENTITY_NAME_MAX)
    assert not naming.is_valid_experiment_name("a" * (limits.EXPERIMENT_ENTITY_NAME_MAX + 1))
    assert naming.is_valid_experiment_name("a--b")


def test_job_names_of_the_longest_execution_name_fit() -> None:
    execution = "m" + "x" * (naming.EXECUTION_NAME_LEN - 1)
    jobs = [naming.training_job_name(execution), naming.processing_job_name(execution)]
    jobs += [naming.champion_job_name(execution, n) for n in range(1, naming.MAX_CHAMPION_ATTEMPTS + 1)]
    assert all(len(job) <= limits.JOB_NAME_MAX and naming.SAGEMAKER_JOB_NAME_RE.fullmatch(job) for job in jobs)
    assert jobs[:2] == [execution + "-train", execution + "-eval"]
    assert jobs[2:] == [f"{execution}-champ{n}" for n in range(1, naming.MAX_CHAMPION_ATTEMPTS + 1)]
    assert len(jobs) == len(set(jobs))


def test_a_longer_execution_name_is_cut_before_its_suffix() -> None:
    execution = "m" + "x" * 70 + "-y"
    job = naming.champion_job_name(execution, 1)
    assert len(job) == limits.JOB_NAME_MAX and job.endswith("x-champ1")
    assert naming.processing_job_name("a-" + "-" * 70).endswith("a-eval")


@pytest.mark.parametrize("attempt", [0, -1, naming.MAX_CHAMPION_ATTEMPTS + 1])
def test_champion_attempts_outside_the_range_are_refused(attempt: int) -> None:
    with pytest.raises(ValueError, match=f"attempt {attempt} is outside 1..{naming.MAX_CHAMPION_ATTEMPTS}"):
        naming.champion_job_name("m-x", attempt)


def test_execution_name_leaves_room_for_every_suffix() -> None:
    assert limits.JOB_NAME_MAX - len("-champ1") == naming.EXECUTION_NAME_LEN
    assert naming.EXECUTION_NAME_LEN <= limits.EXECUTION_NAME_MAX


# -- S3 keys --------------------------------------------------------------------------------------

PLAIN_ROOM = limits.S3_KEY_MAX_BYTES - len("rejected/") - len(".error.json")


def test_rejection_key_at_the_limit_is_plain() -> None:
    key = "manifests/" + "k" * (PLAIN_ROOM - len("manifests/"))
    assert layout.rejection_key(key) == f"rejected/{key}.error.json"
    assert len(layout.rejection_key(key)) == limits.S3_KEY_MAX_BYTES


def test_rejection_key_one_byte_over_is_shortened_with_a_hash() -> None:
    key = "manifests/" + "k" * (PLAIN_ROOM - len("manifests/") + 1)
    rejected = layout.rejection_key(key)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    assert rejected.startswith("rejected/manifests/kkk") and rejected.endswith(f"~{digest}.error.json")
    assert len(rejected.encode()) == limits.S3_KEY_MAX_BYTES
    assert layout.classify_key(rejected).kind is layout.KeyKind.IGNORED


def test_rejection_keys_of_long_keys_stay_distinct_and_whole_characters() -> None:
    a = "manifests/" + "ね" * 400 + "a.json"
    b = "manifests/" + "ね" * 400 + "b.json"
    ra, rb = layout.rejection_key(a), layout.rejection_key(b)
    assert ra != rb
    for rejected in (ra, rb):
        assert len(rejected.encode("utf-8")) <= limits.S3_KEY_MAX_BYTES
        rejected.encode("utf-8").decode("utf-8")  # no broken character
    assert layout.rejection_key(a) == ra  # deterministic: one record per upload key


def test_run_prefixes() -> None:
    assert layout.run_champion_prefix("m-x", 2) == "runs/m-x/champion-2/"
    assert layout.run_evaluation_prefix("m-x") == "runs/m-x/evaluation/"
    assert layout.run_prefix("m-x") == "runs/m-x/"
