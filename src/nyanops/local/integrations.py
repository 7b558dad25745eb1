"""Local service integrations behind the ASL executor.

- ``sagemaker:createTrainingJob.sync``: the real CreateTrainingJob request the state machine built
  (checked with botocore's own parameter validation) runs the code bundle's ``train.py`` as a
  subprocess under the SageMaker training contract (``SM_*`` variables, channels mapped to local
  directories, hyperparameters as ``--name value``, ``CheckpointConfig.S3Uri`` mapped to its bucket
  folder and passed as ``SM_CHECKPOINT_DIR``), enforces ``StoppingCondition``, applies the
  ``MetricDefinitions`` regexes to its output, writes ``model.tar.gz`` where ``OutputDataConfig``
  asks, and returns a DescribeTrainingJob-shaped result.
- ``sagemaker:createProcessingJob.sync``: likewise for ``evaluation.py``; the container paths of the
  inputs/outputs are mapped to local directories and passed as ``--<input>-dir`` / ``--output-dir``;
  what the script writes to /opt/ml/output/message (``SM_OUTPUT_DIR``) comes back as ``ExitMessage``.
- ``lambda:invoke``: the real handler module, in-process, with a Lambda context.
- ``sns:publish``: the message goes to the console / log.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from nyanops.core import layout
from nyanops.core.ports import ProcessingJob
from nyanops.local.asl import TaskContext, TaskFailed
from nyanops.local.bucket import LocalObjectStore

ACCOUNT = "000000000000"
REGION = "local"
TRAINING_SYNC = "arn:aws:states:::sagemaker:createTrainingJob.sync"
PROCESSING_SYNC = "arn:aws:states:::sagemaker:createProcessingJob.sync"
LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
SNS_PUBLISH = "arn:aws:states:::sns:publish"
PROCESSING_ROOT = "/opt/ml/processing/"
OUTPUT_TAIL_LINES = 30
# What DescribeProcessingJob's FailureReason says when the container exits non-zero; the script's own
# one-line reason travels in ExitMessage (/opt/ml/output/message).
PROCESSING_FAILURE_REASON = "AlgorithmError: See job logs for more information"


def function_arn(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


def topic_arn(name: str) -> str:
    return f"arn:aws:sns:{REGION}:{ACCOUNT}:{name}"


def _now() -> datetime:
    return datetime.now(timezone.utc)


@cache
def _sagemaker_model() -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model("sagemaker")


def validate_request(operation: str, params: dict[str, Any]) -> None:
    """Refuse a request SageMaker would refuse for its shape, as ``SageMaker.ValidationException``."""
    from botocore.validate import ParamValidator

    shape = _sagemaker_model().operation_model(operation).input_shape
    report = ParamValidator().validate(params, shape)
    if report.has_errors():
        raise TaskFailed("SageMaker.ValidationException", f"{operation}: {report.generate_report()}")


@dataclass
class JobOutput:
    """What a job printed: kept to a log file, the tail kept for error messages, progress fed live."""

    log_path: Path
    on_line: Callable[[str], None] | None = None
    tail: list[str] = field(default_factory=list)

    def feed(self, line: str) -> None:
        self.tail.append(line)
        del self.tail[:-OUTPUT_TAIL_LINES]
        if self.on_line:
            self.on_line(line)


class JobStopped(Exception):
    pass


class JobCancelled(Exception):
    """The job was stopped because its Task was cancelled (a sibling Map iteration failed, or Ctrl-C)."""


def run_job_process(
    cmd: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    max_seconds: int | None,
    output: JobOutput,
    cancelled: threading.Event | None = None,
) -> int:
    """Run a job's process in its own process group, streaming its output; enforce the time limit.

    On KeyboardInterrupt, the limit, or ``cancelled`` being set (from another thread: the job may run in a
    Map iteration's thread, which never sees Ctrl-C) the whole process group is stopped, so no training
    survives its run. Returns the exit code; raises ``JobStopped`` when the limit was hit and
    ``JobCancelled`` when it was cancelled.
    """
    output.log_path.parent.mkdir(parents=True, exist_ok=True)
    stopped = threading.Event()
    finished = threading.Event()
    _prctl()  # resolved here, so the forked child only calls it (see _die_with_parent)
    with open(output.log_path, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )

        def stop() -> None:
            stopped.set()
            _kill_group(proc)

        timer = threading.Timer(max_seconds, stop) if max_seconds else None
        if timer:
            timer.daemon = True
            timer.start()
        if cancelled is not None:

            def watch() -> None:
                while not finished.is_set():
                    if cancelled.wait(0.2):
                        _kill_group(proc)
                        return

            threading.Thread(target=watch, name="job-cancel-watch", daemon=True).start()
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                log.write(line)
                log.flush()
                output.feed(line.rstrip("\n"))
            code = proc.wait()
        except BaseException:
            _kill_group(proc)
            raise
        finally:
            finished.set()
            if timer:
                timer.cancel()
    if cancelled is not None and cancelled.is_set():
        raise JobCancelled("the job was stopped: its run was cancelled")
    if stopped.is_set():
        raise JobStopped(f"MaxRuntimeExceeded: the job ran longer than its {max_seconds} s stopping condition")
    return code


def run_job(
    cmd: list[str],
    cwd: Path,
    env: dict[str, str],
    max_seconds: int | None,
    output: JobOutput,
    failure_dir: Path,
    cancelled: threading.Event | None = None,
) -> tuple[str, str]:
    """Run a job's process; return its SageMaker status (Completed / Failed / Stopped) and FailureReason.

    Raises ``JobCancelled`` when ``cancelled`` stopped it (the Task is aborted: there is no status to report).
    """
    try:
        code = run_job_process(cmd, cwd=cwd, env=env, max_seconds=max_seconds, output=output, cancelled=cancelled)
    except JobStopped as stopped:
        return "Stopped", str(stopped)
    if code != 0:
        return "Failed", _failure_reason(failure_dir, output, code)
    return "Completed", ""


@cache
def _prctl() -> Any:
    """libc's prctl on Linux (None elsewhere), loaded in the parent: after a fork in a threaded process the child
    must not load libraries (another thread may have held the loader's lock at the fork)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    return ctypes.CDLL("libc.so.6", use_errno=True).prctl


def _die_with_parent() -> None:
    """Linux: the job gets SIGTERM if the runner is killed (even with SIGKILL), so no training outlives it.

    The signal is tied to the thread that started the job, which waits for it to end."""
    prctl = _prctl()
    if prctl is not None:
        pr_set_pdeathsig = 1
        prctl(pr_set_pdeathsig, signal.SIGTERM)


def _kill_group(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=5)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    except PermissionError:
        proc.kill()


class LocalSageMaker:
    """Training and processing jobs as local subprocesses under the SageMaker contracts."""

    def __init__(
        self,
        store: LocalObjectStore,
        jobs_dir: Path,
        python: str,
        on_line: Callable[[str, str], None] | None = None,
    ) -> None:
        self.store = store
        self.jobs_dir = jobs_dir
        self.python = python
        self.on_line = on_line

    # -- helpers ------------------------------------------------------------------------------------
    def _local_key(self, uri: str, what: str) -> str:
        bucket, key = layout.parse_s3_uri(uri)
        if bucket != self.store.bucket:
            raise TaskFailed(
                "SageMaker.ValidationException", f"{what} {uri} is outside the local bucket s3://{self.store.bucket}"
            )
        return key

    def _code_dir(self, bundle_uri: str) -> Path:
        """Unpack the code bundle (once per content hash) and return its directory."""
        key = self._local_key(bundle_uri, "sagemaker_submit_directory")
        target = self.jobs_dir.parent / "cache" / "code" / key.replace("/", "_")
        if not target.is_dir():
            tmp = target.with_name(target.name + f".tmp-{uuid.uuid4().hex[:8]}")
            tmp.mkdir(parents=True)
            with tarfile.open(self.store.path(key)) as tar:
                tar.extractall(tmp, filter="data")
            try:
                tmp.rename(target)
            except OSError:  # another run unpacked it meanwhile
                shutil.rmtree(tmp, ignore_errors=True)
        return target

    def _checkpoint_dir(self, params: dict[str, Any], job: Path) -> Path:
        """Where /opt/ml/checkpoints lives locally: the bucket folder of ``CheckpointConfig.S3Uri``, so a
        retried job finds what the failed attempt wrote (SageMaker syncs that folder with the S3 URI)."""
        uri = (params.get("CheckpointConfig") or {}).get("S3Uri")
        if not uri:
            return job / "checkpoints"
        folder = self.store.path(self._local_key(uri, "CheckpointConfig.S3Uri").rstrip("/"))
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _job_dir(self, name: str) -> Path:
        d = self.jobs_dir / name
        if d.exists():
            shutil.rmtree(d)  # a retried attempt starts clean, as a new SageMaker job would
        d.mkdir(parents=True)
        return d

    def _env(self, extra: dict[str, str]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SM_", "POWERTOOLS_"))}
        env.update(extra)
        env["PYTHONUNBUFFERED"] = "1"
        return env

    # -- training -----------------------------------------------------------------------------------
    def create_training_job(self, params: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
        validate_request("CreateTrainingJob", params)
        name = params["TrainingJobName"]
        hyper: dict[str, str] = dict(params.get("HyperParameters") or {})
        program = hyper.get("sagemaker_program")
        submit = hyper.get("sagemaker_submit_directory")
        if not program or not submit:
            raise TaskFailed(
                "SageMaker.ValidationException", "HyperParameters need sagemaker_program and sagemaker_submit_directory"
            )
        job = self._job_dir(name)
        code = self._code_dir(submit)
        channels: dict[str, str] = {}
        for channel in params.get("InputDataConfig", []):
            key = self._local_key(channel["DataSource"]["S3DataSource"]["S3Uri"], f"channel {channel['ChannelName']}")
            path = self.store.path(key.rstrip("/"))
            if not path.is_dir():
                raise TaskFailed(
                    "SageMaker.ValidationException", f"channel {channel['ChannelName']}: {key} has no objects"
                )
            channels[channel["ChannelName"]] = str(path)
        model_dir, out_dir = job / "model", job / "output"
        (out_dir / "data").mkdir(parents=True)
        model_dir.mkdir()
        user_hyper = {k: v for k, v in hyper.items() if not k.startswith("sagemaker_")}
        env = self._env(
            {
                "SM_MODEL_DIR": str(model_dir),
                "SM_OUTPUT_DIR": str(out_dir),
                "SM_OUTPUT_DATA_DIR": str(out_dir / "data"),
                "SM_NUM_GPUS": str(_gpu_count()),
                "SM_NUM_CPUS": str(os.cpu_count() or 1),
                "SM_CURRENT_HOST": "algo-1",
                "SM_HOSTS": json.dumps(["algo-1"]),
                "SM_CHANNELS": json.dumps(sorted(channels)),
                "SM_HPS": json.dumps(user_hyper),
                "SM_USER_ENTRY_POINT": program,
                "SM_MODULE_DIR": submit,
                "SM_CHECKPOINT_DIR": str(self._checkpoint_dir(params, job)),
                **{f"SM_CHANNEL_{c.upper()}": p for c, p in channels.items()},
                **{f"SM_HP_{k.upper().replace('-', '_')}": v for k, v in user_hyper.items()},
            }
        )
        args = [a for k, v in user_hyper.items() for a in (f"--{k}", v)]
        definitions = params["AlgorithmSpecification"].get("MetricDefinitions", [])
        regexes = [(d["Name"], re.compile(d["Regex"])) for d in definitions]
        metrics: dict[str, float] = {}

        def on_line(line: str) -> None:
            for metric, regex in regexes:
                m = regex.search(line)
                if m:
                    with contextlib.suppress(ValueError, IndexError):
                        metrics[metric] = float(m.group(1))
            if self.on_line:
                self.on_line(ctx.state_name, line)

        output = JobOutput(job / "output.log", on_line)
        limit = ctx.timeout_seconds or (params.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds")
        started = _now()
        status, reason = run_job(
            [self.python, str(code / program), *args], code, env, limit, output, out_dir, ctx.cancelled
        )
        ended = _now()
        describe = {
            "TrainingJobName": name,
            "TrainingJobArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/{name}",
            "TrainingJobStatus": status,
            "SecondaryStatus": "MaxRuntimeExceeded" if status == "Stopped" else status,
            "HyperParameters": hyper,
            "AlgorithmSpecification": params["AlgorithmSpecification"],
            "RoleArn": params["RoleArn"],
            "InputDataConfig": params.get("InputDataConfig", []),
            "OutputDataConfig": params["OutputDataConfig"],
            "ResourceConfig": params["ResourceConfig"],
            "StoppingCondition": params.get("StoppingCondition", {}),
            "TrainingStartTime": started.isoformat(),
            "TrainingEndTime": ended.isoformat(),
            "TrainingTimeInSeconds": int((ended - started).total_seconds()),
            "BillableTimeInSeconds": 0,
            "FinalMetricDataList": [
                {"MetricName": k, "Value": v, "Timestamp": ended.isoformat()} for k, v in sorted(metrics.items())
            ],
        }
        if status != "Completed":
            describe["FailureReason"] = reason
            raise TaskFailed("States.TaskFailed", json.dumps(describe))
        out_key = self._local_key(params["OutputDataConfig"]["S3OutputPath"], "S3OutputPath").rstrip("/")
        model_key = f"{out_key}/{name}/output/model.tar.gz"
        self.store.put(model_key, _tar_gz(model_dir), content_type="application/x-tar")
        describe["ModelArtifacts"] = {"S3ModelArtifacts": layout.s3_uri(self.store.bucket, model_key)}
        return describe

    # -- processing ---------------------------------------------------------------------------------
    def create_processing_job(self, params: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
        validate_request("CreateProcessingJob", params)
        name = params["ProcessingJobName"]
        job = self._job_dir(name)
        mapping: dict[str, Path] = {}
        args: list[str] = []
        for item in params.get("ProcessingInputs", []):
            s3 = item["S3Input"]
            local = job / "processing" / item["InputName"]
            self._download(self._local_key(s3["S3Uri"], f"input {item['InputName']}"), local)
            mapping[s3["LocalPath"].rstrip("/")] = local
            if item["InputName"] != "code":
                args += [f"--{item['InputName']}-dir", str(local)]
        outputs = (params.get("ProcessingOutputConfig") or {}).get("Outputs", [])
        for item in outputs:
            local = job / "processing" / "outputs" / item["OutputName"]
            local.mkdir(parents=True)
            mapping[item["S3Output"]["LocalPath"].rstrip("/")] = local
        if len(outputs) == 1:
            args += ["--output-dir", str(mapping[outputs[0]["S3Output"]["LocalPath"].rstrip("/")])]
        app = params["AppSpecification"]
        entry = [self._map_path(a, mapping) for a in app.get("ContainerEntrypoint", [])]
        entry += [self._map_path(a, mapping) for a in app.get("ContainerArguments", [])]
        if entry and entry[0] in ("python", "python3"):
            entry[0] = self.python
        output = JobOutput(
            job / "output.log", (lambda line: self.on_line(ctx.state_name, line)) if self.on_line else None
        )
        limit = ctx.timeout_seconds or (params.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds")
        out_dir = job / "output"  # stands in for the container's /opt/ml/output
        out_dir.mkdir()
        started = _now()
        env = {str(k): str(v) for k, v in (params.get("Environment") or {}).items()}
        status, reason = run_job(
            entry + args, job, self._env({**env, "SM_OUTPUT_DIR": str(out_dir)}), limit, output, out_dir, ctx.cancelled
        )
        describe = {
            "ProcessingJobName": name,
            "ProcessingJobArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:processing-job/{name}",
            "ProcessingJobStatus": status,
            "ProcessingInputs": params.get("ProcessingInputs", []),
            "ProcessingOutputConfig": params.get("ProcessingOutputConfig", {}),
            "ProcessingResources": params["ProcessingResources"],
            "AppSpecification": app,
            "Environment": params.get("Environment", {}),
            "RoleArn": params["RoleArn"],
            "ProcessingStartTime": started.isoformat(),
        }
        exit_message = _exit_message(out_dir)
        if exit_message is not None:
            describe["ExitMessage"] = exit_message
        if status != "Completed":
            describe["ProcessingEndTime"] = _now().isoformat()
            describe["FailureReason"] = PROCESSING_FAILURE_REASON if status == "Failed" else reason
            record_processing_job(self.jobs_dir, describe)
            raise TaskFailed("States.TaskFailed", json.dumps(describe))
        for item in outputs:
            local = mapping[item["S3Output"]["LocalPath"].rstrip("/")]
            prefix = self._local_key(item["S3Output"]["S3Uri"], f"output {item['OutputName']}").rstrip("/")
            for f in sorted(p for p in local.rglob("*") if p.is_file()):
                self.store.put(
                    f"{prefix}/{f.relative_to(local).as_posix()}", f.read_bytes(), "application/octet-stream"
                )
        # As on SageMaker, the job ends after its outputs are uploaded (EndOfJob).
        describe["ProcessingEndTime"] = _now().isoformat()
        record_processing_job(self.jobs_dir, describe)
        return describe

    def _download(self, key: str, local: Path) -> None:
        """Copy the objects under ``key`` (an S3Prefix) into ``local``, as the job's input download does."""
        local.mkdir(parents=True, exist_ok=True)
        found = False
        for obj in self.store.list(key):
            rel = obj.key[len(key) :].lstrip("/") or obj.key.rsplit("/", 1)[-1]
            dest = local / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.store.path(obj.key), dest)
            found = True
        if not found:
            raise TaskFailed("SageMaker.ValidationException", f"no objects at s3://{self.store.bucket}/{key}")

    @staticmethod
    def _map_path(arg: str, mapping: dict[str, Path]) -> str:
        for container_path, local in sorted(mapping.items(), key=lambda kv: -len(kv[0])):
            if arg == container_path or arg.startswith(container_path + "/"):
                return str(local) + arg[len(container_path) :]
        return arg


DESCRIBE_FILE = "describe.json"


def record_processing_job(jobs_dir: Path, describe: dict[str, Any]) -> None:
    """Keep a processing job's Describe response (what DescribeProcessingJob answers on AWS)."""
    target = jobs_dir / describe["ProcessingJobName"] / DESCRIBE_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}")
    tmp.write_text(json.dumps(describe, default=str), encoding="utf-8")
    tmp.replace(target)


class LocalProcessingJobs:
    """The ``ProcessingJobs`` port over the local job records (``<root>/jobs/<job>/describe.json``)."""

    def __init__(self, jobs_dir: Path) -> None:
        self.jobs_dir = jobs_dir

    def describe(self, name: str) -> ProcessingJob | None:
        path = self.jobs_dir / name / DESCRIBE_FILE
        if "/" in name or name in ("", ".", "..") or not path.is_file():
            return None
        d = json.loads(path.read_text(encoding="utf-8"))
        outputs = (d.get("ProcessingOutputConfig") or {}).get("Outputs") or []
        return ProcessingJob(
            name=d["ProcessingJobName"],
            status=d.get("ProcessingJobStatus", ""),
            started_at=_parse_time(d.get("ProcessingStartTime")),
            ended_at=_parse_time(d.get("ProcessingEndTime")),
            output_uris=tuple(str((o.get("S3Output") or {}).get("S3Uri", "")) for o in outputs),
            exit_message=str(d.get("ExitMessage") or ""),
            failure_reason=str(d.get("FailureReason") or ""),
        )


def _parse_time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


def _tar_gz(directory: Path) -> bytes:
    import io

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for p in sorted(directory.rglob("*")):
            tar.add(p, arcname=p.relative_to(directory).as_posix(), recursive=False)
    return buf.getvalue()


def _failure_reason(output_dir: Path, output: JobOutput, code: int) -> str:
    """SageMaker's FailureReason: the script's ``failure`` file if written, else the output's tail."""
    for candidate in (output_dir / "failure", output_dir.parent / "failure"):
        if candidate.is_file():
            text = candidate.read_text(encoding="utf-8", errors="replace").strip()
            if text:
                return f"AlgorithmError: {text}"[:1024]
    tail = "\n".join(line for line in output.tail[-8:] if line.strip())
    return f"AlgorithmError: exit code {code}\n{tail}"[:1024]


def _exit_message(output_dir: Path) -> str | None:
    """A processing job's ExitMessage: the first 1 KB of what the container wrote to /opt/ml/output/message.

    SageMaker fills it on any terminal status; a processing job's FailureReason stays generic
    (https://docs.aws.amazon.com/sagemaker/latest/dg/byoc-metadata.html)."""
    path = output_dir / "message"
    if not path.is_file():
        return None
    return path.read_bytes()[:1024].decode("utf-8", errors="replace")


def _gpu_count() -> int:
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))


@dataclass
class LambdaContext:
    """The attributes of a Lambda context that Powertools and handlers read."""

    function_name: str
    memory_limit_in_mb: int = 512
    timeout_seconds: int = 60
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    _started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return function_arn(self.function_name)

    @property
    def function_version(self) -> str:
        return "$LATEST"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return "local"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_seconds - (time.monotonic() - self._started)) * 1000))


