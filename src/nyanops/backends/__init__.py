"""One interface for both sides, chosen once per command: the local root (the embedded default) or a
deployed stack (``--bucket``, or ``NYANOPS_BUCKET``, with the standard AWS environment: profile, region,
``AWS_ENDPOINT_URL``). Commands talk to a ``Backend``; only ``nyanops.backends.aws`` imports boto3.

What differs between the sides lives behind these methods; the commands in ``nyanops.cli`` are the same
code for both: upload a manifest and learn what StartPipeline did with it, follow executions to their end,
list executions, show one as the console does (``nyanops.execution_view``), gather the report, plan and
carry out a cleanup.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from nyanops.core.experiments import ExperimentStore, TrialRecord
from nyanops.core.model_registry import ModelRegistry
from nyanops.core.ports import ObjectStore
from nyanops.core.start_pipeline import UploadResult
from nyanops.core.upload_events import Upload

if TYPE_CHECKING:
    from nyanops.execution_view import ExecutionView, StateView
    from nyanops.report import ExperimentReport

BUCKET_ENV = "NYANOPS_BUCKET"
STATE_MACHINE_ENV = "NYANOPS_STATE_MACHINE_ARN"


@dataclass
class ExecutionSummary:
    """One execution as the ``executions`` list shows it."""

    name: str
    status: str  # RUNNING SUCCEEDED FAILED ABORTED TIMED_OUT; locally also PENDING and INTERRUPTED
    experiment: str | None = None
    source_key: str | None = None
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    error: str | None = None
    cause: str | None = None

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.stopped_at:
            return (self.stopped_at - self.started_at).total_seconds()
        return None


@dataclass
class CleanupPlan:
    """What ``nyanops cleanup`` will delete: ``description`` is shown, ``run()`` deletes and says what it did."""

    description: str
    run: Callable[[], str]


class Backend(Protocol):
    """Where the pipeline's bucket, records and executions are."""

    kind: str  # "local" | "aws"

    @property
    def store(self) -> ObjectStore: ...

    @property
    def experiments(self) -> ExperimentStore: ...

    @property
    def model_registry(self) -> ModelRegistry:
        """Each experiment's best models (SageMaker's Model Registry, or the local database's table)."""
        ...

    @property
    def primary_metric(self) -> str: ...

    def where(self) -> str:
        """For messages: ``local root /path`` or ``s3://bucket``."""
        ...

    def close(self) -> None: ...

    # -- runs --------------------------------------------------------------------------------------------
    def upload(self, key: str, body: bytes) -> Upload:
        """Put ``body`` at ``key``; the upload as StartPipeline will see it (with its version)."""
        ...

    def start_pipeline(self, upload: Upload) -> list[UploadResult]:
        """What StartPipeline did with ``upload``: started (with the execution's name) or refused (with
        the problems). Locally it runs the handler now; on AWS it waits for the execution that the upload's
        event starts, or for its refusal record."""
        ...

    def follow(self, names: list[str]) -> int:
        """Follow the named executions to their end, showing progress; 0 if all succeeded, else 1."""
        ...

    def follow_later(self, names: list[str]) -> None:
        """Without ``--wait``: see that the executions run (locally a background worker) and say how to
        follow them."""
        ...

    # -- history -----------------------------------------------------------------------------------------
    def list_executions(self, limit: int) -> list[ExecutionSummary]:
        """Newest first."""
        ...

    def find_execution(self, name_or_prefix: str) -> ExecutionSummary:
        """The execution of that name, or the only one starting with it; CliError otherwise."""
        ...

    def execution_view(self, execution: ExecutionSummary) -> ExecutionView: ...

    def job_progress(self, state: StateView) -> str | None:
        """The last progress or metric line of the job a running state runs (locally from its log, on AWS
        from its describe output), or None."""
        ...

    def execution_command(self) -> str:
        """How to show one execution on this side, for hints (``nyanops execution`` [``--bucket B``])."""
        ...

    # -- review ------------------------------------------------------------------------------------------
    def console_links(self, record: TrialRecord) -> dict[str, str]:
        """URLs of the trial's execution and jobs in the AWS console (none locally)."""
        ...

    def report_data(self, experiment: str | None) -> list[ExperimentReport]: ...

    def report_output(self, given: str | None) -> Path:
        """Where ``report`` writes: the given path (never one of this side's own files) or the default."""
        ...

    def plan_cleanup(self, experiment: str | None, runs: bool) -> CleanupPlan: ...

    # -- using trials (predict, rerun) --------------------------------------------------------------------
    def default_experiment(self) -> str | None:
        """The experiment a command means when none is named (locally the settings' default; on AWS none)."""
        ...

    def cache_dir(self) -> Path:
        """Where downloaded models and unpacked code bundles are kept between commands."""
        ...


def add_aws_arguments(parser: argparse.ArgumentParser, state_machine: bool = True) -> None:
    """``--bucket`` / ``--profile`` / ``--region`` (and ``--state-machine-arn`` unless the command needs no
    state machine) for a command that also works on a deployed stack."""
    group = parser.add_argument_group("a deployed stack (instead of the local root)")
    group.add_argument(
        "--bucket",
        default=os.environ.get(BUCKET_ENV) or None,
        help=f"act on a deployed stack's bucket instead of the local root (env {BUCKET_ENV})",
    )
    group.add_argument("--profile", help="AWS profile (with --bucket; default: the standard AWS environment)")
    group.add_argument("--region", help="AWS region (with --bucket; default: the standard AWS environment)")
    if not state_machine:
        return
    group.add_argument(
        "--state-machine-arn",
        default=os.environ.get(STATE_MACHINE_ENV) or None,
        help="the stack's state machine (with --bucket; default: the StateMachineArn output of the stack that "
        f"created the bucket, found from the bucket's aws:cloudformation:stack-name tag; env {STATE_MACHINE_ENV})",
    )


def open_backend(args: argparse.Namespace, verbose: bool = False) -> Backend:
    """The side this command acts on: AWS when a bucket is given, else the local root."""
    if getattr(args, "bucket", None):
        from nyanops.backends.aws import AwsBackend

        return AwsBackend(
            args.bucket,
            profile=args.profile,
            region=args.region,
            state_machine_arn=getattr(args, "state_machine_arn", None),
        )
    from nyanops.backends.local import LocalBackend

    return LocalBackend(Path(args.root), verbose=verbose)
