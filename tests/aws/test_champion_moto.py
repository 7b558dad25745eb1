"""Champion / challenger through the real ASL on moto's engine: a trial on a new dataset is compared with the
best trial on the SAME test set (the champion's model re-scored on the new test split, a second processing job
in the same execution), and the flag moves only if it wins there by more than the tolerance.

The two done-criterion cases: the new dataset's trial would win on raw F1 but loses on the shared test set
(the flag stays), and the opposite (the flag moves); both explained in the record and the notification."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from nyanops.aws.sagemaker_experiments import SageMakerExperimentStore

from .conftest import EXAMPLE_MANIFEST, RECORD_RESULTS_ARN, World
from .evaluation_docs import score
from .moto_sfn_patches import FakeSageMaker, patched_engine

SUPPORT = 10  # test images per class: one image moves macro F1 by about 0.05
OLD, NEW = "cats-old", "cats-new"


@pytest.fixture
def execute_state_machine() -> bool:
    return True


@pytest.fixture
def fake() -> FakeSageMaker:
    return FakeSageMaker(support=SUPPORT)


@pytest.fixture
def engine(world: World, fake: FakeSageMaker, lambda_context: Any) -> Iterator[World]:
    world.put_dataset(OLD, per_split=SUPPORT)
    world.put_dataset(NEW, per_split=SUPPORT)
    world.put_code()
    record_results = world.handlers[1]
    with patched_engine(fake, {RECORD_RESULTS_ARN: lambda event: record_results.lambda_handler(event, lambda_context)}):
        yield world


def run(world: World, key: str, dataset: str, ctx: Any) -> dict[str, Any]:
    # force: the same recipe on the same dataset trains again (these tests are about the best flag, not reuse)
    body = json.dumps({**EXAMPLE_MANIFEST, "dataset": f"datasets/{dataset}", "comment": key, "force": True}).encode()
    [result] = world.handlers[0].lambda_handler(world.upload_event(key, body), ctx)["results"]
    assert result["outcome"] == "started", result
    arn = next(e["executionArn"] for e in world.executions() if e["name"] == result["execution_name"])
    done = world.wait(arn, timeout=60)
    assert done["status"] == "SUCCEEDED", world.sfn.get_execution_history(executionArn=arn)["events"][-3:]
    return done


def states(world: World, done: dict[str, Any]) -> list[str]:
    events = world.sfn.get_execution_history(executionArn=done["executionArn"], maxResults=1000)["events"]
    return [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]


def champion_case(engine: World, fake: FakeSageMaker, ctx: Any, champion_on_new: int) -> tuple[Any, Any]:
    """The old dataset's trial misses 6 of 20 (the champion); the new one misses 2 of ITS 20: better on raw F1.
    Re-scored on the new test set, the champion misses ``champion_on_new``."""
    wrong = {"old-eval": 6, "new-eval": 2, "new-champ1": champion_on_new}

    def by_job(request: dict[str, Any]) -> int:
        name = request["ProcessingJobName"]  # m-<old|new>-<hash>-<eval|champ1>
        return wrong[f"{name.split('-')[1]}-{name.rsplit('-', 1)[1]}"]

    fake.wrong = by_job
    old = run(engine, "manifests/old.json", OLD, ctx)
    new = run(engine, "manifests/new.json", NEW, ctx)
    return old, new


def test_a_new_datasets_trial_that_loses_on_the_shared_test_set_keeps_the_flag(engine: World, fake: FakeSageMaker,
                                                                                lambda_context: Any) -> None:
    old, new = champion_case(engine, fake, lambda_context, champion_on_new=1)
    raw_new, raw_old, champion_on_new = score(2, support=SUPPORT), score(6, support=SUPPORT), score(1, support=SUPPORT)
    assert raw_new > raw_old + 0.005 and champion_on_new > raw_new  # wins on raw F1, loses on the same test set
    assert states(engine, new) == [
        "Trials", "RegisterTrial", "ReuseOrTrain", "Train", "TrainingCompleted", "Evaluate", "RecordResults",
        "ChampionToRescore", "EvaluateChampion", "RecordChampion", "ChampionToRescore", "TrialCompleted", "Summarize",
        "Notify", "SweepOutcome", "Done"]
    store = SageMakerExperimentStore(engine.sm)
    records = {r.trial: r for r in store.list_trials("cats")}
    assert records[old["name"]].is_best and not records[new["name"]].is_best
    decided = records[new["name"]]
    assert decided.compared_with == old["name"] and decided.champion_value == pytest.approx(champion_on_new)
    assert f"this trial {raw_new:.4f}, best {old['name']} {champion_on_new:.4f}" in decided.decision
    assert f"on this trial's dataset {NEW}" in decided.decision and "re-scored" in decided.decision
    assert decided.decision.endswith(f"the flag stays with {old['name']}")
    _, (subject, message) = engine.notifications()
    assert subject == f"nyanops: cats macro_f1 {raw_new:.3f}"
    assert f"Best model of experiment cats: {old['name']}" in message and f"Why: {decided.decision}." in message


def test_a_new_datasets_trial_that_wins_on_the_shared_test_set_takes_the_flag(engine: World, fake: FakeSageMaker,
                                                                              lambda_context: Any) -> None:
    old, new = champion_case(engine, fake, lambda_context, champion_on_new=5)
    raw_new, champion_on_new = score(2, support=SUPPORT), score(5, support=SUPPORT)
    records = {r.trial: r for r in SageMakerExperimentStore(engine.sm).list_trials("cats")}
    assert records[new["name"]].is_best and not records[old["name"]].is_best
    assert records[new["name"]].decision.endswith("the flag moves to this trial")
    assert f"this trial {raw_new:.4f}, best {old['name']} {champion_on_new:.4f}" in records[new["name"]].decision
    _, (subject, message) = engine.notifications()
    assert subject == f"nyanops: cats macro_f1 {raw_new:.3f} (new best)" and "trained (best)" in message
    # The champion's job: its model, the new test split, this execution's champion prefix and identity.
    processing = [p for op, p in fake.requests if op == "CreateProcessingJob"]
    champion = next(p for p in processing if p["ProcessingJobName"].endswith("-champ1"))
    inputs = {i["InputName"]: i["S3Input"]["S3Uri"] for i in champion["ProcessingInputs"]}
    assert inputs["model"] == records[old["name"]].model_location
    assert inputs["test"].endswith(f"/datasets/{NEW}/test/")
    assert champion["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"].endswith(
        f"/runs/{new['name']}/champion-1/")
    assert champion["Environment"] == {"NYANOPS_EXECUTION": new["name"],
                                       "NYANOPS_PROCESSING_JOB": f"{new['name']}-champ1"}
    assert champion["AppSpecification"]["ImageUri"].endswith(":2.14-cpu-amzn2023-sagemaker")


def test_the_same_test_set_needs_no_rescoring(engine: World, fake: FakeSageMaker, lambda_context: Any) -> None:
    wrong = iter([3, 2])
    fake.wrong = lambda request: next(wrong)
    first = run(engine, "manifests/a.json", OLD, lambda_context)
    second = run(engine, "manifests/b.json", OLD, lambda_context)
    assert "EvaluateChampion" not in states(engine, second)
    records = {r.trial: r for r in SageMakerExperimentStore(engine.sm).list_trials("cats")}
    assert records[second["name"]].is_best and not records[first["name"]].is_best
    assert "on the same test set" in records[second["name"]].decision


def test_a_champion_rescoring_that_fails_keeps_the_flag_and_says_why(engine: World, fake: FakeSageMaker,
                                                                     lambda_context: Any) -> None:
    fake.fail_processing = lambda request: (
        "model.pth does not match efficientnet_lite0" if request["ProcessingJobName"].endswith("-champ1") else None)
    first = run(engine, "manifests/a.json", OLD, lambda_context)
    second = run(engine, "manifests/b.json", NEW, lambda_context)
    assert states(engine, second)[8:] == ["EvaluateChampion", "ChampionNotRescored", "RecordChampion",
                                          "ChampionToRescore", "TrialCompleted", "Summarize", "Notify",
                                          "SweepOutcome", "Done"]
    records = {r.trial: r for r in SageMakerExperimentStore(engine.sm).list_trials("cats")}
    assert records[first["name"]].is_best and records[second["name"]].status == "Completed"
    assert "could not be re-scored" in records[second["name"]].decision
    assert "model.pth does not match efficientnet_lite0" in records[second["name"]].decision
