"""The dataset registry table as template.yaml declares it (DatasetRegistryTable), for the moto world."""

from __future__ import annotations

from typing import Any

from nyanops.aws.dataset_registry import OPEN_INDEX

REGISTRY_TABLE = "nyanops-dataset-registry"
# SealDatasets' QUIET_SECONDS in the moto world (the template's minimum); tests move the sealer's clock past it.
QUIET_SECONDS = 10


def create_registry_table(ddb: Any) -> None:
    ddb.create_table(
        TableName=REGISTRY_TABLE,
        KeySchema=[{"AttributeName": "dataset_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "dataset_id", "AttributeType": "S"},
                              {"AttributeName": "open", "AttributeType": "S"},
                              {"AttributeName": "last_upload_at", "AttributeType": "N"}],
        GlobalSecondaryIndexes=[{"IndexName": OPEN_INDEX,
                                 "KeySchema": [{"AttributeName": "open", "KeyType": "HASH"},
                                               {"AttributeName": "last_upload_at", "KeyType": "RANGE"}],
                                 "Projection": {"ProjectionType": "KEYS_ONLY"}}],
        BillingMode="PAY_PER_REQUEST",
    )
