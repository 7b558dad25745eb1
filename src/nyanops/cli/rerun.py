"""``nyanops rerun TRIAL``: train a recorded trial again from exactly its inputs (dataset, code bundle,
resolved hyperparameters with the seed, ``force``), wait for it, and show how every metric compares
(``nyanops.core.rerun``). Locally the run executes here; with ``--bucket`` the manifest goes to the stack's
``manifests/`` and the execution it starts is followed, as ``nyanops run --wait`` does."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from nyanops.backends import Backend, add_aws_arguments, open_backend
from nyanops.cli.common import EXIT_BAD_INPUT, EXIT_RUN_FAILED, CliError, add_command, printable, report_upload
from nyanops.cli.runs import manifest_key_for
from nyanops.core import layout, rerun, trial_choice
from nyanops.core.experiments import TrialRecord
from nyanops.core.manifest import validate_manifest
from nyanops.core.ports import ObjectNotFound
from nyanops.core.rejection import UploadRejected
from nyanops.core.start_pipeline import Outcome, check_dataset


def original_trial(backend: Backend, trial: str, experiment: str | None) -> TrialRecord:
    try:
        found = trial_choice.find_trial(backend.experiments.list_trials(experiment), trial, experiment)
        return trial_choice.completed(found)
    except trial_choice.TrialChoiceError as exc:
        raise CliError(str(exc)) from None


def check_inputs(backend: Backend, record: TrialRecord) -> dict[str, Any]:
    """The rerun's manifest, once its dataset (the same content) and code bundle are known to be there."""
    try:
        manifest = rerun.rerun_manifest(record)
    except rerun.NotRerunnable as exc:
        raise CliError(f"cannot rerun: {exc}") from None
    where = backend.where()
    try:
        dataset = check_dataset(backend.store, record.dataset_id)
    except UploadRejected as exc:
        problem = exc.problems[0].problem if exc.problems else str(exc)
        raise CliError(f"cannot rerun {record.trial}: its dataset is not usable in {where}: {problem}") from None
    if dataset.content_hash != record.dataset_hash:
        raise CliError(
            f"cannot rerun {record.trial}: datasets/{record.dataset_id} in {where} has other content (hash "
            f"{dataset.content_hash[:12]}) than the trial trained on ({record.dataset_hash[:12]})"
        )
    if backend.store.head(layout.code_bundle_key(record.code_hash)) is None:
        raise CliError(
            f"cannot rerun {record.trial}: its code bundle code/{record.code_hash} is gone from {where}; "
            "a rerun runs exactly the code the trial ran"
        )
    try:
        validate_manifest(manifest)
    except UploadRejected as exc:
        problems = "; ".join(f"{p.field}: {p.problem}" for p in exc.problems)
        raise CliError(
            f"cannot rerun {record.trial}: its recorded inputs are not a valid manifest today ({problems})"
        ) from None
    return manifest


def the_rerun(backend: Backend, original: TrialRecord, execution: str, key: str) -> TrialRecord | None:
    """The trial the rerun's execution recorded (named after the execution, or after it with a suffix)."""
    trials = backend.experiments.list_trials(original.experiment)
    named = [t for t in trials if t.trial == execution] or [t for t in trials if t.trial.startswith(execution)]
    if named:
        return named[0]
    by_key = [t for t in trials if t.source_key == key and t.trial != original.trial and t.started_at]
    return max(by_key, key=lambda t: t.started_at) if by_key else None  # type: ignore[arg-type,return-value]


def cmd_rerun(args: argparse.Namespace) -> int:
    backend = open_backend(args, verbose=args.verbose)
    original = original_trial(backend, args.trial, args.experiment)
    manifest = check_inputs(backend, original)
    body = (json.dumps(manifest, indent=2) + "\n").encode("utf-8")
    path = Path(rerun.rerun_manifest_name(original.trial) + layout.MANIFEST_SUFFIX)
    upload = backend.upload(manifest_key_for(backend.store, path, body), body)
    seed = manifest["hyperparameters"].get("seed", "the code's default")
    print(printable(f"uploaded {upload.key} to {backend.where()}: trial {original.trial}'s dataset, code and "
                    f"hyperparameters (seed {seed}), force"))
    results = backend.start_pipeline(upload)
    names = report_upload(results)
    if any(r.outcome is Outcome.REJECTED for r in results) or not names:
        return EXIT_BAD_INPUT
    code = backend.follow(names)
    rerun_record = the_rerun(backend, original, names[0], upload.key)
    if rerun_record is None or rerun_record.status != "Completed":
        status = rerun_record.status if rerun_record else "not recorded"
        print(f"nyanops: the rerun did not complete ({status}); nothing to compare", file=sys.stderr)
        return max(code, EXIT_RUN_FAILED)
    print_comparison(backend, original, rerun_record)
    return code


def print_comparison(backend: Backend, original: TrialRecord, again: TrialRecord) -> None:
    differences = rerun.metric_differences(original, again)
    print(f"original: {original.trial}")
    print(f"rerun:    {again.trial}")
    width = max(len("metric"), *(len(d.name) for d in differences))
    print(f"{'metric':<{width}}  {'original':>10}  {'rerun':>10}  {'difference':>11}")
    for d in differences:
        cells = [_figure(d.original), _figure(d.rerun), _figure(d.difference, signed=True)]
        print(f"{printable(d.name):<{width}}  {cells[0]:>10}  {cells[1]:>10}  {cells[2]:>11}")
    if rerun.identical(differences):
        print("bit-identical: yes, every metric is the same number")
    else:
        changed = [d.name for d in differences if d.original != d.rerun]
        print(f"bit-identical: no ({', '.join(changed)} differ)")
    agreement = _predictions(backend, original, again)
    if agreement is not None:
        print(agreement)


def _figure(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.6f}" if signed else f"{value:.6f}"


def _predictions(backend: Backend, original: TrialRecord, again: TrialRecord) -> str | None:
    """How the two evaluations' per-photo predictions agree (when both evaluation.json list them)."""
    lists = []
    for record in (original, again):
        try:
            _, key = layout.parse_s3_uri(record.evaluation_location)
            doc = json.loads(backend.store.get(key))
        except (ValueError, ObjectNotFound):
            return None
        if not isinstance(doc, dict) or not isinstance(doc.get("predictions"), list):
            return f"predictions: not compared ({record.trial}'s evaluation.json does not list them)"
        lists.append(doc["predictions"])
    a = rerun.compare_predictions(lists[0], lists[1])
    return (
        f"predictions: {a.same_class} of {a.photos} photos the same class, largest confidence difference "
        f"{a.largest_confidence_difference:.6f}" + (f", {a.only_in_one} photos in only one" if a.only_in_one else "")
    )


def register(sub: argparse._SubParsersAction) -> None:
    sp = add_command(
        sub,
        "rerun",
        cmd_rerun,
        "train a completed trial again from exactly its recorded dataset, code and hyperparameters (seed "
        "included), wait, and show every metric of both and the difference (exit status as `run --wait`)",
    )
    sp.add_argument("trial", help="the trial to rerun (`nyanops experiments` lists them)")
    sp.add_argument("--experiment", help="the trial's experiment (default: search every experiment)")
    sp.add_argument("-v", "--verbose", action="store_true", help="local: show every line the jobs print")
    add_aws_arguments(sp)
