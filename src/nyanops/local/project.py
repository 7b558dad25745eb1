"""Where the pipeline's own files are: the state machine, the handlers and ml_code."""

from __future__ import annotations

import os
from pathlib import Path

STATE_MACHINE = Path("statemachine/training_pipeline.asl.json")
FUNCTIONS = Path("functions")
ML_CODE = Path("ml_code")


class ProjectNotFound(RuntimeError):
    pass


def project_root() -> Path:
    """The nyanops checkout: ``NYANOPS_PROJECT``, else the directory above this package holding the ASL."""
    env = os.environ.get("NYANOPS_PROJECT")
    candidates = [Path(env)] if env else list(Path(__file__).resolve().parents)
    for candidate in candidates:
        if (candidate / STATE_MACHINE).is_file() and (candidate / FUNCTIONS).is_dir():
            return candidate
    raise ProjectNotFound(
        "cannot find the nyanops project files (statemachine/, functions/, ml_code/); "
        "run from a checkout (pip install -e .) or set NYANOPS_PROJECT to the checkout"
    )
