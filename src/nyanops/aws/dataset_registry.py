"""The dataset registry on AWS: the core's ``DatasetRegistry`` port over a DynamoDB table (one item per
``datasets/<id>/`` prefix) and a client created once by the caller.

Every state change is one conditional ``UpdateItem`` (DynamoDB evaluates the condition and writes atomically;
a false condition is ``ConditionalCheckFailedException`` and changes nothing). Items that a sealer may have
to look at (``waiting``, ``sealing``) carry ``open = "1"``; the sparse index ``open-by-last-upload`` (partition
``open``, sort ``last_upload_at``) holds only those, so the sealer's minute-by-minute ``Query`` reads the
datasets that are due and nothing else, however many sealed datasets the table holds.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from nyanops.core.dataset_registry import (
    REFUSED,
    SEALED,
    SEALING,
    UPLOADING,
    WAITING,
    DatasetRecord,
)

OPEN_INDEX = "open-by-last-upload"
OPEN = "1"
NOTE_ATTEMPTS = 5
# Every attribute through a placeholder: STATE, OPEN and OWNER are DynamoDB reserved words, and the others
# stay readable next to them.
_NAMES = {"#s": "state", "#o": "open", "#w": "owner", "#r": "reason", "#n": "uploads", "#l": "last_upload_at",
          "#e": "lease_until", "#t": "updated_at"}


class DynamoDatasetRegistry:
    def __init__(self, client: Any, table: str) -> None:
        self._ddb = client
        self._table = table

    def _update(self, dataset_id: str, expression: str, values: dict[str, Any], condition: str | None = None,
                return_values: str = "NONE") -> dict[str, Any] | None:
        """One UpdateItem; None when its condition was false."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "Key": {"dataset_id": {"S": dataset_id}},
            "UpdateExpression": expression,
            "ExpressionAttributeNames": {k: v for k, v in _NAMES.items() if k in f"{expression} {condition or ''}"},
            "ExpressionAttributeValues": {k: _value(v) for k, v in values.items()},
            "ReturnValues": return_values,
        }
        if condition:
            kwargs["ConditionExpression"] = condition
        try:
            return self._ddb.update_item(**kwargs)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return None
            raise

    def note(self, dataset_id: str, count: int, now: float) -> str:
        for _ in range(NOTE_ATTEMPTS):
            reopened = self._update(
                dataset_id,
                "SET #s = :waiting, #l = :now, #o = :open, #t = :now, #r = :none ADD #n :n",
                {":waiting": WAITING, ":now": now, ":open": OPEN, ":none": "", ":n": count, ":refused": REFUSED,
                 ":uploading": UPLOADING},
                condition="attribute_not_exists(#s) OR #s IN (:waiting, :refused, :uploading)",
            )
            if reopened is not None:
                return WAITING
            during_seal = self._update(
                dataset_id,
                "SET #l = :now, #t = :now ADD #n :n",
                {":now": now, ":n": count, ":sealing": SEALING},
                condition="#s = :sealing",
            )
            if during_seal is not None:
                return SEALING
            current = self.get(dataset_id)
            if current is not None and current.state == SEALED:
                return SEALED
        raise RuntimeError(f"dataset {dataset_id}: its registry item kept changing while an upload was noted")

    def mark_sealed(self, dataset_id: str, now: float) -> None:
        self._update(
            dataset_id,
            "SET #s = :sealed, #t = :now, #l = if_not_exists(#l, :now), #r = :none REMOVE #o, #w, #e",
            {":sealed": SEALED, ":now": now, ":none": ""},
        )

    def due(self, cutoff: float) -> list[str]:
        out: list[str] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": OPEN_INDEX,
            "KeyConditionExpression": "#o = :open AND #l <= :cutoff",
            "ExpressionAttributeNames": {"#o": "open", "#l": "last_upload_at"},
            "ExpressionAttributeValues": {":open": {"S": OPEN}, ":cutoff": _value(cutoff)},
        }
        while True:
            page = self._ddb.query(**kwargs)
            out += [item["dataset_id"]["S"] for item in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                return out
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def claim(self, dataset_id: str, owner: str, now: float, lease_until: float, cutoff: float) -> DatasetRecord | None:
        after = self._update(
            dataset_id,
            "SET #s = :sealing, #w = :owner, #e = :lease, #t = :now",
            {":sealing": SEALING, ":owner": owner, ":lease": lease_until, ":now": now, ":waiting": WAITING,
             ":cutoff": cutoff},
            condition="(#s = :waiting AND #l <= :cutoff) OR (#s = :sealing AND #e < :now)",
            return_values="ALL_NEW",
        )
        return _record(after["Attributes"]) if after is not None else None

    def still_quiet(self, dataset_id: str, owner: str, last_upload_at: float) -> bool:
        current = self.get(dataset_id)
        return (
            current is not None
            and current.state == SEALING
            and current.owner == owner
            and current.last_upload_at == last_upload_at
        )

    def release(self, dataset_id: str, owner: str, state: str, reason: str, now: float) -> None:
        keep_open = state == WAITING
        self._update(
            dataset_id,
            "SET #s = :state, #r = :reason, #t = :now"
            + (", #o = :open REMOVE #w, #e" if keep_open else " REMOVE #w, #e, #o"),
            {":state": state, ":reason": reason, ":now": now, ":sealing": SEALING, ":owner": owner}
            | ({":open": OPEN} if keep_open else {}),
            condition="#s = :sealing AND #w = :owner",
        )

    def get(self, dataset_id: str) -> DatasetRecord | None:
        r = self._ddb.get_item(TableName=self._table, Key={"dataset_id": {"S": dataset_id}}, ConsistentRead=True)
        return _record(r["Item"]) if "Item" in r else None

    def all(self) -> list[DatasetRecord]:
        out: list[DatasetRecord] = []
        kwargs: dict[str, Any] = {"TableName": self._table}
        while True:
            page = self._ddb.scan(**kwargs)
            out += [_record(item) for item in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                return sorted(out, key=lambda r: r.dataset_id)
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _value(v: Any) -> dict[str, str]:
    if isinstance(v, bool):
        raise TypeError("no booleans in the registry")
    if isinstance(v, (int, float)):
        return {"N": repr(v) if isinstance(v, float) else str(v)}
    return {"S": str(v)}


def _number(item: dict[str, Any], name: str) -> float | None:
    return float(Decimal(item[name]["N"])) if name in item else None


def _record(item: dict[str, Any]) -> DatasetRecord:
    return DatasetRecord(
        dataset_id=item["dataset_id"]["S"],
        state=item.get("state", {}).get("S", WAITING),
        last_upload_at=_number(item, "last_upload_at") or 0.0,
        uploads=int(_number(item, "uploads") or 0),
        owner=item.get("owner", {}).get("S"),
        lease_until=_number(item, "lease_until"),
        reason=item.get("reason", {}).get("S", ""),
        updated_at=_number(item, "updated_at") or 0.0,
    )
