"""What a person watching a local run sees: state by state, and inside a job its progress (images
decoded / featurised / scored, epochs, rate, ETA), loss and accuracy. On a terminal one status line is
redrawn in place; otherwise plain lines, at most one per ``PLAIN_INTERVAL`` seconds for progress.

The jobs report long work as lines of one documented format (ml_code/job_progress.py)::

    progress: <phase> <done>/<total> <unit>, <rate> <unit>/s, ETA <m:ss>
"""

from __future__ import annotations

import re
import sys
import threading
import time
from typing import Any, TextIO

from nyanops.local.asl import NullListener
from nyanops.terminal import printable

EPOCH_RE = re.compile(r"Epoch (\d+)/(\d+)")
METRIC_RE = re.compile(r"\b(train|val) Loss: ([0-9.]+) Acc: ([0-9.]+)")
ERROR_RE = re.compile(r"^(error|Error|ERROR)[: ]")
PROGRESS_RE = re.compile(
    r"^progress: (?P<phase>[a-z][a-z-]*) (?P<done>\d+)/(?P<total>\d+) (?P<unit>[a-z]+), "
    r"(?P<rate>[0-9.]+) [a-z]+/s, ETA (?P<eta>\d+:\d\d)$"
)
PLAIN_INTERVAL = 15.0  # seconds between plain progress lines when output is not a terminal
TICK_SECONDS = 1.0  # a terminal's status line shows the state's elapsed time, redrawn this often


def parse_progress(line: str) -> dict[str, Any] | None:
    """The fields of a ``progress:`` line, or None for any other line."""
    m = PROGRESS_RE.match(line.strip())
    if not m:
        return None
    return {
        "phase": m["phase"],
        "done": int(m["done"]),
        "total": int(m["total"]),
        "unit": m["unit"],
        "rate": float(m["rate"]),
        "eta": m["eta"],
    }


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


