"""The record corpus: adversarial cases against what the pipeline records (names, AWS's limits, replayed
events, forged evaluations, concurrent records). Each case is one function over a ``Side`` and runs
unchanged locally (``test_corpus_record_local.py``) and under moto (``tests/aws/test_corpus_record_moto.py``),
asserting the exact outcome: a refusal with field / problem / fix and its record, or a failed trial with its
cause; and that nothing partial is left (no execution, no best flag moved, no record half written) and
nothing lost (uploads keep their bytes; the best trial keeps its flag).

``docs/reliability.md`` lists every case (``CASES``); a test keeps the table in step with this module and the
other corpus modules.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws.evaluation_docs import evaluation_doc, job_identity, score

from nyanops.core import layout, limits

from .corpus import CLASSES, CODE_HASH, GOOD_DATASET, image_tree, manifest, marker_bytes, prefixed
from .sides import Side, later, with_object

EXPERIMENT_FIX = "use only letters, digits and hyphens"
DATASET_FIX = "use letters, digits, '.', '_' and '-'"


@dataclass(frozen=True)
class Case:
    id: str
    input: str  # what is tried, in words (the docs table)
    outcome: str  # what must happen, in words (the docs table)
    layer: str  # who stops it
    run: Callable[[Side], None]


CASES: list[Case] = []


def case(case_id: str, input: str, outcome: str, layer: str) -> Callable[[Callable[[Side], None]], Callable]:
    def register(fn: Callable[[Side], None]) -> Callable[[Side], None]:
        CASES.append(Case(case_id, input, outcome, layer, fn))
        return fn

    return register


# -- shared assertions ------------------------------------------------------------------------------------
def refused(side: Side, key: str, body: bytes, field: str, problem: str, fix: str,
            event_fields: dict[str, Any] | None = None) -> dict[str, Any]:
    """Upload ``body`` at ``key`` (its event edited by ``event_fields``): exactly one problem, its record, one
    notification, no execution, the upload untouched."""
    event = side.put(key, body)
    result = side.send(with_object(event, **(event_fields or {})))
    assert result["outcome"] == "rejected", result
    [got] = result["problems"]
    assert got["field"] == field and problem in got["problem"] and fix in got["fix"], got
    record = side.refusal(key)
    assert record is not None and record["key"] == key and record["problems"] == result["problems"]
    assert record["notified"] is True
    [(subject, message)] = side.notifications()
    assert subject.startswith("nyanops: upload refused: ") and f"{field}: " in message and "Fix: " in message
    assert side.executions() == []
    return record


def start(side: Side, key: str = "manifests/run.json", **fields: Any) -> dict[str, Any]:
    result = side.send(side.put(key, manifest(**fields)))
    assert result["outcome"] == "started", result
    return side.run_input(result["execution_name"])


def good_doc(run: dict[str, Any], wrong: int = 1) -> dict[str, Any]:
    return evaluation_doc(wrong, CLASSES, 2, job=job_identity(run["execution_name"], run["evaluation"]["job_name"]))


def champion(side: Side) -> dict[str, Any]:
    """A legitimate trial that holds the best flag before the adversarial one."""
    run = start(side, "manifests/champion.json", comment="the honest best")
    side.record("started", run)
    side.evaluate(run, json.dumps(good_doc(run, wrong=1)).encode())
    assert side.record("succeeded", run)["is_best"] is True
    return run


# -- names: matched whole, case-insensitive -----------------------------------------------------------------
NAMES = "StartPipeline: manifest schema (whole-name match)"


@case("experiment-trailing-newline", 'experiment: "cats\\n"', "refused: experiment is not a valid name", NAMES)
def _(side: Side) -> None:
    refused(side, "manifests/nl.json", manifest(experiment="cats\n"), "experiment",
            "is not a valid SageMaker experiment name", EXPERIMENT_FIX)


@case("experiment-leading-newline", 'experiment: "\\ncats"', "refused: experiment is not a valid name", NAMES)
def _(side: Side) -> None:
    refused(side, "manifests/lnl.json", manifest(experiment="\ncats"), "experiment",
            "is not a valid SageMaker experiment name", EXPERIMENT_FIX)


@case("experiment-crlf", 'experiment: "cats\\r\\n"', "refused: experiment is not a valid name", NAMES)
def _(side: Side) -> None:
    refused(side, "manifests/crlf.json", manifest(experiment="cats\r\n"), "experiment",
            "is not a valid SageMaker experiment name", EXPERIMENT_FIX)


@case("dataset-id-trailing-newline", 'dataset: "datasets/cats-ok\\n"', "refused: invalid dataset id",
      "StartPipeline: dataset reference (whole-name match)")
def _(side: Side) -> None:
    refused(side, "manifests/ds-nl.json", manifest(dataset=f"datasets/{GOOD_DATASET}\n"), "dataset",
            "has an invalid dataset id", DATASET_FIX)


@case("code-ref-trailing-newline", 'code: "code/<sha256>\\n"', "refused: not a code bundle of this bucket",
      "StartPipeline: code reference (whole-name match)")
def _(side: Side) -> None:
    refused(side, "manifests/code-nl.json", manifest(code=f"code/{CODE_HASH}\n"), "code",
            "is not a code bundle in this bucket's code/ prefix", "write code/<64-hex sha256>")


@case("marker-id-newline", "a dataset marker at datasets/cats-ok\\n/_dataset.json", "refused: invalid dataset id",
      "StartPipeline: dataset id (whole-name match)")
def _(side: Side) -> None:
    refused(side, f"datasets/{GOOD_DATASET}\n/_dataset.json", b"{}", "dataset", "invalid dataset id",
            DATASET_FIX)


@case("experiment-case-variants", 'two runs, experiment "cats" and "CATS"',
      "one experiment (named as first created), two trials, exactly one best", "RecordResults: experiment key")
def _(side: Side) -> None:
    first = start(side, "manifests/lower.json", experiment="cats")
    second = start(side, "manifests/upper.json", experiment="CATS")
    for run, wrong in ((first, 2), (second, 0)):
        side.record("started", run)
        side.evaluate(run, json.dumps(good_doc(run, wrong)).encode())
        side.record("succeeded", run)
    assert side.experiments() == ["cats"]
    trials = side.trials("Cats")
    assert sorted(t.trial for t in trials) == sorted([first["trial"], second["trial"]])
    assert [t.trial for t in trials if t.is_best] == [second["trial"]]


# -- AWS's limits, met before they break a run ---------------------------------------------------------------
LIMITS = "StartPipeline: limits (nyanops.core.limits)"


@case("manifest-600mb-by-event", "a manifest whose event says 600 MB",
      "refused from the event's size; not a byte of it read", LIMITS)
def _(side: Side) -> None:
    key = "manifests/huge.json"
    refused(side, key, manifest(), "(file)", "the manifest is 600000000 bytes, larger than the 1000000 byte limit",
            "keep it small", {"size": 600_000_000})
    assert key not in side.reads()


@case("manifest-oversize-no-size", "a 1,000,001-byte manifest whose event carries no size",
      "refused from a HEAD's size; not read", LIMITS)
def _(side: Side) -> None:
    key = "manifests/huge-nosize.json"
    body = manifest(comment="x" * (limits.MANIFEST_MAX_BYTES - 100))
    body += b" " * (limits.MANIFEST_MAX_BYTES + 1 - len(body))
    refused(side, key, body, "(file)", f"the manifest is {len(body)} bytes", "keep it small", {"size": None})
    assert key not in side.reads()


@case("dataset-1001-classes", "a dataset of 1,001 classes", "refused: more classes than the pipeline supports",
      LIMITS)
def _(side: Side) -> None:
    classes = tuple(f"c{i:04d}" for i in range(limits.MAX_CLASSES + 1))
    files = image_tree("cats-many", {split: classes for split in layout.SPLITS}, per_class=1)
    for key, body in prefixed("cats-many", files):
        side.put(key, body)
    refused(side, layout.dataset_marker_key("cats-many"), marker_bytes("cats-many", files), "dataset",
            "has 1001 classes, more than the 1000 the pipeline supports", "split the classes")


@case("execution-input-too-large", "a dataset of 200 classes with 240-character folder names",
      "refused: the run's input would exceed Step Functions' payload limit", LIMITS)
def _(side: Side) -> None:
    classes = tuple(f"{i:03d}-" + "x" * 236 for i in range(200))
    files = image_tree("cats-longnames", {split: classes for split in layout.SPLITS}, per_class=1)
    for key, body in prefixed("cats-longnames", files):
        side.put(key, body)
    refused(side, layout.dataset_marker_key("cats-longnames"), marker_bytes("cats-longnames", files), "dataset",
            "the run's input would be", "use shorter class folder names")


LONG = "manifests/" + "/".join(["d" * 200] * 4) + "/" + "m" * 200 + ".json"  # 1,019 bytes, folders <= 255


@case("refusal-key-over-1024", "a bad manifest at a 1,019-byte key",
      "refused; the record's key is cut to 1,024 bytes with a hash, the full key inside",
      "StartPipeline: refusal record")
def _(side: Side) -> None:
    assert len(LONG.encode()) > limits.S3_KEY_MAX_BYTES - len("rejected/.error.json")
    refused(side, LONG, b"{", "(file)", "not valid JSON", "fix the JSON syntax")
    [record_key] = side.keys(layout.REJECTED_PREFIX)
    assert len(record_key.encode()) <= limits.S3_KEY_MAX_BYTES and "~" in record_key
    assert record_key == layout.rejection_key(LONG)


@case("refusal-key-exactly-1024", "a bad manifest whose refusal key is exactly 1,024 bytes",
      "refused; the plain rejected/<key>.error.json (no hash)", "StartPipeline: refusal record")
def _(side: Side) -> None:
    key = "manifests/" + "/".join(["e" * 200] * 4) + "/" + "n" * (1004 - 10 - 804 - 5) + ".json"
    assert len(key.encode()) == limits.S3_KEY_MAX_BYTES - len("rejected/.error.json")
    refused(side, key, b"[]", "(file)", "must be a JSON object", "wrap it as")
    assert side.keys(layout.REJECTED_PREFIX) == [f"rejected/{key}.error.json"]


# -- replays and new versions ----------------------------------------------------------------------------
REPLAYS = "StartPipeline: refusal record (version, S3 sequencer)"


@case("second-bad-version", "a refused manifest uploaded again, still bad (another mistake)",
      "refused again: the record is the new version's, a second notification", REPLAYS)
def _(side: Side) -> None:
    key = "manifests/twice.json"
    first = side.send(side.put(key, manifest(hyperparameters={"epochs": 0})))
    second = side.send(side.put(key, manifest(hyperparameters={"lr": -1.0})))
    assert (first["outcome"], second["outcome"]) == ("rejected", "rejected")
    record = side.refusal(key)
    assert record is not None and record["problems"][0]["field"] == "hyperparameters.lr"
    assert len(side.notifications()) == 2 and side.executions() == []


@case("replayed-older-refusal", "the event of an older refused version delivered after a newer refusal",
      "the newer refusal stays; no notification; (locally the old version is gone: ignored)", REPLAYS)
def _(side: Side) -> None:
    key = "manifests/replay.json"
    old_event = side.put(key, manifest(hyperparameters={"epochs": 0}))
    side.send(old_event)
    side.send(side.put(key, manifest(hyperparameters={"lr": -1.0})))
    newer = side.refusal(key)
    result = side.send(old_event)
    assert result["outcome"] == ("rejected" if side.keeps_versions else "ignored")
    assert side.refusal(key) == newer and len(side.notifications()) == 2


@case("replay-after-fix", "a refused version's event delivered again after a fixed version started a run",
      "no second notification, still one run", REPLAYS)
def _(side: Side) -> None:
    key = "manifests/fixed.json"
    bad = side.put(key, manifest(hyperparameters={"epochs": 0}))
    side.send(bad)
    assert side.send(side.put(key, manifest()))["outcome"] == "started"
    side.send(bad)
    assert len(side.notifications()) == 1 and len(side.executions()) == 1


# -- forged or broken evaluations: a failed trial with its cause, the best untouched ---------------------------
FORGED = "RecordResults: evaluation_source (job, time, content)"


@case("forged-f1-other-classes", "evaluation.json claiming F1 1.0 for other class names",
      "trial Failed: class_names are not the dataset's", FORGED)
def _(side: Side) -> None:
    def body(run: dict[str, Any]) -> dict[str, Any]:
        return evaluation_doc(0, ("tiger", "lion"), 2, job=job_identity(run["execution_name"]))
    forgery_fails_with(side, body, "class_names: 2 classes that are not the dataset's")


@case("forged-metrics", "macro F1 1.0 with a confusion matrix that gives 0.733", "trial Failed: metrics.macro_f1",
      FORGED)
def _(side: Side) -> None:
    forgery_fails_with(side, lambda run: mutate(good_doc(run), ("metrics", "macro_f1"), 1.0),
                       "metrics.macro_f1: is 1.0 but the confusion matrix gives")


@case("forged-per-class", "a per-class F1 that its matrix row does not give", "trial Failed: per_class.<c>.f1",
      FORGED)
def _(side: Side) -> None:
    forgery_fails_with(side, lambda run: mutate(good_doc(run), ("per_class", "siamese", "f1"), 0.99),
                       "per_class.siamese.f1: is 0.99 but the confusion matrix gives")


@case("forged-support", "3 test images per class for a test split of 2", "trial Failed: per_class.<c>.support",
      FORGED)
def _(side: Side) -> None:
    forgery_fails_with(side, lambda run: evaluation_doc(0, CLASSES, 3, job=job_identity(run["execution_name"])),
                       "per_class.bengal.support: 3 test images, but the dataset's test split has 2")


@case("forged-other-execution", "a report signed by another execution", "trial Failed: job.execution", FORGED)
def _(side: Side) -> None:
    forgery_fails_with(side, lambda run: evaluation_doc(0, CLASSES, 2, job=job_identity("m-other-0000000000000001")),
                       "job.execution: is 'm-other-0000000000000001'")


@case("forged-other-job", "a report signed by the champion job's name", "trial Failed: job.processing_job", FORGED)
def _(side: Side) -> None:
    forgery_fails_with(side, lambda run: evaluation_doc(
        0, CLASSES, 2, job=job_identity(run["execution_name"], f"{run['execution_name']}-champ1")),
        "job.processing_job: is")


@case("forged-unsigned", "a valid report without the job's identity", "trial Failed: job missing", FORGED)
def _(side: Side) -> None:
    forgery_fails_with(side, lambda run: evaluation_doc(0, CLASSES, 2), "job: missing")


@case("forged-no-job", "evaluation.json put by hand, no processing job ran", "trial Failed: no processing job",
      FORGED)
def _(side: Side) -> None:
    best = champion(side)
    run = start(side, "manifests/nojob.json")
    side.record("started", run)
    side.put(layout.evaluation_key(run["execution_name"]), json.dumps(good_doc(run, 0)).encode())
    finish_failed(side, run, "there is no processing job", best)


@case("forged-after-the-job", "a file written after the job ended (an overwrite)",
      "trial Failed: written outside the job's run", FORGED)
def _(side: Side) -> None:
    forgery_fails_with(side, lambda run: good_doc(run, 0), "outside processing job",
                       started=later(-3), ended=later(-2))


@case("forged-before-the-job", "a file written before the job started", "trial Failed: written outside the job's run",
      FORGED)
def _(side: Side) -> None:
    forgery_fails_with(side, lambda run: good_doc(run, 0), "outside processing job",
                       started=later(1), ended=later(2))


@case("job-failed-file-left", "the job failed, an old evaluation.json is in its prefix",
      "trial Failed: the job ended Failed, with its ExitMessage", FORGED)
def _(side: Side) -> None:
    forgery_fails_with(side, lambda run: good_doc(run, 0), "ended Failed: model.pth does not match resnet18",
                       status="Failed", exit_message="model.pth does not match resnet18")


@case("evaluation-not-json", "evaluation.json that is not JSON", "trial Failed: not JSON", FORGED)
def _(side: Side) -> None:
    forgery_fails_with(side, lambda run: b"{ not json", "not JSON")


@case("evaluation-schema-2", "schema_version 2", "trial Failed: schema_version", FORGED)
def _(side: Side) -> None:
    forgery_fails_with(side, lambda run: mutate(good_doc(run), ("schema_version",), 2),
                       "schema_version: unsupported version 2")


@case("evaluation-nan", "a metric written as NaN", "trial Failed: metrics.<m> not a finite number", FORGED)
def _(side: Side) -> None:
    forgery_fails_with(side, lambda run: json.dumps(mutate(good_doc(run), ("metrics", "accuracy"), float("nan")))
                       .encode(), "metrics.accuracy: must be a finite number")


@case("evaluation-negative-cell", "a confusion-matrix cell of -1", "trial Failed: confusion_matrix cell", FORGED)
def _(side: Side) -> None:
    def body(run: dict[str, Any]) -> dict[str, Any]:
        doc = good_doc(run, 0)
        doc["confusion_matrix"]["matrix"][0] = [3, -1]
        return doc
    forgery_fails_with(side, body, "confusion_matrix.matrix[0][1]: must be >= 0")


@case("evaluation-duplicate-classes", "class_names listing one class twice", "trial Failed: class_names unique",
      FORGED)
def _(side: Side) -> None:
    forgery_fails_with(side, lambda run: mutate(good_doc(run), ("class_names",), ["bengal", "bengal"]),
                       "class_names: class names must be unique")


@case("evaluation-misclassified-mismatch", "a misclassified list shorter than the matrix's errors",
      "trial Failed: misclassified", FORGED)
def _(side: Side) -> None:
    forgery_fails_with(side, lambda run: mutate(good_doc(run, 1), ("misclassified",), []),
                       "misclassified: lists 0 images, the confusion matrix 1")


@case("evaluation-predictions-mismatch", "every prediction listed, one of them wrong where the matrix says right",
      "trial Failed: predictions do not give the confusion matrix", FORGED)
def _(side: Side) -> None:
    def body(run: dict[str, Any]) -> dict[str, Any]:
        doc = good_doc(run, 0)
        doc["predictions"][0]["predicted"] = "siamese"
        return doc
    forgery_fails_with(side, body, "predictions: 1 images of 'bengal' predicted as 'bengal', "
                       "confusion_matrix.matrix[0][0] is 2: the matrix does not come from these predictions")


@case("evaluation-predictions-other-class", "a prediction naming a class the dataset does not have",
      "trial Failed: predictions[i].predicted not in class_names", FORGED)
def _(side: Side) -> None:
    forgery_fails_with(side, lambda run: mutate(good_doc(run, 0), ("predictions",),
                                                [*good_doc(run, 0)["predictions"][:-1],
                                                 {"path": "siamese/x.jpg", "true": "siamese", "predicted": "sphynx",
                                                  "confidence": 0.9}]),
                       "predictions[3].predicted: 'sphynx' is not in class_names")


# -- concurrency of records --------------------------------------------------------------------------------
@case("record-retried", "RecordResults of one trial delivered twice (a Lambda retry after success)",
      "one best, the same decision, the same figures", "RecordResults: decision in the experiment lock")
def _(side: Side) -> None:
    run = start(side)
    side.record("started", run)
    side.evaluate(run, json.dumps(good_doc(run, 1)).encode())
    first = side.record("succeeded", run)
    [before] = side.trials("cats")
    again = side.record("succeeded", run)
    [after] = side.trials("cats")
    assert (first["verdict"], again["verdict"]) == ("first", "already-best")
    assert (after.is_best, after.decision, after.metrics) == (True, before.decision, before.metrics)


@case("records-at-once", "two trials of one experiment and test set recorded at the same moment",
      "exactly one best, the higher figure; both Completed, each with its decision",
      "RecordResults: decision in the experiment lock")
def _(side: Side) -> None:
    worse, better = start(side, "manifests/worse.json"), start(side, "manifests/better.json")
    for run, wrong in ((worse, 2), (better, 0)):
        side.record("started", run)
        side.evaluate(run, json.dumps(good_doc(run, wrong)).encode())
    answers = side.record_at_once("succeeded", [worse, better])
    trials = {t.trial: t for t in side.trials("cats")}
    assert [name for name, t in trials.items() if t.is_best] == [better["trial"]]
    assert all(t.status == "Completed" and t.decision for t in trials.values())
    assert sorted(a["verdict"] for a in answers) in (["first", "kept"], ["first", "moved"])


# -- champion / challenger: the best model re-scored on a new test set ------------------------------------
CHAMPION = "RecordResults: champion / challenger in the experiment lock"


def on_test_set(run: dict[str, Any], test_hash: str) -> dict[str, Any]:
    """The run, about another dataset's test split (its identity; the classes and counts stay)."""
    run["dataset"]["split_hashes"] = {"train": "1" * 64, "val": "2" * 64, "test": test_hash}
    return run


