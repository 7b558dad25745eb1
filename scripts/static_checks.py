"""`make static`: the template and workflow checks that need external tools.

    python scripts/static_checks.py --sam PATH --cfn-lint PATH --checkov PATH [--asl-validator PATH]

Runs, in order: ``sam validate --lint``, ``sam validate --region us-east-1`` (the SAM transform, offline),
``cfn-lint template.yaml``, ``checkov`` on ``template.yaml`` and on its SAM-translated CloudFormation (the
functions' generated roles and the state machine only exist there; the translation runs offline with the
``samtranslator`` of the sam executable's virtualenv), ``asl-validator`` on every ``statemachine/*.asl.json``
and ``sam build`` into a temporary build dir, then checks the unzipped size of each built function plus the
layer. Prints one line per check and the failing tool's output; exits 1 on any failure.

checkov fails on any finding that ``template.yaml`` does not suppress itself (``Metadata: checkov: skip``
with a reason on the resource; ``docs/security.md`` lists them): no ``--skip-check`` here.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
MAX_PACKAGE_BYTES = 10 * 1024 * 1024  # function + layer, unzipped (docs/benchmarks.md target)
FUNCTIONS = ("StartPipelineFunction", "RecordResultsFunction", "NoteDatasetUploadsFunction", "SealDatasetsFunction")
LAYER = "SharedCoreLayer"


@dataclass
class Step:
    name: str
    ok: bool
    seconds: float
    output: str = ""


def tree_bytes(path: Path) -> int:
    """Bytes of every regular file under ``path`` (what the unzipped package holds)."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def tool_env() -> dict[str, str]:
    env = dict(os.environ)
    env["SAM_CLI_TELEMETRY"] = "0"
    env.setdefault("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    return env


def run_tool(name: str, argv: list[str], timeout: int = 600) -> Step:
    start = time.monotonic()
    try:
        proc = subprocess.run(
            argv, cwd=ROOT, env=tool_env(), capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError as exc:
        return Step(name, False, time.monotonic() - start, f"{argv[0]}: not found ({exc})")
    except subprocess.TimeoutExpired:
        return Step(name, False, time.monotonic() - start, f"timed out after {timeout}s")
    return Step(name, proc.returncode == 0, time.monotonic() - start, (proc.stdout + proc.stderr).strip())


# Translates a SAM template to plain CloudFormation offline (argv: template, output JSON). Local code
# locations become placeholder S3 URIs, as `sam validate` does; no AWS call is made.
SAM_TRANSLATE = """
import json, sys
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

class NoManagedPolicies:
    def load(self):
        return {}

template = yaml_parse(open(sys.argv[1]).read())
for name, resource in template.get("Resources", {}).items():
    props = resource.get("Properties") or {}
    for key in ("CodeUri", "ContentUri", "DefinitionUri"):
        if isinstance(props.get(key), str) and not props[key].startswith("s3://"):
            props[key] = "s3://placeholder-bucket/" + name
json.dump(transform(template, {}, NoManagedPolicies()), open(sys.argv[2], "w"), indent=1, default=str)
"""
CHECKOV_ARGS = ["--framework", "cloudformation", "--skip-download", "--quiet", "--compact", "-o", "json"]


def sam_python(sam: str) -> str:
    """The interpreter of the sam executable's virtualenv (it has samtranslator)."""
    found = shutil.which(sam) or sam
    candidate = Path(found).parent / "python"
    return str(candidate) if candidate.exists() else sys.executable


def checkov_scan(name: str, checkov: str, template: Path) -> Step:
    """checkov on one template: any failed check, parsing error or empty scan fails the step."""
    step = run_tool(name, [checkov, "-f", str(template), *CHECKOV_ARGS])
    try:  # the JSON report, possibly with warnings around it (stdout and stderr are joined)
        report, _ = json.JSONDecoder().raw_decode(step.output, step.output.index("{"))
    except ValueError:
        return Step(name, False, step.seconds, step.output or "no JSON report")
    summary = report.get("summary", report)
    failed = (report.get("results") or {}).get("failed_checks", [])
    lines = [
        f"passed {summary.get('passed', 0)}, failed {summary.get('failed', 0)}, skipped {summary.get('skipped', 0)},"
        f" parsing errors {summary.get('parsing_errors', 0)}, resources {summary.get('resource_count', 0)}"
    ]
    lines += [f"{c['check_id']} {c['resource']}: {c['check_name']}" for c in failed]
    ok = (
        not failed
        and summary.get("failed", 0) == 0
        and summary.get("parsing_errors", 0) == 0
        and summary.get("resource_count", 0) > 0
    )
    return Step(name, ok, step.seconds, "\n".join(lines))


def checkov_steps(checkov: str, sam: str) -> list[Step]:
    steps = [checkov_scan("checkov template.yaml", checkov, TEMPLATE)]
    with tempfile.TemporaryDirectory(prefix="nyanops-checkov-") as tmp:
        translated = Path(tmp) / "translated.json"
        env_region = {"AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1")}
        start = time.monotonic()
        proc = subprocess.run(
            [sam_python(sam), "-c", SAM_TRANSLATE, str(TEMPLATE), str(translated)],
            cwd=ROOT, env=tool_env() | env_region, capture_output=True, text=True, timeout=300, check=False,
        )
        if proc.returncode != 0:
            output = (proc.stdout + proc.stderr).strip()
            return [*steps, Step("checkov (SAM-translated)", False, time.monotonic() - start, output)]
        steps.append(checkov_scan("checkov (SAM-translated)", checkov, translated))
    return steps


def sam_build(sam: str, build_dir: Path) -> Step:
    return run_tool(
        "sam build",
        [sam, "build", "--template-file", str(TEMPLATE), "--build-dir", str(build_dir)],
    )


def package_sizes(build_dir: Path) -> dict[str, int]:
    """Unzipped bytes per function (its code plus the layer every function uses)."""
    layer = tree_bytes(build_dir / LAYER)
    return {fn: tree_bytes(build_dir / fn) + layer for fn in FUNCTIONS} | {LAYER: layer}


def check_sizes(sizes: dict[str, int]) -> Step:
    lines = [f"{name}: {size / 1024 / 1024:.2f} MiB" for name, size in sizes.items()]
    too_big = [fn for fn in FUNCTIONS if sizes[fn] > MAX_PACKAGE_BYTES]
    if too_big:
        lines.append(f"over {MAX_PACKAGE_BYTES // 1024 // 1024} MiB (function + layer): {', '.join(too_big)}")
    return Step("package sizes", not too_big, 0.0, "\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sam", default="sam", help="the sam executable")
    parser.add_argument("--cfn-lint", default="cfn-lint", help="the cfn-lint executable")
    parser.add_argument("--checkov", default="checkov", help="the checkov executable (its own virtualenv)")
    parser.add_argument("--asl-validator", default=str(ROOT / "node_modules" / ".bin" / "asl-validator"))
    args = parser.parse_args(argv)

    asl_files = sorted((ROOT / "statemachine").glob("*.asl.json"))
    steps = [
        run_tool("sam validate --lint", [args.sam, "validate", "--lint", "--template-file", str(TEMPLATE)]),
        run_tool(
            "sam validate (transform)",
            [args.sam, "validate", "--region", "us-east-1", "--template-file", str(TEMPLATE)],
        ),
        run_tool("cfn-lint", [args.cfn_lint, str(TEMPLATE)]),
        *checkov_steps(args.checkov, args.sam),
    ]
    steps += [
        run_tool(f"asl-validator {f.name}", [args.asl_validator, "--json-path", str(f)]) for f in asl_files
    ]
    with tempfile.TemporaryDirectory(prefix="nyanops-sam-build-") as tmp:
        build_dir = Path(tmp) / "build"
        built = sam_build(args.sam, build_dir)
        steps.append(built)
        if built.ok:
            steps.append(check_sizes(package_sizes(build_dir)))

    failed = [s for s in steps if not s.ok]
    for s in steps:
        print(f"{'ok  ' if s.ok else 'FAIL'} {s.name} ({s.seconds:.1f}s)")
        if s.name == "package sizes" or s.name.startswith("checkov") or not s.ok:
            print("\n".join("     " + line for line in s.output.splitlines()))
    print(f"{len(steps) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
