"""The model registry on the local side, end to end: real state machine, real local job runner, the tiny ml_code
bundle of test_champion_local (its evaluation misclassifies as many test images as the test says per job), and
``nyanops models`` on the root afterwards.

A first trial registers version 1 Approved; a better one version 2 (version 1 Rejected); a worse one nothing; a
trial on a new dataset that beats the champion re-scored on its test split version 3 (the champion decision)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from nyanops.cli import main
from nyanops.core.model_registry import APPROVED, REJECTED
from nyanops.local.runner import LocalPipeline

from .test_champion_local import run, setup, trials

WRONG = {"first-eval": 3, "better-eval": 1, "worse-eval": 4, "new-eval": 0, "new-champ1": 2}


def test_the_registry_follows_the_best_flag_and_models_lists_it(
    pipeline: LocalPipeline, tmp_path: Path, console: io.StringIO, capsys: pytest.CaptureFixture[str],
) -> None:
    code = setup(pipeline, tmp_path, WRONG)
    first, _ = run(pipeline, "first", "cats-old", code)
    assert [(p.version, p.trial, p.status) for p in pipeline.model_registry.packages("cats")] == [
        (1, first, APPROVED)]
    better, _ = run(pipeline, "better", "cats-old", code)
    worse, _ = run(pipeline, "worse", "cats-old", code)
    new, states = run(pipeline, "new", "cats-new", code)
    assert "EvaluateChampion" in states
    records = trials(pipeline)
    assert records[new].is_best and not records[worse].is_best
    packages = pipeline.model_registry.packages("cats")
    assert [(p.version, p.trial, p.status) for p in packages] == [
        (1, first, REJECTED), (2, better, REJECTED), (3, new, APPROVED)]
    assert packages[2].dataset_id == "cats-new" and packages[2].value == pytest.approx(records[new].metrics["macro_f1"])
    assert packages[2].model_location == records[new].model_location
    assert packages[2].metadata["code_hash"] == code and packages[2].metadata["test_hash"] == records[new].test_hash
    printed = console.getvalue()
    assert f"model registry: trial {new} registered as version 3, Approved; version 2 ({better}) Rejected" in printed
    assert f"model registry: trial {worse}" not in printed

    root = str(pipeline.root)
    capsys.readouterr()
    assert main(["models", "--root", root]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["experiment", "version", "status", "trial", "metric", "dataset", "created"]
    assert [line.split()[:4] for line in lines[1:]] == [
        ["cats", "3", APPROVED, new], ["cats", "2", REJECTED, better], ["cats", "1", REJECTED, first]]
    assert lines[1].split()[4:7] == ["macro_f1", f"{records[new].metrics['macro_f1']:.4f}", "cats-new"]
    assert main(["models", "CATS", "--json", "--root", root]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(m["version"], m["status"], m["trial"]) for m in listed] == [
        (3, APPROVED, new), (2, REJECTED, better), (1, REJECTED, first)]
    assert listed[0]["model_location"] == records[new].model_location and listed[0]["created_at"]
    assert main(["models", "dogs", "--root", root]) == 0
    assert "no model packages yet in experiment dogs" in capsys.readouterr().out
    # cleanup deletes the trial records, never the registry a deployment may be using (docs/reviewing.md)
    assert main(["cleanup", "cats", "--yes", "--root", root]) == 0
    assert pipeline.experiments.list_trials("cats") == []
    assert [p.version for p in pipeline.model_registry.packages("cats")] == [1, 2, 3]
