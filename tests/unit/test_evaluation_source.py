"""RecordResults reads only what the execution's own processing job wrote (core/evaluation_source)."""

from __future__ import annotations

import json
from datetime import timedelta, timezone
from typing import Any

import pytest
from aws.evaluation_docs import evaluation_doc, job_identity

from nyanops.core import limits
from nyanops.core.evaluation_source import CLOCK_SLACK, EvaluationRefused, read_job_evaluation
from nyanops.core.ports import ObjectInfo

from .memory_ports import T0, MemoryJobs, MemoryObjects

EXECUTION = "m-cats-0123456789abcdef"
JOB = f"{EXECUTION}-eval"
OUTPUT = f"s3://b/runs/{EXECUTION}/evaluation"
KEY = f"runs/{EXECUTION}/evaluation/evaluation.json"
CLASSES = ("bengal", "siamese")
COUNTS = {"bengal": 2, "siamese": 2}


def world(doc: Any = None, **job: Any) -> tuple[MemoryObjects, MemoryJobs]:
    objects, jobs = MemoryObjects(), MemoryJobs()
    body = doc if isinstance(doc, bytes) else json.dumps(doc or evaluation_doc(job=job_identity(EXECUTION))).encode()
    objects.put(KEY, body)
    jobs.add(JOB, OUTPUT, **job)
    return objects, jobs


def read(objects: MemoryObjects, jobs: MemoryJobs, **overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "output_uri": OUTPUT, "execution": EXECUTION, "job_name": JOB, "classes": CLASSES, "test_counts": COUNTS,
    }
    args.update(overrides)
    return read_job_evaluation(objects, jobs, **args)


def refusal(objects: MemoryObjects, jobs: MemoryJobs, **overrides: Any) -> EvaluationRefused:
    with pytest.raises(EvaluationRefused) as caught:
        read(objects, jobs, **overrides)
    assert caught.value.uri == overrides.get("output_uri", OUTPUT).rstrip("/") + "/evaluation.json"
    assert str(caught.value) == f"{caught.value.uri}: {caught.value.problem}"
    return caught.value


def test_the_jobs_own_file_is_read() -> None:
    objects, jobs = world()
    assert read(objects, jobs)["job"] == job_identity(EXECUTION)
    assert read(objects, jobs, output_uri=OUTPUT + "/")["num_images"] == 4


def test_a_file_in_another_bucket_is_refused() -> None:
    objects, jobs = world()
    problem = refusal(objects, jobs, output_uri=f"s3://other/runs/{EXECUTION}/evaluation").problem
    assert problem == "is outside this pipeline's bucket b"


def test_no_such_job() -> None:
    objects, jobs = world()
    jobs.jobs.clear()
    assert refusal(objects, jobs).problem == f"there is no processing job {JOB}: the file was not written by this run"


@pytest.mark.parametrize(
    ("job", "cause"),
    [
        ({"status": "Failed", "exit_message": "test split hash differs", "failure_reason": "AlgorithmError"},
         "ended Failed: test split hash differs"),
        ({"status": "Failed", "failure_reason": "AlgorithmError: exit 1"}, "ended Failed: AlgorithmError: exit 1"),
        ({"status": "Stopped"}, "ended Stopped: no reason given"),
        ({"status": "InProgress"}, "ended InProgress"),
    ],
)
def test_a_job_that_did_not_complete(job: dict[str, Any], cause: str) -> None:
    objects, jobs = world(**job)
    assert cause in refusal(objects, jobs).problem


def test_a_job_that_wrote_elsewhere() -> None:
    objects, jobs = world()
    jobs.add(JOB, f"s3://b/runs/{EXECUTION}/champion-1")
    assert refusal(objects, jobs).problem == f"processing job {JOB} did not write to {OUTPUT}/"


def test_a_completed_job_without_the_file() -> None:
    objects, jobs = world()
    objects.versions.clear()
    assert refusal(objects, jobs).problem == f"evaluation.json was not written by processing job {JOB}"


