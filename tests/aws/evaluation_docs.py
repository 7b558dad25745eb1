"""Valid evaluation.json documents for tests, built with the schema module itself.

A report's figures must follow from its confusion matrix (RecordResults recomputes them), so a test
chooses the matrix, not the score: ``wrong`` images of ``support`` per class are misclassified, one
class after the other. ``score(wrong, ...)`` is the primary metric that gives, for assertions.
"""

from __future__ import annotations

from typing import Any

from nyanops.core.evaluation_report import build_evaluation_report, metrics_from_confusion

CLASSES = ("bengal", "siamese")


def confusion(wrong: int, classes: tuple[str, ...] = CLASSES, support: int = 2) -> list[list[int]]:
    """``support`` test images per class, ``wrong`` of them taken for the next class (class 0 first)."""
    n = len(classes)
    if not 0 <= wrong <= n * support:
        raise ValueError(f"cannot misclassify {wrong} of {n * support} images")
    matrix = [[support if i == j else 0 for j in range(n)] for i in range(n)]
    for k in range(wrong):
        row = k % n
        matrix[row][row] -= 1
        matrix[row][(row + 1) % n] += 1
    return matrix


def score(wrong: int, classes: tuple[str, ...] = CLASSES, support: int = 2, metric: str = "macro_f1") -> float:
    metrics, _ = metrics_from_confusion(confusion(wrong, classes, support))
    return metrics[metric]


def evaluation_doc(
    wrong: int = 1,
    classes: tuple[str, ...] = CLASSES,
    support: int = 2,
    *,
    job: dict[str, str] | None = None,
    dataset_hash: str | None = None,
    hyperparameters: dict[str, Any] | None = None,
    predictions: bool = True,
) -> dict[str, Any]:
    """A schema-v1 report of ``len(classes) * support`` test images with ``wrong`` of them misclassified
    (and, unless ``predictions`` is false, every image's prediction as evaluation.py writes it)."""
    matrix = confusion(wrong, classes, support)
    metrics, per_class = metrics_from_confusion(matrix)
    every = [  # photo m of class i, named whatever it was taken for; right ones first
        {"path": f"{classes[i]}/{i:03d}-{m:03d}.jpg", "true": classes[i], "predicted": classes[j],
         "confidence": 0.9 if i == j else 0.75}
        for i, row in enumerate(matrix)
        for m, j in enumerate(sorted((j for j, count in enumerate(row) for _ in range(count)), key=lambda j: j != i))
    ]
    missed = [p for p in every if p["true"] != p["predicted"]]
    return build_evaluation_report(
        class_names=classes,
        metrics=metrics,
        per_class={c: per_class[i] for i, c in enumerate(classes)},
        confusion_matrix=matrix,
        misclassified=missed,
        model_meta={"arch": "efficientnet_lite0", "best_epoch": 3,
                    "history": [{"epoch": 1, "train_loss": 0.7, "train_acc": 0.5, "val_loss": 0.6, "val_acc": 0.6,
                                 "seconds": 1.0}],
                    "hyperparameters": hyperparameters or {"epochs": 10, "batch-size": 8},
                    "dataset_hash": dataset_hash},
        created_at="2026-11-28T07:00:00Z",
        job=job,
        predictions=every if predictions else None,
    )


def job_identity(execution: str, job_name: str | None = None) -> dict[str, str]:
    """The ``job`` block the state machine's environment gives an evaluation of ``execution``."""
    return {"execution": execution, "processing_job": job_name or f"{execution}-eval"}
