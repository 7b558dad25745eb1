"""Names that AWS constrains: executions, SageMaker jobs, experiments and trials.

Execution names are deterministic per upload (bucket, key, version id or ETag), so a duplicated
event maps to the same name and Step Functions refuses the second start.
Limits (AWS API references): Step Functions execution name 1-80 chars without whitespace or
``<>{}[]?*"#%\\^|~`$&,;:/``; SageMaker training / processing job names
``^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$`` (63 chars); experiment / trial names
``^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,119}$`` (120 chars).
"""

from __future__ import annotations

import hashlib
import re

SAGEMAKER_JOB_NAME_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
EXPERIMENT_NAME_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,119}$")
EXECUTION_NAME_MAX = 80
MAX_EXPERIMENT_NAME = 120

TRAINING_JOB_SUFFIX = "-train"
PROCESSING_JOB_SUFFIX = "-eval"
_HASH_LEN = 16
# Leave room for the longest job suffix so every job name stays within SageMaker's 63 characters.
EXECUTION_NAME_LEN = 63 - max(len(TRAINING_JOB_SUFFIX), len(PROCESSING_JOB_SUFFIX))


def slug(text: str, max_len: int) -> str:
    """Lower-case ``text`` to ``[a-z0-9-]`` with single hyphens, trimmed to ``max_len``."""
    out = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return out[:max_len].rstrip("-")


def upload_fingerprint(bucket: str, key: str, version: str | None) -> str:
    """A stable hash of one upload; ``version`` is the S3 version id, or the ETag when unversioned."""
    material = "\n".join((bucket, key, version or ""))
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


def execution_name(kind: str, label: str, bucket: str, key: str, version: str | None) -> str:
    """Deterministic execution name: ``<kind>-<label slug>-<16 hex of the upload fingerprint>``.

    The result matches the SageMaker job-name rule too, so job names are built by appending a suffix.
    """
    digest = upload_fingerprint(bucket, key, version)[:_HASH_LEN]
    head = slug(kind, 10) or "run"
    room = EXECUTION_NAME_LEN - len(head) - len(digest) - 2
    label_slug = slug(label, room)
    name = f"{head}-{label_slug}-{digest}" if label_slug else f"{head}-{digest}"
    assert len(name) <= EXECUTION_NAME_LEN and SAGEMAKER_JOB_NAME_RE.match(name), name
    return name


def training_job_name(execution: str) -> str:
    return _job_name(execution, TRAINING_JOB_SUFFIX)


def processing_job_name(execution: str) -> str:
    return _job_name(execution, PROCESSING_JOB_SUFFIX)


def _job_name(execution: str, suffix: str) -> str:
    name = f"{execution[: 63 - len(suffix)].rstrip('-')}{suffix}"
    if not SAGEMAKER_JOB_NAME_RE.match(name):
        raise ValueError(f"cannot derive a SageMaker job name from execution name {execution!r}")
    return name


def is_valid_experiment_name(name: str) -> bool:
    return bool(EXPERIMENT_NAME_RE.match(name))
