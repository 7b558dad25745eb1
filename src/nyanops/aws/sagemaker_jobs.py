"""SageMaker processing jobs on AWS: the core's ``ProcessingJobs`` port over a client created once by the
caller (RecordResults checks that an evaluation was written by the execution's own job)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from nyanops.core.ports import ProcessingJob


class SageMakerProcessingJobs:
    def __init__(self, client: Any) -> None:
        self._sm = client

    def describe(self, name: str) -> ProcessingJob | None:
        try:
            d = self._sm.describe_processing_job(ProcessingJobName=name)
        except ClientError as exc:
            err = exc.response.get("Error", {})
            if err.get("Code") in ("ResourceNotFound", "ValidationException") and "not" in str(
                err.get("Message", "")
            ).lower():
                return None
            raise
        return processing_job_from_describe(d)


def processing_job_from_describe(d: dict[str, Any]) -> ProcessingJob:
    outputs = (d.get("ProcessingOutputConfig") or {}).get("Outputs") or []
    return ProcessingJob(
        name=str(d["ProcessingJobName"]),
        status=str(d.get("ProcessingJobStatus", "")),
        started_at=d.get("ProcessingStartTime"),
        ended_at=d.get("ProcessingEndTime"),
        output_uris=tuple(str((o.get("S3Output") or {}).get("S3Uri", "")) for o in outputs),
        exit_message=str(d.get("ExitMessage") or ""),
        failure_reason=str(d.get("FailureReason") or ""),
    )
