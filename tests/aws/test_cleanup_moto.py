"""`nyanops cleanup --bucket`: deleting an experiment's trial components, trials and the experiment in
SageMaker Experiments (moto), leaving other experiments alone, with backoff on throttling."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from nyanops.aws.experiment_cleanup import ExperimentCleaner, ExperimentNotFound, with_backoff

REGION = "us-east-1"


@pytest.fixture
def sm(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield boto3.client("sagemaker", region_name=REGION)


def make_experiment(sm: Any, name: str, trials: int) -> None:
    """What the pipeline leaves: each trial with its <trial>-results component and the jobs' components."""
    sm.create_experiment(ExperimentName=name)
    for i in range(trials):
        trial = f"{name}-run{i}"
        sm.create_trial(TrialName=trial, ExperimentName=name)
        for component in (f"{trial}-results", f"{trial}-train-aws-training-job", f"{trial}-eval-aws-processing-job"):
            sm.create_trial_component(TrialComponentName=component)
            sm.associate_trial_component(TrialComponentName=component, TrialName=trial)


def component_names(sm: Any) -> set[str]:
    return {c["TrialComponentName"] for c in sm.list_trial_components()["TrialComponentSummaries"]}


def test_plan_lists_what_will_be_deleted_and_deletes_nothing(sm: Any) -> None:
    make_experiment(sm, "cats", 2)
    plan = ExperimentCleaner(sm).plan("cats")
    assert [t.trial for t in plan.trials] == ["cats-run0", "cats-run1"]
    assert plan.trials[0].components == [
        "cats-run0-results", "cats-run0-train-aws-training-job", "cats-run0-eval-aws-processing-job"]
    assert plan.component_count == 6
    text = plan.describe()
    assert "experiment cats: 2 trials, 6 trial components" in text and "component cats-run1-results" in text
    assert len(component_names(sm)) == 6


def test_delete_removes_components_trials_and_experiment_only_of_that_experiment(sm: Any) -> None:
    make_experiment(sm, "cats", 2)
    make_experiment(sm, "dogs", 1)
    log: list[str] = []
    cleaner = ExperimentCleaner(sm, log=log.append)
    result = cleaner.delete(cleaner.plan("cats"))
    assert len(result.deleted_components) == 6 and result.deleted_trials == ["cats-run0", "cats-run1"]
    assert result.deleted_experiment and not result.kept_components
    assert [e["ExperimentName"] for e in sm.list_experiments()["ExperimentSummaries"]] == ["dogs"]
    assert [t["TrialName"] for t in sm.list_trials()["TrialSummaries"]] == ["dogs-run0"]
    assert all(c.startswith("dogs-") for c in component_names(sm))
    assert log[-1] == "deleted experiment cats"


def test_rerun_after_interruption_skips_what_is_gone(sm: Any) -> None:
    make_experiment(sm, "cats", 1)
    cleaner = ExperimentCleaner(sm)
    plan = cleaner.plan("cats")
    sm.disassociate_trial_component(TrialComponentName="cats-run0-results", TrialName="cats-run0")
    sm.delete_trial_component(TrialComponentName="cats-run0-results")  # deleted by a first, interrupted run
    result = cleaner.delete(plan)
    assert result.deleted_experiment and "cats-run0-results" not in result.deleted_components
    assert component_names(sm) == set()


def test_unknown_experiment(sm: Any) -> None:
    with pytest.raises(ExperimentNotFound):
        ExperimentCleaner(sm).plan("nope")


def throttled(operation: str) -> ClientError:
    return ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, operation)


class Throttling:
    """A client that throttles every other call (as SageMaker's control plane does under a loop of deletes)."""

    def __init__(self, client: Any) -> None:
        self._client, self.calls, self.throttled = client, 0, 0

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)

        def call(**kwargs: Any) -> Any:
            self.calls += 1
            if self.calls % 2:
                self.throttled += 1
                raise throttled(name)
            return method(**kwargs)

        return call


def test_backoff_with_jitter_on_throttling(sm: Any) -> None:
    make_experiment(sm, "cats", 2)
    client = Throttling(sm)
    sleeps: list[float] = []
    cleaner = ExperimentCleaner(client, sleep=sleeps.append, rand=lambda: 0.5)
    result = cleaner.delete(cleaner.plan("cats"))
    assert result.deleted_experiment and component_names(sm) == set()
    assert client.throttled > 10 and len(sleeps) == client.throttled
    assert all(s == 0.25 for s in sleeps)  # first retry: rand * min(cap, base * 2**0)


def test_with_backoff_grows_caps_and_gives_up() -> None:
    sleeps: list[float] = []

    def always() -> None:
        raise throttled("DeleteTrial")

    with pytest.raises(ClientError):
        with_backoff(always, sleep=sleeps.append, rand=lambda: 1.0, attempts=7, base=1.0, cap=8.0)
    assert sleeps == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]

    def other() -> None:
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "DeleteTrial")

    sleeps.clear()
    with pytest.raises(ClientError, match="AccessDenied"):
        with_backoff(other, sleep=sleeps.append)
    assert sleeps == []
