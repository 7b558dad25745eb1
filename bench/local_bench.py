"""Local pipeline overhead: `nyanops run --wait` against running train.py and evaluation.py by hand
on the same data with the same arguments; the time from `nyanops run` to the first training epoch;
optionally the wall time of `nyanops demo`.

    .venv-ml/bin/python bench/local_bench.py --data ../shared/datasets/cats-dev [--repeats 3] [--demo]

Prints a Markdown table (paste it into docs/benchmarks.md) and writes JSON next to it with --out.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HYPER = {"epochs": 2, "seed": 0}


def timed_lines(
    cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None
) -> tuple[float, float | None]:
    """Run ``cmd``; return (wall seconds, seconds until a line containing 'Epoch 1/' appeared)."""
    start = time.perf_counter()
    first_epoch = None
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=cwd)
    assert proc.stdout is not None
    tail = []
    for line in proc.stdout:
        tail = [*tail, line][-20:]
        if first_epoch is None and "Epoch 1/" in line:
            first_epoch = time.perf_counter() - start
    if proc.wait() != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{''.join(tail)}")
    return time.perf_counter() - start, first_epoch


def by_hand(data: Path, work: Path) -> tuple[float, float | None]:
    model, out = work / "model", work / "eval"
    args = [a for k, v in HYPER.items() for a in (f"--{k}", str(v))]
    py = sys.executable
    t_train, first = timed_lines(
        [
            py,
            str(REPO / "ml_code/train.py"),
            "--train-dir",
            str(data / "train"),
            "--val-dir",
            str(data / "val"),
            "--model-dir",
            str(model),
            "--num-classes",
            "3",
            *args,
        ]
    )
    t_eval, _ = timed_lines(
        [
            py,
            str(REPO / "ml_code/evaluation.py"),
            "--model-dir",
            str(model),
            "--test-dir",
            str(data / "test"),
            "--output-dir",
            str(out),
        ]
    )
    return t_train + t_eval, first


def pipeline(root: Path, manifest: Path) -> tuple[float, float | None]:
    # --verbose makes the CLI echo the job's lines, so the first epoch is seen as it happens.
    return timed_lines(
        [sys.executable, "-m", "nyanops.cli", "--root", str(root), "run", str(manifest), "--wait", "--verbose"]
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--data", default=os.environ.get("NYANOPS_SAMPLE_DATA", str(REPO.parent / "shared/datasets/cats-dev"))
    )
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--demo", action="store_true", help="also time `nyanops demo` on a fresh root")
    ap.add_argument("--out", type=Path, help="write the raw figures as JSON here")
    args = ap.parse_args()
    data = Path(args.data)
    results: dict[str, list[float]] = {"hand": [], "pipeline": [], "hand_first_epoch": [], "pipeline_first_epoch": []}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        root = work / "root"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "nyanops.cli",
                "--root",
                str(root),
                "dataset",
                "add",
                str(data),
                "--name",
                "bench",
                "--no-run",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        for i in range(args.repeats):
            hand, hand_first = by_hand(data, work / f"hand{i}")
            manifest = work / f"bench{i}.json"
            manifest.write_text(
                json.dumps(
                    {
                        "experiment": "bench",
                        "dataset": "datasets/bench",
                        "comment": f"bench {i}",
                        "hyperparameters": HYPER,
                    }
                )
            )
            piped, piped_first = pipeline(root, manifest)
            results["hand"].append(hand)
            results["pipeline"].append(piped)
            results["hand_first_epoch"].append(hand_first or float("nan"))
            results["pipeline_first_epoch"].append(piped_first or float("nan"))
            print(f"run {i}: by hand {hand:.1f} s, pipeline {piped:.1f} s", file=sys.stderr)
        if args.demo:
            demo_wall, _ = timed_lines(
                [sys.executable, "-m", "nyanops.cli", "--root", str(work / "demo"), "demo", "--data", str(data)]
            )
            results["demo"] = [demo_wall]
    med = {k: statistics.median(v) for k, v in results.items()}
    overhead = med["pipeline"] - med["hand"]
    print(f"| figure (median of {args.repeats}) | value |\n|---|---|")
    print(f"| train.py + evaluation.py by hand | {med['hand']:.1f} s |")
    print(f"| `nyanops run --wait`, same data and arguments | {med['pipeline']:.1f} s |")
    print(f"| overhead of the local pipeline | {overhead:.1f} s ({100 * overhead / med['hand']:.1f} %) |")
    print(f"| start to first training epoch: by hand | {med['hand_first_epoch']:.1f} s |")
    print(f"| start to first training epoch: `nyanops run` | {med['pipeline_first_epoch']:.1f} s |")
    if "demo" in med:
        print(f"| `nyanops demo` wall time (dataset add + 2 default-recipe runs + report) | {med['demo']:.0f} s |")
    if args.out:
        args.out.write_text(json.dumps({"raw": results, "median": med, "hyperparameters": HYPER}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
