"""evaluation.json: the document ml_code/evaluation.py writes and RecordResults reads (schema v1).

Standard library only, Python >= 3.10: imported by a Lambda and copied into the SageMaker code bundle
(ml_code/evaluation_report.py is a symlink to this file). ``build_evaluation_report`` assembles the
document and validates it, ``validate_evaluation_report`` checks one that was read back, so the writer
and the reader cannot drift.

Fields (all required unless marked optional):

``schema_version``  int, always ``SCHEMA_VERSION`` (1). Readers refuse other versions.
``created_at``      str, ISO-8601 UTC timestamp of the evaluation, e.g. ``2026-11-28T06:43:00Z``.
``class_names``     list[str], non-empty, unique; class index order of the model (index i = output i).
``metrics``         dict of floats in [0, 1] over the whole test set:
                    ``accuracy``; ``macro_precision``, ``macro_recall``, ``macro_f1`` (unweighted mean over
                    classes); ``weighted_f1`` (mean weighted by support). Undefined ratios count as 0.
``per_class``       dict class name -> {``precision``, ``recall``, ``f1``: float in [0, 1],
                    ``support``: int >= 0 (true images of that class)}; keys = ``class_names``.
``confusion_matrix`` {``labels``: list[str] = ``class_names``, ``matrix``: list[list[int]]}, square,
                    rows = true class, columns = predicted class, in ``labels`` order; the sum of all
                    cells = ``num_images``, the sum of row i = support of class i.
``misclassified``   list of {``path``: str (relative to the test folder, ``<class>/<file>``),
                    ``true``: str, ``predicted``: str (both in ``class_names``, different),
                    ``confidence``: float in [0, 1] (softmax probability of ``predicted``)}.
``predictions``     optional, list of {``path``, ``true``, ``predicted``, ``confidence``} as in ``misclassified``,
                    one per test image (right or wrong), in the order the images were scored; ``path``s unique,
                    each under its true class's folder (``<true>/...``); ``confidence`` is at least
                    1 / len(``class_names``) (the largest of the class probabilities). About 100 bytes an
                    image, no per-class probabilities: 50,000 test images of 1,000 classes stay near 5 MB.
                    When present it must agree with everything else: one entry per image (``num_images``), the
                    confusion matrix recounted from it equals ``confusion_matrix.matrix`` (so each class's
                    images equal its ``support``), and ``misclassified`` is exactly its wrong entries.
``num_images``      int >= 1, images evaluated.
``model``           {``arch``: str, ``best_epoch``: int >= 0 (1-based epoch whose weights were kept; 0 if
                    unknown), ``history``: list of per-epoch dicts as written by train.py ({epoch,
                    train_loss, train_acc, val_loss, val_acc, seconds}), ``hyperparameters``: dict (resolved
                    training hyperparameters), ``dataset_hash``: str or null (content hash of the training
                    data)}; optional extra keys: ``best_val_acc`` (float), ``library_versions`` (dict).
``artifacts``       {``confusion_matrix_png``: str, file name of the confusion-matrix image next to
                    evaluation.json}; optional: ``misclassified_json``.
``test_dataset_hash`` optional, str or null: content hash of the test images.
``timings``         optional, dict str -> float seconds (e.g. ``load``, ``predict``, ``total``).
``job``             optional, {``execution``: str, ``processing_job``: str}: the execution and the processing
                    job that wrote the report (``build_evaluation_report`` fills it from the job's environment,
                    ``NYANOPS_EXECUTION`` / ``NYANOPS_PROCESSING_JOB``, which the state machine sets).
                    RecordResults requires it and checks it against the job it started.

The figures must agree with the confusion matrix: ``metrics`` and every ``per_class`` precision, recall and
F1 are recomputed from it (``metrics_from_confusion``, the definitions of scikit-learn with
``zero_division=0``) and must match within ``METRIC_TOLERANCE``; a report claiming figures its matrix does
not give is refused. ``check_against_dataset`` (RecordResults) adds what only the run knows: the class names
are the dataset's classes, and each class's support is its number of test images.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

SCHEMA_VERSION = 1
METRIC_NAMES = ("accuracy", "macro_precision", "macro_recall", "macro_f1", "weighted_f1")
PER_CLASS_FIELDS = ("precision", "recall", "f1")
CONFUSION_MATRIX_PNG = "confusion_matrix.png"
# Recomputed figures may differ from the written ones by float rounding only.
METRIC_TOLERANCE = 1e-6
# The job identity the state machine passes to the processing job's environment.
ENV_EXECUTION = "NYANOPS_EXECUTION"
ENV_PROCESSING_JOB = "NYANOPS_PROCESSING_JOB"


class EvaluationReportError(ValueError):
    """An evaluation report does not follow the schema; the message starts with the field path."""

    def __init__(self, path: str, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


def _require(doc: Mapping[str, Any], key: str, kind: Any, path: str) -> Any:
    if not isinstance(doc, Mapping):
        raise EvaluationReportError(path or "$", "must be an object")
    field = f"{path}.{key}" if path else key
    if key not in doc:
        raise EvaluationReportError(field, "missing")
    value = doc[key]
    _check_type(value, kind, field)
    return value


def _check_type(value: Any, kind: Any, field: str) -> None:
    if kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        name = "a finite number"
    elif kind is int:
        ok, name = isinstance(value, int) and not isinstance(value, bool), "an integer"
    else:
        ok, name = isinstance(value, kind), {str: "a string", list: "a list", dict: "an object"}.get(kind, str(kind))
    if not ok:
        raise EvaluationReportError(field, f"must be {name}, got {type(value).__name__}")


def _unit(value: Any, field: str) -> float:
    _check_type(value, float, field)
    if not 0.0 <= value <= 1.0:
        raise EvaluationReportError(field, f"must be in [0, 1], got {value}")
    return float(value)


def _class_list(value: Any, field: str) -> list[str]:
    _check_type(value, list, field)
    if not value:
        raise EvaluationReportError(field, "must not be empty")
    for i, name in enumerate(value):
        _check_type(name, str, f"{field}[{i}]")
    if len(set(value)) != len(value):
        raise EvaluationReportError(field, "class names must be unique")
    return list(value)


def validate_evaluation_report(doc: dict[str, Any]) -> dict[str, Any]:
    """Return ``doc`` unchanged if it follows schema v1; raise EvaluationReportError naming the field."""
    if not isinstance(doc, Mapping):
        raise EvaluationReportError("$", "must be an object")
    version = _require(doc, "schema_version", int, "")
    if version != SCHEMA_VERSION:
        raise EvaluationReportError("schema_version", f"unsupported version {version}, expected {SCHEMA_VERSION}")
    created = _require(doc, "created_at", str, "")
    try:
        _dt.datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        raise EvaluationReportError("created_at", f"not an ISO-8601 timestamp: {created!r}") from None
    classes = _class_list(_require(doc, "class_names", list, ""), "class_names")
    n_images = _require(doc, "num_images", int, "")
    if n_images < 1:
        raise EvaluationReportError("num_images", f"must be >= 1, got {n_images}")

    metrics = _require(doc, "metrics", dict, "")
    for name in METRIC_NAMES:
        _unit(_require(metrics, name, float, "metrics"), f"metrics.{name}")

    per_class = _require(doc, "per_class", dict, "")
    if sorted(per_class) != sorted(classes):
        raise EvaluationReportError("per_class", f"keys {sorted(per_class)} do not match class_names {sorted(classes)}")
    for name in classes:
        entry = _require(per_class, name, dict, "per_class")
        for field in PER_CLASS_FIELDS:
            _unit(_require(entry, field, float, f"per_class.{name}"), f"per_class.{name}.{field}")
        support = _require(entry, "support", int, f"per_class.{name}")
        if support < 0:
            raise EvaluationReportError(f"per_class.{name}.support", f"must be >= 0, got {support}")

    cm = _require(doc, "confusion_matrix", dict, "")
    labels = _class_list(_require(cm, "labels", list, "confusion_matrix"), "confusion_matrix.labels")
    if labels != classes:
        raise EvaluationReportError("confusion_matrix.labels", f"{labels} differ from class_names {classes}")
    matrix = _require(cm, "matrix", list, "confusion_matrix")
    if len(matrix) != len(labels):
        raise EvaluationReportError(
            "confusion_matrix.matrix", f"must have {len(labels)} rows (one per label), got {len(matrix)}"
        )
    total = 0
    for i, row in enumerate(matrix):
        field = f"confusion_matrix.matrix[{i}]"
        _check_type(row, list, field)
        if len(row) != len(labels):
            raise EvaluationReportError(field, f"must have {len(labels)} columns (square matrix), got {len(row)}")
        for j, cell in enumerate(row):
            _check_type(cell, int, f"{field}[{j}]")
            if cell < 0:
                raise EvaluationReportError(f"{field}[{j}]", f"must be >= 0, got {cell}")
        if sum(row) != per_class[labels[i]]["support"]:
            raise EvaluationReportError(field, f"row sum {sum(row)} differs from per_class.{labels[i]}.support")
        total += sum(row)
    if total != n_images:
        raise EvaluationReportError("confusion_matrix.matrix", f"cells sum to {total}, num_images is {n_images}")

    _check_figures(doc, labels, matrix)

    missed = _require(doc, "misclassified", list, "")
    for i, item in enumerate(missed):
        field = f"misclassified[{i}]"
        _require(item, "path", str, field)
        true = _require(item, "true", str, field)
        predicted = _require(item, "predicted", str, field)
        for key, value in (("true", true), ("predicted", predicted)):
            if value not in classes:
                raise EvaluationReportError(f"{field}.{key}", f"{value!r} is not in class_names")
        if true == predicted:
            raise EvaluationReportError(field, "true and predicted are the same class")
        _unit(_require(item, "confidence", float, field), f"{field}.confidence")
    wrong = n_images - sum(matrix[i][i] for i in range(len(labels)))
    if wrong != len(missed):
        raise EvaluationReportError("misclassified", f"lists {len(missed)} images, the confusion matrix {wrong}")

    if "predictions" in doc:
        _check_predictions(doc, labels, matrix, missed)

    model = _require(doc, "model", dict, "")
    _require(model, "arch", str, "model")
    best_epoch = _require(model, "best_epoch", int, "model")
    if best_epoch < 0:
        raise EvaluationReportError("model.best_epoch", f"must be >= 0, got {best_epoch}")
    history = _require(model, "history", list, "model")
    for i, entry in enumerate(history):
        _check_type(entry, dict, f"model.history[{i}]")
    _require(model, "hyperparameters", dict, "model")
    if "dataset_hash" not in model:
        raise EvaluationReportError("model.dataset_hash", "missing")
    if model["dataset_hash"] is not None:
        _check_type(model["dataset_hash"], str, "model.dataset_hash")

    artifacts = _require(doc, "artifacts", dict, "")
    _require(artifacts, "confusion_matrix_png", str, "artifacts")
    if doc.get("test_dataset_hash") is not None:
        _check_type(doc["test_dataset_hash"], str, "test_dataset_hash")
    if "timings" in doc:
        timings = _require(doc, "timings", dict, "")
        for key, value in timings.items():
            _check_type(value, float, f"timings.{key}")
    if "job" in doc:
        job = _require(doc, "job", dict, "")
        for key in ("execution", "processing_job"):
            _require(job, key, str, "job")
    return doc


def _check_predictions(
    doc: Mapping[str, Any], labels: Sequence[str], matrix: Sequence[Sequence[int]], missed: Sequence[Mapping[str, Any]]
) -> None:
    """``predictions``: one valid entry per image that recounts to the confusion matrix and lists the same wrong
    images as ``misclassified`` (see the module docstring)."""
    predictions = _require(doc, "predictions", list, "")
    index = {name: i for i, name in enumerate(labels)}
    floor = 1.0 / len(labels) - METRIC_TOLERANCE
    counted = [[0] * len(labels) for _ in labels]
    by_path: dict[str, Mapping[str, Any]] = {}
    for i, item in enumerate(predictions):
        field = f"predictions[{i}]"
        path = _require(item, "path", str, field)
        true = _require(item, "true", str, field)
        predicted = _require(item, "predicted", str, field)
        for key, value in (("true", true), ("predicted", predicted)):
            if value not in index:
                raise EvaluationReportError(f"{field}.{key}", f"{value!r} is not in class_names")
        confidence = _unit(_require(item, "confidence", float, field), f"{field}.confidence")
        if confidence < floor:
            raise EvaluationReportError(
                f"{field}.confidence",
                f"{confidence} is below 1/{len(labels)}: the predicted class has the largest probability",
            )
        if path.split("/", 1)[0] != true:
            raise EvaluationReportError(f"{field}.path", f"{path!r} is not in the folder of its true class {true!r}")
        if path in by_path:
            raise EvaluationReportError(f"{field}.path", f"{path!r} is listed twice")
        by_path[path] = item
        counted[index[true]][index[predicted]] += 1
    n_images = doc["num_images"]
    if len(predictions) != n_images:
        raise EvaluationReportError("predictions", f"lists {len(predictions)} images, num_images is {n_images}")
    for i, name in enumerate(labels):
        support = doc["per_class"][name]["support"]
        if sum(counted[i]) != support:
            listed_here = sum(counted[i])
            raise EvaluationReportError(
                "predictions", f"lists {listed_here} images of class {name!r}, per_class.{name}.support is {support}"
            )
        if counted[i] == list(matrix[i]):
            continue
        for j, other in enumerate(labels):
            if counted[i][j] != matrix[i][j]:
                raise EvaluationReportError(
                    "predictions",
                    f"{counted[i][j]} images of {name!r} predicted as {other!r}, confusion_matrix.matrix[{i}][{j}] "
                    f"is {matrix[i][j]}: the matrix does not come from these predictions",
                )
    # Each wrong image once, as predicted: with the counts checked above, the two lists hold the same images.
    listed: set[str] = set()
    for i, item in enumerate(missed):
        path, prediction = item["path"], by_path.get(item["path"])
        if path in listed:
            raise EvaluationReportError(f"misclassified[{i}].path", f"{path!r} is listed twice")
        listed.add(path)
        if prediction is None:
            raise EvaluationReportError(f"misclassified[{i}].path", f"{path!r} is not in predictions")
        same = prediction["true"] == item["true"] and prediction["predicted"] == item["predicted"]
        if not same or abs(prediction["confidence"] - item["confidence"]) > METRIC_TOLERANCE:
            raise EvaluationReportError(f"misclassified[{i}]", f"{path!r} differs from its entry in predictions")


def metrics_from_confusion(matrix: Sequence[Sequence[int]]) -> tuple[dict[str, float], list[dict[str, float]]]:
    """The headline metrics and per-class precision / recall / F1 of a confusion matrix (rows = true).

    scikit-learn's definitions with ``zero_division=0``: precision = tp / (tp + fp), recall = tp / (tp + fn),
    F1 = 2 tp / (2 tp + fp + fn), each 0 when its denominator is 0; macro = unweighted mean over classes,
    weighted F1 = mean weighted by support; accuracy = correct / all.
    """
    n = len(matrix)
    total = sum(sum(row) for row in matrix)
    per_class = []
    for i in range(n):
        tp = matrix[i][i]
        support = sum(matrix[i])
        predicted = sum(matrix[r][i] for r in range(n))
        fp, fn = predicted - tp, support - tp
        per_class.append(
            {
                "precision": tp / predicted if predicted else 0.0,
                "recall": tp / support if support else 0.0,
                "f1": 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) else 0.0,
                "support": support,
            }
        )
    metrics = {
        "accuracy": sum(matrix[i][i] for i in range(n)) / total if total else 0.0,
        "macro_precision": sum(c["precision"] for c in per_class) / n if n else 0.0,
        "macro_recall": sum(c["recall"] for c in per_class) / n if n else 0.0,
        "macro_f1": sum(c["f1"] for c in per_class) / n if n else 0.0,
        "weighted_f1": sum(c["f1"] * c["support"] for c in per_class) / total if total else 0.0,
    }
    return metrics, per_class


def _check_figures(doc: Mapping[str, Any], labels: Sequence[str], matrix: Sequence[Sequence[int]]) -> None:
    metrics, per_class = metrics_from_confusion(matrix)
    for name in METRIC_NAMES:
        written = doc["metrics"][name]
        if abs(written - metrics[name]) > METRIC_TOLERANCE:
            raise EvaluationReportError(
                f"metrics.{name}",
                f"is {written} but the confusion matrix gives {metrics[name]:.6f}: the figures do not come from it",
            )
    for label, computed in zip(labels, per_class, strict=True):
        entry = doc["per_class"][label]
        for field in PER_CLASS_FIELDS:
            if abs(entry[field] - computed[field]) > METRIC_TOLERANCE:
                raise EvaluationReportError(
                    f"per_class.{label}.{field}",
                    f"is {entry[field]} but the confusion matrix gives {computed[field]:.6f}",
                )


def check_against_dataset(doc: Mapping[str, Any], classes: Sequence[str], test_counts: Mapping[str, int]) -> None:
    """The report is about this dataset's test split: its classes, and each class's number of test images."""
    if list(doc["class_names"]) != list(classes):
        given, expected = list(doc["class_names"]), list(classes)
        extra = sorted(set(given) - set(expected))[:5]
        missing = sorted(set(expected) - set(given))[:5]
        detail = f"not in the dataset: {extra}; missing: {missing}" if extra or missing else "in another order"
        raise EvaluationReportError(
            "class_names", f"{len(given)} classes that are not the dataset's {len(expected)} classes ({detail})"
        )
    for name in classes:
        support = doc["per_class"][name]["support"]
        expected_count = test_counts.get(name)
        if support != expected_count:
            raise EvaluationReportError(
                f"per_class.{name}.support",
                f"{support} test images, but the dataset's test split has {expected_count} for this class",
            )


def check_job(doc: Mapping[str, Any], execution: str, processing_job: str) -> None:
    """The report was written by ``processing_job`` of ``execution`` (the identity the state machine gave it)."""
    job = doc.get("job")
    if not isinstance(job, Mapping):
        raise EvaluationReportError(
            "job", "missing: the report does not say which execution and processing job wrote it"
        )
    for key, expected in (("execution", execution), ("processing_job", processing_job)):
        if job.get(key) != expected:
            raise EvaluationReportError(f"job.{key}", f"is {job.get(key)!r}, expected {expected!r}")


def job_from_environment(environ: Mapping[str, str] | None = None) -> dict[str, str] | None:
    """The job identity the state machine put in the processing job's environment, if any."""
    env = os.environ if environ is None else environ
    execution, job = env.get(ENV_EXECUTION), env.get(ENV_PROCESSING_JOB)
    if execution and job:
        return {"execution": execution, "processing_job": job}
    return None


