"""Small interfaces the core talks to. AWS implementations live in ``nyanops.aws``; local ones in
``nyanops.local``. Handlers create the concrete objects once and inject them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str | None = None
    last_modified: datetime | None = None
    version_id: str | None = None


class ObjectNotFound(KeyError):
    """The key (or that version of it) does not exist."""


class ObjectStore(Protocol):
    """The bucket: S3, or a directory that mirrors its keys."""

    @property
    def bucket(self) -> str: ...

    def get(self, key: str, version_id: str | None = None) -> bytes: ...

    def head(self, key: str) -> ObjectInfo | None: ...

    def put(self, key: str, body: bytes, content_type: str = "application/json") -> str | None:
        """Write ``key``; the new object's ETag where the store says it (S3's PutObject does)."""
        ...

    def put_new(self, key: str, body: bytes, content_type: str = "application/json") -> bool:
        """Write ``key`` only if it does not exist (S3 ``If-None-Match: *``). False: it exists, or a concurrent
        conditional write to it is in flight; the caller lost the race and must not act as the writer."""
        ...

    def put_if_match(self, key: str, body: bytes, etag: str, content_type: str = "application/json") -> bool:
        """Replace ``key`` only if its ETag is still ``etag`` (S3 ``If-Match``); False: it changed or is gone."""
        ...

    def delete(self, key: str) -> None:
        """Remove ``key`` (on a versioned bucket its versions stay: nothing uploaded is lost)."""
        ...

    def list(self, prefix: str) -> Iterator[ObjectInfo]: ...

    def touch(self, key: str) -> None:
        """Make an existing object the newest (as uploading it again would), keeping its content."""
        ...


@dataclass(frozen=True)
class StartResult:
    execution_name: str
    started: bool  # False: an execution of that name already existed (a duplicated event)
    execution_id: str | None = None


class ExecutionStarter(Protocol):
    """Starts the state machine; a second start with the same name is reported, not an error."""

    def start(self, name: str, execution_input: dict[str, Any]) -> StartResult: ...


class Notifier(Protocol):
    def publish(self, subject: str, message: str) -> None: ...


@dataclass(frozen=True)
class ProcessingJob:
    """What RecordResults needs of a processing job (DescribeProcessingJob on AWS)."""

    name: str
    status: str
    started_at: datetime | None
    ended_at: datetime | None
    output_uris: tuple[str, ...] = ()
    exit_message: str = ""
    failure_reason: str = ""


class ProcessingJobs(Protocol):
    """Looks up the processing jobs the pipeline started (SageMaker, or the local job records)."""

    def describe(self, name: str) -> ProcessingJob | None:
        """The job, or None when there is no job of that name."""
        ...
