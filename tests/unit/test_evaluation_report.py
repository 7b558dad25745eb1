"""evaluation.json as RecordResults reads it: figures recomputed from the confusion matrix, the job that wrote it,
and the dataset it must be about. A forged report (F1 1.0, other class names, counts or job) is refused naming
the field."""

from __future__ import annotations

import copy
import datetime as _dt
import re
from typing import Any

import pytest
from aws.evaluation_docs import confusion, evaluation_doc, job_identity

from nyanops.core import evaluation_report as er
from nyanops.core.evaluation_report import EvaluationReportError

CLASSES = ("bengal", "siamese")


def refused(doc: dict[str, Any]) -> EvaluationReportError:
    with pytest.raises(EvaluationReportError) as caught:
        er.validate_evaluation_report(doc)
    return caught.value


# -- metrics_from_confusion: scikit-learn's definitions with zero_division=0 ---------------------------


def test_metrics_of_a_small_matrix() -> None:
    # true bengal: 3 right, 1 taken for siamese; true siamese: 2 taken for bengal, 4 right
    metrics, per_class = er.metrics_from_confusion([[3, 1], [2, 4]])
    assert per_class[0] == pytest.approx({"precision": 3 / 5, "recall": 3 / 4, "f1": 6 / 9, "support": 4})
    assert per_class[1] == pytest.approx({"precision": 4 / 5, "recall": 4 / 6, "f1": 8 / 11, "support": 6})
    assert metrics["accuracy"] == pytest.approx(7 / 10)
    assert metrics["macro_precision"] == pytest.approx((3 / 5 + 4 / 5) / 2)
    assert metrics["macro_recall"] == pytest.approx((3 / 4 + 4 / 6) / 2)
    assert metrics["macro_f1"] == pytest.approx((6 / 9 + 8 / 11) / 2)
    assert metrics["weighted_f1"] == pytest.approx((6 / 9 * 4 + 8 / 11 * 6) / 10)


def test_metrics_with_undefined_ratios_count_zero() -> None:
    # class 1 has no images and is never predicted; class 2 is predicted but has no images
    metrics, per_class = er.metrics_from_confusion([[2, 0, 1], [0, 0, 0], [0, 0, 0]])
    assert per_class[1] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert per_class[2] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert per_class[0] == pytest.approx({"precision": 1.0, "recall": 2 / 3, "f1": 0.8, "support": 3})
    assert metrics["accuracy"] == pytest.approx(2 / 3)
    assert metrics["macro_f1"] == pytest.approx(0.8 / 3)
    assert metrics["weighted_f1"] == pytest.approx(0.8)


@pytest.mark.parametrize(
    ("matrix", "f1"),
    [
        ([[1, 2], [0, 3]], 2 / 4),  # bengal: 1 right, 2 missed, never wrongly predicted (2 tp + fp - fn = 0)
        ([[1, 0], [2, 3]], 2 / 4),  # bengal: 1 right, 2 siamese taken for bengal (2 tp - fp + fn = 0)
    ],
)
def test_f1_is_defined_whenever_its_denominator_is_not_zero(matrix: list[list[int]], f1: float) -> None:
    _, per_class = er.metrics_from_confusion(matrix)
    assert per_class[0]["f1"] == pytest.approx(f1)


def test_metrics_of_nothing() -> None:
    assert er.metrics_from_confusion([]) == (
        {"accuracy": 0.0, "macro_precision": 0.0, "macro_recall": 0.0, "macro_f1": 0.0, "weighted_f1": 0.0},
        [],
    )
    metrics, _ = er.metrics_from_confusion([[0, 0], [0, 0]])
    assert metrics["accuracy"] == 0.0 and metrics["weighted_f1"] == 0.0


# -- figures that do not come from the matrix -----------------------------------------------------


