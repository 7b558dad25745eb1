"""RFC 3339 timestamps as ASL restricts them (uppercase T and Z), and the ISO strings the executor writes."""

from __future__ import annotations

import re
from datetime import UTC, datetime

_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")


def parse_timestamp(value: object) -> datetime | None:
    """The aware datetime of an ASL timestamp string, or None when ``value`` is not one."""
    if not isinstance(value, str) or not _TIMESTAMP.fullmatch(value):
        return None
    text = value[:-1] + "+00:00" if value.endswith("Z") else value
    # fromisoformat accepts at most 6 fractional digits; truncate longer fractions.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def iso(moment: datetime) -> str:
    """``2024-01-02T03:04:05.678Z``: the form Step Functions uses in the context object."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
