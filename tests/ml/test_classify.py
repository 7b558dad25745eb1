"""``nyanops.classify`` with a real (tiny) model: photos scored in the order given, in chunks that do not change
the figures, a photo that cannot be decoded reported on its own, top K in order, evaluation's batch size."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import train
from conftest import ML_CODE

from nyanops import classify
from nyanops.classify import Failure, Photo, Prediction

pytestmark = pytest.mark.ml


@pytest.fixture
def model_dir(image_splits: Path, tmp_path: Path) -> Path:
    out = tmp_path / "model"
    args = ["--data-dir", str(image_splits), "--model-dir", str(out), "--dry-run", "true", "--image-size", "64",
            "--batch-size", "4", "--test-batch-size", "8", "--workers", "1"]
    assert train.main(args) == 0
    return out


def test_photos_in_order_across_chunks_with_a_broken_one(model_dir: Path, image_splits: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    classifier = classify.Classifier.load(ML_CODE, model_dir)
    assert classifier.batch_size == 16  # evaluation.py's --batch-size default, read from the same code
    assert Path(sys.modules["inference"].__file__).parent == ML_CODE.resolve()
    items, skipped = classify.collect_photos([str(image_splits / "test")])
    photos = [p for p in items if isinstance(p, Photo)]
    assert skipped == [] and len(photos) == 6 and photos[0].path.endswith("bengal/img0.jpg")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    given = [*photos[:3], Photo(str(broken)), *photos[3:]]

    monkeypatch.setattr(classify, "CHUNK_BATCHES", 1)
    classifier.batch_size = 2  # chunks of 2 photos: the broken one sits inside the second chunk
    results = classifier.classify(given, top=3)
    assert [r.path for r in results] == [p.path for p in given]
    failure = results[3]
    assert isinstance(failure, Failure) and not failure.error.startswith(str(broken))
    assert "image" in failure.error and "remove or replace it" in failure.error
    expected = classifier.predictor.predict_files([p.path for p in photos], 16)
    scored = [r for r in results if isinstance(r, Prediction)]
    for row, result in zip(expected, scored, strict=True):
        assert [name for name, _ in result.top] == [classifier.class_names[int(i)] for i in row.argsort(
            descending=True)]
        assert [p for _, p in result.top] == pytest.approx(sorted(row.tolist(), reverse=True), abs=1e-6)
        assert sum(p for _, p in result.top) == pytest.approx(1.0, abs=1e-5)
    one = classifier.classify(photos[:1], top=1)
    assert len(one[0].top) == 1 and one[0].predicted == scored[0].predicted  # type: ignore[union-attr]


def test_loading_code_from_a_bundle_replaces_modules_loaded_from_elsewhere(tmp_path: Path) -> None:
    import inference  # from ml_code (conftest puts it on sys.path)

    copy = tmp_path / "bundle"
    copy.mkdir()
    for f in ML_CODE.glob("*.py"):
        (copy / f.name).write_bytes(f.read_bytes())
    try:
        loaded = classify.load_inference(copy)
        assert Path(loaded.__file__).parent == copy.resolve() and loaded is not inference
        assert Path(sys.modules["views"].__file__).parent == copy.resolve()  # its siblings came with it
        assert isinstance(loaded.select_device(0), torch.device)
    finally:
        assert Path(classify.load_inference(ML_CODE).__file__).parent == ML_CODE.resolve()
        sys.path.remove(str(copy.resolve()))


def test_the_first_class_is_evaluations_choice_even_on_a_tie() -> None:
    classifier = classify.Classifier.__new__(classify.Classifier)
    classifier.class_names = ["a", "b", "c"]
    row = torch.tensor([0.25, 0.375, 0.375])
    _, predicted = row.unsqueeze(0).max(dim=1)  # what evaluation.py does with a batch of probabilities
    top = classifier._top(row, 3)
    assert top[0] == (classifier.class_names[int(predicted)], 0.375) and [n for n, _ in top] == ["b", "c", "a"]
    assert classifier._top(row, 1) == [top[0]] and classifier._top(torch.tensor([0.1, 0.9, 0.0]), 2) == [
        ("b", pytest.approx(0.9)), ("a", pytest.approx(0.1))]
