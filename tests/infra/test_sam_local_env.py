"""The environment tests/aws/sam_local_env.py computes for ``sam local invoke`` is the one SAM CLI computes:
SAM's own provider and ``_make_env_vars`` run in the SAM virtualenv (the version the Makefile pins) over
template.yaml, with and without events/env.json, and the results are compared variable by variable."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from aws.sam_local_env import function_environment, load_env_vars_file

from nyanops.sam_template import load_template

ROOT = Path(__file__).resolve().parents[2]
SAM_PYTHON = ROOT / ".venv-sam" / "bin" / "python"

# Runs inside the SAM virtualenv: SAM's provider reads and resolves the template, SAM's LocalLambdaRunner builds
# each function's environment exactly as `sam local invoke --env-vars FILE` does (no shell values: a clean shell).
SAM_SCRIPT = """
import json, sys
from samcli.commands.local.lib.local_lambda import LocalLambdaRunner
from samcli.lib.providers.sam_function_provider import SamFunctionProvider
from samcli.lib.providers.sam_stack_provider import SamLocalStackProvider

stacks, _ = SamLocalStackProvider.get_stacks(sys.argv[1])
runner = LocalLambdaRunner.__new__(LocalLambdaRunner)
runner.env_vars_values = json.loads(sys.argv[2])
runner._boto3_session_creds, runner._boto3_region, runner.aws_profile, runner.aws_region = None, "us-east-1", None, None
runner.debug_context = None
out = {}
for function in SamFunctionProvider(stacks).get_all():
    env = runner._make_env_vars(function)
    env.shell_env_values = {}
    out[function.name] = {k: v for k, v in env.resolve().items() if not k.startswith("AWS_")}
print(json.dumps(out))
"""


@pytest.mark.parametrize("with_file", [False, True], ids=["bare", "env.json"])
def test_our_resolution_matches_sam_cli(with_file: bool) -> None:
    if not SAM_PYTHON.exists():
        pytest.skip("no .venv-sam (make static creates it): cannot ask SAM CLI itself")
    overrides = load_env_vars_file() if with_file else {}
    done = subprocess.run(
        [str(SAM_PYTHON), "-c", SAM_SCRIPT, str(ROOT / "template.yaml"), json.dumps(overrides)],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    sam = json.loads(done.stdout.strip().splitlines()[-1])
    template = load_template(ROOT / "template.yaml")
    assert sam, "SAM found no functions"
    for function, environment in sam.items():
        assert function_environment(template, function, overrides, shell={}) == environment, function
