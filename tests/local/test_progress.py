"""The live progress display: one redrawn status line on a terminal, plain lines otherwise."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from nyanops.local import progress as progress_module
from nyanops.local.progress import PLAIN_INTERVAL, Progress, parse_progress

ASL = Path(__file__).resolve().parents[2] / "statemachine" / "training_pipeline.asl.json"

JOB_LINES = [
    "Epoch 1/3",
    "train Loss: 1.0986 Acc: 0.3333",
    "val Loss: 0.9000 Acc: 0.5000",
    "train Acc: 0.3333 val Acc: 0.5000",
    "Epoch 2/3",
    "train Loss: 0.5000 Acc: 0.8000",
    "val Loss: 0.4000 Acc: 0.8500",
]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(progress_module.time, "monotonic", fake)
    return fake


def feed(progress: Progress, clock: FakeClock | None = None, epoch_seconds: float = 0.0) -> None:
    progress.state_entered("Train", "Task", {})
    for line in JOB_LINES:
        if clock is not None and line.startswith("Epoch"):
            clock.now += epoch_seconds
        progress.job_line("Train", line)
    progress.state_exited("Train", {})


def test_terminal_gets_one_redrawn_status_line_with_epoch_loss_accuracy_and_eta(clock: FakeClock) -> None:
    out = io.StringIO()
    feed(Progress(out, interactive=True), clock, epoch_seconds=30.0)
    text = out.getvalue()
    frames = text.split("\r\033[K")
    last_status = [f for f in frames if "epoch 2/3" in f][-1]
    assert "train loss 0.5000 acc 0.8000" in last_status and "val loss 0.4000 acc 0.8500" in last_status
    assert "ETA 1:00" in last_status  # 30 s per epoch, epoch 2 of 3 under way: two epochs left
    assert text.rstrip().endswith("s")  # the state's summary line replaces the status line
    assert "Train          done in" in text


def test_pipe_gets_plain_lines_one_per_epoch() -> None:
    out = io.StringIO()
    feed(Progress(out, interactive=False))
    text = out.getvalue()
    assert "\r" not in text and "\033" not in text
    epoch_lines = [line for line in text.splitlines() if "epoch" in line]
    assert len(epoch_lines) == 2
    assert "Train epoch 1/3" in epoch_lines[0] and "val loss 0.9000 acc 0.5000" in epoch_lines[0]


def test_job_errors_are_shown_even_when_not_verbose() -> None:
    out = io.StringIO()
    progress = Progress(out, interactive=False)
    progress.job_line("Train", "error: train/bengal/x.jpg: cannot decode image; remove or replace it")
    progress.job_line("Train", "some chatter")
    assert "cannot decode image" in out.getvalue() and "chatter" not in out.getvalue()


def test_epochs_that_fly_by_show_their_rate_not_eta_zero(clock: FakeClock) -> None:
    out = io.StringIO()
    feed(Progress(out, interactive=True), clock, epoch_seconds=0.05)
    last_status = [f for f in out.getvalue().split("\r\033[K") if "epoch 2/3" in f][-1]
    assert "ETA" not in last_status and "20 epochs/s" in last_status


PROGRESS_LINES = [
    "progress: decode 1/390 images, 18.7 images/s, ETA 0:21",
    "progress: features 120/390 images, 6.1 images/s, ETA 0:44",
    "progress: epochs 3/15 epochs, 2.5 epochs/s, ETA 0:05",
    "progress: scoring 160/160 images, 7.0 images/s, ETA 0:00",
]


def test_parse_progress_reads_the_documented_format() -> None:
    assert parse_progress(PROGRESS_LINES[1]) == {
        "phase": "features",
        "done": 120,
        "total": 390,
        "unit": "images",
        "rate": 6.1,
        "eta": "0:44",
    }
    assert parse_progress(PROGRESS_LINES[2])["unit"] == "epochs"
    for other in ("Epoch 1/3", "train Loss: 1.0 Acc: 0.5", "progress: features 1/2", "my progress: decode 1/2 images"):
        assert parse_progress(other) is None


def test_progress_lines_are_never_taken_for_metrics() -> None:
    definitions = json.loads(ASL.read_text())["States"]["Trials"]["ItemProcessor"]["States"]["Train"]["Parameters"][
        "AlgorithmSpecification"]["MetricDefinitions"]
    assert definitions
    for line in PROGRESS_LINES:
        assert not any(re.search(d["Regex"], line) for d in definitions), line


def test_terminal_redraws_the_status_line_for_each_progress_line(clock: FakeClock) -> None:
    out = io.StringIO()
    progress = Progress(out, interactive=True)
    progress.state_entered("Evaluate", "Task", {})
    progress.job_line("Evaluate", "progress: scoring 64/160 images, 7.0 images/s, ETA 0:14")
    clock.now += 65
    progress.job_line("Evaluate", "progress: scoring 64/160 images, 7.0 images/s, ETA 0:14")
    progress.state_exited("Evaluate", {})
    frames = out.getvalue().split("\r\033[K")
    assert frames[-2] == "  Evaluate scoring 64/160 images, 7.0 images/s, ETA 0:14  [1:05]"
    assert frames[-1].startswith("  Evaluate       done in")


def test_pipe_gets_occasional_progress_lines_not_a_flood(clock: FakeClock) -> None:
    out = io.StringIO()
    progress = Progress(out, interactive=False)
    progress.state_entered("Train", "Task", {})
    for done in range(1, 391):  # one line a second, as the job writes them
        clock.now += 1.0
        progress.job_line("Train", f"progress: features {done}/390 images, 1.0 images/s, ETA 0:00")
    lines = [line for line in out.getvalue().splitlines() if "features" in line]
    assert 390 / PLAIN_INTERVAL <= len(lines) <= 390 / PLAIN_INTERVAL + 2
    assert lines[-1].strip().startswith("Train features 390/390 images")
    assert "\r" not in out.getvalue()


def test_the_terminal_status_line_ticks_while_a_job_is_silent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress_module, "TICK_SECONDS", 0.01)
    out = io.StringIO()
    progress = Progress(out, interactive=True)
    progress.state_entered("Train", "Task", {})
    progress.job_line("Train", "progress: decode 5/390 images, 18.7 images/s, ETA 0:21")
    import time

    deadline = time.monotonic() + 5
    while out.getvalue().count("decode 5/390") < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    progress.state_exited("Train", {})
    assert out.getvalue().count("decode 5/390") >= 3  # redrawn without new job output
    count = out.getvalue().count("\r")
    time.sleep(0.05)
    assert out.getvalue().count("\r") == count  # the ticker stopped with the state