def invoke_handler(module: ModuleType, function_name: str, payload: Any) -> Any:
    """Call a handler as Lambda would: JSON in, JSON out; its exception becomes the Lambda error."""
    event = json.loads(json.dumps(payload))
    try:
        result = module.lambda_handler(event, LambdaContext(function_name))
    except Exception as exc:
        cause = {
            "errorMessage": str(exc),
            "errorType": type(exc).__name__,
            "stackTrace": traceback.format_exception(exc)[-5:],
        }
        raise TaskFailed(type(exc).__name__, json.dumps(cause)) from exc
    return json.loads(json.dumps(result, default=str))


class LocalTaskRunner:
    """Serves the Task resources the state machine uses, each by its local integration."""

    def __init__(
        self,
        sagemaker: LocalSageMaker,
        functions: dict[str, ModuleType],
        publish: Callable[[str, str, str], None],
    ) -> None:
        self.sagemaker = sagemaker
        self.functions = functions  # function ARN -> handler module
        self.publish = publish

    def __call__(self, resource: str, parameters: Any, ctx: TaskContext) -> Any:
        if resource == TRAINING_SYNC:
            return self.sagemaker.create_training_job(parameters, ctx)
        if resource == PROCESSING_SYNC:
            return self.sagemaker.create_processing_job(parameters, ctx)
        if resource == LAMBDA_INVOKE:
            arn = parameters.get("FunctionName")
            module = self.functions.get(arn)
            if module is None:
                raise TaskFailed("Lambda.ResourceNotFoundException", f"no local function {arn}")
            payload = invoke_handler(module, arn.rsplit(":", 1)[-1], parameters.get("Payload"))
            return {"StatusCode": 200, "ExecutedVersion": "$LATEST", "Payload": payload}
        if resource == SNS_PUBLISH:
            self.publish(parameters.get("TopicArn", ""), parameters.get("Subject", ""), parameters.get("Message", ""))
            return {"MessageId": str(uuid.uuid4())}
        raise TaskFailed("States.Runtime", f"the local executor has no integration for {resource}")
