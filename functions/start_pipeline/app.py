"""StartPipeline Lambda: an upload under manifests/ or a completed dataset starts one run.

A thin handler: parse the event, call ``nyanops.core.start_pipeline.handle_upload`` for each upload,
count what happened. Clients and configuration are created once per container (``get_deps``) and can
be replaced by tests or the local runner (``set_deps``).
"""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from nyanops.aws.s3_store import S3ObjectStore
from nyanops.aws.sns import SnsNotifier
from nyanops.aws.step_functions import StepFunctionsStarter
from nyanops.core.settings import StartPipelineSettings, load_settings
from nyanops.core.start_pipeline import Outcome, StartPipelineDeps, handle_upload
from nyanops.core.upload_events import uploads_from_event

logger = Logger()
tracer = Tracer()
metrics = Metrics()

METRIC_NAMES = {
    Outcome.STARTED: "RunsStarted",
    Outcome.REJECTED: "UploadsRefused",
    Outcome.DUPLICATE: "DuplicateEvents",
    Outcome.IGNORED: "UploadsIgnored",
}

_deps: StartPipelineDeps | None = None


def get_deps() -> StartPipelineDeps:
    global _deps
    if _deps is None:
        settings = load_settings(StartPipelineSettings)
        _deps = StartPipelineDeps(
            store=S3ObjectStore(boto3.client("s3"), settings.bucket),
            starter=StepFunctionsStarter(boto3.client("stepfunctions"), settings.state_machine_arn),
            notifier=SnsNotifier(boto3.client("sns"), settings.topic_arn),
            settings=settings,
        )
    return _deps


def set_deps(deps: StartPipelineDeps | None) -> None:
    global _deps
    _deps = deps


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    deps = get_deps()
    results = []
    for upload in uploads_from_event(event):
        result = handle_upload(upload, deps)
        metrics.add_metric(name=METRIC_NAMES[result.outcome], unit=MetricUnit.Count, value=1)
        logger.info(
            "upload handled",
            extra={
                "outcome": result.outcome.value,
                "key": result.key,
                "execution": result.execution_name,
                "reason": result.reason,
            },
        )
        results.append(result.as_dict())
    return {"results": results}
