"""Per-module scores of the last mutation run (``make mutation``), read from mutmut's result files.

    python scripts/mutation_scores.py              # the table (Markdown), as docs/reliability.md shows it
    python scripts/mutation_scores.py --survivors  # and the name of every mutant that survived
    python scripts/mutation_scores.py --min 90     # exit 1 when a module kills less than 90 %

A mutant counts as killed when a test failed (exit code 1 or 3) or it ran past mutmut's time limit (a mutant
that makes the code loop is caught); "survived" means every selected test passed with it; "no tests"
means no selected test reaches its function. A surviving mutant named (in backquotes) in the equivalents
file, docs/reliability.md by default, where each is explained, counts as "equivalent": no test can tell it
from the original. The score is killed / (all - skipped - equivalent), the usual mutation score. A mutant
listed as equivalent that a test kills is reported, so the list cannot go stale unnoticed.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path

KILLED = {1, 3}
TIMEOUT = {36, 24, -24, 152, 255}
NO_TESTS = {5, 33}
SKIPPED = {34, 37}
NOT_KILLED = ("survived", "no tests", "suspicious")
MUTANT_NAME = re.compile(r"`(nyanops\.[^`\s]+__mutmut_\d+)`")


EQUIVALENTS_HEADING = re.compile(r"^(#+) Equivalent mutants\s*$", re.MULTILINE)


def equivalents(path: Path | None) -> set[str]:
    """The mutant names an explanation file names in backquotes: under its "Equivalent mutants" heading (up to
    the next heading of that level or above) when it has one, else anywhere; none when there is no such file."""
    if path is None or not path.is_file():
        return set()
    text = path.read_text(encoding="utf-8")
    heading = EQUIVALENTS_HEADING.search(text)
    if heading:
        text = text[heading.end():]
        end = re.search(rf"^#{{1,{len(heading.group(1))}}} ", text, re.MULTILINE)
        text = text[: end.start()] if end else text
    return set(MUTANT_NAME.findall(text))


def status(code: int | None) -> str:
    if code in KILLED or code in TIMEOUT:
        return "killed"
    if code == 0:
        return "survived"
    if code in NO_TESTS:
        return "no tests"
    if code in SKIPPED:
        return "skipped"
    return "not checked" if code is None else "suspicious"


def module_of(meta: Path, root: Path) -> str:
    return meta.relative_to(root).as_posix().removesuffix(".py.meta").removeprefix("src/").replace("/", ".")


def scores(root: Path, explained: frozenset[str] | set[str] = frozenset()) -> dict[str, tuple[Counter[str], list[str]]]:
    out: dict[str, tuple[Counter[str], list[str]]] = {}
    for meta in sorted(root.rglob("*.py.meta")):
        codes = json.loads(meta.read_text(encoding="utf-8")).get("exit_code_by_key", {})
        counts: Counter[str] = Counter()
        for name, code in codes.items():
            kind = status(code)
            counts["equivalent" if kind == "survived" and name in explained else kind] += 1
        survivors = sorted(
            name for name, code in codes.items() if status(code) in NOT_KILLED and name not in explained
        )
        out[module_of(meta, root)] = (counts, survivors)
    return out


def killed_but_listed(root: Path, explained: set[str]) -> list[str]:
    """Mutants the equivalents file calls equivalent that a test kills."""
    out = []
    for meta in sorted(root.rglob("*.py.meta")):
        codes = json.loads(meta.read_text(encoding="utf-8")).get("exit_code_by_key", {})
        out += sorted(name for name, code in codes.items() if name in explained and status(code) == "killed")
    return out


def score(counts: Counter[str]) -> float:
    total = sum(counts.values()) - counts["skipped"] - counts["equivalent"]
    return 100.0 * counts["killed"] / total if total else 100.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=Path("mutants"), help="mutmut's working folder")
    parser.add_argument("--survivors", action="store_true", help="list the mutants that were not killed")
    parser.add_argument("--min", type=float, default=None, help="fail when a module's score is below this")
    parser.add_argument("--equivalents", type=Path, default=Path("docs/reliability.md"),
                        help="the file naming (in backquotes) and explaining the equivalent mutants")
    args = parser.parse_args(argv)
    explained = equivalents(args.equivalents)
    results = scores(args.root, explained)
    if not results:
        print(f"no mutation results under {args.root}/ (run `make mutation` first)", file=sys.stderr)
        return 2
    print("| module | mutants | killed | equivalent | survived | no tests | score |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for module, (counts, _) in results.items():
        total = sum(counts.values()) - counts["skipped"]
        if counts["not checked"] == total:
            print(f"| `{module}` | {total} | | | | | not run |")
            continue
        unchecked = f" ({counts['not checked']} not checked)" if counts["not checked"] else ""
        print(f"| `{module}` | {total} | {counts['killed']} | {counts['equivalent']} | {counts['survived']} "
              f"| {counts['no tests']} | {score(counts):.1f} %{unchecked} |")
    stale = killed_but_listed(args.root, explained)
    if stale:
        print(f"listed as equivalent but killed by a test: {', '.join(stale)}", file=sys.stderr)
    if args.survivors:
        for module, (_, survivors) in results.items():
            for name in survivors:
                print(f"{module}: {name}")
    low = [m for m, (c, _) in results.items() if args.min is not None and score(c) < args.min]
    low += [m for m, (c, _) in results.items() if args.min is not None and c["not checked"] and m not in low]
    if low:
        print(f"below {args.min:g} %: {', '.join(low)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
