"""The frozen backbone's pooled features of every image and view, computed once (the feature cache)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from backbones import extract_features
from views import View, normalized, render


@torch.inference_mode()
def view_features(
    model: torch.nn.Module,
    images: torch.Tensor,
    views: Sequence[View],
    *,
    size: int,
    norm: dict,
    device: torch.device,
    batch_size: int,
    on_batch: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """float32 (views, N, features) on CPU for uint8 stored squares ``images`` (N, 3, S, S).

    ``on_batch(n)`` is called after each batch of ``n`` images of one view (progress reporting)."""
    model.eval()
    out = []
    for view in views:
        chunks = []
        for start in range(0, len(images), batch_size):
            batch = images[start : start + batch_size].to(device, non_blocking=True)
            x = normalized(render(batch, view, size), norm["mean"], norm["std"])
            with torch.autocast(device.type, enabled=device.type == "cuda"):
                chunks.append(extract_features(model, x).float().cpu())
            if on_batch is not None:
                on_batch(len(batch))
        out.append(torch.cat(chunks) if chunks else torch.empty(0))
    return torch.stack(out).clone()  # a normal tensor (inference tensors cannot enter autograd)
