"""Reuse of identical trials (core/reuse, RecordResults' ``started`` mode) and the comparison at the end of an
execution (``summary`` mode, core/sweep_summary), on the real SQLite store with inputs built by
``build_execution_input`` (the Map's iteration states: ``trial_run``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws.evaluation_docs import evaluation_doc, job_identity, score

from nyanops.core import console, hyperparameters, layout, limits
from nyanops.core.dataset import DatasetSummary
from nyanops.core.execution_input import RunRequest, build_execution_input, trial_run
from nyanops.core.experiments import TrialRecord, TrialStart
from nyanops.core.manifest import validate_manifest
from nyanops.core.record_results import RecordResultsDeps, record
from nyanops.core.reuse import find_original, same_inputs
from nyanops.core.settings import PipelineSettings
from nyanops.core.upload_events import Upload
from nyanops.local.database import connect
from nyanops.local.experiment_store import SQLiteExperimentStore

from .memory_ports import T0, MemoryJobs, MemoryObjects

CLASSES = ("bengal", "siamese")
SETTINGS = PipelineSettings.model_validate({"BUCKET_NAME": "b-bucket", "AWS_REGION": "us-east-1"})


def execution(key: str, force: bool = False, code: str = "c" * 64, content: str = "d" * 64,
              **manifest: Any) -> dict[str, Any]:
    body = {"experiment": "cats", "dataset": "datasets/ds1", "force": force, **manifest}
    counts = {s: dict.fromkeys(CLASSES, 2) for s in layout.SPLITS}
    dataset = DatasetSummary("ds1", CLASSES, counts, content, split_hashes={s: s[0] * 64 for s in layout.SPLITS})
    request = RunRequest("manifest", validate_manifest(body), dataset, code, Upload("b-bucket", key, "v1", "e"))
    return build_execution_input(request, SETTINGS)


class World:
    def __init__(self, tmp_path: Path) -> None:
        self.objects, self.jobs = MemoryObjects(bucket="b-bucket"), MemoryJobs()
        self.store = SQLiteExperimentStore(connect(tmp_path / "nyanops.db"))
        self.deps = RecordResultsDeps(self.objects, self.store, self.jobs, clock=lambda: T0)

    def call(self, mode: str, run: dict[str, Any]) -> dict[str, Any]:
        return record({"mode": mode, "run": run, "execution_arn": "arn:aws:states:local:0:execution:p:x"}, self.deps)

    def train(self, run: dict[str, Any], wrong: int) -> None:
        """The trial's jobs ran: evaluation.json with train.py's resolved hyperparameters, as evaluation.py writes."""
        job = run["evaluation"]["job_name"]
        output = run["evaluation"]["output_s3_uri"]
        doc = evaluation_doc(wrong, CLASSES, job=job_identity(run["execution_name"], job),
                             hyperparameters={**run["hyperparameters"], "workers": 2, "num-gpus": 0})
        self.objects.put(layout.parse_s3_uri(output.rstrip("/") + "/evaluation.json")[1], json.dumps(doc).encode())
        self.jobs.add(job, output)
        run.setdefault("results", {})["training"] = {"model_artifacts": f"{output}model.tar.gz"}
        self.call("succeeded", run)

    def run_all(self, doc: dict[str, Any], wrong: list[int]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Every iteration of the Map (register; train unless reused), then the comparison."""
        outcomes = []
        for index in range(len(doc["trials"])):
            run = trial_run(doc, index)
            answer = self.call("started", run)
            if answer["reused_from"]:
                outcomes.append({"trial": run["trial"], "status": "Reused", "reused_from": answer["reused_from"]})
            elif wrong[index] < 0:
                run["error"] = {"Error": "States.TaskFailed", "Cause": "AlgorithmError: out of memory"}
                self.call("failed", run)
                outcomes.append({"trial": run["trial"], "status": "Failed"})
            else:
                self.train(run, wrong[index])
                outcomes.append({"trial": run["trial"], "status": "Completed"})
        summary = self.call("summary", {
            "execution_name": doc["execution_name"], "experiment": doc["experiment"], "comment": doc["comment"],
            "primary_metric": doc["primary_metric"], "dataset_id": doc["dataset"]["id"], "outcomes": outcomes})
        return outcomes, summary

    def trials(self) -> dict[str, TrialRecord]:
        return {t.trial: t for t in self.store.list_trials("cats")}


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


SWEEP = {"sweep": {"epochs": [1, 2, 3]}}


