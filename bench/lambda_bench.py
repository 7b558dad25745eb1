"""`make bench` (Lambda part): built package sizes and handler cold-import times.

    python bench/lambda_bench.py --sam PATH [--runs 5] [--no-write]

``sam build`` into a temporary dir, then for each function: the unzipped size of its code plus the
SharedCoreLayer, and the median wall time of ``import app`` in a fresh interpreter whose path is what
Lambda gives it: the function dir, the layer's ``python/`` and a stand-in for the runtime's own boto3
(symlinks to this interpreter's boto3, botocore, s3transfer, jmespath, dateutil, urllib3, six). The
site directory is disabled (``-S``) so nothing else leaks in, and Lambda's environment markers are
set, so powertools' Tracer patches botocore as it does on a cold start. The figures replace the
"## Lambda packages" section of docs/benchmarks.md (other sections are left as they are).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from static_checks import FUNCTIONS, LAYER, MAX_PACKAGE_BYTES, package_sizes, sam_build  # noqa: E402

BENCHMARKS = ROOT / "docs" / "benchmarks.md"
SECTION = "## Lambda packages"
MAX_IMPORT_MS = 500
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six")
COMMAND = "make bench (python bench/lambda_bench.py --sam .venv-sam/bin/sam)"


def runtime_standin(target: Path) -> Path:
    """A directory holding only what the python3.11 Lambda runtime adds to the stdlib (boto3 & co)."""
    target.mkdir(parents=True, exist_ok=True)
    for name in RUNTIME_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise SystemExit(f"{name} is not importable here; run the bench from the dev virtualenv")
        origin = Path(spec.origin)
        source = origin.parent if origin.name == "__init__.py" else origin
        (target / source.name).symlink_to(source)
    return target


def lambda_env(function_dir: Path, layer_python: Path, runtime: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": os.pathsep.join(str(p) for p in (function_dir, layer_python, runtime)),
        "PYTHONDONTWRITEBYTECODE": "1",  # Lambda's code directories are read-only: no .pyc cache
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
        "AWS_LAMBDA_FUNCTION_NAME": function_dir.name,
        "LAMBDA_TASK_ROOT": str(function_dir),
        "POWERTOOLS_SERVICE_NAME": function_dir.name,
        "POWERTOOLS_METRICS_NAMESPACE": "nyanops",
    }


IMPORT_PROBE = "import time; t = time.perf_counter(); import app; print((time.perf_counter() - t) * 1000)"


def cold_import_ms(env: dict[str, str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-S", "-c", IMPORT_PROBE], env=env, capture_output=True, text=True, check=False
        )
        if out.returncode != 0:
            raise SystemExit(f"import app failed:\n{out.stderr}")
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return times


def render_section(rows: list[dict[str, object]], layer_bytes: int, runs: int) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d")
    lines = [
        SECTION,
        "",
        f"Measured {when} on {platform.machine()} / Python {platform.python_version()} "
        f"({os.cpu_count()} CPUs) with `{COMMAND}`.",
        f"Size: unzipped bytes of the function's code plus the SharedCoreLayer (layer alone: "
        f"{layer_bytes / 1024 / 1024:.2f} MiB). Import: median of {runs} fresh interpreters running "
        "`import app` with Lambda's path (function, layer `python/`, the runtime's boto3) and no byte-code "
        "cache written (Lambda's code directories are read-only): the layer's third-party packages load "
        "from the sourceless .pyc files it ships (src/compile_layer.py), nyanops compiles from source, as "
        "on a cold start. Lambda's CPU share at 512 MB is smaller than this machine's, so "
        "expect the real init phase to take longer.",
        "",
        "| function | package (function + layer) | cold import (median) | min / max | targets |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        verdict = "ok" if r["size_ok"] and r["import_ok"] else "MISSED"
        lines.append(
            f"| {r['function']} | {r['bytes'] / 1024 / 1024:.2f} MiB | {r['median_ms']:.0f} ms | "
            f"{r['min_ms']:.0f} / {r['max_ms']:.0f} ms | {verdict} (≤ {MAX_PACKAGE_BYTES // 1024 // 1024} MiB, "
            f"≤ {MAX_IMPORT_MS} ms) |"
        )
    return "\n".join(lines) + "\n"


def write_section(text: str, path: Path = BENCHMARKS) -> None:
    """Replace (or append) the ``## Lambda packages`` section; leave every other section alone."""
    current = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(current):
        updated = pattern.sub(lambda _: text + "\n", current, count=1)
    else:
        updated = current.rstrip("\n") + "\n\n" + text
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(updated.rstrip("\n") + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sam", default="sam")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="nyanops-bench-") as tmp:
        build_dir = Path(tmp) / "build"
        built = sam_build(args.sam, build_dir)
        if not built.ok:
            print(built.output, file=sys.stderr)
            return 1
        sizes = package_sizes(build_dir)
        runtime = runtime_standin(Path(tmp) / "runtime")
        rows = []
        for fn in FUNCTIONS:
            times = cold_import_ms(lambda_env(build_dir / fn, build_dir / LAYER / "python", runtime), args.runs)
            median = statistics.median(times)
            rows.append(
                {
                    "function": fn,
                    "bytes": sizes[fn],
                    "median_ms": median,
                    "min_ms": min(times),
                    "max_ms": max(times),
                    "size_ok": sizes[fn] <= MAX_PACKAGE_BYTES,
                    "import_ok": median <= MAX_IMPORT_MS,
                }
            )
    section = render_section(rows, sizes[LAYER], args.runs)
    print(section)
    if not args.no_write:
        write_section(section)
        print(f"wrote the '{SECTION}' section of {BENCHMARKS.relative_to(ROOT)}")
    return 0 if all(r["size_ok"] and r["import_ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
