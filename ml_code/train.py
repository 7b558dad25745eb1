"""Train a cat-breed classifier by transfer learning, under the SageMaker training contract.

Runs unchanged in a SageMaker PyTorch training job and locally (``python ml_code/train.py --train-dir
DIR --val-dir DIR``). Data: ImageFolder roots ``<class>/<image>``, from the ``train`` and ``val`` channels
(SM_CHANNEL_TRAIN, SM_CHANNEL_VAL), or the seed's single ``training`` channel (SM_CHANNEL_TRAINING /
--data-dir) holding ``train/`` and ``val/``; --train-dir / --val-dir override both. The flags, their
types, ranges and defaults are the table in hyperparameters.py (rendered in ml_code/README.md).

The steps of ``run`` (each a function below):

1. ``load_data``: find the classes, hash every file (and check the hashes the dataset was sealed with),
   decode each image once to a uint8 square kept in memory.
2. ``build_backbone``: the ImageNet backbone with a fresh classifier.
3. ``compute_features``: the frozen backbone's pooled features of every image and view, once (checkpointed).
4. ``fit_classifier``: ``freeze-epochs`` epochs of the linear classifier on those features, each image
   as a random view per epoch. With ``fit-on train+val`` the classifier fits both splits and the val
   figures are an honest internal estimate: the out-of-fold scores of a k-fold cross-validation on the
   fitted images, trained in lockstep; with ``fit-on train`` they are the val split's.
5. ``fine_tune``: any remaining epochs train the whole network (BatchNorm frozen, lr / 100, cosine decay,
   the seed's augmentation); on cats-dev this did not beat the frozen recipe (docs/benchmarks.md).
6. ``keep``: the last epoch with train+val, the best validation epoch with train.
7. ``write_outputs``: ``model.pth`` (CPU state_dict) and ``model_meta.json`` (arch, class_names,
   image_size, stored_size, views, tta, normalization, hyperparameters, history, best_epoch,
   internal_estimate, num_images, dataset_hash, timings, library_versions).

Checkpoints (--checkpoint-dir, default /opt/ml/checkpoints in a container): the feature cache and the
state after each epoch, so a restarted job resumes and ends with the same model (checkpoints.py).
Progress lines (``progress: ...``, job_progress.py) report decoding, feature passes and epochs. Per
epoch, stdout gets ``Epoch e/N``, ``train Loss: X Acc: Y``, ``val Loss: X Acc: Y`` and ``train Acc: Y val
Acc: Y`` (so all four of the seed's metric regexes match).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from backbones import (
    NORMALIZATION,
    WeightsUnavailableError,
    backbone_parameters,
    build_model,
    classifier_of,
    set_backbone_trainable,
)
from checkpoints import Checkpoints, code_hash
from features import view_features
from head import HeadRecipe, new_head, probabilities, score, single_thread, train_epoch
from hyperparameters import BY_NAME, RECORDED_NAMES, TABLE, Hyperparameter
from image_data import (
    ImageSet,
    augment_batch,
    check_same_classes,
    dataset_hash,
    decode_split,
    find_classes,
    normalize,
    scan_split,
    stored_size,
    verify_split,
)
from inference import META_FILE, WEIGHTS_FILE, predict_probabilities, select_device
from job_contract import InputError, env_path, in_container_default, run_job
from job_progress import Progress
from torch import nn
from torch.nn import functional as F
from views import CENTRE, View, views_named

BACKBONE_LR_FACTOR = 0.01  # larger steps wreck the pretrained depthwise filters
INNER_FOLDS = 5  # the internal cross-validation estimate with fit-on train+val


# ---------------------------------------------------------------------------------------- arguments


def _flag_type(h: Hyperparameter):
    def parse(value: str):
        try:
            return h.check(value)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = h.type
    return parse


def _default(h: Hyperparameter):
    if h.env:
        value = env_path(*h.env)
        if value is not None:
            return h.check(value) if h.type != "str" else value
    if h.container_default:  # inside SageMaker (its parent folder exists), else the local fallback or none
        return in_container_default(h.container_default, h.local_default or None)
    return h.default


def build_parser() -> argparse.ArgumentParser:
    """argparse from the hyperparameter table (hyperparameters.py): one flag per row, its help line."""
    p = argparse.ArgumentParser(
        description="Train an image classifier on an ImageFolder dataset (frozen ImageNet backbone features "
        "+ linear classifier, optional fine-tuning). Flags: ml_code/README.md.",
    )
    for h in TABLE:
        kwargs: dict = {"default": _default(h), "help": f"{h.help} [{h.role}; default {h.default_shown()}]"}
        if h.choices:
            kwargs["choices"] = h.choices
        elif h.type == "bool":
            kwargs.update(type=_flag_type(h), metavar="BOOL")
            if h.name == "dry-run":
                kwargs.update(nargs="?", const=True)
        elif h.type in ("int", "float"):
            kwargs.update(type=_flag_type(h), metavar="N" if h.type == "int" else "X")
        else:
            kwargs["metavar"] = "HEX" if h.name.startswith("expected-") else "PATH"
        p.add_argument(f"--{h.name}", **kwargs)
    return p


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Arguments and SageMaker environment, with fallbacks that work outside a container."""
    args = build_parser().parse_args(argv)
    args.freeze_epochs = min(args.freeze_epochs, args.epochs)  # e.g. --epochs 1: one classifier-only epoch
    return args