def test_a_sweep_records_a_trial_each_and_one_comparison(world: World) -> None:
    doc = execution("manifests/sweep.json", **SWEEP)
    _, summary = world.run_all(doc, [2, 0, 1])
    trials = world.trials()
    names = [t["trial"] for t in doc["trials"]]
    assert [trials[n].status for n in names] == ["Completed"] * 3
    assert [n for n, t in trials.items() if t.is_best] == [names[1]]
    assert (summary["completed"], summary["reused"], summary["failed"], summary["best_trial"]) == (3, 0, 0, names[1])
    lines = summary["message"].splitlines()
    assert lines[0] == f"Run {doc['execution_name']} of experiment cats: 3 trials: 3 trained, 0 reused, 0 failed."
    f1 = {n: score(w, CLASSES) for n, w in zip(names, [2, 0, 1], strict=True)}
    assert f"  {names[0]}  epochs=1  macro_f1 {f1[names[0]]:.4f}  trained" in lines
    assert f"  {names[1]}  epochs=2  macro_f1 {f1[names[1]]:.4f}  trained (best)" in lines
    assert f"Best of this run: {names[1]} (macro_f1 {f1[names[1]]:.4f})." in lines
    assert f"Best model of experiment cats: {names[1]} (macro_f1 {f1[names[1]]:.4f}, from this run)." in lines
    assert summary["subject"] == f"nyanops: cats sweep of 3 trials, best macro_f1 {f1[names[1]]:.3f} (new best)"


def test_the_same_sweep_again_reuses_every_trial_and_trains_nothing(world: World) -> None:
    first = execution("manifests/sweep.json", **SWEEP)
    world.run_all(first, [2, 0, 1])
    again = execution("manifests/sweep-again.json", **SWEEP)
    outcomes, summary = world.run_all(again, [9, 9, 9])  # would score differently if anything were trained
    assert [o["status"] for o in outcomes] == ["Reused"] * 3
    trials = world.trials()
    for old, new in zip(first["trials"], again["trials"], strict=True):
        original, reused = trials[old["trial"]], trials[new["trial"]]
        assert (reused.status, reused.reused_from, reused.is_best) == ("Completed", original.trial, False)
        assert reused.metrics == original.metrics
        assert (reused.model_location, reused.evaluation_location) == (
            original.model_location, original.evaluation_location)
        assert reused.decision.startswith(f"reuses the results of {original.trial}")
    assert [n for n, t in trials.items() if t.is_best] == [first["trials"][1]["trial"]]  # still exactly one
    assert (summary["completed"], summary["reused"], summary["best_trial"]) == (3, 3, first["trials"][1]["trial"])
    assert f"reused from {first['trials'][0]['trial']} (not trained)" in summary["message"]
    assert "from an earlier run" in summary["message"]
    # A third time: the reused trials lead back to the originals.
    third = execution("manifests/sweep-3.json", **SWEEP)
    world.run_all(third, [9, 9, 9])
    assert [world.trials()[t["trial"]].reused_from for t in third["trials"]] == [
        t["trial"] for t in first["trials"]]


def test_force_trains_anyway(world: World) -> None:
    world.run_all(execution("manifests/one.json", hyperparameters={"epochs": 2}), [1])
    outcomes, summary = world.run_all(execution("manifests/two.json", force=True, hyperparameters={"epochs": 2}), [0])
    assert outcomes[0]["status"] == "Completed" and summary["reused"] == 0


@pytest.mark.parametrize(
    "change",
    [
        {"hyperparameters": {"epochs": 2, "seed": 1}},
        {"hyperparameters": {"epochs": 2, "lr": 0.04}},
        {"hyperparameters": {"epochs": 2}, "code": "e" * 64},
        {"hyperparameters": {"epochs": 2}, "content": "f" * 64},
    ],
    ids=["seed", "lr", "code", "dataset-content"],
)
def test_a_different_input_trains(world: World, change: dict[str, Any]) -> None:
    world.run_all(execution("manifests/one.json", hyperparameters={"epochs": 2}), [1])
    outcomes, _ = world.run_all(execution("manifests/two.json", **change), [0])
    assert outcomes[0]["status"] == "Completed"


def test_run_mechanics_and_spelled_out_defaults_do_not_make_a_trial_different(world: World) -> None:
    world.run_all(execution("manifests/one.json", hyperparameters={"epochs": 2}), [1])
    same = {"epochs": 2, "workers": 4, "test-batch-size": 32, "seed": 0, "lr": 0.05, "freeze-epochs": 2}
    outcomes, _ = world.run_all(execution("manifests/two.json", hyperparameters=same), [0])
    assert outcomes[0]["status"] == "Reused"


