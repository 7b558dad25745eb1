"""What the terminal gets: user text made printable, the comparison table fitted to the window (full values
with --wide or into a pipe), and exact help for every option of every command, --root before or after it."""

from __future__ import annotations

import argparse
import json

import pytest

from nyanops.cli import build_parser, subcommand_parsers

from .conftest import Local

ESCAPE = "\x1b[2A\x1b[31m"  # cursor up two lines, red: what once moved the best marker


def test_comments_with_escape_sequences_cannot_move_the_best_marker(local: Local) -> None:
    assert local.cli("run", str(local.manifest("a", comment=f"first {ESCAPE}moved", seed=5)), "--wait").code == 0
    assert local.cli("run", str(local.manifest("b", comment="second \u202edesrever", seed=6)), "--wait").code == 0
    out = local.cli("experiments", "cats").out
    assert "\x1b" not in out and "\u202e" not in out
    assert "first \\x1b[2A\\x1b[31mmoved" in out and "second \\u202edesrever" in out
    best = [line for line in out.splitlines() if line.startswith("*")]
    assert len(best) == 1
    execution = local.cli("execution", json.loads(local.cli("executions", "--json").out)[0]["name"], "--state", "Train")
    assert "\x1b" not in execution.out and "\u202e" not in execution.out


def test_a_refusal_shows_user_keys_escaped(local: Local) -> None:
    manifest = local.tmp / "evil.json"
    manifest.write_text(json.dumps({"experiment": "cats", "dataset": "datasets/ds1", f"x{ESCAPE}y": 1}))
    refused = local.cli("run", str(manifest))
    assert refused.code == 2
    assert "\x1b" not in refused.err and "\\x1b[2A" in refused.err


def test_the_table_fits_the_terminal_and_wide_shows_everything(local: Local, monkeypatch: pytest.MonkeyPatch) -> None:
    long_comment = "a very long comment about what changed in this trial " * 3
    assert local.cli("run", str(local.manifest("a", comment=long_comment, seed=7)), "--wait").code == 0
    assert local.cli("run", str(local.manifest("b", comment="short", seed=8)), "--wait").code == 0
    piped = local.cli("experiments").out  # not a terminal: full values
    assert long_comment.strip() in piped
    monkeypatch.setenv("COLUMNS", "115")
    fitted = local.cli("experiments").out
    table = [line for line in fitted.splitlines()[1:] if line]
    assert max(len(line) for line in table) <= 115, fitted
    assert "…" in fitted and long_comment.strip() not in fitted
    assert "0.8333" in fitted  # metrics keep their width (macro precision of the stub evaluation)
    wide = local.cli("experiments", "--wide").out
    assert long_comment.strip() in wide


def leaf_commands() -> list[tuple[list[str], argparse.ArgumentParser]]:
    """Every runnable command as its argv prefix (``["dataset", "add"]``), with its parser."""
    out = []

    def walk(parser: argparse.ArgumentParser, prefix: list[str]) -> None:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            out.append((prefix, parser))
        for action in subs:
            for name, child in action.choices.items():
                walk(child, [*prefix, name])

    walk(build_parser(), [])
    return out


REQUIRED = {"run": ["m.json"], "execution": ["x"], "invoke": ["F", "--event", "e.json"], "dataset add": ["d"],
            "predict": ["cat.jpg"], "rerun": ["T"]}


@pytest.mark.parametrize("command", [c for c, _ in leaf_commands()], ids=" ".join)
def test_root_works_before_and_after_every_command(command: list[str]) -> None:
    parser = build_parser()
    rest = REQUIRED.get(" ".join(command), [])
    assert parser.parse_args(["--root", "/before", *command, *rest]).root == "/before"
    assert parser.parse_args([*command, *rest, "--root", "/after"]).root == "/after"


def test_every_option_of_every_command_has_help() -> None:
    parser = build_parser()
    missing = []
    for p in [parser, *subcommand_parsers(parser)]:
        for action in p._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            if isinstance(action, argparse._SubParsersAction):
                missing += [f"{p.prog} {c.dest}" for c in action._choices_actions if not (c.help or "").strip()]
                continue
            if not (action.help or "").strip():
                missing.append(f"{p.prog} {'/'.join(action.option_strings) or action.dest}")
    assert missing == []
    assert all((p.description or "").strip() for p in subcommand_parsers(parser) if p.prog != "nyanops")
