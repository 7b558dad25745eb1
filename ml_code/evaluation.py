"""Evaluate a trained model on a test ImageFolder, under the SageMaker processing contract.

Inputs: --model-dir (default /opt/ml/processing/model) holding model.tar.gz or the extracted
model.pth + model_meta.json written by train.py; --test-dir (default /opt/ml/processing/test), an
ImageFolder root ``<class>/<image>`` with exactly the model's classes. Output in --output-dir (default
/opt/ml/processing/evaluation): ``evaluation.json`` (schema in evaluation_report.py),
``confusion_matrix.png`` and ``misclassified.json`` (the same list as in evaluation.json). evaluation.json
lists every test image's prediction (``predictions``: path, true and predicted class, confidence), which
``nyanops predict`` reproduces for the same photos.

The model is loaded and scored by inference.py (rebuilt from model_meta.json and model.pth alone: no
pretrained weights, no network; the same views as in training). Progress lines (job_progress.py) report
decoding and scoring. A failure's one-line reason goes to /opt/ml/output/message, which a processing job
returns as DescribeProcessingJob's ExitMessage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence

import numpy as np
from evaluation_report import CONFUSION_MATRIX_PNG, build_evaluation_report
from image_data import check_same_classes, decode_split, find_classes, scan_split, verify_split
from inference import Predictor, select_device
from job_contract import PROCESSING_REASON_FILE, bounded, run_job
from job_progress import Progress

MISCLASSIFIED_JSON = "misclassified.json"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Evaluate a model trained by train.py on a test ImageFolder.")
    p.add_argument("--model-dir", default="/opt/ml/processing/model", help="model.tar.gz or model.pth + meta")
    p.add_argument("--test-dir", default="/opt/ml/processing/test", help="ImageFolder root of the test split")
    p.add_argument("--output-dir", default="/opt/ml/processing/evaluation")
    p.add_argument(
        "--batch-size",
        type=bounded(int, 1, 1024),
        default=16,
        metavar="N",
        help="images per scoring batch (a progress line per batch; larger batches need more memory)",
    )
    p.add_argument("--workers", type=bounded(int, 0, 64), default=0, help="decoding threads; 0 = CPU count")
    p.add_argument("--num-gpus", type=bounded(int, 0, 64), default=None, help="0 = CPU even if a GPU exists")
    p.add_argument(
        "--expected-test-hash",
        default="",
        metavar="HEX",
        help="content hash the test split was sealed with; a mismatch fails the job (empty = no check)",
    )
    p.add_argument(
        "--failure-file",
        default=None,
        help="where to write the one-line failure reason (default: SM_OUTPUT_DIR/message, or "
        "/opt/ml/output/message in a container: DescribeProcessingJob's ExitMessage)",
    )
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


def list_predictions(paths, y_true, y_pred, confidence, class_names) -> list[dict]:
    """Every test image in scoring order: path relative to the test dir, true / predicted class, the
    predicted class's probability (6 decimals: what ``nyanops predict`` prints for the same photo)."""
    return [
        {"path": path, "true": class_names[t], "predicted": class_names[p], "confidence": round(float(c), 6)}
        for path, t, p, c in zip(paths, y_true, y_pred, confidence, strict=True)
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


def run(args: argparse.Namespace) -> dict:
    """Evaluate and write evaluation.json, confusion_matrix.png, misclassified.json; return the report."""
    t_start = time.perf_counter()
    predictor = Predictor.load(args.model_dir, select_device(args.num_gpus))
    meta, class_names = predictor.meta, predictor.class_names
    test_classes = find_classes(args.test_dir, "test")
    check_same_classes({"model": class_names, "test": test_classes})

    t0 = time.perf_counter()
    files = scan_split(args.test_dir, class_names, args.workers)
    verify_split(files, "test", args.expected_test_hash)
    test_set = decode_split(files, predictor.stored_size, args.workers, Progress("decode", len(files)).advance)
    load_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    probabilities = predictor.predict(test_set.images, args.batch_size, Progress("scoring", len(test_set)).advance)
    predict_seconds = time.perf_counter() - t0
    confidence, predicted = probabilities.max(dim=1)
    y_true, y_pred = test_set.labels.tolist(), predicted.tolist()

    scores = compute_metrics(y_true, y_pred, class_names)
    os.makedirs(args.output_dir, exist_ok=True)
    predictions = list_predictions(test_set.paths, y_true, y_pred, confidence.tolist(), class_names)
    misclassified = [p for p in predictions if p["true"] != p["predicted"]]
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
        predictions=predictions,
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
    return run_job(run, parse_args, argv, reason_file=PROCESSING_REASON_FILE)


if __name__ == "__main__":
    sys.exit(main())