@pytest.mark.parametrize("metric", er.METRIC_NAMES)
def test_a_headline_figure_the_matrix_does_not_give_is_refused(metric: str) -> None:
    doc = evaluation_doc(wrong=1)
    doc["metrics"][metric] = 1.0
    problem = refused(doc)
    assert problem.path == f"metrics.{metric}"
    assert "the figures do not come from it" in problem.problem


@pytest.mark.parametrize("field", er.PER_CLASS_FIELDS)
def test_a_per_class_figure_the_matrix_does_not_give_is_refused(field: str) -> None:
    doc = evaluation_doc(wrong=1)
    doc["per_class"]["siamese"][field] = 0.0 if doc["per_class"]["siamese"][field] else 1.0
    assert refused(doc).path == f"per_class.siamese.{field}"


def test_rounding_within_the_tolerance_is_accepted_beyond_it_refused() -> None:
    doc = evaluation_doc(wrong=1)
    doc["metrics"]["macro_f1"] += er.METRIC_TOLERANCE / 2
    er.validate_evaluation_report(doc)
    doc["metrics"]["macro_f1"] += er.METRIC_TOLERANCE
    assert refused(doc).path == "metrics.macro_f1"
    doc = evaluation_doc(wrong=1)
    doc["per_class"]["bengal"]["f1"] -= er.METRIC_TOLERANCE * 1.5
    assert refused(doc).path == "per_class.bengal.f1"


def test_a_perfect_forgery_with_a_consistent_matrix_still_needs_the_right_supports() -> None:
    doc = evaluation_doc(wrong=0)
    assert doc["metrics"]["macro_f1"] == 1.0
    doc["per_class"]["bengal"]["support"] = 3
    assert refused(doc).path == "confusion_matrix.matrix[0]"


