"""Views of a decoded image: which part of the stored square the network sees, at what size, mirrored or not.

train.py computes the frozen backbone's features once per image and view (the feature cache); the
classifier then trains on a random view per image each epoch, and scoring (val, evaluation.py,
inference.py) averages the class probabilities over the same views. A view is a square crop of the
stored image (side ``scale`` × the stored side, its centre moved by ``dx`` / ``dy`` of the free margin),
resized to the network's input size, optionally mirrored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.nn import functional as F


@dataclass(frozen=True)
class View:
    name: str
    scale: float | None = None  # crop side / stored side; None: exactly the input size (no resampling)
    dx: float = 0.0  # -1 = crop at the left edge, 0 = centred, 1 = right edge
    dy: float = 0.0
    flip: bool = False


CENTRE = View("centre")
MIRROR = View("mirror", flip=True)
VIEW_SETS: dict[str, tuple[View, ...]] = {
    "centre": (CENTRE,),
    "flip": (CENTRE, MIRROR),
}


def views_named(name: str) -> tuple[View, ...]:
    try:
        return VIEW_SETS[name]
    except KeyError:
        raise ValueError(f"unknown view set {name!r}; choose one of {', '.join(VIEW_SETS)}") from None


def render(images: torch.Tensor, view: View, size: int) -> torch.Tensor:
    """uint8 (N, 3, S, S) stored squares -> float (N, 3, size, size) in [0, 255] for ``view``."""
    side = images.shape[-1]
    crop = size if view.scale is None else max(1, min(side, round(view.scale * side)))
    margin = side - crop
    left = round(margin / 2 * (1 + view.dx))
    top = round(margin / 2 * (1 + view.dy))
    x = images[..., top : top + crop, left : left + crop].float()
    if crop != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=crop > size)
    return x.flip(-1) if view.flip else x


def normalized(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Pixels in [0, 255] -> the normalization the pretrained weights expect, channels-last for speed."""
    m = torch.tensor(mean, device=x.device).view(1, 3, 1, 1) * 255.0
    s = torch.tensor(std, device=x.device).view(1, 3, 1, 1) * 255.0
    return ((x - m) / s).contiguous(memory_format=torch.channels_last)
