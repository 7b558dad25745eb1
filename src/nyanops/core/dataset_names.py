"""The names a dataset may use: one set of rules for every layer that sees them.

``nyanops dataset add`` applies them to a folder before it copies anything, StartPipeline and the
pipeline's sealer to a bucket listing, so a name is refused (with the same words) wherever it first
appears. What the rules protect:

- train.py skips hidden entries: a class folder ``.thumbs`` (or ``.``/``..`` from a hand-built key) would be
  counted by the listing but never trained on (a num-classes mismatch after paying for the instance), and
  a hidden file such as ``.a.jpg`` would be sealed but never read;
- control characters, bidirectional overrides and backslashes make names that display as something else,
  or that Windows and some tools split into folders;
- names that are not UTF-8 cannot be S3 keys at all (a local folder can hold them);
- class names that differ only in Unicode normalisation (``café`` typed on Linux, NFC, and on a Mac, NFD)
  or only in case (``Tama``/``tama``) are one folder on macOS and Windows and two classes to train.py;
  file names that differ only in normalisation are one file on macOS;
- one name longer than 255 bytes cannot be created on the job's file system (ext4/xfs ``NAME_MAX``); a key
  longer than 1,024 bytes of UTF-8 cannot be stored in S3 (``layout.MAX_KEY_LENGTH``).

Names are checked as given: a dataset consistently named in NFD (as a Mac writes it) is fine.
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from collections.abc import Iterable

from nyanops.core import layout
from nyanops.core.rejection import Problem, UploadRejected

# One path segment on the file systems the jobs and local mode write to (Linux NAME_MAX, in bytes).
MAX_NAME_BYTES = 255
# S3's key limit, 1,024 bytes of UTF-8 (RECORD's core/limits.py will state it for everyone; layout has it today).
MAX_KEY_BYTES = layout.MAX_KEY_LENGTH
MAX_SHOWN = 5
# Unicode format characters that reorder text (bidi embeddings, overrides, isolates and marks).
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def shown(name: str) -> str:
    """``name`` quoted for a message, with control characters, bidi controls and undecodable bytes
    written as escapes (``\\x1b``, ``\\u202e``, ``\\udcff``), so a refusal can be printed and mailed safely."""
    out = []
    for ch in name:
        if _unsafe(ch):
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}")
        else:
            out.append(ch)
    return "'" + "".join(out) + "'"


def _unsafe(ch: str) -> bool:
    return unicodedata.category(ch) in ("Cc", "Cs") or ch in BIDI_CONTROLS


def segment_problem(name: str, kind: str) -> str | None:
    """Why one path segment (``kind``: "class folder" or "file name") cannot be used, or None.

    One reason, the most basic first: a name that is not UTF-8 is reported as that, not also as too long.
    """
    if not name:
        return "is empty"
    if any(unicodedata.category(ch) == "Cs" for ch in name):
        return "is not valid UTF-8"
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        return "contains control characters"
    if any(ch in BIDI_CONTROLS for ch in name):
        return "contains bidirectional control characters"
    if "\\" in name:
        return "contains a backslash"
    if name.startswith("."):
        return "starts with '.' (a hidden name: train.py skips it)"
    size = len(name.encode("utf-8"))
    if size > MAX_NAME_BYTES:
        return f"is {size} bytes long (a {kind} may have at most {MAX_NAME_BYTES} bytes)"
    return None


_FIXES = {
    "is empty": "remove the empty path segment (a key with '//')",
    "is not valid UTF-8": "rename it with UTF-8 characters (the bucket and S3 keys are UTF-8)",
    "contains control characters": "rename it without control characters (tabs, newlines, escapes)",
    "contains bidirectional control characters": "rename it without bidirectional control characters",
    "contains a backslash": "rename it without '\\' (Windows and some tools read it as a folder separator)",
}


def _fix(reason: str, kind: str) -> str:
    if reason.startswith("starts with '.'"):
        return f"rename the {kind} so it does not start with '.', or remove it"
    if reason.startswith("is ") and "bytes long" in reason:
        return f"use a shorter {kind}"
    return _FIXES[reason]


def name_problems(dataset_id: str, rel_paths: Iterable[str]) -> tuple[list[Problem], set[str]]:
    """Every naming problem of the files ``rel_paths`` (``<split>/<class>/<file>``, relative to
    ``datasets/<id>/``), and the set of paths they concern (left out of the layout checks).

    Paths that are not three segments deep are the layout check's business, not this one's; their
    segments are still checked, so a control character anywhere is reported.
    """
    prefix = layout.dataset_prefix(dataset_id)
    by_reason: dict[tuple[str, str], list[str]] = defaultdict(list)
    bad: set[str] = set()
    long_keys: list[tuple[str, int]] = []
    classes: dict[str, set[str]] = defaultdict(set)  # class name -> splits
    files_by_folder: dict[tuple[str, str], list[str]] = defaultdict(list)
    for rel in rel_paths:
        parts = rel.split("/")
        size = len((prefix + rel).encode("utf-8", "surrogatepass"))
        if size > MAX_KEY_BYTES:
            long_keys.append((rel, size))
            bad.add(rel)
        for depth, part in enumerate(parts):
            kind = "file name" if depth == len(parts) - 1 else "class folder" if depth == 1 else "folder"
            if depth == 0 and part in layout.SPLITS:
                continue
            reason = segment_problem(part, kind)
            if reason is not None:
                by_reason[(kind, reason)].append(rel)
                bad.add(rel)
        if len(parts) == 3 and rel not in bad:
            classes[parts[1]].add(parts[0])
            files_by_folder[(parts[0], parts[1])].append(parts[2])
    problems = [
        Problem("dataset", f"{kind} {reason}: {_few(prefix, paths)}", _fix(reason, kind))
        for (kind, reason), paths in sorted(by_reason.items())
    ]
    if long_keys:
        long_keys.sort()
        problems.append(
            Problem(
                "dataset",
                f"keys longer than S3's {MAX_KEY_BYTES} bytes: "
                + ", ".join(f"{shown(prefix + rel)} ({size} bytes)" for rel, size in long_keys[:MAX_SHOWN])
                + _more(len(long_keys)),
                "use shorter class folder and file names (or a shorter dataset id)",
            )
        )
    problems += _collisions(classes, files_by_folder, bad, prefix)
    return problems, bad


def _collisions(
    classes: dict[str, set[str]], files_by_folder: dict[tuple[str, str], list[str]], bad: set[str], prefix: str
) -> list[Problem]:
    problems = []
    by_nfc: dict[str, set[str]] = defaultdict(set)
    for name in classes:
        by_nfc[unicodedata.normalize("NFC", name)].add(name)
    clashes = sorted(sorted(names) for names in by_nfc.values() if len(names) > 1)
    by_case: dict[str, set[str]] = defaultdict(set)
    for nfc, names in by_nfc.items():
        by_case[nfc.casefold()] |= names
    case_clashes = sorted(sorted({unicodedata.normalize("NFC", n) for n in names}) for names in by_case.values()
                          if len({unicodedata.normalize("NFC", n) for n in names}) > 1)
    # The colliding classes' files are judged here, not again as classes one split lacks.
    colliding = {n for names in by_case.values() if len(names) > 1 for n in names}
    bad.update(f"{split}/{cls}/{name}" for (split, cls), names in files_by_folder.items() if cls in colliding
               for name in names)
    if clashes:
        problems.append(
            Problem(
                "dataset",
                "class folders differ only in Unicode normalisation (NFC/NFD, e.g. one typed on a Mac): "
                + "; ".join(" and ".join(_form(n) for n in group) for group in clashes[:MAX_SHOWN])
                + _more(len(clashes)),
                "write each class name the same way in train, val and test (one Unicode form) and upload the "
                "dataset under a new id",
            )
        )
    if case_clashes:
        problems.append(
            Problem(
                "dataset",
                "class folders differ only in case (one folder on macOS and Windows, two classes for train.py): "
                + "; ".join(" and ".join(shown(n) for n in group) for group in case_clashes[:MAX_SHOWN])
                + _more(len(case_clashes)),
                "give each class one spelling, the same in train, val and test, and upload the dataset under a new id",
            )
        )
    same_file = []
    for (split, cls), names in sorted(files_by_folder.items()):
        seen: dict[str, str] = {}
        for name in sorted(names):
            key = unicodedata.normalize("NFC", name)
            if key in seen and seen[key] != name:
                same_file.append(f"{shown(prefix + split + '/' + cls + '/' + seen[key])} and {_form(name)}")
                bad.add(f"{split}/{cls}/{name}")
            seen.setdefault(key, name)
    if same_file:
        problems.append(
            Problem(
                "dataset",
                "file names differ only in Unicode normalisation (one file on macOS): "
                + "; ".join(same_file[:MAX_SHOWN])
                + _more(len(same_file)),
                "rename or remove one of each pair",
            )
        )
    return problems


def _form(name: str) -> str:
    form = "mixed"
    if unicodedata.is_normalized("NFC", name):
        form = "NFC"
    elif unicodedata.is_normalized("NFD", name):
        form = "NFD"
    return f"{shown(name)} ({form})"


def _few(prefix: str, paths: list[str]) -> str:
    return ", ".join(shown(prefix + p) for p in sorted(paths)[:MAX_SHOWN]) + _more(len(paths))


def _more(n: int) -> str:
    return f" and {n - MAX_SHOWN} more" if n > MAX_SHOWN else ""


def check_dataset_id(dataset_id: str, field: str = "dataset") -> None:
    """A dataset id is one path segment: letters, digits, '.', '_' and '-', starting with a letter or digit,
    at most 128 characters (``layout.DATASET_ID_RE``)."""
    if not layout.DATASET_ID_RE.fullmatch(dataset_id):
        raise UploadRejected.one(
            field,
            f"invalid dataset id {shown(dataset_id)}",
            "use letters, digits, '.', '_' and '-' (at most 128, starting with a letter or digit)",
        )
