"""Exactly one best trial per experiment, also when evaluations finish at the same moment.

The DynamoDB lease lock serialises the decision. Three kinds of proof:
* eight RecordResults at once, with the decision slowed down inside the session: one best, the highest,
  and a decision chain (exactly one trial says it found no best; every other compared with a champion):
  a decision taken outside the lock reads a stale champion and breaks both;
* an interleaving test (with a no-op lock the same interleaving leaves two trials flagged best);
* the lock's key is the experiment's case-insensitive key, and DynamoDB's errors are classified (a busy
  lock waits, throttling is retried, a deployment fault is raised at once).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from nyanops.aws import sagemaker_experiments
from nyanops.aws.experiment_lock import DynamoExperimentLock
from nyanops.aws.s3_store import S3ObjectStore
from nyanops.aws.sagemaker_experiments import SageMakerExperimentStore
from nyanops.aws.sagemaker_jobs import SageMakerProcessingJobs
from nyanops.core.best_model import record_and_decide
from nyanops.core.experiments import ExperimentBusy, TrialResult, TrialStart
from nyanops.core.record_results import RecordResultsDeps

from .conftest import BUCKET, LOCK_TABLE, World
from .evaluation_docs import score

T0 = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)


def fast_lock(world: World, **kwargs: Any) -> DynamoExperimentLock:
    options: dict[str, Any] = {"attempts": 2000, "wait_seconds": 0.005, **kwargs}
    return DynamoExperimentLock(world.ddb, LOCK_TABLE, **options)


def start(store: SageMakerExperimentStore, trial: str, experiment: str = "cats") -> None:
    store.start_trial(TrialStart(experiment, trial, trial, "ds", "h", "c", "", {"epochs": 1}, "manifests/x.json", T0,
                                 test_hash="t" * 64, classes_key="k"))


def result(f1: float, finished: datetime = T0) -> TrialResult:
    metrics = {k: f1 for k in ("accuracy", "macro_precision", "macro_recall", "macro_f1", "weighted_f1")}
    return TrialResult(metrics, {}, "s3://m", "s3://e", finished)


def best_flags(world: World, trials: list[str]) -> dict[str, int]:
    return {t: int(world.trial_component(t)["Parameters"]["is_best"]["NumberValue"]) for t in trials}


@pytest.fixture
def slow_sessions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Widen the window between reading the champion and flipping the flags, as a slow SageMaker would."""
    original = sagemaker_experiments.SageMakerSession.trials

    def slow(self: Any) -> Any:
        records = original(self)
        time.sleep(0.05)
        return records

    monkeypatch.setattr(sagemaker_experiments.SageMakerSession, "trials", slow)


def test_concurrent_record_results_leave_exactly_one_best(world: World, load_event: Any, lambda_context: Any,
                                                          slow_sessions: None) -> None:
    handler = world.handlers[1]
    handler.set_deps(RecordResultsDeps(S3ObjectStore(world.s3, BUCKET),
                                       SageMakerExperimentStore(world.sm, fast_lock(world)),
                                       SageMakerProcessingJobs(world.sm)))
    base = load_event("record_results_success.json")["run"]
    wrong = [5, 1, 7, 3, 0, 6, 2, 4]  # distinct scores, each gap well over the tolerance (40 test images)
    support = 20
    runs = []
    for i, w in enumerate(wrong):
        trial = f"m-concurrent-{i:016d}"
        run = json.loads(json.dumps(base))
        run.update(execution_name=trial, trial=trial)
        run["evaluation"].update(job_name=f"{trial}-eval", output_s3_uri=f"s3://{BUCKET}/runs/{trial}/evaluation/")
        run["dataset"]["counts"]["test"] = {c: support for c in run["dataset"]["classes"]}
        handler.lambda_handler({"mode": "started", "run": run}, lambda_context)
        world.put_evaluation(run, wrong=w)
        runs.append(run)
    barrier = threading.Barrier(len(runs))
    outcomes: list[dict[str, Any]] = []
    errors: list[BaseException] = []

    def finish(run: dict[str, Any]) -> None:
        barrier.wait()
        try:
            outcomes.append(handler.lambda_handler({"mode": "succeeded", "run": run}, lambda_context))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=finish, args=(r,)) for r in runs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert len(outcomes) == len(runs)
    trials = [r["trial"] for r in runs]
    flags = best_flags(world, trials)
    assert sum(flags.values()) == 1
    assert flags[trials[wrong.index(0)]] == 1, (flags, [score(w, support=support) for w in wrong])
    # One decision chain: exactly one trial found no best; every other was compared with the champion of its
    # moment, and the flag moved each time a better one came.
    decisions = [world.trial_component(t)["Parameters"]["decision"]["StringValue"] for t in trials]
    assert sum("no trial of this experiment held the best flag" in d for d in decisions) == 1, decisions
    assert sum(o["verdict"] in ("first", "moved") for o in outcomes) >= 1
    assert world.ddb.scan(TableName=LOCK_TABLE)["Items"] == []  # every lease released


