"""train.py's steps: resumable checkpoints, the sealed dataset identity, progress lines, the flag table,
and inference.py scoring exactly as evaluation.py does."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import evaluation
import pytest
import torch
import train
from conftest import ML_CODE, make_image_folder

from nyanops.core import content_identity, hyperparameters
from nyanops.local.progress import parse_progress

pytestmark = pytest.mark.ml
FAST = ["--image-size", "64", "--batch-size", "4", "--test-batch-size", "8", "--workers", "2"]


def _splits(root: Path, per_class: int = 4) -> Path:
    for split in ("train", "val", "test"):
        make_image_folder(root / split, per_class=per_class)
    return root


def _args(data: Path, model_dir: Path, *extra: str) -> list[str]:
    return ["--data-dir", str(data), "--model-dir", str(model_dir), *FAST, *extra]


def _weights(model_dir: Path) -> dict:
    return torch.load(model_dir / "model.pth", weights_only=True)


# ---------------------------------------------------------------- resumable training


def test_killed_job_resumes_from_its_checkpoints_and_ends_with_the_same_model(tmp_path, capsys):
    data = _splits(tmp_path / "data")
    epochs = ["--epochs", "40"]
    assert train.main(_args(data, tmp_path / "whole", *epochs, "--checkpoint-dir", str(tmp_path / "c1"))) == 0
    capsys.readouterr()

    # The same job, killed (SIGKILL, no clean-up) while epoch 8 runs, then started again on its checkpoints.
    checkpoints = tmp_path / "c2"
    cmd = [sys.executable, str(ML_CODE / "train.py"), *_args(data, tmp_path / "killed", *epochs)]
    cmd += ["--checkpoint-dir", str(checkpoints)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, cwd=ML_CODE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    seen = []
    assert proc.stdout is not None
    for line in proc.stdout:
        seen.append(line)
        if line.startswith("Epoch 8/40"):
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "".join(seen[-20:])
    assert not (tmp_path / "killed" / "model.pth").exists()
    assert sorted(p.name for p in checkpoints.iterdir()) == ["classifier.pt", "features.pt"]  # no temp files left

    assert train.main(_args(data, tmp_path / "resumed", *epochs, "--checkpoint-dir", str(checkpoints))) == 0
    out = capsys.readouterr().out
    assert "checkpoint: resumed the feature cache" in out
    assert "checkpoint: resumed after epoch 7/40 of the classifier" in out or "after epoch 8/40" in out
    assert "Epoch 1/40" not in out and "Epoch 40/40" in out
    whole, resumed = _weights(tmp_path / "whole"), _weights(tmp_path / "resumed")
    assert whole.keys() == resumed.keys()
    for key in whole:
        assert torch.allclose(whole[key], resumed[key], atol=1e-6), key
    meta_whole = json.loads((tmp_path / "whole" / "model_meta.json").read_text())
    meta_resumed = json.loads((tmp_path / "resumed" / "model_meta.json").read_text())
    strip = lambda history: [{k: v for k, v in e.items() if k != "seconds"} for e in history]  # noqa: E731
    assert strip(meta_resumed["history"]) == strip(meta_whole["history"])
    assert meta_resumed["internal_estimate"] == meta_whole["internal_estimate"]


def test_checkpoints_of_other_settings_or_data_are_ignored_with_a_log_line(tmp_path, capsys):
    data = _splits(tmp_path / "data", per_class=2)
    ckpt = ["--checkpoint-dir", str(tmp_path / "ckpt"), "--epochs", "2"]
    assert train.main(_args(data, tmp_path / "m1", *ckpt)) == 0
    capsys.readouterr()
    assert train.main(_args(data, tmp_path / "m2", *ckpt, "--lr", "0.01")) == 0
    out = capsys.readouterr().out
    assert "features.pt was written for another hyperparameters; ignored" in out and "resumed" not in out
    make_image_folder(data / "train", per_class=3)  # one more image per class: another dataset
    assert train.main(_args(data, tmp_path / "m3", *ckpt, "--lr", "0.01")) == 0
    out = capsys.readouterr().out
    assert "was written for another dataset; ignored" in out and "resumed" not in out


# ---------------------------------------------------------------- the sealed dataset identity


def _independent_split_hash(root: Path) -> str:
    lines = sorted(
        f"{p.relative_to(root).as_posix()}\0{hashlib.sha256(p.read_bytes()).hexdigest()}\n" for p in root.rglob("*.jpg")
    )
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def test_split_hash_is_the_documented_definition_in_any_listing_order(tmp_path):
    from image_data import scan_split

    root = make_image_folder(tmp_path / "train", classes=("a", "a-b", "b"))  # "a-b/..." sorts before "a/..."
    files = scan_split(str(root), ["a", "a-b", "b"])
    assert files.content_hash == _independent_split_hash(root)
    pairs = list(zip([rel for rel, _ in files.items], files.file_hashes, strict=True))
    assert content_identity.split_hash(reversed(pairs)) == files.content_hash
    assert content_identity.combined_hash({"val": "2", "train": "1"}) == content_identity.combined_hash(
        {"train": "1", "val": "2"}
    )


def test_jobs_refuse_a_split_that_differs_from_the_sealed_dataset(tmp_path, capsys):
    data = _splits(tmp_path / "data", per_class=2)
    sealed = {s: _independent_split_hash(data / s) for s in ("train", "val", "test")}
    out_dir = tmp_path / "out"
    assert (
        train.main(
            _args(
                data,
                tmp_path / "m",
                "--dry-run",
                "true",
                "--expected-train-hash",
                sealed["train"],
                "--expected-val-hash",
                "sha256:" + sealed["val"],
            )
        )
        == 0
    )
    capsys.readouterr()
    (data / "val" / "other" / "img0.jpg").write_bytes((data / "val" / "bengal" / "img0.jpg").read_bytes())
    failure = tmp_path / "failure"
    code = train.main(
        _args(
            data,
            tmp_path / "m2",
            "--expected-train-hash",
            sealed["train"],
            "--expected-val-hash",
            sealed["val"],
            "--failure-file",
            str(failure),
        )
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "the val split differs from the sealed dataset" in err and f"sealed {sealed['val'][:12]}" in err
    assert "6 image files found" in err and "replaced, added or removed after sealing" in err
    assert "upload the dataset again under a new dataset id" in err
    assert failure.read_text().strip() == err.strip()

    # evaluation.py: the test split; its reason goes to the processing job's message file
    os.environ["SM_OUTPUT_DIR"] = str(out_dir)
    try:
        (data / "test" / "persian" / "extra.jpg").write_bytes((data / "test" / "persian" / "img0.jpg").read_bytes())
        ev = ["--model-dir", str(tmp_path / "m"), "--test-dir", str(data / "test"), "--output-dir", str(out_dir / "e")]
        assert evaluation.main([*ev, "--expected-test-hash", sealed["test"]]) == 2
    finally:
        del os.environ["SM_OUTPUT_DIR"]
    err = capsys.readouterr().err
    assert "the test split differs from the sealed dataset" in err and "7 image files found" in err
    assert (out_dir / "message").read_text().strip() == err.strip()
    assert not (out_dir / "failure").exists()


# ---------------------------------------------------------------- progress lines


def test_training_and_evaluation_report_progress_in_the_documented_format(tmp_path, capsys):
    data = _splits(tmp_path / "data", per_class=2)
    assert train.main(_args(data, tmp_path / "m", "--epochs", "2")) == 0
    assert (
        evaluation.main(
            ["--model-dir", str(tmp_path / "m"), "--test-dir", str(data / "test"), "--output-dir", str(tmp_path / "e")]
        )
        == 0
    )
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("progress:")]
    parsed = [parse_progress(line) for line in lines]
    assert all(parsed), lines
    finals = {(p["phase"], p["total"]) for p in parsed if p["done"] == p["total"]}
    assert {("decode", 12), ("features", 24), ("epochs", 2), ("decode", 6), ("scoring", 6)} <= finals


# ---------------------------------------------------------------- the flag table


def test_train_argparse_is_the_hyperparameter_table():
    parser = train.build_parser()
    actions = {a.dest: a for a in parser._actions if a.dest != "help"}
    assert sorted(actions) == sorted(h.attr for h in hyperparameters.TABLE)
    for h in hyperparameters.TABLE:
        action = actions[h.attr]
        assert action.option_strings == [f"--{h.name}"]
        assert action.help and action.help.startswith(h.help)
        if h.choices:
            assert tuple(action.choices) == h.choices
        if not h.env and not h.container_default:
            assert action.default == h.default, h.name
    args = train.parse_args([])
    for name, value in hyperparameters.defaults().items():
        expected = min(value, args.epochs) if name == "freeze-epochs" else value
        assert getattr(args, hyperparameters.BY_NAME[name].attr) == expected, name


def test_table_choices_are_what_ml_code_knows():
    from backbones import ARCHITECTURES
    from views import VIEW_SETS

    assert set(hyperparameters.ARCHITECTURES) == set(ARCHITECTURES)
    assert set(hyperparameters.VIEW_SETS) == set(VIEW_SETS)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--num-classes", "1"], "must be >= 2 (or 0: from the class folders), got 1"),
        (["--num-classes", str(hyperparameters.MAX_CLASSES + 1)], f"must be <= {hyperparameters.MAX_CLASSES}"),
        (["--lr", "0"], "must be > 0"),
    ],
)
def test_ranges_come_from_the_table(argv, message, capsys):
    with pytest.raises(SystemExit):
        train.parse_args(argv)
    assert message in capsys.readouterr().err
    assert train.parse_args(["--num-classes", str(hyperparameters.MAX_CLASSES)]).num_classes == 1000
    assert train.parse_args(["--num-classes", "0"]).num_classes == 0


# ---------------------------------------------------------------- inference.py


def test_predictor_scores_exactly_as_evaluation(tmp_path, capsys):
    import tarfile

    from inference import Predictor

    data = _splits(tmp_path / "data", per_class=2)
    assert train.main(_args(data, tmp_path / "m", "--epochs", "2")) == 0
    assert (
        evaluation.main(
            ["--model-dir", str(tmp_path / "m"), "--test-dir", str(data / "test"), "--output-dir", str(tmp_path / "e")]
        )
        == 0
    )
    report = json.loads((tmp_path / "e" / "evaluation.json").read_text())
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for f in (tmp_path / "m").iterdir():
            tar.add(f, arcname=f.name)
    with Predictor.load(str(archive)) as predictor:
        assert predictor.class_names == report["class_names"] and len(predictor.views) == 2
        paths = sorted(str(p) for p in (data / "test").rglob("*.jpg"))
        probs = predictor.predict_files(paths)
    assert probs.shape == (6, 3) and torch.allclose(probs.sum(1), torch.ones(6))
    predicted = {
        Path(p).relative_to(data / "test").as_posix(): predictor.class_names[i]
        for p, i in zip(paths, probs.argmax(1).tolist(), strict=True)
    }
    wrong = {m["path"]: m["predicted"] for m in report["misclassified"]}
    assert {p: c for p, c in predicted.items() if c != p.split("/")[0]} == wrong
