"""``nyanops predict`` and ``nyanops rerun`` on a local root, without torch: which trial and which files they use,
what they print, their refusals and exit statuses. The scoring itself is replaced by a stand-in here; the real
model is scored in tests/e2e/test_predict_rerun.py (predictions equal to evaluation.json's)."""

from __future__ import annotations

import json
import re
import tarfile
from pathlib import Path
from typing import Any, ClassVar

import pytest

from nyanops import classify
from nyanops.classify import Failure, Photo, Prediction
from nyanops.code_bundle import build_bundle, push_bundle
from nyanops.core import hyperparameters, layout
from nyanops.local.bucket import LocalObjectStore
from nyanops.local.database import connect
from nyanops.local.experiment_store import SQLiteExperimentStore

from .conftest import DATASET, EVALUATION_PY, FAIL, TRAIN_PY, Local, evaluation_doc


class StandIn:
    """What Classifier.load returned: PNG files are siamese (0.9), anything else cannot be decoded."""

    loaded: ClassVar[list[tuple[Path, Path]]] = []

    @classmethod
    def load(cls, code: Path, model_path: Path) -> StandIn:
        cls.loaded.append((code, model_path))
        return cls()

    def classify(self, photos: list[Photo], top: int) -> list[Prediction | Failure]:
        out: list[Prediction | Failure] = []
        for photo in photos:
            if Path(photo.path).read_bytes().startswith(b"\x89PNG"):
                out.append(Prediction(photo.path, [("siamese", 0.9), ("bengal", 0.1)][:top]))
            else:
                out.append(Failure(photo.path, "not a readable image (UnidentifiedImageError); remove or replace it"))
        return out


@pytest.fixture
def scored(monkeypatch: pytest.MonkeyPatch) -> type[StandIn]:
    StandIn.loaded = []
    monkeypatch.setattr(classify, "missing_packages", lambda: [])
    monkeypatch.setattr(classify.Classifier, "load", StandIn.load)
    monkeypatch.delenv("NYANOPS_DEFAULT_EXPERIMENT", raising=False)
    return StandIn


def with_inference(local: Local) -> str:
    """A code bundle like the fixture's, with an inference.py (predict looks for it); its hash."""
    code = local.tmp / "code_with_inference"
    code.mkdir()
    (code / "train.py").write_text(TRAIN_PY)
    (code / "evaluation.py").write_text(EVALUATION_PY)
    (code / "evaluation.json").write_text(json.dumps(evaluation_doc()))
    (code / "inference.py").write_text("# stand-in: the tests replace the scoring\n")
    bundle = build_bundle(code)
    push_bundle(LocalObjectStore(local.root / "bucket"), bundle)
    return bundle.hash


def run(local: Local, name: str, code_hash: str | None = None, **hyper: Any) -> str:
    path = local.manifest(name, comment=f"trial {name}", **hyper)
    if code_hash:
        body = json.loads(path.read_text())
        path.write_text(json.dumps({**body, "code": f"code/{code_hash}"}))
    result = local.cli("run", str(path), "--wait")
    match = re.search(r"started execution (\S+)", result.out)
    assert match, result.out + result.err
    return match.group(1)


def trials(local: Local) -> dict[str, Any]:
    return {t.trial: t for t in SQLiteExperimentStore(connect(local.root / "nyanops.db")).list_trials("cats")}


# -- predict -----------------------------------------------------------------------------------------------