# -- structure ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "path", "problem"),
    [
        (lambda d: d.update(schema_version=2), "schema_version", "unsupported version 2, expected 1"),
        (lambda d: d.update(schema_version=True), "schema_version", "must be an integer, got bool"),
        (lambda d: d.update(created_at="yesterday"), "created_at", "not an ISO-8601 timestamp: 'yesterday'"),
        (lambda d: d.update(class_names=[]), "class_names", "must not be empty"),
        (lambda d: d.update(class_names=["a", "a"]), "class_names", "class names must be unique"),
        (lambda d: d.update(class_names=["a", 5]), "class_names[1]", "must be a string, got int"),
        (lambda d: d.update(num_images=0), "num_images", "must be >= 1, got 0"),
        (lambda d: d["metrics"].update(accuracy=1.5), "metrics.accuracy", "must be in [0, 1], got 1.5"),
        (lambda d: d["metrics"].update(accuracy=-0.1), "metrics.accuracy", "must be in [0, 1], got -0.1"),
        (lambda d: d["metrics"].update(accuracy=float("nan")), "metrics.accuracy",
         "must be a finite number, got float"),
        (lambda d: d["metrics"].pop("macro_f1"), "metrics.macro_f1", "missing"),
        (lambda d: d["per_class"].pop("bengal"), "per_class",
         "keys ['siamese'] do not match class_names ['bengal', 'siamese']"),
        (lambda d: d["per_class"].update(bengal=[]), "per_class.bengal", "must be an object, got list"),
        (lambda d: d["per_class"]["bengal"].update(support=-1), "per_class.bengal.support", "must be >= 0, got -1"),
        (lambda d: d["confusion_matrix"].update(labels=["siamese", "bengal"]), "confusion_matrix.labels",
         "['siamese', 'bengal'] differ from class_names ['bengal', 'siamese']"),
        (lambda d: d["confusion_matrix"].update(labels=[]), "confusion_matrix.labels", "must not be empty"),
        (lambda d: d["confusion_matrix"]["matrix"].pop(), "confusion_matrix.matrix",
         "must have 2 rows (one per label), got 1"),
        (lambda d: d["confusion_matrix"]["matrix"].__setitem__(0, 5), "confusion_matrix.matrix[0]",
         "must be a list, got int"),
        (lambda d: d["confusion_matrix"]["matrix"][0].append(0), "confusion_matrix.matrix[0]",
         "must have 2 columns (square matrix), got 3"),
        (lambda d: d["confusion_matrix"]["matrix"][1].__setitem__(1, -1), "confusion_matrix.matrix[1][1]",
         "must be >= 0, got -1"),
        (lambda d: d["confusion_matrix"]["matrix"][1].__setitem__(1, 1.0), "confusion_matrix.matrix[1][1]",
         "must be an integer, got float"),
        (lambda d: d["confusion_matrix"]["matrix"][1].__setitem__(1, 1), "confusion_matrix.matrix[1]",
         "row sum 1 differs from per_class.siamese.support"),
        (lambda d: d.update(num_images=5), "confusion_matrix.matrix", "cells sum to 4, num_images is 5"),
        (lambda d: d["misclassified"].clear(), "misclassified", "lists 0 images, the confusion matrix 1"),
        (lambda d: d["misclassified"].__setitem__(0, 5), "misclassified[0]", "must be an object"),
        (lambda d: d["misclassified"][0].update(true="persian"), "misclassified[0].true",
         "'persian' is not in class_names"),
        (lambda d: d["misclassified"][0].update(predicted="persian"), "misclassified[0].predicted",
         "'persian' is not in class_names"),
        (lambda d: d["misclassified"][0].update(predicted=d["misclassified"][0]["true"]), "misclassified[0]",
         "true and predicted are the same class"),
        (lambda d: d["misclassified"][0].update(confidence=2), "misclassified[0].confidence",
         "must be in [0, 1], got 2"),
        (lambda d: d["model"].update(best_epoch=-1), "model.best_epoch", "must be >= 0, got -1"),
        (lambda d: d["model"].pop("dataset_hash"), "model.dataset_hash", "missing"),
        (lambda d: d["model"].update(dataset_hash=5), "model.dataset_hash", "must be a string, got int"),
        (lambda d: d["model"]["history"].append(3), "model.history[1]", "must be an object, got int"),
        (lambda d: d["artifacts"].pop("confusion_matrix_png"), "artifacts.confusion_matrix_png", "missing"),
        (lambda d: d.update(test_dataset_hash=5), "test_dataset_hash", "must be a string, got int"),
        (lambda d: d.update(timings={"load": "1s"}), "timings.load", "must be a finite number, got str"),
        (lambda d: d.update(job={"execution": "m-x"}), "job.processing_job", "missing"),
        (lambda d: d.update(job=["m-x"]), "job", "must be an object, got list"),
        (lambda d: d.update(timings=[1.0]), "timings", "must be an object, got list"),
        (lambda d: d["per_class"]["siamese"].update(recall=1.5), "per_class.siamese.recall",
         "must be in [0, 1], got 1.5"),
    ],
)
def test_structural_problems_name_the_field(change: Any, path: str, problem: str) -> None:
    doc = evaluation_doc(wrong=1)
    change(doc)
    caught = refused(doc)
    assert (caught.path, caught.problem) == (path, problem)
    assert str(caught) == f"{path}: {problem}"


# Every required field, where it sits in the document.
REQUIRED: list[tuple[str, ...]] = [
    ("schema_version",), ("created_at",), ("class_names",), ("num_images",), ("metrics",),
    *[("metrics", name) for name in er.METRIC_NAMES],
    ("per_class",), *[("per_class", "bengal", field) for field in (*er.PER_CLASS_FIELDS, "support")],
    ("confusion_matrix",), ("confusion_matrix", "labels"), ("confusion_matrix", "matrix"),
    ("misclassified",), *[("misclassified", 0, field) for field in ("path", "true", "predicted", "confidence")],
    ("model",), *[("model", field) for field in ("arch", "best_epoch", "history", "hyperparameters")],
    ("artifacts",), ("artifacts", "confusion_matrix_png"),
]


