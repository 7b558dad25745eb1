"""``nyanops invoke FUNCTION --event FILE`` for every row of the README's table: the handler runs in-process
against a fresh local root, what the event needs is prepared there, and the result is the README's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aws.sam_local_env import EVENTS, Invocation, readme_invocations

from nyanops.cli import main

REPO = EVENTS.parent


@pytest.mark.parametrize("invocation", readme_invocations(), ids=lambda i: f"{i.function}-{Path(i.event).stem}")
def test_every_example_event_reaches_its_outcome(invocation: Invocation, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "root"
    code = main(["invoke", invocation.function, "--event", str(REPO / invocation.event), "--root", str(root)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "event bucket nyanops-example-bucket -> the local bucket" in out
    result = json.loads(out[out.index("\n{") + 1 : out.rindex("}") + 1])
    assert invocation.result in json.dumps(result)
    again = main(["invoke", invocation.function, "--event", str(REPO / invocation.event), "--root", str(root),
                  "--no-prepare"])
    assert again == 0, capsys.readouterr().out  # everything it needs is there now


def test_no_prepare_lists_what_is_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["invoke", "StartPipelineFunction", "--event", str(REPO / "events/manifest_eventbridge.json"),
                 "--root", str(tmp_path / "root"), "--no-prepare"])
    out = capsys.readouterr().out
    assert code == 2
    assert "missing: manifests/epochs10.json (a manifest)" in out
    assert "missing: datasets/2026-11-28T064300Z/" in out and "missing: code/<sha256>/" in out
    assert not (tmp_path / "root" / "bucket" / "manifests").exists()


def test_unknown_function_names_the_functions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["invoke", "Nope", "--event", str(REPO / "events/manifest_eventbridge.json"),
                 "--root", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "no function 'Nope' in template.yaml" in err and "StartPipelineFunction" in err
