"""Reading an evaluation the way RecordResults must: only what the execution's own processing job wrote,
about this run's dataset, with figures that follow from its confusion matrix.

Anyone who can write the bucket could otherwise put a report claiming "F1 1.0" (with other class names)
at ``runs/<execution>/evaluation/evaluation.json`` and take the best flag. Guards, in order:

1. the bucket policy (template.yaml) denies writes under ``runs/`` to every principal except the
   SageMaker job role and the pipeline's own roles;
2. the job named in the run (``<execution>-eval``, or the champion's ``<execution>-champN``) exists, is
   Completed and was told to write exactly this output prefix (``ProcessingJobs.describe``);
3. the object's LastModified lies within that job's run (start to end, give or take
   ``CLOCK_SLACK``): a file written before the job started or after it ended is not the job's;
4. the report names that execution and job (``job``: the identity the state machine put in the job's
   environment), follows the schema, has figures that its confusion matrix gives (and per-photo
   ``predictions``, when listed, that recount to that matrix), and is about this dataset's test split (its
   classes, each class's number of test images);
5. it is at most ``limits.EVALUATION_MAX_BYTES`` (checked from the object's size before reading).

Any failure is an ``EvaluationRefused`` naming the cause; the run's trial then fails with it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from nyanops.core import evaluation_report, layout, limits
from nyanops.core.ports import ObjectStore, ProcessingJobs

CLOCK_SLACK = timedelta(minutes=2)
COMPLETED = "Completed"


class EvaluationRefused(ValueError):
    """The evaluation at ``uri`` is not one the pipeline may record; the message says why."""

    def __init__(self, uri: str, problem: str) -> None:
        super().__init__(f"{uri}: {problem}")
        self.uri = uri
        self.problem = problem


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def read_job_evaluation(
    store: ObjectStore,
    jobs: ProcessingJobs,
    *,
    output_uri: str,
    execution: str,
    job_name: str,
    classes: Sequence[str],
    test_counts: Mapping[str, int],
) -> dict[str, Any]:
    """The validated evaluation.json that processing job ``job_name`` of ``execution`` wrote under ``output_uri``."""
    uri = output_uri.rstrip("/") + "/" + layout.EVALUATION_FILE
    bucket, key = layout.parse_s3_uri(uri)
    if bucket != store.bucket:
        raise EvaluationRefused(uri, f"is outside this pipeline's bucket {store.bucket}")
    job = jobs.describe(job_name)
    if job is None:
        raise EvaluationRefused(uri, f"there is no processing job {job_name}: the file was not written by this run")
    if job.status != COMPLETED:
        cause = job.exit_message or job.failure_reason or "no reason given"
        raise EvaluationRefused(uri, f"processing job {job_name} ended {job.status}: {cause}")
    wanted = output_uri.rstrip("/")
    if wanted not in {u.rstrip("/") for u in job.output_uris}:
        raise EvaluationRefused(uri, f"processing job {job_name} did not write to {wanted}/")
    info = store.head(key)
    if info is None:
        raise EvaluationRefused(uri, f"evaluation.json was not written by processing job {job_name}")
    if info.size > limits.EVALUATION_MAX_BYTES:
        raise EvaluationRefused(
            uri, f"{info.size} bytes, more than the {limits.EVALUATION_MAX_BYTES} bytes an evaluation may have"
        )
    if info.last_modified is None or job.started_at is None or job.ended_at is None:
        # A Completed job has both times and every stored object has LastModified; without them the file
        # cannot be tied to the job's run, so it is not taken.
        raise EvaluationRefused(
            uri, f"cannot tell whether evaluation.json was written during processing job {job_name}'s run"
        )
    written = _aware(info.last_modified)
    start, end = _aware(job.started_at) - CLOCK_SLACK, _aware(job.ended_at) + CLOCK_SLACK
    if not start <= written <= end:
        raise EvaluationRefused(
            uri,
            f"written at {written.isoformat(timespec='seconds')}, outside processing job {job_name}'s run "
            f"({job.started_at.isoformat(timespec='seconds')} to {job.ended_at.isoformat(timespec='seconds')}): "
            "it is not the file the job wrote",
        )
    raw = store.get(key, info.version_id)
    try:
        doc = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EvaluationRefused(uri, f"not JSON ({exc})") from None
    try:
        evaluation_report.validate_evaluation_report(doc)
        evaluation_report.check_job(doc, execution, job_name)
        evaluation_report.check_against_dataset(doc, classes, test_counts)
    except evaluation_report.EvaluationReportError as exc:
        raise EvaluationRefused(uri, str(exc)) from None
    return doc