def test_a_failed_or_unfinished_trial_is_never_reused(world: World) -> None:
    world.run_all(execution("manifests/one.json", hyperparameters={"epochs": 2}), [-1])
    doc = execution("manifests/two.json", hyperparameters={"epochs": 2})
    world.call("started", trial_run(doc, 0))  # in progress
    outcomes, _ = world.run_all(execution("manifests/three.json", hyperparameters={"epochs": 2}), [1])
    assert outcomes[0]["status"] == "Completed"


def test_registration_retried_answers_the_same(world: World) -> None:
    world.run_all(execution("manifests/one.json"), [1])
    run = trial_run(execution("manifests/two.json"), 0)
    first, again = world.call("started", run), world.call("started", run)
    assert first == again and first["reused_from"] and first["status"] == "Completed"


def test_one_failed_trial_does_not_fail_the_run_and_is_listed_with_its_cause(world: World) -> None:
    doc = execution("manifests/sweep.json", **SWEEP)
    _, summary = world.run_all(doc, [1, -1, 0])
    names = [t["trial"] for t in doc["trials"]]
    assert (summary["completed"], summary["failed"], summary["status"]) == (2, 1, "Completed")
    assert f"  {names[1]}  epochs=2  failed: States.TaskFailed: AlgorithmError: out of memory" in summary["message"]


def test_every_trial_failed(world: World) -> None:
    doc = execution("manifests/sweep.json", **SWEEP)
    _, summary = world.run_all(doc, [-1, -1, -1])
    assert (summary["completed"], summary["failed"], summary["status"], summary["best_trial"]) == (0, 3, "Failed", "")
    assert summary["subject"] == "nyanops: cats sweep of 3 trials failed"
    assert "Experiment cats has no best model yet." in summary["message"]


def test_a_failure_that_was_not_recorded_is_recorded_by_the_comparison(world: World) -> None:
    doc = execution("manifests/one.json")
    run = trial_run(doc, 0)
    world.call("started", run)
    outcome = {"trial": run["trial"], "status": "NotRecorded", "error": "States.TaskFailed",
               "record_error": "ExperimentsThrottled"}
    summary = world.call("summary", {"execution_name": doc["execution_name"], "experiment": "cats", "comment": "",
                                     "primary_metric": "macro_f1", "dataset_id": "ds1", "outcomes": [outcome]})
    trial = world.trials()[run["trial"]]
    assert trial.status == "Failed"
    assert trial.error == "States.TaskFailed (recording the failure failed: ExperimentsThrottled)"
    assert summary["subject"] == "nyanops: cats run failed"


def test_a_run_of_one_trial_keeps_the_single_run_notification(world: World) -> None:
    doc = execution("manifests/one.json")
    _, summary = world.run_all(doc, [0])
    name = doc["execution_name"]
    assert doc["trials"][0]["trial"] == name
    assert summary["subject"] == f"nyanops: cats macro_f1 {score(0, CLASSES):.3f} (new best)"
    lines = summary["message"].splitlines()
    assert lines[2] == f"  {name}  macro_f1 {score(0, CLASSES):.4f}  trained (best)"
    assert any(line.startswith("Why: ") for line in lines)
    assert f"evaluation: s3://b-bucket/runs/{name}/evaluation/evaluation.json" in lines
    assert len(summary["message"].encode()) <= limits.SNS_MESSAGE_MAX_BYTES


def test_same_inputs_compares_the_recipe_in_its_types() -> None:
    """SageMaker stores numbers as floats and booleans as text: the identity is compared in each row's type."""
    recipe = hyperparameters.resolve({"epochs": 2}, 2)
    start = TrialStart("cats", "t2", "t2", "ds1", "d" * 64, "c" * 64, "", recipe, "k", T0)
    stored = {k: (float(v) if isinstance(v, int) and not isinstance(v, bool) else v) for k, v in recipe.items()}
    stored["augment"] = "true"
    record = TrialRecord("cats", "t1", "Completed", T0, T0, "ds1", "d" * 64, "c" * 64, hyperparameters=stored)
    assert same_inputs(record, start)
    assert find_original([record], start) is record
    partial = TrialRecord("cats", "t0", "Completed", T0, T0, "ds1", "d" * 64, "c" * 64, hyperparameters={"epochs": 2})
    assert not same_inputs(partial, start)  # a record without its whole recipe is never matched