def hyperparameters_of(args: argparse.Namespace) -> dict:
    """The resolved hyperparameters train.py records, keyed by their flag names (no paths, no hashes)."""
    return {name: getattr(args, BY_NAME[name].attr) for name in RECORDED_NAMES}


# ---------------------------------------------------------------------------------------- 1. data


@dataclass
class TrainingData:
    class_names: list[str]
    train: ImageSet
    val: ImageSet
    merged: bool  # fit-on train+val
    split_hashes: dict[str, str]
    load_seconds: float

    @property
    def fit_count(self) -> int:
        return len(self.train) + (len(self.val) if self.merged else 0)

    @property
    def dataset_hash(self) -> str:
        return dataset_hash(self.split_hashes)


def resolve_split_dirs(args: argparse.Namespace) -> tuple[str, str]:
    """(train root, val root) from --train-dir/--val-dir, the per-split channels or --data-dir."""
    train_dir, val_dir = args.train_dir, args.val_dir
    if args.data_dir:
        train_dir = train_dir or os.path.join(args.data_dir, "train")
        val_dir = val_dir or os.path.join(args.data_dir, "val")
    if not train_dir or not val_dir:
        raise InputError(
            "no training data: pass --train-dir and --val-dir, or --data-dir holding train/ and val/ "
            "(in SageMaker: the train and val channels, or a training channel)"
        )
    return train_dir, val_dir


def load_data(args: argparse.Namespace) -> TrainingData:
    """Classes, content hashes (checked against the sealed ones), and every image decoded once."""
    t0 = time.perf_counter()
    train_dir, val_dir = resolve_split_dirs(args)
    class_names = check_same_classes({"train": find_classes(train_dir, "train"), "val": find_classes(val_dir, "val")})
    if len(class_names) < 2:
        raise InputError(f"{train_dir}: only one class folder ({class_names[0]}); a classifier needs at least two")
    if args.num_classes and args.num_classes != len(class_names):
        raise InputError(
            f"--num-classes {args.num_classes} does not match the {len(class_names)} class folders in "
            f"{train_dir} ({', '.join(class_names)}); fix the hyperparameter or the folders (0 = take from folders)"
        )
    files = {
        "train": scan_split(train_dir, class_names, args.workers),
        "val": scan_split(val_dir, class_names, args.workers),
    }
    verify_split(files["train"], "train", args.expected_train_hash)
    verify_split(files["val"], "val", args.expected_val_hash)
    side = stored_size(args.image_size)
    progress = Progress("decode", len(files["train"]) + len(files["val"]))
    train_set = decode_split(files["train"], side, args.workers, progress.advance)
    val_set = decode_split(files["val"], side, args.workers, progress.advance)
    seconds = time.perf_counter() - t0
    print(f"loaded {len(train_set)} train / {len(val_set)} val images in {seconds:.1f}s", flush=True)
    return TrainingData(
        class_names=class_names,
        train=train_set,
        val=val_set,
        merged=args.fit_on == "train+val",
        split_hashes={s: f.content_hash for s, f in files.items()},
        load_seconds=seconds,
    )


