"""The longest time the local status line sits unchanged during a default run (`nyanops run --wait`).

    python bench/progress_gap.py --data ../shared/datasets/cats-dev [--out FILE]

Adds the data folder as a dataset (without starting a run), then runs a manifest without
hyperparameters (the default recipe) through `nyanops run MANIFEST --wait` on a pseudo-terminal, so the
CLI draws its redrawn status line as a person would see it. Every write of the terminal output is
time-stamped; the status line "changes" when a state line is printed or the redrawn text differs from
the one before. Reports the longest gap between two changes (and where it happened) from the first
state to the end of the run, and the same ignoring the elapsed-time clock (the longest time without news
from the job: a new progress, epoch or state line). Target (issue 9): never more than 5 s.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import pty
import re
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FRAME = re.compile(r"\r\x1b\[K")
CLOCK = re.compile(r"  \[\d+:\d\d\]$")  # the state's elapsed time the status line ends with


def screen_changes(chunks: list[tuple[float, str]]) -> list[tuple[float, str]]:
    """(time, text) each time the visible status line changes: a new redrawn frame or a printed line."""
    changes: list[tuple[float, str]] = []
    last = None
    buffer = ""
    for at, text in chunks:
        buffer += text
        parts = FRAME.split(buffer)
        buffer = parts[-1]
        for part in parts[:-1] + ([buffer] if buffer.endswith("\n") else []):
            shown = part.strip()
            if shown and shown != last:
                changes.append((at, shown))
                last = shown
        if buffer.endswith("\n"):
            buffer = ""
    return changes


def longest_gap(changes: list[tuple[float, str]]) -> tuple[float, str]:
    gaps = [(b[0] - a[0], a[1]) for a, b in itertools.pairwise(changes)]
    return max(gaps) if gaps else (0.0, "")


def run_on_pty(cmd: list[str]) -> list[tuple[float, str]]:
    master, slave = pty.openpty()
    proc = subprocess.Popen(cmd, stdout=slave, stderr=slave, stdin=subprocess.DEVNULL, close_fds=True)
    os.close(slave)
    chunks: list[tuple[float, str]] = []
    while True:
        ready, _, _ = select.select([master], [], [], 1.0)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append((time.monotonic(), data.decode(errors="replace")))
        elif proc.poll() is not None:
            break
    proc.wait()
    os.close(master)
    if proc.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{''.join(t for _, t in chunks)[-3000:]}")
    return chunks


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--data", default=os.environ.get("NYANOPS_SAMPLE_DATA", str(REPO.parent / "shared/datasets/cats-dev"))
    )
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    cli = [sys.executable, "-m", "nyanops.local.cli"]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "root"
        subprocess.run(
            [*cli, "--root", str(root), "dataset", "add", args.data, "--name", "gap", "--no-run"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        manifest = Path(tmp) / "default.json"
        manifest.write_text(json.dumps({"experiment": "gap", "dataset": "datasets/gap"}))
        load = os.getloadavg()
        started = time.monotonic()
        chunks = run_on_pty([*cli, "--root", str(root), "run", str(manifest), "--wait"])
        wall = time.monotonic() - started
    changes = screen_changes(chunks)
    gap, before = longest_gap(changes)
    # The same without the elapsed-time clock: how long the status line went without news from the job.
    news: list[tuple[float, str]] = []
    for at, text in changes:
        text = CLOCK.sub("", text)
        if not news or news[-1][1] != text:
            news.append((at, text))
    news_gap, news_before = longest_gap(news)
    result = {
        "wall_s": round(wall, 1),
        "status_changes": len(changes),
        "longest_unchanged_s": round(gap, 2),
        "unchanged_after": before,
        "longest_without_job_news_s": round(news_gap, 2),
        "without_news_after": news_before,
        "load_average_at_start": [round(v, 2) for v in load],
        "load_average_at_end": [round(v, 2) for v in os.getloadavg()],
    }
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
