"""What lets a Map state's iterations run at once locally: the machine's job cap (NYANOPS_MAX_PARALLEL_JOBS),
one SQLite connection per thread, job processes stopped when their Task is cancelled, and the display and
history written one call at a time."""

from __future__ import annotations

import io
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from nyanops.local.asl import ExecutionResult, Serialized, StateMachine
from nyanops.local.capacity import ENV_VAR, GIB, InvalidSetting, Machine, max_parallel_jobs, this_machine
from nyanops.local.database import connect
from nyanops.local.integrations import JobCancelled, JobOutput, run_job_process
from nyanops.local.progress import Progress
from nyanops.local.runner import LocalPipeline

# -- the job cap ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cores", "memory_gib", "slots"),
    [
        (2, 24, 1),  # this project's reference machine: one job at a time
        (1, 2, 1),  # never less than one
        (8, 64, 2),
        (16, 128, 4),
        (16, 12, 2),  # memory bound
        (64, 1024, 16),
    ],
)
def test_job_slots_from_cores_and_memory(cores: int, memory_gib: int, slots: int) -> None:
    assert Machine(cores, memory_gib * GIB).job_slots() == slots


def test_the_setting_wins_over_the_machine() -> None:
    assert max_parallel_jobs({ENV_VAR: "3"}, Machine(2, 24 * GIB)) == 3
    assert max_parallel_jobs({ENV_VAR: " 1 "}, Machine(64, 1024 * GIB)) == 1
    assert max_parallel_jobs({}, Machine(16, 128 * GIB)) == 4
    assert max_parallel_jobs({ENV_VAR: ""}, Machine(16, 128 * GIB)) == 4


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5", "1e3"])
def test_a_bad_setting_says_what_to_set(value: str) -> None:
    with pytest.raises(InvalidSetting) as err:
        max_parallel_jobs({ENV_VAR: value}, Machine(2, 24 * GIB))
    message = str(err.value)
    assert message.startswith(f"{ENV_VAR}: {value!r} is not a positive whole number")
    assert "unset it to use 1" in message and "2 CPU cores and 24 GiB" in message