class HugeObjects(MemoryObjects):
    def head(self, key: str) -> ObjectInfo | None:
        info = super().head(key)
        return None if info is None else ObjectInfo(key, limits.EVALUATION_MAX_BYTES + 1, None, T0, "v1")

    def get(self, key: str, version_id: str | None = None) -> bytes:
        raise AssertionError("an oversized evaluation is refused before it is read")


def test_an_oversized_file_is_refused_before_it_is_read() -> None:
    objects, jobs = HugeObjects(), MemoryJobs()
    objects.put(KEY, b"{}")
    jobs.add(JOB, OUTPUT)
    assert f"{limits.EVALUATION_MAX_BYTES + 1} bytes, more than" in refusal(objects, jobs).problem


def test_a_file_of_exactly_the_limit_is_read() -> None:
    class AtLimit(MemoryObjects):
        def head(self, key: str) -> ObjectInfo | None:
            info = super().head(key)
            return None if info is None else ObjectInfo(key, limits.EVALUATION_MAX_BYTES, None, T0, "v1")

    objects, jobs = AtLimit(), MemoryJobs()
    objects.put(KEY, json.dumps(evaluation_doc(job=job_identity(EXECUTION))).encode())
    jobs.add(JOB, OUTPUT)
    assert read(objects, jobs)["class_names"] == list(CLASSES)


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [
        (-timedelta(minutes=5) - CLOCK_SLACK, True),
        (-timedelta(minutes=5) - CLOCK_SLACK - timedelta(seconds=1), False),
        (timedelta(minutes=1) + CLOCK_SLACK, True),
        (timedelta(minutes=1) + CLOCK_SLACK + timedelta(seconds=1), False),
        (timedelta(days=-1), False),
    ],
)
def test_the_file_must_be_written_during_the_jobs_run(offset: timedelta, accepted: bool) -> None:
    objects, jobs = MemoryObjects(now=T0 + offset), MemoryJobs()
    objects.put(KEY, json.dumps(evaluation_doc(job=job_identity(EXECUTION))).encode())
    jobs.add(JOB, OUTPUT)  # ran from T0 - 5 min to T0 + 1 min
    if accepted:
        read(objects, jobs)
    else:
        assert "outside processing job" in refusal(objects, jobs).problem


def test_naive_times_are_utc() -> None:
    objects, jobs = world(started=(T0 - timedelta(minutes=5)).replace(tzinfo=None), ended=T0.replace(tzinfo=None))
    read(objects, jobs)
    objects.now = T0 + CLOCK_SLACK + timedelta(seconds=1)
    objects.put(KEY, json.dumps(evaluation_doc(job=job_identity(EXECUTION))).encode())
    assert "outside processing job" in refusal(objects, jobs).problem


@pytest.mark.parametrize("missing", ["started", "ended"])
def test_a_job_without_its_times_cannot_vouch_for_the_file(missing: str) -> None:
    objects, jobs = world(**{missing: None})
    assert "cannot tell whether evaluation.json was written during" in refusal(objects, jobs).problem


def test_a_file_without_a_time_is_refused() -> None:
    class Timeless(MemoryObjects):
        def head(self, key: str) -> ObjectInfo | None:
            info = super().head(key)
            return None if info is None else ObjectInfo(key, info.size, None, None, info.version_id)

    objects, jobs = Timeless(), MemoryJobs()
    objects.put(KEY, json.dumps(evaluation_doc(job=job_identity(EXECUTION))).encode())
    jobs.add(JOB, OUTPUT)
    assert "cannot tell" in refusal(objects, jobs).problem