def trained(run: dict[str, Any]) -> dict[str, Any]:
    """The run's state after Train: its model (what the champion's re-scoring would load)."""
    bucket = run["source"]["bucket"]
    run.setdefault("results", {})["training"] = {
        "model_artifacts": f"s3://{bucket}/{layout.run_model_prefix(run['execution_name'])}model.tar.gz"}
    return run


def best_with(side: Side, wrong: int, key: str = "manifests/champion.json") -> dict[str, Any]:
    run = trained(start(side, key, comment="the best so far"))
    side.record("started", run)
    side.evaluate(run, json.dumps(good_doc(run, wrong)).encode())
    assert side.record("succeeded", run)["is_best"] is True
    return run


def challenge(side: Side, wrong: int, key: str = "manifests/new-data.json") -> tuple[dict[str, Any], dict[str, Any]]:
    """A trial on a new test set; RecordResults asks for the champion to be re-scored on it."""
    run = trained(on_test_set(start(side, key, comment="new data"), "3" * 64))
    side.record("started", run)
    side.evaluate(run, json.dumps(good_doc(run, wrong)).encode())
    asked = side.record("succeeded", run)
    assert asked["verdict"] == "rescore" and not asked["is_best"], asked
    return run, asked


def rescored(side: Side, run: dict[str, Any], asked: dict[str, Any], wrong: int | None,
             error: dict[str, str] | None = None, body: bytes | None = None) -> dict[str, Any]:
    """EvaluateChampion wrote the champion's figures (``wrong`` missed; or ``body``; or failed with ``error``);
    then RecordChampion."""
    rescore = asked["rescore"]
    state = copy.deepcopy(run)
    state.setdefault("results", {})["record"] = {"trial": asked}
    if error is not None:
        state["results"]["champion_error"] = error
    else:
        doc = evaluation_doc(wrong or 0, CLASSES, 2, job=job_identity(run["execution_name"], rescore["job_name"]))
        side.evaluate(run, body or json.dumps(doc).encode(), rescore=rescore)
    return side.record("champion", state)


