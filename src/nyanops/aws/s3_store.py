"""The bucket on AWS: the core's ``ObjectStore`` port over an S3 client created once by the caller."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from nyanops.core.ports import ObjectInfo, ObjectNotFound

# S3 conditional writes (PutObject If-None-Match / If-Match, S3 user guide "conditional writes"): 412
# PreconditionFailed when the condition is false, 409 ConditionalRequestConflict when a concurrent conditional
# write to the key is in flight, 404 NoSuchKey for If-Match on a key that does not exist. Each means "this
# writer did not write".
CONDITION_NOT_MET = ("PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey", "412", "409", "404")


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

    def put(self, key: str, body: bytes, content_type: str = "application/json") -> str | None:
        r = self._s3.put_object(Bucket=self._bucket, Key=key, Body=body, ContentType=content_type)
        return str(r.get("ETag", "")).strip('"') or None

    def put_new(self, key: str, body: bytes, content_type: str = "application/json") -> bool:
        return self._conditional_put(key, body, content_type, IfNoneMatch="*")

    def put_if_match(self, key: str, body: bytes, etag: str, content_type: str = "application/json") -> bool:
        return self._conditional_put(key, body, content_type, IfMatch=f'"{etag.strip(chr(34))}"')

    def _conditional_put(self, key: str, body: bytes, content_type: str, **condition: str) -> bool:
        try:
            self._s3.put_object(Bucket=self._bucket, Key=key, Body=body, ContentType=content_type, **condition)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in CONDITION_NOT_MET:
                return False
            raise
        return True

    def delete(self, key: str) -> None:
        self._s3.delete_object(Bucket=self._bucket, Key=key)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        paginator = self._s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                yield ObjectInfo(obj["Key"], obj["Size"], obj.get("ETag", "").strip('"'), obj.get("LastModified"))

    def touch(self, key: str) -> None:
        # A copy onto itself with new metadata is a new version with a new LastModified.
        self._s3.copy_object(
            Bucket=self._bucket, Key=key, CopySource={"Bucket": self._bucket, "Key": key}, MetadataDirective="REPLACE"
        )
