"""Evaluate a trained model on a test ImageFolder, under the SageMaker processing contract.

Inputs: --model-dir (default /opt/ml/processing/model) holding model.tar.gz or the extracted
model.pth + model_meta.json written by train.py; --test-dir (default /opt/ml/processing/test), an
ImageFolder root ``<class>/<image>`` with exactly the model's classes. Output in --output-dir (default
/opt/ml/processing/evaluation): ``evaluation.json`` (schema in evaluation_report.py),
``confusion_matrix.png`` and ``misclassified.json`` (the same list as in evaluation.json).

The model is rebuilt from model_meta.json (architecture, classes, image size, normalization) and
model.pth alone: no pretrained weights and no network are needed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tarfile
import tempfile
import time
from collections.abc import Sequence

import numpy as np
import torch
from backbones import ARCHITECTURES, build_model
from evaluation_report import CONFUSION_MATRIX_PNG, build_evaluation_report
from image_data import check_same_classes, find_classes, load_image_set
from job_contract import InputError, bounded, run_job
from train import META_FILE, WEIGHTS_FILE, predict_logits, select_device

MODEL_ARCHIVE = "model.tar.gz"
MISCLASSIFIED_JSON = "misclassified.json"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Evaluate a model trained by train.py on a test ImageFolder.")
    p.add_argument("--model-dir", default="/opt/ml/processing/model", help="model.tar.gz or model.pth + meta")
    p.add_argument("--test-dir", default="/opt/ml/processing/test", help="ImageFolder root of the test split")
    p.add_argument("--output-dir", default="/opt/ml/processing/evaluation")
    p.add_argument("--batch-size", type=bounded(int, 1, 1024), default=64, metavar="N")
    p.add_argument("--workers", type=bounded(int, 0, 64), default=0, help="decoding threads; 0 = CPU count")
    p.add_argument("--num-gpus", type=bounded(int, 0, 64), default=None, help="0 = CPU even if a GPU exists")
    p.add_argument("--failure-file", default=None, help="where to write the one-line failure reason")
    return p.parse_args(argv)


def compute_metrics(y_true: Sequence[int], y_pred: Sequence[int], class_names: Sequence[str]) -> dict:
    """Accuracy, macro / weighted scores, per-class scores and the confusion matrix (rows = true)."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

    labels = list(range(len(class_names)))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average=None, zero_division=0
    )
    macro_p, macro_r, macro_f1, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average="macro", zero_division=0
    )
    return {
        "metrics": {
            "accuracy": float(accuracy_score(y_true, y_pred)),
            "macro_precision": float(macro_p),
            "macro_recall": float(macro_r),
            "macro_f1": float(macro_f1),
            "weighted_f1": float(f1_score(y_true, y_pred, labels=labels, average="weighted", zero_division=0)),
        },
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(class_names)
        },
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def list_misclassified(paths, y_true, y_pred, confidence, class_names) -> list[dict]:
    """Every wrong prediction: path relative to the test dir, true / predicted class, its probability."""
    return [
        {"path": path, "true": class_names[t], "predicted": class_names[p], "confidence": round(float(c), 6)}
        for path, t, p, c in zip(paths, y_true, y_pred, confidence, strict=True)
        if t != p
    ]


