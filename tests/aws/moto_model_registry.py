"""Test-only corrections that make moto's SageMaker Model Registry refuse and behave as AWS does
(``nyanops.core.limits`` has the references).

moto 5.x stores any ``CustomerMetadataProperties`` (60 entries, 1,000-character values, characters outside
SageMaker's pattern) and any description length, and its ``UpdateModelPackage`` replaces the metadata with
what the call gives: nothing, when a call only changes the approval status. AWS refuses the first (botocore
checks neither maxima nor patterns client-side) and keeps the metadata a call does not name.

``install(monkeypatch)`` patches the moto backend for one test (``moto_limits.install`` calls it).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from moto.sagemaker.exceptions import ValidationError
from moto.sagemaker.models import SageMakerModelBackend

from nyanops.core import limits

_ORIGINAL = {name: getattr(SageMakerModelBackend, name) for name in ("create_model_package", "update_model_package")}
# SageMaker's pattern for a metadata key or value: letters, separators, numbers and _.:/=+-@.
_ALLOWED = re.compile(r"[^\W_]|[\s_.:/=+\-@]")


def _refuse(where: str, problem: str) -> None:
    raise ValidationError(message=f"1 validation error detected: Value at '{where}' failed to satisfy constraint: "
                          f"{problem}")


def _check_metadata(metadata: dict[str, str] | None) -> None:
    if metadata is None:
        return
    if not 1 <= len(metadata) <= limits.CUSTOMER_METADATA_PROPERTIES_MAX:
        _refuse("customerMetadataProperties", f"Map value must satisfy constraint: [Member must have length less "
                f"than or equal to {limits.CUSTOMER_METADATA_PROPERTIES_MAX}, Member must have length greater "
                f"than or equal to 1]")
    for key, value in metadata.items():
        for what, text, limit in (("key", key, limits.CUSTOMER_METADATA_KEY_MAX),
                                  ("value", value, limits.CUSTOMER_METADATA_VALUE_MAX)):
            if not 1 <= len(text) <= limit:
                _refuse(f"customerMetadataProperties.{what}", f"Member must have length less than or equal to {limit}")
            if not all(_ALLOWED.fullmatch(ch) for ch in text):
                _refuse(f"customerMetadataProperties.{what}",
                        r"Member must satisfy regular expression pattern: ^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$")


def create_model_package(self: SageMakerModelBackend, **kwargs: Any) -> Any:
    _check_metadata(kwargs.get("customer_metadata_properties"))
    if len(kwargs.get("model_package_description") or "") > limits.MODEL_PACKAGE_DESCRIPTION_MAX:
        _refuse("modelPackageDescription",
                f"Member must have length less than or equal to {limits.MODEL_PACKAGE_DESCRIPTION_MAX}")
    return _ORIGINAL["create_model_package"](self, **kwargs)


def update_model_package(self: SageMakerModelBackend, model_package_arn: str, **kwargs: Any) -> Any:
    _check_metadata(kwargs.get("customer_metadata_properties"))
    if kwargs.get("customer_metadata_properties") is None:
        package = self.model_packages.get(self.model_package_name_mapping.get(model_package_arn, model_package_arn))
        if package is not None:  # AWS keeps what the call does not name
            kwargs["customer_metadata_properties"] = package.customer_metadata_properties
    return _ORIGINAL["update_model_package"](self, model_package_arn=model_package_arn, **kwargs)


def install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(SageMakerModelBackend, "create_model_package", create_model_package)
    monkeypatch.setattr(SageMakerModelBackend, "update_model_package", update_model_package)