def build_evaluation_report(
    *,
    class_names: Sequence[str],
    metrics: Mapping[str, float],
    per_class: Mapping[str, Mapping[str, Any]],
    confusion_matrix: Sequence[Sequence[int]],
    misclassified: Sequence[Mapping[str, Any]],
    model_meta: Mapping[str, Any],
    created_at: str | None = None,
    confusion_matrix_png: str = CONFUSION_MATRIX_PNG,
    extra_artifacts: Mapping[str, str] | None = None,
    test_dataset_hash: str | None = None,
    timings: Mapping[str, float] | None = None,
    job: Mapping[str, str] | None = None,
    predictions: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Assemble a schema-v1 report from plain values (numbers converted to int / float) and validate it.

    ``model_meta`` is the content of model_meta.json written by train.py (arch, best_epoch, history,
    hyperparameters, dataset_hash, best_val_acc, library_versions). ``job`` defaults to the identity in the
    environment (``job_from_environment``): inside a pipeline job, the report says which job wrote it.
    """
    classes = [str(c) for c in class_names]
    matrix = [[int(c) for c in row] for row in confusion_matrix]
    model: dict[str, Any] = {
        "arch": str(model_meta.get("arch", "")),
        "best_epoch": int(model_meta.get("best_epoch") or 0),
        "history": [dict(e) for e in model_meta.get("history", [])],
        "hyperparameters": dict(model_meta.get("hyperparameters", {})),
        "dataset_hash": model_meta.get("dataset_hash"),
    }
    for optional in ("best_val_acc", "library_versions"):
        if optional in model_meta:
            model[optional] = model_meta[optional]
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "created_at": created_at
        or _dt.datetime.now(_dt.timezone.utc)
        .replace(microsecond=0)
        .isoformat()
        .replace("+00:00", "Z"),
        "class_names": classes,
        "metrics": {name: float(metrics[name]) for name in METRIC_NAMES},
        "per_class": {
            name: {
                "precision": float(per_class[name]["precision"]),
                "recall": float(per_class[name]["recall"]),
                "f1": float(per_class[name]["f1"]),
                "support": int(per_class[name]["support"]),
            }
            for name in classes
        },
        "confusion_matrix": {"labels": list(classes), "matrix": matrix},
        "misclassified": [
            {
                "path": str(m["path"]),
                "true": str(m["true"]),
                "predicted": str(m["predicted"]),
                "confidence": float(m["confidence"]),
            }
            for m in misclassified
        ],
        "num_images": sum(sum(row) for row in matrix),
        "model": model,
        "artifacts": {"confusion_matrix_png": confusion_matrix_png, **dict(extra_artifacts or {})},
    }
    if predictions is not None:
        doc["predictions"] = [
            {
                "path": str(p["path"]),
                "true": str(p["true"]),
                "predicted": str(p["predicted"]),
                "confidence": float(p["confidence"]),
            }
            for p in predictions
        ]
    if test_dataset_hash is not None:
        doc["test_dataset_hash"] = test_dataset_hash
    if timings is not None:
        doc["timings"] = {k: float(v) for k, v in timings.items()}
    identity = dict(job) if job is not None else job_from_environment()
    if identity is not None:
        doc["job"] = identity
    return validate_evaluation_report(doc)