def render_confusion_matrix(matrix, class_names, path: str, title: str = "") -> None:
    """PNG of the confusion matrix with counts (rows = true, columns = predicted)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(matrix)
    size = max(4.0, 1.1 * len(class_names) + 2)
    fig, ax = plt.subplots(figsize=(size, size * 0.85), dpi=100)
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title)
    threshold = cm.max() / 2 if cm.size else 0
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", color="white" if cm[i, j] > threshold else "black")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def locate_model(model_dir: str, scratch: str) -> str:
    """The folder holding model.pth + model_meta.json: ``model_dir`` itself or its extracted model.tar.gz."""
    if os.path.isfile(model_dir) and model_dir.endswith(".tar.gz"):
        archive = model_dir
    elif os.path.isfile(os.path.join(model_dir, WEIGHTS_FILE)):
        return model_dir
    elif os.path.isfile(os.path.join(model_dir, MODEL_ARCHIVE)):
        archive = os.path.join(model_dir, MODEL_ARCHIVE)
    else:
        raise InputError(
            f"{model_dir}: no {MODEL_ARCHIVE} or {WEIGHTS_FILE} found; point --model-dir at train.py's model output"
        )
    try:
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(scratch, filter="data")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise InputError(f"{archive}: cannot extract ({exc}); the model archive is damaged, rerun training") from None
    for folder, _, files in os.walk(scratch):
        if WEIGHTS_FILE in files:
            return folder
    raise InputError(f"{archive}: contains no {WEIGHTS_FILE}; it was not written by train.py")


def load_trained_model(folder: str) -> tuple[torch.nn.Module, dict]:
    """Rebuild the network from model_meta.json and load model.pth (CPU)."""
    meta_path = os.path.join(folder, META_FILE)
    try:
        with open(meta_path, encoding="utf-8") as fh:
            meta = json.load(fh)
    except FileNotFoundError:
        raise InputError(f"{meta_path}: missing; train.py writes it next to {WEIGHTS_FILE}") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{meta_path}: not valid JSON ({exc})") from None
    for key in ("arch", "class_names", "image_size", "normalization"):
        if key not in meta:
            raise InputError(f"{meta_path}: field {key!r} missing; retrain with the current train.py")
    if meta["arch"] not in ARCHITECTURES:
        raise InputError(f"{meta_path}: unknown arch {meta['arch']!r}; expected one of {', '.join(ARCHITECTURES)}")
    model = build_model(meta["arch"], len(meta["class_names"]), pretrained=False)
    weights_path = os.path.join(folder, WEIGHTS_FILE)
    try:
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except Exception as exc:
        raise InputError(
            f"{weights_path}: does not match {meta['arch']} in {META_FILE} ({' '.join(str(exc).split())[:200]})"
        ) from None
    model.eval()
    return model, meta


def run(args: argparse.Namespace) -> dict:
    """Evaluate and write evaluation.json, confusion_matrix.png, misclassified.json; return the report."""
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        model, meta = load_trained_model(locate_model(args.model_dir, scratch))
    class_names = meta["class_names"]
    test_classes = find_classes(args.test_dir, "test")
    check_same_classes({"model": class_names, "test": test_classes})
    device = select_device(args.num_gpus)
    model.to(device, memory_format=torch.channels_last)

    t0 = time.perf_counter()
    side = int(meta.get("stored_size") or meta["image_size"])
    test_set = load_image_set(args.test_dir, class_names, side, args.workers)
    load_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    logits = predict_logits(
        model,
        test_set,
        image_size=meta["image_size"],
        norm=meta["normalization"],
        device=device,
        batch_size=args.batch_size,
        tta=bool(meta.get("tta", False)),
    )
    predict_seconds = time.perf_counter() - t0
    probabilities = logits.softmax(dim=1)
    confidence, predicted = probabilities.max(dim=1)
    y_true, y_pred = test_set.labels.tolist(), predicted.tolist()

    scores = compute_metrics(y_true, y_pred, class_names)
    os.makedirs(args.output_dir, exist_ok=True)
    misclassified = list_misclassified(test_set.paths, y_true, y_pred, confidence.tolist(), class_names)
    render_confusion_matrix(
        scores["confusion_matrix"],
        class_names,
        os.path.join(args.output_dir, CONFUSION_MATRIX_PNG),
        title=f"{meta['arch']} - macro F1 {scores['metrics']['macro_f1']:.3f}",
    )
    report = build_evaluation_report(
        class_names=class_names,
        metrics=scores["metrics"],
        per_class=scores["per_class"],
        confusion_matrix=scores["confusion_matrix"],
        misclassified=misclassified,
        model_meta=meta,
        extra_artifacts={"misclassified_json": MISCLASSIFIED_JSON},
        test_dataset_hash="sha256:" + test_set.content_hash,
        timings={
            "load_seconds": load_seconds,
            "predict_seconds": predict_seconds,
            "total_seconds": time.perf_counter() - t_start,
            "images_per_second": len(test_set) / max(load_seconds + predict_seconds, 1e-9),
        },
    )
    with open(os.path.join(args.output_dir, "evaluation.json"), "w", encoding="utf-8") as fh:
        json.dump(report, fh, indent=2)
    with open(os.path.join(args.output_dir, MISCLASSIFIED_JSON), "w", encoding="utf-8") as fh:
        json.dump(misclassified, fh, indent=2)
    m = report["metrics"]
    print(
        f"test images: {len(test_set)}  accuracy: {m['accuracy']:.4f}  macro_f1: {m['macro_f1']:.4f}  "
        f"macro_precision: {m['macro_precision']:.4f}  macro_recall: {m['macro_recall']:.4f}  "
        f"misclassified: {len(misclassified)}",
        flush=True,
    )
    return report


def main(argv: Sequence[str] | None = None) -> int:
    return run_job(run, parse_args, argv)


if __name__ == "__main__":
    sys.exit(main())
