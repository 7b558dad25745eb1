"""Deleting a SageMaker experiment, as the seed notebook did at its end: for each trial, disassociate and
delete its trial components (the pipeline's ``<trial>-results`` and the components SageMaker created
for the training and processing jobs), delete the trial, then delete the experiment.

SageMaker refuses to delete an experiment that still has trials, and a trial that still has components,
hence the order. The control-plane APIs throttle quickly (a few calls per second), so every call goes
through ``with_backoff``: exponential backoff with full jitter on throttling errors. The boto3 client is
injected. ``plan`` only reads, so the CLI can show what will be deleted before asking.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

THROTTLING_CODES = frozenset(
    {"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded", "SlowDown"}
)


class ExperimentNotFound(Exception):
    pass


@dataclass
class TrialPlan:
    trial: str
    components: list[str]


@dataclass
class CleanupPlan:
    experiment: str
    trials: list[TrialPlan]

    @property
    def component_count(self) -> int:
        return sum(len(t.components) for t in self.trials)

    def describe(self) -> str:
        lines = [
            f"experiment {self.experiment}: {len(self.trials)} trials, {self.component_count} trial components"
        ]
        for t in self.trials:
            lines.append(f"  trial {t.trial}")
            lines += [f"    component {c}" for c in t.components]
        return "\n".join(lines)


@dataclass
class CleanupResult:
    deleted_components: list[str] = field(default_factory=list)
    deleted_trials: list[str] = field(default_factory=list)
    deleted_experiment: bool = False
    kept_components: list[str] = field(default_factory=list)  # still used by a trial of another experiment


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _message(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", "")).lower()


def _missing(exc: ClientError) -> bool:
    """Already gone: AWS says ResourceNotFound, or ValidationException '... does not exist' / 'Could not find'."""
    return _code(exc) == "ResourceNotFound" or (
        _code(exc) == "ValidationException" and ("not exist" in _message(exc) or "could not find" in _message(exc))
    )


def with_backoff(
    call: Callable[[], Any],
    *,
    sleep: Callable[[float], None] = time.sleep,
    rand: Callable[[], float] = random.random,
    attempts: int = 8,
    base: float = 0.5,
    cap: float = 20.0,
) -> Any:
    """``call()``, retried on throttling with full-jitter exponential backoff (sleep in [0, min(cap,
    base * 2**n)]); other errors, and throttling after ``attempts`` tries, are raised."""
    for attempt in range(attempts):
        try:
            return call()
        except ClientError as exc:
            if _code(exc) not in THROTTLING_CODES or attempt == attempts - 1:
                raise
            sleep(rand() * min(cap, base * 2**attempt))
    raise AssertionError("unreachable")


class ExperimentCleaner:
    def __init__(
        self,
        client: Any,
        *,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
        attempts: int = 8,
        log: Callable[[str], None] = lambda _: None,
    ) -> None:
        self._sm = client
        self._sleep, self._rand, self._attempts = sleep, rand, attempts
        self._log = log

    def _call(self, method: str, **kwargs: Any) -> Any:
        fn = getattr(self._sm, method)
        return with_backoff(lambda: fn(**kwargs), sleep=self._sleep, rand=self._rand, attempts=self._attempts)

    def _pages(self, method: str, key: str, **kwargs: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        while True:
            page = self._call(method, **kwargs)
            items += page.get(key, [])
            if not page.get("NextToken"):
                return items
            kwargs["NextToken"] = page["NextToken"]

    def experiment_names(self) -> list[str]:
        return [e["ExperimentName"] for e in self._pages("list_experiments", "ExperimentSummaries")]

    def plan(self, experiment: str) -> CleanupPlan:
        """What deleting ``experiment`` will delete (reads only). Raises ExperimentNotFound."""
        if experiment not in self.experiment_names():
            raise ExperimentNotFound(experiment)
        trials = []
        for t in self._pages("list_trials", "TrialSummaries", ExperimentName=experiment):
            name = t["TrialName"]
            components = self._pages("list_trial_components", "TrialComponentSummaries", TrialName=name)
            trials.append(TrialPlan(name, [c["TrialComponentName"] for c in components]))
        return CleanupPlan(experiment, trials)

    def delete(self, plan: CleanupPlan) -> CleanupResult:
        """Delete what ``plan`` lists, components first, then each trial, then the experiment. Safe to
        run again after an interruption: whatever is already gone is skipped."""
        result = CleanupResult()
        for t in plan.trials:
            for component in t.components:
                self._ignore_missing("disassociate_trial_component", TrialComponentName=component, TrialName=t.trial)
                try:
                    self._call("delete_trial_component", TrialComponentName=component)
                except ClientError as exc:
                    if _missing(exc):
                        continue
                    if _code(exc) == "ValidationException" and "associated" in _message(exc):
                        # Another experiment's trial still uses it (a job component shared by hand).
                        result.kept_components.append(component)
                        self._log(f"kept trial component {component}: still associated with another trial")
                        continue
                    raise
                result.deleted_components.append(component)
                self._log(f"deleted trial component {component}")
            if self._ignore_missing("delete_trial", TrialName=t.trial):
                result.deleted_trials.append(t.trial)
                self._log(f"deleted trial {t.trial}")
        result.deleted_experiment = self._ignore_missing("delete_experiment", ExperimentName=plan.experiment)
        if result.deleted_experiment:
            self._log(f"deleted experiment {plan.experiment}")
        return result

    def _ignore_missing(self, method: str, **kwargs: Any) -> bool:
        """True if the call succeeded, False if the thing was already gone."""
        try:
            self._call(method, **kwargs)
        except ClientError as exc:
            if _missing(exc):
                return False
            raise
        return True
