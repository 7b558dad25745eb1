"""The datasets corpus (``tests/reliability/corpus_datasets.py``) on moto: every upload is put in the versioned
bucket and its S3 event (as EventBridge sends it, in an SQS message) goes to the real NoteDatasetUploads
handler; the real SealDatasets handler runs with its clock past the quiet period; the seal's event goes to the
real StartPipeline handler."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote_plus

import pytest
from reliability.corpus_datasets import CASES, DatasetCase, run_case

from nyanops.core import layout

from .conftest import BUCKET, World
from .dataset_registry_table import QUIET_SECONDS


class MotoSide:
    def __init__(self, world: World, ctx: Any) -> None:
        self.world, self.ctx = world, ctx
        self.start_handler, _, self.note, self.sealer = world.handlers
        self.dropped: dict[str, list[dict[str, Any]]] = {}
        world.put_code()

    def _deliver(self, events: list[dict[str, Any]]) -> None:
        records = [{"messageId": str(uuid.uuid4()), "body": json.dumps(e)} for e in events]
        assert self.note.lambda_handler({"Records": records}, self.ctx) == {"batchItemFailures": []}

    def _put(self, key: str, body: bytes) -> dict[str, Any]:
        return World.eventbridge(quote_plus(key, safe="/"), self.world.put(key, body))  # keys URL-encoded, as S3 does

    def drop(self, dataset_id: str, files: dict[str, bytes], note: bool) -> None:
        events = [self._put(layout.dataset_prefix(dataset_id) + rel, body) for rel, body in files.items()]
        self.dropped[dataset_id] = events
        if note:
            self._deliver(events)

    def replay(self, dataset_id: str) -> None:
        self._deliver(self.dropped[dataset_id])

    def seal(self) -> list[str]:
        later = datetime.now(timezone.utc) + timedelta(seconds=QUIET_SECONDS + 1)
        self.sealer.get_deps().clock = lambda: later
        return [r["outcome"] for r in self.sealer.lambda_handler({}, self.ctx)["results"]]

    def put_seal(self, dataset_id: str, body: bytes, note: bool) -> None:
        event = self._put(layout.dataset_marker_key(dataset_id), body)
        if note:
            self._deliver([event])

    def etag(self, key: str) -> str | None:
        return self.world.s3.head_object(Bucket=BUCKET, Key=key)["ETag"].strip('"')

    def change(self, dataset_id: str, changes: dict[str, bytes | None], note: bool, deliveries: int) -> None:
        events = []
        for rel, body in changes.items():
            key = layout.dataset_prefix(dataset_id) + rel
            if body is None:
                r = self.world.s3.delete_object(Bucket=BUCKET, Key=key)
                deleted = World.eventbridge(quote_plus(key, safe="/"), {"size": 0, "etag": None,
                                                                        "version_id": r.get("VersionId")})
                deleted["detail-type"] = "Object Deleted"
                events.append(deleted)
            else:
                events.append(self._put(key, body))
        if note:
            for _ in range(deliveries):
                self._deliver(events)

    def start(self, dataset_id: str, deliveries: int) -> list[str]:
        key = layout.dataset_marker_key(dataset_id)
        head = self.world.s3.head_object(Bucket=BUCKET, Key=key)
        event = World.eventbridge(quote_plus(key, safe="/"), {"size": head["ContentLength"],
                                                              "etag": head["ETag"].strip('"'),
                                                              "version_id": head["VersionId"]})
        return [r["outcome"] for _ in range(deliveries)
                for r in self.start_handler.lambda_handler(event, self.ctx)["results"]]

    def record(self, key: str) -> dict[str, Any] | None:
        found = self.world.keys(layout.rejection_key(key))
        return json.loads(self.world.get(layout.rejection_key(key))) if layout.rejection_key(key) in found else None

    def exists(self, key: str) -> bool:
        return key in self.world.keys(key)

    def notifications(self) -> int:
        return len(self.world.notifications())

    def executions(self) -> int:
        return len(self.world.executions())

    def snapshot(self) -> dict[str, str]:
        pages = self.world.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=layout.DATASETS_PREFIX)
        return {o["Key"]: o["ETag"] for page in pages for o in page.get("Contents", [])}


MOTO_CASES = [c for c in CASES if "moto" in c.sides]


@pytest.mark.parametrize("case", MOTO_CASES, ids=[c.id for c in MOTO_CASES])
def test_dataset_case_on_aws(case: DatasetCase, world: World, lambda_context: Any) -> None:
    run_case(case, MotoSide(world, lambda_context))