def dotted(path: tuple[Any, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def at(doc: Any, path: tuple[Any, ...]) -> Any:
    for part in path[:-1]:
        doc = doc[part]
    return doc


@pytest.mark.parametrize("path", REQUIRED, ids=[dotted(p) for p in REQUIRED])
def test_every_required_field_missing_is_named(path: tuple[Any, ...]) -> None:
    doc = evaluation_doc(wrong=1)
    del at(doc, path)[path[-1]]
    assert str(refused(doc)) == f"{dotted(path)}: missing"


WRONG_TYPE = {int: ("1", "an integer", "str"), float: ("0.5", "a finite number", "str"), str: (5, "a string", "int"),
              list: ({}, "a list", "dict"), dict: ([], "an object", "list")}


@pytest.mark.parametrize("path", REQUIRED, ids=[dotted(p) for p in REQUIRED])
def test_every_required_field_of_the_wrong_type_is_named(path: tuple[Any, ...]) -> None:
    doc = evaluation_doc(wrong=1)
    value = at(doc, path)[path[-1]]
    kind = int if isinstance(value, int) else type(value)
    bad, name, got = WRONG_TYPE[kind]
    at(doc, path)[path[-1]] = bad
    assert str(refused(doc)) == f"{dotted(path)}: must be {name}, got {got}"


def test_the_smallest_valid_reports() -> None:
    """One test image, a class without test images, an unknown best epoch: all valid."""
    doc = evaluation_doc(wrong=0, support=1)
    doc["confusion_matrix"]["matrix"] = [[1, 0], [0, 0]]
    metrics, per_class = er.metrics_from_confusion([[1, 0], [0, 0]])
    doc.update(num_images=1, metrics=metrics, predictions=doc["predictions"][:1])  # the bengal image
    doc["per_class"] = {c: per_class[i] for i, c in enumerate(CLASSES)}
    doc["model"]["best_epoch"] = 0
    er.validate_evaluation_report(doc)
    assert doc["per_class"]["siamese"]["support"] == 0


def test_a_figure_off_by_exactly_the_tolerance_is_accepted() -> None:
    doc = evaluation_doc(wrong=4)  # every image wrong: every figure 0.0
    assert doc["metrics"]["macro_f1"] == 0.0 and doc["per_class"]["bengal"]["f1"] == 0.0
    doc["metrics"]["macro_f1"] = er.METRIC_TOLERANCE
    doc["per_class"]["bengal"]["f1"] = er.METRIC_TOLERANCE
    er.validate_evaluation_report(doc)


def test_the_problems_of_forged_figures_say_what_the_matrix_gives() -> None:
    doc = evaluation_doc(wrong=1)
    doc["per_class"]["siamese"]["recall"] = 0.25
    assert str(refused(doc)) == "per_class.siamese.recall: is 0.25 but the confusion matrix gives 1.000000"
    doc = evaluation_doc(wrong=1)
    doc["metrics"]["accuracy"] = 1.0
    assert str(refused(doc)) == (
        "metrics.accuracy: is 1.0 but the confusion matrix gives 0.750000: the figures do not come from it")


def test_a_document_that_is_not_an_object() -> None:
    assert str(refused([])) == "$: must be an object"  # type: ignore[arg-type]
    doc = evaluation_doc()
    doc["metrics"] = [0.5]
    assert refused(doc).path == "metrics"


def test_a_valid_report_is_returned_unchanged() -> None:
    doc = evaluation_doc(wrong=1)
    before = copy.deepcopy(doc)
    assert er.validate_evaluation_report(doc) is doc and doc == before


# -- predictions: every test image, consistent with the matrix ------------------------------------


def test_a_report_with_every_prediction_is_valid_and_one_without_too() -> None:
    doc = evaluation_doc(wrong=3, support=4)
    assert len(doc["predictions"]) == 8 and sum(p["true"] != p["predicted"] for p in doc["predictions"]) == 3
    er.validate_evaluation_report(doc)
    assert "predictions" not in er.validate_evaluation_report(evaluation_doc(wrong=1, predictions=False))


def _wrong_one(doc: dict[str, Any]) -> int:
    return next(i for i, p in enumerate(doc["predictions"]) if p["true"] != p["predicted"])


def _right_one(doc: dict[str, Any], true: str = "siamese") -> int:
    return next(i for i, p in enumerate(doc["predictions"]) if p["true"] == p["predicted"] == true)


def test_predictions_that_do_not_give_the_matrix_are_refused() -> None:
    doc = evaluation_doc(wrong=1)
    doc["predictions"][_right_one(doc)]["predicted"] = "bengal"  # one more error than the matrix has
    problem = refused(doc)
    assert problem.path == "predictions"
    assert "predicted as 'bengal', confusion_matrix.matrix[1][0] is 0: the matrix does not come from" in problem.problem


def test_predictions_with_another_count_per_class_are_refused() -> None:
    doc = evaluation_doc(wrong=0)
    moved = doc["predictions"][_right_one(doc)]
    moved.update(true="bengal", predicted="bengal", path="bengal/moved.jpg")
    assert str(refused(doc)) == "predictions: lists 3 images of class 'bengal', per_class.bengal.support is 2"


def test_predictions_must_list_every_image_once() -> None:
    doc = evaluation_doc(wrong=0)
    doc["predictions"].pop()
    assert str(refused(doc)) == "predictions: lists 3 images, num_images is 4"
    doc = evaluation_doc(wrong=0)
    doc["predictions"][1]["path"] = doc["predictions"][0]["path"]
    assert refused(doc).path == "predictions[1].path" and "listed twice" in str(refused(doc))


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("true", "sphynx", "predictions[0].true: 'sphynx' is not in class_names"),
        ("predicted", "sphynx", "predictions[0].predicted: 'sphynx' is not in class_names"),
        ("confidence", 1.5, "predictions[0].confidence: must be in [0, 1], got 1.5"),
        ("confidence", 0.4, "predictions[0].confidence: 0.4 is below 1/2: the predicted class has the largest"),
        ("path", "siamese/x.jpg", "predictions[0].path: 'siamese/x.jpg' is not in the folder of its true class"),
        ("path", 3, "predictions[0].path: must be a string, got int"),
    ],
)
def test_a_prediction_that_is_not_one_is_refused(field: str, value: Any, problem: str) -> None:
    doc = evaluation_doc(wrong=1)
    doc["predictions"][0][field] = value
    assert str(refused(doc)).startswith(problem)


