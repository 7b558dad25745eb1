"""Train a cat-breed classifier by transfer learning, under the SageMaker training contract.

Runs unchanged in a SageMaker PyTorch training job and locally (``python ml_code/train.py --train-dir
DIR --val-dir DIR``). Data: ImageFolder roots ``<class>/<image>``, from the ``train`` and ``val`` channels
(SM_CHANNEL_TRAIN, SM_CHANNEL_VAL), or the seed's single ``training`` channel (SM_CHANNEL_TRAINING /
--data-dir) holding ``train/`` and ``val/``; --train-dir / --val-dir override both.

Recipe: every image is decoded and resized once and kept in memory as uint8. The first
``freeze-epochs`` epochs train only the classifier on the frozen ImageNet backbone: its features are
computed once per image (centre crop, plus the mirrored crop with ``augment`` or ``tta``) and each epoch
picks one of the two views per image at random. Remaining epochs, if any, fine-tune the whole network
(BatchNorm statistics stay frozen) with SGD + momentum, a cosine learning-rate decay from ``lr`` / 100
and, with ``augment``, the seed's random crop / flips / affine. Default: all 15 epochs classifier-only on
EfficientNet-Lite2 features at 288 px (on cats-dev, fine-tuning the backbone did not beat this and took
minutes; see docs/benchmarks.md). With ``fit-on train+val`` (default) the classifier fits train and val
together for the fixed number of epochs and the last epoch is kept (val metrics are then optimistic: the
model has seen those images); with ``fit-on train`` the epoch with the best validation accuracy (ties:
lower validation loss) is kept. With ``tta`` validation and evaluation.py average the class probabilities
of the centre crop and its mirror image.

Hyperparameters (SageMaker passes them as ``--name value`` strings):

==================  ======  ===================  ==================  ===========================================
name                type    default              allowed             meaning
==================  ======  ===================  ==================  ===========================================
epochs              int     15                   1..1000             total epochs (frozen + fine-tuning)
freeze-epochs       int     1000 (= all)         0..1000             first epochs that train only the classifier
                                                                     (capped at epochs, so by default no epoch
                                                                     fine-tunes the backbone)
batch-size          int     16                   1..1024             training mini-batch size
test-batch-size     int     64                   1..1024             batch size for validation / feature passes
lr                  float   0.05                 (0, 10]             classifier learning rate while frozen; the
                                                                     whole network fine-tunes at lr / 100
momentum            float   0.9                  0..0.999            SGD momentum
num-classes         int     0                    0 or 2..10000       expected number of classes; 0 = take it
                                                                     from the class folders; else must match
arch                str     efficientnet_lite2   efficientnet_lite0  backbone; resnet18 is the seed's model
                                                 | _lite1 | _lite2
                                                 | resnet18
pretrained          bool    true                 true/false/1/0      start from ImageNet weights
weights             str     ""                   file path           ImageNet state_dict to use instead of the
                                                                     package / torch hub cache / download
augment             bool    true                 true/false/1/0      mirrored views while frozen; the seed's
                                                                     augmentation while fine-tuning
image-size          int     288                  32..1024            network input side in pixels
fit-on              str     train+val            train+val | train   what the model fits; train+val keeps the
                                                                     last epoch, train the best val epoch
tta                 bool    true                 true/false/1/0      score val / test on centre crop + mirror
seed                int     0                    0..2**31-1          seed for weights init, shuffling, augment
workers             int     0                    0..64               image decoding threads; 0 = CPU count
dry-run             bool    false                true/false/1/0      1 epoch, 1 batch: check the pipeline only
num-gpus            int     SM_NUM_GPUS or all   0..64               GPUs to use (0 = CPU); uses one GPU
==================  ======  ===================  ==================  ===========================================

Paths: --model-dir (SM_MODEL_DIR, /opt/ml/model, or ./model outside a container), --data-dir,
--train-dir, --val-dir, --output-data-dir (SM_OUTPUT_DATA_DIR), --failure-file.

Outputs in the model dir: ``model.pth`` (CPU state_dict of the kept epoch) and ``model_meta.json``
(arch, class_names, image_size, tta, fit_on, normalization, hyperparameters, history, best_epoch = the
kept epoch, best_val_acc, num_images, timings, library_versions, dataset_hash). Per epoch, stdout gets
``Epoch e/N``, ``train Loss: X Acc: Y``, ``val Loss: X Acc: Y`` and ``train Acc: Y val Acc: Y`` (so all four
seed metric regexes match).
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

import torch
from backbones import (
    ARCHITECTURES,
    NORMALIZATION,
    WeightsUnavailableError,
    backbone_parameters,
    build_model,
    classifier_of,
    extract_features,
    set_backbone_trainable,
)
from image_data import (
    ImageSet,
    augment_batch,
    center_crop,
    check_same_classes,
    combined_hash,
    find_classes,
    load_image_set,
    normalize,
    stored_size,
)
from job_contract import InputError, bounded, env_path, in_container_default, run_job, str2bool
from torch import nn
from torch.nn import functional as F

META_FILE = "model_meta.json"
WEIGHTS_FILE = "model.pth"
BACKBONE_LR_FACTOR = 0.01  # larger steps wreck the pretrained depthwise filters
FIT_ON = ("train+val", "train")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Arguments and SageMaker environment, with fallbacks that work outside a container."""
    p = argparse.ArgumentParser(description="Fine-tune an ImageNet backbone on an ImageFolder dataset.")
    p.add_argument("--batch-size", type=bounded(int, 1, 1024), default=16, metavar="N")
    p.add_argument("--test-batch-size", type=bounded(int, 1, 1024), default=64, metavar="N")
    p.add_argument("--epochs", type=bounded(int, 1, 1000), default=15, metavar="N")
    p.add_argument("--freeze-epochs", type=bounded(int, 0, 1000), default=1000, metavar="N")
    p.add_argument("--num-classes", type=bounded(int, 0, 10000), default=0, metavar="N")
    p.add_argument("--lr", type=bounded(float, 0.0, 10.0, low_open=True), default=0.05, metavar="LR")
    p.add_argument("--momentum", type=bounded(float, 0.0, 0.999), default=0.9, metavar="M")
    p.add_argument("--arch", choices=ARCHITECTURES, default="efficientnet_lite2")
    p.add_argument("--pretrained", type=str2bool, default=True, metavar="BOOL")
    p.add_argument("--weights", default="", metavar="PATH")
    p.add_argument("--augment", type=str2bool, default=True, metavar="BOOL")
    p.add_argument("--image-size", type=bounded(int, 32, 1024), default=288, metavar="PX")
    p.add_argument("--fit-on", choices=FIT_ON, default="train+val")
    p.add_argument("--tta", type=str2bool, default=True, metavar="BOOL")
    p.add_argument("--seed", type=bounded(int, 0, 2**31 - 1), default=0)
    p.add_argument("--workers", type=bounded(int, 0, 64), default=0)
    p.add_argument("--dry-run", type=str2bool, nargs="?", const=True, default=False, metavar="BOOL")
    gpus = env_path("SM_NUM_GPUS")
    p.add_argument("--num-gpus", type=bounded(int, 0, 64), default=int(gpus) if gpus else None)
    p.add_argument(
        "--model-dir", default=env_path("SM_MODEL_DIR", default=in_container_default("/opt/ml/model", "model"))
    )
    p.add_argument("--data-dir", default=env_path("SM_CHANNEL_TRAINING"))
    p.add_argument("--train-dir", default=env_path("SM_CHANNEL_TRAIN"))
    p.add_argument("--val-dir", default=env_path("SM_CHANNEL_VAL"))
    p.add_argument("--output-data-dir", default=env_path("SM_OUTPUT_DATA_DIR"))
    p.add_argument("--failure-file", default=None, help="where to write the one-line failure reason")
    args = p.parse_args(argv)
    args.freeze_epochs = min(args.freeze_epochs, args.epochs)  # e.g. --epochs 1: one classifier-only epoch
    if args.num_classes == 1:
        p.error("argument --num-classes: must be 0 (from the class folders) or >= 2, got 1")
    return args


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


