"""``nyanops run`` and ``nyanops execution`` on a local root: exit statuses, and the console-style view of a
succeeded, a failed, a running and an interrupted execution, with ``--state`` for one state in full."""

from __future__ import annotations

import json
import re
import signal
import time
from pathlib import Path

from nyanops.execution_view import nested_states

from .conftest import FAIL, WAIT, Local


def started(out: str) -> str:
    match = re.search(r"started execution (\S+)", out)
    assert match, out
    return match.group(1)


def test_exit_statuses_succeeded_failed_refused(local: Local) -> None:
    ok = local.cli("run", str(local.manifest("ok")), "--wait")
    assert ok.code == 0, ok.out + ok.err
    failed = local.cli("run", str(local.manifest("bad", seed=FAIL)), "--wait")
    assert failed.code == 1
    assert "CUDA out of memory" in failed.err and "\x1b" not in failed.err
    refused_manifest = local.tmp / "refused.json"
    refused_manifest.write_text(json.dumps({"experiment": "cats", "dataset": "datasets/nope"}))
    refused = local.cli("run", str(refused_manifest), "--wait")
    assert refused.code == 2 and "refused manifests/refused.json" in refused.err and "datasets/nope" in refused.err


def test_a_succeeded_execution_state_by_state(local: Local) -> None:
    name = started(local.cli("run", str(local.manifest()), "--wait").out)
    out = local.cli("execution", name[:8]).out
    rows = [line.split()[:2] for line in out.splitlines() if line.startswith("  ") and len(line.split()) >= 2]
    states = dict(rows)
    order = [r[0] for r in rows if r[0] in states and r[1] in ("succeeded", "not", "failed", "caught")]
    asl = json.loads((Path(__file__).resolve().parents[2] / "statemachine" / "training_pipeline.asl.json").read_text())
    # every state listed, in the ASL file's order: the Map's own states right after it
    assert order == [name for name, _, _ in nested_states(asl)]
    assert order[:6] == ["Trials", "RegisterTrial", "ReuseOrTrain", "TrialReused", "Train", "TrainApiError"]
    assert "1 iteration: 1 succeeded" in out
    assert states["Train"] == "succeeded" and states["Done"] == "succeeded" and states["RecordFailure"] == "not"
    assert "SUCCEEDED" in out and "failed in" not in out


def test_a_failed_execution_names_the_state_and_the_cause(local: Local) -> None:
    name = started(local.cli("run", str(local.manifest("bad", seed=FAIL)), "--wait").out)
    out = local.cli("execution", name).out
    train = next(line for line in out.splitlines() if line.strip().startswith("Train "))
    assert "caught" in train and "-> RecordFailure" in train and "States.TaskFailed" in train
    assert "failed in Train: States.TaskFailed" in out
    assert "CUDA out of memory \\x1b[2A(simulated)" in out and "\x1b" not in out  # readable, and harmless
    assert "the execution ended FAILED: PipelineFailed" in out


def test_one_state_in_full_and_an_unknown_state(local: Local) -> None:
    name = started(local.cli("run", str(local.manifest(comment="epochs 2")), "--wait").out)
    out = local.cli("execution", name, "--state", "train").out  # any case
    assert out.startswith("state Train (Task, sagemaker:createTrainingJob.sync)")
    assert f"job       training job {name}-train" in out and "next      TrainingCompleted" in out
    for section in ("input:", "request (parameters sent to the resource):", "result (what the resource returned):",
                    "output:"):
        assert f"\n{section}\n" in out, section
    assert '"TrainingJobName": "' + name + '-train"' in out and '"comment": "epochs 2"' in out
    as_json = json.loads(local.cli("execution", name, "--state", "Evaluate", "--json").out)
    assert as_json["status"] == "succeeded" and as_json["job"]["kind"] == "processing"
    missing = local.cli("execution", name, "--state", "Nope")
    assert missing.code == 2 and "no state 'Nope'" in missing.err and "RegisterTrial" in missing.err


def test_a_running_execution_marks_the_state_in_progress_with_the_jobs_last_line(local: Local) -> None:
    release = local.root / "release"
    run = local.background("run", str(local.manifest("slow", seed=WAIT)), "--wait")
    try:
        deadline = time.monotonic() + 60
        while True:
            listed = local.cli("executions", "--json").out
            names = [e["name"] for e in json.loads(listed)]
            out = local.cli("execution", names[0]).out if names else ""
            if "RUNNING" in out and "waiting for" in out:
                break
            assert time.monotonic() < deadline, out
            time.sleep(0.2)
        train = next(line for line in out.splitlines() if line.strip().startswith("Train "))
        assert "RUNNING" in train and re.search(r"\d+(\.\d)? s|\dm\d\ds", train)
        progress = out.splitlines()[out.splitlines().index(train) + 1]
        assert progress.strip().startswith("> waiting for") and "last metric: val Loss: 0.6000 Acc: 0.6500" in progress
        assert "status      RUNNING (" in out and "so far)" in out
        assert re.search(r"Evaluate\s+not run", out)
    finally:
        release.write_text("go")
        assert run.wait(timeout=60) == 0, run.stdout.read() if run.stdout else ""


def test_an_interrupted_execution_names_the_state_it_stopped_in(local: Local) -> None:
    run = local.background("run", str(local.manifest("stopped", seed=WAIT)), "--wait")
    deadline = time.monotonic() + 60
    while "waiting for" not in "".join(p.read_text() for p in local.root.glob("jobs/*/output.log")):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    run.send_signal(signal.SIGINT)
    assert run.wait(timeout=60) == 130
    name = json.loads(local.cli("executions", "--json").out)[0]["name"]
    out = local.cli("execution", name).out
    assert "status      INTERRUPTED" in out
    assert re.search(r"Train\s+interrupted", out) and "interrupted in Train" in out
