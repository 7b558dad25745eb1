"""RecordResults' logic: register a trial when a run starts, record its evaluation and decide the
experiment's best model when it succeeds (champion / challenger, ``nyanops.core.best_model``), or record
the failure with its cause.

The event is ``{"mode": ..., "run": <the state machine's state>, "execution_arn": <$$.Execution.Id>}``:

- ``started``: create the experiment, the trial and its results component (idempotent); when a completed trial
  of the experiment had the same dataset content, code and recipe (and the run does not say ``force``), record
  the trial as reusing it (``nyanops.core.reuse``): the answer's ``reused_from`` names it ("" otherwise), and
  the state machine skips training;
- ``succeeded``: read the evaluation the execution's own processing job wrote
  (``nyanops.core.evaluation_source``), record the headline figures, decide the best flag. When the best
  trial was evaluated on another test set, the answer carries ``rescore`` (the champion's model and the job
  to re-score it on this run's test split) and the decision waits for ``champion``;
- ``champion``: read the champion's re-scoring (or the error that stopped it) and decide; if the best trial
  changed meanwhile, ask for another re-scoring (at most ``naming.MAX_CHAMPION_ATTEMPTS``);
- ``failed``: record the failure with the cause (a processing job's ``ExitMessage``, a training job's
  ``FailureReason``, a Lambda's error message);
- ``summary``: after every trial of the execution (the Map's iterations): the comparison of its trials as
  recorded, and the experiment's best (``nyanops.core.sweep_summary``), as the one notification of the run.

The per-trial answers carry ``subject`` and ``message`` too (what decided, both figures on the same test set, why
the flag moved or stayed); the run notifies once, with the summary.

When the decision leaves the flag with this trial (it moved here, or a retry finds it here already), the trial's
model is handed over in the model registry (``nyanops.core.model_registry``): registered Approved, the
previously approved version Rejected; the answer's ``model_package`` says what was done.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from nyanops.core import best_model, console, layout, limits, model_registry, naming, reuse, sweep_summary
from nyanops.core.best_model import Decision, Rescored, Verdict
from nyanops.core.evaluation_source import EvaluationRefused, read_job_evaluation
from nyanops.core.experiments import MAX_ERROR, ExperimentStore, TrialResult, TrialStart
from nyanops.core.model_registry import HandOver, ModelRegistry
from nyanops.core.ports import ObjectStore, ProcessingJobs

MODES = ("started", "succeeded", "champion", "failed", "summary")
CHAMPION_OUTPUT_NAME = "champion"


class BadRecordEvent(ValueError):
    pass


@dataclass
class RecordResultsDeps:
    store: ObjectStore
    experiments: ExperimentStore
    jobs: ProcessingJobs
    clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)
    # The model registry the best model is handed over in; None: none (nothing is registered).
    registry: ModelRegistry | None = None


def record(event: dict[str, Any], deps: RecordResultsDeps) -> dict[str, Any]:
    mode = event.get("mode")
    run = event.get("run")
    if mode not in MODES or not isinstance(run, dict):
        raise BadRecordEvent(f"expected {{'mode': one of {MODES}, 'run': <execution state>}}, got mode={mode!r}")
    links = Links.of(event.get("execution_arn"), run)
    if mode == "started":
        start = trial_start(run, deps.clock())
        deps.experiments.start_trial(start)
        reused_from = "" if run.get("force") else reuse.register_reuse(deps.experiments, start, deps.clock())
        return {
            "experiment": run["experiment"],
            "trial": run["trial"],
            "status": "Completed" if reused_from else "InProgress",
            "reused_from": reused_from,
        }
    if mode == "summary":
        return _summarize(run, deps, links)
    if mode == "succeeded":
        return _record_success(run, deps, links)
    if mode == "champion":
        return _record_champion(run, deps, links)
    return _record_failure(run, deps, links)


def classes_key(classes: list[str]) -> str:
    """The identity of a class list (order included: it is the model's output order)."""
    return hashlib.sha256("\n".join(classes).encode("utf-8")).hexdigest()


def identity_of_test_split(dataset: dict[str, Any]) -> str:
    """The identity of the run's test split: ``dataset.split_hashes.test``; a run whose input predates split
    hashes falls back to the dataset's content hash (the same content implies the same test split)."""
    split_hashes = dataset.get("split_hashes")
    if isinstance(split_hashes, dict) and isinstance(split_hashes.get("test"), str) and split_hashes["test"]:
        return str(split_hashes["test"])
    return f"content:{dataset['content_hash']}"


def trial_start(run: dict[str, Any], now: datetime) -> TrialStart:
    dataset = run["dataset"]
    return TrialStart(
        experiment=run["experiment"],
        trial=run["trial"],
        execution_name=run["execution_name"],
        dataset_id=dataset["id"],
        dataset_hash=dataset["content_hash"],
        code_hash=run["code"]["hash"],
        comment=run.get("comment", ""),
        hyperparameters=dict(run.get("hyperparameters") or {}),
        source_key=run["source"]["key"],
        started_at=now,
        test_hash=identity_of_test_split(dataset),
        classes_key=classes_key(list(dataset["classes"])),
    )


def evaluation_location(run: dict[str, Any]) -> str:
    return run["evaluation"]["output_s3_uri"].rstrip("/") + "/" + layout.EVALUATION_FILE


def _metric(run: dict[str, Any]) -> str:
    return best_model.check_metric(run.get("primary_metric", best_model.DEFAULT_PRIMARY_METRIC))


def _tolerance(run: dict[str, Any]) -> float:
    return best_model.check_tolerance(run.get("best_model_tolerance", best_model.DEFAULT_TOLERANCE))


def _read(deps: RecordResultsDeps, run: dict[str, Any], output_uri: str, job_name: str) -> dict[str, Any]:
    dataset = run["dataset"]
    return read_job_evaluation(
        deps.store,
        deps.jobs,
        output_uri=output_uri,
        execution=run["execution_name"],
        job_name=job_name,
        classes=list(dataset["classes"]),
        test_counts=dict(dataset["counts"]["test"]),
    )


def _record_success(run: dict[str, Any], deps: RecordResultsDeps, links: Links) -> dict[str, Any]:
    expected_job = naming.processing_job_name(run["trial"])
    job_name = run["evaluation"]["job_name"]
    if job_name != expected_job:
        raise EvaluationRefused(evaluation_location(run), f"job {job_name} is not this execution's ({expected_job})")
    doc = _read(deps, run, run["evaluation"]["output_s3_uri"], job_name)
    model = doc.get("model") or {}
    result = TrialResult(
        metrics={k: float(v) for k, v in doc["metrics"].items()},
        hyperparameters=dict(model.get("hyperparameters") or run.get("hyperparameters") or {}),
        model_location=run.get("results", {}).get("training", {}).get("model_artifacts", ""),
        evaluation_location=evaluation_location(run),
        finished_at=deps.clock(),
        best_epoch=model.get("best_epoch"),
        num_test_images=doc.get("num_images"),
    )
    decision = best_model.record_and_decide(
        deps.experiments, run["experiment"], run["trial"], _metric(run), _tolerance(run), result=result
    )
    return _answer(run, result.metrics, decision, links, _register_best(run, deps, decision))


def _record_champion(run: dict[str, Any], deps: RecordResultsDeps, links: Links) -> dict[str, Any]:
    pending = (run.get("results", {}).get("record", {}).get("trial") or {}).get("rescore")
    if not isinstance(pending, dict):
        raise BadRecordEvent("mode 'champion' needs results.record.trial.rescore (the re-scoring that ran)")
    champion, attempt = str(pending["champion"]), int(pending["attempt"])
    error = run.get("results", {}).get("champion_error")
    if error:
        rescored = Rescored(champion, None, f"the re-scoring job failed ({failure_text(error)})")
    else:
        try:
            doc = _read(deps, run, pending["output_s3_uri"], pending["job_name"])
        except EvaluationRefused as refused:
            rescored = Rescored(champion, None, f"its evaluation was refused ({refused})")
        else:
            rescored = Rescored(champion, best_model.metric_value(doc["metrics"], _metric(run)))
    decision = best_model.record_and_decide(
        deps.experiments, run["experiment"], run["trial"], _metric(run), _tolerance(run),
        rescored=rescored, attempt=attempt,
    )
    metrics = next((t.metrics for t in deps.experiments.list_trials(run["experiment"]) if t.trial == run["trial"]), {})
    return _answer(run, metrics, decision, links, _register_best(run, deps, decision))


def _register_best(run: dict[str, Any], deps: RecordResultsDeps, decision: Decision) -> HandOver | None:
    """Hand the registry's approval over to this trial when the decision left the best flag with it.

    Under the experiment's lock, and only while the trial still holds the flag: if another trial took it
    meanwhile, that trial's own record hands over (in lock order, so the registry ends with the real best).
    """
    if deps.registry is None or not decision.final or not decision.is_best:
        return None
    with deps.experiments.decision(run["experiment"]) as session:
        best = next((r for r in session.trials() if r.is_best), None)
        if best is None or best.trial != run["trial"]:
            return None
        return model_registry.hand_over(deps.registry, model_registry.PackageSpec.of(best, _metric(run)))


def rescore_request(run: dict[str, Any], decision: Decision) -> dict[str, Any]:
    """What EvaluateChampion needs: the champion's model, the job's name, where it writes (KMS key kept)."""
    assert decision.rescore is not None
    trial = run["trial"]  # the trial's own name (its execution's name for a run of one trial)
    attempt = decision.rescore.attempt
    bucket, _ = layout.parse_s3_uri(run["evaluation"]["output_s3_uri"])
    output_uri = layout.s3_uri(bucket, layout.run_champion_prefix(trial, attempt))
    output_config = json.loads(json.dumps(run["evaluation"]["output_config"]))
    for output in output_config.get("Outputs", []):
        output["S3Output"]["S3Uri"] = output_uri
    return {
        "champion": decision.rescore.champion,
        "model_artifacts": decision.rescore.model_location,
        "attempt": attempt,
        "job_name": naming.champion_job_name(trial, attempt),
        "output_s3_uri": output_uri,
        "output_config": output_config,
    }


def _answer(
    run: dict[str, Any], metrics: dict[str, float], decision: Decision, links: Links,
    registered: HandOver | None = None,
) -> dict[str, Any]:
    metric = _metric(run)
    answer: dict[str, Any] = {
        "experiment": run["experiment"],
        "trial": run["trial"],
        "status": "Completed",
        "metrics": metrics,
        "is_best": decision.is_best,
        "best_trial": decision.best,
        "previous_best": decision.previous_best,
        "verdict": decision.verdict.value,
        "decision": decision.note.text,
    }
    if decision.verdict is Verdict.RESCORE:
        answer["rescore"] = rescore_request(run, decision)
        return answer
    m = metrics
    headline = "NEW BEST" if decision.is_best else f"best remains {decision.best}"
    new_best = " (new best)" if decision.is_best else ""
    value = best_model.metric_value(m, metric)
    figures = "  ".join(f"{label} {m[name]:.4f}" for name, label in _HEADLINE if name in m)
    lines = [
        f"Run {run['trial']} of experiment {run['experiment']} finished.",
        figures,
        f"{metric}: {headline}",
        f"Why: {decision.note.text}.",
        f"dataset {run['dataset']['id']}  comment: {run.get('comment', '')}",
        f"model: {run.get('results', {}).get('training', {}).get('model_artifacts', '')}",
        f"evaluation: {evaluation_location(run)}",
        *([registered.text()] if registered else []),
        *links.lines(run),
    ]
    if registered:
        answer["model_package"] = registered.as_dict()
    # What the model registry did, in one line ("" when nothing): the Map's iteration passes it on to the run's
    # comparison, so the one notification says it.
    answer["registry"] = limits.clip(registered.text(), sweep_summary.REGISTRY_LINE_MAX) if registered else ""
    answer["subject"] = limits.clip(
        f"nyanops: {run['experiment']} {metric} {value if value is not None else 0.0:.3f}{new_best}",
        limits.SNS_SUBJECT_MAX - 1, "...",
    )
    answer["message"] = limits.clip_utf8("\n".join(lines), limits.SNS_MESSAGE_MAX_BYTES // 4)
    return answer


_HEADLINE = (
    ("accuracy", "accuracy"),
    ("macro_precision", "macro precision"),
    ("macro_recall", "macro recall"),
    ("macro_f1", "macro F1"),
)


@dataclass(frozen=True)
class Links:
    """Console links for the notification (none locally: there is no console)."""

    region: str
    execution_arn: str

    @classmethod
    def of(cls, execution_arn: Any, run: dict[str, Any]) -> Links:
        arn = execution_arn if isinstance(execution_arn, str) else ""
        parts = arn.split(":")
        region = parts[3] if len(parts) > 3 and parts[0] == "arn" else ""
        return cls(region, arn)

    def lines(self, run: dict[str, Any]) -> list[str]:
        if not self.region or self.region == "local":
            return []
        out = [f"execution: {console.execution_url(self.region, self.execution_arn)}"]
        training = run.get("training", {}).get("job_name")
        if training:
            out.append(f"training job: {console.training_job_url(self.region, training)}")
        evaluation = run.get("evaluation", {}).get("job_name")
        if evaluation:
            out.append(f"evaluation job: {console.processing_job_url(self.region, evaluation)}")
        return out


def failure_text(error: Any) -> str:
    """A one-paragraph cause from a Catch error object ({"Error", "Cause"}).

    The Cause of a failed ``.sync`` job is its Describe* response: a processing job reports the script's
    reason in ``ExitMessage`` (what it wrote to /opt/ml/output/message; ``FailureReason`` is SageMaker's
    generic text), a training job in ``FailureReason`` (from /opt/ml/output/failure), and a job that was
    stopped says so in ``SecondaryStatus`` (``MaxRuntimeExceeded``). A Lambda's error is its
    ``errorMessage``.
    """
    if not isinstance(error, dict):
        return "unknown error"
    name = str(error.get("Error", "Error"))
    cause: Any = error.get("Cause", "")
    try:
        parsed = json.loads(cause) if isinstance(cause, str) and cause.lstrip().startswith("{") else None
    except json.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict):
        cause = _cause_of(parsed) or cause
    return limits.clip(f"{name}: {cause}", MAX_ERROR)


def _cause_of(parsed: dict[str, Any]) -> str:
    if "ProcessingJobName" in parsed or "ProcessingJobStatus" in parsed:
        reason = parsed.get("ExitMessage") or parsed.get("FailureReason") or ""
        status = parsed.get("ProcessingJobStatus", "")
        return f"{reason}" if status in ("", "Failed") else f"processing job {status}: {reason}".rstrip(": ")
    if "TrainingJobName" in parsed or "TrainingJobStatus" in parsed:
        reason = parsed.get("FailureReason") or ""
        status, secondary = parsed.get("TrainingJobStatus", ""), parsed.get("SecondaryStatus", "")
        if status == "Stopped":
            if reason:
                return f"training job Stopped: {reason}"
            why = "the job ran longer than its MaxRuntimeInSeconds" if secondary == "MaxRuntimeExceeded" else secondary
            return f"training job Stopped ({why})"
        return str(reason)
    return str(parsed.get("errorMessage") or parsed.get("message") or "")


def _record_failure(run: dict[str, Any], deps: RecordResultsDeps, links: Links) -> dict[str, Any]:
    text = failure_text(run.get("error"))
    now = deps.clock()
    deps.experiments.start_trial(trial_start(run, now))  # the run may have failed before its trial existed
    deps.experiments.fail_trial(run["experiment"], run["trial"], text, now)
    lines = [f"Run {run['trial']} of experiment {run['experiment']} failed.", text]
    # A run that failed after its results were recorded (in the best-model decision) keeps them: say so.
    kept = best_model.close_pending(deps.experiments, run["experiment"], run["trial"], text)
    if kept is not None:
        lines.append(f"Its results are recorded; the best flag stays with {kept.best or 'no trial'}: {kept.text}.")
    message = "\n".join([*lines, *links.lines(run)])
    return {
        "experiment": run["experiment"],
        "trial": run["trial"],
        "status": "Failed",
        "error": text,
        "is_best": False,
        "subject": limits.clip(f"nyanops: {run['experiment']} run failed", limits.SNS_SUBJECT_MAX - 1, "..."),
        "message": limits.clip_utf8(message, limits.SNS_MESSAGE_MAX_BYTES // 4),
    }


def _summarize(run: dict[str, Any], deps: RecordResultsDeps, links: Links) -> dict[str, Any]:
    """The comparison of the execution's trials as recorded, and the experiment's best: the run's notification."""
    experiment = run["experiment"]
    outcomes = [o for o in run.get("outcomes") or [] if isinstance(o, dict) and o.get("trial")]
    known = {t.trial for t in deps.experiments.list_trials(experiment)}
    for outcome in outcomes:  # a failure whose recording failed too: recorded now, so no trial stays in progress
        if outcome.get("status") == sweep_summary.NOT_RECORDED and outcome["trial"] in known:
            text = f"{outcome.get('error', 'Error')} (recording the failure failed: {outcome.get('record_error', '')})"
            deps.experiments.fail_trial(experiment, outcome["trial"], text, deps.clock())
    summary = sweep_summary.summarize(
        experiment=experiment,
        execution=run["execution_name"],
        outcomes=outcomes,
        records=deps.experiments.list_trials(experiment),
        metric=_metric(run),
        dataset_id=str(run.get("dataset_id", "")),
        comment=str(run.get("comment", "")),
    )
    handed_over = [str(o["registry"]) for o in outcomes if o.get("registry")]
    lines = [*summary.lines, *handed_over, *links.lines(run)]
    return {
        "experiment": experiment,
        "execution": run["execution_name"],
        "status": "Completed" if summary.completed else "Failed",
        "completed": summary.completed,
        "reused": summary.reused,
        "failed": summary.failed,
        "best_trial": summary.best_trial,
        "subject": limits.clip(summary.subject, limits.SNS_SUBJECT_MAX - 1, "..."),
        "message": limits.clip_utf8("\n".join(lines), limits.SNS_MESSAGE_MAX_BYTES // 8),
    }
