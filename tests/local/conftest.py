"""Make ``nyanops`` importable from src/ when the package is not installed (e.g. a bare checkout)."""

import sys
from pathlib import Path

try:
    import nyanops  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))
