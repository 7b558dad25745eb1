"""Background worker started by ``nyanops run`` / ``dataset add`` without ``--wait``: runs every
pending execution of a local root, one after another, then exits."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from nyanops.local.progress import Progress
from nyanops.local.runner import LocalPipeline, default_root


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nyanops.local.worker", description=__doc__)
    parser.add_argument("--root", default=str(default_root()))
    args = parser.parse_args(argv)
    pipeline = LocalPipeline(Path(args.root), Progress(interactive=False))
    try:
        pipeline.reap_orphans()
        pipeline.run_pending()
    except KeyboardInterrupt:
        return 130
    finally:
        pipeline.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
