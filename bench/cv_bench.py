"""Quality benchmark: a recipe's macro-F1 by repeated stratified cross-validation over all photos pooled.

    python bench/cv_bench.py --data ../shared/datasets/cats-dev [--folds 5 --repeats 5] [--candidates] [--out FILE]

Every photo of the data folder (train + val + test) is pooled; each recipe is scored on ``repeats`` x
``folds`` stratified splits (fit on 4/5, score the held-out 1/5), and reported as the mean macro-F1 with a
95 % interval (Nadeau-Bengio corrected, bench/cv_stats.py). Two tasks:

* ``cats-dev``: the folders' three classes;
* ``regrouped``: four classes from the same photos by breed (the file-name prefix): bengal, persian, the
  look-alikes of both kept in "other" (Birman, Maine Coon, Ragdoll, Egyptian Mau, Abyssinian) and the rest
  of "other", so a recipe tuned to three classes shows. Skipped when file names carry no breed.

The default recipe is train.py's defaults (the hyperparameter table): the same decoding, views, feature
pass and classifier code (ml_code/image_data, views, features, head), on features cached once per
(backbone, size, view) under bench/out/. ``--candidates`` also scores the alternatives in CANDIDATES,
each against the default on the same folds (paired difference with its interval: a change counts only
where that interval excludes 0). Then train.py + evaluation.py run as the pipeline runs them, on the
fixed train+val / test split, for the test-split figure, wall times and peak RSS (os.wait4).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "ml_code"))

import torch  # noqa: E402
from cv_stats import corrected_interval, paired_difference, stratified_folds  # noqa: E402
from feature_cache import OUT, Pool, cached_features  # noqa: E402
from head import HeadRecipe, fit, probabilities, single_thread  # noqa: E402
from hyperparameters import defaults  # noqa: E402
from image_data import stored_size  # noqa: E402
from ml_bench import evaluate as run_evaluation  # noqa: E402
from ml_bench import run_script  # noqa: E402
from views import CENTRE, View, views_named  # noqa: E402

LOOK_ALIKES = ("Birman", "Maine", "Ragdoll", "Egyptian", "Abyssinian")
EXTRA_VIEWS = {
    "full": View("full", scale=1.0),
    "full-m": View("full-m", scale=1.0, flip=True),
    "tight": View("tight", scale=0.75),
    "tight-m": View("tight-m", scale=0.75, flip=True),
}


@dataclass(frozen=True)
class Member:
    """One backbone's part of a recipe: features at ``size`` for ``views``; probabilities averaged over them."""

    arch: str
    size: int
    train_views: tuple[View, ...]
    score_views: tuple[View, ...]


@dataclass(frozen=True)
class Recipe:
    members: tuple[Member, ...]
    head: HeadRecipe
    standardize: bool = False
    note: str = ""


def default_recipe() -> Recipe:
    d = defaults()
    view_set = views_named(d["views"])
    member = Member(
        d["arch"],
        d["image-size"],
        view_set if d["augment"] else (CENTRE,),
        view_set if d["tta"] else (CENTRE,),
    )
    return Recipe((member,), HeadRecipe(d["epochs"], d["lr"], d["momentum"], d["batch-size"]), note="train.py defaults")


def _variant(**changes) -> Recipe:
    base = default_recipe()
    member = base.members[0]
    head = changes.pop("head", base.head)
    members = changes.pop("members", None) or (
        Member(
            changes.get("arch", member.arch),
            changes.get("size", member.size),
            changes.get("views", member.train_views),
            changes.get("views", member.score_views),
        ),
    )
    return Recipe(members, head, changes.get("standardize", False), changes.get("note", ""))


