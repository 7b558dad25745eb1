"""``nyanops predict`` and ``nyanops rerun`` on a real local run (tiny settings, a slice of the cats-dev photos):
predict on the test photos gives exactly evaluation.json's predictions for the best trial (same class, same
confidence to the 6 decimals written); rerun trains the best trial again from its recorded inputs and compares
every metric."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from nyanops import cli
from nyanops.core import layout
from nyanops.local.bucket import LocalObjectStore
from nyanops.local.database import connect
from nyanops.local.experiment_store import SQLiteExperimentStore

from .conftest import write_manifest

pytestmark = [pytest.mark.e2e, pytest.mark.ml]


def nyanops(root: Path, *args: str) -> int:
    return cli.main(["--root", str(root), *args])


def test_predict_reproduces_the_evaluation_and_rerun_compares(root: Path, small_dataset: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert nyanops(root, "dataset", "add", str(small_dataset), "--name", "small", "--no-run") == 0
    assert nyanops(root, "run", str(write_manifest(tmp_path, "first", "datasets/small")), "--wait") == 0
    [best] = SQLiteExperimentStore(connect(root / "nyanops.db")).list_trials("e2e")
    evaluation = json.loads(LocalObjectStore(root / "bucket").get(layout.evaluation_key(best.trial)))

    capsys.readouterr()
    test_dir = small_dataset / "test"
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really a jpeg")
    assert nyanops(root, "predict", str(test_dir), str(broken), "--experiment", "e2e", "--json") == 2
    captured = capsys.readouterr()
    answer = json.loads(captured.out)
    assert answer["trial"] == best.trial and answer["is_best"] is True
    *photos, failed = answer["photos"]
    assert failed["path"] == str(broken) and failed["error"].startswith("not a readable image")
    predicted = [{"path": os.path.relpath(p["path"], test_dir), "predicted": p["predicted"],
                  "confidence": p["confidence"]} for p in photos]
    written = [{k: p[k] for k in ("path", "predicted", "confidence")} for p in evaluation["predictions"]]
    assert predicted == written  # every photo, in the same order: the same class and confidence
    assert all(len(p["top"]) == 1 and p["top"][0]["class"] == p["predicted"] for p in photos)
    assert "1 of 13 photo(s) could not be classified" in captured.err

    assert nyanops(root, "predict", str(test_dir / "bengal"), "--experiment", "e2e", "--top", "3") == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines()[1:-1]]
    assert len(rows) == 4 and all(len(r) == 7 and {r[1], r[3], r[5]} == {"bengal", "other", "persian"}
                                  for r in rows)

    assert nyanops(root, "rerun", best.trial) == 0
    out = capsys.readouterr().out
    again = re.search(r"started execution (\S+)", out).group(1)  # type: ignore[union-attr]
    records = {t.trial: t for t in SQLiteExperimentStore(connect(root / "nyanops.db")).list_trials("e2e")}
    assert records[again].status == "Completed" and records[again].comment == f"rerun of {best.trial}"
    assert records[again].hyperparameters == records[best.trial].hyperparameters
    assert records[again].code_hash == best.code_hash and records[again].dataset_hash == best.dataset_hash
    table = out[out.index(f"original: {best.trial}"):].splitlines()
    for name in ("accuracy", "macro_f1"):
        row = next(line.split() for line in table if line.startswith(name + " "))
        assert float(row[3]) == pytest.approx(records[again].metrics[name] - best.metrics[name], abs=1e-6)
    assert re.search(r"^bit-identical: (yes|no)", out, flags=re.M)
    assert re.search(r"^predictions: \d+ of 12 photos the same class", out, flags=re.M)
