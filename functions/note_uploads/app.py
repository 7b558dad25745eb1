"""NoteDatasetUploads Lambda: S3 object events under datasets/ (EventBridge -> SQS, in batches) noted in the
dataset registry, one update per dataset per batch; files that arrive after a dataset's seal are refused.

A thin handler over ``nyanops.core.sealing.note_uploads``. Each SQS message is one EventBridge event; a
dataset whose noting fails has its messages reported as batch item failures (retried by SQS, then its
dead-letter queue), the other datasets of the batch are done. Clients are created once per container
(``get_deps``) and can be replaced by tests (``set_deps``).
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from nyanops.aws.dataset_registry import DynamoDatasetRegistry
from nyanops.aws.s3_store import S3ObjectStore
from nyanops.aws.sns import SnsNotifier
from nyanops.core import layout
from nyanops.core.sealing import SealingDeps, note_uploads
from nyanops.core.settings import DatasetUploadsSettings, load_settings
from nyanops.core.upload_events import ObjectEvent, UnsupportedEvent, object_events

logger = Logger()
tracer = Tracer()
metrics = Metrics()

_deps: SealingDeps | None = None


def get_deps() -> SealingDeps:
    global _deps
    if _deps is None:
        settings = load_settings(DatasetUploadsSettings)
        _deps = SealingDeps(
            store=S3ObjectStore(boto3.client("s3"), settings.bucket),
            registry=DynamoDatasetRegistry(boto3.client("dynamodb"), settings.registry_table),
            notifier=SnsNotifier(boto3.client("sns"), settings.topic_arn),
            quiet_seconds=0,  # noting never seals; the quiet period is SealDatasets' setting
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
    by_dataset: dict[str, list[ObjectEvent]] = defaultdict(list)
    messages: dict[str, set[str]] = defaultdict(set)
    for record in event.get("Records", []):
        try:
            found = object_events(json.loads(record["body"]))
        except (KeyError, TypeError, ValueError, UnsupportedEvent) as exc:
            # Not an S3 object event: retrying cannot help; drop it and say so.
            logger.warning("message is not an S3 object event", extra={"message_id": record.get("messageId"),
                                                                        "error": str(exc)})
            continue
        for e in found:
            dataset_id = layout.dataset_id_of(e.key) or ""
            by_dataset[dataset_id].append(e)
            messages[dataset_id].add(record["messageId"])
    failed: set[str] = set()
    for dataset_id, events in sorted(by_dataset.items()):
        try:
            for result in note_uploads(events, deps):
                metrics.add_metric(name="DatasetUploadsNoted", unit=MetricUnit.Count, value=result.noted)
                if result.late_refused:
                    metrics.add_metric(name="LateFilesRefused", unit=MetricUnit.Count, value=len(result.late_refused))
                logger.info("dataset uploads noted", extra={"dataset": result.dataset_id, "state": result.state,
                                                            "noted": result.noted,
                                                            "late_refused": len(result.late_refused)})
        except Exception:
            logger.exception("noting failed; its messages are retried", extra={"dataset": dataset_id})
            failed |= messages[dataset_id]
    return {"batchItemFailures": [{"itemIdentifier": m} for m in sorted(failed)]}
