"""The model registry on AWS: SageMaker's Model Registry through plain boto3 (``nyanops.core.model_registry``).

One model package group per experiment (``naming.model_package_group_name``: ``nyanops-<experiment key>``,
created on first use with the experiment's name in its description); each best model is a versioned model
package in it: ``InferenceSpecification`` with the image the pipeline's evaluation runs in (the template's
``EvaluationImage`` or its FrameworkImage mapping, ``MODEL_IMAGE``) and the trial's ``model.tar.gz``,
``ModelApprovalStatus`` ``Approved`` and the trial's metadata (``CustomerMetadataProperties``). The hand-over
sets the previous version ``Rejected`` with ``UpdateModelPackage``.

A deployment takes the approved model with ``ListModelPackages(ModelPackageGroupName=<group>,
ModelApprovalStatus="Approved", SortBy="CreationTime", SortOrder="Descending", MaxResults=1)``.

``ListModelPackages`` summaries carry each version's description, not its metadata: the description names
the trial (``PackageSpec.description``), so one listing tells which trial each version is. Throttling is
retried with backoff, then reported as ``ExperimentsThrottled`` (which the state machine retries).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from nyanops.aws.sagemaker_experiments import throttled_call
from nyanops.core import limits, naming
from nyanops.core.model_registry import (
    APPROVED,
    CONTENT_TYPES,
    RESPONSE_TYPES,
    ModelPackage,
    PackageSpec,
    check_metadata,
    parse_description,
)

GROUP_DESCRIPTION = "nyanops: the best models of experiment {experiment}, newest approved"
_GROUP_DESCRIPTION = re.compile(r"nyanops: the best models of experiment (?P<experiment>\S+),")
MODEL_DATA_URL_RE = re.compile(limits.MODEL_DATA_URL_PATTERN)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _missing_group(exc: ClientError) -> bool:
    """SageMaker answers a group that does not exist with a ValidationException saying so."""
    message = str(exc.response.get("Error", {}).get("Message", "")).lower()
    return _code(exc) in ("ValidationException", "ResourceNotFound") and (
        "does not exist" in message or "not found" in message
    )


def version_of(arn: str) -> int:
    """A versioned package's ARN ends with its version: ``...:model-package/<group>/<version>``."""
    tail = arn.rsplit("/", 1)[-1]
    if not tail.isdigit():
        raise ValueError(f"not a versioned model package ARN: {arn}")
    return int(tail)