def select_device(num_gpus: int | None) -> torch.device:
    if torch.cuda.is_available() and (num_gpus is None or num_gpus > 0):
        return torch.device("cuda")
    return torch.device("cpu")


def seed_everything(seed: int) -> torch.Generator:
    random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    if torch.backends.cudnn.is_available():
        torch.backends.cudnn.benchmark = False
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    return torch.Generator().manual_seed(seed)


def freeze_batchnorm(model: nn.Module) -> None:
    """Keep BatchNorm running statistics at their ImageNet values (small batches would spoil them)."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()


def model_inputs(images: torch.Tensor, size: int, norm: dict, device: torch.device) -> torch.Tensor:
    x = normalize(center_crop(images.to(device, non_blocking=True), size), norm["mean"], norm["std"])
    return x.contiguous(memory_format=torch.channels_last)  # ~25 % faster convolutions on CPU


@torch.inference_mode()
def compute_features(model, data: ImageSet, size, norm, device, batch_size, limit=None, flip=False) -> torch.Tensor:
    """Backbone features of the centre crops (mirrored with ``flip``), once: used while the backbone is frozen."""
    model.eval()
    count = len(data) if limit is None else min(limit, len(data))
    chunks = []
    for start in range(0, count, batch_size):
        x = model_inputs(data.images[start : min(start + batch_size, count)], size, norm, device)
        if flip:
            x = x.flip(-1)
        with torch.autocast(device.type, enabled=device.type == "cuda"):
            chunks.append(extract_features(model, x).float())
    return torch.cat(chunks).clone()  # a normal tensor (inference tensors cannot enter autograd)


def train_one_epoch(
    model: nn.Module,
    data: ImageSet,
    optimizer: torch.optim.Optimizer,
    *,
    image_size: int,
    norm: dict,
    device: torch.device,
    batch_size: int,
    augment: bool,
    generator: torch.Generator,
    scaler: torch.amp.GradScaler | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    max_batches: int | None = None,
) -> tuple[float, float]:
    """One pass over the images with the whole network trainable; (mean loss, accuracy)."""
    model.train()
    freeze_batchnorm(model)
    order = torch.randperm(len(data), generator=generator)
    total_loss, correct, seen = 0.0, 0, 0
    for b, start in enumerate(range(0, len(order), batch_size)):
        if max_batches is not None and b >= max_batches:
            break
        idx = order[start : start + batch_size]
        images = data.images[idx].to(device, non_blocking=True)
        labels = data.labels[idx].to(device, non_blocking=True)
        x = normalize(images, norm["mean"], norm["std"])
        x = augment_batch(x, image_size, generator) if augment else center_crop(x, image_size)
        x = x.contiguous(memory_format=torch.channels_last)
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, enabled=scaler is not None):
            logits = model(x)
            loss = F.cross_entropy(logits, labels)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        if scheduler is not None:
            scheduler.step()
        total_loss += loss.item() * len(idx)
        correct += int((logits.argmax(1) == labels).sum())
        seen += len(idx)
    return total_loss / max(seen, 1), correct / max(seen, 1)


def train_head_one_epoch(
    head, features, labels, optimizer, batch_size, generator, max_batches=None, flipped_features=None
):
    """One pass of the classifier over cached backbone features; (mean loss, accuracy).

    With ``flipped_features`` (the features of the mirrored images) each sample takes one of the two
    views at random: horizontal-flip augmentation at the cost of one extra feature pass."""
    head.train()
    order = torch.randperm(len(labels), generator=generator)
    total_loss, correct, seen = 0.0, 0, 0
    for b, start in enumerate(range(0, len(order), batch_size)):
        if max_batches is not None and b >= max_batches:
            break
        idx = order[start : start + batch_size]
        optimizer.zero_grad(set_to_none=True)
        x = features[idx]
        if flipped_features is not None:
            mirrored = torch.rand(len(idx), generator=generator) < 0.5
            x = torch.where(mirrored.to(x.device)[:, None], flipped_features[idx], x)
        logits = head(x)
        loss = F.cross_entropy(logits, labels[idx])
        loss.backward()
        optimizer.step()
        total_loss += loss.item() * len(idx)
        correct += int((logits.argmax(1) == labels[idx]).sum())
        seen += len(idx)
    return total_loss / max(seen, 1), correct / max(seen, 1)


@torch.no_grad()
def evaluate(
    model, data: ImageSet, *, image_size, norm, device, batch_size, limit=None, tta=False
) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) on the centre crops of ``data`` (and their mirrors with ``tta``)."""
    logits = predict_logits(
        model, data, image_size=image_size, norm=norm, device=device, batch_size=batch_size, limit=limit, tta=tta
    )
    labels = data.labels[: len(logits)]
    return F.cross_entropy(logits, labels).item(), float((logits.argmax(1) == labels).float().mean())