FLIP = views_named("flip")
SIX = FLIP + tuple(EXTRA_VIEWS.values())
CANDIDATES = {
    "six views (centre, full square, 75 % crop, each mirrored)": lambda: _variant(views=SIX),
    "full square + mirror only": lambda: _variant(views=(EXTRA_VIEWS["full"], EXTRA_VIEWS["full-m"])),
    "EfficientNet-Lite0": lambda: _variant(arch="efficientnet_lite0"),
    "EfficientNet-Lite1": lambda: _variant(arch="efficientnet_lite1"),
    "Lite2 at 224 px": lambda: _variant(size=224),
    "Lite2 at 352 px": lambda: _variant(size=352),
    "Lite0 + Lite2 probabilities averaged": lambda: _variant(
        members=(Member("efficientnet_lite0", 288, FLIP, FLIP), Member("efficientnet_lite2", 288, FLIP, FLIP))
    ),
    "Lite0 + Lite1 + Lite2 averaged": lambda: _variant(
        members=tuple(Member(f"efficientnet_lite{n}", 288, FLIP, FLIP) for n in range(3))
    ),
    "standardised features, lr 0.01": lambda: _variant(standardize=True, head=HeadRecipe(15, 0.01, 0.9, 16)),
    "30 epochs": lambda: _variant(head=HeadRecipe(30, 0.05, 0.9, 16)),
    "8 epochs": lambda: _variant(head=HeadRecipe(8, 0.05, 0.9, 16)),
    "lr 0.02": lambda: _variant(head=HeadRecipe(15, 0.02, 0.9, 16)),
    "lr 0.1": lambda: _variant(head=HeadRecipe(15, 0.1, 0.9, 16)),
}


@dataclass
class Task:
    name: str
    labels: torch.Tensor
    classes: list[str]


def tasks_of(pool: Pool) -> list[Task]:
    out = [Task("cats-dev", pool.labels, list(pool.class_names))]
    names = pool.class_names
    if {"bengal", "persian", "other"} <= set(names) and any(b.startswith(LOOK_ALIKES) for b in pool.breeds):
        regroup = []
        for y, breed in zip(pool.labels.tolist(), pool.breeds, strict=True):
            name = names[y]
            regroup.append({"bengal": 0, "persian": 1}.get(name, 2 if breed.startswith(LOOK_ALIKES) else 3))
        out.append(Task("regrouped", torch.tensor(regroup), ["bengal", "persian", "other-look-alike", "other-rest"]))
    return out


@dataclass
class Features:
    data: Path
    cache: dict = field(default_factory=dict)

    def of(self, member: Member) -> tuple[Pool, torch.Tensor, torch.Tensor]:
        views = tuple(dict.fromkeys(member.train_views + member.score_views))
        key = (member.arch, member.size, views)
        if key not in self.cache:
            self.cache[key] = cached_features(
                self.data, member.arch, member.size, stored_size(member.size), list(views)
            )
        pool, feats = self.cache[key]
        return (
            pool,
            feats[[views.index(v) for v in member.train_views]],
            feats[[views.index(v) for v in member.score_views]],
        )


def fold_scores(recipe: Recipe, features: Features, task: Task, folds, seed: int = 0) -> list[float]:
    """macro-F1 of ``recipe`` on each (train, test) fold."""
    from sklearn.metrics import f1_score

    member_feats = [features.of(m)[1:] for m in recipe.members]
    classes = int(task.labels.max()) + 1
    scores = []
    for f, (train, test) in enumerate(folds):
        tr, te = torch.tensor(train), torch.tensor(test)
        probs = torch.zeros(len(test), classes)
        for fit_x, score_x in member_feats:
            x_tr, x_te = fit_x[:, tr], score_x[:, te]
            if recipe.standardize:
                mean, std = x_tr.mean((0, 1)), x_tr.std((0, 1)) + 1e-6
                x_tr, x_te = (x_tr - mean) / std, (x_te - mean) / std
            with single_thread():
                head = fit(x_tr, task.labels[tr], classes, recipe.head, torch.Generator().manual_seed(seed * 1000 + f))
            probs += probabilities(head, x_te)
        scores.append(float(f1_score(task.labels[te].numpy(), probs.argmax(1).numpy(), average="macro")))
    return scores


