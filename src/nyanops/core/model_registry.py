"""The model registry: each experiment's best model as a versioned package, so a deployment can take "the
approved model" without reading Experiments.

When the best flag MOVES to a trial (``best_model``: the first trial, a challenger that beat the champion,
directly or after the champion's re-scoring), RecordResults registers that trial's model as a new version
of the experiment's package group, ``Approved``, and the package that was approved before becomes
``Rejected`` (SageMaker's ``ModelApprovalStatus`` values): the hand-over. A trial whose result leaves the flag
where it is registers nothing.

On AWS the group is a SageMaker model package group per experiment (``naming.model_package_group_name``;
``nyanops.aws.model_registry``), locally the ``model_packages`` table of the SQLite database
(``nyanops.local.model_registry``); both number versions per experiment from 1, as SageMaker's
``ModelPackageVersion``, and keep the same metadata within SageMaker's limits (``core.limits``).

Idempotent: the hand-over looks at the group first, so a retried or replayed RecordResults finds the
trial's package and only completes what is missing (approving it, rejecting the previous one): one trial,
one package. The new version is approved BEFORE the previous one is rejected, so a reader never finds the
group without an approved model; between the two calls (or after a crash there, until the retry) two
versions are approved and the newest one is the best (a deployment sorts by creation time, newest first).
The hand-over runs under the experiment's decision lock, so concurrent trials hand over one after the other.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import unicodedata
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from nyanops.core import limits
from nyanops.core.best_model import HIGHER_IS_BETTER, metric_value
from nyanops.core.experiments import HP_PREFIX, TrialRecord

APPROVED = "Approved"
REJECTED = "Rejected"
PENDING = "PendingManualApproval"
APPROVAL_STATUSES = (APPROVED, REJECTED, PENDING)
# The headline metrics a package carries (the per-class figures stay in evaluation.json).
HEADLINE_METRICS = HIGHER_IS_BETTER
# What a content type the package's image answers, for the InferenceSpecification.
CONTENT_TYPES = ("application/x-image", "image/jpeg", "image/png")
RESPONSE_TYPES = ("application/json",)
OMITTED_KEY = "omitted"
CLIP_MARKER = "..."
# The description is immutable once a package exists: it names the trial, so a listing of the group (whose
# summaries carry the description, not the metadata) tells which trial each version is.
_DESCRIPTION = re.compile(
    r"nyanops trial (?P<trial>\S+): (?P<metric>[a-z0-9_]+) (?P<value>\S+) on dataset (?P<dataset>\S+)"
)


@dataclass(frozen=True)
class PackageSpec:
    """What is registered for a trial: its identity, its figures and where its model and evaluation are."""

    experiment: str
    trial: str
    metric: str
    value: float | None
    metrics: dict[str, float]
    dataset_id: str
    dataset_hash: str
    test_hash: str
    code_hash: str
    hyperparameters: dict[str, Any]
    model_location: str
    evaluation_location: str

    @classmethod
    def of(cls, record: TrialRecord, metric: str) -> PackageSpec:
        return cls(
            experiment=record.experiment,
            trial=record.trial,
            metric=metric,
            value=metric_value(record.metrics, metric),
            metrics={k: float(v) for k, v in record.metrics.items() if k in HEADLINE_METRICS},
            dataset_id=record.dataset_id,
            dataset_hash=record.dataset_hash,
            test_hash=record.test_hash,
            code_hash=record.code_hash,
            hyperparameters=dict(record.hyperparameters),
            model_location=record.model_location,
            evaluation_location=record.evaluation_location,
        )

    def description(self) -> str:
        """The package's description: ``nyanops trial T: METRIC VALUE on dataset D (experiment E)``."""
        value = f"{self.value:.4f}" if self.value is not None and math.isfinite(self.value) else "none"
        text = (
            f"nyanops trial {self.trial}: {self.metric} {value} on dataset {self.dataset_id or '-'} "
            f"(experiment {self.experiment})"
        )
        return limits.clip(text, limits.MODEL_PACKAGE_DESCRIPTION_MAX, CLIP_MARKER)

    def metadata(self) -> dict[str, str]:
        """The package's ``CustomerMetadataProperties``, within SageMaker's limits (``fit_metadata``)."""
        entries: list[tuple[str, str]] = [
            ("trial", self.trial),
            ("experiment", self.experiment),
            ("dataset_id", self.dataset_id),
            ("dataset_hash", self.dataset_hash),
            ("test_hash", self.test_hash),
            ("code_hash", self.code_hash),
            ("model_uri", self.model_location),
            ("evaluation_uri", self.evaluation_location),
            ("primary_metric", self.metric),
        ]
        entries += [(name, repr(self.metrics[name])) for name in HEADLINE_METRICS if name in self.metrics]
        entries.append(("hyperparameters_sha256", hyperparameters_digest(self.hyperparameters)))
        entries += [(HP_PREFIX + name, _text(value)) for name, value in sorted(self.hyperparameters.items())]
        return fit_metadata(entries)


