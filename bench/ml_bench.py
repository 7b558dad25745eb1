"""ML benchmark: quality of the default recipe over seeds, and speed against a naive tutorial-style loop.

    python bench/ml_bench.py --data ../shared/datasets/cats-dev --seeds 0 1 2 [--naive-seed 0] [--out FILE]

Per seed: ml_code/train.py with its defaults (which fit on <data>/train + <data>/val), then
ml_code/evaluation.py on <data>/test, each as its own subprocess exactly as the pipeline runs them;
reports macro-F1 / accuracy mean and standard deviation, wall time, training and evaluation images/s and
the peak RSS of each process (os.wait4). The naive baseline (in this process, after the seeds) trains
the same model with the same trainable parameters, epochs, batch size and optimizer in the PyTorch
tutorial's style (ImageFolder + DataLoader decoding and transforming every image every epoch, the
frozen backbone run on every batch) and is evaluated by evaluation.py the same way. Writes JSON to
--out (default: a file under the system temp dir, outside the repo).
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
DEFAULT_OUT = Path(tempfile.gettempdir()) / "nyanops-ml-bench" / "ml_bench.json"


def run_script(args: list[str]) -> tuple[float, str, float]:
    """Run a script as its own process: (wall seconds, stdout, peak RSS MiB of that process)."""
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([sys.executable, *args], stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode:
        sys.exit(f"{args[0]} failed:\n{stdout[-2000:]}\n{stderr[-2000:]}")
    return seconds, stdout, usage.ru_maxrss / 1024


def evaluate(model_dir: str, data: Path, out: str) -> tuple[dict, float, float]:
    seconds, _, rss = run_script(
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
    return json.loads(Path(out, "evaluation.json").read_text()), seconds, rss


def naive_train(data: Path, model_dir: str, seed: int) -> dict:
    """train.py's default recipe (model, trainable parameters, epochs, batch size, optimizer, flips, the
    train+val fit and TTA scoring) with the PyTorch transfer-learning tutorial's data loading: ImageFolder +
    DataLoader decode, resize and transform every image every epoch, and the frozen backbone runs again on
    every batch (the tutorial's "ConvNet as fixed feature extractor"); val is scored every epoch as there."""
    sys.path.insert(0, str(ML_CODE))
    import torch
    import train as recipe
    from backbones import NORMALIZATION, backbone_parameters, build_model, classifier_of, set_backbone_trainable
    from image_data import AUGMENT_DEGREES, AUGMENT_SCALE, AUGMENT_TRANSLATE, AUGMENT_VFLIP_P, stored_size
    from torch.nn import functional as F
    from torchvision import datasets, transforms

    dirs = ["--train-dir", str(data / "train"), "--val-dir", str(data / "val"), "--model-dir", model_dir]
    args = recipe.parse_args([*dirs, "--seed", str(seed)])
    recipe.seed_everything(seed)
    norm = NORMALIZATION[args.arch]
    size, side = args.image_size, stored_size(args.image_size)
    tail = [transforms.ToTensor(), transforms.Normalize(norm["mean"], norm["std"])]
    plain = transforms.Compose([transforms.Resize(side), transforms.CenterCrop(size), *tail])
    flips = [transforms.RandomHorizontalFlip()] if args.augment else []
    frozen_tf = transforms.Compose([transforms.Resize(side), transforms.CenterCrop(size), *flips, *tail])
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
    splits = ["train", "val"] if args.fit_on == "train+val" else ["train"]

    def fit_data(tf):
        return torch.utils.data.ConcatDataset([datasets.ImageFolder(str(data / s), tf) for s in splits])

    fit_frozen, fit_aug = fit_data(frozen_tf), fit_data(augmented)
    val = datasets.ImageFolder(str(data / "val"), plain)
    loader = lambda ds, shuffle, bs: torch.utils.data.DataLoader(ds, batch_size=bs, shuffle=shuffle)  # noqa: E731
    model = build_model(args.arch, len(val.classes), pretrained=True)
    head = classifier_of(model)
    set_backbone_trainable(model, False)
    opt = torch.optim.SGD(head.parameters(), lr=args.lr, momentum=args.momentum)
    best, state = -1.0, None
    t0 = time.perf_counter()
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
            steps = (args.epochs - args.freeze_epochs) * -(-len(fit_aug) // args.batch_size)
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
        model.train()
        recipe.freeze_batchnorm(model)
        for x, y in loader(fit_frozen if frozen or not args.augment else fit_aug, True, args.batch_size):
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
                probs = model(x).softmax(1)
                if args.tta:
                    probs = (probs + model(x.flip(-1)).softmax(1)) / 2
                correct += int((probs.argmax(1) == y).sum())
        acc = correct / len(val)
        keep = epoch == args.epochs if args.fit_on == "train+val" else acc > best
        if keep:
            best, state = acc, {k: v.clone() for k, v in model.state_dict().items()}
        print(f"naive epoch {epoch}: val acc {acc:.4f} ({time.perf_counter() - t0:.0f}s)", flush=True)
    os.makedirs(model_dir, exist_ok=True)
    torch.save(state, os.path.join(model_dir, "model.pth"))
    meta = {
        "arch": args.arch,
        "class_names": val.classes,
        "image_size": size,
        "stored_size": side,
        "tta": args.tta,
        "normalization": norm,
        "hyperparameters": recipe.hyperparameters_of(args),
        "history": [],
        "best_epoch": 0,
        "dataset_hash": None,
    }
    Path(model_dir, "model_meta.json").write_text(json.dumps(meta))
    return {"fitted_images": len(fit_frozen), "epochs": args.epochs}


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--data",
        type=Path,
        default=Path(os.environ.get("NYANOPS_SAMPLE_DATA", ROOT.parent / "shared/datasets/cats-dev")),
    )
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--naive-seed", type=int, default=0, help="seed of the naive baseline run; -1 skips it")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON results file (default {DEFAULT_OUT})")
    args = p.parse_args(argv)
    runs = []
    load = os.getloadavg()
    t_bench = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            model_dir = os.path.join(tmp, f"model-{seed}")
            train_s, _, train_rss = run_script(
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
            report, eval_s, eval_rss = evaluate(model_dir, args.data, os.path.join(tmp, f"eval-{seed}"))
            fitted = meta["num_images"].get("fitted", meta["num_images"]["train"])
            runs.append(
                {
                    "seed": seed,
                    "macro_f1": report["metrics"]["macro_f1"],
                    "accuracy": report["metrics"]["accuracy"],
                    "kept_epoch": meta["best_epoch"],
                    "fitted_images": fitted,
                    "train_wall_s": train_s,
                    "train_seconds_in_script": meta["timings"]["train_seconds"],
                    "eval_wall_s": eval_s,
                    "train_images_per_s": fitted * meta["hyperparameters"]["epochs"] / train_s,
                    "eval_images_per_s": report["num_images"] / eval_s,
                    "eval_predict_images_per_s": report["num_images"] / report["timings"]["predict_seconds"],
                    "train_peak_rss_mib": train_rss,
                    "eval_peak_rss_mib": eval_rss,
                }
            )
            print(json.dumps(runs[-1]), flush=True)
        naive = None
        if args.naive_seed >= 0:
            model_dir = os.path.join(tmp, "model-naive")
            t0 = time.perf_counter()
            work = naive_train(args.data, model_dir, args.naive_seed)
            naive_s = time.perf_counter() - t0
            report, _, _ = evaluate(model_dir, args.data, os.path.join(tmp, "eval-naive"))
            naive = {
                "seed": args.naive_seed,
                "macro_f1": report["metrics"]["macro_f1"],
                "accuracy": report["metrics"]["accuracy"],
                "train_wall_s": naive_s,
                "train_images_per_s": work["fitted_images"] * work["epochs"] / naive_s,
                "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
            print(json.dumps(naive), flush=True)
    f1_mean, f1_std = mean_std([r["macro_f1"] for r in runs])
    acc_mean, acc_std = mean_std([r["accuracy"] for r in runs])
    ours = next((r for r in runs if naive and r["seed"] == naive["seed"]), runs[0])
    summary = {
        "data": str(args.data),
        "load_average_at_start": [round(v, 2) for v in load],
        "load_average_at_end": [round(v, 2) for v in os.getloadavg()],
        "bench_wall_s": time.perf_counter() - t_bench,
        "runs": runs,
        "naive": naive,
        "macro_f1_mean": f1_mean,
        "macro_f1_std": f1_std,
        "macro_f1_min": min(r["macro_f1"] for r in runs),
        "accuracy_mean": acc_mean,
        "accuracy_std": acc_std,
        "train_wall_s_mean": statistics.mean(r["train_wall_s"] for r in runs),
        "train_wall_s_max": max(r["train_wall_s"] for r in runs),
        "eval_wall_s_mean": statistics.mean(r["eval_wall_s"] for r in runs),
        "train_images_per_s_mean": statistics.mean(r["train_images_per_s"] for r in runs),
        "eval_images_per_s_mean": statistics.mean(r["eval_images_per_s"] for r in runs),
        "speedup_vs_naive": naive["train_wall_s"] / ours["train_wall_s"] if naive else None,
        # per process (os.wait4); RUSAGE_CHILDREN would count the bench's own pages copied at fork
        "peak_rss_mib_train_max": max(r["train_peak_rss_mib"] for r in runs),
        "peak_rss_mib_eval_max": max(r["eval_peak_rss_mib"] for r in runs),
        "peak_rss_mib_children": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "peak_rss_mib_bench": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2))
    print(json.dumps({k: v for k, v in summary.items() if k != "runs"}, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
