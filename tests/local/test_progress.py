"""The live progress display: one redrawn status line on a terminal, plain lines otherwise."""

from __future__ import annotations

import io

from nyanops.local.progress import Progress

JOB_LINES = [
    "Epoch 1/3",
    "train Loss: 1.0986 Acc: 0.3333",
    "val Loss: 0.9000 Acc: 0.5000",
    "train Acc: 0.3333 val Acc: 0.5000",
    "Epoch 2/3",
    "train Loss: 0.5000 Acc: 0.8000",
    "val Loss: 0.4000 Acc: 0.8500",
]


def feed(progress: Progress) -> None:
    progress.state_entered("Train", "Task", {})
    for line in JOB_LINES:
        progress.job_line("Train", line)
    progress.state_exited("Train", {})


def test_terminal_gets_one_redrawn_status_line_with_epoch_loss_accuracy_and_eta() -> None:
    out = io.StringIO()
    feed(Progress(out, interactive=True))
    text = out.getvalue()
    frames = text.split("\r\033[K")
    last_status = [f for f in frames if "epoch 2/3" in f][-1]
    assert "train loss 0.5000 acc 0.8000" in last_status and "val loss 0.4000 acc 0.8500" in last_status
    assert "ETA" in last_status
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
