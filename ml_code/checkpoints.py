"""Checkpoints that let a restarted training job resume: the feature cache and the state after each epoch.

SageMaker syncs the checkpoint folder (``CheckpointConfig.LocalPath``, default ``/opt/ml/checkpoints``)
with ``CheckpointConfig.S3Uri`` and restores it when a managed-spot job restarts; the local pipeline
maps the same S3 URI to a folder of its bucket. Every checkpoint carries a fingerprint of what it was
computed from (dataset content hashes, the recipe's hyperparameters, the ml_code sources); a checkpoint
with another fingerprint is ignored with a log line, never resumed. Writes are atomic (a temporary file
in the same folder, then a rename), so a job killed mid-write leaves the previous checkpoint intact.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch

FORMAT = 1


def code_hash(folder: str | os.PathLike[str] | None = None) -> str:
    """sha256 over the ml_code sources (file name + content of every .py file, sorted)."""
    root = Path(folder) if folder else Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(root.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


class Checkpoints:
    """Named checkpoints in one folder (or none: ``directory`` None turns checkpointing off)."""

    def __init__(self, directory: str | None, fingerprint: dict[str, Any]) -> None:
        self.directory = directory
        self.fingerprint = json.loads(json.dumps(fingerprint, sort_keys=True, default=str))

    @property
    def enabled(self) -> bool:
        return bool(self.directory)

    def _path(self, name: str) -> str:
        assert self.directory
        return os.path.join(self.directory, f"{name}.pt")

    def load(self, name: str) -> dict[str, Any] | None:
        """The checkpoint's payload, or None (none yet, unreadable, or from other data / settings / code)."""
        if not self.directory:
            return None
        path = self._path(name)
        if not os.path.isfile(path):
            return None
        try:
            saved = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc:  # a damaged file must not stop the job: start that step afresh
            print(f"checkpoint: {path} is unreadable ({exc.__class__.__name__}); ignored, recomputing", flush=True)
            return None
        theirs = saved.get("fingerprint") if isinstance(saved, dict) else None
        if not isinstance(theirs, dict) or saved.get("format") != FORMAT:
            print(f"checkpoint: {path} was not written by this train.py; ignored, recomputing", flush=True)
            return None
        if theirs != self.fingerprint:
            differ = sorted(k for k in set(theirs) | set(self.fingerprint) if theirs.get(k) != self.fingerprint.get(k))
            print(
                f"checkpoint: {path} was written for another {' / '.join(differ)}; ignored, starting that step afresh",
                flush=True,
            )
            return None
        return saved["payload"]

    def save(self, name: str, payload: dict[str, Any]) -> None:
        """Write atomically: a temporary file in the same folder, flushed, then renamed over the old one."""
        if not self.directory:
            return
        os.makedirs(self.directory, exist_ok=True)
        path = self._path(name)
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "wb") as fh:
            torch.save({"format": FORMAT, "fingerprint": self.fingerprint, "payload": payload}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
