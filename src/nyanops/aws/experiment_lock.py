"""A per-experiment lease lock in DynamoDB, so that two evaluations of one experiment finishing at
the same moment decide the best trial one after the other (SageMaker Experiments has no
transactions). The lease expires, so a Lambda that dies while holding it cannot block the
experiment for longer than ``lease_seconds``.

The item key is ``naming.experiment_key(name)``: SageMaker experiment names are case-insensitive, so
``cats`` and ``Cats`` must take the same lock (callers pass the key; ``hold`` normalises it again).

DynamoDB's answers are classified: a failed condition means "someone else holds it" (wait and try
again); throttling and DynamoDB's internal errors are transient (back off and try again, within the same
attempts); anything else (a missing table, missing permissions, a validation error) is a fault of the
deployment and is raised at once, never mistaken for a busy experiment.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import ClientError

from nyanops.core.experiments import ExperimentBusy
from nyanops.core.naming import experiment_key

HELD_BY_OTHERS = "ConditionalCheckFailedException"
# DynamoDB error codes that say "not now" rather than "never" (DynamoDB developer guide, error handling).
TRANSIENT = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionConflictException",
    }
)


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
        key = experiment_key(experiment)
        owner = uuid.uuid4().hex
        self._acquire(key, owner)
        try:
            yield
        finally:
            self._release(key, owner)

    def _acquire(self, key: str, owner: str) -> None:
        for attempt in range(self._attempts):
            now = int(self._clock())
            try:
                self._ddb.put_item(
                    TableName=self._table,
                    Item={"experiment": {"S": key}, "owner": {"S": owner}, "expires_at": {"N": str(now + self._lease)}},
                    ConditionExpression="attribute_not_exists(experiment) OR expires_at < :now",
                    ExpressionAttributeValues={":now": {"N": str(now)}},
                )
                return
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code != HELD_BY_OTHERS and code not in TRANSIENT:
                    raise
            self._sleep(self._wait * (1 + attempt % 4))
        raise ExperimentBusy(f"experiment {key!r} is being updated by another run; retry")

    def _release(self, key: str, owner: str) -> None:
        for attempt in range(self._attempts):
            try:
                self._ddb.delete_item(
                    TableName=self._table,
                    Key={"experiment": {"S": key}},
                    ConditionExpression="#o = :owner",
                    ExpressionAttributeNames={"#o": "owner"},
                    ExpressionAttributeValues={":owner": {"S": owner}},
                )
                return
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                # Our lease expired and someone else holds the lock now: leave theirs alone.
                if code == HELD_BY_OTHERS:
                    return
                if code not in TRANSIENT:
                    raise
            self._sleep(self._wait * (1 + attempt % 4))
        # Could not delete it: the lease expires by itself after lease_seconds.
