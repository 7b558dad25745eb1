"""A dataset's content identity: one definition for everyone who hashes a dataset.

The seal (``_dataset.json``, written by ``nyanops dataset add`` or by the pipeline's sealer) records it,
StartPipeline compares against it, and the jobs recompute it from the files they downloaded
(``ml_code/content_identity.py`` is a symlink to this very file, as ``evaluation_report.py`` is). Standard
library only, Python >= 3.9: it runs in the Lambda layer, in the CLI and in the training/processing containers.

- file hash: sha256 of the file's bytes (hex);
- split hash: sha256 over ``<rel>\\0<file hash>\\n`` lines, ``<rel>`` = ``<class>/<file>`` relative to the
  split folder (posix), lines sorted by ``<rel>``;
- content hash: sha256 over ``<split>\\0<split hash>\\n`` lines, sorted by split name.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

CHUNK = 1 << 20


def file_hash(data: bytes) -> str:
    """Hex sha256 of one file's bytes (the per-image part of ``split_hash``)."""
    return hashlib.sha256(data).hexdigest()


def stream_hash(chunks: Iterable[bytes]) -> str:
    """The file hash of a file read in chunks (an S3 body, a large local file)."""
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()


def split_hash(entries: Iterable[tuple[str, str]]) -> str:
    """The hash of one split from ``(rel, file hash)`` pairs, ``rel`` = ``<class>/<file>``; order does not matter."""
    digest = hashlib.sha256()
    for rel, sha in sorted(entries):
        digest.update(f"{rel}\0{sha}\n".encode())
    return digest.hexdigest()


def combined_hash(split_hashes: Mapping[str, str]) -> str:
    """The dataset's content hash from its split hashes (``{"train": ..., "val": ..., "test": ...}``)."""
    digest = hashlib.sha256()
    for split in sorted(split_hashes):
        digest.update(f"{split}\0{split_hashes[split]}\n".encode())
    return digest.hexdigest()


def short(digest: str, length: int = 12) -> str:
    """A digest abbreviated for messages (any ``sha256:`` prefix dropped)."""
    return digest.split(":", 1)[-1][:length]
