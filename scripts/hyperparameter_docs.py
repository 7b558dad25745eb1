"""Rewrite the hyperparameter tables of docs/manifest.md and ml_code/README.md from the one table.

    python scripts/hyperparameter_docs.py          # rewrite both files in place
    python scripts/hyperparameter_docs.py --check  # exit 1 if either is out of date (the tests check this too)

The table lives in src/nyanops/core/hyperparameters.py; each doc holds its rendered copy between the
markers ``DOC_BEGIN`` / ``DOC_END``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from nyanops.core import hyperparameters as hp  # noqa: E402

DOCS = {
    ROOT / "docs" / "manifest.md": lambda: hp.markdown_table(hp.manifest_rows(), manifest=True),
    ROOT / "ml_code" / "README.md": lambda: hp.markdown_table(hp.TABLE, roles=True),
}


def rendered() -> dict[Path, str]:
    return {path: hp.render_docs(path.read_text(encoding="utf-8"), table()) for path, table in DOCS.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="only check; exit 1 when a table is out of date")
    args = p.parse_args(argv)
    stale = [path for path, text in rendered().items() if text != path.read_text(encoding="utf-8")]
    if args.check:
        for path in stale:
            print(
                f"{path.relative_to(ROOT)}: hyperparameter table out of date; run python scripts/hyperparameter_docs.py"
            )
        return 1 if stale else 0
    for path, text in rendered().items():
        path.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
