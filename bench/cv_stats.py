"""Repeated stratified k-fold splits and an honest interval for their mean (bench/cv_bench.py).

The folds of repeated cross-validation share most of their training images, so the plain standard
error of the fold scores is far too small. The interval uses the corrected resampled t statistic of
Nadeau and Bengio (2003, "Inference for the generalization error"; Bouckaert and Frank 2004): the
variance of the k·r fold scores is scaled by (1/(k·r) + n_test/n_train) instead of 1/(k·r). Paired
comparisons of two recipes use the same correction on the per-fold differences.
"""

from __future__ import annotations

import math
import statistics

import torch

# two-sided 97.5 % quantiles of Student's t for the degrees of freedom a k x r design gives
_T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}


def t975(df: int) -> float:
    if df in _T975:
        return _T975[df]
    # Cornish-Fisher style approximation, accurate to ~1e-3 for df > 10
    z = 1.959964
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def stratified_folds(labels: torch.Tensor, k: int, repeats: int, seed: int = 0) -> list[tuple[list[int], list[int]]]:
    """k·repeats (train indices, test indices) pairs; each repeat partitions every class evenly into k folds."""
    out = []
    for r in range(repeats):
        g = torch.Generator().manual_seed(seed * 1000 + r)
        fold_of = [0] * len(labels)
        offset = 0
        for c in sorted(set(labels.tolist())):
            members = [i for i, y in enumerate(labels.tolist()) if y == c]
            members = [members[j] for j in torch.randperm(len(members), generator=g).tolist()]
            for j, i in enumerate(members):
                fold_of[i] = (j + offset) % k  # continue where the last class stopped: fold sizes stay even
            offset += len(members)
        for f in range(k):
            test = [i for i in range(len(labels)) if fold_of[i] == f]
            train = [i for i in range(len(labels)) if fold_of[i] != f]
            out.append((train, test))
    return out


def corrected_interval(scores: list[float], n_train: int, n_test: int) -> tuple[float, float, float]:
    """(mean, low, high) of a 95 % interval for repeated-CV fold scores, Nadeau-Bengio corrected."""
    mean = statistics.fmean(scores)
    if len(scores) < 2:
        return mean, mean, mean
    var = statistics.variance(scores)
    se = math.sqrt((1 / len(scores) + n_test / n_train) * var)
    half = t975(len(scores) - 1) * se
    return mean, mean - half, mean + half


def paired_difference(a: list[float], b: list[float], n_train: int, n_test: int) -> tuple[float, float, float]:
    """(mean, low, high) of a 95 % interval for the per-fold difference a - b (same folds)."""
    return corrected_interval([x - y for x, y in zip(a, b, strict=True)], n_train, n_test)
