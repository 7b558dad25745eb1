"""``nyanops invoke FUNCTION --event FILE`` for every row of the README's table: the handler runs in-process
against a fresh local root, what the event needs is prepared there, and the result is the README's. The two
dataset functions also in sequence on one root, as `nyanops watch` would see them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from aws.sam_local_env import EVENTS, Invocation, readme_invocations

from nyanops.backends.local import LocalBackend
from nyanops.cli import main
from nyanops.cli.code import push_code
from nyanops.core import dataset as datasets
from nyanops.core import layout
from nyanops.event_fixtures import EXAMPLE_BUCKET

REPO = EVENTS.parent
SRC = REPO / "src"


@pytest.mark.parametrize("invocation", readme_invocations(), ids=lambda i: f"{i.function}-{Path(i.event).stem}")
def test_every_example_event_reaches_its_outcome(invocation: Invocation, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "root"
    code = main(["invoke", invocation.function, "--event", str(REPO / invocation.event), "--root", str(root)])
    out = capsys.readouterr().out
    assert code == 0, out
    if EXAMPLE_BUCKET in (REPO / invocation.event).read_text(encoding="utf-8"):  # a schedule names no bucket
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


def _invoke(root: Path, function: str, event: str, capsys: pytest.CaptureFixture[str]) -> tuple[dict, str]:
    code = main(["invoke", function, "--event", str(REPO / event), "--root", str(root)])
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out[out.index("\n{") + 1 : out.rindex("}") + 1]), out


def test_noted_uploads_then_the_schedule_seals_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The upload batch leaves its dataset waiting in the root's registry; the schedule then finds it settled
    (prepared: noticed longer ago than the local quiet period) and seals exactly those six images, with the
    ETags the local bucket gives them; a seal the next watch hands to StartPipeline."""
    root = tmp_path / "root"
    dropped = "2026-11-29T070000Z"
    result, out = _invoke(root, "NoteDatasetUploadsFunction", "events/dataset_uploads_sqs.json", capsys)
    assert result == {"batchItemFailures": []}
    assert f"datasets/{dropped}: waiting in the local dataset registry (6 upload(s) noted)" in out
    backend = LocalBackend(root)
    pipeline = backend.pipeline
    try:
        record = pipeline.dataset_watcher.registry.get(dropped)
        assert record is not None and (record.state, record.uploads) == ("waiting", 6)
        images = sorted(o.key for o in pipeline.store.list(layout.dataset_prefix(dropped)))
        assert len(images) == 6 and all(k.endswith("/IMG_0001.jpg") for k in images)

        result, out = _invoke(root, "SealDatasetsFunction", "events/seal_datasets_schedule.json", capsys)
        assert "prepared: datasets/2026-11-29T070000Z/ (images" not in out, "the noted images are the dataset"
        assert f"prepared: datasets/{dropped} in the dataset registry: waiting" in out
        [sealed] = result["results"]
        assert (sealed["dataset_id"], sealed["outcome"]) == (dropped, "sealed")
        assert f"datasets/{dropped}/_dataset.json written: its arrival starts a run" in out
        marker = datasets.parse_marker(dropped, pipeline.store.get(layout.dataset_marker_key(dropped)))
        assert marker.sealed_by.tool == datasets.PIPELINE and marker.classes == ("bengal", "siamese")
        prefix = layout.dataset_prefix(dropped)
        assert {prefix + rel: f.etag for rel, f in marker.files.items()} == {
            o.key: o.etag for o in pipeline.store.list(prefix) if o.key in images
        }
        assert pipeline.dataset_watcher.registry.get(dropped).state == "sealed"
        # What the next `nyanops watch` does with a new seal (it pushes ml_code first): StartPipeline starts its run.
        push_code(backend)
        [started] = pipeline.fire(layout.dataset_marker_key(dropped))
        assert started.outcome.value == "started", started
    finally:
        backend.close()

    # The next tick, as its own process (a fresh handler, as `nyanops invoke` runs it): nothing is due, and
    # nothing but the result is said (metrics are off locally; Powertools' "no metrics" warning is not shown).
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run(
        [sys.executable, "-m", "nyanops.cli", "--root", str(root), "invoke", "SealDatasetsFunction", "--event",
         str(REPO / "events/seal_datasets_schedule.json")],
        capture_output=True, text=True, timeout=120, env=env, cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout[done.stdout.index("\n{") + 1 :]) == {"results": []}, "sealed once: nothing due"
    assert done.stderr == ""