def test_the_smallest_confidence_is_one_over_the_number_of_classes() -> None:
    classes = ("a", "b", "c")
    doc = evaluation_doc(wrong=0, classes=classes, support=1)
    doc["predictions"][0]["confidence"] = round(1 / 3, 6)  # three classes tied, rounded down as written
    er.validate_evaluation_report(doc)


def test_misclassified_must_be_the_wrong_predictions() -> None:
    doc = evaluation_doc(wrong=1)
    doc["misclassified"][0]["confidence"] = 0.5
    assert str(refused(doc)).startswith("misclassified[0]: ") and "differs from its entry in predictions" in str(
        refused(doc))
    doc = evaluation_doc(wrong=1)
    doc["misclassified"][0]["path"] = "bengal/elsewhere.jpg"
    assert str(refused(doc)) == "misclassified[0].path: 'bengal/elsewhere.jpg' is not in predictions"
    doc = evaluation_doc(wrong=2, support=2)
    doc["misclassified"][1] = dict(doc["misclassified"][0])
    assert refused(doc).path == "misclassified[1].path" and "listed twice" in str(refused(doc))


def test_predictions_of_a_thousand_classes_stay_small() -> None:
    """1,000 classes x 20 test images: about 100 bytes an image, far below the evaluation limit."""
    import json

    from nyanops.core import limits

    classes = tuple(f"class-{i:04d}" for i in range(1000))
    doc = evaluation_doc(wrong=500, classes=classes, support=20)
    er.validate_evaluation_report(doc)
    per_image = len(json.dumps(doc["predictions"])) / doc["num_images"]
    assert per_image < 120 and len(json.dumps(doc)) < limits.EVALUATION_MAX_BYTES / 2