def bests(side: Side) -> list[str]:
    return [t.trial for t in side.trials("cats") if t.is_best]


@case("challenger-loses-on-shared-test-set",
      "a trial of new data that beats the best on raw F1, while the best re-scored on the new test set beats it",
      "the flag stays; both figures on the new test set and the reason are stored", CHAMPION)
def _(side: Side) -> None:
    best = best_with(side, wrong=2)
    run, asked = challenge(side, wrong=1)  # raw: 0.733 against the best's 0.467
    assert asked["rescore"]["champion"] == best["trial"] and asked["rescore"]["attempt"] == 1
    assert asked["rescore"]["model_artifacts"] == best["results"]["training"]["model_artifacts"]
    final = rescored(side, run, asked, wrong=0)  # the best scores 1.0 on the new test set
    assert (final["verdict"], final["is_best"], final["best_trial"]) == ("kept", False, best["trial"])
    assert f"this trial {score(1):.4f}, best {best['trial']} {score(0):.4f}" in final["decision"]
    assert "re-scored" in final["decision"] and final["decision"] in final["message"]
    [mine] = [t for t in side.trials("cats") if t.trial == run["trial"]]
    assert mine.decision == final["decision"] and mine.champion_value == score(0)
    assert bests(side) == [best["trial"]]


