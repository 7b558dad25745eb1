"""SealDatasets Lambda: every minute (an EventBridge schedule), seal each dataset prefix whose upload has been
quiet for the quiet period, by writing its ``_dataset.json`` (whose arrival starts the run through
StartPipeline), or refuse it with a reason.

A thin handler over ``nyanops.core.sealing.seal_due``; objects are read and hashed by a thread pool created
once per container. Clients are created once (``get_deps``) and can be replaced by tests (``set_deps``).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

from nyanops.aws.dataset_registry import DynamoDatasetRegistry
from nyanops.aws.s3_store import S3ObjectStore
from nyanops.aws.sns import SnsNotifier
from nyanops.core.sealing import ALREADY_SEALED, REFUSED_NOW, SEALED_NOW, SealingDeps, seal_due
from nyanops.core.settings import SealDatasetsSettings, load_settings

logger = Logger()
tracer = Tracer()
metrics = Metrics()

# Objects read at once while hashing a dataset (the S3 client's pool matches).
READERS = 16
METRIC_NAMES = {SEALED_NOW: "DatasetsSealed", REFUSED_NOW: "DatasetsRefused", ALREADY_SEALED: "DatasetsSealedByTools"}

_deps: SealingDeps | None = None


def get_deps() -> SealingDeps:
    global _deps
    if _deps is None:
        settings = load_settings(SealDatasetsSettings)
        pool = ThreadPoolExecutor(max_workers=READERS)
        s3 = boto3.client("s3", config=Config(max_pool_connections=READERS, retries={"mode": "standard"}))
        _deps = SealingDeps(
            store=S3ObjectStore(s3, settings.bucket),
            registry=DynamoDatasetRegistry(boto3.client("dynamodb"), settings.registry_table),
            notifier=SnsNotifier(boto3.client("sns"), settings.topic_arn),
            quiet_seconds=settings.quiet_seconds,
            parallel_map=pool.map,
        )
    return _deps


def set_deps(deps: SealingDeps | None) -> None:
    global _deps
    _deps = deps


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    deps = get_deps()
    deps.time_left = lambda: context.get_remaining_time_in_millis() / 1000
    results = seal_due(deps)
    for r in results:
        if r.outcome in METRIC_NAMES:
            metrics.add_metric(name=METRIC_NAMES[r.outcome], unit=MetricUnit.Count, value=1)
        logger.info("dataset looked at", extra={"dataset": r.dataset_id, "outcome": r.outcome, "detail": r.detail})
    return {"results": [{"dataset_id": r.dataset_id, "outcome": r.outcome, "detail": r.detail} for r in results]}
