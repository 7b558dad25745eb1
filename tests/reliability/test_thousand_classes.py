"""A 1,000-class run, recorded and listed on the local side: a synthetic dataset of 1,000 classes, the real
state machine, the real local job runner with a tiny ml_code bundle (train.py writes a stub model,
evaluation.py writes a schema-valid 1,000-class evaluation.json signed by its job), the real RecordResults
and the SQLite store with SageMaker's limits. Nothing per class goes into the record."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

from nyanops import compare
from nyanops.code_bundle import build_bundle, push_bundle
from nyanops.core import evaluation_report, layout, limits
from nyanops.core.experiments import record_parameters
from nyanops.local.runner import LocalPipeline

from .corpus import BASE_OBJECTS, image_tree, manifest, marker_bytes, prefixed

N = limits.MAX_CLASSES
TRAIN_PY = '''\
import os, pathlib
pathlib.Path(os.environ["SM_MODEL_DIR"], "model.pth").write_bytes(b"stub weights")
print("train Loss: 0.5000 Acc: 0.7000", flush=True)
'''
EVALUATION_PY = '''\
import argparse, json, os, pathlib
from evaluation_report import build_evaluation_report, metrics_from_confusion
parser = argparse.ArgumentParser()
for name in ("--model-dir", "--test-dir", "--output-dir"):
    parser.add_argument(name)
args, _ = parser.parse_known_args()  # e.g. --expected-test-hash, which the real script checks
classes = sorted(os.listdir(args.test_dir))
n = len(classes)
matrix = [[len(os.listdir(os.path.join(args.test_dir, c))) if i == j else 0 for j in range(n)]
          for i, c in enumerate(classes)]
matrix[0][0] -= 1
matrix[0][1] += 1  # one image of the first class taken for the second
metrics, per_class = metrics_from_confusion(matrix)
report = build_evaluation_report(
    class_names=classes, metrics=metrics, per_class={c: per_class[i] for i, c in enumerate(classes)},
    confusion_matrix=matrix,
    misclassified=[{"path": classes[0] + "/000.jpg", "true": classes[0], "predicted": classes[1], "confidence": 0.6}],
    model_meta={"arch": "efficientnet_lite0", "best_epoch": 1, "history": [], "hyperparameters": {"epochs": 1},
                "dataset_hash": None},
)
pathlib.Path(args.output_dir, "evaluation.json").write_text(json.dumps(report))
'''


def test_a_thousand_class_run_is_recorded_and_listed(pipeline: LocalPipeline, tmp_path: Path,
                                                     console: io.StringIO) -> None:
    for key, body in BASE_OBJECTS:
        pipeline.store.put(key, body)
    classes = tuple(f"cat-{i:04d}" for i in range(N))
    files = image_tree("cats-1000", {split: classes for split in layout.SPLITS}, per_class=1)
    for key, body in prefixed("cats-1000", files):
        pipeline.store.put(key, body)
    pipeline.store.put(layout.dataset_marker_key("cats-1000"), marker_bytes("cats-1000", files))
    code = tmp_path / "ml_code"
    code.mkdir()
    (code / "train.py").write_text(TRAIN_PY)
    (code / "evaluation.py").write_text(EVALUATION_PY)
    shutil.copyfile(evaluation_report.__file__, code / "evaluation_report.py")
    bundle = build_bundle(code)
    push_bundle(pipeline.store, bundle)
    pipeline.store.put("manifests/thousand.json", manifest(dataset="datasets/cats-1000", code=f"code/{bundle.hash}",
                                                           experiment="many-cats"))

    [started] = pipeline.fire("manifests/thousand.json")
    assert started.outcome.value == "started", started
    row = pipeline.execute(started.execution_name)
    assert row.status == "SUCCEEDED", (row.error, row.cause)
    assert limits.utf8_len(json.dumps(row.input)) <= limits.EXECUTION_INPUT_MAX_BYTES
    assert len(row.input["dataset"]["classes"]) == N

    [trial] = pipeline.experiments.list_trials("many-cats")
    assert trial.status == "Completed" and trial.is_best
    assert trial.metrics["accuracy"] == (N - 1) / N  # 999 of 1,000 test images right
    params = record_parameters(trial)
    assert len(params) < limits.TRIAL_COMPONENT_PARAMETERS_MAX
    assert max(len(v.get("StringValue", "")) for v in params.values()) <= limits.TRIAL_COMPONENT_STRING_VALUE_MAX
    # The per-class figures are in evaluation.json, referenced by the record.
    doc = json.loads(pipeline.store.get(layout.parse_s3_uri(trial.evaluation_location)[1]))
    assert len(doc["class_names"]) == N and len(doc["confusion_matrix"]["matrix"]) == N
    listed = compare.format_experiments(pipeline.experiments.list_trials())
    assert "experiment many-cats (1 trials, * = best)" in listed and trial.trial in listed