@dataclass(frozen=True)
class ModelPackage:
    """One version of an experiment's package group, as the registry lists it."""

    experiment: str
    version: int
    trial: str
    status: str
    created_at: datetime | None = None
    metric: str = ""
    value: float | None = None
    dataset_id: str = ""
    model_location: str = ""
    arn: str = ""  # on AWS; "" locally
    description: str = ""
    metadata: dict[str, str] = field(default_factory=dict)


class ModelRegistry(Protocol):
    """An experiment's package group: SageMaker's Model Registry, or the local database's table."""

    def packages(self, experiment: str) -> list[ModelPackage]:
        """Every version of the experiment's group, oldest first ([] when it has none)."""
        ...

    def experiments(self) -> list[str]:
        """The experiments that have a package group."""
        ...

    def register(self, spec: PackageSpec) -> ModelPackage:
        """Create the next version (the group too, if missing) for ``spec``, Approved."""
        ...

    def set_status(self, package: ModelPackage, status: str, reason: str) -> None:
        """Change a version's approval status, saying why (``ApprovalDescription``)."""
        ...


@dataclass(frozen=True)
class HandOver:
    """What the hand-over did: the approved version, whether it was created now, the versions it rejected."""

    approved: ModelPackage
    created: bool
    rejected: tuple[ModelPackage, ...] = ()

    def text(self) -> str:
        what = "registered as" if self.created else "is"
        line = f"model registry: trial {self.approved.trial} {what} version {self.approved.version}, Approved"
        if self.rejected:
            line += "; " + ", ".join(f"version {p.version} ({p.trial}) Rejected" for p in self.rejected)
        return line

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": self.approved.version,
            "status": self.approved.status,
            "created": self.created,
            "arn": self.approved.arn,
            "rejected": [p.version for p in self.rejected],
        }


def hand_over(registry: ModelRegistry, spec: PackageSpec) -> HandOver:
    """Make ``spec``'s trial the experiment's one approved package (see the module docstring)."""
    packages = registry.packages(spec.experiment)
    mine = [p for p in packages if p.trial == spec.trial]
    if mine:
        target = max(mine, key=lambda p: p.version)
        created = False
        if target.status != APPROVED:
            registry.set_status(target, APPROVED, f"trial {spec.trial} holds the best flag")
            target = replace(target, status=APPROVED)
    else:
        target = registry.register(spec)
        created = True
    rejected = []
    for package in packages:
        if package.version != target.version and package.status == APPROVED:
            reason = f"superseded by version {target.version} (trial {spec.trial}), the experiment's new best model"
            registry.set_status(package, REJECTED, reason)
            rejected.append(replace(package, status=REJECTED))
    return HandOver(target, created, tuple(rejected))


def approved(packages: list[ModelPackage]) -> ModelPackage | None:
    """The approved model: the newest approved version (what a deployment takes)."""
    return max((p for p in packages if p.status == APPROVED), key=lambda p: p.version, default=None)