# ---------------------------------------------------------------------------------------- 2. backbone


def build_backbone(args: argparse.Namespace, classes: int, device: torch.device) -> nn.Module:
    try:
        model = build_model(args.arch, classes, pretrained=args.pretrained, weights=args.weights or None)
    except WeightsUnavailableError as exc:
        raise InputError(str(exc)) from None
    return model.to(device, memory_format=torch.channels_last)


def seed_everything(seed: int) -> torch.Generator:
    random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    if torch.backends.cudnn.is_available():
        torch.backends.cudnn.benchmark = False
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------------------------- 3. features


@dataclass
class Recipe:
    """What the run does, derived from the arguments."""

    epochs: int
    freeze_epochs: int
    max_batches: int | None  # dry run: one batch per epoch
    limit: int | None  # dry run: the first images only
    train_views: tuple[View, ...]
    score_views: tuple[View, ...]
    head: HeadRecipe

    @property
    def all_views(self) -> tuple[View, ...]:
        return tuple(dict.fromkeys(self.train_views + self.score_views))


def recipe_of(args: argparse.Namespace) -> Recipe:
    epochs = 1 if args.dry_run else args.epochs
    view_set = views_named(args.views)
    return Recipe(
        epochs=epochs,
        freeze_epochs=min(args.freeze_epochs, epochs),
        max_batches=1 if args.dry_run else None,
        limit=args.test_batch_size if args.dry_run else None,
        train_views=view_set if args.augment else (CENTRE,),
        score_views=view_set if args.tta else (CENTRE,),
        head=HeadRecipe(epochs=epochs, lr=args.lr, momentum=args.momentum, batch_size=args.batch_size),
    )


@dataclass
class FeatureCache:
    """float32 (views, N, D) per split, views in ``Recipe.all_views`` order."""

    train: torch.Tensor
    val: torch.Tensor
    views: tuple[View, ...]

    def select(self, split: str, views: Sequence[View]) -> torch.Tensor:
        feats = self.train if split == "train" else self.val
        return feats[[self.views.index(v) for v in views]]


def compute_features(model, data: TrainingData, recipe: Recipe, args, device, checkpoints: Checkpoints) -> FeatureCache:
    """The frozen backbone's features of every image and view, from the checkpoint when it has them."""
    saved = checkpoints.load("features")
    if saved is not None:
        print(f"checkpoint: resumed the feature cache ({len(saved['views'])} views)", flush=True)
        return FeatureCache(saved["train"], saved["val"], tuple(View(**v) for v in saved["views"]))
    views = recipe.all_views
    splits = {"train": data.train, "val": data.val}
    counts = {s: len(d) if recipe.limit is None else min(recipe.limit, len(d)) for s, d in splits.items()}
    progress = Progress("features", sum(counts.values()) * len(views))
    feats = {
        s: view_features(
            model,
            d.images[: counts[s]],
            views,
            size=args.image_size,
            norm=NORMALIZATION[args.arch],
            device=device,
            batch_size=args.test_batch_size,
            on_batch=progress.advance,
        )
        for s, d in splits.items()
    }
    cache = FeatureCache(feats["train"], feats["val"], views)
    checkpoints.save("features", {"train": cache.train, "val": cache.val, "views": [v.__dict__ for v in views]})
    return cache


# ---------------------------------------------------------------------------------------- 4. classifier


@dataclass
class Kept:
    """The epoch whose weights are kept (see ``keep``)."""

    epoch: int = 0
    val_acc: float = -1.0
    val_loss: float = float("inf")
    state: dict | None = None


@dataclass
class Training:
    history: list[dict] = field(default_factory=list)
    kept: Kept = field(default_factory=Kept)
    seconds: float = 0.0
    internal_estimate: dict | None = None


def print_metrics(train_loss: float, train_acc: float, val_loss: float, val_acc: float) -> None:
    """The seed's per-epoch lines, plus one line for the seed's ``train Acc:`` / ``val Acc:`` regexes,
    which never match ``train Loss: X Acc: Y`` (SageMaker MetricDefinitions search each line)."""
    print(f"train Loss: {train_loss:.4f} Acc: {train_acc:.4f}", flush=True)
    print(f"val Loss: {val_loss:.4f} Acc: {val_acc:.4f}", flush=True)
    print(f"train Acc: {train_acc:.4f} val Acc: {val_acc:.4f}", flush=True)