# -- the dataset and the job ----------------------------------------------------------------------


def test_class_names_must_be_the_datasets() -> None:
    doc = evaluation_doc(wrong=0, classes=("persian", "sphynx"))
    with pytest.raises(EvaluationReportError) as caught:
        er.check_against_dataset(doc, CLASSES, {"bengal": 2, "siamese": 2})
    assert caught.value.path == "class_names"
    assert "not in the dataset: ['persian', 'sphynx']; missing: ['bengal', 'siamese']" in caught.value.problem


def test_at_most_five_differing_class_names_are_listed() -> None:
    given = tuple(f"g{i}" for i in range(7))
    doc = evaluation_doc(wrong=0, classes=given)
    with pytest.raises(EvaluationReportError) as caught:
        er.check_against_dataset(doc, [*given, *(f"e{i}" for i in range(7))], {})
    assert caught.value.problem == (
        "7 classes that are not the dataset's 14 classes (not in the dataset: []; missing: "
        "['e0', 'e1', 'e2', 'e3', 'e4'])")
    with pytest.raises(EvaluationReportError) as caught:
        er.check_against_dataset(doc, given[:1], {})
    assert caught.value.problem == (
        "7 classes that are not the dataset's 1 classes (not in the dataset: ['g1', 'g2', 'g3', 'g4', 'g5']; "
        "missing: [])")


def test_class_names_in_another_order_are_refused() -> None:
    doc = evaluation_doc(wrong=0, classes=("siamese", "bengal"))
    with pytest.raises(EvaluationReportError) as caught:
        er.check_against_dataset(doc, CLASSES, {"bengal": 2, "siamese": 2})
    assert str(caught.value) == "class_names: 2 classes that are not the dataset's 2 classes (in another order)"


@pytest.mark.parametrize("counts", [{"bengal": 3, "siamese": 2}, {"bengal": 2}, {"bengal": 2, "siamese": 1}])
def test_supports_must_be_the_test_splits_counts(counts: dict[str, int]) -> None:
    doc = evaluation_doc(wrong=0)
    with pytest.raises(EvaluationReportError) as caught:
        er.check_against_dataset(doc, CLASSES, counts)
    assert caught.value.path.endswith(".support") and "test images, but the dataset's test split has" in str(
        caught.value
    )


def test_the_right_dataset_passes() -> None:
    er.check_against_dataset(evaluation_doc(wrong=1), CLASSES, {"bengal": 2, "siamese": 2})


def test_job_identity() -> None:
    doc = evaluation_doc(job=job_identity("m-x"))
    er.check_job(doc, "m-x", "m-x-eval")
    with pytest.raises(EvaluationReportError, match=r"job\.execution: is 'm-x', expected 'm-y'"):
        er.check_job(doc, "m-y", "m-x-eval")
    with pytest.raises(EvaluationReportError, match=r"job\.processing_job: is 'm-x-eval', expected 'm-x-champ1'"):
        er.check_job(doc, "m-x", "m-x-champ1")
    with pytest.raises(EvaluationReportError, match="job: missing"):
        er.check_job(evaluation_doc(), "m-x", "m-x-eval")


def test_job_from_environment() -> None:
    env = {er.ENV_EXECUTION: "m-x", er.ENV_PROCESSING_JOB: "m-x-eval"}
    assert er.job_from_environment(env) == {"execution": "m-x", "processing_job": "m-x-eval"}
    assert er.job_from_environment({er.ENV_EXECUTION: "m-x"}) is None
    assert er.job_from_environment({er.ENV_EXECUTION: "", er.ENV_PROCESSING_JOB: "j"}) is None
    assert er.job_from_environment({}) is None


