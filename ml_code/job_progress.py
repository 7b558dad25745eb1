"""Progress lines for long steps of a job (decoding, feature passes, epochs, scoring).

One documented format, parsed by the local runner (``nyanops.local.progress``) and readable in a
SageMaker job log::

    progress: <phase> <done>/<total> <unit>, <rate> <unit>/s, ETA <m:ss>

``phase`` is one lower-case word (``decode``, ``features``, ``epochs``, ``scoring``), ``unit`` is
``images`` or ``epochs``. A line is printed at most once per ``interval`` seconds, and always for the
last item, so a status line never sits silent during a long step and a log is not flooded. The lines
never contain ``Loss:`` or ``Acc:``, so the training job's metric regexes cannot mistake them for metrics.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

PREFIX = "progress: "


def clock(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def progress_line(phase: str, done: int, total: int, unit: str, seconds: float) -> str:
    rate = done / seconds if seconds > 0 else 0.0
    eta = (total - done) / rate if rate > 0 else 0.0
    return f"{PREFIX}{phase} {done}/{total} {unit}, {rate:.1f} {unit}/s, ETA {clock(eta)}"


class Progress:
    """Counts work done in one phase and prints a progress line at most every ``interval`` seconds."""

    def __init__(
        self,
        phase: str,
        total: int,
        unit: str = "images",
        interval: float = 1.0,
        out: TextIO | None = None,
        clock_fn: Callable[[], float] = time.monotonic,
    ) -> None:
        self.phase, self.total, self.unit, self.interval = phase, total, unit, interval
        self.out = out
        self._now = clock_fn
        self.started = clock_fn()
        self._last = -float("inf")
        self.done = 0

    def advance(self, count: int = 1) -> None:
        self.done = min(self.total, self.done + count)
        now = self._now()
        if self.done >= self.total or now - self._last >= self.interval:
            self._last = now
            out = self.out or sys.stdout
            print(progress_line(self.phase, self.done, self.total, self.unit, now - self.started), file=out, flush=True)
