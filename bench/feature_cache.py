"""Pooled images and cached backbone features for the cross-validated quality benchmark (bench/cv_bench.py).

Every photo of the data folder's splits is pooled, decoded once per stored side, and its frozen
backbone features are computed once per (backbone, input size, view) and kept under bench/out/
(gitignored), so the folds and repeats of a recipe cost only classifier fits. The decoding, views and
feature pass are ml_code's own (image_data, views, features), the same code train.py runs.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ML_CODE = ROOT / "ml_code"
if str(ML_CODE) not in sys.path:
    sys.path.insert(0, str(ML_CODE))

import torch  # noqa: E402
from backbones import NORMALIZATION, build_model  # noqa: E402
from features import view_features  # noqa: E402
from image_data import find_classes, load_image_set  # noqa: E402
from views import View  # noqa: E402

SPLITS = ("train", "val", "test")
OUT = ROOT / "bench" / "out"


@dataclass
class Pool:
    """Every photo of the data folder: path (split/class/file), class label, breed (file-name prefix)."""

    paths: list[str]
    labels: torch.Tensor
    class_names: list[str]
    splits: list[str]
    breeds: list[str]
    key: str  # content hash of the pool (cache key part)


def pool_images(data: Path, side: int) -> tuple[Pool, torch.Tensor]:
    """(pool, uint8 images (N, 3, side, side)); decoded images are cached per side."""
    classes = find_classes(str(data / "train"), "train")
    sets = {s: load_image_set(str(data / s), classes, side, 0) for s in SPLITS}
    paths = [f"{s}/{p}" for s in SPLITS for p in sets[s].paths]
    key = hashlib.sha256("".join(sets[s].content_hash for s in SPLITS).encode()).hexdigest()[:16]
    pool = Pool(
        paths=paths,
        labels=torch.cat([sets[s].labels for s in SPLITS]),
        class_names=classes,
        splits=[s for s in SPLITS for _ in sets[s].paths],
        breeds=[p.rsplit("/", 1)[-1].split("_")[0] if "_" in p else p.split("/")[1] for p in paths],
        key=key,
    )
    return pool, torch.cat([sets[s].images for s in SPLITS])


def cached_features(
    data: Path, arch: str, size: int, side: int, views: list[View], batch_size: int = 32
) -> tuple[Pool, torch.Tensor]:
    """(pool, float32 (views, N, D)) for ``arch`` at ``size`` from images stored at ``side``."""
    OUT.mkdir(parents=True, exist_ok=True)
    pool, images = None, None
    result = []
    for view in views:
        spec = json.dumps([arch, size, side, view.__dict__], sort_keys=True)
        digest = hashlib.sha256(spec.encode()).hexdigest()[:12]
        if pool is None:
            pool, images = pool_images(data, side)
        path = OUT / f"features-{pool.key}-{arch}-{size}-{view.name}-{digest}.pt"
        if path.is_file():
            result.append(torch.load(path))
            continue
        model = build_model(arch, 2, pretrained=True)
        t0 = time.perf_counter()
        feats = view_features(
            model,
            images,
            [view],
            size=size,
            norm=NORMALIZATION[arch],
            device=torch.device("cpu"),
            batch_size=batch_size,
        )[0]
        print(f"features {arch} {size} {view.name}: {time.perf_counter() - t0:.1f}s", flush=True)
        torch.save(feats, path)
        result.append(feats)
    assert pool is not None
    return pool, torch.stack(result)
