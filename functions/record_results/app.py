"""RecordResults Lambda: registers, completes or fails a trial in SageMaker Experiments, and hands the best
model over in the SageMaker Model Registry when the best flag moves.

Invoked by the state machine with ``{"mode": "started" | "succeeded" | "champion" | "failed", "run": $,
"execution_arn": $$.Execution.Id}``; the logic is ``nyanops.core.record_results.record``. Its return value
is what ``Notify`` publishes (or, with ``rescore``, what EvaluateChampion runs).
"""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from nyanops.aws.experiment_lock import DynamoExperimentLock
from nyanops.aws.model_registry import SageMakerModelRegistry
from nyanops.aws.s3_store import S3ObjectStore
from nyanops.aws.sagemaker_experiments import SageMakerExperimentStore
from nyanops.aws.sagemaker_jobs import SageMakerProcessingJobs
from nyanops.core.record_results import RecordResultsDeps, record
from nyanops.core.settings import RecordResultsSettings, load_settings

logger = Logger()
tracer = Tracer()
metrics = Metrics()

_deps: RecordResultsDeps | None = None


def get_deps() -> RecordResultsDeps:
    global _deps
    if _deps is None:
        settings = load_settings(RecordResultsSettings)
        lock = DynamoExperimentLock(boto3.client("dynamodb"), settings.lock_table)
        sagemaker = boto3.client("sagemaker")
        _deps = RecordResultsDeps(
            store=S3ObjectStore(boto3.client("s3"), settings.bucket),
            experiments=SageMakerExperimentStore(sagemaker, lock),
            jobs=SageMakerProcessingJobs(sagemaker),
            registry=SageMakerModelRegistry(sagemaker, settings.model_image),
        )
    return _deps


def set_deps(deps: RecordResultsDeps | None) -> None:
    global _deps
    _deps = deps


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = record(event, get_deps())
    logger.info(
        "trial recorded",
        extra={k: result.get(k) for k in ("experiment", "trial", "status", "is_best", "best_trial")},
    )
    metrics.add_metric(name=f"Trials{result['status']}", unit=MetricUnit.Count, value=1)
    if result.get("is_best"):
        metrics.add_metric(name="NewBestModels", unit=MetricUnit.Count, value=1)
    return result
