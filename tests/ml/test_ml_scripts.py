"""train.py / evaluation.py / evaluation_report: metrics, a one-epoch smoke run, the round trip, bad input."""

from __future__ import annotations

import copy
import json
import re
import struct
import tarfile
import zlib
from pathlib import Path

import evaluation
import image_data
import pytest
import train
from conftest import make_image_folder
from evaluation_report import (
    SCHEMA_VERSION,
    EvaluationReportError,
    build_evaluation_report,
    validate_evaluation_report,
)

pytestmark = pytest.mark.ml

# The regexes SageMaker applies to train.py's output: read from the state machine, their one source.
_ASL = Path(__file__).resolve().parents[2] / "statemachine" / "training_pipeline.asl.json"
METRIC_REGEXES = [
    d["Regex"]
    for d in json.loads(_ASL.read_text())["States"]["Trials"]["ItemProcessor"]["States"]["Train"]["Parameters"][
        "AlgorithmSpecification"]["MetricDefinitions"]
]
assert len(METRIC_REGEXES) == 4, METRIC_REGEXES
FAST = ["--image-size", "64", "--batch-size", "4", "--test-batch-size", "8", "--workers", "2"]


# ---------------------------------------------------------------- metrics and the report schema


def test_compute_metrics_on_hand_made_arrays():
    names = ["a", "b", "c"]
    y_true = [0, 0, 0, 1, 1, 2]
    y_pred = [0, 0, 1, 1, 1, 0]
    m = evaluation.compute_metrics(y_true, y_pred, names)
    assert m["confusion_matrix"] == [[2, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert m["metrics"]["accuracy"] == pytest.approx(4 / 6)
    assert m["per_class"]["a"] == {
        "precision": pytest.approx(2 / 3),
        "recall": pytest.approx(2 / 3),
        "f1": pytest.approx(2 / 3),
        "support": 3,
    }
    assert m["per_class"]["c"]["f1"] == 0.0  # never predicted: zero, not a warning or NaN
    assert m["metrics"]["macro_f1"] == pytest.approx((2 / 3 + 0.8 + 0) / 3)
    assert m["metrics"]["macro_precision"] == pytest.approx((2 / 3 + 2 / 3 + 0) / 3)


def _report(**overrides):
    names = ["a", "b"]
    m = evaluation.compute_metrics([0, 0, 1, 1], [0, 1, 1, 1], names)
    kwargs = dict(
        class_names=names,
        metrics=m["metrics"],
        per_class=m["per_class"],
        confusion_matrix=m["confusion_matrix"],
        misclassified=[{"path": "a/x.jpg", "true": "a", "predicted": "b", "confidence": 0.7}],
        model_meta={
            "arch": "efficientnet_lite0",
            "best_epoch": 2,
            "history": [],
            "hyperparameters": {"epochs": 2},
            "dataset_hash": None,
        },
    )
    kwargs.update(overrides)
    return build_evaluation_report(**kwargs)


def test_build_evaluation_report_is_valid_json_schema_v1():
    doc = json.loads(json.dumps(_report()))
    assert validate_evaluation_report(doc) is doc
    assert doc["schema_version"] == SCHEMA_VERSION == 1
    assert doc["num_images"] == 4 and doc["artifacts"]["confusion_matrix_png"] == "confusion_matrix.png"
    assert doc["created_at"].endswith("Z")


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d.pop("metrics"), "metrics"),
        (lambda d: d["metrics"].update(macro_f1=1.5), "metrics.macro_f1"),
        (lambda d: d["metrics"].update(accuracy="0.9"), "metrics.accuracy"),
        (lambda d: d["confusion_matrix"]["matrix"][0].append(0), "confusion_matrix.matrix[0]"),
        (lambda d: d["confusion_matrix"].update(labels=["b", "a"]), "confusion_matrix.labels"),
        (lambda d: d["per_class"].pop("b"), "per_class"),
        (lambda d: d["per_class"]["a"].update(support=1.5), "per_class.a.support"),
        (lambda d: d["misclassified"][0].update(predicted="zebra"), "misclassified[0].predicted"),
        (lambda d: d.update(schema_version=2), "schema_version"),
        (lambda d: d["model"].pop("dataset_hash"), "model.dataset_hash"),
    ],
)
def test_validate_evaluation_report_names_the_field(mutate, field):
    doc = copy.deepcopy(_report())
    mutate(doc)
    with pytest.raises(EvaluationReportError) as err:
        validate_evaluation_report(doc)
    assert str(err.value).startswith(field + ":")