def test_the_builder_takes_the_job_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(er.ENV_EXECUTION, "m-env")
    monkeypatch.setenv(er.ENV_PROCESSING_JOB, "m-env-eval")
    assert evaluation_doc()["job"] == {"execution": "m-env", "processing_job": "m-env-eval"}
    assert evaluation_doc(job=job_identity("m-x"))["job"] == job_identity("m-x")
    monkeypatch.delenv(er.ENV_EXECUTION)
    assert "job" not in evaluation_doc()


def test_confusion_helper_matches_the_report() -> None:
    doc = evaluation_doc(wrong=3, support=4)
    assert doc["confusion_matrix"]["matrix"] == confusion(3, support=4)
    assert doc["num_images"] == 8 and len(doc["misclassified"]) == 3


def test_the_builder_writes_exactly_the_schema() -> None:
    matrix = [[2, 0], [1, 1]]
    metrics, per_class = er.metrics_from_confusion(matrix)
    doc = er.build_evaluation_report(
        class_names=["bengal", "siamese"], metrics=metrics, per_class=dict(zip(CLASSES, per_class, strict=True)),
        confusion_matrix=matrix,
        misclassified=[{"path": "siamese/1.jpg", "true": "siamese", "predicted": "bengal", "confidence": 0.6}],
        model_meta={"arch": "resnet18", "best_epoch": 4, "history": [{"epoch": 1}], "hyperparameters": {"lr": 0.1},
                    "dataset_hash": "abc", "best_val_acc": 0.9, "library_versions": {"torch": "2.14"}, "other": 1},
        created_at="2026-11-28T07:00:00Z", test_dataset_hash="t" * 64, timings={"total": 3},
        extra_artifacts={"misclassified_json": "m.json"}, job=job_identity("m-x"),
    )
    assert doc == {
        "schema_version": 1, "created_at": "2026-11-28T07:00:00Z", "class_names": ["bengal", "siamese"],
        "metrics": metrics, "per_class": dict(zip(CLASSES, per_class, strict=True)),
        "confusion_matrix": {"labels": ["bengal", "siamese"], "matrix": matrix},
        "misclassified": [{"path": "siamese/1.jpg", "true": "siamese", "predicted": "bengal", "confidence": 0.6}],
        "num_images": 4,
        "model": {"arch": "resnet18", "best_epoch": 4, "history": [{"epoch": 1}], "hyperparameters": {"lr": 0.1},
                  "dataset_hash": "abc", "best_val_acc": 0.9, "library_versions": {"torch": "2.14"}},
        "artifacts": {"confusion_matrix_png": "confusion_matrix.png", "misclassified_json": "m.json"},
        "test_dataset_hash": "t" * 64, "timings": {"total": 3.0},
        "job": {"execution": "m-x", "processing_job": "m-x-eval"},
    }
    assert isinstance(doc["timings"]["total"], float)


def test_the_builders_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(er.ENV_EXECUTION, raising=False)
    matrix = [[1, 0], [0, 1]]
    metrics, per_class = er.metrics_from_confusion(matrix)
    before = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0)
    doc = er.build_evaluation_report(class_names=CLASSES, metrics=metrics,
                                     per_class=dict(zip(CLASSES, per_class, strict=True)), confusion_matrix=matrix,
                                     misclassified=[], model_meta={})
    assert doc["model"] == {"arch": "", "best_epoch": 0, "history": [], "hyperparameters": {}, "dataset_hash": None}
    assert {"test_dataset_hash", "timings", "job"}.isdisjoint(doc)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", doc["created_at"]), doc["created_at"]
    written = _dt.datetime.fromisoformat(doc["created_at"].replace("Z", "+00:00"))
    assert before <= written <= _dt.datetime.now(_dt.timezone.utc)
