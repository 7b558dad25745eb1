"""Why an upload was refused: one error type carrying every problem found, each naming its field
and the fix, so a data scientist can correct the file without reading code; the body of a refusal record and how S3
sequencers order events (the writer of records is ``core/refusals``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any


@dataclass(frozen=True)
class Problem:
    field: str
    problem: str
    fix: str

    def line(self) -> str:
        return f"{self.field}: {self.problem}. Fix: {self.fix}"


@dataclass
class UploadRejected(Exception):
    """An upload that must not start a run. ``problems`` lists every reason, most important first."""

    problems: list[Problem] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    @property
    def message(self) -> str:
        return "; ".join(p.line() for p in self.problems)

    @classmethod
    def one(cls, field_name: str, problem: str, fix: str) -> UploadRejected:
        return cls([Problem(field_name, problem, fix)])


def rejection_record(key: str, rejected: UploadRejected, now: datetime | None = None) -> dict[str, Any]:
    """The JSON body written to ``rejected/<key>.error.json``."""
    when = (now or datetime.now(timezone.utc)).isoformat(timespec="seconds")
    return {
        "key": key,
        "rejected_at": when,
        "message": rejected.message,
        "problems": [asdict(p) for p in rejected.problems],
        "note": "The upload itself was left untouched. Fix it and upload it again under a new name "
        "(or the same name: a new version is a new upload).",
    }


def sequencer_is_older(candidate: str | None, recorded: str | None) -> bool:
    """Whether the event with ``candidate`` happened before the one with ``recorded`` (same key).

    S3 sequencers are hexadecimal strings: left-pad the shorter with zeros, then compare. Unknown (None or
    not hexadecimal) is never "older": a refusal is then written as before."""
    if not candidate or not recorded:
        return False
    try:
        int(candidate, 16), int(recorded, 16)
    except ValueError:
        return False
    width = max(len(candidate), len(recorded))
    return candidate.lower().rjust(width, "0") < recorded.lower().rjust(width, "0")
