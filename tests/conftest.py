"""Shared test set-up: make ``nyanops`` importable from ``src/`` when the package is not installed,
give Powertools a quiet test configuration, and load the Lambda handlers (all named ``app.py``) by path.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from nyanops.sample_photos import SAMPLE_DATA_ENV, SHARED_SAMPLE, built_sample_dir, default_cache_dir

REPO_ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS_DIR = REPO_ROOT / "functions"
EVENTS_DIR = REPO_ROOT / "events"
ASL_FILE = REPO_ROOT / "statemachine" / "training_pipeline.asl.json"

try:
    import nyanops  # noqa: F401
except ImportError:
    sys.path.insert(0, str(REPO_ROOT / "src"))

# The torch-free virtualenv (`make test-core`) cannot even import the ML tests; the ML virtualenv
# (`make test-ml`) runs them. Markers select within a venv; this keeps collection from failing.
collect_ignore = [] if importlib.util.find_spec("torch") else ["ml"]
if importlib.util.find_spec("moto") is None:  # the ML virtualenv has no AWS mocks
    collect_ignore += ["aws", "fidelity"]

# Before any handler module is imported: Powertools reads these at import time.
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "1")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "nyanops")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "nyanops-test")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")

# The X-Ray SDK (imported by Powertools' Tracer) opens its UDP emitter socket at import time; import it
# now, before pytest-socket switches sockets off for unit and moto tests. Nothing is ever sent on it.
with contextlib.suppress(ImportError):  # the [tracer] extra is optional
    import aws_xray_sdk.core  # noqa: F401


def load_handler(name: str) -> ModuleType:
    """Import ``functions/<name>/app.py`` under the unique module name ``nyanops_fn_<name>``.

    Each call returns the already-imported module, so ``set_deps`` on it is seen by later callers.
    """
    module_name = f"nyanops_fn_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    path = FUNCTIONS_DIR / name / "app.py"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load handler {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


def load_event(name: str) -> dict[str, Any]:
    """An example event from ``events/`` (the files ``sam local invoke -e`` takes)."""
    return json.loads((EVENTS_DIR / name).read_text(encoding="utf-8"))


class FakeLambdaContext:
    """The attributes Powertools' ``inject_lambda_context`` reads from a real context."""

    function_name = "nyanops-test-function"
    function_version = "$LATEST"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:nyanops-test-function"
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    log_group_name = "/aws/lambda/nyanops-test-function"
    log_stream_name = "test"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


# Fixtures, so test modules need not import conftest (two conftest.py files share that module name).
@pytest.fixture(name="load_handler")
def _load_handler_fixture() -> Any:
    return load_handler


@pytest.fixture(name="load_event")
def _load_event_fixture() -> Any:
    return load_event


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


# -- real cat photos ---------------------------------------------------------------------------------------
# Looked for in order: NYANOPS_SAMPLE_DATA; ../shared/datasets/cats-dev beside the checkout; the sample
# `nyanops demo` builds from Oxford-IIIT Pet in the cache directory. Missing, the tests that need them are
# skipped with a reason that says how to provide photos, so the summary shows it; with
# NYANOPS_REQUIRE_SAMPLE_PHOTOS=1 (set by .ci/run, which always has them) they fail instead, so a CI run can
# never pass while silently leaving the real-photo tests out.

REQUIRE_ENV = "NYANOPS_REQUIRE_SAMPLE_PHOTOS"


def candidates() -> list[Path]:
    given = os.environ.get(SAMPLE_DATA_ENV)
    if given:
        return [Path(given)]
    return [REPO_ROOT.parent / SHARED_SAMPLE, built_sample_dir(default_cache_dir())]


def sample_photos() -> Path:
    """A folder with train/, val/ and test/ class folders of real photos, or skip (fail under CI)."""
    for path in candidates():
        if (path / "train").is_dir():
            return path
    tried = ", ".join(str(p) for p in candidates())
    message = (
        f"real cat photos not found (tried {tried}): set {SAMPLE_DATA_ENV} to a folder with train/, val/ "
        "and test/ class folders, put cats-dev at ../shared/datasets/cats-dev, or run `make demo` once "
        "(it builds a sample from Oxford-IIIT Pet in the cache)"
    )
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{message}; {REQUIRE_ENV}=1 makes this a failure", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def real_photos() -> Path:
    """The real-photo folder (see ``sample_photos``)."""
    return sample_photos()