def inner_folds(labels: torch.Tensor, k: int, generator: torch.Generator) -> list[torch.Tensor]:
    """k stratified folds (index tensors) of ``labels``; classes with fewer than k images spread as they can."""
    fold_of = torch.empty(len(labels), dtype=torch.long)
    offset = 0
    for c in labels.unique(sorted=True).tolist():
        members = (labels == c).nonzero().flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        fold_of[members] = (torch.arange(len(members)) + offset) % k
        offset += len(members)
    return [(fold_of == f).nonzero().flatten() for f in range(k)]


def macro_f1(predicted: torch.Tensor, labels: torch.Tensor, classes: int) -> float:
    scores = []
    for c in range(classes):
        tp = int(((predicted == c) & (labels == c)).sum())
        fp = int(((predicted == c) & (labels != c)).sum())
        fn = int(((predicted != c) & (labels == c)).sum())
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return sum(scores) / classes


def keep(training: Training, epoch: int, val_acc: float, val_loss: float, model: nn.Module, merged: bool, last: bool):
    """With train+val the last epoch is kept (the schedule is fixed); with train the best validation epoch
    (ties: lower validation loss)."""
    best = training.kept
    better = val_acc > best.val_acc or (val_acc == best.val_acc and val_loss < best.val_loss)
    if last if merged else better:
        state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        training.kept = Kept(epoch, val_acc, val_loss, state)


