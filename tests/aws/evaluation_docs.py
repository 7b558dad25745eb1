"""Valid evaluation.json documents for tests, built with the schema module itself."""

from __future__ import annotations

from typing import Any

from nyanops.core.evaluation_report import build_evaluation_report

CLASSES = ("bengal", "siamese")


def evaluation_doc(macro_f1: float = 0.9, classes: tuple[str, ...] = CLASSES, dataset_hash: str | None = None,
                   hyperparameters: dict[str, Any] | None = None) -> dict[str, Any]:
    """A schema-v1 report whose headline metrics are ``macro_f1`` (the matrix is a fixed small one)."""
    n = len(classes)
    # Two images per class, all right except one bengal taken for the next class.
    matrix = [[2 if i == j else 0 for j in range(n)] for i in range(n)]
    matrix[0][0], matrix[0][1] = 1, 1
    per_class = {
        c: {"precision": macro_f1, "recall": macro_f1, "f1": macro_f1, "support": 2} for c in classes
    }
    return build_evaluation_report(
        class_names=classes,
        metrics={"accuracy": macro_f1, "macro_precision": macro_f1, "macro_recall": macro_f1, "macro_f1": macro_f1,
                 "weighted_f1": macro_f1},
        per_class=per_class,
        confusion_matrix=matrix,
        misclassified=[{"path": f"{classes[0]}/000.jpg", "true": classes[0], "predicted": classes[1],
                        "confidence": 0.75}],
        model_meta={"arch": "efficientnet_lite0", "best_epoch": 3,
                    "history": [{"epoch": 1, "train_loss": 0.7, "train_acc": 0.5, "val_loss": 0.6, "val_acc": 0.6,
                                 "seconds": 1.0}],
                    "hyperparameters": hyperparameters or {"epochs": 10, "batch-size": 8},
                    "dataset_hash": dataset_hash},
        created_at="2026-11-28T07:00:00Z",
    )
