"""Names that AWS constrains: executions, SageMaker jobs, experiments and trials.

Execution names are deterministic per upload (bucket, key, version id or ETag), so a duplicated
event maps to the same name and Step Functions refuses the second start.
Limits (``nyanops.core.limits`` has the references): Step Functions execution names 1-80 characters
without whitespace or ``<>{}[]?*"#%\\^|~`$&,;:/``; SageMaker job names ``[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}``
(63 characters); experiment / trial names ``[a-zA-Z0-9](-*[a-zA-Z0-9]){0,119}`` (120 characters).
Every pattern is matched against the WHOLE name (``fullmatch``: ``$`` would also accept a trailing
newline, ``"cats\\n"``).

Experiment and trial names are case-insensitive in SageMaker ("unique in your AWS account and not
case-sensitive"): ``cats`` and ``Cats`` are one experiment. ``experiment_key`` is the one comparison
key: the DynamoDB lock, the local store and every comparison use it.
"""

from __future__ import annotations

import hashlib
import re

from nyanops.core import limits

SAGEMAKER_JOB_NAME_RE = re.compile(limits.JOB_NAME_PATTERN)
EXPERIMENT_NAME_RE = re.compile(limits.EXPERIMENT_ENTITY_NAME_PATTERN)
EXECUTION_NAME_MAX = limits.EXECUTION_NAME_MAX
MAX_EXPERIMENT_NAME = limits.EXPERIMENT_ENTITY_NAME_MAX

TRAINING_JOB_SUFFIX = "-train"
PROCESSING_JOB_SUFFIX = "-eval"
# The champion's re-scoring on this run's test set; the attempt number follows (1-9): "-champ1".
CHAMPION_JOB_SUFFIX = "-champ"
MAX_CHAMPION_ATTEMPTS = 3
_HASH_LEN = 16
# Leave room for the longest job suffix so every job name stays within SageMaker's 63 characters.
EXECUTION_NAME_LEN = limits.JOB_NAME_MAX - max(
    len(TRAINING_JOB_SUFFIX), len(PROCESSING_JOB_SUFFIX), len(CHAMPION_JOB_SUFFIX) + 1
)


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
    assert len(name) <= EXECUTION_NAME_LEN and SAGEMAKER_JOB_NAME_RE.fullmatch(name), name
    return name


# A sweep's trials: ``<execution>-t<N>`` (N from 1); a manifest without a sweep is one trial named as its execution.
TRIAL_SUFFIX = "-t"
_DIGEST_TAIL = re.compile(f"-[0-9a-f]{{{_HASH_LEN}}}")


def trial_name(execution: str, index: int, count: int) -> str:
    """The name of trial ``index`` (from 0) of an execution's ``count`` trials: the execution's own name for a
    single trial, else ``<execution>-t<index+1>``, shortened in its label (never in its upload digest) so the
    trial's job names still fit SageMaker's 63 characters. Unique per upload, as trial names must be (SageMaker:
    unique in the account)."""
    if count == 1:
        return execution
    suffix = f"{TRIAL_SUFFIX}{index + 1}"
    room = EXECUTION_NAME_LEN - len(suffix)
    if len(execution) > room:
        tail = execution[-(_HASH_LEN + 1) :] if _DIGEST_TAIL.fullmatch(execution[-(_HASH_LEN + 1) :]) else ""
        execution = execution[: room - len(tail)].rstrip("-") + tail
    name = execution + suffix
    if not SAGEMAKER_JOB_NAME_RE.fullmatch(name) or len(name) > EXECUTION_NAME_LEN:
        raise ValueError(f"cannot derive a trial name from execution name {execution!r}")
    return name


def training_job_name(execution: str) -> str:
    return _job_name(execution, TRAINING_JOB_SUFFIX)


def processing_job_name(execution: str) -> str:
    return _job_name(execution, PROCESSING_JOB_SUFFIX)


def champion_job_name(execution: str, attempt: int) -> str:
    """The processing job that re-scores the experiment's best model on this run's test set."""
    if not 1 <= attempt <= MAX_CHAMPION_ATTEMPTS:
        raise ValueError(f"champion re-scoring attempt {attempt} is outside 1..{MAX_CHAMPION_ATTEMPTS}")
    return _job_name(execution, f"{CHAMPION_JOB_SUFFIX}{attempt}")


def _job_name(execution: str, suffix: str) -> str:
    name = f"{execution[: limits.JOB_NAME_MAX - len(suffix)].rstrip('-')}{suffix}"
    if not SAGEMAKER_JOB_NAME_RE.fullmatch(name):
        raise ValueError(f"cannot derive a SageMaker job name from execution name {execution!r}")
    return name


def is_valid_experiment_name(name: str) -> bool:
    return bool(EXPERIMENT_NAME_RE.fullmatch(name))


def experiment_key(name: str) -> str:
    """The identity of an experiment (or trial) name as SageMaker sees it: case-insensitive, whole.

    ``cats``, ``Cats`` and ``CATS`` are one experiment: one lock, one set of trials, one best model.
    The names are ASCII by rule, so lower-casing is exact (no Unicode case folding is involved).
    """
    return name.lower()


def same_experiment(a: str, b: str) -> bool:
    return experiment_key(a) == experiment_key(b)


# -- the model registry ----------------------------------------------------------------------------
MODEL_PACKAGE_GROUP_RE = re.compile(limits.MODEL_PACKAGE_GROUP_NAME_PATTERN)
# Every group the pipeline creates starts with this, so RecordResults' IAM policy can name them all
# (``model-package-group/nyanops-*``) and no other group of the account.
MODEL_PACKAGE_GROUP_PREFIX = "nyanops-"


def model_package_group_name(experiment: str) -> str:
    """The SageMaker model package group of an experiment: ``nyanops-<experiment key>``.

    One group per experiment KEY (``Cats`` and ``cats`` share it). An experiment name may have 120
    characters and a group name 63: a longer one keeps its first characters and ends with 10 hex of the
    key's SHA-256, so two long names that share their beginning still get two groups.
    """
    key = experiment_key(experiment)
    name = MODEL_PACKAGE_GROUP_PREFIX + key
    if len(name) > limits.MODEL_PACKAGE_GROUP_NAME_MAX:
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:10]
        name = f"{name[: limits.MODEL_PACKAGE_GROUP_NAME_MAX - len(digest) - 1].rstrip('-')}-{digest}"
    if not MODEL_PACKAGE_GROUP_RE.fullmatch(name):
        raise ValueError(f"cannot derive a model package group name from experiment name {experiment!r}")
    return name