# ---------------------------------------------------------------- arguments


def test_parse_args_reads_sagemaker_strings_and_env(monkeypatch, tmp_path):
    monkeypatch.setenv("SM_MODEL_DIR", str(tmp_path / "m"))
    monkeypatch.setenv("SM_CHANNEL_TRAIN", "/data/train")
    monkeypatch.setenv("SM_CHANNEL_VAL", "/data/val")
    monkeypatch.setenv("SM_NUM_GPUS", "0")
    args = train.parse_args(["--epochs", "3", "--augment", "false", "--pretrained", "1", "--lr", "0.01"])
    assert (args.epochs, args.augment, args.pretrained, args.lr) == (3, False, True, 0.01)
    assert (args.model_dir, args.train_dir, args.val_dir, args.num_gpus) == (
        str(tmp_path / "m"),
        "/data/train",
        "/data/val",
        0,
    )
    assert train.resolve_split_dirs(train.parse_args(["--data-dir", "/d"]))[0] == "/data/train"  # channels win


@pytest.mark.parametrize(
    "argv",
    [
        ["--augment", "maybe"],
        ["--epochs", "0"],
        ["--lr", "0"],
        ["--arch", "vgg"],
        ["--unknown", "1"],
        ["--num-classes", "1"],
    ],
)
def test_parse_args_rejects_bad_values(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        train.parse_args(argv)
    assert exc.value.code == 2
    assert "error:" in capsys.readouterr().err


# ---------------------------------------------------------------- smoke run and round trip on real photos


def test_one_epoch_smoke_then_evaluate_round_trip(cats_sample, tmp_path, capsys):
    model_dir = tmp_path / "model"
    code = train.main(
        [
            "--data-dir",
            str(cats_sample),
            "--model-dir",
            str(model_dir),
            "--epochs",
            "2",
            "--freeze-epochs",
            "1",
            "--num-classes",
            "3",
            *FAST,
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    for regex in METRIC_REGEXES:
        assert len(re.findall(regex, out)) == 2, regex
    assert re.findall(r"^Epoch (\d+)/(\d+)$", out, flags=re.M) == [("1", "2"), ("2", "2")]
    assert len(re.findall(r"^train Loss: \d+\.\d{4} Acc: \d\.\d{4}$", out, flags=re.M)) == 2
    assert len(re.findall(r"^val Loss: \d+\.\d{4} Acc: \d\.\d{4}$", out, flags=re.M)) == 2
    meta = json.loads((model_dir / "model_meta.json").read_text())
    assert meta["class_names"] == ["bengal", "other", "persian"]
    assert meta["best_epoch"] in (1, 2) and len(meta["history"]) == 2
    assert set(meta["history"][0]) == {"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds"}
    assert meta["hyperparameters"]["epochs"] == 2 and meta["dataset_hash"].startswith("sha256:")
    assert {"torch", "torchvision"} <= set(meta["library_versions"])

    # SageMaker hands evaluation the model as model.tar.gz
    packed = tmp_path / "packed"
    packed.mkdir()
    with tarfile.open(packed / "model.tar.gz", "w:gz") as tar:
        for f in model_dir.iterdir():
            tar.add(f, arcname=f.name)
    out_dir = tmp_path / "evaluation"
    assert (
        evaluation.main(
            ["--model-dir", str(packed), "--test-dir", str(cats_sample / "test"), "--output-dir", str(out_dir)]
        )
        == 0
    )
    report = validate_evaluation_report(json.loads((out_dir / "evaluation.json").read_text()))
    assert report["num_images"] == 6 and report["model"]["best_epoch"] == meta["best_epoch"]
    assert report["model"]["dataset_hash"] == meta["dataset_hash"]
    assert (out_dir / "confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out_dir / "misclassified.json").read_text()) == report["misclassified"]
    for item in report["misclassified"]:
        assert (cats_sample / "test" / item["path"]).exists() and item["path"].split("/")[0] == item["true"]
    # every test image's prediction, in the order scored (class folders, then file names)
    paths = [p["path"] for p in report["predictions"]]
    assert paths == [f"{c}/{f.name}" for c in meta["class_names"] for f in sorted((cats_sample / "test" / c).iterdir())]
    assert [p for p in report["predictions"] if p["true"] != p["predicted"]] == report["misclassified"]


def dry_run_model(image_splits, tmp_path):
    """A model dir from a one-batch fine-tuning dry run (the quickest real train.py output)."""
    model_dir = tmp_path / "model"
    args = ["--data-dir", str(image_splits), "--model-dir", str(model_dir), "--dry-run", "true"]
    assert train.main([*args, "--freeze-epochs", "0", *FAST]) == 0
    return model_dir


def evaluate(model_dir, image_splits, output_dir):
    """evaluation.py on the test split of ``image_splits``; its exit status."""
    args = ["--model-dir", str(model_dir), "--test-dir", str(image_splits / "test"), "--output-dir", str(output_dir)]
    return evaluation.main(args)


def test_dry_run_and_extracted_model_dir(image_splits, tmp_path, capsys):
    model_dir = dry_run_model(image_splits, tmp_path)
    assert "Epoch 1/1" in capsys.readouterr().out
    assert evaluate(model_dir, image_splits, tmp_path / "ev") == 0


def test_augment_batch_shapes_and_determinism():
    import torch

    images = torch.rand(4, 3, 73, 73)
    a = image_data.augment_batch(images, 64, torch.Generator().manual_seed(1))
    b = image_data.augment_batch(images, 64, torch.Generator().manual_seed(1))
    assert a.shape == (4, 3, 64, 64) and torch.equal(a, b)


# ---------------------------------------------------------------- bad input


def _huge_png(path: Path, width: int, height: int) -> None:
    """A PNG whose header claims width x height (never decoded: the size check comes first)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


def _corrupt(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


BAD_INPUTS = {
    "zero-byte": (lambda d: (d / "train/bengal/empty.jpg").write_bytes(b""), "empty.jpg: empty file (0 bytes)"),
    "truncated": (lambda d: _corrupt(d / "train/bengal/img0.jpg"), "img0.jpg: cannot decode image"),
    "not-an-image": (lambda d: (d / "train/other/notes.jpg").write_text("hello"), "notes.jpg: not a readable image"),
    "wrong-extension": (lambda d: (d / "val/other/readme.txt").write_text("x"), "readme.txt: not an image file"),
    "empty-class": (lambda d: [p.unlink() for p in (d / "val/persian").iterdir()], "class folder has no images"),
    "class-mismatch": (lambda d: make_image_folder(d / "val", classes=("siamese",)), "only in val: ['siamese']"),
    "huge": (lambda d: _huge_png(d / "train/other/huge.png", 12000, 10000), "huge.png: image too large"),
    "bomb": (lambda d: _huge_png(d / "train/other/bomb.png", 30000, 30000), "bomb.png: image too large"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_train_bad_input_one_line_error_exit_2(case, image_splits, tmp_path, capsys):
    damage, expected = BAD_INPUTS[case]
    damage(image_splits)
    failure = tmp_path / "failure"
    code = train.main(
        ["--data-dir", str(image_splits), "--model-dir", str(tmp_path / "m"), "--failure-file", str(failure), *FAST]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and expected in err and "Traceback" not in err
    assert err.count("\n") == 1
    assert failure.read_text().strip() == err.strip()


def test_num_classes_mismatch(image_splits, tmp_path, capsys):
    assert (
        train.main(["--data-dir", str(image_splits), "--model-dir", str(tmp_path / "m"), "--num-classes", "2", *FAST])
        == 2
    )
    assert "--num-classes 2 does not match the 3 class folders" in capsys.readouterr().err


def test_missing_pretrained_weights_fail_at_once_with_instructions(image_splits, tmp_path, monkeypatch, capsys):
    import torch

    def offline(*_args, **_kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "empty-hub"))
    code = train.main(
        ["--data-dir", str(image_splits), "--model-dir", str(tmp_path / "m"), "--arch", "resnet18", *FAST]
    )
    err = capsys.readouterr().err
    assert code == 2 and "cannot download resnet18" in err and "--weights PATH" in err
    assert "--arch efficientnet_lite0" in err
    assert (
        train.main(
            [
                "--data-dir",
                str(image_splits),
                "--model-dir",
                str(tmp_path / "m"),
                "--weights",
                str(tmp_path / "nope.pth"),
                *FAST,
            ]
        )
        == 2
    )
    assert "nope.pth: weights file not found" in capsys.readouterr().err


@pytest.mark.parametrize("mode", ["L", "CMYK", "RGBA", "P", "I;16"])
def test_unusual_image_modes_become_rgb(mode, tmp_path):
    from PIL import Image

    path = tmp_path / ("x.png" if mode in ("RGBA", "P", "I;16", "L") else "x.jpg")
    Image.new(mode, (50, 30)).save(path)
    tensor = image_data.decode_image(path.read_bytes(), str(path), 20)
    assert tuple(tensor.shape) == (3, 20, 20)


def test_evaluation_bad_inputs(image_splits, tmp_path, capsys):
    model_dir = dry_run_model(image_splits, tmp_path)
    capsys.readouterr()
    base = ["--model-dir", str(model_dir), "--output-dir", str(tmp_path / "ev")]
    make_image_folder(image_splits / "test", classes=("siamese",))
    assert evaluation.main([*base, "--test-dir", str(image_splits / "test")]) == 2
    assert "only in test: ['siamese']" in capsys.readouterr().err
    assert (
        evaluation.main(
            [
                "--model-dir",
                str(tmp_path),
                "--test-dir",
                str(image_splits / "val"),
                "--output-dir",
                str(tmp_path / "ev"),
            ]
        )
        == 2
    )
    assert "no model.tar.gz or model.pth found" in capsys.readouterr().err
    (model_dir / "model.pth").write_bytes(b"garbage")
    assert evaluation.main([*base, "--test-dir", str(image_splits / "val")]) == 2
    assert "model.pth: does not match" in capsys.readouterr().err


# ---------------------------------------------------------------- recipe options


def test_fit_on_train_val_keeps_last_epoch_and_tta_round_trip(image_splits, tmp_path, capsys):
    model_dir = tmp_path / "model"
    argv = ["--data-dir", str(image_splits), "--model-dir", str(model_dir), "--epochs", "3", *FAST]
    assert train.main([*argv, "--freeze-epochs", "2"]) == 0
    out = capsys.readouterr().out
    assert "fitting on train+val (12 images)" in out and "last epoch 3:" in out
    assert len(re.findall(r"^val Loss: \d+\.\d{4} Acc: \d\.\d{4}$", out, flags=re.M)) == 3
    meta = json.loads((model_dir / "model_meta.json").read_text())
    assert meta["best_epoch"] == 3 and meta["fit_on"] == "train+val" and meta["tta"] is True
    assert meta["num_images"] == {"train": 6, "val": 6, "fitted": 12}
    assert meta["hyperparameters"]["fit-on"] == "train+val" and meta["hyperparameters"]["tta"] is True
    assert evaluate(model_dir, image_splits, tmp_path / "ev") == 0
    assert train.main([*argv, "--fit-on", "train", "--tta", "false", "--model-dir", str(tmp_path / "m2")]) == 0
    out = capsys.readouterr().out
    assert "fitting on train+val" not in out and re.search(r"^best epoch [123]:", out, flags=re.M)
    assert json.loads((tmp_path / "m2" / "model_meta.json").read_text())["num_images"]["fitted"] == 6


def test_scoring_averages_the_probabilities_of_the_views():
    import torch
    from head import probabilities

    head = torch.nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        head.weight.copy_(torch.eye(2))
    views = torch.tensor([[[2.0, 0.0]], [[0.0, 2.0]]])  # (views, N, D): a view and its "mirror"
    assert torch.allclose(probabilities(head, views), torch.tensor([[0.5, 0.5]]))
    assert torch.allclose(probabilities(head, views[:1]), views[0].softmax(1))


@pytest.mark.parametrize("arch", ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"])
def test_lite_variants_match_their_offline_weights(arch):
    from backbones import build_model, default_weights_path

    if default_weights_path(arch) is None:
        pytest.skip(f"{arch} weights package not installed")
    model = build_model(arch, 3, pretrained=True)  # strict key / shape check inside
    assert model._fc.out_features == 3