@torch.inference_mode()
def predict_logits(
    model, data: ImageSet, *, image_size, norm, device, batch_size, limit=None, tta=False
) -> torch.Tensor:
    """Logits (N, classes) on CPU for the centre crops of ``data`` (the first ``limit`` images).

    With ``tta`` the mirrored crop is scored too and the logits are the log of the mean probabilities."""
    model.eval()
    count = len(data) if limit is None else min(limit, len(data))
    out = []
    for start in range(0, count, batch_size):
        x = model_inputs(data.images[start : min(start + batch_size, count)], image_size, norm, device)
        with torch.autocast(device.type, enabled=device.type == "cuda"):
            logits = model(x).float()
            if tta:
                logits = flip_average(logits, model(x.flip(-1)).float())
        out.append(logits.cpu())
    return torch.cat(out)


def flip_average(logits: torch.Tensor, flipped_logits: torch.Tensor) -> torch.Tensor:
    """Log of the mean class probabilities of a view and its mirror image (valid logits)."""
    return ((logits.softmax(1) + flipped_logits.softmax(1)) / 2).clamp_min(1e-12).log()


def merge_image_sets(first: ImageSet, second: ImageSet) -> ImageSet:
    """One ImageSet holding both splits (paths keep their split folder name as a prefix)."""
    return ImageSet(
        root=os.path.commonpath([first.root, second.root]),
        class_names=first.class_names,
        paths=[os.path.join(os.path.basename(first.root), p) for p in first.paths]
        + [os.path.join(os.path.basename(second.root), p) for p in second.paths],
        images=torch.cat([first.images, second.images]),
        labels=torch.cat([first.labels, second.labels]),
        content_hash=combined_hash({"train": first.content_hash, "val": second.content_hash}),
    )


