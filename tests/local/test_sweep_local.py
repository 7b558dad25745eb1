"""A sweep manifest on the local pipeline (the real handlers, the real ASL and its Map, stub job scripts): three
values of one hyperparameter are three trials of one execution, exactly one best, one comparison notified; the
same sweep uploaded again is three reused trials and no job at all. The same with the real ML scripts is
measured in docs/benchmarks.md."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from reliability.corpus import BASE_OBJECTS, GOOD_DATASET

from nyanops.code_bundle import build_bundle, push_bundle
from nyanops.core import evaluation_report
from nyanops.local.progress import Progress
from nyanops.local.runner import LocalPipeline

TRAIN_PY = '''\
import os, pathlib
pathlib.Path(os.environ["SM_MODEL_DIR"], "model.pth").write_bytes(b"stub weights")
'''
# Misses as many test images as wrong.json says for its trial (the job's name ends -t<N>-eval).
EVALUATION_PY = '''\
import argparse, json, os, pathlib
from evaluation_report import build_evaluation_report, metrics_from_confusion
parser = argparse.ArgumentParser()
for name in ("--model-dir", "--test-dir", "--output-dir"):
    parser.add_argument(name)
args, _ = parser.parse_known_args()  # e.g. --expected-test-hash, which the real script checks
job = os.environ["NYANOPS_PROCESSING_JOB"]
wrong = json.loads(pathlib.Path(__file__).with_name("wrong.json").read_text())[job.rsplit("-", 2)[-2]]
classes = sorted(os.listdir(args.test_dir))
matrix = [[len(os.listdir(os.path.join(args.test_dir, c))) if i == j else 0 for j in range(len(classes))]
          for i, c in enumerate(classes)]
missed = []
for k in range(wrong):
    matrix[0][0] -= 1
    matrix[0][1] += 1
    missed.append({"path": f"{classes[0]}/{k}.jpg", "true": classes[0], "predicted": classes[1], "confidence": 0.6})
metrics, per_class = metrics_from_confusion(matrix)
report = build_evaluation_report(
    class_names=classes, metrics=metrics, per_class={c: per_class[i] for i, c in enumerate(classes)},
    confusion_matrix=matrix, misclassified=missed,
    model_meta={"arch": "stub", "best_epoch": 1, "history": [], "hyperparameters": {}, "dataset_hash": None},
    job={"execution": os.environ["NYANOPS_EXECUTION"], "processing_job": job},
)
pathlib.Path(args.output_dir, "evaluation.json").write_text(json.dumps(report))
'''
WRONG = {"t1": 1, "t2": 0, "t3": 2}  # the second value scores best
SWEEP = {"experiment": "cats", "dataset": f"datasets/{GOOD_DATASET}", "comment": "three epoch counts",
         "sweep": {"epochs": [1, 2, 3]}}


@pytest.fixture
def console() -> io.StringIO:
    return io.StringIO()


@pytest.fixture
def pipeline(tmp_path: Path, console: io.StringIO) -> Iterator[LocalPipeline]:
    p = LocalPipeline(tmp_path / "root", Progress(console, interactive=False), max_parallel_jobs=1)
    for key, body in BASE_OBJECTS:
        p.store.put(key, body)
    code = tmp_path / "ml_code"
    code.mkdir()
    (code / "train.py").write_text(TRAIN_PY)
    (code / "evaluation.py").write_text(EVALUATION_PY)
    (code / "wrong.json").write_text(json.dumps(WRONG))
    shutil.copyfile(evaluation_report.__file__, code / "evaluation_report.py")
    bundle = build_bundle(code)
    push_bundle(p.store, bundle)  # the newest bundle: the one a manifest without "code" runs
    try:
        yield p
    finally:
        p.close()


def upload(pipeline: LocalPipeline, key: str) -> str:
    pipeline.store.put(key, json.dumps(SWEEP).encode())
    [started] = pipeline.fire(key)
    assert started.outcome.value == "started", started
    row = pipeline.execute(started.execution_name)
    assert row.status == "SUCCEEDED", (row.error, row.cause)
    return row.name


def jobs(pipeline: LocalPipeline) -> list[str]:
    return sorted(p.name for p in (pipeline.root / "jobs").iterdir() if p.is_dir())


def test_a_sweep_is_one_execution_of_three_trials_with_one_best_and_again_is_three_reused(
    pipeline: LocalPipeline, console: io.StringIO
) -> None:
    first = upload(pipeline, "manifests/sweep.json")
    trials = [f"{first}-t{i}" for i in (1, 2, 3)]
    records = {t.trial: t for t in pipeline.experiments.list_trials("cats")}
    assert sorted(records) == trials
    assert [records[t].hyperparameters["epochs"] for t in trials] == [1, 2, 3]
    assert [t for t, r in records.items() if r.is_best] == [trials[1]]
    assert jobs(pipeline) == sorted(f"{t}-{kind}" for t in trials for kind in ("train", "eval"))
    printed = console.getvalue()
    assert printed.count("[notification]") == 1  # one comparison for the execution
    assert "sweep of 3 trials, at most 1 at once" in printed
    f1 = {t: records[t].metrics["macro_f1"] for t in trials}
    assert f"  {trials[1]}  epochs=2  macro_f1 {f1[trials[1]]:.4f}  trained (best)" in printed
    assert f"Best of this run: {trials[1]} (macro_f1 {f1[trials[1]]:.4f})." in printed

    again = upload(pipeline, "manifests/sweep-again.json")
    reused = [f"{again}-t{i}" for i in (1, 2, 3)]
    records = {t.trial: t for t in pipeline.experiments.list_trials("cats")}
    assert [records[t].reused_from for t in reused] == trials
    assert [records[t].metrics for t in reused] == [records[t].metrics for t in trials]
    assert [t for t, r in records.items() if r.is_best] == [trials[1]]  # still exactly one
    assert jobs(pipeline) == sorted(f"{t}-{kind}" for t in trials for kind in ("train", "eval"))  # no new job
    states = [e["state"] for e in pipeline.executions.events(again) if e["type"].endswith("StateEntered")]
    assert states.count("TrialReused") == 3 and "Train" not in states
    printed = console.getvalue()
    assert printed.count("[notification]") == 2
    assert "3 trials: 0 trained, 3 reused, 0 failed." in printed
    assert f"reused from {trials[0]} (not trained)" in printed