class Progress(NullListener):
    """An execution listener plus a job-output sink (``job_line``)."""

    def __init__(self, out: TextIO | None = None, interactive: bool | None = None, verbose: bool = False) -> None:
        self.out = out or sys.stdout
        self.interactive = self.out.isatty() if interactive is None else interactive
        self.verbose = verbose
        self._state = ""
        self._state_started = 0.0
        self._epoch = (0, 0)
        self._epoch_started = 0.0
        self._epoch_seconds: list[float] = []
        self._metrics: dict[str, tuple[float, float]] = {}
        self._line_open = False
        self._caught = ""
        self._trials = 0  # the trials of the execution shown (a sweep's Map iterations)
        self._job: dict[str, Any] | None = None  # the last progress line's fields
        self._plain_at = -float("inf")
        self._status_text = ""  # the status line without its clock
        self._lock = threading.Lock()  # job output arrives on the runner's thread, the ticker has its own
        self._ticking: threading.Event | None = None

    # -- output helpers ----------------------------------------------------------------------------
    # Everything shown passes through printable(): job output, comments in notifications and error causes
    # are user text, and an escape sequence in them would move the cursor or the status line.
    def _print(self, text: str) -> None:
        with self._lock:
            if self._line_open:
                self.out.write("\r\033[K")
                self._line_open = False
            self.out.write(printable(text, keep_newlines=True) + "\n")
            self.out.flush()

    def _status(self, text: str) -> None:
        if self.interactive:
            with self._lock:
                self._status_text = text
                elapsed = _clock(time.monotonic() - self._state_started)
                self.out.write(f"\r\033[K{printable(text)}  [{elapsed}]")
                self.out.flush()
                self._line_open = True

    def _tick(self, stop: threading.Event) -> None:
        """Redraw the status line with the state's elapsed time, so it never sits still on a terminal."""
        while not stop.wait(TICK_SECONDS):
            with self._lock:
                open_line = self._line_open
            if open_line:
                self._status(self._status_text)

    def _start_ticking(self) -> None:
        self._stop_ticking()
        if self.interactive:
            self._ticking = threading.Event()
            threading.Thread(target=self._tick, args=(self._ticking,), name="progress-tick", daemon=True).start()

    def _stop_ticking(self) -> None:
        if self._ticking is not None:
            self._ticking.set()
            self._ticking = None

    # -- the listener ------------------------------------------------------------------------------
    def execution_started(self, name: str, input: Any) -> None:
        self._print(f"execution {name}: experiment {input.get('experiment')}, dataset {input['dataset']['id']}")
        trials = input.get("trials") if isinstance(input.get("trials"), list) else []
        self._trials = len(trials)
        if len(trials) > 1:
            at_once = input.get("max_concurrency") or len(trials)
            self._print(f"  sweep of {len(trials)} trials, at most {min(at_once, len(trials))} at once")

    def state_entered(self, state_name: str, state_type: str, input: Any) -> None:
        first = isinstance(input, dict) and state_name == "RegisterTrial" and isinstance(input.get("index"), int)
        if first and self._trials > 1:  # a Map iteration starts: say which trial the lines are of
            self._print(f"  trial {input['index'] + 1}/{self._trials}: {input.get('trial')}")
        self._state, self._state_started = state_name, time.monotonic()
        self._epoch, self._epoch_seconds, self._metrics = (0, 0), [], {}
        self._job, self._plain_at = None, -float("inf")
        if state_type in ("Task", "Fail"):
            self._status(f"  {state_name} ...")
            if state_type == "Task":
                self._start_ticking()

    def state_exited(self, state_name: str, output: Any) -> None:
        self._stop_ticking()
        if self._caught == state_name:  # already said: "failed with ... -> next state"
            self._caught = ""
            return
        took = time.monotonic() - self._state_started
        self._print(f"  {state_name:<14} done in {took:6.1f} s")

    def state_retry(self, state_name: str, error: str, cause: str | None, attempt: int, delay_seconds: float) -> None:
        self._print(f"  {state_name:<14} {error}; retry {attempt} in {delay_seconds:.1f} s")

    def state_caught(self, state_name: str, error: str, next_state: str) -> None:
        self._stop_ticking()
        self._caught = state_name
        self._print(f"  {state_name:<14} failed with {error} -> {next_state}")

    def execution_succeeded(self, output: Any) -> None:
        self._stop_ticking()
        self._print("  SUCCEEDED")

    def execution_failed(self, error: str | None, cause: str | None) -> None:
        self._stop_ticking()
        self._print(f"  FAILED: {error}: {cause}")

    def execution_aborted(self, reason: str) -> None:
        self._stop_ticking()
        self._print(f"  INTERRUPTED: {reason}")

    # -- job output --------------------------------------------------------------------------------
    def job_line(self, state: str, line: str) -> None:
        if self.verbose or ERROR_RE.match(line):
            self._print(f"    {state}| {line}")
        job = parse_progress(line)
        if job is not None:
            self._job = job
            if job["unit"] == "epochs":  # the epoch lines carry the epoch display
                return
            if self.interactive:
                self._redraw()
            else:
                now = time.monotonic()
                if job["done"] >= job["total"] or now - self._plain_at >= PLAIN_INTERVAL:
                    self._plain_at = now
                    self._print(f"    {self._describe()}")
            return
        m = EPOCH_RE.search(line)
        if m:
            now = time.monotonic()
            if self._epoch[0]:
                self._epoch_seconds.append(now - self._epoch_started)
            self._epoch, self._epoch_started = (int(m.group(1)), int(m.group(2))), now
            self._job = None
            self._redraw()
            return
        m = METRIC_RE.search(line)
        if m:
            self._metrics[m.group(1)] = (float(m.group(2)), float(m.group(3)))
            if m.group(1) == "val":
                if not self.interactive:
                    self._print(f"    {self._describe()}")
                else:
                    self._redraw()

    def _describe(self) -> str:
        job = self._job
        if job is not None and job["unit"] != "epochs":
            return (
                f"{self._state} {job['phase']} {job['done']}/{job['total']} {job['unit']}, "
                f"{job['rate']:.1f} {job['unit']}/s, ETA {job['eta']}"
            )
        epoch, total = self._epoch
        parts = [f"{self._state} epoch {epoch}/{total}"]
        for split in ("train", "val"):
            if split in self._metrics:
                loss, acc = self._metrics[split]
                parts.append(f"{split} loss {loss:.4f} acc {acc:.4f}")
        if self._epoch_seconds and total:
            per_epoch = sum(self._epoch_seconds) / len(self._epoch_seconds)
            if per_epoch >= 1.0:
                parts.append(f"ETA {_clock(per_epoch * (total - epoch + 1))}")
            else:  # an ETA of 0:00 for epochs that take milliseconds says nothing: show their rate
                parts.append(f"{1 / max(per_epoch, 1e-3):.0f} epochs/s")
        return "  ".join(parts)

    def _redraw(self) -> None:
        self._status("  " + self._describe())

    def publish(self, topic: str, subject: str, message: str) -> None:
        self._print(f"  [notification] {subject}\n" + "\n".join("    " + line for line in message.splitlines()))
