"""printable(): what a user or a job wrote reaches the terminal as visible text, never as terminal control."""

from __future__ import annotations

import pytest

from nyanops.terminal import display_width, elide, printable


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain comment", "plain comment"),
        ("move \x1b[2A up", "move \\x1b[2A up"),  # CSI: cursor up (what moved the best marker)
        ("\x1b]0;title\x07", "\\x1b]0;title\\x07"),  # OSC: window title, BEL
        ("c1 \x9b31m", "c1 \\x9b31m"),  # the 8-bit CSI
        ("bell\x07 del\x7f nul\x00", "bell\\x07 del\\x7f nul\\x00"),
        ("two\nlines\r", "two\\nlines\\r"),
        ("tab\there", "tab\\there"),
        ("abc\u202edcba", "abc\\u202edcba"),  # right-to-left override
        ("iso\u2066late\u2069", "iso\\u2066late\\u2069"),
        ("line\u2028sep", "line\\u2028sep"),
        ("bad byte \udcff", "bad byte \\udcff"),  # an undecodable file name byte (surrogateescape)
        ("ねこ Tama 🐈 café", "ねこ Tama 🐈 café"),
        ("👩\u200d💻", "👩\u200d💻"),  # a zero-width joiner inside an emoji stays
    ],
)
def test_printable(text: str, shown: str) -> None:
    assert printable(text) == shown
    assert all(c.isprintable() or c == "\u200d" for c in printable(text))


def test_keep_newlines_keeps_only_plain_newlines() -> None:
    assert printable("a\nb\x1b[K\rc", keep_newlines=True) == "a\nb\\x1b[K\\rc"


def test_non_strings_are_shown_as_text() -> None:
    assert printable(3.5) == "3.5" and printable(None) == "None"


def test_elide_and_width() -> None:
    assert elide("abcdefghij", 5) == "abcd…"
    assert elide("m-epochs10-490f2666abda64e1", 12, middle=True) == "m-epoc…a64e1"
    assert elide("short", 10) == "short"
    assert display_width("ねこ") == 4 and elide("ねこねこ", 5) == "ねこ…"
