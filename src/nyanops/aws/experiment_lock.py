"""A per-experiment lease lock in DynamoDB, so that two evaluations of one experiment finishing at
the same moment decide the best trial one after the other (SageMaker Experiments has no
transactions). The lease expires, so a Lambda that dies while holding it cannot block the
experiment for longer than ``lease_seconds``."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import ClientError

from nyanops.core.experiments import ExperimentBusy


class DynamoExperimentLock:
    def __init__(
        self,
        client: Any,
        table: str,
        *,
        lease_seconds: int = 120,
        attempts: int = 20,
        wait_seconds: float = 0.5,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._ddb = client
        self._table = table
        self._lease = lease_seconds
        self._attempts = attempts
        self._wait = wait_seconds
        self._clock = clock
        self._sleep = sleep

    @contextmanager
    def hold(self, experiment: str) -> Iterator[None]:
        owner = uuid.uuid4().hex
        self._acquire(experiment, owner)
        try:
            yield
        finally:
            self._release(experiment, owner)

    def _acquire(self, experiment: str, owner: str) -> None:
        for attempt in range(self._attempts):
            now = int(self._clock())
            try:
                self._ddb.put_item(
                    TableName=self._table,
                    Item={
                        "experiment": {"S": experiment},
                        "owner": {"S": owner},
                        "expires_at": {"N": str(now + self._lease)},
                    },
                    ConditionExpression="attribute_not_exists(experiment) OR expires_at < :now",
                    ExpressionAttributeValues={":now": {"N": str(now)}},
                )
                return
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
            self._sleep(self._wait * (1 + attempt % 4))
        raise ExperimentBusy(f"experiment {experiment!r} is being updated by another run; retry")

    def _release(self, experiment: str, owner: str) -> None:
        try:
            self._ddb.delete_item(
                TableName=self._table,
                Key={"experiment": {"S": experiment}},
                ConditionExpression="#o = :owner",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={":owner": {"S": owner}},
            )
        except ClientError as exc:
            # Our lease expired and someone else holds the lock now: leave theirs alone.
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
