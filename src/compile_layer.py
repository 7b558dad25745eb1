"""Ship the SharedCoreLayer's third-party packages as byte code, without their sources.

Lambda's code directories are read-only, so Python cannot cache byte code there and every cold start
compiled pydantic, Powertools, the X-Ray SDK and wrapt from source (about a third of the import
time). Sourceless ``.pyc`` files next to where the sources were load directly and are about the size
of the sources, so the layer stays under its size budget. nyanops keeps its sources (readable
tracebacks; it is small). ``.pyc`` files are tied to the interpreter version: this only runs when the
build interpreter is the runtime's (3.11); otherwise the layer keeps its sources and still works.

    python compile_layer.py LAYER_PYTHON_DIR
"""

from __future__ import annotations

import compileall
import re
import sys
from pathlib import Path

RUNTIME = (3, 11)
OWN_PACKAGE = "nyanops"


def main(argv: list[str]) -> int:
    root = Path(argv[1])
    if sys.version_info[:2] != RUNTIME:
        print(
            f"compile_layer: Python {sys.version_info[0]}.{sys.version_info[1]} is not the runtime's "
            f"{RUNTIME[0]}.{RUNTIME[1]}; leaving the layer as sources"
        )
        return 0
    # compile_dir matches rx against full paths: anchor it at this layer's own package directory.
    own = re.compile(re.escape(str(root / OWN_PACKAGE)) + r"([/\\]|$)")
    if not compileall.compile_dir(root, quiet=1, legacy=True, rx=own, workers=0):
        print("compile_layer: a module failed to compile", file=sys.stderr)
        return 1
    for source in root.rglob("*.py"):
        if source.relative_to(root).parts[0] != OWN_PACKAGE and source.with_suffix(".pyc").exists():
            source.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