def parse_description(description: str) -> dict[str, Any]:
    """The trial, metric, value and dataset a package's description names ({} for another description)."""
    match = _DESCRIPTION.match(description or "")
    if not match:
        return {}
    try:
        value: float | None = float(match["value"])
    except ValueError:
        value = None
    dataset = match["dataset"]
    return {"trial": match["trial"], "metric": match["metric"], "value": value,
            "dataset_id": "" if dataset == "-" else dataset}


def hyperparameters_digest(hyperparameters: dict[str, Any]) -> str:
    """SHA-256 of the resolved hyperparameters (canonical JSON): their identity, however many there are."""
    canonical = json.dumps(hyperparameters, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# -- CustomerMetadataProperties within SageMaker's limits ------------------------------------------------
def metadata_text(text: str, limit: int) -> str:
    """``text`` as a metadata key or value: each character SageMaker's pattern refuses becomes ``_``, and a
    text longer than ``limit`` keeps its start and ends with ``...``. Deterministic, never refused."""
    allowed = "".join(
        ch if unicodedata.category(ch)[0] in "LNZ" or ch in limits.CUSTOMER_METADATA_PUNCTUATION else "_"
        for ch in text
    )
    return limits.clip(allowed, limit, CLIP_MARKER)


def _unique_key(key: str) -> str:
    """A key within 128 characters; a longer one keeps its start and ends with 8 hex of its SHA-256."""
    cleaned = metadata_text(key, len(key) or 1)
    if len(cleaned) <= limits.CUSTOMER_METADATA_KEY_MAX:
        return cleaned
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:8]
    return f"{cleaned[: limits.CUSTOMER_METADATA_KEY_MAX - 9]}-{digest}"


def fit_metadata(entries: list[tuple[str, str]]) -> dict[str, str]:
    """Ordered ``(key, value)`` pairs as ``CustomerMetadataProperties`` SageMaker accepts.

    Empty values are left out (a value has at least one character); keys and values are made to fit
    (``metadata_text``); when there are more than 50 entries, the first 49 are kept and ``omitted`` says how
    many more the trial record holds (the hyperparameters come last; ``hyperparameters_sha256`` still
    identifies all of them).
    """
    fitted: dict[str, str] = {}
    for key, value in entries:
        if value == "" or not key:
            continue
        fitted.setdefault(_unique_key(key), metadata_text(value, limits.CUSTOMER_METADATA_VALUE_MAX))
    if len(fitted) > limits.CUSTOMER_METADATA_PROPERTIES_MAX:
        keep = list(fitted.items())[: limits.CUSTOMER_METADATA_PROPERTIES_MAX - 1]
        more = len(fitted) - len(keep)
        fitted = dict(keep)
        fitted[OMITTED_KEY] = f"{more} more properties: the trial record in Experiments has them all"
    return fitted


def check_metadata(metadata: dict[str, str]) -> None:
    """Refuse metadata SageMaker would refuse (what every adapter writes goes through ``fit_metadata``)."""
    if not 1 <= len(metadata) <= limits.CUSTOMER_METADATA_PROPERTIES_MAX:
        raise limits.LimitExceeded(
            "CustomerMetadataProperties",
            f"{len(metadata)} entries, outside SageMaker's 1-{limits.CUSTOMER_METADATA_PROPERTIES_MAX}",
        )
    for key, value in metadata.items():
        for what, text, limit in (("key", key, limits.CUSTOMER_METADATA_KEY_MAX),
                                  ("value", value, limits.CUSTOMER_METADATA_VALUE_MAX)):
            if not 1 <= len(text) <= limit or metadata_text(text, limit) != text:
                raise limits.LimitExceeded(
                    f"CustomerMetadataProperties.{key[:40]}",
                    f"the {what} is not 1-{limit} characters of letters, separators, numbers and "
                    f"{limits.CUSTOMER_METADATA_PUNCTUATION}",
                )


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)