class SageMakerModelRegistry:
    def __init__(
        self,
        client: Any,
        image: str = "",
        *,
        attempts: int = 6,
        backoff_seconds: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """``image``: the inference image of new packages (RecordResults registers; a reader needs none)."""
        self._sm = client
        self._image = image
        self._attempts = attempts
        self._backoff = backoff_seconds
        self._sleep = sleep

    def call(self, operation: str, **kwargs: Any) -> Any:
        return throttled_call(self._sm, operation, kwargs, self._attempts, self._backoff, self._sleep)

    # -- reading -----------------------------------------------------------------------------------------
    def packages(self, experiment: str) -> list[ModelPackage]:
        group = naming.model_package_group_name(experiment)
        found: list[ModelPackage] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {
                "ModelPackageGroupName": group, "SortBy": "CreationTime", "SortOrder": "Ascending",
                "MaxResults": limits.LIST_MODEL_PACKAGES_PAGE_MAX,
            }
            if token:
                kwargs["NextToken"] = token
            try:
                page = self.call("list_model_packages", **kwargs)
            except ClientError as exc:
                if _missing_group(exc):
                    return []
                raise
            found += [self._package(experiment, s) for s in page.get("ModelPackageSummaryList", [])]
            token = page.get("NextToken")
            if not token:
                return sorted(found, key=lambda p: p.version)

    def experiments(self) -> list[str]:
        names: list[str] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"NameContains": naming.MODEL_PACKAGE_GROUP_PREFIX, "MaxResults": 100}
            if token:
                kwargs["NextToken"] = token
            page = self.call("list_model_package_groups", **kwargs)
            for group in page.get("ModelPackageGroupSummaryList", []):
                match = _GROUP_DESCRIPTION.match(group.get("ModelPackageGroupDescription") or "")
                if match and naming.model_package_group_name(match["experiment"]) == group["ModelPackageGroupName"]:
                    names.append(match["experiment"])
            token = page.get("NextToken")
            if not token:
                return sorted(names, key=naming.experiment_key)

    @staticmethod
    def _package(experiment: str, summary: dict[str, Any]) -> ModelPackage:
        described = parse_description(summary.get("ModelPackageDescription", ""))
        created = summary.get("CreationTime")
        return ModelPackage(
            experiment=experiment,
            version=int(summary.get("ModelPackageVersion") or version_of(summary["ModelPackageArn"])),
            trial=described.get("trial", ""),
            status=summary.get("ModelApprovalStatus", ""),
            created_at=created if isinstance(created, datetime) else None,
            metric=described.get("metric", ""),
            value=described.get("value"),
            dataset_id=described.get("dataset_id", ""),
            arn=summary["ModelPackageArn"],
            description=summary.get("ModelPackageDescription", ""),
        )

    def describe(self, package: ModelPackage) -> dict[str, Any]:
        """The whole DescribeModelPackage answer (metadata, inference specification) of one version."""
        return dict(self.call("describe_model_package", ModelPackageName=package.arn))

    # -- writing -----------------------------------------------------------------------------------------
    def _ensure_group(self, experiment: str) -> str:
        group = naming.model_package_group_name(experiment)
        try:
            self.call("describe_model_package_group", ModelPackageGroupName=group)
            return group
        except ClientError as exc:
            if not _missing_group(exc):
                raise
        description = limits.clip(
            GROUP_DESCRIPTION.format(experiment=experiment), limits.MODEL_PACKAGE_DESCRIPTION_MAX
        )
        try:
            self.call("create_model_package_group", ModelPackageGroupName=group,
                      ModelPackageGroupDescription=description)
        except ClientError as refused:
            # Created meanwhile (another stack's run of an experiment of the same name): fine if it is there now.
            try:
                self.call("describe_model_package_group", ModelPackageGroupName=group)
            except ClientError:
                raise refused from None
        return group

    def inference_specification(self, spec: PackageSpec) -> dict[str, Any]:
        image = self._image
        if not image or len(image) > limits.MODEL_CONTAINER_IMAGE_MAX or any(c.isspace() for c in image):
            raise ValueError(f"MODEL_IMAGE must be an image URI of at most {limits.MODEL_CONTAINER_IMAGE_MAX} "
                             f"characters without whitespace, got {self._image!r}")
        container: dict[str, Any] = {"Image": image}
        url = spec.model_location
        if url and len(url) <= limits.MODEL_DATA_URL_MAX and MODEL_DATA_URL_RE.fullmatch(url):
            container["ModelDataUrl"] = url
        return {
            "Containers": [container],
            "SupportedContentTypes": list(CONTENT_TYPES),
            "SupportedResponseMIMETypes": list(RESPONSE_TYPES),
        }

    def register(self, spec: PackageSpec) -> ModelPackage:
        metadata = spec.metadata()
        check_metadata(metadata)
        inference = self.inference_specification(spec)
        group = self._ensure_group(spec.experiment)
        arn = self.call(
            "create_model_package",
            ModelPackageGroupName=group,
            ModelPackageDescription=spec.description(),
            InferenceSpecification=inference,
            ModelApprovalStatus=APPROVED,
            CustomerMetadataProperties=metadata,
        )["ModelPackageArn"]
        return ModelPackage(
            experiment=spec.experiment, version=version_of(arn), trial=spec.trial, status=APPROVED,
            metric=spec.metric, value=spec.value, dataset_id=spec.dataset_id, model_location=spec.model_location,
            arn=arn, description=spec.description(), metadata=metadata,
        )

    def set_status(self, package: ModelPackage, status: str, reason: str) -> None:
        self.call(
            "update_model_package",
            ModelPackageArn=package.arn,
            ModelApprovalStatus=status,
            ApprovalDescription=limits.clip(reason, limits.MODEL_PACKAGE_DESCRIPTION_MAX),
        )
