"""Links into the AWS console for what a run created, so a notification or a table row leads straight to
the execution graph and the jobs' logs. Pure string building: no client, no call."""

from __future__ import annotations

from urllib.parse import quote


def _base(region: str) -> str:
    return f"https://{region}.console.aws.amazon.com"


def execution_url(region: str, execution_arn: str) -> str:
    """The Step Functions console page of one execution (graph view, events, input and output)."""
    return f"{_base(region)}/states/home?region={region}#/v2/executions/details/{quote(execution_arn, safe=':')}"


def training_job_url(region: str, job_name: str) -> str:
    return f"{_base(region)}/sagemaker/home?region={region}#/jobs/{quote(job_name, safe='')}"


def processing_job_url(region: str, job_name: str) -> str:
    return f"{_base(region)}/sagemaker/home?region={region}#/processing-jobs/{quote(job_name, safe='')}"
