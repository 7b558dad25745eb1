"""In-memory stand-ins for the core's ports (bucket, notifier, processing jobs), for pure unit tests."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from nyanops.core.ports import ObjectInfo, ObjectNotFound, ProcessingJob

T0 = datetime(2026, 11, 28, 7, 0, tzinfo=timezone.utc)


@dataclass
class MemoryObjects:
    """A versioned bucket: every put is a new version, written at ``now`` (advance it to move time on)."""

    bucket: str = "b"
    now: datetime = T0
    versions: dict[str, list[tuple[str, bytes, datetime]]] = field(default_factory=dict)
    puts: list[str] = field(default_factory=list)

    def put(self, key: str, body: bytes, content_type: str = "application/json") -> None:
        history = self.versions.setdefault(key, [])
        history.append((f"v{len(history) + 1}", body, self.now))
        self.puts.append(key)

    def put_new(self, key: str, body: bytes, content_type: str = "application/json") -> bool:
        """S3's ``If-None-Match: *``."""
        if self.versions.get(key):
            return False
        self.put(key, body, content_type)
        return True

    def put_if_match(self, key: str, body: bytes, etag: str, content_type: str = "application/json") -> bool:
        """S3's ``If-Match``: the ETag is the body's MD5, as for a single-part upload."""
        current = self.head(key)
        if current is None or current.etag != etag:
            return False
        self.put(key, body, content_type)
        return True

    def get(self, key: str, version_id: str | None = None) -> bytes:
        for version, body, _ in reversed(self.versions.get(key, [])):
            if version_id in (None, version):
                return body
        raise ObjectNotFound(key)

    def head(self, key: str) -> ObjectInfo | None:
        if not self.versions.get(key):
            return None
        version, body, when = self.versions[key][-1]
        return ObjectInfo(key, len(body), hashlib.md5(body).hexdigest(), when, version)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        for key in sorted(self.versions):
            info = self.head(key)
            if key.startswith(prefix) and info is not None:
                yield info

    def touch(self, key: str) -> None:
        self.put(key, self.get(key))


@dataclass
class MemoryNotifier:
    sent: list[tuple[str, str]] = field(default_factory=list)
    fail: bool = False

    def publish(self, subject: str, message: str) -> None:
        if self.fail:
            raise RuntimeError("SNS is down")
        self.sent.append((subject, message))


@dataclass
class MemoryJobs:
    jobs: dict[str, ProcessingJob] = field(default_factory=dict)

    def add(
        self,
        name: str,
        output_uri: str,
        status: str = "Completed",
        started: datetime | None = T0 - timedelta(minutes=5),
        ended: datetime | None = T0 + timedelta(minutes=1),
        exit_message: str = "",
        failure_reason: str = "",
    ) -> None:
        self.jobs[name] = ProcessingJob(name, status, started, ended, (output_uri,), exit_message, failure_reason)

    def describe(self, name: str) -> ProcessingJob | None:
        return self.jobs.get(name)
