"""One interface for both sides, chosen once per command: the local root (the embedded default) or a
deployed stack (``--bucket``, or ``NYANOPS_BUCKET``, with the standard AWS environment: profile, region,
``AWS_ENDPOINT_URL``). Commands talk to a ``Backend``; only ``nyanops.backends.aws`` imports boto3."""

from __future__ import annotations

import argparse
import os
from typing import Protocol

from nyanops.core.experiments import ExperimentStore
from nyanops.core.ports import ObjectStore

BUCKET_ENV = "NYANOPS_BUCKET"


class Backend(Protocol):
    """Where the pipeline's bucket and records are."""

    kind: str  # "local" | "aws"

    @property
    def store(self) -> ObjectStore: ...

    @property
    def experiments(self) -> ExperimentStore: ...

    def where(self) -> str:
        """For messages: ``local root /path`` or ``s3://bucket``."""
        ...

    def close(self) -> None: ...


def add_aws_arguments(parser: argparse.ArgumentParser) -> None:
    """``--bucket`` / ``--profile`` / ``--region`` for a command that also works on a deployed stack."""
    parser.add_argument(
        "--bucket",
        default=os.environ.get(BUCKET_ENV) or None,
        help=f"act on a deployed stack's bucket instead of the local root (env {BUCKET_ENV})",
    )
    parser.add_argument("--profile", help="AWS profile (with --bucket; default: the standard AWS environment)")
    parser.add_argument("--region", help="AWS region (with --bucket; default: the standard AWS environment)")


def open_backend(args: argparse.Namespace, verbose: bool = False) -> Backend:
    """The side this command acts on: AWS when a bucket is given, else the local root."""
    if getattr(args, "bucket", None):
        from nyanops.backends.aws import AwsBackend

        return AwsBackend(args.bucket, profile=args.profile, region=args.region)
    from nyanops.backends.local import LocalBackend

    return LocalBackend(args.root, verbose=verbose)