def library_versions() -> dict:
    import torchvision

    versions = {"python": platform.python_version(), "torch": torch.__version__, "torchvision": torchvision.__version__}
    try:
        import PIL

        versions["pillow"] = PIL.__version__
    except ImportError:
        pass
    return versions


def print_metrics(train_loss: float, train_acc: float, val_loss: float, val_acc: float) -> None:
    """The seed's per-epoch lines, plus one line for the seed's ``train Acc:`` / ``val Acc:`` regexes,
    which never match ``train Loss: X Acc: Y`` (SageMaker MetricDefinitions search each line)."""
    print(f"train Loss: {train_loss:.4f} Acc: {train_acc:.4f}", flush=True)
    print(f"val Loss: {val_loss:.4f} Acc: {val_acc:.4f}", flush=True)
    print(f"train Acc: {train_acc:.4f} val Acc: {val_acc:.4f}", flush=True)


def run(args: argparse.Namespace) -> dict:
    """Train, keep the best validation epoch, save model.pth + model_meta.json; return the metadata."""
    t_start = time.perf_counter()
    generator = seed_everything(args.seed)
    device = select_device(args.num_gpus)
    train_dir, val_dir = resolve_split_dirs(args)
    class_names = check_same_classes({"train": find_classes(train_dir, "train"), "val": find_classes(val_dir, "val")})
    if len(class_names) < 2:
        raise InputError(f"{train_dir}: only one class folder ({class_names[0]}); a classifier needs at least two")
    if args.num_classes and args.num_classes != len(class_names):
        raise InputError(
            f"--num-classes {args.num_classes} does not match the {len(class_names)} class folders in "
            f"{train_dir} ({', '.join(class_names)}); fix the hyperparameter or the folders (0 = take from folders)"
        )
    norm = NORMALIZATION[args.arch]
    side = stored_size(args.image_size)
    print(f"classes: {', '.join(class_names)}; device: {device}", flush=True)

    t0 = time.perf_counter()
    train_set = load_image_set(train_dir, class_names, side, args.workers)
    val_set = load_image_set(val_dir, class_names, side, args.workers)
    load_seconds = time.perf_counter() - t0
    print(f"loaded {len(train_set)} train / {len(val_set)} val images in {load_seconds:.1f}s", flush=True)
    merged = args.fit_on == "train+val"
    fit_set = merge_image_sets(train_set, val_set) if merged else train_set
    if merged:
        print(
            f"fitting on train+val ({len(fit_set)} images) for a fixed {args.epochs} epochs, keeping the last; "
            "val figures are on images the model fits (optimistic)",
            flush=True,
        )

    try:
        model = build_model(args.arch, len(class_names), pretrained=args.pretrained, weights=args.weights or None)
    except WeightsUnavailableError as exc:
        raise InputError(str(exc)) from None
    model.to(device, memory_format=torch.channels_last)
    scaler = torch.amp.GradScaler("cuda") if device.type == "cuda" else None
    epochs = 1 if args.dry_run else args.epochs
    freeze_epochs = min(args.freeze_epochs, epochs)
    max_batches = 1 if args.dry_run else None
    limit = args.test_batch_size if args.dry_run else None
    eval_kw = {
        "image_size": args.image_size,
        "norm": norm,
        "device": device,
        "batch_size": args.test_batch_size,
        "tta": args.tta,
    }

    history: list[dict] = []
    best = {"epoch": 0, "val_acc": -1.0, "val_loss": float("inf"), "state": None}
    t_train = time.perf_counter()
    head = classifier_of(model)
    if freeze_epochs:
        set_backbone_trainable(model, False)
        feature_kw = {"size": args.image_size, "norm": norm, "device": device, "batch_size": args.test_batch_size}
        train_feats = compute_features(model, train_set, limit=limit, **feature_kw)
        val_feats = compute_features(model, val_set, limit=limit, **feature_kw)
        flipped = val_flipped = None
        if args.augment or args.tta:  # the mirrored views, computed once
            val_flipped = compute_features(model, val_set, limit=limit, flip=True, **feature_kw)
        if args.augment:
            flipped = compute_features(model, train_set, limit=limit, flip=True, **feature_kw)
            if merged:
                flipped = torch.cat([flipped, val_flipped])
        train_labels = train_set.labels[: len(train_feats)].to(device)
        val_labels = val_set.labels[: len(val_feats)].to(device)
        fit_feats, fit_labels = train_feats, train_labels
        if merged:
            fit_feats = torch.cat([train_feats, val_feats])
            fit_labels = torch.cat([train_labels, val_labels])
        head_opt = torch.optim.SGD(head.parameters(), lr=args.lr, momentum=args.momentum)
    for epoch in range(1, epochs + 1):
        t_epoch = time.perf_counter()
        print(f"Epoch {epoch}/{epochs}", flush=True)
        if epoch <= freeze_epochs:
            train_loss, train_acc = train_head_one_epoch(
                head, fit_feats, fit_labels, head_opt, args.batch_size, generator, max_batches, flipped
            )
            with torch.no_grad():
                head.eval()
                val_logits = head(val_feats)
                if args.tta:
                    val_logits = flip_average(val_logits, head(val_flipped))
                val_loss = F.cross_entropy(val_logits, val_labels).item()
                val_acc = float((val_logits.argmax(1) == val_labels).float().mean())
        else:
            if epoch == freeze_epochs + 1:
                set_backbone_trainable(model, True)
                optimizer = torch.optim.SGD(
                    [
                        {"params": list(backbone_parameters(model)), "lr": args.lr * BACKBONE_LR_FACTOR},
                        {"params": list(head.parameters()), "lr": args.lr * BACKBONE_LR_FACTOR},
                    ],
                    momentum=args.momentum,
                )
                steps = (epochs - freeze_epochs) * -(-len(fit_set) // args.batch_size)
                scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(steps, 1))
            train_loss, train_acc = train_one_epoch(
                model,
                fit_set,
                optimizer,
                image_size=args.image_size,
                norm=norm,
                device=device,
                batch_size=args.batch_size,
                augment=args.augment,
                generator=generator,
                scaler=scaler,
                scheduler=scheduler,
                max_batches=max_batches,
            )
            val_loss, val_acc = evaluate(model, val_set, limit=limit, **eval_kw)
        print_metrics(train_loss, train_acc, val_loss, val_acc)
        seconds = time.perf_counter() - t_epoch
        history.append(
            {
                "epoch": epoch,
                "train_loss": round(train_loss, 6),
                "train_acc": round(train_acc, 6),
                "val_loss": round(val_loss, 6),
                "val_acc": round(val_acc, 6),
                "seconds": round(seconds, 3),
            }
        )
        better = val_acc > best["val_acc"] or (val_acc == best["val_acc"] and val_loss < best["val_loss"])
        if epoch == epochs if merged else better:  # merged: val is fitted, so it cannot choose an epoch
            best = {
                "epoch": epoch,
                "val_acc": val_acc,
                "val_loss": val_loss,
                "state": {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()},
            }
    train_seconds = time.perf_counter() - t_train
    kept = "last epoch" if merged else "best epoch"
    print(f"{kept} {best['epoch']}: val Acc {best['val_acc']:.4f}", flush=True)

    os.makedirs(args.model_dir, exist_ok=True)
    torch.save(best["state"], os.path.join(args.model_dir, WEIGHTS_FILE))
    images_trained = sum(
        len(fit_set) if max_batches is None else min(len(fit_set), args.batch_size) for _ in range(epochs)
    )
    meta = {
        "format_version": 1,
        "arch": args.arch,
        "num_classes": len(class_names),
        "class_names": class_names,
        "image_size": args.image_size,
        "stored_size": side,
        "tta": args.tta,
        "normalization": norm,
        "hyperparameters": hyperparameters_of(args),
        "history": history,
        "best_epoch": best["epoch"],
        "best_val_acc": best["val_acc"],
        "best_val_loss": best["val_loss"],
        "num_images": {"train": len(train_set), "val": len(val_set), "fitted": len(fit_set)},
        "fit_on": args.fit_on,
        "dataset_hash": combined_hash({"train": train_set.content_hash, "val": val_set.content_hash}),
        "device": str(device),
        "timings": {
            "load_seconds": round(load_seconds, 3),
            "train_seconds": round(train_seconds, 3),
            "total_seconds": round(time.perf_counter() - t_start, 3),
            "train_images_per_second": round(images_trained / train_seconds, 2) if train_seconds else None,
        },
        "library_versions": library_versions(),
    }
    with open(os.path.join(args.model_dir, META_FILE), "w", encoding="utf-8") as fh:
        json.dump(meta, fh, indent=2)
    if args.output_data_dir:
        os.makedirs(args.output_data_dir, exist_ok=True)
        with open(os.path.join(args.output_data_dir, "training_history.json"), "w", encoding="utf-8") as fh:
            json.dump({"history": history, "best_epoch": best["epoch"], "timings": meta["timings"]}, fh, indent=2)
    print(f"saved {WEIGHTS_FILE} and {META_FILE} to {args.model_dir}", flush=True)
    return meta


def hyperparameters_of(args: argparse.Namespace) -> dict:
    """The resolved hyperparameters, keyed by their SageMaker names (flag names without ``--``)."""
    names = (
        "epochs",
        "freeze_epochs",
        "batch_size",
        "test_batch_size",
        "lr",
        "momentum",
        "num_classes",
        "arch",
        "pretrained",
        "weights",
        "augment",
        "image_size",
        "fit_on",
        "tta",
        "seed",
        "workers",
        "dry_run",
        "num_gpus",
    )
    return {name.replace("_", "-"): getattr(args, name) for name in names}


def main(argv: Sequence[str] | None = None) -> int:
    return run_job(run, parse_args, argv)


if __name__ == "__main__":
    sys.exit(main())