@case("challenger-wins-on-shared-test-set",
      "a trial of new data that loses on raw F1, while the best re-scored on the new test set does worse",
      "the flag moves; both figures on the new test set and the reason are stored", CHAMPION)
def _(side: Side) -> None:
    best = best_with(side, wrong=0)
    run, asked = challenge(side, wrong=1)  # raw: 0.733 against the best's 1.0
    final = rescored(side, run, asked, wrong=3)
    assert (final["verdict"], final["is_best"], final["previous_best"]) == ("moved", True, best["trial"])
    assert f"this trial {score(1):.4f}, best {best['trial']} {score(3):.4f}" in final["decision"]
    assert bests(side) == [run["trial"]]


@case("champion-changed-during-rescore", "another trial takes the flag while the best is re-scored for this one",
      "the new best is re-scored (attempt 2), then compared; exactly one best", CHAMPION)
def _(side: Side) -> None:
    first = best_with(side, wrong=2)
    run, asked = challenge(side, wrong=0)
    other = trained(start(side, "manifests/other.json"))  # on the first test set, beats the best meanwhile
    side.record("started", other)
    side.evaluate(other, json.dumps(good_doc(other, 0)).encode())
    assert side.record("succeeded", other)["verdict"] == "moved"
    again = rescored(side, run, asked, wrong=2)  # the figure of a trial that is no longer the best
    assert again["verdict"] == "rescore" and again["rescore"]["champion"] == other["trial"]
    assert again["rescore"]["attempt"] == 2 and again["rescore"]["job_name"].endswith("-champ2")
    assert bests(side) == [other["trial"]]
    final = rescored(side, run, again, wrong=3)
    assert (final["verdict"], final["previous_best"]) == ("moved", other["trial"])
    assert bests(side) == [run["trial"]] and first["trial"] not in bests(side)


