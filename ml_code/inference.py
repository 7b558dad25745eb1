"""Load a model train.py wrote and predict class probabilities, exactly as evaluation.py scores.

    from inference import Predictor
    with Predictor.load("out/model") as predictor:        # a model dir, or a model.tar.gz
        probs = predictor.predict_files(["cat.jpg"])      # (N, classes), rows sum to 1
        predictor.class_names                             # column order

A model is rebuilt from ``model_meta.json`` (architecture, classes, input size, stored size,
normalization, views) and ``model.pth`` alone: no pretrained weights, no network. Each image is decoded
as training decoded it (EXIF rotation, RGB, shorter side resized to the stored size, centre square),
and with ``tta`` the class probabilities of every view of the model's view set are averaged (the
same views the classifier was trained on), otherwise the centre view alone is scored.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Sequence

import torch
from backbones import ARCHITECTURES, build_model
from image_data import decode_image
from job_contract import InputError
from views import CENTRE, View, normalized, render, views_named

META_FILE = "model_meta.json"
WEIGHTS_FILE = "model.pth"
MODEL_ARCHIVE = "model.tar.gz"


def select_device(num_gpus: int | None = None) -> torch.device:
    """CUDA when available and not switched off (``num_gpus`` 0), else the CPU."""
    if torch.cuda.is_available() and (num_gpus is None or num_gpus > 0):
        return torch.device("cuda")
    return torch.device("cpu")


def locate_model(model_path: str, scratch: str) -> str:
    """The folder holding model.pth + model_meta.json: ``model_path`` itself or its extracted model.tar.gz."""
    if os.path.isfile(model_path) and model_path.endswith(".tar.gz"):
        archive = model_path
    elif os.path.isfile(os.path.join(model_path, WEIGHTS_FILE)):
        return model_path
    elif os.path.isfile(os.path.join(model_path, MODEL_ARCHIVE)):
        archive = os.path.join(model_path, MODEL_ARCHIVE)
    else:
        raise InputError(
            f"{model_path}: no {MODEL_ARCHIVE} or {WEIGHTS_FILE} found; point --model-dir at train.py's model output"
        )
    try:
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(scratch, filter="data")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise InputError(f"{archive}: cannot extract ({exc}); the model archive is damaged, rerun training") from None
    for folder, _, files in os.walk(scratch):
        if WEIGHTS_FILE in files:
            return folder
    raise InputError(f"{archive}: contains no {WEIGHTS_FILE}; it was not written by train.py")


def read_meta(folder: str) -> dict:
    meta_path = os.path.join(folder, META_FILE)
    try:
        with open(meta_path, encoding="utf-8") as fh:
            meta = json.load(fh)
    except FileNotFoundError:
        raise InputError(f"{meta_path}: missing; train.py writes it next to {WEIGHTS_FILE}") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{meta_path}: not valid JSON ({exc})") from None
    for key in ("arch", "class_names", "image_size", "normalization"):
        if key not in meta:
            raise InputError(f"{meta_path}: field {key!r} missing; retrain with the current train.py")
    if meta["arch"] not in ARCHITECTURES:
        raise InputError(f"{meta_path}: unknown arch {meta['arch']!r}; expected one of {', '.join(ARCHITECTURES)}")
    return meta


def load_trained_model(folder: str) -> tuple[torch.nn.Module, dict]:
    """Rebuild the network from model_meta.json and load model.pth (CPU, eval mode)."""
    meta = read_meta(folder)
    model = build_model(meta["arch"], len(meta["class_names"]), pretrained=False)
    weights_path = os.path.join(folder, WEIGHTS_FILE)
    try:
        model.load_state_dict(torch.load(weights_path, map_location="cpu", weights_only=True))
    except Exception as exc:
        raise InputError(
            f"{weights_path}: does not match {meta['arch']} in {META_FILE} ({' '.join(str(exc).split())[:200]})"
        ) from None
    model.eval()
    return model, meta


def scoring_views(meta: dict) -> tuple[View, ...]:
    """The views a model is scored on: its view set with ``tta``, else the centre view alone."""
    if not meta.get("tta", False):
        return (CENTRE,)
    return views_named(meta.get("views", "flip"))


@torch.inference_mode()
def predict_probabilities(
    model: torch.nn.Module,
    images: torch.Tensor,
    views: Sequence[View],
    image_size: int,
    norm: dict,
    device: torch.device,
    batch_size: int = 32,
    on_batch: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """Class probabilities (N, classes) on CPU for uint8 stored squares, averaged over ``views``."""
    model.eval()
    out = []
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size].to(device, non_blocking=True)
        probs = 0
        for view in views:
            x = normalized(render(batch, view, image_size), norm["mean"], norm["std"])
            with torch.autocast(device.type, enabled=device.type == "cuda"):
                probs = probs + model(x).float().softmax(1)
        out.append((probs / len(views)).cpu())
        if on_batch is not None:
            on_batch(len(batch))
    return torch.cat(out) if out else torch.empty(0)


class Predictor:
    """A trained model ready to score images (see the module docstring)."""

    def __init__(self, model: torch.nn.Module, meta: dict, device: torch.device | None = None) -> None:
        self.meta = meta
        self.device = device or select_device()
        self.model = model.to(self.device, memory_format=torch.channels_last)
        self.class_names: list[str] = list(meta["class_names"])
        self.image_size = int(meta["image_size"])
        self.stored_size = int(meta.get("stored_size") or meta["image_size"])
        self.views = scoring_views(meta)
        self._scratch: str | None = None

    @classmethod
    def load(cls, model_path: str, device: torch.device | None = None) -> Predictor:
        """From a model dir (model.pth + model_meta.json, or model.tar.gz) or a model.tar.gz file."""
        scratch = tempfile.mkdtemp(prefix="nyanops-model-")
        try:
            model, meta = load_trained_model(locate_model(model_path, scratch))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return cls(model, meta, device)

    def __enter__(self) -> Predictor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.model = self.model.cpu()

    def predict(
        self, images: torch.Tensor, batch_size: int = 32, on_batch: Callable[[int], None] | None = None
    ) -> torch.Tensor:
        """Class probabilities (N, classes) on CPU for uint8 stored squares (N, 3, stored, stored)."""
        if not len(images):
            return torch.empty((0, len(self.class_names)))
        norm = self.meta["normalization"]
        return predict_probabilities(
            self.model, images, self.views, self.image_size, norm, self.device, batch_size, on_batch
        )

    def decode(self, paths: Sequence[str]) -> torch.Tensor:
        """uint8 stored squares of image files, decoded as train.py and evaluation.py decode them."""
        tensors = []
        for path in paths:
            try:
                with open(path, "rb") as fh:
                    data = fh.read()
            except OSError as exc:
                raise InputError(f"{path}: cannot read file ({exc.strerror}); check the path") from None
            tensors.append(decode_image(data, path, self.stored_size))
        return torch.stack(tensors) if tensors else torch.empty((0, 3, self.stored_size, self.stored_size))

    def predict_files(self, paths: Sequence[str], batch_size: int = 32) -> torch.Tensor:
        """Class probabilities (N, classes) for image files, in ``paths`` order."""
        return self.predict(self.decode(paths), batch_size)
