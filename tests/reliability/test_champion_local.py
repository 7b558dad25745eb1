"""Champion / challenger on the local side, through the real state machine and the real local job runner: a
tiny ml_code bundle whose evaluation.py misclassifies as many test images as the test says for each job
(<run>-eval, or <run>-champ1 for the best trial's model re-scored on this run's test split).

The done-criterion cases, as on moto (tests/aws/test_champion_moto.py): a new dataset's trial that would win on
raw F1 but loses on the shared test set keeps the flag where it is; the opposite moves it; both explained in the
record and in the notification."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
from aws.evaluation_docs import score

from nyanops.code_bundle import build_bundle, push_bundle
from nyanops.core import evaluation_report, layout
from nyanops.core.experiments import TrialRecord
from nyanops.local.runner import LocalPipeline

from .corpus import BASE_OBJECTS, CLASSES, image_tree, manifest, marker_bytes, prefixed

SUPPORT = 10
TRAIN_PY = '''\
import os, pathlib
pathlib.Path(os.environ["SM_MODEL_DIR"], "model.pth").write_bytes(b"stub weights")
'''
EVALUATION_PY = '''\
import argparse, json, os, pathlib
from evaluation_report import build_evaluation_report, metrics_from_confusion
parser = argparse.ArgumentParser()
for name in ("--model-dir", "--test-dir", "--output-dir"):
    parser.add_argument(name)
args, _ = parser.parse_known_args()  # e.g. --expected-test-hash, which the real script checks
job = os.environ["NYANOPS_PROCESSING_JOB"]            # m-<label>-<hash>-<eval|champ1>
wrong = json.loads(pathlib.Path(__file__).with_name("wrong.json").read_text())[
    job.split("-")[1] + "-" + job.rsplit("-", 1)[1]]
classes = sorted(os.listdir(args.test_dir))
n = len(classes)
matrix = [[len(os.listdir(os.path.join(args.test_dir, c))) if i == j else 0 for j in range(n)]
          for i, c in enumerate(classes)]
missed = []
for k in range(wrong):
    row = k % n
    matrix[row][row] -= 1
    matrix[row][(row + 1) % n] += 1
    missed.append({"path": f"{classes[row]}/{k}.jpg", "true": classes[row], "predicted": classes[(row + 1) % n],
                   "confidence": 0.6})
metrics, per_class = metrics_from_confusion(matrix)
report = build_evaluation_report(
    class_names=classes, metrics=metrics, per_class={c: per_class[i] for i, c in enumerate(classes)},
    confusion_matrix=matrix, misclassified=missed,
    model_meta={"arch": "efficientnet_lite0", "best_epoch": 1, "history": [], "hyperparameters": {},
                "dataset_hash": None},
)
pathlib.Path(args.output_dir, "evaluation.json").write_text(json.dumps(report))
'''


def setup(pipeline: LocalPipeline, tmp_path: Path, wrong: dict[str, int]) -> str:
    for key, body in BASE_OBJECTS:
        pipeline.store.put(key, body)
    for dataset in ("cats-old", "cats-new"):
        files = image_tree(dataset, per_class=SUPPORT)
        for key, body in prefixed(dataset, files):
            pipeline.store.put(key, body)
        pipeline.store.put(layout.dataset_marker_key(dataset), marker_bytes(dataset, files))
    code = tmp_path / "ml_code"
    code.mkdir()
    (code / "train.py").write_text(TRAIN_PY)
    (code / "evaluation.py").write_text(EVALUATION_PY)
    (code / "wrong.json").write_text(json.dumps(wrong))
    shutil.copyfile(evaluation_report.__file__, code / "evaluation_report.py")
    bundle = build_bundle(code)
    push_bundle(pipeline.store, bundle)
    return bundle.hash


def run(pipeline: LocalPipeline, label: str, dataset: str, code: str) -> tuple[str, list[str]]:
    key = f"manifests/{label}.json"
    pipeline.store.put(key, manifest(dataset=f"datasets/{dataset}", code=f"code/{code}", comment=label))
    [started] = pipeline.fire(key)
    row = pipeline.execute(started.execution_name)
    assert row.status == "SUCCEEDED", (row.error, row.cause)
    events = pipeline.executions.events(row.name)
    return row.name, [e["state"] for e in events if e["type"].endswith("StateEntered")]


def trials(pipeline: LocalPipeline) -> dict[str, TrialRecord]:
    return {t.trial: t for t in pipeline.experiments.list_trials("cats")}


@pytest.mark.parametrize(("champion_on_new", "moves"), [(1, False), (5, True)], ids=["keeps", "moves"])
def test_a_new_datasets_trial_is_compared_on_its_own_test_set(champion_on_new: int, moves: bool,
                                                              pipeline: LocalPipeline, tmp_path: Path,
                                                              console: io.StringIO) -> None:
    code = setup(pipeline, tmp_path, {"old-eval": 6, "new-eval": 2, "new-champ1": champion_on_new})
    old, _ = run(pipeline, "old", "cats-old", code)
    new, states = run(pipeline, "new", "cats-new", code)
    assert states == ["Trials", "RegisterTrial", "ReuseOrTrain", "Train", "TrainingCompleted", "Evaluate",
                      "RecordResults", "ChampionToRescore", "EvaluateChampion", "RecordChampion", "ChampionToRescore",
                      "TrialCompleted", "Summarize", "Notify", "SweepOutcome", "Done"]
    raw_new, raw_old = score(2, CLASSES, SUPPORT), score(6, CLASSES, SUPPORT)
    champion_value = score(champion_on_new, CLASSES, SUPPORT)
    assert raw_new > raw_old  # on raw F1 the new trial would win either way
    records = trials(pipeline)
    assert (records[new].is_best, records[old].is_best) == (moves, not moves)
    assert records[new].compared_with == old and records[new].champion_value == pytest.approx(champion_value)
    assert f"this trial {raw_new:.4f}, best {old} {champion_value:.4f}" in records[new].decision
    assert "re-scored" in records[new].decision and "dataset cats-new" in records[new].decision
    verdict = "the flag moves to this trial" if moves else f"the flag stays with {old}"
    assert records[new].decision.endswith(verdict)
    # The champion's model, re-scored on the new test split by a job of this execution.
    describe = json.loads((pipeline.root / "jobs" / f"{new}-champ1" / "describe.json").read_text())
    inputs = {i["InputName"]: i["S3Input"]["S3Uri"] for i in describe["ProcessingInputs"]}
    assert inputs["model"] == records[old].model_location and inputs["test"].endswith("/datasets/cats-new/test/")
    printed = console.getvalue()
    best = new if moves else old
    assert f"Best model of experiment cats: {best} " in printed
    assert "Why: macro_f1 (higher is better) on this trial's" in printed


def test_the_same_test_set_is_compared_directly(pipeline: LocalPipeline, tmp_path: Path) -> None:
    code = setup(pipeline, tmp_path, {"first-eval": 3, "second-eval": 2})
    first, _ = run(pipeline, "first", "cats-old", code)
    second, states = run(pipeline, "second", "cats-old", code)
    assert "EvaluateChampion" not in states
    records = trials(pipeline)
    assert records[second].is_best and not records[first].is_best
    assert "on the same test set, dataset cats-old" in records[second].decision