@case("rescore-forged", "the best's re-scoring file forged (F1 1.0, other class names)",
      "the flag stays with the best; the decision says its re-scoring was refused", CHAMPION)
def _(side: Side) -> None:
    best = best_with(side, wrong=1)
    run, asked = challenge(side, wrong=0)
    forged = evaluation_doc(0, ("persian", "sphynx"), 2,
                            job=job_identity(run["execution_name"], asked["rescore"]["job_name"]))
    final = rescored(side, run, asked, wrong=None, body=json.dumps(forged).encode())
    assert (final["verdict"], final["is_best"]) == ("kept", False)
    assert "its evaluation was refused" in final["decision"] and "class_names" in final["decision"]
    assert bests(side) == [best["trial"]]


@case("rescore-job-failed", "the best's re-scoring job fails", "the flag stays; the decision names the job's reason",
      CHAMPION)
def _(side: Side) -> None:
    best = best_with(side, wrong=1)
    run, asked = challenge(side, wrong=0)
    error = {"Error": "States.TaskFailed", "Cause": json.dumps({
        "ProcessingJobName": asked["rescore"]["job_name"], "ProcessingJobStatus": "Failed",
        "ExitMessage": "model.tar.gz holds no model.pth", "FailureReason": "AlgorithmError: see the logs"})}
    final = rescored(side, run, asked, wrong=None, error=error)
    assert (final["verdict"], final["is_best"]) == ("kept", False)
    assert "the re-scoring job failed (States.TaskFailed: model.tar.gz holds no model.pth)" in final["decision"]
    [mine] = [t for t in side.trials("cats") if t.trial == run["trial"]]
    assert mine.status == "Completed" and mine.decision == final["decision"]
    assert bests(side) == [best["trial"]]


