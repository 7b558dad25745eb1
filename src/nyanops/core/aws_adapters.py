"""AWS implementations of the core's ports, over boto3 clients created once by the caller."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from nyanops.core.ports import ObjectInfo, ObjectNotFound, StartResult

SNS_SUBJECT_MAX = 100


class S3ObjectStore:
    def __init__(self, client: Any, bucket: str) -> None:
        self._s3 = client
        self._bucket = bucket

    @property
    def bucket(self) -> str:
        return self._bucket

    def get(self, key: str, version_id: str | None = None) -> bytes:
        kwargs: dict[str, Any] = {"Bucket": self._bucket, "Key": key}
        if version_id:
            kwargs["VersionId"] = version_id
        try:
            return self._s3.get_object(**kwargs)["Body"].read()
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "NoSuchVersion", "404", "InvalidArgument"):
                raise ObjectNotFound(key) from None
            raise

    def head(self, key: str) -> ObjectInfo | None:
        try:
            r = self._s3.head_object(Bucket=self._bucket, Key=key)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "404", "NotFound"):
                return None
            raise
        return ObjectInfo(
            key, r["ContentLength"], r.get("ETag", "").strip('"'), r.get("LastModified"), r.get("VersionId")
        )

    def put(self, key: str, body: bytes, content_type: str = "application/json") -> None:
        self._s3.put_object(Bucket=self._bucket, Key=key, Body=body, ContentType=content_type)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        paginator = self._s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                yield ObjectInfo(obj["Key"], obj["Size"], obj.get("ETag", "").strip('"'), obj.get("LastModified"))


class StepFunctionsStarter:
    def __init__(self, client: Any, state_machine_arn: str) -> None:
        self._sfn = client
        self._arn = state_machine_arn

    def start(self, name: str, execution_input: dict[str, Any]) -> StartResult:
        # StartExecution is idempotent for Standard workflows: the same name and input while the first
        # run is still going returns that run instead of ExecutionAlreadyExists. Ask first, so a
        # redelivered event is reported (and counted) as a duplicate, not as a second start.
        arn = execution_arn(self._arn, name)
        try:
            self._sfn.describe_execution(executionArn=arn)
            return StartResult(name, started=False, execution_id=arn)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ExecutionDoesNotExist":
                raise
        try:
            r = self._sfn.start_execution(stateMachineArn=self._arn, name=name, input=json.dumps(execution_input))
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ExecutionAlreadyExists":
                return StartResult(name, started=False, execution_id=arn)
            raise
        return StartResult(name, started=True, execution_id=r["executionArn"])


def execution_arn(state_machine_arn: str, name: str) -> str:
    """``arn:…:stateMachine:<machine>`` → ``arn:…:execution:<machine>:<name>``."""
    head, sep, machine = state_machine_arn.rpartition(":stateMachine:")
    if not sep:
        raise ValueError(f"not a state machine ARN: {state_machine_arn}")
    return f"{head}:execution:{machine}:{name}"


class SnsNotifier:
    def __init__(self, client: Any, topic_arn: str) -> None:
        self._sns = client
        self._topic = topic_arn

    def publish(self, subject: str, message: str) -> None:
        # SNS subjects: ASCII, no line breaks, at most 100 characters.
        clean = "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in subject)[:SNS_SUBJECT_MAX]
        self._sns.publish(TopicArn=self._topic, Subject=clean or "nyanops", Message=message)