def summary_of(world: World, arn: str = "arn:aws:states:local:0:execution:p:x", **run: Any) -> dict[str, Any]:
    body = {"execution_name": "run-1", "experiment": "cats", "primary_metric": "macro_f1", "outcomes": [], **run}
    return record({"mode": "summary", "run": body, "execution_arn": arn}, world.deps)


def test_the_comparison_names_the_run_its_dataset_and_comment(world: World) -> None:
    summary = summary_of(world, dataset_id="ds1", comment="try a bigger lr")
    assert (summary["experiment"], summary["execution"]) == ("cats", "run-1")
    assert summary["message"].splitlines()[1] == "dataset ds1  comment: try a bigger lr"
    bare = summary_of(world)  # a run input without them: empty, not "None"
    assert bare["message"].splitlines()[1] == "dataset   comment: "


def test_outcomes_without_a_trial_are_left_out(world: World) -> None:
    doc = execution("manifests/one.json")
    outcomes, _ = world.run_all(doc, [0])
    summary = summary_of(world, outcomes=[*outcomes, {"status": "Failed", "error": "States.TaskFailed"}])
    assert (summary["completed"], summary["failed"]) == (1, 0)


def test_the_registry_lines_the_trials_passed_on_are_in_the_message(world: World) -> None:
    doc = execution("manifests/one.json")
    outcomes, _ = world.run_all(doc, [0])
    handed = [{**outcomes[0], "registry": "model registry: cats-v3 approved"}, {"trial": "t-2", "status": "Failed",
                                                                               "registry": ""}]
    lines = summary_of(world, outcomes=handed)["message"].splitlines()
    assert lines.count("model registry: cats-v3 approved") == 1
    assert "" not in lines and "None" not in lines


def test_the_comparison_links_the_execution_in_the_console(world: World) -> None:
    arn = "arn:aws:states:eu-west-1:123456789012:execution:pipeline:run-1"
    lines = summary_of(world, arn=arn)["message"].splitlines()
    assert [line for line in lines if line.startswith("execution: ")] == [
        f"execution: {console.execution_url('eu-west-1', arn)}"]


def test_the_comparison_reads_only_its_own_experiment(world: World) -> None:
    birds = execution("manifests/birds.json", experiment="birds")  # listed before cats across experiments
    world.run_all(birds, [0])
    doc = execution("manifests/cats.json")
    _, summary = world.run_all(doc, [1])
    cats = doc["trials"][0]["trial"]
    assert summary["best_trial"] == cats
    assert f"Best model of experiment cats: {cats} (macro_f1 {score(1, CLASSES):.4f}, from this run)." in (
        summary["message"])
    # a not-recorded failure named after a trial of another experiment is not this experiment's to record
    spy = FailSpy(world.store)
    world.deps = RecordResultsDeps(world.objects, spy, world.jobs, clock=lambda: T0)
    summary_of(world, outcomes=[{"trial": birds["trials"][0]["trial"], "status": "NotRecorded"}])
    assert spy.failed == []


class FailSpy:
    """The experiment store, noting which trials were marked failed."""

    def __init__(self, store: SQLiteExperimentStore) -> None:
        self.store = store
        self.failed: list[tuple[Any, ...]] = []

    def fail_trial(self, *args: Any) -> None:
        self.failed.append(args)
        self.store.fail_trial(*args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def test_a_not_recorded_failure_without_its_texts_is_recorded_with_plain_defaults(world: World) -> None:
    doc = execution("manifests/one.json")
    run = trial_run(doc, 0)
    world.call("started", run)
    summary_of(world, outcomes=[{"trial": run["trial"], "status": "NotRecorded"}])
    trial = world.trials()[run["trial"]]
    assert (trial.status, trial.error) == ("Failed", "Error (recording the failure failed: )")
    assert trial.finished_at == T0


def test_the_comparison_subject_and_message_are_clipped_to_what_sns_takes(world: World) -> None:
    summary = summary_of(world, experiment="c" * 120, comment="x" * limits.SNS_MESSAGE_MAX_BYTES)
    assert len(summary["subject"]) == limits.SNS_SUBJECT_MAX - 1
    assert summary["subject"].startswith("nyanops: ccc") and summary["subject"].endswith("c...")
    assert len(summary["message"].encode()) == limits.SNS_MESSAGE_MAX_BYTES // 8
    assert summary["message"].endswith("x [...]")