def test_without_torch_predict_says_which_python_to_use(local: Local, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(classify, "missing_packages", lambda: ["torch", "torchvision"])
    result = local.cli("predict", str(local.tmp / "images" / "test"))
    assert result.code == 2 and result.out == ""
    assert "nyanops predict needs PyTorch to run the model, and this Python (" in result.err
    assert "lacks torch, torchvision: run the ML virtualenv's nyanops (`.venv-ml/bin/nyanops predict ...`" in result.err
    assert "pip install torch torchvision" in result.err and "Traceback" not in result.err


def test_the_missing_packages_are_looked_up_by_import_name(monkeypatch: pytest.MonkeyPatch) -> None:
    present = {"torch", "numpy"}
    monkeypatch.setattr(classify.importlib.util, "find_spec", lambda name: object() if name in present else None)
    assert classify.missing_packages() == ["torchvision", "pillow"]


def test_predict_uses_the_best_trial_and_reports_every_photo(local: Local, scored: type[StandIn]) -> None:
    code_hash = with_inference(local)
    best = run(local, "first", code_hash)
    run(local, "second", code_hash)
    assert trials(local)[best].is_best
    photos = local.tmp / "images" / "test"
    note = photos / "notes.txt"
    note.write_text("not a photo")  # in a folder: skipped by name
    broken = local.tmp / "broken.jpg"
    broken.write_bytes(b"JFIF? no")  # named: tried, and it fails on its own
    result = local.cli("predict", str(photos), str(broken), str(local.tmp / "missing.png"), "--top", "2")
    assert result.code == 2, result.err
    lines = result.out.splitlines()
    assert lines[0].startswith(f"trial {best} (the best of experiment cats, macro_f1 0.7333), model s3://")
    rows = [line.split() for line in lines[1:-1]]
    assert [r[0] for r in rows] == [str(photos / c / f"example-{i}.png") for c in ("bengal", "siamese")
                                    for i in (0, 1)]  # a folder: class folders, then files, in name order
    assert all(r[1:] == ["siamese", "0.9000", "bengal", "0.1000"] for r in rows)
    assert lines[-1].startswith("4 photo(s) classified in ")
    assert f"nyanops: {broken}: not a readable image (UnidentifiedImageError)" in result.err
    assert f"nyanops: {local.tmp / 'missing.png'}: no such file or folder; check the path" in result.err
    assert f"skipped 1 file(s) in the folders that are not images by name: {note}" in result.err
    assert "2 of 6 photo(s) could not be classified (above); the others were" in result.err
    [(code, model)] = scored.loaded
    assert (code / "inference.py").is_file() and code.name == code_hash  # the trial's own code, unpacked
    assert model == local.root / "bucket" / layout.parse_s3_uri(trials(local)[best].model_location)[1]
    with tarfile.open(model) as tar:
        assert "model.pth" in tar.getnames()


def test_predict_json_and_a_named_trial(local: Local, scored: type[StandIn]) -> None:
    code_hash = with_inference(local)
    run(local, "first", code_hash)
    other = run(local, "second", code_hash)
    photo = local.tmp / "images" / "test" / "bengal" / "example-0.png"
    result = local.cli("predict", str(photo), "--trial", other, "--json", "--top", "5")
    assert result.code == 0, result.err
    answer = json.loads(result.out)
    assert (answer["trial"], answer["experiment"], answer["is_best"]) == (other, "cats", False)
    assert answer["code"] == f"code/{code_hash}" and answer["model"] == trials(local)[other].model_location
    assert answer["metrics"]["macro_f1"] == pytest.approx(0.7333, abs=1e-4) and answer["primary_metric"] == "macro_f1"
    assert answer["photos"] == [{"path": str(photo), "predicted": "siamese", "confidence": 0.9,
                                 "top": [{"class": "siamese", "probability": 0.9},
                                         {"class": "bengal", "probability": 0.1}]}]


def test_predict_refuses_what_has_no_model(local: Local, scored: type[StandIn]) -> None:
    photo = str(local.tmp / "images" / "test")
    result = local.cli("predict", photo)
    assert result.code == 2 and "no experiment 'cats' (no trials recorded)" in result.err
    failed = run(local, "bad", seed=FAIL)
    result = local.cli("predict", photo)
    assert result.code == 2 and "experiment cats has no best trial yet (no trial completed: 1 Failed)" in result.err
    result = local.cli("predict", photo, "--trial", failed)
    assert result.code == 2 and f"trial {failed} is Failed: " in result.err and "no model to use" in result.err
    result = local.cli("predict", photo, "--trial", "m-nope")
    assert result.code == 2 and "no trial named 'm-nope' in any experiment" in result.err
    result = local.cli("predict", photo, "--experiment", "dogs")
    assert result.code == 2 and "no experiment 'dogs'" in result.err
    assert scored.loaded == [] and "Traceback" not in result.err


def test_predict_refuses_a_code_bundle_without_inference_and_nothing_to_classify(local: Local,
                                                                                  scored: type[StandIn]) -> None:
    run(local, "old-code")  # the fixture's bundle has no inference.py
    result = local.cli("predict", str(local.tmp / "images" / "test"))
    assert result.code == 2 and "has no inference.py: it predates `nyanops predict`" in result.err
    empty = local.tmp / "empty"
    empty.mkdir()
    result = local.cli("predict", str(empty))
    assert result.code == 2 and f"no photos to classify in {empty}" in result.err


@pytest.mark.parametrize(("top", "problem"), [("0", "must be between 1 and 1000, got 0"),
                                             ("1001", "must be between 1 and 1000, got 1001"),
                                             ("two", "not a whole number: 'two'")])
def test_top_is_a_number_of_classes(local: Local, top: str, problem: str) -> None:
    with pytest.raises(SystemExit) as exited:
        local.cli("predict", "x.jpg", "--top", top)
    assert exited.value.code == 2 and f"argument --top: {problem}" in local.capsys.readouterr().err


# -- rerun -------------------------------------------------------------------------------------------------


def test_rerun_trains_again_from_the_recorded_inputs_and_compares(local: Local) -> None:
    original = run(local, "first", seed=7)
    result = local.cli("rerun", original)
    assert result.code == 0, result.out + result.err
    key = f"manifests/rerun-{original}.json"
    assert f"uploaded {key} to local root {local.root}: trial {original}'s dataset, code and hyperparameters " \
           "(seed 7), force" in result.out
    manifest = json.loads((local.root / "bucket" / key).read_text())
    assert manifest == {"experiment": "cats", "dataset": f"datasets/{DATASET}", "code": f"code/{local.code_hash}",
                        "comment": f"rerun of {original}", "force": True,
                        # every value the trial recorded: the resolved recipe its run passed to train.py
                        "hyperparameters": hyperparameters.resolve({"epochs": 2, "seed": 7}, 2)}
    again = re.search(r"started execution (\S+)", result.out).group(1)  # type: ignore[union-attr]
    recorded = trials(local)
    assert recorded[again].comment == f"rerun of {original}" and recorded[again].hyperparameters["seed"] == 7
    tail = result.out[result.out.index(f"original: {original}"):].splitlines()
    assert tail[1] == f"rerun:    {again}"
    assert tail[2].split() == ["metric", "original", "rerun", "difference"]
    assert tail[3].split() == ["accuracy", "0.750000", "0.750000", "+0.000000"]
    assert {line.split()[0] for line in tail[3:8]} == {"accuracy", "macro_precision", "macro_recall", "macro_f1",
                                                        "weighted_f1"}
    assert tail[8] == "bit-identical: yes, every metric is the same number"
    assert tail[9] == "predictions: 4 of 4 photos the same class, largest confidence difference 0.000000"


def test_rerun_refuses_what_it_cannot_repeat(local: Local) -> None:
    result = local.cli("rerun", "m-nope")
    assert result.code == 2 and "no trial named 'm-nope' in any experiment" in result.err
    failed = run(local, "bad", seed=FAIL)
    result = local.cli("rerun", failed, "--experiment", "cats")
    assert result.code == 2 and f"trial {failed} did not complete (status Failed: " in result.err
    good = run(local, "good")
    bundle = local.root / "bucket" / layout.code_bundle_key(local.code_hash)
    bundle.rename(bundle.with_name("moved"))
    result = local.cli("rerun", good)
    assert result.code == 2 and f"its code bundle code/{local.code_hash} is gone from local root" in result.err
    bundle.with_name("moved").rename(bundle)
    db = connect(local.root / "nyanops.db")
    with db:
        db.execute("UPDATE trials SET dataset_hash = ? WHERE trial = ?", ("0" * 64, good))
    result = local.cli("rerun", good)
    assert result.code == 2 and f"datasets/{DATASET} in local root {local.root} has other content (hash " in result.err
    assert "than the trial trained on (000000000000)" in result.err
    marker = local.root / "bucket" / layout.dataset_marker_key(DATASET)
    marker.unlink()
    result = local.cli("rerun", good)
    assert result.code == 2 and f"cannot rerun {good}: its dataset is not usable in local root" in result.err
    assert f"datasets/{DATASET} is still uploading or incomplete" in result.err
    assert not list((local.root / "bucket" / "manifests").glob("rerun-*")) and "Traceback" not in result.err
