"""Text for a terminal: user-controlled strings made harmless, and tables fitted to the window.

Manifest comments, unknown keys, class names, file names, job output and error messages are written by
users (or by anyone who can write the bucket). Printed as they are, a control character or an escape
sequence in them can move the cursor, recolour or erase what was printed before (an ``ESC [ A`` once
moved the best-model marker to another row), or make text read in an order other than its bytes (the
Unicode bidirectional overrides). ``printable`` shows every such character as a visible escape instead.
"""

from __future__ import annotations

import os
import shutil
import sys
import unicodedata
from typing import TextIO

# Unicode format characters that reorder or hide text (bidi embeddings, overrides and isolates; the
# zero-width and invisible operators stay: emoji sequences and some scripts need them).
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_LINE_BREAKS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")


def _escape(ch: str) -> str:
    code = ord(ch)
    if ch == "\n":
        return "\\n"
    if ch == "\t":
        return "\\t"
    if ch == "\r":
        return "\\r"
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def _unsafe(ch: str) -> bool:
    category = unicodedata.category(ch)
    # Cc: C0 and C1 controls and DEL (ESC starts every escape sequence); Cs: lone surrogates, which is how
    # Python carries undecodable bytes of a file name and which no terminal encoding can print.
    return category in ("Cc", "Cs") or ch in _BIDI or ch in _LINE_BREAKS


def printable(text: object, *, keep_newlines: bool = False) -> str:
    """``text`` with every control character, escape sequence introducer, bidirectional override, line
    separator and undecodable byte replaced by a visible escape (``\\x1b``, ``\\u202e``, ``\\n``...).

    Ordinary text, accents, CJK and emoji are unchanged. With ``keep_newlines`` a plain ``\\n`` is kept
    (for multi-line messages); every other line break is still escaped. Use it on anything a user or a
    job wrote before it reaches the terminal.
    """
    s = text if isinstance(text, str) else str(text)
    if s.isprintable() and s.isascii():
        return s
    out = []
    for ch in s:
        if keep_newlines and ch == "\n":
            out.append(ch)
        elif _unsafe(ch):
            out.append(_escape(ch))
        else:
            out.append(ch)
    return "".join(out)


def terminal_width(stream: TextIO | None = None) -> int | None:
    """The width of the terminal ``stream`` writes to, or None when it is not a terminal (a pipe or a
    file keeps full values). ``COLUMNS`` wins when set, as in most tools."""
    stream = stream or sys.stdout
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    try:
        if not stream.isatty():
            return None
    except (AttributeError, ValueError):
        return None
    return shutil.get_terminal_size((100, 24)).columns


def display_width(text: str) -> int:
    """Columns ``text`` takes on a terminal: East Asian wide and fullwidth characters take two, combining
    marks none."""
    width = 0
    for ch in text:
        if unicodedata.combining(ch):
            continue
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width


def elide(text: str, width: int, *, middle: bool = False) -> str:
    """``text`` cut to at most ``width`` columns with ``…`` where text was left out (at the end, or in the
    middle for names whose end matters, such as execution names ending in a hash)."""
    if display_width(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    if middle:
        keep = width - 1
        head = _take(text, (keep + 1) // 2)
        tail = _take(text[::-1], keep // 2)[::-1]
        return f"{head}…{tail}"
    return _take(text, width - 1) + "…"


def _take(text: str, width: int) -> str:
    out, used = [], 0
    for ch in text:
        w = 0 if unicodedata.combining(ch) else (2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1)
        if used + w > width:
            break
        out.append(ch)
        used += w
    return "".join(out)


def pad(text: str, width: int) -> str:
    """``text`` padded with spaces to ``width`` display columns."""
    return text + " " * max(0, width - display_width(text))