def fit_classifier(
    model: nn.Module,
    feats: FeatureCache,
    data: TrainingData,
    recipe: Recipe,
    generator: torch.Generator,
    checkpoints: Checkpoints,
    device: torch.device,
) -> Training:
    """The classifier-only epochs on cached features, checkpointed after each epoch."""
    training = Training()
    if not recipe.freeze_epochs:
        return training
    t0 = time.perf_counter()
    classes = len(data.class_names)
    train_x = feats.select("train", recipe.train_views).to(device)
    val_score_x = feats.select("val", recipe.score_views).to(device)
    train_y = data.train.labels[: train_x.shape[1]].to(device)
    val_y = data.val.labels[: val_score_x.shape[1]].to(device)
    fit_x, fit_y = train_x, train_y
    if data.merged:
        fit_x = torch.cat([train_x, feats.select("val", recipe.train_views).to(device)], dim=1)
        fit_y = torch.cat([train_y, val_y])
        fit_score_x = torch.cat([feats.select("train", recipe.score_views).to(device), val_score_x], dim=1)
    head = classifier_of(model)
    fresh = new_head(head.in_features, classes, generator)
    head.load_state_dict(fresh.state_dict())
    set_backbone_trainable(model, False)
    optimizer = torch.optim.SGD(head.parameters(), lr=recipe.head.lr, momentum=recipe.head.momentum)
    # The internal estimate: k heads on k-1 folds each, trained in lockstep, scored on their held-out fold.
    folds, fold_heads, fold_opts = [], [], []
    if data.merged and recipe.max_batches is None:
        k = min(INNER_FOLDS, int(torch.bincount(fit_y.cpu(), minlength=classes).min()))
        folds = inner_folds(fit_y.cpu(), k, generator) if k >= 2 else []  # every fold needs every class
        for _ in folds:
            h = new_head(head.in_features, classes, generator).to(device)
            fold_heads.append(h)
            fold_opts.append(torch.optim.SGD(h.parameters(), lr=recipe.head.lr, momentum=recipe.head.momentum))
    start = 1
    saved = checkpoints.load("classifier")
    if saved is not None:
        head.load_state_dict(saved["head"])
        optimizer.load_state_dict(saved["optimizer"])
        for h, o, hs, os_ in zip(fold_heads, fold_opts, saved["fold_heads"], saved["fold_optimizers"], strict=True):
            h.load_state_dict(hs)
            o.load_state_dict(os_)
        folds = saved["folds"]
        generator.set_state(saved["generator"])
        training.history = saved["history"]
        training.kept = Kept(**saved["kept"])
        training.internal_estimate = saved["internal_estimate"]
        start = saved["epoch"] + 1
        print(f"checkpoint: resumed after epoch {saved['epoch']}/{recipe.freeze_epochs} of the classifier", flush=True)
    progress = Progress("epochs", recipe.freeze_epochs, unit="epochs")
    progress.done = start - 1
    oof = None
    for epoch in range(start, recipe.freeze_epochs + 1):
        t_epoch = time.perf_counter()
        print(f"Epoch {epoch}/{recipe.epochs}", flush=True)
        train_loss, train_acc = train_epoch(
            head, fit_x, fit_y, optimizer, recipe.head.batch_size, generator, recipe.max_batches
        )
        if folds:
            oof = torch.zeros(len(fit_y), classes, device=device)
            for f, held in enumerate(folds):
                rest = torch.cat([g for j, g in enumerate(folds) if j != f]).to(device)
                train_epoch(fold_heads[f], fit_x[:, rest], fit_y[rest], fold_opts[f], recipe.head.batch_size, generator)
                oof[held.to(device)] = probabilities(fold_heads[f], fit_score_x[:, held.to(device)])
            val_loss, val_acc = score(oof, fit_y)
        else:  # fit-on train: the held-out val split (merged dry run / tiny classes: fitted, optimistic)
            val_loss, val_acc = score(probabilities(head, val_score_x), val_y)
        print_metrics(train_loss, train_acc, val_loss, val_acc)
        training.history.append(_epoch_record(epoch, train_loss, train_acc, val_loss, val_acc, t_epoch))
        keep(training, epoch, val_acc, val_loss, model, data.merged, last=epoch == recipe.epochs)
        if folds and epoch == recipe.freeze_epochs:
            training.internal_estimate = {
                "method": f"{len(folds)}-fold cross-validation on the fitted train+val images (out-of-fold)",
                "accuracy": round(val_acc, 6),
                "macro_f1": round(macro_f1(oof.argmax(1), fit_y, classes), 6),
                "loss": round(val_loss, 6),
            }
        checkpoints.save(
            "classifier",
            {
                "epoch": epoch,
                "head": head.state_dict(),
                "optimizer": optimizer.state_dict(),
                "fold_heads": [h.state_dict() for h in fold_heads],
                "fold_optimizers": [o.state_dict() for o in fold_opts],
                "folds": folds,
                "generator": generator.get_state(),
                "history": training.history,
                "kept": training.kept.__dict__,
                "internal_estimate": training.internal_estimate,
            },
        )
        progress.advance()
    training.seconds = time.perf_counter() - t0
    return training


def _epoch_record(epoch, train_loss, train_acc, val_loss, val_acc, started) -> dict:
    return {
        "epoch": epoch,
        "train_loss": round(train_loss, 6),
        "train_acc": round(train_acc, 6),
        "val_loss": round(val_loss, 6),
        "val_acc": round(val_acc, 6),
        "seconds": round(time.perf_counter() - started, 3),
    }


# ---------------------------------------------------------------------------------------- 5. fine-tuning


