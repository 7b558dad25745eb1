"""``nyanops predict IMAGE|DIR...``: classify photos with an experiment's current best model (or a named
trial's), locally or on a deployed stack (``--bucket``), exactly as its evaluation scored the test photos
(``nyanops.classify``)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from nyanops import classify, model_files
from nyanops.backends import Backend, add_aws_arguments, open_backend
from nyanops.classify import Failure, Photo, Prediction
from nyanops.cli.common import EXIT_BAD_INPUT, EXIT_OK, CliError, add_command, printable
from nyanops.core import trial_choice
from nyanops.core.experiments import TrialRecord

MAX_TOP = 1000  # the most classes a model has (limits.MAX_CLASSES)
PATH_COLUMN = 60
# Shown when PyTorch is missing: which Python lacks it, and the two ways to get one that has it.
TORCH_FIX = (
    "run the ML virtualenv's nyanops (`.venv-ml/bin/nyanops predict ...`; `make demo` creates .venv-ml), "
    "or install them into this Python: pip install {packages}"
)


def need_torch() -> None:
    """A one-line refusal (no traceback) when this Python cannot run ml_code's inference."""
    missing = classify.missing_packages()
    if missing:
        raise CliError(
            f"nyanops predict needs PyTorch to run the model, and this Python ({sys.executable}) lacks "
            f"{', '.join(missing)}: " + TORCH_FIX.format(packages=" ".join(missing))
        )


def chosen_trial(backend: Backend, experiment: str | None, trial: str | None) -> TrialRecord:
    """The named trial, else the best of the named experiment (default: the side's default experiment, or the
    one experiment that has a best trial); refused with what to do when it has no model."""
    try:
        if trial is not None:
            record = trial_choice.find_trial(backend.experiments.list_trials(experiment), trial, experiment)
        else:
            if experiment is None:
                experiment = backend.default_experiment() or trial_choice.experiment_with_a_best(
                    backend.experiments.list_trials(None)
                )
            record = trial_choice.best_trial(backend.experiments.list_trials(experiment), experiment)
        return trial_choice.with_model(record)
    except trial_choice.TrialChoiceError as exc:
        raise CliError(str(exc)) from None


def cmd_predict(args: argparse.Namespace) -> int:
    need_torch()
    items, skipped = classify.collect_photos(args.photos)
    photos = [item for item in items if isinstance(item, Photo)]
    if not photos:
        for item in items:
            if isinstance(item, Failure):
                print(f"nyanops: {printable(item.path)}: {printable(item.error)}", file=sys.stderr)
        raise CliError(f"no photos to classify in {', '.join(printable(a) for a in args.photos)}")
    backend = open_backend(args)
    record = chosen_trial(backend, args.experiment, args.trial)
    store, cache = backend.store, backend.cache_dir()
    t0 = time.perf_counter()
    model = model_files.object_file(store, model_files.model_key(store, record.model_location), cache, "the model")
    if model.downloaded and not args.json:
        print(f"downloaded {record.model_location} ({model.path.stat().st_size / 2**20:.1f} MiB; kept in {cache})")
    code = model_files.code_dir(store, record.code_hash, cache)
    classifier = classify.Classifier.load(code, model.path)
    scored = iter(classifier.classify(photos, args.top))
    results = [next(scored) if isinstance(item, Photo) else item for item in items]
    seconds = time.perf_counter() - t0
    if args.json:
        print(json.dumps(as_json(record, results, backend.primary_metric), indent=2, ensure_ascii=False))
    else:
        print_results(record, results, backend.primary_metric, seconds)
    if skipped:
        shown = ", ".join(printable(p) for p in skipped[:5]) + (" ..." if len(skipped) > 5 else "")
        print(f"skipped {len(skipped)} file(s) in the folders that are not images by name: {shown}", file=sys.stderr)
    failed = [r for r in results if isinstance(r, Failure)]
    if failed:
        print(
            f"nyanops: {len(failed)} of {len(results)} photo(s) could not be classified (above); the others were",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    return EXIT_OK


def describe(record: TrialRecord, metric: str) -> str:
    value = record.metrics.get(metric)
    figure = f"{metric} {value:.4f}" if value is not None else "no metrics"
    role = f"the best of experiment {record.experiment}" if record.is_best else f"experiment {record.experiment}"
    return f"trial {record.trial} ({role}, {figure})"


def print_results(record: TrialRecord, results: list[Prediction | Failure], metric: str, seconds: float) -> None:
    print(printable(f"{describe(record, metric)}, model {record.model_location}"))
    width = min(PATH_COLUMN, max(len(printable(r.path)) for r in results))
    classified = 0
    for r in results:
        path = printable(r.path)
        if isinstance(r, Failure):
            sys.stdout.flush()
            print(f"nyanops: {path}: {printable(r.error)}", file=sys.stderr)
            continue
        classified += 1
        guesses = "  ".join(f"{printable(name)} {p:.4f}" for name, p in r.top)
        print(f"{path:<{width}}  {guesses}")
    sys.stdout.flush()
    print(f"{classified} photo(s) classified in {seconds:.1f} s")


def as_json(record: TrialRecord, results: list[Prediction | Failure], metric: str) -> dict[str, Any]:
    """The machine-readable answer: the trial and one entry per photo (``confidence`` rounded as evaluation.json
    rounds it, so the two compare exactly)."""
    photos: list[dict[str, Any]] = []
    for r in results:
        if isinstance(r, Failure):
            photos.append({"path": r.path, "error": r.error})
        else:
            photos.append(
                {
                    "path": r.path,
                    "predicted": r.predicted,
                    "confidence": round(r.confidence, 6),
                    "top": [{"class": name, "probability": round(p, 6)} for name, p in r.top],
                }
            )
    return {
        "experiment": record.experiment,
        "trial": record.trial,
        "is_best": record.is_best,
        "primary_metric": metric,
        "metrics": record.metrics,
        "model": record.model_location,
        "code": f"code/{record.code_hash}",
        "photos": photos,
    }


def _top(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= value <= MAX_TOP:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_TOP}, got {value}")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    sp = add_command(
        sub,
        "predict",
        cmd_predict,
        "classify photos with an experiment's best model (or a trial's), with the same preprocessing and TTA as "
        "its evaluation (exit status 2 when a photo could not be read; needs the ML virtualenv)",
    )
    sp.add_argument("photos", nargs="+", metavar="IMAGE|DIR", help="photos, or folders searched for photos")
    sp.add_argument(
        "--experiment",
        help="whose best model (default: the default experiment locally; with --bucket the one experiment that "
        "has a best trial)",
    )
    sp.add_argument("--trial", help="use this trial's model instead of the best one")
    sp.add_argument("--top", type=_top, default=1, metavar="K", help="show the K most likely classes (default 1)")
    sp.add_argument("--json", action="store_true", help="machine-readable output")
    add_aws_arguments(sp, state_machine=False)
