"""Synthetic report inputs built with the standard library only (no torch, no Pillow): trial records,
valid evaluation.json documents, execution histories (shaped like Step Functions' GetExecutionHistory, for
the real state machine file) and tiny solid-colour PNG photos."""

from __future__ import annotations

import json
import struct
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from nyanops.core.evaluation_report import build_evaluation_report, metrics_from_confusion
from nyanops.core.experiments import TrialRecord
from nyanops.execution_view import ExecutionView, build_view
from nyanops.report import ExperimentReport, TrialReport

ASL = json.loads((Path(__file__).resolve().parents[2] / "statemachine" / "training_pipeline.asl.json").read_text())

CLASSES = ["Mike", "Tama", "other"]
T0 = datetime(2026, 11, 28, 6, 43, tzinfo=UTC)
INJECTION = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A solid-colour 8-bit RGB PNG."""
    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def evaluation(misclassified: list[dict[str, Any]], epochs: int = 3, classes: list[str] | None = None) -> dict:
    classes = classes or CLASSES
    n = len(classes)
    matrix = [[4 if i == j else 0 for j in range(n)] for i in range(n)]
    for m in misclassified:
        i, j = classes.index(m["true"]), classes.index(m["predicted"])
        matrix[i][j] += 1
    metrics, figures = metrics_from_confusion(matrix)  # a report's figures follow from its matrix
    per_class = {c: figures[i] for i, c in enumerate(classes)}
    history = [
        {"epoch": e, "train_loss": 1.0 / e, "train_acc": 0.5 + 0.1 * e, "val_loss": 1.2 / e, "val_acc": 0.45 + 0.1 * e,
         "seconds": 3.0}
        for e in range(1, epochs + 1)
    ]
    return build_evaluation_report(
        class_names=classes,
        metrics=metrics,
        per_class=per_class,
        confusion_matrix=matrix,
        misclassified=misclassified,
        model_meta={"arch": "resnet18", "best_epoch": epochs, "history": history,
                    "hyperparameters": {"epochs": epochs}, "dataset_hash": None},
        created_at="2026-11-28T07:00:00Z",
    )


def record(trial: str, f1: float | None, *, best: bool = False, status: str = "Completed", comment: str = "",
           hp: dict[str, Any] | None = None, minutes: int = 0) -> TrialRecord:
    started = T0 + timedelta(minutes=minutes)
    metrics = {} if f1 is None else {"accuracy": f1 + 0.05, "macro_precision": f1, "macro_recall": f1,
                                     "macro_f1": f1}
    return TrialRecord(
        experiment="cats", trial=trial, status=status, started_at=started,
        finished_at=started + timedelta(seconds=95), dataset_id="ds1", comment=comment,
        hyperparameters=hp or {}, metrics=metrics, is_best=best,
        error="TrainingFailed: out of memory" if status == "Failed" else "",
    )


def events(failed_state: str | None = None, cause: str = "out of memory") -> list[dict[str, Any]]:
    """A history like GetExecutionHistory's: the success path, or a failure caught in ``failed_state`` and
    recorded (RecordFailure, NotifyFailure, PipelineFailed)."""
    out: list[dict[str, Any]] = []
    at = T0

    def add(kind: str, seconds: float, details_key: str | None = None, **details: Any) -> None:
        nonlocal at
        at += timedelta(seconds=seconds)
        event: dict[str, Any] = {"id": len(out) + 1, "type": kind, "timestamp": at}
        if details_key:
            event[details_key] = details
        out.append(event)

    def state(name: str, took: float, kind: str = "Task", fail: bool = False) -> None:
        add(f"{kind}StateEntered", 0.01, "stateEnteredEventDetails", name=name, input="{}")
        if kind == "Task":
            add("TaskScheduled", 0.01, "taskScheduledEventDetails", resourceType="lambda", resource="invoke",
                parameters="{}")
            if fail:
                add("TaskFailed", took, "taskFailedEventDetails", error="TrainingFailed", cause=cause)
            else:
                add("TaskSucceeded", took, "taskSucceededEventDetails", output="{}")
        if kind != "Fail":
            add(f"{kind}StateExited", 0.01, "stateExitedEventDetails", name=name, output="{}")

    add("ExecutionStarted", 0, "executionStartedEventDetails", input="{}")
    for name, took in (("RegisterTrial", 0.2), ("Train", 60), ("Evaluate", 20), ("RecordResults", 0.3)):
        state(name, took, fail=name == failed_state)
        if name == failed_state:
            state("RecordFailure", 0.2)
            state("NotifyFailure", 0.1)
            state("PipelineFailed", 0, kind="Fail")
            add("ExecutionFailed", 0.01, "executionFailedEventDetails", error="PipelineFailed", cause="a step failed")
            return out
    state("Notify", 0.1)
    state("Done", 0, kind="Succeed")
    add("ExecutionSucceeded", 0.01, "executionSucceededEventDetails", output="{}")
    return out


def view(name: str, failed_state: str | None = None, cause: str = "out of memory") -> ExecutionView:
    status = "FAILED" if failed_state else "SUCCEEDED"
    return build_view(ASL, events(failed_state, cause), name=name, status=status)


COLOURS = [(220, 30, 30), (30, 160, 40), (30, 60, 220), (230, 160, 0)]


def experiment() -> ExperimentReport:
    """Three trials: the best one (two misclassified photos), a worse one whose comment tries an HTML
    injection (one photo), and a failed one (no evaluation)."""
    m1 = [
        {"path": "Tama/tama_shadow.jpg", "true": "Tama", "predicted": "other", "confidence": 0.71},
        {"path": "Mike/mike_cut.jpg", "true": "Mike", "predicted": "Tama", "confidence": 0.55},
    ]
    m2 = [{"path": "other/lookalike.jpg", "true": "other", "predicted": "Tama", "confidence": 0.93}]
    trials = [
        TrialReport(
            record=record("t-best", 0.91, best=True, comment="epochs 10 + augmentation",
                          hp={"epochs": 10, "augment": True}, minutes=0),
            execution="t-best", execution_status="SUCCEEDED", evaluation=evaluation(m1, epochs=4),
            view=view("t-best"),
            thumbnails={m1[0]["path"]: png(64, 48, COLOURS[0]), m1[1]["path"]: png(40, 60, COLOURS[1])},
        ),
        TrialReport(
            record=record("t-worse", 0.62, comment=INJECTION, hp={"epochs": 3, "augment": False}, minutes=5),
            execution="t-worse", execution_status="SUCCEEDED", evaluation=evaluation(m2, epochs=3),
            view=view("t-worse"),
            thumbnails={m2[0]["path"]: png(50, 50, COLOURS[2])},
        ),
        TrialReport(
            record=record("t-failed", None, status="Failed", hp={"epochs": 99}, minutes=9),
            execution="t-failed", execution_status="FAILED", view=view("t-failed", "Train"),
        ),
    ]
    return ExperimentReport("cats", trials)