class PausingStore(SageMakerExperimentStore):
    """Pauses right after it has read the experiment's trials (inside the decision) until ``resume``."""

    def __init__(self, *args: Any, resume: threading.Event, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.resume = resume
        self.paused = threading.Event()

    def list_trials(self, experiment: str | None = None) -> list[Any]:
        records = super().list_trials(experiment)
        if not self.paused.is_set():
            self.paused.set()
            assert self.resume.wait(10), "the other evaluation neither finished nor blocked"
        return records


class NoLock:
    @contextmanager
    def hold(self, experiment: str) -> Iterator[None]:
        yield


def interleave(world: World, use_lock: bool, experiment_b: str = "cats") -> dict[str, int]:
    """A (0.70) reads the trial list and pauses; B (0.90, the better one) then finishes (or blocks on
    the lock, which also lets A go on); A completes from what it read."""
    resume = threading.Event()

    def blocked_sleep(seconds: float) -> None:  # B found the lock taken
        resume.set()
        time.sleep(0.01)

    lock_a = fast_lock(world) if use_lock else NoLock()
    lock_b = fast_lock(world, sleep=blocked_sleep) if use_lock else NoLock()
    store_a = PausingStore(world.sm, lock_a, resume=resume)  # type: ignore[arg-type]
    store_b = SageMakerExperimentStore(world.sm, lock_b)  # type: ignore[arg-type]
    start(store_b, "trial-a")
    start(store_b, "trial-b", experiment_b)
    errors: list[BaseException] = []

    def run_a() -> None:
        try:
            record_and_decide(store_a, "cats", "trial-a", "macro_f1", 0.005, result=result(0.70))
        except BaseException as exc:
            errors.append(exc)

    thread_a = threading.Thread(target=run_a)
    thread_a.start()
    assert store_a.paused.wait(10)
    thread_b = threading.Thread(
        target=lambda: record_and_decide(store_b, experiment_b, "trial-b", "macro_f1", 0.005, result=result(0.90)))
    thread_b.start()
    if not use_lock:
        thread_b.join(10)
        resume.set()
    thread_a.join(10)
    thread_b.join(10)
    assert not errors, errors
    return best_flags(world, ["trial-a", "trial-b"])


def test_with_the_lock_the_interleaving_leaves_one_best(world: World) -> None:
    assert interleave(world, use_lock=True) == {"trial-a": 0, "trial-b": 1}


def test_cats_and_Cats_take_the_same_lock(world: World) -> None:
    """SageMaker's experiment names are case-insensitive: a run of "Cats" blocks on a run of "cats"."""
    assert interleave(world, use_lock=True, experiment_b="Cats") == {"trial-a": 0, "trial-b": 1}
    assert [e["ExperimentName"] for e in world.sm.list_experiments()["ExperimentSummaries"]] == ["cats"]


def test_without_the_lock_the_same_interleaving_leaves_a_wrong_best(world: World) -> None:
    """The control: proves the interleaving test can fail, i.e. that the lock is what makes it pass. A read
    the stale state (no best yet) and flags itself, over B's better result."""
    assert interleave(world, use_lock=False) == {"trial-a": 1, "trial-b": 0}


def test_a_stale_lease_is_taken_over(world: World) -> None:
    now = time.time()
    world.ddb.put_item(TableName=LOCK_TABLE, Item={"experiment": {"S": "cats"}, "owner": {"S": "crashed-lambda"},
                                                   "expires_at": {"N": str(int(now) - 5)}})
    lock = fast_lock(world, attempts=1, clock=lambda: now)
    with lock.hold("Cats"):
        item = world.ddb.get_item(TableName=LOCK_TABLE, Key={"experiment": {"S": "cats"}})["Item"]
        assert item["owner"]["S"] != "crashed-lambda"
        assert int(item["expires_at"]["N"]) == int(now) + 120
    assert "Item" not in world.ddb.get_item(TableName=LOCK_TABLE, Key={"experiment": {"S": "cats"}})


def test_a_live_lease_blocks_until_attempts_run_out(world: World) -> None:
    now = time.time()
    world.ddb.put_item(TableName=LOCK_TABLE, Item={"experiment": {"S": "cats"}, "owner": {"S": "other"},
                                                   "expires_at": {"N": str(int(now) + 60)}})
    sleeps: list[float] = []
    lock = DynamoExperimentLock(world.ddb, LOCK_TABLE, attempts=5, wait_seconds=0.5, clock=lambda: now,
                                sleep=sleeps.append)
    with pytest.raises(ExperimentBusy, match="'cats'"), lock.hold("CATS"):
        pass
    assert sleeps == [0.5, 1.0, 1.5, 2.0, 0.5]
    # Another experiment is not blocked, and the other owner's lease is left alone.
    with lock.hold("dogs"):
        pass
    item = world.ddb.get_item(TableName=LOCK_TABLE, Key={"experiment": {"S": "cats"}})["Item"]
    assert item["owner"]["S"] == "other"


def test_release_after_lease_expiry_leaves_the_new_owner_alone(world: World) -> None:
    clock = [1000.0]
    lock = DynamoExperimentLock(world.ddb, LOCK_TABLE, lease_seconds=10, attempts=1, clock=lambda: clock[0],
                                sleep=lambda s: None)
    with lock.hold("cats"):
        clock[0] += 60  # our lease expired while we worked; someone else takes it
        other = DynamoExperimentLock(world.ddb, LOCK_TABLE, attempts=1, clock=lambda: clock[0], sleep=lambda s: None)
        other._acquire("cats", "newcomer")
    item = world.ddb.get_item(TableName=LOCK_TABLE, Key={"experiment": {"S": "cats"}})["Item"]
    assert item["owner"]["S"] == "newcomer"


def test_an_experiment_lock_is_held_during_failure_recording(world: World) -> None:
    lock = fast_lock(world)
    store = SageMakerExperimentStore(world.sm, lock)
    start(store, "t1")
    held = []
    original = world.sm.update_trial_component

    def spy(**kwargs: Any) -> Any:
        held.append("Item" in world.ddb.get_item(TableName=LOCK_TABLE, Key={"experiment": {"S": "cats"}}))
        return original(**kwargs)

    store._sm = type("Spy", (), {"__getattr__": lambda self, n: spy if n == "update_trial_component"
                                 else getattr(world.sm, n)})()
    store.fail_trial("Cats", "t1", "boom", T0 + timedelta(minutes=1))
    assert held == [True]


# -- how DynamoDB's answers are classified -----------------------------------------------------------------
class ScriptedDynamo:
    """put_item / delete_item answer from a list: an error code to raise, or None for success."""

    def __init__(self, put: list[str | None], delete: list[str | None] | None = None) -> None:
        self.put, self.delete = list(put), list(delete or [None])
        self.calls: list[str] = []

    def _answer(self, which: str, script: list[str | None]) -> dict[str, Any]:
        self.calls.append(which)
        code = script.pop(0) if script else None
        if code:
            raise ClientError({"Error": {"Code": code, "Message": code}}, which)
        return {}

    def put_item(self, **kwargs: Any) -> dict[str, Any]:
        return self._answer("put", self.put)

    def delete_item(self, **kwargs: Any) -> dict[str, Any]:
        return self._answer("delete", self.delete)


def scripted_lock(ddb: ScriptedDynamo, sleeps: list[float], attempts: int = 4) -> DynamoExperimentLock:
    return DynamoExperimentLock(ddb, LOCK_TABLE, attempts=attempts, wait_seconds=1, clock=lambda: 0.0,
                                sleep=sleeps.append)


@pytest.mark.parametrize("code", ["ProvisionedThroughputExceededException", "ThrottlingException",
                                  "RequestLimitExceeded", "InternalServerError", "ServiceUnavailable"])
def test_transient_dynamodb_errors_are_retried(code: str) -> None:
    sleeps: list[float] = []
    ddb = ScriptedDynamo([code, code, None], [code, None])
    with scripted_lock(ddb, sleeps).hold("cats"):
        pass
    assert ddb.calls == ["put", "put", "put", "delete", "delete"]
    assert sleeps == [1, 2, 1]


@pytest.mark.parametrize("code", ["ResourceNotFoundException", "AccessDeniedException", "ValidationException",
                                  "UnrecognizedClientException"])
def test_deployment_faults_are_raised_at_once_not_taken_for_a_busy_experiment(code: str) -> None:
    sleeps: list[float] = []
    ddb = ScriptedDynamo([code])
    with pytest.raises(ClientError, match=code), scripted_lock(ddb, sleeps).hold("cats"):
        pass
    assert ddb.calls == ["put"] and sleeps == []


def test_a_lock_held_by_others_is_busy_after_the_attempts() -> None:
    sleeps: list[float] = []
    ddb = ScriptedDynamo(["ConditionalCheckFailedException"] * 4)
    with pytest.raises(ExperimentBusy), scripted_lock(ddb, sleeps).hold("cats"):
        pass
    assert ddb.calls == ["put"] * 4 and sleeps == [1, 2, 3, 4]


def test_release_classifies_errors() -> None:
    sleeps: list[float] = []
    taken_over = ScriptedDynamo([None], ["ConditionalCheckFailedException"])
    with scripted_lock(taken_over, sleeps).hold("cats"):
        pass
    assert taken_over.calls == ["put", "delete"] and sleeps == []
    broken = ScriptedDynamo([None], ["AccessDeniedException"])
    with pytest.raises(ClientError, match="AccessDenied"), scripted_lock(broken, sleeps).hold("cats"):
        pass
    gone = ScriptedDynamo([None], ["ThrottlingException"] * 10)
    with scripted_lock(gone, sleeps, attempts=3).hold("cats"):
        pass
    assert gone.calls == ["put", "delete", "delete", "delete"]  # gave up: the lease expires by itself