def freeze_batchnorm(model: nn.Module) -> None:
    """Keep BatchNorm running statistics at their ImageNet values (small batches would spoil them)."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()


def fine_tune_epoch(model, images, labels, optimizer, scheduler, args, norm, device, generator, scaler, max_batches):
    """One pass over the images with the whole network trainable; (mean loss, accuracy)."""
    model.train()
    freeze_batchnorm(model)
    order = torch.randperm(len(labels), generator=generator)
    total_loss, correct, seen = 0.0, 0, 0
    for b, start in enumerate(range(0, len(order), args.batch_size)):
        if max_batches is not None and b >= max_batches:
            break
        idx = order[start : start + args.batch_size]
        x = normalize(images[idx].to(device, non_blocking=True), norm["mean"], norm["std"])
        y = labels[idx].to(device, non_blocking=True)
        if args.augment:
            x = augment_batch(x, args.image_size, generator)
        else:
            top = (x.shape[-1] - args.image_size) // 2
            x = x[..., top : top + args.image_size, top : top + args.image_size]
        x = x.contiguous(memory_format=torch.channels_last)
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, enabled=scaler is not None):
            logits = model(x)
            loss = F.cross_entropy(logits, y)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        scheduler.step()
        total_loss += loss.item() * len(idx)
        correct += int((logits.argmax(1) == y).sum())
        seen += len(idx)
    return total_loss / max(seen, 1), correct / max(seen, 1)


def fine_tune(model, data: TrainingData, recipe: Recipe, args, device, generator, checkpoints, training: Training):
    """Epochs after ``freeze-epochs`` train the whole network; checkpointed after each epoch."""
    if recipe.freeze_epochs >= recipe.epochs:
        return training
    t0 = time.perf_counter()
    norm = NORMALIZATION[args.arch]
    images = torch.cat([data.train.images, data.val.images]) if data.merged else data.train.images
    labels = torch.cat([data.train.labels, data.val.labels]) if data.merged else data.train.labels
    set_backbone_trainable(model, True)
    head = classifier_of(model)
    lr = args.lr * BACKBONE_LR_FACTOR
    optimizer = torch.optim.SGD(
        [{"params": list(backbone_parameters(model))}, {"params": list(head.parameters())}],
        lr=lr,
        momentum=args.momentum,
    )
    steps = (recipe.epochs - recipe.freeze_epochs) * -(-len(labels) // args.batch_size)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(steps, 1))
    scaler = torch.amp.GradScaler("cuda") if device.type == "cuda" else None
    start = recipe.freeze_epochs + 1
    saved = checkpoints.load("fine_tune")
    if saved is not None:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        generator.set_state(saved["generator"])
        torch.set_rng_state(saved["torch_rng"])
        training.history = saved["history"]
        training.kept = Kept(**saved["kept"])
        start = saved["epoch"] + 1
        print(f"checkpoint: resumed after epoch {saved['epoch']}/{recipe.epochs} of fine-tuning", flush=True)
    if data.merged:
        print("fine-tuning on train+val: val figures are on images the model fits (optimistic)", flush=True)
    progress = Progress("epochs", recipe.epochs - recipe.freeze_epochs, unit="epochs")
    progress.done = start - 1 - recipe.freeze_epochs
    for epoch in range(start, recipe.epochs + 1):
        t_epoch = time.perf_counter()
        print(f"Epoch {epoch}/{recipe.epochs}", flush=True)
        train_loss, train_acc = fine_tune_epoch(
            model, images, labels, optimizer, scheduler, args, norm, device, generator, scaler, recipe.max_batches
        )
        val_images = data.val.images if recipe.limit is None else data.val.images[: recipe.limit]
        probs = predict_probabilities(
            model, val_images, recipe.score_views, args.image_size, norm, device, args.test_batch_size
        )
        val_loss, val_acc = score(probs, data.val.labels[: len(probs)])
        print_metrics(train_loss, train_acc, val_loss, val_acc)
        training.history.append(_epoch_record(epoch, train_loss, train_acc, val_loss, val_acc, t_epoch))
        keep(training, epoch, val_acc, val_loss, model, data.merged, last=epoch == recipe.epochs)
        checkpoints.save(
            "fine_tune",
            {
                "epoch": epoch,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "generator": generator.get_state(),
                "torch_rng": torch.get_rng_state(),
                "history": training.history,
                "kept": training.kept.__dict__,
            },
        )
        progress.advance()
    training.seconds += time.perf_counter() - t0
    return training


# ---------------------------------------------------------------------------------------- 7. outputs


def library_versions() -> dict:
    import torchvision

    versions = {"python": platform.python_version(), "torch": torch.__version__, "torchvision": torchvision.__version__}
    try:
        import PIL

        versions["pillow"] = PIL.__version__
    except ImportError:
        pass
    return versions


def write_outputs(args, data: TrainingData, recipe: Recipe, training: Training, device, started: float) -> dict:
    """model.pth (the kept epoch's CPU state_dict), model_meta.json and training_history.json."""
    os.makedirs(args.model_dir, exist_ok=True)
    torch.save(training.kept.state, os.path.join(args.model_dir, WEIGHTS_FILE))
    fitted = data.fit_count
    images_trained = recipe.epochs * (fitted if recipe.max_batches is None else min(fitted, args.batch_size))
    meta = {
        "format_version": 1,
        "arch": args.arch,
        "num_classes": len(data.class_names),
        "class_names": data.class_names,
        "image_size": args.image_size,
        "stored_size": stored_size(args.image_size),
        "views": args.views,
        "tta": args.tta,
        "normalization": NORMALIZATION[args.arch],
        "hyperparameters": hyperparameters_of(args),
        "history": training.history,
        "best_epoch": training.kept.epoch,
        "best_val_acc": training.kept.val_acc,
        "best_val_loss": training.kept.val_loss,
        "val_figures": "internal cross-validation (out-of-fold)"
        if training.internal_estimate
        else ("val split (held out)" if not data.merged else "val split (fitted: optimistic)"),
        "internal_estimate": training.internal_estimate,
        "num_images": {"train": len(data.train), "val": len(data.val), "fitted": fitted},
        "fit_on": args.fit_on,
        "dataset_hash": data.dataset_hash,
        "split_hashes": data.split_hashes,
        "device": str(device),
        "timings": {
            "load_seconds": round(data.load_seconds, 3),
            "train_seconds": round(training.seconds, 3),
            "total_seconds": round(time.perf_counter() - started, 3),
            "train_images_per_second": round(images_trained / training.seconds, 2) if training.seconds else None,
        },
        "library_versions": library_versions(),
    }
    with open(os.path.join(args.model_dir, META_FILE), "w", encoding="utf-8") as fh:
        json.dump(meta, fh, indent=2)
    if args.output_data_dir:
        os.makedirs(args.output_data_dir, exist_ok=True)
        with open(os.path.join(args.output_data_dir, "training_history.json"), "w", encoding="utf-8") as fh:
            summary = {"history": training.history, "best_epoch": training.kept.epoch, "timings": meta["timings"]}
            json.dump({**summary, "internal_estimate": training.internal_estimate}, fh, indent=2)
    print(f"saved {WEIGHTS_FILE} and {META_FILE} to {args.model_dir}", flush=True)
    return meta


# ---------------------------------------------------------------------------------------- the job


def run(args: argparse.Namespace) -> dict:
    """Load, features, fit, fine-tune, keep, write (see the module docstring); return model_meta."""
    started = time.perf_counter()
    generator = seed_everything(args.seed)
    device = select_device(args.num_gpus)
    data = load_data(args)
    recipe = recipe_of(args)
    print(f"classes: {', '.join(data.class_names)}; device: {device}", flush=True)
    if data.merged:
        print(
            f"fitting on train+val ({data.fit_count} images) for a fixed {recipe.epochs} epochs, keeping the last; "
            f"val figures: {INNER_FOLDS}-fold cross-validation on those images (out-of-fold, honest)",
            flush=True,
        )
    checkpoints = Checkpoints(
        args.checkpoint_dir,
        {
            "dataset": data.split_hashes,
            "hyperparameters": {k: v for k, v in hyperparameters_of(args).items() if BY_NAME[k].compared}
            | {"dry-run": args.dry_run, "test-batch-size": args.test_batch_size},
            "code": code_hash(),
        },
    )
    model = build_backbone(args, len(data.class_names), device)
    feats = None
    if recipe.freeze_epochs:
        set_backbone_trainable(model, False)
        feats = compute_features(model, data, recipe, args, device, checkpoints)
    training = Training()
    if feats is not None:
        with single_thread():
            training = fit_classifier(model, feats, data, recipe, generator, checkpoints, device)
    training = fine_tune(model, data, recipe, args, device, generator, checkpoints, training)
    kept = "last epoch" if data.merged else "best epoch"
    print(f"{kept} {training.kept.epoch}: val Acc {training.kept.val_acc:.4f}", flush=True)
    if training.internal_estimate:
        est = training.internal_estimate
        print(f"internal estimate ({est['method']}): macro_f1 {est['macro_f1']:.4f}", flush=True)
    return write_outputs(args, data, recipe, training, device, started)


def main(argv: Sequence[str] | None = None) -> int:
    return run_job(run, parse_args, argv)


if __name__ == "__main__":
    sys.exit(main())
