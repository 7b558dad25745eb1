"""The AWS side: one boto3 session per command (profile, region and ``AWS_ENDPOINT_URL`` from the
standard AWS environment), its clients created once, wrapped in the adapters of ``nyanops.aws``."""

from __future__ import annotations

from functools import cached_property
from typing import Any

import boto3

from nyanops.aws.s3_store import S3ObjectStore
from nyanops.aws.sagemaker_experiments import SageMakerExperimentStore


class AwsBackend:
    kind = "aws"

    def __init__(self, bucket: str, profile: str | None = None, region: str | None = None) -> None:
        self.bucket = bucket
        self.session = boto3.Session(profile_name=profile, region_name=region)
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        """One client per service for the whole command."""
        if service not in self._clients:
            self._clients[service] = self.session.client(service)
        return self._clients[service]

    @cached_property
    def store(self) -> S3ObjectStore:
        return S3ObjectStore(self.client("s3"), self.bucket)

    @cached_property
    def experiments(self) -> SageMakerExperimentStore:
        # Reading needs no lock; writing trials is RecordResults' job, never the CLI's.
        return SageMakerExperimentStore(self.client("sagemaker"), lock=None)

    def where(self) -> str:
        return f"s3://{self.bucket}"

    def close(self) -> None:
        self._clients.clear()