def test_cgroup_limits_lower_the_machine(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("200000 100000\n")
    (tmp_path / "memory.max").write_text(str(GIB // 2))
    machine = this_machine(tmp_path)
    assert machine.cores == min(2, len(os.sched_getaffinity(0))) and machine.memory == GIB // 2
    (tmp_path / "cpu.max").write_text("max 100000\n")
    (tmp_path / "memory.max").write_text("max\n")
    unlimited = this_machine(tmp_path)
    assert unlimited.cores == len(os.sched_getaffinity(0)) and unlimited.memory > GIB // 2


def test_the_pipeline_reads_the_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "3")
    pipeline = LocalPipeline(tmp_path / "root", Progress(io.StringIO(), interactive=False))
    try:
        assert pipeline.max_parallel_jobs == 3
    finally:
        pipeline.close()
    monkeypatch.setenv(ENV_VAR, "none")
    with pytest.raises(InvalidSetting, match=ENV_VAR):
        LocalPipeline(tmp_path / "root2", Progress(io.StringIO(), interactive=False))


def test_the_pipeline_passes_the_cap_to_the_executor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def fake_run(self: StateMachine, input: Any, **kwargs: Any) -> ExecutionResult:
        seen.update(kwargs)
        return ExecutionResult(name=kwargs["execution_name"], execution_arn="arn", status="SUCCEEDED", output={})

    monkeypatch.setattr(StateMachine, "run", fake_run)
    pipeline = LocalPipeline(tmp_path / "root", Progress(io.StringIO(), interactive=False), max_parallel_jobs=2)
    try:
        pipeline.executions.start("run-1", {"experiment": "cats", "trial": "run-1"})
        assert pipeline.execute("run-1").status == "SUCCEEDED"
    finally:
        pipeline.close()
    assert seen["max_parallel"] == 2
    assert seen["sleep"] is None  # the executor's own wait, which Ctrl-C cuts short


# -- one SQLite connection per thread ------------------------------------------------------------------------------


def test_threads_do_not_share_a_transaction(tmp_path: Path) -> None:
    db = connect(tmp_path / "x.db")
    db.execute("CREATE TABLE t (v INTEGER)")
    db.execute("BEGIN IMMEDIATE")
    db.execute("INSERT INTO t VALUES (1)")
    seen: dict[str, Any] = {}

    def other_thread() -> None:
        db.execute("INSERT INTO t VALUES (2)")  # waits for the first transaction, then commits on its own
        seen["rows"] = [row["v"] for row in db.execute("SELECT v FROM t")]

    thread = threading.Thread(target=other_thread)
    thread.start()
    time.sleep(0.2)
    assert thread.is_alive(), "the other thread should wait for the open write transaction"
    db.execute("ROLLBACK")  # undoes this thread's insert only
    thread.join(10)
    assert seen["rows"] == [2]
    assert [row["v"] for row in db.execute("SELECT v FROM t")] == [2]
    db.close()


def test_closing_closes_every_threads_connection(tmp_path: Path) -> None:
    db = connect(tmp_path / "x.db")
    thread = threading.Thread(target=lambda: db.execute("SELECT 1"))
    thread.start()
    thread.join()
    others = list(db._others)  # type: ignore[attr-defined]
    assert len(others) == 1
    db.close()
    with pytest.raises(Exception, match="closed"):
        others[0].execute("SELECT 1")


# -- job processes stop when their Task is cancelled -----------------------------------------------------------------

CHILD_AND_GRANDCHILD = """
import subprocess, sys, time
grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
print(grandchild.pid, flush=True)
time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0): look at its state.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_cancelling_stops_the_jobs_whole_process_group(tmp_path: Path) -> None:
    cancelled = threading.Event()
    lines: list[str] = []
    output = JobOutput(tmp_path / "job.log", lines.append)
    threading.Timer(1.0, cancelled.set).start()
    started = time.monotonic()
    with pytest.raises(JobCancelled):
        run_job_process(
            [sys.executable, "-c", CHILD_AND_GRANDCHILD],
            cwd=tmp_path,
            env=dict(os.environ),
            max_seconds=None,
            output=output,
            cancelled=cancelled,
        )
    assert time.monotonic() - started < 10
    grandchild = int(lines[0])
    deadline = time.monotonic() + 5
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(grandchild)


def test_a_job_that_is_not_cancelled_runs_to_its_end(tmp_path: Path) -> None:
    output = JobOutput(tmp_path / "job.log")
    code = run_job_process(
        [sys.executable, "-c", "print('done')"],
        cwd=tmp_path,
        env=dict(os.environ),
        max_seconds=30,
        output=output,
        cancelled=threading.Event(),
    )
    assert code == 0 and output.tail == ["done"]


# -- the display is written one call at a time --------------------------------------------------------------------


def test_serialized_calls_never_overlap() -> None:
    class Display:
        def __init__(self) -> None:
            self.busy = False
            self.overlaps = 0
            self.lines: list[str] = []

        def job_line(self, state: str, line: str) -> None:
            if self.busy:
                self.overlaps += 1
            self.busy = True
            time.sleep(0.001)
            self.lines.append(f"{state}|{line}")
            self.busy = False

    display = Display()
    shared = Serialized(display, threading.RLock())
    threads = [
        threading.Thread(target=lambda n=n: [shared.job_line(f"T{n}", str(i)) for i in range(20)]) for n in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert display.overlaps == 0 and len(display.lines) == 80


def test_the_cli_refuses_a_bad_setting_without_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from nyanops.cli import main

    monkeypatch.setenv(ENV_VAR, "lots")
    assert main(["--root", str(tmp_path / "root"), "executions"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"nyanops: {ENV_VAR}: 'lots' is not a positive whole number") and "Traceback" not in err


def test_a_cancelled_training_task_stops_its_job(tmp_path: Path) -> None:
    """The wiring: LocalSageMaker hands the Task's ``cancelled`` to the job process it runs."""
    import tarfile

    from nyanops.local.asl import TaskContext
    from nyanops.local.bucket import LocalObjectStore
    from nyanops.local.integrations import LocalSageMaker

    store = LocalObjectStore(tmp_path / "bucket")
    bundle = tmp_path / "sourcedir.tar.gz"
    script = tmp_path / "train.py"
    script.write_text("import time\nprint('training', flush=True)\ntime.sleep(60)\n")
    with tarfile.open(bundle, "w:gz") as tar:
        tar.add(script, arcname="train.py")
    store.put("code/abc/sourcedir.tar.gz", bundle.read_bytes(), "application/gzip")
    store.put("datasets/d/train/cat/1.jpg", b"x", "image/jpeg")
    uri = f"s3://{store.bucket}"
    params = {
        "TrainingJobName": "t1-train",
        "AlgorithmSpecification": {"TrainingImage": "local/python", "TrainingInputMode": "File"},
        "RoleArn": "arn:aws:iam::000000000000:role/r",
        "HyperParameters": {
            "sagemaker_program": "train.py",
            "sagemaker_submit_directory": f"{uri}/code/abc/sourcedir.tar.gz",
        },
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"{uri}/datasets/d/train/"}},
            }
        ],
        "OutputDataConfig": {"S3OutputPath": f"{uri}/training-output/"},
        "ResourceConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": 120},
    }
    cancelled = threading.Event()
    lines: list[str] = []

    def on_line(state: str, line: str) -> None:
        lines.append(line)
        if line == "training":
            cancelled.set()  # a sibling failed, or Ctrl-C reached the thread running the execution

    sagemaker = LocalSageMaker(store, tmp_path / "jobs", sys.executable, on_line)
    ctx = TaskContext("Train", "x", 0, None, None, {}, cancelled=cancelled)
    started = time.monotonic()
    with pytest.raises(JobCancelled):
        sagemaker.create_training_job(params, ctx)
    assert lines == ["training"] and time.monotonic() - started < 15
