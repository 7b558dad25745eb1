"""Run a ``pip install`` and show how far it is, instead of minutes of silence (``pip -q``) or pages of log.

    python3 scripts/pip_progress.py --label .venv-ml --log .venv-ml/pip-install.log -- .venv-ml/bin/pip install ...

pip's own output goes to the log file; the terminal gets one line per phase, redrawn in place on a terminal
(a plain line per change otherwise), with the elapsed time:

    [.venv-ml 0:14] resolving: 23 packages so far (last: nvidia-cudnn-cu12)
    [.venv-ml 0:41] downloading 7/38: torch-2.14.1-cp311-cp311-manylinux_2_28_x86_64.whl (887.4 MB)
    [.venv-ml 2:02] installing 38 packages (torch alone takes a minute to unpack)
    [.venv-ml 2:57] done: 38 packages installed

On failure it prints the last lines of pip's output and exits with pip's status. Standard library only: it
runs with the system Python before any virtualenv exists.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

COLLECTING = re.compile(r"^(?:Collecting|Processing) (\S+)")
DOWNLOADING = re.compile(r"^\s*Downloading (\S+?)(?: \(([^)]+)\))?\s*$")
CACHED = re.compile(r"^\s*Using cached (\S+)")
INSTALLING = re.compile(r"^Installing collected packages: (.*)$")
SUCCESS = re.compile(r"^Successfully installed (.*)$")
BUILDING = re.compile(r"^\s*(Building|Preparing|Getting requirements|Installing build dependencies)\b(.*)")
TAIL_LINES = 25


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}"


def _name(spec: str) -> str:
    """``torch==2.14.1`` or ``torch-2.14.1-cp311...whl`` -> ``torch``."""
    base = spec.rsplit("/", 1)[-1]
    return re.split(r"[=<>!~\[;(]|-\d", base, maxsplit=1)[0]


class Display:
    def __init__(self, label: str, out: TextIO, interactive: bool, clock: Callable[[], float] = time.monotonic) -> None:
        self.label, self.out, self.interactive, self.clock = label, out, interactive, clock
        self.started = clock()
        self.last = ""
        self.open = False

    def show(self, text: str) -> None:
        if text == self.last:
            return
        self.last = text
        line = f"[{self.label} {_clock(self.clock() - self.started)}] {text}"
        if self.interactive:
            width = max(20, os.get_terminal_size(self.out.fileno()).columns - 1) if _is_tty(self.out) else 200
            self.out.write("\r\033[K" + line[:width])
            self.open = True
        else:
            self.out.write(line + "\n")
        self.out.flush()

    def finish(self, text: str) -> None:
        self.last = ""
        self.show(text)
        if self.interactive:
            self.out.write("\n")
            self.out.flush()


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Progress:
    """pip's output lines in, one status line out."""

    def __init__(self, display: Display) -> None:
        self.display = display
        self.collected: list[str] = []
        self.fetched = 0
        self.installing = 0

    def feed(self, line: str) -> None:
        line = line.rstrip("\n")
        if m := COLLECTING.match(line):
            self.collected.append(_name(m.group(1)))
            self.display.show(f"resolving: {len(self.collected)} packages so far (last: {self.collected[-1]})")
        elif (m := DOWNLOADING.match(line)) and not m.group(1).endswith(".metadata"):
            self.fetched += 1
            size = f" ({m.group(2)})" if m.group(2) else ""
            total = max(self.fetched, len(self.collected))
            self.display.show(f"downloading {self.fetched}/{total}: {m.group(1)}{size}")
        elif (m := CACHED.match(line)) and not m.group(1).endswith(".metadata"):
            self.fetched += 1
            total = max(self.fetched, len(self.collected))
            self.display.show(f"from the cache {self.fetched}/{total}: {m.group(1)}")
        elif m := BUILDING.match(line):
            self.display.show(f"{m.group(1).lower()}{m.group(2)}"[:160])
        elif m := INSTALLING.match(line):
            names = [n.strip() for n in m.group(1).split(",") if n.strip()]
            self.installing = len(names)
            heavy = " (torch alone takes a minute to unpack)" if "torch" in names else ""
            self.display.show(f"installing {len(names)} packages{heavy}")

    def done(self, line: str | None) -> str:
        if line and (m := SUCCESS.match(line)):
            return f"done: {len(m.group(1).split())} packages installed"
        return "done: nothing new to install"


def run(command: list[str], label: str, log: Path, out: TextIO, interactive: bool) -> int:
    display = Display(label, out, interactive)
    progress = Progress(display)
    display.show(f"starting: {' '.join(command[:3])} ... (full log: {log})")
    log.parent.mkdir(parents=True, exist_ok=True)
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    success = None
    env = {**os.environ, "PIP_PROGRESS_BAR": "off", "PYTHONUNBUFFERED": "1"}
    with open(log, "w", encoding="utf-8") as fh:
        proc = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1, env=env,
            errors="replace",
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            fh.write(line)
            tail.append(line.rstrip("\n"))
            if SUCCESS.match(line):
                success = line.rstrip("\n")
            progress.feed(line)
        code = proc.wait()
    if code != 0:
        display.finish(f"FAILED (pip exit status {code}); the last lines of {log}:")
        out.write("\n".join(f"    {t}" for t in tail) + "\n")
        out.flush()
        return code
    display.finish(progress.done(success))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--label", required=True, help="what is being installed, shown on each line")
    parser.add_argument("--log", required=True, type=Path, help="file for pip's full output")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the pip command")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the pip command after --")
    command = [c for c in command if c not in ("-q", "--quiet")]
    return run(command, args.label, args.log, sys.stdout, _is_tty(sys.stdout))


if __name__ == "__main__":
    sys.exit(main())
