"""The one hyperparameter table ties the manifest schema, the docs and the comparison table together
(train.py's argparse is tied to it in tests/ml/test_training_steps.py)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from nyanops import compare
from nyanops.core import hyperparameters as hp
from nyanops.core.manifest import Hyperparameters, validate_manifest
from nyanops.core.rejection import UploadRejected

ROOT = Path(__file__).resolve().parents[2]
DATASET = "datasets/2026-11-28T064300Z"


def _manifest(**values: Any):
    return validate_manifest({"experiment": "cats", "dataset": DATASET, "hyperparameters": values})


def test_every_row_is_complete_and_its_default_is_allowed() -> None:
    assert len({h.name for h in hp.TABLE}) == len(hp.TABLE)
    for h in hp.TABLE:
        assert h.type in ("int", "float", "bool", "str") and h.help and "\n" not in h.help
        assert h.role in (hp.RECIPE, hp.MECHANICS)
        assert h.role == hp.MECHANICS or h.in_manifest, f"{h.name}: recipe rows are settable in a manifest"
        if h.default is not None and h.default != "":
            assert h.check(h.default) == h.default, h.name


def test_the_manifest_schema_is_built_from_the_table() -> None:
    fields = {f.alias or name: f for name, f in Hyperparameters.model_fields.items()}
    assert list(fields) == list(hp.MANIFEST_NAMES)
    for h in hp.manifest_rows():
        if h.type in ("int", "float") and h.maximum is not None:
            too_big = h.maximum + (1 if h.type == "int" else 0.5)
            with pytest.raises(UploadRejected) as caught:
                _manifest(**{h.name: int(too_big) if h.type == "int" else too_big})
            assert caught.value.problems[0].field == f"hyperparameters.{h.name}"
            assert "must be at most" in caught.value.problems[0].problem
            assert _manifest(**{h.name: int(h.maximum) if h.type == "int" else h.maximum}).hyperparameters.given()
        if h.choices:
            for choice in h.choices:
                assert _manifest(**{h.name: choice}).hyperparameters.given() == {h.name: choice}


@pytest.mark.parametrize("name", sorted(h.name for h in hp.TABLE if not h.in_manifest))
def test_run_mechanics_outside_the_manifest_are_refused_there(name: str) -> None:
    with pytest.raises(UploadRejected) as caught:
        _manifest(**{name: "x"})
    assert caught.value.problems[0].problem == "unknown field"


def test_num_classes_has_one_range() -> None:
    h = hp.BY_NAME["num-classes"]
    assert (h.minimum, h.maximum) == (2, hp.MAX_CLASSES) and hp.MAX_CLASSES >= 1000
    assert _manifest(**{"num-classes": hp.MAX_CLASSES}).hyperparameters.given() == {"num-classes": 1000}
    with pytest.raises(ValueError, match="must be >= 2"):
        h.check(1)
    assert h.check("0") == 0  # train.py: 0 = from the class folders


def test_comparisons_leave_out_exactly_the_run_mechanics() -> None:
    assert compare.OPERATIONAL == hp.MECHANICS_NAMES
    assert not set(hp.RECIPE_NAMES) & compare.OPERATIONAL
    assert {"workers", "num-gpus", "dry-run", "expected-train-hash", "checkpoint-dir"} <= hp.MECHANICS_NAMES


def test_the_docs_tables_are_the_rendered_table() -> None:
    spec = importlib.util.spec_from_file_location("hyperparameter_docs", ROOT / "scripts" / "hyperparameter_docs.py")
    assert spec and spec.loader
    docs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(docs)
    for path, text in docs.rendered().items():
        assert path.read_text(encoding="utf-8") == text, (
            f"{path.relative_to(ROOT)}: hyperparameter table out of date; run python scripts/hyperparameter_docs.py"
        )
    manifest_doc = (ROOT / "docs" / "manifest.md").read_text(encoding="utf-8")
    for h in hp.TABLE:
        assert (f"| `{h.name}` |" in manifest_doc) == h.in_manifest, h.name
    readme = (ROOT / "ml_code" / "README.md").read_text(encoding="utf-8")
    assert all(f"| `{h.name}` |" in readme for h in hp.TABLE)


def test_ml_code_ships_the_same_table_and_identity_modules() -> None:
    for name in ("hyperparameters.py", "content_identity.py"):
        link = ROOT / "ml_code" / name
        assert link.is_symlink() and link.resolve() == (ROOT / "src" / "nyanops" / "core" / name).resolve()


def test_recorded_hyperparameters_are_json() -> None:
    assert json.loads(json.dumps(hp.defaults()))["epochs"] == 15
