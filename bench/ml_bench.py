"""ML benchmark: quality of the default recipe over seeds, and speed against a naive tutorial-style loop.

    python bench/ml_bench.py --data ../shared/datasets/cats-dev --seeds 0 1 2 [--naive-seed 0]

Per seed: ml_code/train.py with its defaults on <data>/train (epoch selection on <data>/val), then
ml_code/evaluation.py on <data>/test, each as a subprocess exactly as the pipeline runs them; reports
macro-F1 / accuracy mean and spread, wall time, training and evaluation images/s and peak memory.
The naive baseline trains the same model with the same schedule in the PyTorch tutorial's style (an
ImageFolder + DataLoader that decodes and transforms every image every epoch, frozen epochs still run
the backbone) and is evaluated the same way. Prints a Markdown table and writes JSON to --out.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ML_CODE = ROOT / "ml_code"


def run_script(args: list[str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, check=False)
    if proc.returncode:
        sys.exit(f"{args[0]} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return time.perf_counter() - t0, proc.stdout


def evaluate(model_dir: str, data: Path, out: str) -> tuple[dict, float]:
    seconds, _ = run_script(
        [
            str(ML_CODE / "evaluation.py"),
            "--model-dir",
            model_dir,
            "--test-dir",
            str(data / "test"),
            "--output-dir",
            out,
        ]
    )
    return json.loads(Path(out, "evaluation.json").read_text()), seconds


def naive_train(data: Path, model_dir: str, seed: int) -> None:
    """Same model, epochs, optimizer and augmentation as train.py defaults, but tutorial-style data loading."""
    sys.path.insert(0, str(ML_CODE))
    import torch
    import train as recipe
    from backbones import NORMALIZATION, backbone_parameters, build_model, classifier_of, set_backbone_trainable
    from image_data import AUGMENT_DEGREES, AUGMENT_SCALE, AUGMENT_TRANSLATE, AUGMENT_VFLIP_P, stored_size
    from torch.nn import functional as F
    from torchvision import datasets, transforms

    args = recipe.parse_args(
        [
            "--train-dir",
            str(data / "train"),
            "--val-dir",
            str(data / "val"),
            "--model-dir",
            model_dir,
            "--seed",
            str(seed),
        ]
    )
    recipe.seed_everything(seed)
    norm = NORMALIZATION[args.arch]
    size, side = args.image_size, stored_size(args.image_size)
    tail = [transforms.ToTensor(), transforms.Normalize(norm["mean"], norm["std"])]
    plain = transforms.Compose([transforms.Resize(side), transforms.CenterCrop(size), *tail])
    augmented = transforms.Compose(
        [
            transforms.Resize(side),
            transforms.RandomCrop(size),
            transforms.RandomHorizontalFlip(),
            transforms.RandomVerticalFlip(AUGMENT_VFLIP_P),
            transforms.RandomAffine(AUGMENT_DEGREES, (AUGMENT_TRANSLATE, AUGMENT_TRANSLATE), AUGMENT_SCALE),
            *tail,
        ]
    )
    train_plain = datasets.ImageFolder(str(data / "train"), plain)
    train_aug = datasets.ImageFolder(str(data / "train"), augmented)
    val = datasets.ImageFolder(str(data / "val"), plain)
    loader = lambda ds, shuffle, bs: torch.utils.data.DataLoader(ds, batch_size=bs, shuffle=shuffle)  # noqa: E731
    model = build_model(args.arch, len(train_plain.classes), pretrained=True)
    head = classifier_of(model)
    set_backbone_trainable(model, False)
    opt = torch.optim.SGD(head.parameters(), lr=args.lr, momentum=args.momentum)
    best, state = -1.0, None
    for epoch in range(1, args.epochs + 1):
        frozen = epoch <= args.freeze_epochs
        if epoch == args.freeze_epochs + 1:
            set_backbone_trainable(model, True)
            lr = args.lr * recipe.BACKBONE_LR_FACTOR
            opt = torch.optim.SGD(
                [{"params": list(backbone_parameters(model))}, {"params": list(head.parameters())}],
                lr=lr,
                momentum=args.momentum,
            )
            steps = (args.epochs - args.freeze_epochs) * -(-len(train_aug) // args.batch_size)
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
        model.train()
        recipe.freeze_batchnorm(model)
        for x, y in loader(train_plain if frozen or not args.augment else train_aug, True, args.batch_size):
            if frozen:
                model.eval()
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
            if not frozen:
                sched.step()
        model.eval()
        correct = 0
        with torch.no_grad():
            for x, y in loader(val, False, args.test_batch_size):
                correct += int((model(x).argmax(1) == y).sum())
        if correct / len(val) > best:
            best, state = correct / len(val), {k: v.clone() for k, v in model.state_dict().items()}
        print(f"naive epoch {epoch}: val acc {correct / len(val):.4f}", flush=True)
    os.makedirs(model_dir, exist_ok=True)
    torch.save(state, os.path.join(model_dir, "model.pth"))
    meta = {
        "arch": args.arch,
        "class_names": train_plain.classes,
        "image_size": size,
        "stored_size": side,
        "normalization": norm,
        "hyperparameters": recipe.hyperparameters_of(args),
        "history": [],
        "best_epoch": 0,
        "dataset_hash": None,
    }
    Path(model_dir, "model_meta.json").write_text(json.dumps(meta))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--data",
        type=Path,
        default=Path(os.environ.get("NYANOPS_SAMPLE_DATA", ROOT.parent / "shared/datasets/cats-dev")),
    )
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--naive-seed", type=int, default=0, help="seed of the naive baseline run; -1 skips it")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "ml_bench_results.json")
    args = p.parse_args(argv)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            model_dir = os.path.join(tmp, f"model-{seed}")
            train_s, _ = run_script(
                [
                    str(ML_CODE / "train.py"),
                    "--train-dir",
                    str(args.data / "train"),
                    "--val-dir",
                    str(args.data / "val"),
                    "--model-dir",
                    model_dir,
                    "--seed",
                    str(seed),
                ]
            )
            meta = json.loads(Path(model_dir, "model_meta.json").read_text())
            report, eval_s = evaluate(model_dir, args.data, os.path.join(tmp, f"eval-{seed}"))
            runs.append(
                {
                    "seed": seed,
                    "macro_f1": report["metrics"]["macro_f1"],
                    "accuracy": report["metrics"]["accuracy"],
                    "best_epoch": meta["best_epoch"],
                    "train_wall_s": train_s,
                    "eval_wall_s": eval_s,
                    "train_images_per_s": meta["timings"]["train_images_per_second"],
                    "eval_images_per_s": report["num_images"] / eval_s,
                }
            )
            print(json.dumps(runs[-1]), flush=True)
        naive = None
        if args.naive_seed >= 0:
            model_dir = os.path.join(tmp, "model-naive")
            t0 = time.perf_counter()
            naive_train(args.data, model_dir, args.naive_seed)
            naive_s = time.perf_counter() - t0
            report, _ = evaluate(model_dir, args.data, os.path.join(tmp, "eval-naive"))
            n_train = sum(1 for _ in (args.data / "train").rglob("*.jpg"))
            epochs = report["model"]["hyperparameters"]["epochs"]
            naive = {
                "seed": args.naive_seed,
                "macro_f1": report["metrics"]["macro_f1"],
                "train_wall_s": naive_s,
                "train_images_per_s": n_train * epochs / naive_s,
            }
            print(json.dumps(naive), flush=True)
    f1s = [r["macro_f1"] for r in runs]
    ours = next((r for r in runs if naive and r["seed"] == naive["seed"]), runs[0])
    summary = {
        "runs": runs,
        "naive": naive,
        "macro_f1_mean": statistics.mean(f1s),
        "macro_f1_stdev": statistics.pstdev(f1s),
        "macro_f1_min": min(f1s),
        "macro_f1_max": max(f1s),
        "train_wall_s_mean": statistics.mean(r["train_wall_s"] for r in runs),
        "speedup_vs_naive": naive["train_wall_s"] / ours["train_wall_s"] if naive else None,
        "peak_rss_mib_children": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "peak_rss_mib_bench": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    args.out.write_text(json.dumps(summary, indent=2))
    print(json.dumps({k: v for k, v in summary.items() if k != "runs"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
