"""The CLI on a local root, in-process (``nyanops.cli.main``), with a tiny ML code bundle of our own so no
training runs: ``train.py`` prints the seed's epoch lines and, by hyperparameter, fails, waits for a file, or
writes control characters; ``evaluation.py`` copies a valid evaluation.json. The dataset is small generated
images added the way ``nyanops dataset add`` adds them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from nyanops.backends.local import LocalBackend
from nyanops.cli import main
from nyanops.code_bundle import build_bundle, push_bundle
from nyanops.core.evaluation_report import build_evaluation_report, metrics_from_confusion
from nyanops.event_fixtures import write_example_images
from nyanops.local.datasets import add_dataset

SRC = Path(__file__).resolve().parents[2] / "src"
DATASET = "ds1"
CLASSES = ("bengal", "siamese")

# The "seed" hyperparameter picks the behaviour: FAIL fails with a cause holding an escape sequence, WAIT waits
# until <root>/release exists (a run to look at while it goes); anything else succeeds.
FAIL, WAIT = 1, 2
TRAIN_PY = '''\
import argparse, os, pathlib, sys, time
p = argparse.ArgumentParser()
p.add_argument("--seed", default="0")
a, _ = p.parse_known_args()
print("Epoch 1/2", flush=True)
print("train Loss: 0.5000 Acc: 0.7000", flush=True)
print("val Loss: 0.6000 Acc: 0.6500", flush=True)
if a.seed == "2":
    release = pathlib.Path(os.environ["SM_MODEL_DIR"]).parents[2] / "release"
    print("waiting for " + str(release), flush=True)
    while not release.exists():
        time.sleep(0.05)
if a.seed == "1":
    pathlib.Path(os.environ["SM_OUTPUT_DIR"], "failure").write_text("CUDA out of memory \\x1b[2A(simulated)")
    sys.exit(1)
pathlib.Path(os.environ["SM_MODEL_DIR"], "model.pth").write_bytes(b"stub weights")
'''

EVALUATION_PY = '''\
import argparse, json, os, pathlib
p = argparse.ArgumentParser()
for name in ("--model-dir", "--test-dir", "--output-dir"):
    p.add_argument(name)
a, _ = p.parse_known_args()  # e.g. --expected-test-hash, which the real script checks
doc = json.loads(pathlib.Path(__file__).with_name("evaluation.json").read_text())
# signed with the job's identity, as the real script signs it (RecordResults checks it)
doc["job"] = {"execution": os.environ["NYANOPS_EXECUTION"], "processing_job": os.environ["NYANOPS_PROCESSING_JOB"]}
pathlib.Path(a.output_dir, "evaluation.json").write_text(json.dumps(doc))
'''
# One bengal photo taken for a siamese: accuracy 0.75, macro F1 0.7333 (figures follow from the matrix).
MATRIX = [[1, 1], [0, 2]]
PREDICTIONS = [
    {"path": "bengal/example-0.png", "true": "bengal", "predicted": "siamese", "confidence": 0.7},
    {"path": "bengal/example-1.png", "true": "bengal", "predicted": "bengal", "confidence": 0.9},
    {"path": "siamese/example-0.png", "true": "siamese", "predicted": "siamese", "confidence": 0.8},
    {"path": "siamese/example-1.png", "true": "siamese", "predicted": "siamese", "confidence": 0.95},
]


def evaluation_doc() -> dict[str, Any]:
    metrics, per_class = metrics_from_confusion(MATRIX)
    return build_evaluation_report(
        class_names=list(CLASSES),
        metrics=metrics,
        per_class=dict(zip(CLASSES, per_class, strict=True)),
        confusion_matrix=MATRIX,
        misclassified=PREDICTIONS[:1],
        predictions=PREDICTIONS,
        model_meta={"arch": "stub", "best_epoch": 2, "history": [], "hyperparameters": {}, "dataset_hash": None},
        created_at="2026-11-28T07:00:00Z",
        job={"execution": "replaced", "processing_job": "by the stub evaluation.py"},
    )


@dataclass
class Result:
    code: int
    out: str
    err: str


@dataclass
class Local:
    root: Path
    tmp: Path
    code_hash: str
    capsys: Any

    def cli(self, *args: str) -> Result:
        self.capsys.readouterr()
        code = main([*args, "--root", str(self.root)])
        captured = self.capsys.readouterr()
        return Result(code, captured.out, captured.err)

    def manifest(self, name: str = "m", comment: str = "a trial", **hyper: Any) -> Path:
        path = self.tmp / f"{name}.json"
        path.write_text(json.dumps({"experiment": "cats", "dataset": f"datasets/{DATASET}", "comment": comment,
                                    "code": f"code/{self.code_hash}", "hyperparameters": {"epochs": 2, **hyper}}))
        return path

    def background(self, *args: str) -> subprocess.Popen[str]:
        """The CLI in its own process (a run that other commands look at while it goes)."""
        env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        return subprocess.Popen([sys.executable, "-m", "nyanops.cli", *args, "--root", str(self.root)], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.fixture
def local(tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Local]:
    monkeypatch.delenv("NYANOPS_BUCKET", raising=False)
    monkeypatch.delenv("COLUMNS", raising=False)
    root = tmp_path / "root"
    backend = LocalBackend(root)
    code = tmp_path / "stub_code"
    code.mkdir()
    (code / "train.py").write_text(TRAIN_PY)
    (code / "evaluation.py").write_text(EVALUATION_PY)
    (code / "evaluation.json").write_text(json.dumps(evaluation_doc()))
    bundle = build_bundle(code)
    push_bundle(backend.store, bundle)
    images = tmp_path / "images"
    write_example_images(images, CLASSES)
    add_dataset(backend.store, images, DATASET)
    backend.close()
    yield Local(root, tmp_path, bundle.hash, capsys)
