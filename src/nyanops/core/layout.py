"""The storage layout: every S3 key (or local-bucket path) the pipeline reads or writes.

```
datasets/<dataset-id>/{train,val,test}/<class>/<image>   immutable once complete
datasets/<dataset-id>/_dataset.json                      the seal, written LAST (by a tool or by the pipeline)
datasets/<dataset-id>/_uploading.json                    a tool's claim while it uploads (the sealer waits for it)
manifests/<name>.json                                    an experiment manifest; its arrival starts a run
code/<content-hash>/sourcedir.tar.gz                     ml_code bundle for the training job
code/<content-hash>/src/...                              the same files unpacked, for the processing job
runs/<execution-name>/{model,evaluation,checkpoints}/    job outputs
runs/<execution-name>/champion-<n>/                       the best model re-scored on this run's test set
rejected/<original-key>.error.json                       why an upload was refused (the upload stays)
```
The EventBridge rule patterns in ``template.yaml`` are derived from the constants here and a test
keeps them in step.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from enum import Enum

from nyanops.core import limits

DATASETS_PREFIX = "datasets/"
MANIFESTS_PREFIX = "manifests/"
CODE_PREFIX = "code/"
RUNS_PREFIX = "runs/"
REJECTED_PREFIX = "rejected/"

DATASET_MARKER = "_dataset.json"
# Written first by `nyanops dataset add --bucket` and removed after its seal: the pipeline never seals a
# prefix that holds it (an upload in progress or interrupted), and StartPipeline does not count it as a file.
DATASET_CLAIM = "_uploading.json"
MANIFEST_SUFFIX = ".json"
CODE_BUNDLE = "sourcedir.tar.gz"
CODE_SOURCE_DIR = "src/"
EVALUATION_FILE = "evaluation.json"
REJECTION_SUFFIX = ".error.json"

SPLITS = ("train", "val", "test")

# A dataset id is one path segment: a UTC timestamp such as 2026-11-28T064300Z, or a chosen name.
# Both patterns are matched against the whole text (``fullmatch``), never with ``match`` + ``$``.
DATASET_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
CODE_HASH_RE = re.compile(r"[0-9a-f]{64}")
MAX_KEY_LENGTH = limits.S3_KEY_MAX_BYTES
# A refusal record's key for an upload key too long to fit under rejected/: a UTF-8-safe prefix of the
# key, then this marker and 16 hex of the key's sha256 (the full key is inside the record).
REJECTION_HASH_MARK = "~"
_REJECTION_HASH_LEN = 16


class KeyKind(str, Enum):
    """What an uploaded key means to the pipeline."""

    DATASET_READY = "dataset"
    MANIFEST = "manifest"
    IGNORED = "ignored"


@dataclass(frozen=True)
class ClassifiedKey:
    kind: KeyKind
    key: str
    dataset_id: str | None = None
    manifest_name: str | None = None


def classify_key(key: str) -> ClassifiedKey:
    """Say whether ``key`` is a completed-dataset marker, a manifest, or something that starts nothing.

    Only ``datasets/<id>/_dataset.json`` (exactly one segment for the id) and ``manifests/*.json``
    start runs; the thousands of image uploads of a dataset are ignored.
    """
    if key.startswith(DATASETS_PREFIX) and key.endswith("/" + DATASET_MARKER):
        middle = key[len(DATASETS_PREFIX) : -len("/" + DATASET_MARKER)]
        if "/" not in middle and middle:
            return ClassifiedKey(KeyKind.DATASET_READY, key, dataset_id=middle)
        return ClassifiedKey(KeyKind.IGNORED, key)
    if key.startswith(MANIFESTS_PREFIX) and key.endswith(MANIFEST_SUFFIX) and len(key) > len(MANIFESTS_PREFIX) + 5:
        return ClassifiedKey(KeyKind.MANIFEST, key, manifest_name=key[len(MANIFESTS_PREFIX) : -len(MANIFEST_SUFFIX)])
    return ClassifiedKey(KeyKind.IGNORED, key)


def dataset_prefix(dataset_id: str) -> str:
    return f"{DATASETS_PREFIX}{dataset_id}/"


def dataset_marker_key(dataset_id: str) -> str:
    return f"{DATASETS_PREFIX}{dataset_id}/{DATASET_MARKER}"


def dataset_claim_key(dataset_id: str) -> str:
    return f"{DATASETS_PREFIX}{dataset_id}/{DATASET_CLAIM}"


def dataset_id_of(key: str) -> str | None:
    """The ``<id>`` of any key under ``datasets/<id>/``, or None for keys elsewhere (or ``datasets/x`` alone)."""
    if not key.startswith(DATASETS_PREFIX):
        return None
    dataset_id, sep, _ = key[len(DATASETS_PREFIX) :].partition("/")
    return dataset_id if sep and dataset_id else None


def dataset_split_prefix(dataset_id: str, split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    return f"{DATASETS_PREFIX}{dataset_id}/{split}/"


def manifest_key(name: str) -> str:
    return f"{MANIFESTS_PREFIX}{name}{MANIFEST_SUFFIX}"


def code_prefix(code_hash: str) -> str:
    return f"{CODE_PREFIX}{code_hash}/"


def code_bundle_key(code_hash: str) -> str:
    return f"{CODE_PREFIX}{code_hash}/{CODE_BUNDLE}"


def code_source_prefix(code_hash: str) -> str:
    return f"{CODE_PREFIX}{code_hash}/{CODE_SOURCE_DIR}"


def parse_code_bundle_key(key: str) -> str | None:
    """Return the content hash of ``code/<hash>/sourcedir.tar.gz``, or None for any other key."""
    parts = key.split("/")
    if len(parts) == 3 and parts[0] + "/" == CODE_PREFIX and parts[2] == CODE_BUNDLE and is_code_hash(parts[1]):
        return parts[1]
    return None


def is_dataset_id(text: str) -> bool:
    return DATASET_ID_RE.fullmatch(text) is not None


def is_code_hash(text: str) -> bool:
    return CODE_HASH_RE.fullmatch(text) is not None


def run_prefix(execution_name: str) -> str:
    return f"{RUNS_PREFIX}{execution_name}/"


def run_model_prefix(execution_name: str) -> str:
    return f"{RUNS_PREFIX}{execution_name}/model/"


def run_evaluation_prefix(execution_name: str) -> str:
    return f"{RUNS_PREFIX}{execution_name}/evaluation/"


def run_checkpoint_prefix(execution_name: str) -> str:
    return f"{RUNS_PREFIX}{execution_name}/checkpoints/"


def run_champion_prefix(execution_name: str, attempt: int) -> str:
    """Where the champion's re-scoring on this run's test set writes (attempt 1, 2, ...)."""
    return f"{RUNS_PREFIX}{execution_name}/champion-{attempt}/"


def evaluation_key(execution_name: str) -> str:
    return f"{run_evaluation_prefix(execution_name)}{EVALUATION_FILE}"


def rejection_key(original_key: str) -> str:
    """``rejected/<key>.error.json``, kept within S3's 1,024-byte key limit.

    A key that leaves no room (an upload key of more than 1,004 bytes) is shortened on a character
    boundary and ends in ``~<16 hex of its sha256>``: still one deterministic record per upload key,
    still under ``rejected/`` next to where the full one would be; the record holds the full key.
    """
    plain = f"{REJECTED_PREFIX}{original_key}{REJECTION_SUFFIX}"
    if limits.utf8_len(plain) <= MAX_KEY_LENGTH:
        return plain
    digest = hashlib.sha256(original_key.encode("utf-8")).hexdigest()[:_REJECTION_HASH_LEN]
    tail = f"{REJECTION_HASH_MARK}{digest}{REJECTION_SUFFIX}"
    room = MAX_KEY_LENGTH - limits.utf8_len(REJECTED_PREFIX) - limits.utf8_len(tail)
    head = original_key.encode("utf-8")[:room].decode("utf-8", errors="ignore")
    return f"{REJECTED_PREFIX}{head}{tail}"


def s3_uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """Split ``s3://bucket/key`` into (bucket, key); raise ValueError for anything else."""
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri[5:].partition("/")
    if not bucket:
        raise ValueError(f"no bucket in {uri!r}")
    return bucket, key
