"""``nyanops rerun --bucket`` and ``nyanops predict --bucket`` against moto's server, as they run against AWS (the
stack of ``test_cli_moto_server.py``: the real state machine on moto's engine, the real StartPipeline and
RecordResults). The rerun's manifest goes to the stack's manifests/, the execution it starts is followed and the
two trials' figures compared; predict downloads the best trial's model once and scores with a stand-in (no
torch here; the real scoring is tests/e2e/test_predict_rerun.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import boto3
import pytest

from nyanops import classify
from nyanops.classify import Failure, Photo, Prediction
from nyanops.core import layout

from .conftest import BUCKET, REGION
from .test_cli_moto_server import Stack, _no_sockets, cli, stack, started  # noqa: F401  (fixtures)


def test_rerun_on_the_stack_follows_the_new_execution_and_compares(stack: Stack,  # noqa: F811
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    stack.fake.wrong = lambda request: 1
    code, out, err = cli(capsys, "run", str(stack.manifest("one", hyperparameters={"epochs": 2, "seed": 5})), "--wait")
    assert code == 0, out + err
    original = started(out)
    stack.fake.wrong = lambda request: 0  # the rerun's evaluation gets every test image right
    code, out, err = cli(capsys, "rerun", original)
    assert code == 0, out + err
    again = started(out)
    key = f"manifests/rerun-{original}.json"
    assert f"uploaded {key} to s3://{BUCKET}: trial {original}'s dataset, code and hyperparameters (seed 5)" in out
    assert "waiting for the stack to start execution" in out and "  SUCCEEDED" in out
    body = boto3.client("s3", region_name=REGION).get_object(Bucket=BUCKET, Key=key)["Body"].read()
    manifest = json.loads(body)
    assert manifest["force"] is True and manifest["comment"] == f"rerun of {original}"
    assert manifest["dataset"] == "datasets/2026-11-28T064300Z" and manifest["code"].startswith("code/")
    assert manifest["hyperparameters"]["seed"] == 5
    train = next(p for op, p in stack.fake.requests if op == "CreateTrainingJob" and p["TrainingJobName"] ==
                 f"{again}-train")
    assert train["HyperParameters"]["seed"] == "5"
    lines = out[out.index(f"original: {original}"):].splitlines()
    assert lines[1] == f"rerun:    {again}"
    figures = {line.split()[0]: line.split()[1:] for line in lines[3:8]}
    assert figures["accuracy"] == ["0.750000", "1.000000", "+0.250000"]
    assert lines[8].startswith("bit-identical: no (accuracy, ")
    assert lines[9] == "predictions: 3 of 4 photos the same class, largest confidence difference 0.150000"


def test_rerun_on_the_stack_refuses_a_failed_trial_and_vanished_code(stack: Stack,  # noqa: F811
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    stack.fake.fail_training = lambda request: "AlgorithmError: CUDA out of memory"
    code, out, _ = cli(capsys, "run", str(stack.manifest("bad")), "--wait")
    failed = started(out)
    code, out, err = cli(capsys, "rerun", failed)
    assert code == 2 and f"trial {failed} did not complete (status Failed: " in err and "CUDA out of memory" in err
    stack.fake.fail_training = lambda request: None
    code, out, _ = cli(capsys, "run", str(stack.manifest("good")), "--wait")
    good = started(out)
    stack.fake.fail_training = lambda request: "AlgorithmError: the rerun ran out of memory"
    code, out, err = cli(capsys, "rerun", good)
    assert code == 1 and "FAILED in Train" in out and "the rerun ran out of memory" in out
    assert "nyanops: the rerun did not complete (Failed); nothing to compare" in err
    stack.fake.fail_training = lambda request: None
    s3 = boto3.client("s3", region_name=REGION)
    manifests = s3.list_object_versions(Bucket=BUCKET, Prefix="manifests/")["Versions"]
    bundle = next(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="code/")["Contents"]
                  if o["Key"].endswith(layout.CODE_BUNDLE))
    s3.delete_object(Bucket=BUCKET, Key=bundle)
    code, out, err = cli(capsys, "rerun", good)
    assert code == 2 and f"its code bundle {bundle.removesuffix('/' + layout.CODE_BUNDLE)} is gone from s3://" in err
    assert s3.list_object_versions(Bucket=BUCKET, Prefix="manifests/")["Versions"] == manifests  # nothing uploaded


class StandIn:
    loaded: ClassVar[list[tuple[Path, Path]]] = []

    @classmethod
    def load(cls, code: Path, model_path: Path) -> StandIn:
        cls.loaded.append((code, model_path))
        return cls()

    def classify(self, photos: list[Photo], top: int) -> list[Prediction | Failure]:
        return [Prediction(p.path, [("siamese", 0.8)]) for p in photos]


def test_predict_on_the_stack_downloads_the_best_model_once(stack: Stack,  # noqa: F811
                                                            capsys: pytest.CaptureFixture[str],
                                                            monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(classify, "missing_packages", lambda: [])
    monkeypatch.setattr(classify.Classifier, "load", StandIn.load)
    monkeypatch.setenv("NYANOPS_CACHE_DIR", str(tmp_path / "cache"))
    StandIn.loaded = []
    code, out, _ = cli(capsys, "run", str(stack.manifest("best")), "--wait")
    best = started(out)
    photo = tmp_path / "cat.jpg"
    photo.write_bytes(b"a photo")
    code, out, err = cli(capsys, "predict", str(photo))  # the one experiment with a best trial
    assert code == 0, err
    model_uri = f"s3://{BUCKET}/runs/{best}/model/{best}-train/output/model.tar.gz"
    assert out.splitlines()[0].startswith(f"downloaded {model_uri} (")
    assert f"trial {best} (the best of experiment cats, macro_f1 0.7333), model {model_uri}" in out
    assert f"{photo}  siamese 0.8000" in out
    code, out, err = cli(capsys, "predict", str(photo), "--experiment", "cats")
    assert code == 0 and "downloaded" not in out  # cached per model URI
    [(code_dir, model), (code_dir_again, model_again)] = StandIn.loaded
    assert (model, code_dir) == (model_again, code_dir_again) and model.is_relative_to(tmp_path / "cache")
    assert (code_dir / "inference.py").is_file() and (code_dir / "evaluation.py").is_file()


def test_predict_on_the_stack_without_a_best_trial(stack: Stack,  # noqa: F811
                                                   capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setattr(classify, "missing_packages", lambda: [])
    photo = tmp_path / "cat.jpg"
    photo.write_bytes(b"a photo")
    code, _, err = cli(capsys, "predict", str(photo))
    assert code == 2 and "no experiment has a best trial yet" in err
    code, _, err = cli(capsys, "predict", str(photo), "--experiment", "dogs")
    assert code == 2 and "no experiment 'dogs' (no trials recorded)" in err
