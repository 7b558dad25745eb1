"""A 1,000-class run through the real ASL on moto's engine, recorded in SageMaker Experiments (with AWS's
limits enforced by the moto patches) and listed: nothing per class in the trial component, the figures in
evaluation.json."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from nyanops import compare
from nyanops.aws.sagemaker_experiments import SageMakerExperimentStore
from nyanops.core import layout, limits

from .conftest import EXAMPLE_MANIFEST, RECORD_RESULTS_ARN, World
from .moto_sfn_patches import FakeSageMaker, patched_engine

N = limits.MAX_CLASSES
CLASSES = tuple(f"cat-{i:04d}" for i in range(N))


@pytest.fixture
def execute_state_machine() -> bool:
    return True


@pytest.fixture
def engine(world: World, lambda_context: Any) -> Iterator[tuple[World, FakeSageMaker]]:
    world.put_dataset("cats-1000", classes=CLASSES, per_split=1)
    world.put_code()
    fake = FakeSageMaker(class_names=CLASSES, support=1)
    record_results = world.handlers[1]
    with patched_engine(fake, {RECORD_RESULTS_ARN: lambda event: record_results.lambda_handler(event, lambda_context)}):
        yield world, fake


def test_a_thousand_class_run_is_recorded_and_listed(engine: tuple[World, FakeSageMaker],
                                                     lambda_context: Any) -> None:
    world, fake = engine
    body = json.dumps({**EXAMPLE_MANIFEST, "dataset": "datasets/cats-1000", "experiment": "many-cats"}).encode()
    [result] = world.handlers[0].lambda_handler(world.upload_event("manifests/thousand.json", body),
                                                lambda_context)["results"]
    assert result["outcome"] == "started", result
    [execution] = world.executions()
    done = world.wait(execution["executionArn"], timeout=120)
    assert done["status"] == "SUCCEEDED", world.sfn.get_execution_history(executionArn=done["executionArn"])[
        "events"][-3:]
    assert limits.utf8_len(done["input"]) <= limits.EXECUTION_INPUT_MAX_BYTES
    assert fake.request_errors == []

    [trial] = SageMakerExperimentStore(world.sm).list_trials("many-cats")
    assert trial.status == "Completed" and trial.is_best
    assert trial.metrics["accuracy"] == pytest.approx((N - 1) / N)
    params = world.trial_component(trial.trial)["Parameters"]
    assert len(params) < limits.TRIAL_COMPONENT_PARAMETERS_MAX  # moto (patched) would have refused more
    assert not [k for k in params if k.startswith("f1:") or k == "confusion_matrix"]
    doc = json.loads(world.get(layout.parse_s3_uri(trial.evaluation_location)[1]))
    assert doc["class_names"] == list(CLASSES)
    listed = compare.format_experiments(SageMakerExperimentStore(world.sm).list_trials())
    assert "experiment many-cats (1 trials, * = best)" in listed and trial.trial in listed
