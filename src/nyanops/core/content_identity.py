"""The content identity of a dataset: one definition, used where a dataset is sealed and where a job reads it.

Standard library only, Python >= 3.9: imported by the core (dataset sealing, in the Lambda layer) and
copied into the SageMaker code bundle (``ml_code/content_identity.py`` is a symlink to this file), so the
hash a dataset was sealed with and the hash train.py / evaluation.py recompute from the files they
received are one function, not two that could drift.

Definitions (hex digests, lower case, no prefix):

``split_hash``     sha256 over the lines ``<rel>\\0<sha256 of the file's bytes>\\n``, one per image, sorted
                   by ``<rel>``, where ``<rel>`` is ``<class>/<file>`` (POSIX separators) relative to the
                   split's root folder. Adding, removing, renaming or replacing any image changes it.
``combined_hash``  sha256 over the lines ``<split>\\0<split hash>\\n``, sorted by split name.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping


def file_sha256(data: bytes) -> str:
    """Hex sha256 of one file's bytes (the per-image part of ``split_hash``)."""
    return hashlib.sha256(data).hexdigest()


def split_hash(entries: Iterable[tuple[str, str]]) -> str:
    """Hex sha256 of one split from its ``(rel, file sha256)`` pairs; the order they come in does not matter.

    ``rel`` is ``<class>/<file>`` relative to the split root, with ``/`` separators.
    """
    digest = hashlib.sha256()
    for rel, file_hash in sorted(entries):
        digest.update(f"{rel}\0{file_hash}\n".encode())
    return digest.hexdigest()


def combined_hash(split_hashes: Mapping[str, str]) -> str:
    """Hex sha256 of several splits from ``{split name: split hash}``; key order does not matter."""
    digest = hashlib.sha256()
    for split in sorted(split_hashes):
        digest.update(f"{split}\0{split_hashes[split]}\n".encode())
    return digest.hexdigest()


def short(digest: str, length: int = 12) -> str:
    """A digest abbreviated for messages (any ``sha256:`` prefix dropped)."""
    return digest.split(":", 1)[-1][:length]
