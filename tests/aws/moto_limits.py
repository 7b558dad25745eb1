"""Test-only corrections that make moto's SageMaker Experiments refuse and behave as AWS does, so a
regression that AWS would reject fails a test here (``nyanops.core.limits`` has the references).

moto 5.x stores whatever it is given: a 40,000-character parameter value, 1,000 parameters, a second
``CreateExperiment`` of an existing name (silently replacing it), ``Cats`` next to ``cats``. AWS:

- ``TrialComponentParameterValue.StringValue`` at most 2,500 characters, at most 300 parameters per
  component, keys at most 320 characters, ``Status.Message`` at most 1,024 characters;
- experiment / trial / trial-component names are unique and NOT case-sensitive: creating one that
  exists (in any case) is refused, and ``Describe*`` / ``ListTrials`` find it in any case;
- ``UpdateTrialComponent`` "replaces ... or adds" parameters: the given keys are set, the others kept.

``install(monkeypatch)`` patches the moto backend for one test (the ``world`` fixture calls it).
"""

from __future__ import annotations

from typing import Any

import pytest
from moto.sagemaker.exceptions import ResourceNotFound, ValidationError
from moto.sagemaker.models import SageMakerModelBackend

from nyanops.core import limits

_ORIGINAL = {
    name: getattr(SageMakerModelBackend, name)
    for name in (
        "create_experiment", "describe_experiment", "create_trial", "describe_trial", "list_trials",
        "create_trial_component", "update_trial_component", "associate_trial_component",
    )
}


def _find(table: dict[str, Any], name: str) -> str | None:
    """The stored name that equals ``name`` case-insensitively."""
    wanted = name.lower()
    return next((k for k in table if k.lower() == wanted), None)


def _check_parameters(params: dict[str, Any] | None) -> None:
    params = params or {}
    if len(params) > limits.TRIAL_COMPONENT_PARAMETERS_MAX:
        raise ValidationError(
            message=f"1 validation error detected: Value at 'parameters' failed to satisfy constraint: Member must "
            f"have length less than or equal to {limits.TRIAL_COMPONENT_PARAMETERS_MAX}"
        )
    for key, value in params.items():
        if len(key) > limits.TRIAL_COMPONENT_PARAMETER_KEY_MAX:
            raise ValidationError(
                message=f"Value '{key[:40]}...' at 'parameters' key failed to satisfy constraint: Member must have "
                f"length less than or equal to {limits.TRIAL_COMPONENT_PARAMETER_KEY_MAX}"
            )
        text = (value or {}).get("StringValue")
        if isinstance(text, str) and len(text) > limits.TRIAL_COMPONENT_STRING_VALUE_MAX:
            raise ValidationError(
                message=f"1 validation error detected: Value at 'parameters.{key}.member.stringValue' failed to "
                f"satisfy constraint: Member must have length less than or equal to "
                f"{limits.TRIAL_COMPONENT_STRING_VALUE_MAX}"
            )


def _check_status(status: dict[str, str] | None) -> None:
    message = (status or {}).get("Message") or ""
    if len(message) > limits.TRIAL_COMPONENT_STATUS_MESSAGE_MAX:
        raise ValidationError(message="Value at 'status.message' failed to satisfy constraint: Member must have length "
                              f"less than or equal to {limits.TRIAL_COMPONENT_STATUS_MESSAGE_MAX}")


def create_experiment(self: SageMakerModelBackend, experiment_name: str) -> dict[str, str]:
    existing = _find(self.experiments, experiment_name)
    if existing is not None:
        raise ValidationError(message=f"Experiment '{existing}' already exists.")
    return _ORIGINAL["create_experiment"](self, experiment_name)


def describe_experiment(self: SageMakerModelBackend, experiment_name: str) -> dict[str, Any]:
    existing = _find(self.experiments, experiment_name)
    if existing is None:
        raise ResourceNotFound(f"Experiment {experiment_name} does not exist.")
    return _ORIGINAL["describe_experiment"](self, existing)


def create_trial(self: SageMakerModelBackend, trial_name: str, experiment_name: str) -> dict[str, str]:
    existing = _find(self.trials, trial_name)
    if existing is not None:
        raise ValidationError(message=f"Trial '{existing}' already exists.")
    experiment = _find(self.experiments, experiment_name)
    if experiment is None:
        raise ResourceNotFound(f"Experiment {experiment_name} does not exist.")
    return _ORIGINAL["create_trial"](self, trial_name, experiment)


def describe_trial(self: SageMakerModelBackend, trial_name: str) -> dict[str, Any]:
    return _ORIGINAL["describe_trial"](self, _find(self.trials, trial_name) or trial_name)


def list_trials(self: SageMakerModelBackend, experiment_name: str | None = None, **kwargs: Any) -> Any:
    if experiment_name is not None:
        experiment_name = _find(self.experiments, experiment_name) or experiment_name
    return _ORIGINAL["list_trials"](self, experiment_name=experiment_name, **kwargs)


def create_trial_component(self: SageMakerModelBackend, trial_component_name: str, *args: Any, **kwargs: Any) -> Any:
    existing = _find(self.trial_components, trial_component_name)
    if existing is not None:
        raise ValidationError(message=f"TrialComponent '{existing}' already exists.")
    _check_parameters(kwargs.get("parameters"))
    _check_status(kwargs.get("status"))
    return _ORIGINAL["create_trial_component"](self, trial_component_name, *args, **kwargs)


def update_trial_component(self: SageMakerModelBackend, trial_component_name: str, **kwargs: Any) -> Any:
    name = _find(self.trial_components, trial_component_name)
    if name is None:
        return _ORIGINAL["update_trial_component"](self, trial_component_name, **kwargs)
    current = dict(self.trial_components[name].parameters or {})
    given = kwargs.get("parameters")
    merged = {**current, **(given or {})}
    for key in kwargs.get("parameters_to_remove") or []:
        merged.pop(key, None)
    _check_parameters(merged)
    _check_status(kwargs.get("status"))
    kwargs["parameters"] = merged if given is not None else None
    if given is None:
        self.trial_components[name].parameters = merged
    kwargs["parameters_to_remove"] = None
    return _ORIGINAL["update_trial_component"](self, name, **kwargs)


def associate_trial_component(self: SageMakerModelBackend, trial_name: str, trial_component_name: str) -> Any:
    trial = _find(self.trials, trial_name) or trial_name
    component = _find(self.trial_components, trial_component_name) or trial_component_name
    if trial in self.trials and component in self.trials[trial].trial_components:
        return {"TrialComponentArn": self.trial_components[component].arn, "TrialArn": self.trials[trial].arn}
    return _ORIGINAL["associate_trial_component"](self, trial, component)


PATCHES = {
    "create_experiment": create_experiment,
    "describe_experiment": describe_experiment,
    "create_trial": create_trial,
    "describe_trial": describe_trial,
    "list_trials": list_trials,
    "create_trial_component": create_trial_component,
    "update_trial_component": update_trial_component,
    "associate_trial_component": associate_trial_component,
}


def install(monkeypatch: pytest.MonkeyPatch) -> None:
    from . import moto_model_registry

    for name, patched in PATCHES.items():
        monkeypatch.setattr(SageMakerModelBackend, name, patched)
    moto_model_registry.install(monkeypatch)
