"""The classifier on cached backbone features: one epoch of training, scoring over views, and the fit.

Features come as float32 (views, N, D): every image's pooled backbone features for each view (see
views.py). Each training epoch shows every image once, as one of its views picked at random (the flip /
crop augmentation at the cost of one feature pass per view); scoring averages the class probabilities
of all views (test-time augmentation). The same functions serve train.py, its internal
cross-validation estimate, and the benchmark's folds (bench/cv_bench.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class HeadRecipe:
    epochs: int
    lr: float
    momentum: float
    batch_size: int


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """One CPU thread while it lasts: a linear head's tiny steps are ~10x slower when two threads contend
    with other work (measured on a busy 2-core machine); the feature passes keep all threads."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def new_head(features: int, classes: int, generator: torch.Generator) -> nn.Linear:
    """A freshly initialised linear classifier (PyTorch's default init, drawn from ``generator``)."""
    head = nn.Linear(features, classes)
    bound = 1 / features**0.5
    with torch.no_grad():
        head.weight.uniform_(-bound, bound, generator=generator)
        head.bias.uniform_(-bound, bound, generator=generator)
    return head


def train_epoch(
    head: nn.Module,
    features: torch.Tensor,
    labels: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    batch_size: int,
    generator: torch.Generator,
    max_batches: int | None = None,
) -> tuple[float, float]:
    """One pass over the images, each as one random view; (mean loss, accuracy)."""
    head.train()
    views, count = features.shape[0], features.shape[1]
    order = torch.randperm(count, generator=generator)
    total_loss, correct, seen = 0.0, 0, 0
    for b, start in enumerate(range(0, count, batch_size)):
        if max_batches is not None and b >= max_batches:
            break
        idx = order[start : start + batch_size]
        pick = torch.randint(views, (len(idx),), generator=generator) if views > 1 else torch.zeros_like(idx)
        x = features[pick.to(features.device), idx.to(features.device)]
        y = labels[idx.to(labels.device)]
        optimizer.zero_grad(set_to_none=True)
        logits = head(x)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        optimizer.step()
        total_loss += loss.item() * len(idx)
        correct += int((logits.argmax(1) == y).sum())
        seen += len(idx)
    return total_loss / max(seen, 1), correct / max(seen, 1)


@torch.no_grad()
def probabilities(head: nn.Module, features: torch.Tensor) -> torch.Tensor:
    """Class probabilities (N, classes), averaged over the views of ``features`` (views, N, D)."""
    head.eval()
    return torch.stack([head(v).softmax(1) for v in features]).mean(0)


def score(probs: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """(cross-entropy of the averaged probabilities, accuracy)."""
    loss = F.nll_loss(probs.clamp_min(1e-12).log(), labels).item()
    return loss, float((probs.argmax(1) == labels).float().mean())


def fit(
    features: torch.Tensor,
    labels: torch.Tensor,
    classes: int,
    recipe: HeadRecipe,
    generator: torch.Generator,
    on_epoch: Callable[[int, nn.Module, float, float], None] | None = None,
) -> nn.Linear:
    """Train a fresh linear head for ``recipe.epochs`` epochs on ``features`` (views, N, D); keep the last."""
    head = new_head(features.shape[-1], classes, generator).to(features.device)
    optimizer = torch.optim.SGD(head.parameters(), lr=recipe.lr, momentum=recipe.momentum)
    for epoch in range(1, recipe.epochs + 1):
        loss, acc = train_epoch(head, features, labels, optimizer, recipe.batch_size, generator)
        if on_epoch is not None:
            on_epoch(epoch, head, loss, acc)
    return head