def test_the_version_whose_time_was_checked_is_the_one_read() -> None:
    """A forged overwrite between the check and the read is not what gets recorded."""

    class Racing(MemoryObjects):
        def head(self, key: str) -> ObjectInfo | None:
            info = super().head(key)
            forged = evaluation_doc(wrong=0, job=job_identity(EXECUTION))
            self.put(key, json.dumps(forged).encode())
            return info

    objects, jobs = Racing(), MemoryJobs()
    objects.put(KEY, json.dumps(evaluation_doc(wrong=2, job=job_identity(EXECUTION))).encode())
    jobs.add(JOB, OUTPUT)
    assert read(objects, jobs)["metrics"]["accuracy"] == 0.5


@pytest.mark.parametrize("body", [b"not json", b"\xff\xfe", b""])
def test_a_file_that_is_not_json(body: bytes) -> None:
    objects, jobs = world(body)
    assert refusal(objects, jobs).problem.startswith("not JSON")


def test_a_forged_perfect_score_with_other_classes_is_refused() -> None:
    forged = evaluation_doc(wrong=0, classes=("persian", "sphynx"), job=job_identity(EXECUTION))
    objects, jobs = world(forged)
    assert refusal(objects, jobs).problem.startswith("class_names: 2 classes that are not the dataset's 2 classes")


def test_figures_the_matrix_does_not_give_are_refused() -> None:
    doc = evaluation_doc(wrong=2, job=job_identity(EXECUTION))
    doc["metrics"]["macro_f1"] = 1.0
    objects, jobs = world(doc)
    assert refusal(objects, jobs).problem.startswith("metrics.macro_f1: is 1.0 but the confusion matrix gives")


@pytest.mark.parametrize(
    ("identity", "field"),
    [
        (None, "job: missing"),
        ({"execution": "m-other", "processing_job": JOB}, "job.execution"),
        ({"execution": EXECUTION, "processing_job": f"{EXECUTION}-champ1"}, "job.processing_job"),
    ],
)
def test_a_report_of_another_job_is_refused(identity: dict[str, str] | None, field: str) -> None:
    objects, jobs = world(evaluation_doc(job=identity))
    assert refusal(objects, jobs).problem.startswith(field)


def test_the_wrong_test_counts_are_refused() -> None:
    objects, jobs = world()
    problem = refusal(objects, jobs, test_counts={"bengal": 2, "siamese": 3}).problem
    assert problem.startswith("per_class.siamese.support: 2 test images, but the dataset's test split has 3")


def test_the_champions_job_is_read_from_its_own_prefix() -> None:
    champion_out = f"s3://b/runs/{EXECUTION}/champion-1"
    objects, jobs = MemoryObjects(), MemoryJobs()
    objects.put(f"runs/{EXECUTION}/champion-1/evaluation.json",
                json.dumps(evaluation_doc(job=job_identity(EXECUTION, f"{EXECUTION}-champ1"))).encode())
    jobs.add(f"{EXECUTION}-champ1", champion_out)
    doc = read(objects, jobs, output_uri=champion_out, job_name=f"{EXECUTION}-champ1")
    assert doc["job"]["processing_job"] == f"{EXECUTION}-champ1"


def test_times_in_another_zone_are_compared_as_instants() -> None:
    tokyo = timezone(timedelta(hours=9))
    objects, jobs = world(started=(T0 - timedelta(minutes=5)).astimezone(tokyo), ended=T0.astimezone(tokyo))
    read(objects, jobs)  # written at T0 (UTC), within 07:55-08:00 UTC = 16:55-17:00 in Tokyo


def test_an_output_prefix_ending_in_x() -> None:
    """Only slashes are trimmed from the prefix (a job name may end in any letter)."""
    output = "s3://b/runs/m-cats-X/evaluation-X"
    objects, jobs = MemoryObjects(), MemoryJobs()
    body = json.dumps(evaluation_doc(job=job_identity(EXECUTION))).encode()
    objects.put("runs/m-cats-X/evaluation-X/evaluation.json", body)
    jobs.add(JOB, output + "/")
    assert read(objects, jobs, output_uri=output)["num_images"] == 4