def test_split_run(data: Path, seed: int, tmp: str) -> dict:
    """train.py + evaluation.py with their defaults on the fixed split, as the pipeline runs them."""
    model_dir = os.path.join(tmp, f"model-{seed}")
    args = [str(ROOT / "ml_code/train.py"), "--train-dir", str(data / "train"), "--val-dir", str(data / "val")]
    train_s, _, train_rss = run_script([*args, "--model-dir", model_dir, "--seed", str(seed)])
    meta = json.loads(Path(model_dir, "model_meta.json").read_text())
    report, eval_s, eval_rss = run_evaluation(model_dir, data, os.path.join(tmp, f"eval-{seed}"))
    return {
        "seed": seed,
        "test_macro_f1": report["metrics"]["macro_f1"],
        "test_accuracy": report["metrics"]["accuracy"],
        "internal_estimate": meta.get("internal_estimate"),
        "train_wall_s": train_s,
        "eval_wall_s": eval_s,
        "train_peak_rss_mib": train_rss,
        "eval_peak_rss_mib": eval_rss,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--data",
        type=Path,
        default=Path(os.environ.get("NYANOPS_SAMPLE_DATA", ROOT.parent / "shared/datasets/cats-dev")),
    )
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--candidates", action="store_true", help="also score CANDIDATES against the default")
    p.add_argument("--seeds", type=int, nargs="*", default=[0], help="seeds of the train.py test-split runs")
    p.add_argument("--out", type=Path, default=OUT / "cv_bench.json")
    args = p.parse_args(argv)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    t0 = time.perf_counter()
    features = Features(args.data)
    recipe = default_recipe()
    pool = features.of(recipe.members[0])[0]
    results: dict = {"data": str(args.data), "images": len(pool.paths), "load_average_at_start": os.getloadavg()}
    results["tasks"] = {}
    for task in tasks_of(pool):
        folds = stratified_folds(task.labels, args.folds, args.repeats)
        n_train, n_test = len(folds[0][0]), len(folds[0][1])
        base = fold_scores(recipe, features, task, folds)
        mean, low, high = corrected_interval(base, n_train, n_test)
        entry = {
            "classes": task.classes,
            "counts": torch.bincount(task.labels).tolist(),
            "default": {"macro_f1_mean": mean, "ci95": [low, high], "folds": base},
        }
        print(
            f"{task.name}: default recipe macro-F1 {mean:.4f} (95 % interval {low:.4f}..{high:.4f}), "
            f"{args.repeats}x{args.folds}-fold CV over {len(task.labels)} photos",
            flush=True,
        )
        if args.candidates:
            entry["candidates"] = {}
            for name, make in CANDIDATES.items():
                scores = fold_scores(make(), features, task, folds)
                c_mean, c_low, c_high = corrected_interval(scores, n_train, n_test)
                d_mean, d_low, d_high = paired_difference(scores, base, n_train, n_test)
                entry["candidates"][name] = {
                    "macro_f1_mean": c_mean,
                    "ci95": [c_low, c_high],
                    "diff_vs_default": [d_mean, d_low, d_high],
                }
                print(
                    f"  {name}: {c_mean:.4f} ({c_low:.4f}..{c_high:.4f}); vs default {d_mean:+.4f} "
                    f"({d_low:+.4f}..{d_high:+.4f})",
                    flush=True,
                )
        results["tasks"][task.name] = entry
    results["cv_seconds"] = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        results["test_split"] = [test_split_run(args.data, seed, tmp) for seed in args.seeds]
    for run in results["test_split"]:
        print(
            f"test split (train.py on train+val, evaluation.py on test), seed {run['seed']}: macro-F1 "
            f"{run['test_macro_f1']:.4f}; internal estimate {(run['internal_estimate'] or {}).get('macro_f1')}; "
            f"train {run['train_wall_s']:.1f} s / {run['train_peak_rss_mib']:.0f} MiB peak, evaluate "
            f"{run['eval_wall_s']:.1f} s / {run['eval_peak_rss_mib']:.0f} MiB peak",
            flush=True,
        )
    results["load_average_at_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"load average {results['load_average_at_start']} -> {results['load_average_at_end']}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
