"""``nyanops demo``: the whole pipeline on this machine on the sample cats, two trials compared."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from nyanops.backends.local import LocalBackend
from nyanops.cli.code import push_code
from nyanops.cli.common import CliError, add_command, follow, report_upload
from nyanops.cli.datasets import print_added
from nyanops.cli.review import print_table, write_report
from nyanops.cli.runs import put_manifest
from nyanops.core import layout
from nyanops.core.rejection import UploadRejected
from nyanops.local.datasets import add_dataset
from nyanops.sample_photos import SAMPLE_DATA_ENV, SamplePhotosUnavailable, find_or_fetch_sample_photos


def find_sample_data(given: str | None, project: Path | None, cache_dir: str | None = None) -> Path:
    try:
        return find_or_fetch_sample_photos(given, project, cache_dir=Path(cache_dir) if cache_dir else None)
    except SamplePhotosUnavailable as exc:
        raise CliError(str(exc)) from None


def cmd_demo(args: argparse.Namespace) -> int:
    backend = LocalBackend(args.root, verbose=args.verbose)
    pipeline = backend.pipeline
    data = find_sample_data(args.data, pipeline.project, args.cache_dir)
    print(f"== nyanops demo: the whole pipeline on this machine (root {args.root}) ==")
    print(f"1/3 adding the sample photos from {data} as a new dataset (its arrival starts the first run)")
    push_code(backend)
    try:
        dataset_id, marker = add_dataset(pipeline.store, data)
    except UploadRejected as rejected:
        raise CliError(f"the sample data was refused: {rejected.message}") from None
    print_added(dataset_id, marker)
    first = report_upload(pipeline.fire(layout.dataset_marker_key(dataset_id)))
    code = follow(pipeline, first)
    print("2/3 a second manifest that differs in one hyperparameter (a smaller backbone)")
    manifest = {
        "experiment": pipeline.settings.default_experiment,
        "dataset": f"datasets/{dataset_id}",
        "comment": "demo: the smaller EfficientNet-Lite0 backbone",
        "hyperparameters": {"arch": "efficientnet_lite0"},
    }
    path = pipeline.root / "demo-lite0.json"
    path.write_text(json.dumps(manifest, indent=2))
    key = put_manifest(backend, path)
    code = max(code, follow(pipeline, report_upload(pipeline.fire(key))))
    print("3/3 comparison")
    print_table(backend, pipeline.settings.default_experiment, "f1", False)
    report_path = write_report(backend, pipeline.settings.default_experiment, pipeline.root / "report.html")
    print(f"report (confusion matrices, learning curves, misclassified photos): {report_path}")
    return code


def register(sub: argparse._SubParsersAction) -> None:
    sp = add_command(sub, "demo", cmd_demo, "run the whole pipeline locally on the sample cats and compare two trials")
    sp.add_argument(
        "--data",
        help=f"ImageFolder with train/val/test (env {SAMPLE_DATA_ENV}; default ../shared/datasets/cats-dev, else "
        "the public Oxford-IIIT Pet cat photos, downloaded once and built into a sample in the cache)",
    )
    sp.add_argument(
        "--cache-dir",
        help="where that download and sample go (env NYANOPS_CACHE_DIR; default $XDG_CACHE_HOME/nyanops, else "
        "~/.cache/nyanops)",
    )
    sp.add_argument("-v", "--verbose", action="store_true", help="show every line the jobs print")
