"""The DynamoDB lease lock's retry behaviour with a scripted client: how long it waits, what it retries and what
it raises at once (the moto tests in tests/aws/test_best_concurrency.py run it against a table)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from nyanops.aws.experiment_lock import HELD_BY_OTHERS, DynamoExperimentLock
from nyanops.core.experiments import ExperimentBusy

RECORD_RESULTS_TIMEOUT_S = 120  # template.yaml, RecordResultsFunction


def error(code: str | None) -> ClientError:
    response: dict[str, Any] = {} if code is None else {"Error": {"Code": code, "Message": code}}
    return ClientError(response, "PutItem")  # type: ignore[arg-type]


class Scripted:
    """A DynamoDB client whose put_item / delete_item raise the scripted errors, then succeed."""

    def __init__(self, put: list[ClientError] | None = None, delete: list[ClientError] | None = None,
                 always: ClientError | None = None) -> None:
        self.put, self.delete, self.always = list(put or []), list(delete or []), always
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def put_item(self, **kwargs: Any) -> None:
        self.calls.append(("put", kwargs))
        if self.always is not None:
            raise self.always
        if self.put:
            raise self.put.pop(0)

    def delete_item(self, **kwargs: Any) -> None:
        self.calls.append(("delete", kwargs))
        if self.delete:
            raise self.delete.pop(0)


def lock(client: Scripted, sleeps: list[float], **options: Any) -> DynamoExperimentLock:
    return DynamoExperimentLock(client, "locks", clock=lambda: 1000.0, sleep=sleeps.append, **options)


def test_a_busy_experiment_is_given_up_after_twenty_tries_within_the_lambdas_time() -> None:
    sleeps: list[float] = []
    client = Scripted(always=error(HELD_BY_OTHERS))
    with pytest.raises(ExperimentBusy, match="experiment 'cats' is being updated by another run; retry"), \
            lock(client, sleeps).hold("Cats"):
        pass
    assert len(client.calls) == 20
    assert sleeps == [0.5, 1.0, 1.5, 2.0] * 5
    assert sum(sleeps) < RECORD_RESULTS_TIMEOUT_S / 2  # room left for the record itself


def test_the_lease_item() -> None:
    client = Scripted()
    with lock(client, []).hold("Cats"):
        pass
    (put_name, put), (delete_name, delete) = client.calls
    owner = put["Item"]["owner"]["S"]
    assert put_name == "put" and put["TableName"] == "locks"
    assert put["Item"] == {"experiment": {"S": "cats"}, "owner": {"S": owner}, "expires_at": {"N": "1120"}}
    assert put["ConditionExpression"] == "attribute_not_exists(experiment) OR expires_at < :now"
    assert put["ExpressionAttributeValues"] == {":now": {"N": "1000"}}
    assert delete_name == "delete" and delete["Key"] == {"experiment": {"S": "cats"}}
    assert delete["ExpressionAttributeValues"] == {":owner": {"S": owner}}


@pytest.mark.parametrize("code", ["ThrottlingException", "ProvisionedThroughputExceededException",
                                  "RequestLimitExceeded", "InternalServerError", "ServiceUnavailable",
                                  "TransactionConflictException", HELD_BY_OTHERS])
def test_transient_answers_are_tried_again(code: str) -> None:
    sleeps: list[float] = []
    client = Scripted(put=[error(code), error(code)])
    with lock(client, sleeps).hold("cats"):
        pass
    assert [c for c, _ in client.calls] == ["put", "put", "put", "delete"] and sleeps == [0.5, 1.0]


@pytest.mark.parametrize("code", ["ResourceNotFoundException", "AccessDeniedException", "ValidationException", None])
def test_faults_of_the_deployment_are_raised_at_once(code: str | None) -> None:
    client = Scripted(put=[error(code)])
    with pytest.raises(ClientError) as caught, lock(client, []).hold("cats"):
        pass
    assert caught.value.response.get("Error", {}).get("Code") == code and len(client.calls) == 1


def test_release_retries_transient_errors_and_leaves_a_lock_someone_else_took() -> None:
    sleeps: list[float] = []
    client = Scripted(delete=[error("ThrottlingException"), error("InternalServerError")])
    with lock(client, sleeps).hold("cats"):
        pass
    assert [c for c, _ in client.calls] == ["put", "delete", "delete", "delete"] and sleeps == [0.5, 1.0]
    client = Scripted(delete=[error(HELD_BY_OTHERS)])
    with lock(client, sleeps).hold("cats"):
        pass
    assert [c for c, _ in client.calls] == ["put", "delete"]


def test_release_gives_up_quietly_after_its_tries_and_raises_faults() -> None:
    sleeps: list[float] = []
    client = Scripted(delete=[error("ThrottlingException")] * 6)
    with lock(client, sleeps, attempts=6).hold("cats"):
        pass
    assert sleeps == [0.5, 1.0, 1.5, 2.0, 0.5, 1.0]  # then the lease expires by itself
    for code in ("AccessDeniedException", None):
        with pytest.raises(ClientError), lock(Scripted(delete=[error(code)]), []).hold("cats"):
            pass