# -- helpers used above --------------------------------------------------------------------------------------
def mutate(doc: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    node = doc
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return doc


def forgery_fails_with(side: Side, make: Callable[[dict[str, Any]], Any], cause: str, **job: Any) -> None:
    """``forgery_fails`` with a body made for the run (its execution, its job's name)."""
    best = champion(side)
    run = start(side, "manifests/forged.json", comment="forged")
    side.record("started", run)
    body = make(run)
    side.evaluate(run, body if isinstance(body, bytes) else json.dumps(body).encode(), **job)
    finish_failed(side, run, cause, best)


def finish_failed(side: Side, run: dict[str, Any], cause: str, best: dict[str, Any]) -> None:
    before = {t.trial: (t.is_best, t.decision, t.metrics) for t in side.trials("cats") if t.trial != run["trial"]}
    try:
        side.record("succeeded", run)
    except Exception as exc:  # what Lambda reports; the Catch hands it to RecordFailure
        error = {"Error": type(exc).__name__, "Cause": json.dumps({"errorMessage": str(exc)})}
    else:
        raise AssertionError("RecordResults accepted a forged evaluation")
    assert error["Error"] == "EvaluationRefused", error
    failed = side.record("failed", {**run, "error": error})
    assert failed["status"] == "Failed" and cause in failed["error"], failed["error"]
    trials = {t.trial: t for t in side.trials("cats")}
    forged = trials[run["trial"]]
    assert forged.status == "Failed" and not forged.is_best and forged.metrics == {} and cause in forged.error
    assert {t: (r.is_best, r.decision, r.metrics) for t, r in trials.items() if t != run["trial"]} == before
    assert trials[best["trial"]].is_best


assert len({c.id for c in CASES}) == len(CASES)
