"""Exactly one best trial per experiment, also when evaluations finish at the same moment.

The DynamoDB lease lock serialises the decision; an interleaving test shows the lock is what makes
it right (with a no-op lock the same interleaving leaves two trials flagged best)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from nyanops.aws.experiment_lock import DynamoExperimentLock
from nyanops.aws.s3_store import S3ObjectStore
from nyanops.aws.sagemaker_experiments import SageMakerExperimentStore
from nyanops.core import layout
from nyanops.core.experiments import ExperimentBusy, TrialResult, TrialStart
from nyanops.core.record_results import RecordResultsDeps

from .conftest import BUCKET, LOCK_TABLE, World
from .evaluation_docs import evaluation_doc

T0 = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)


def fast_lock(world: World, **kwargs: Any) -> DynamoExperimentLock:
    options: dict[str, Any] = {"attempts": 2000, "wait_seconds": 0.005, **kwargs}
    return DynamoExperimentLock(world.ddb, LOCK_TABLE, **options)


def start(store: SageMakerExperimentStore, trial: str, experiment: str = "cats") -> None:
    store.start_trial(TrialStart(experiment, trial, trial, "ds", "h", "c", "", {"epochs": 1}, "manifests/x.json", T0))


def result(f1: float, finished: datetime = T0) -> TrialResult:
    metrics = {k: f1 for k in ("accuracy", "macro_precision", "macro_recall", "macro_f1", "weighted_f1")}
    return TrialResult(metrics, {"a": f1}, {"labels": ["a"], "matrix": [[1]]}, {}, "s3://m", "s3://e", finished)


def best_flags(world: World, trials: list[str]) -> dict[str, int]:
    return {t: int(world.trial_component(t)["Parameters"]["is_best"]["NumberValue"]) for t in trials}


def test_concurrent_record_results_leave_exactly_one_best(world: World, load_event: Any, lambda_context: Any
                                                          ) -> None:
    handler = world.handlers[1]
    handler.set_deps(RecordResultsDeps(S3ObjectStore(world.s3, BUCKET),
                                       SageMakerExperimentStore(world.sm, fast_lock(world))))
    base = load_event("record_results_success.json")["run"]
    scores = [0.61, 0.93, 0.72, 0.88, 0.95, 0.51, 0.94, 0.70]
    runs = []
    for i, f1 in enumerate(scores):
        trial = f"m-concurrent-{i:016d}"
        run = {**base, "execution_name": trial, "trial": trial,
               "evaluation": {**base["evaluation"], "output_s3_uri": f"s3://{BUCKET}/runs/{trial}/evaluation/"}}
        handler.lambda_handler({"mode": "started", "run": run}, lambda_context)
        world.put(layout.evaluation_key(trial), json.dumps(evaluation_doc(f1)).encode())
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
        t.join(60)
    assert not errors, errors
    assert len(outcomes) == len(runs)
    flags = best_flags(world, [r["trial"] for r in runs])
    assert sum(flags.values()) == 1
    winner = f"m-concurrent-{scores.index(max(scores)):016d}"
    assert flags[winner] == 1
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


def interleave(world: World, use_lock: bool) -> dict[str, int]:
    """A (0.70) reads the trial list and pauses; B (0.90, the better one) then finishes (or blocks on
    the lock, which also lets A go on); A completes from what it read."""
    resume = threading.Event()

    def blocked_sleep(seconds: float) -> None:  # B found the lock taken
        resume.set()
        time.sleep(0.01)

    lock_a = fast_lock(world) if use_lock else NoLock()
    lock_b = fast_lock(world, sleep=blocked_sleep) if use_lock else NoLock()
    store_a = PausingStore(world.sm, lock_a, resume=resume)
    store_b = SageMakerExperimentStore(world.sm, lock_b)
    start(store_b, "trial-a")
    start(store_b, "trial-b")
    errors: list[BaseException] = []

    def run_a() -> None:
        try:
            store_a.complete_trial("cats", "trial-a", result(0.70, T0), "macro_f1")
        except BaseException as exc:
            errors.append(exc)

    thread_a = threading.Thread(target=run_a)
    thread_a.start()
    assert store_a.paused.wait(10)
    thread_b = threading.Thread(target=lambda: store_b.complete_trial("cats", "trial-b", result(0.90, T0), "macro_f1"))
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


def test_without_the_lock_the_same_interleaving_leaves_two_bests(world: World) -> None:
    """The control: proves the interleaving test can fail, i.e. that the lock is what makes it pass."""
    assert interleave(world, use_lock=False) == {"trial-a": 1, "trial-b": 1}


def test_a_stale_lease_is_taken_over(world: World) -> None:
    now = time.time()
    world.ddb.put_item(TableName=LOCK_TABLE, Item={"experiment": {"S": "cats"}, "owner": {"S": "crashed-lambda"},
                                                   "expires_at": {"N": str(int(now) - 5)}})
    lock = fast_lock(world, attempts=1, clock=lambda: now)
    with lock.hold("cats"):
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
    with pytest.raises(ExperimentBusy, match="'cats'"), lock.hold("cats"):
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
    store.fail_trial("cats", "t1", "boom", T0 + timedelta(minutes=1))
    assert held == [True]
