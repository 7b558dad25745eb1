"""The AWS side: one boto3 session per command (profile, region and ``AWS_ENDPOINT_URL`` from the
standard AWS environment), its clients created once, wrapped in the adapters of ``nyanops.aws``.

The state machine is the stack's ``StateMachineArn`` output: ``--state-machine-arn`` (or
``NYANOPS_STATE_MACHINE_ARN``) names it, else it is found from the bucket: CloudFormation tags the
resources it creates with ``aws:cloudformation:stack-name`` (AWS CloudFormation User Guide, "Resource
tag"), so GetBucketTagging gives the stack and DescribeStacks its outputs.

A manifest uploaded here is picked up by the stack itself (EventBridge -> StartPipeline). The execution it
starts is named from the bucket, the key and the version id PutObject returned, exactly as StartPipeline
names it (``nyanops.core.execution_input.upload_execution_name``), so the CLI knows what to wait for: that
execution, or a refusal record ``rejected/<key>.error.json`` for this version of the upload.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any, TextIO

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from nyanops import report_data
from nyanops.aws.model_registry import SageMakerModelRegistry
from nyanops.aws.s3_store import S3ObjectStore
from nyanops.aws.sagemaker_experiments import SageMakerExperimentStore
from nyanops.aws.step_functions import execution_arn
from nyanops.backends import CleanupPlan, ExecutionSummary
from nyanops.core import console, layout, naming
from nyanops.core.execution_input import upload_execution_name
from nyanops.core.experiments import TrialRecord
from nyanops.core.ports import ObjectNotFound
from nyanops.core.rejection import Problem
from nyanops.core.start_pipeline import Outcome, UploadResult
from nyanops.core.upload_events import Upload
from nyanops.errors import EXIT_OK, EXIT_RUN_FAILED, CliError
from nyanops.execution_view import (
    ACTIVE_EXECUTION,
    CAUGHT,
    RUNNING,
    SUCCEEDED,
    ExecutionView,
    StateView,
    build_view,
    clock,
    json_value,
    readable_cause,
)
from nyanops.report import ExperimentReport
from nyanops.sample_photos import default_cache_dir
from nyanops.terminal import printable

STACK_TAG = "aws:cloudformation:stack-name"
STATE_MACHINE_OUTPUT = "StateMachineArn"
DEFAULT_REPORT = "nyanops-report.html"
# GetExecutionHistory returns at most 1,000 events per page (Step Functions API reference).
HISTORY_PAGE = 1000
FIND_LIMIT = 2000  # executions searched for a name prefix


class AwsBackend:
    kind = "aws"
    # How often a followed execution is polled, and how long an upload may take to start one (EventBridge
    # delivers within seconds; the rule's retries and the Lambda's own retries can take a few minutes).
    poll_seconds = 5.0
    start_timeout_seconds = 300.0

    def __init__(
        self,
        bucket: str,
        profile: str | None = None,
        region: str | None = None,
        state_machine_arn: str | None = None,
        out: TextIO | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bucket = bucket
        try:
            self.session = boto3.Session(profile_name=profile, region_name=region)
        except BotoCoreError as exc:  # an unknown profile, for one
            raise CliError(f"cannot use the AWS configuration: {exc}") from None
        self._clients: dict[str, Any] = {}
        self._state_machine_arn = state_machine_arn
        self._definitions: dict[str, dict[str, Any]] = {}
        self.out = out or sys.stdout
        self._sleep, self._clock = sleep, clock

    def client(self, service: str) -> Any:
        """One client per service for the whole command (standard retry mode: throttling is retried)."""
        if service not in self._clients:
            if not self.session.region_name:
                raise CliError("no AWS region: pass --region, or set AWS_REGION or a region in your profile")
            config = Config(retries={"mode": "standard", "max_attempts": 8})
            self._clients[service] = self.session.client(service, config=config)
        return self._clients[service]

    @cached_property
    def store(self) -> S3ObjectStore:
        return S3ObjectStore(self.client("s3"), self.bucket)

    @cached_property
    def experiments(self) -> SageMakerExperimentStore:
        # Reading needs no lock; writing trials is RecordResults' job, never the CLI's.
        return SageMakerExperimentStore(self.client("sagemaker"), lock=None)

    @cached_property
    def model_registry(self) -> SageMakerModelRegistry:
        # Reading only: registering is RecordResults' job, never the CLI's (so no image is needed).
        return SageMakerModelRegistry(self.client("sagemaker"))

    @property
    def primary_metric(self) -> str:
        return "macro_f1"

    @property
    def region(self) -> str:
        return str(self.client("s3").meta.region_name)

    def where(self) -> str:
        return f"s3://{self.bucket}"

    def close(self) -> None:
        self._clients.clear()

    def _print(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    # -- the state machine ---------------------------------------------------------------------------------
    def state_machine_arn(self) -> str:
        if self._state_machine_arn is None:
            self._state_machine_arn = self._discover_state_machine()
        return self._state_machine_arn

    def _discover_state_machine(self) -> str:
        fix = "pass --state-machine-arn (the stack's StateMachineArn output) or set NYANOPS_STATE_MACHINE_ARN"
        try:
            tags = self.client("s3").get_bucket_tagging(Bucket=self.bucket).get("TagSet", [])
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            tags = []
            if code == "NoSuchTagSet":  # a bucket without any tag
                pass
            elif code in ("NoSuchBucket", "404"):
                raise CliError(f"bucket {self.bucket} does not exist (or is not yours): check --bucket") from None
            else:
                raise CliError(
                    f"cannot find the stack of bucket {self.bucket} (GetBucketTagging: {code}): {fix}"
                ) from None
        stack = next((t["Value"] for t in tags if t.get("Key") == STACK_TAG), None)
        if not stack:
            raise CliError(f"bucket {self.bucket} has no {STACK_TAG} tag (not created by a stack?): {fix}")
        try:
            stacks = self.client("cloudformation").describe_stacks(StackName=stack)["Stacks"]
        except ClientError as exc:
            raise CliError(f"cannot read stack {stack} of bucket {self.bucket}: {exc}; {fix}") from None
        outputs = {o.get("OutputKey"): o.get("OutputValue") for s in stacks for o in s.get("Outputs", [])}
        arn = outputs.get(STATE_MACHINE_OUTPUT)
        if not arn:
            raise CliError(f"stack {stack} has no {STATE_MACHINE_OUTPUT} output: {fix}")
        return str(arn)

    def execution_arn(self, name: str) -> str:
        return execution_arn(self.state_machine_arn(), name)

    def _definition(self, arn: str) -> dict[str, Any]:
        """The definition the execution ran (DescribeStateMachineForExecution: the version it started with)."""
        if arn not in self._definitions:
            described = self.client("stepfunctions").describe_state_machine_for_execution(executionArn=arn)
            self._definitions[arn] = json.loads(described["definition"])
        return self._definitions[arn]

    def _describe(self, name: str) -> dict[str, Any] | None:
        try:
            return self.client("stepfunctions").describe_execution(executionArn=self.execution_arn(name))
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ExecutionDoesNotExist":
                return None
            raise

    def _history(self, arn: str) -> list[dict[str, Any]]:
        sfn = self.client("stepfunctions")
        events: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"executionArn": arn, "maxResults": HISTORY_PAGE}
        while True:
            page = sfn.get_execution_history(**kwargs)
            events += page.get("events", [])
            if not page.get("nextToken"):
                return events
            kwargs["nextToken"] = page["nextToken"]

    # -- runs ----------------------------------------------------------------------------------------------
    def upload(self, key: str, body: bytes) -> Upload:
        r = self.client("s3").put_object(Bucket=self.bucket, Key=key, Body=body, ContentType="application/json")
        return Upload(self.bucket, key, r.get("VersionId"), str(r.get("ETag", "")).strip('"') or None, len(body))

    def start_pipeline(self, upload: Upload) -> list[UploadResult]:
        classified = layout.classify_key(upload.key)
        kind = "dataset" if classified.kind is layout.KeyKind.DATASET_READY else "manifest"
        name = upload_execution_name(upload, kind, classified.dataset_id)
        self._print(f"waiting for the stack to start execution {name} (EventBridge -> StartPipeline) ...")
        deadline = self._clock() + self.start_timeout_seconds
        while True:
            if self._describe(name) is not None:
                return [UploadResult(Outcome.STARTED, upload.key, execution_name=name)]
            refused = self._refusal(upload)
            if refused is not None:
                return [refused]
            if self._clock() > deadline:
                raise CliError(
                    f"no execution {name} and no refusal for {upload.key} after {self.start_timeout_seconds:.0f} s: "
                    "check that the stack's upload rule is enabled and StartPipeline's log and dead-letter queue "
                    "(the stack outputs name them)",
                    code=EXIT_RUN_FAILED,
                )
            self._sleep(self.poll_seconds)

    def _refusal(self, upload: Upload) -> UploadResult | None:
        try:
            record = json.loads(self.store.get(layout.rejection_key(upload.key)))
        except (ObjectNotFound, ValueError):
            return None
        if not isinstance(record, dict) or record.get("version") != upload.version:
            return None  # an older upload's refusal
        problems = [
            Problem(str(p.get("field", "")), str(p.get("problem", "")), str(p.get("fix", "")))
            for p in record.get("problems") or []
            if isinstance(p, dict)
        ]
        return UploadResult(Outcome.REJECTED, upload.key, problems=problems, reason=str(record.get("message", "")))

    def follow(self, names: list[str]) -> int:
        return max([EXIT_OK, *(self._follow_one(name) for name in names)])

    def _follow_one(self, name: str) -> int:
        arn = self.execution_arn(name)
        self._print(f"execution {name}: {console.execution_url(self.region, arn)}")
        seen: dict[str, tuple[str, int, int]] = {}
        last_progress: dict[str, str] = {}
        while True:
            described = self._describe(name)
            if described is None:
                raise CliError(f"execution {name} does not exist in {self.state_machine_arn()}")
            view = self._view(described)
            for state in view.states:
                self._print_transition(state, seen)
            running = view.running
            if running is not None and running.job is not None:
                line = self.job_progress(running)
                if line and last_progress.get(running.name) != line:
                    last_progress[running.name] = line
                    self._print(f"    {printable(running.name)}| {printable(line)}")
            if described["status"] not in ACTIVE_EXECUTION:
                return self._finish(view)
            self._sleep(self.poll_seconds)

    def _print_transition(self, state: StateView, seen: dict[str, tuple[str, int, int]]) -> None:
        key = (state.status, state.entries, len(state.failed_attempts))
        before = seen.get(state.name)
        if before == key or not state.ran:
            return
        seen[state.name] = key
        name = printable(state.name)
        if before is not None and len(state.failed_attempts) > before[2] and state.failed_attempts:
            error, _ = state.failed_attempts[-1]
            self._print(f"  {name:<14} {printable(error)}; retry {len(state.failed_attempts)}")
        # A state first seen already finished (it ran between two polls) still gets its "..." line, so the
        # output says the same whatever the polling interval caught.
        if before is None or (state.status == RUNNING and before[0] != RUNNING):
            self._print(f"  {name} ...")
        if state.status == SUCCEEDED:
            self._print(f"  {name:<14} done in {clock(state.seconds())}")
        elif state.status == CAUGHT:
            error, target = printable(state.error or ""), printable(state.next_state or "")
            self._print(f"  {name:<14} failed with {error} -> {target}")
        elif state.status != RUNNING:
            self._print(f"  {name:<14} {state.status}: {printable(state.error or '')}")

    def _finish(self, view: ExecutionView) -> int:
        output = view.output if isinstance(view.output, dict) else {}
        summary = output.get("summary")  # the comparison of the run's trials (its notification)
        if view.status == "SUCCEEDED":
            self._print("  SUCCEEDED")
            if isinstance(summary, dict) and summary.get("message"):
                self._print(printable("\n".join("    " + line for line in str(summary["message"]).splitlines()),
                                      keep_newlines=True))
            return EXIT_OK
        failed = view.failed_state
        where = f" in {failed.name}" if failed else ""
        cause = readable_cause(failed.cause if failed else view.cause) or readable_cause(view.cause)
        self._print(printable(f"  {view.status}{where}: {(failed.error if failed else view.error) or ''}"))
        if cause:
            self._print(printable("\n".join("    " + line for line in cause.splitlines()), keep_newlines=True))
        return EXIT_RUN_FAILED

    def follow_later(self, names: list[str]) -> None:
        for name in names:
            self._print(f"running on AWS: {console.execution_url(self.region, self.execution_arn(name))}")
            self._print(f"  follow with `nyanops execution {name} --bucket {self.bucket}`")

    # -- history -------------------------------------------------------------------------------------------
    def _summary(self, described: dict[str, Any]) -> ExecutionSummary:
        run = json_value(described.get("input"))
        run = run if isinstance(run, dict) else {}
        return ExecutionSummary(
            name=described["name"],
            status=described["status"],
            experiment=run.get("experiment"),
            source_key=(run.get("source") or {}).get("key"),
            started_at=described.get("startDate"),
            stopped_at=described.get("stopDate"),
            error=described.get("error"),
            cause=described.get("cause"),
        )

    def _list(self, limit: int) -> list[dict[str, Any]]:
        sfn = self.client("stepfunctions")
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"stateMachineArn": self.state_machine_arn(), "maxResults": min(limit, 1000)}
        while len(items) < limit:
            page = sfn.list_executions(**kwargs)
            items += page.get("executions", [])
            if not page.get("nextToken"):
                break
            kwargs["nextToken"] = page["nextToken"]
        return items[:limit]

    def list_executions(self, limit: int) -> list[ExecutionSummary]:
        sfn = self.client("stepfunctions")
        # ListExecutions has no input, error or cause: one DescribeExecution each (newest first, as listed).
        return [self._summary(sfn.describe_execution(executionArn=e["executionArn"])) for e in self._list(limit)]

    def find_execution(self, name_or_prefix: str) -> ExecutionSummary:
        if naming_ok(name_or_prefix):
            described = self._describe(name_or_prefix)
            if described is not None:
                return self._summary(described)
        matches = [e for e in self._list(FIND_LIMIT) if e["name"].startswith(name_or_prefix)]
        if not matches:
            raise CliError(
                f"no execution named {name_or_prefix!r} in {self.state_machine_arn()}; "
                f"`nyanops executions --bucket {self.bucket}` lists them"
            )
        if len(matches) > 1:
            names = ", ".join(e["name"] for e in matches[:10])
            raise CliError(f"{name_or_prefix!r} matches {len(matches)} executions ({names}); give more of the name")
        described = self.client("stepfunctions").describe_execution(executionArn=matches[0]["executionArn"])
        return self._summary(described)

    def _view(self, described: dict[str, Any]) -> ExecutionView:
        arn = described["executionArn"]
        return build_view(
            self._definition(arn),
            self._history(arn),
            name=described["name"],
            status=described["status"],
            started_at=described.get("startDate"),
            stopped_at=described.get("stopDate"),
            input=described.get("input"),
            output=described.get("output"),
            error=described.get("error"),
            cause=described.get("cause"),
        )

    def execution_view(self, execution: ExecutionSummary) -> ExecutionView:
        described = self._describe(execution.name)
        if described is None:
            raise CliError(f"execution {execution.name} does not exist in {self.state_machine_arn()}")
        return self._view(described)

    def job_progress(self, state: StateView) -> str | None:
        job = state.job
        if job is None:
            return None
        sm = self.client("sagemaker")
        try:
            if job.kind == "training":
                d = sm.describe_training_job(TrainingJobName=job.name)
                transitions = d.get("SecondaryStatusTransitions") or []
                message = transitions[-1].get("StatusMessage", "") if transitions else ""
                metrics = ", ".join(
                    f"{m['MetricName']} {m['Value']:.4g}" for m in d.get("FinalMetricDataList") or [] if "Value" in m
                )
                parts = [str(d.get("SecondaryStatus") or d.get("TrainingJobStatus") or ""), message, metrics]
            else:
                d = sm.describe_processing_job(ProcessingJobName=job.name)
                parts = [str(d.get("ProcessingJobStatus") or ""), str(d.get("ExitMessage") or "")]
        except ClientError:
            return None  # not created yet (the state was just entered), or no permission to describe it
        return " | ".join(p for p in parts if p) or None

    def execution_command(self) -> str:
        return f"nyanops execution --bucket {self.bucket}"

    # -- review --------------------------------------------------------------------------------------------
    @cached_property
    def _links_available(self) -> bool:
        try:
            self.state_machine_arn()
        except CliError as exc:
            self._print(f"note: no console links ({exc})")
            return False
        return True

    def console_links(self, record: TrialRecord) -> dict[str, str]:
        if not self._links_available:
            return {}
        region, execution = self.region, record.trial  # a trial is named after its execution
        return {
            "execution_url": console.execution_url(region, self.execution_arn(execution)),
            "training_job_url": console.training_job_url(region, naming.training_job_name(execution)),
            "processing_job_url": console.processing_job_url(region, naming.processing_job_name(execution)),
        }

    def report_data(self, experiment: str | None) -> list[ExperimentReport]:
        try:
            self.state_machine_arn()
            views: Callable[[str], ExecutionView | None] | None = self._view_or_none
        except CliError as exc:
            self._print(f"note: the report has no execution timelines ({exc})")
            views = None
        experiments = report_data.gather_aws(
            self.experiments, self.store, experiment, views=views, links=self.console_links if views else None
        )
        if not experiments:
            raise CliError(f"no trials{f' in experiment {experiment}' if experiment else ''} in SageMaker Experiments")
        return experiments

    def _view_or_none(self, name: str) -> ExecutionView | None:
        described = self._describe(name)
        return None if described is None else self._view(described)

    def report_output(self, given: str | None) -> Path:
        return Path(given or DEFAULT_REPORT)

    def plan_cleanup(self, experiment: str | None, runs: bool) -> CleanupPlan:
        from nyanops.aws.experiment_cleanup import ExperimentCleaner, ExperimentNotFound

        if runs:
            raise CliError(
                "--runs applies to the local root only: the stack's bucket keeps run outputs (nothing uploaded or "
                "produced is deleted by nyanops on AWS)"
            )
        if not experiment:
            raise CliError(f"name the experiment to delete: nyanops cleanup NAME --bucket {self.bucket}")
        cleaner = ExperimentCleaner(self.client("sagemaker"), log=self._print)
        try:
            plan = cleaner.plan(experiment)
        except ExperimentNotFound:
            raise CliError(f"no SageMaker experiment named {experiment!r} in this account and region") from None
        description = (
            f"SageMaker Experiments: this will be deleted\n{printable(plan.describe(), keep_newlines=True)}\n"
            f"(the bucket {self.where()} and its run outputs are not touched)"
        )

        def run() -> str:
            result = cleaner.delete(plan)
            text = (
                f"deleted {len(result.deleted_components)} trial components, {len(result.deleted_trials)} trials"
                f"{' and the experiment' if result.deleted_experiment else ''}"
            )
            if result.kept_components:
                text += f"\nkept {len(result.kept_components)} components still used by other trials"
            return text

        return CleanupPlan(description, run)

    # -- using trials (predict, rerun) ---------------------------------------------------------------------
    def default_experiment(self) -> str | None:
        return None  # the stack's default experiment is a template parameter the CLI does not read

    def cache_dir(self) -> Path:
        return default_cache_dir() / "predict"  # NYANOPS_CACHE_DIR, else the user's cache folder


def naming_ok(name: str) -> bool:
    """Whether ``name`` can be an execution name at all (else only a prefix search makes sense)."""
    return 0 < len(name) <= naming.EXECUTION_NAME_MAX and not any(c in name for c in ' <>{}[]?*"#%\\^|~`$&,;:/')

