"""Classifying photos with a trial's model, as its evaluation scored the test photos: the trial's own
``inference.py`` (from its code bundle, ``nyanops.model_files``) decodes each photo as training and
evaluation decode it and averages the class probabilities over the model's views (TTA), in batches of
evaluation.py's default size, photos in the order given. So the test photos, given as the test folder,
get exactly the class and confidence that evaluation.json lists for them.

Needs PyTorch (the ML virtualenv); ``missing_packages()`` says what is missing before anything is loaded.
A photo that cannot be read or decoded is a ``Failure`` of its own; the other photos are still classified.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from nyanops.core.dataset import IMAGE_EXTENSIONS

# What ml_code's inference needs beyond the standard library (the import name, the pip name).
REQUIRED = (("torch", "torch"), ("torchvision", "torchvision"), ("PIL", "pillow"), ("numpy", "numpy"))
# Photos decoded at once (a multiple of the scoring batch, so batches are those of one long run).
CHUNK_BATCHES = 16


@dataclass(frozen=True)
class Photo:
    path: str  # as shown and reported: the argument, or the argument joined with the path below it


@dataclass(frozen=True)
class Prediction:
    path: str
    top: list[tuple[str, float]]  # (class, probability), most likely first

    @property
    def predicted(self) -> str:
        return self.top[0][0]

    @property
    def confidence(self) -> float:
        return self.top[0][1]


@dataclass(frozen=True)
class Failure:
    path: str
    error: str


def missing_packages() -> list[str]:
    """The pip names of the packages inference needs that this Python lacks."""
    return [pip for module, pip in REQUIRED if importlib.util.find_spec(module) is None]


def collect_photos(arguments: Sequence[str]) -> tuple[list[Photo | Failure], list[str]]:
    """The photos named, in order: files as given (whatever their name: decoding decides), folders searched in
    name order at every level (so a test folder lists its photos as evaluation scored them: class folders, then
    file names), taking the files whose names are images. Returns the photos, with a ``Failure`` for each
    argument that is neither a file nor a readable folder, and the files in folders skipped as not images."""
    items: list[Photo | Failure] = []
    skipped: list[str] = []
    for arg in arguments:
        if os.path.isdir(arg):
            try:
                found = list(_walk(arg))
            except OSError as exc:
                items.append(Failure(exc.filename or arg, f"cannot list the folder ({exc.strerror})"))
                continue
            for path in found:
                if Path(path).name.lower().endswith(IMAGE_EXTENSIONS):
                    items.append(Photo(path))
                else:
                    skipped.append(path)
        elif os.path.isfile(arg):
            items.append(Photo(arg))
        elif os.path.exists(arg):
            items.append(Failure(arg, "not a regular file or folder"))
        else:
            items.append(Failure(arg, "no such file or folder; check the path"))
    return items, skipped


def _walk(folder: str) -> Iterable[str]:
    with os.scandir(folder) as listing:
        entries = sorted(listing, key=lambda e: e.name)
    for entry in entries:
        if entry.name.startswith("."):
            continue  # hidden files (.DS_Store) are never photos, as in datasets
        path = os.path.join(folder, entry.name)
        if entry.is_dir():
            yield from _walk(path)
        elif entry.is_file():
            yield path


def load_inference(code: Path) -> ModuleType:
    """The ``inference`` module of the code bundle unpacked at ``code`` (its sibling modules with it; any
    module of the same name loaded from elsewhere is replaced)."""
    folder = str(code.resolve())
    for name in {p.stem for p in Path(folder).glob("*.py")}:
        module = sys.modules.get(name)
        if module is not None and os.path.dirname(os.path.abspath(getattr(module, "__file__", "") or "")) != folder:
            del sys.modules[name]
    if folder in sys.path:
        sys.path.remove(folder)
    sys.path.insert(0, folder)
    importlib.invalidate_caches()
    return importlib.import_module("inference")


class Classifier:
    """A trial's model loaded with its code's ``inference.Predictor``."""

    def __init__(self, inference: ModuleType, model_path: Path, batch_size: int) -> None:
        self.inference = inference
        self.predictor: Any = inference.Predictor.load(str(model_path))
        self.class_names: list[str] = list(self.predictor.class_names)
        self.batch_size = batch_size
        self._input_error: type[Exception] = getattr(inference, "InputError", ValueError)

    @classmethod
    def load(cls, code: Path, model_path: Path) -> Classifier:
        inference = load_inference(code)
        return cls(inference, model_path, evaluation_batch_size())

    def classify(self, photos: Sequence[Photo], top: int) -> list[Prediction | Failure]:
        """One result per photo, in order."""
        import torch

        results: list[Prediction | Failure] = []
        chunk = self.batch_size * CHUNK_BATCHES
        for start in range(0, len(photos), chunk):
            batch = photos[start : start + chunk]
            slots: list[Prediction | Failure | None] = [None] * len(batch)
            images, decoded = [], []
            for n, photo in enumerate(batch):
                try:
                    images.append(self.predictor.decode([photo.path])[0])
                    decoded.append(n)
                except self._input_error as exc:
                    slots[n] = Failure(photo.path, _without_path(str(exc), photo.path))
            if images:
                probabilities = self.predictor.predict(torch.stack(images), self.batch_size)
                for row, n in zip(probabilities, decoded, strict=True):
                    slots[n] = Prediction(batch[n].path, self._top(row, top))
            results += [slot for slot in slots if slot is not None]
        return results

    def _top(self, row: Any, k: int) -> list[tuple[str, float]]:
        """The ``k`` most likely classes; the first is the one evaluation.py predicts (``max``: on a tie, the
        first class), the others in decreasing probability."""
        confidence, predicted = row.max(dim=0)
        first = int(predicted)
        values, indices = row.topk(min(k + 1, row.shape[0]))
        others = [(int(i), float(v)) for v, i in zip(values, indices, strict=True) if int(i) != first]
        return [(self.class_names[first], float(confidence))] + [(self.class_names[i], v) for i, v in others[: k - 1]]


def evaluation_batch_size() -> int:
    """evaluation.py's scoring batch (its ``--batch-size`` default), from the same code bundle."""
    evaluation = importlib.import_module("evaluation")
    return int(evaluation.parse_args([]).batch_size)


def _without_path(message: str, path: str) -> str:
    """ml_code's messages start with the path; the report puts the path beside the message already."""
    return message[len(path) + 2 :] if message.startswith(path + ": ") else message
