"""The dataset registry: one small record per dataset prefix, so that thousands of image uploads cost one
update per dataset per batch and the sealer knows which prefixes have been quiet long enough.

States (``state``):

- ``waiting``: uploads were noticed; the sealer takes it once nothing new arrived for the quiet period;
- ``sealing``: a sealer holds it (``owner``, until ``lease_until``; a sealer that died loses it then);
- ``sealed``: ``_dataset.json`` exists (written by the sealer or by a tool): later files are refused;
- ``refused``: the prefix failed validation (``reason``); the next upload makes it ``waiting`` again;
- ``uploading``: a tool's claim (``_uploading.json``) is there: ``dataset add`` is uploading or was
  interrupted; the sealer leaves it alone until the claim goes (the tool's seal, or the user removes it).

Two implementations behind this port: DynamoDB (``nyanops.aws.dataset_registry``) and a SQLite table in the
local root's database (``nyanops.local.dataset_registry``). Every state change is conditional, so two
sealers (or a sealer and the upload noter) can never both act on one dataset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

WAITING = "waiting"
SEALING = "sealing"
SEALED = "sealed"
REFUSED = "refused"
UPLOADING = "uploading"
STATES = (WAITING, SEALING, SEALED, REFUSED, UPLOADING)
# States the noter turns back into ``waiting`` on new activity (a fix after a refusal, a claim removed).
REOPENED_BY_UPLOADS = (WAITING, REFUSED, UPLOADING)


@dataclass(frozen=True)
class DatasetRecord:
    dataset_id: str
    state: str
    last_upload_at: float  # epoch seconds: when the last upload activity was noticed
    uploads: int = 0  # upload events noticed (duplicates included)
    owner: str | None = None
    lease_until: float | None = None
    reason: str = ""
    updated_at: float = 0.0


class DatasetRegistry(Protocol):
    def note(self, dataset_id: str, count: int, now: float) -> str:
        """Record ``count`` upload events at ``now``: a new record, or ``last_upload_at`` moved on and a
        ``waiting``/``refused``/``uploading`` one made ``waiting``. A ``sealing`` one keeps its state (its
        sealer sees ``last_upload_at`` moved and backs off). Returns the state after; ``sealed`` means the
        record was sealed and nothing changed (the uploads are late files)."""
        ...

    def mark_sealed(self, dataset_id: str, now: float) -> None:
        """``_dataset.json`` exists: ``sealed``, whatever the state was (idempotent)."""
        ...

    def due(self, cutoff: float) -> list[str]:
        """Datasets ``waiting`` or ``sealing`` whose last upload was noticed at or before ``cutoff``."""
        ...

    def claim(self, dataset_id: str, owner: str, now: float, lease_until: float, cutoff: float) -> DatasetRecord | None:
        """Make it ``sealing`` for ``owner`` if it is ``waiting`` and quiet since ``cutoff``, or ``sealing`` with
        an expired lease; the record after, or None when another sealer has it or it is not due."""
        ...

    def still_quiet(self, dataset_id: str, owner: str, last_upload_at: float) -> bool:
        """True if ``owner`` still holds it and no upload was noticed since it was claimed."""
        ...

    def release(self, dataset_id: str, owner: str, state: str, reason: str, now: float) -> None:
        """Give it up as ``waiting``, ``refused`` or ``uploading`` (only if ``owner`` still holds it)."""
        ...

    def get(self, dataset_id: str) -> DatasetRecord | None: ...

    def all(self) -> list[DatasetRecord]: ...
