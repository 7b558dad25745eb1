"""evaluation.json as RecordResults reads it: figures recomputed from the confusion matrix, the job that wrote it,
and the dataset it must be about. A forged report (F1 1.0, other class names, counts or job) is refused naming
the field."""

from __future__ import annotations

import copy
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
        (lambda d: d.update(schema_version=2), "schema_version", "unsupported version 2"),
        (lambda d: d.update(schema_version=True), "schema_version", "must be an integer"),
        (lambda d: d.update(created_at="yesterday"), "created_at", "not an ISO-8601"),
        (lambda d: d.update(class_names=[]), "class_names", "must not be empty"),
        (lambda d: d.update(class_names=["a", "a"]), "class_names", "unique"),
        (lambda d: d.update(num_images=0), "num_images", "must be >= 1"),
        (lambda d: d["metrics"].update(accuracy=1.5), "metrics.accuracy", "must be in [0, 1]"),
        (lambda d: d["metrics"].update(accuracy=-0.1), "metrics.accuracy", "must be in [0, 1]"),
        (lambda d: d["metrics"].update(accuracy=float("nan")), "metrics.accuracy", "a finite number"),
        (lambda d: d["metrics"].pop("macro_f1"), "metrics.macro_f1", "missing"),
        (lambda d: d["per_class"].pop("bengal"), "per_class", "do not match class_names"),
        (lambda d: d["per_class"]["bengal"].update(support=-1), "per_class.bengal.support", "must be >= 0"),
        (lambda d: d["confusion_matrix"].update(labels=["siamese", "bengal"]), "confusion_matrix.labels",
         "differ from class_names"),
        (lambda d: d["confusion_matrix"]["matrix"].pop(), "confusion_matrix.matrix", "must have 2 rows"),
        (lambda d: d["confusion_matrix"]["matrix"][0].append(0), "confusion_matrix.matrix[0]",
         "must have 2 columns"),
        (lambda d: d["confusion_matrix"]["matrix"][1].__setitem__(1, -1), "confusion_matrix.matrix[1][1]",
         "must be >= 0"),
        (lambda d: d.update(num_images=5), "confusion_matrix.matrix", "cells sum to 4, num_images is 5"),
        (lambda d: d["misclassified"].clear(), "misclassified", "lists 0 images, the confusion matrix 1"),
        (lambda d: d["misclassified"][0].update(true="persian"), "misclassified[0].true", "not in class_names"),
        (lambda d: d["misclassified"][0].update(predicted="persian"), "misclassified[0].predicted",
         "not in class_names"),
        (lambda d: d["misclassified"][0].update(predicted=d["misclassified"][0]["true"]), "misclassified[0]",
         "the same class"),
        (lambda d: d["misclassified"][0].update(confidence=2), "misclassified[0].confidence", "in [0, 1]"),
        (lambda d: d["model"].update(best_epoch=-1), "model.best_epoch", "must be >= 0"),
        (lambda d: d["model"].pop("dataset_hash"), "model.dataset_hash", "missing"),
        (lambda d: d["model"].update(dataset_hash=5), "model.dataset_hash", "must be a string"),
        (lambda d: d["model"]["history"].append(3), "model.history[1]", "must be an object"),
        (lambda d: d["artifacts"].pop("confusion_matrix_png"), "artifacts.confusion_matrix_png", "missing"),
        (lambda d: d.update(test_dataset_hash=5), "test_dataset_hash", "must be a string"),
        (lambda d: d.update(timings={"load": "1s"}), "timings.load", "a finite number"),
        (lambda d: d.update(job={"execution": "m-x"}), "job.processing_job", "missing"),
        (lambda d: d.update(job=["m-x"]), "job", "must be an object"),
    ],
)
def test_structural_problems_name_the_field(change: Any, path: str, problem: str) -> None:
    doc = evaluation_doc(wrong=1)
    change(doc)
    caught = refused(doc)
    assert (caught.path, problem in caught.problem) == (path, True), str(caught)


def test_a_document_that_is_not_an_object() -> None:
    assert refused([]).path == "$"  # type: ignore[arg-type]
    doc = evaluation_doc()
    doc["metrics"] = [0.5]
    assert refused(doc).path == "metrics"


def test_a_valid_report_is_returned_unchanged() -> None:
    doc = evaluation_doc(wrong=1)
    before = copy.deepcopy(doc)
    assert er.validate_evaluation_report(doc) is doc and doc == before


# -- the dataset and the job ----------------------------------------------------------------------


def test_class_names_must_be_the_datasets() -> None:
    doc = evaluation_doc(wrong=0, classes=("persian", "sphynx"))
    with pytest.raises(EvaluationReportError) as caught:
        er.check_against_dataset(doc, CLASSES, {"bengal": 2, "siamese": 2})
    assert caught.value.path == "class_names"
    assert "not in the dataset: ['persian', 'sphynx']; missing: ['bengal', 'siamese']" in caught.value.problem


def test_class_names_in_another_order_are_refused() -> None:
    doc = evaluation_doc(wrong=0, classes=("siamese", "bengal"))
    with pytest.raises(EvaluationReportError, match="in another order"):
        er.check_against_dataset(doc, CLASSES, {"bengal": 2, "siamese": 2})


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
