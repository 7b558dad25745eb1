"""The model registry's core (core/model_registry) on the real SQLite registry: the group names, the metadata
within SageMaker's limits, the hand-over and its idempotence, and RecordResults registering only when the best
flag moves to a trial (champion decision included)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aws.evaluation_docs import score

from nyanops.core import limits, naming
from nyanops.core.experiments import TrialRecord
from nyanops.core.model_registry import (
    APPROVED,
    REJECTED,
    PackageSpec,
    approved,
    check_metadata,
    fit_metadata,
    hand_over,
    hyperparameters_digest,
    metadata_text,
    parse_description,
)
from nyanops.local.database import connect
from nyanops.local.model_registry import SQLiteModelRegistry

from .memory_ports import T0
from .test_record_results import World, run_state

GROUP_RE = re.compile(limits.MODEL_PACKAGE_GROUP_NAME_PATTERN)


def record_of(trial: str, experiment: str = "cats", f1: float = 0.9, **changes: object) -> TrialRecord:
    base = TrialRecord(
        experiment, trial, "Completed", T0, T0, dataset_id="cats-dev", dataset_hash="d" * 64, code_hash="c" * 64,
        hyperparameters={"epochs": 10, "lr": 0.01, "augment": True}, model_location=f"s3://b/runs/{trial}/model.tar.gz",
        evaluation_location=f"s3://b/runs/{trial}/evaluation/evaluation.json", test_hash="t" * 64,
        metrics={"accuracy": 0.91, "macro_f1": f1, "macro_precision": 0.92, "macro_recall": 0.9},
    )
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.fixture
def registry(tmp_path: Path) -> SQLiteModelRegistry:
    return SQLiteModelRegistry(connect(tmp_path / "nyanops.db"), clock=lambda: T0)


# -- names ---------------------------------------------------------------------------------------------------
def test_one_group_per_experiment_key_within_sagemakers_name_rule() -> None:
    assert naming.model_package_group_name("cats") == "nyanops-cats"
    assert naming.model_package_group_name("Cats") == naming.model_package_group_name("CATS") == "nyanops-cats"
    longest = "a" * 119 + "b"
    other = "a" * 119 + "c"
    names = {naming.model_package_group_name(n) for n in (longest, other)}
    assert len(names) == 2
    for name in names:
        assert len(name) <= limits.MODEL_PACKAGE_GROUP_NAME_MAX and GROUP_RE.fullmatch(name)
        assert name.startswith(naming.MODEL_PACKAGE_GROUP_PREFIX)
    assert naming.model_package_group_name(longest) == naming.model_package_group_name(longest.upper())
    hyphens = "x--" * 39 + "yz"  # hyphens where the cut falls stay valid
    assert GROUP_RE.fullmatch(naming.model_package_group_name(hyphens))


# -- metadata --------------------------------------------------------------------------------------------------
def test_the_metadata_names_the_trial_its_inputs_figures_and_locations() -> None:
    spec = PackageSpec.of(record_of("m-a-1"), "macro_f1")
    meta = spec.metadata()
    check_metadata(meta)
    assert {k: meta[k] for k in ("trial", "experiment", "dataset_id", "dataset_hash", "test_hash", "code_hash",
                                 "model_uri", "evaluation_uri", "primary_metric")} == {
        "trial": "m-a-1", "experiment": "cats", "dataset_id": "cats-dev", "dataset_hash": "d" * 64,
        "test_hash": "t" * 64, "code_hash": "c" * 64, "model_uri": "s3://b/runs/m-a-1/model.tar.gz",
        "evaluation_uri": "s3://b/runs/m-a-1/evaluation/evaluation.json", "primary_metric": "macro_f1"}
    assert float(meta["macro_f1"]) == 0.9 and float(meta["accuracy"]) == 0.91
    assert (meta["hp:epochs"], meta["hp:lr"], meta["hp:augment"]) == ("10", "0.01", "true")
    assert meta["hyperparameters_sha256"] == hyperparameters_digest({"augment": True, "lr": 0.01, "epochs": 10})
    assert parse_description(spec.description()) == {
        "trial": "m-a-1", "metric": "macro_f1", "value": 0.9, "dataset_id": "cats-dev"}


def test_many_or_long_values_are_fitted_deterministically_never_refused() -> None:
    hyper = {f"p{i:03d}": i for i in range(80)}
    hyper["note"] = "a, b; (c) " + "x" * 400
    spec = PackageSpec.of(record_of("m-a-1", hyperparameters=hyper, test_hash=""), "macro_f1")
    meta = spec.metadata()
    check_metadata(meta)  # what SageMaker accepts
    assert len(meta) == limits.CUSTOMER_METADATA_PROPERTIES_MAX
    assert "test_hash" not in meta  # an empty value is left out (a value has at least one character)
    # 8 identity and location entries (no test_hash), 4 metrics, the digest and 81 hyperparameters: 49 kept
    assert meta["omitted"].startswith(f"{8 + 4 + 1 + 81 - 49} more properties")
    assert meta["hyperparameters_sha256"] == hyperparameters_digest(hyper)  # still identifies all of them
    assert spec.metadata() == meta  # deterministic
    fitted = fit_metadata([("k" * 300, "v"), ("bad key{}", "x" * 300), ("ok", "tab\tand\"quote")])
    check_metadata(fitted)
    long_key = next(k for k in fitted if k.startswith("kkk"))
    assert len(long_key) == limits.CUSTOMER_METADATA_KEY_MAX
    assert fitted["bad key__"] == "x" * 253 + "..."
    assert fitted["ok"] == "tab_and_quote"
    assert metadata_text("ねこ 猫 @ +=:/", 256) == "ねこ 猫 @ +=:/"  # letters, separators and _.:/=+-@ are kept


def test_check_metadata_refuses_what_sagemaker_refuses() -> None:
    for bad in ({}, {f"k{i}": "v" for i in range(51)}, {"k": ""}, {"k": "x" * 257}, {"k" * 129: "v"},
                {"k": "a,b"}, {"k{": "v"}):
        with pytest.raises(limits.LimitExceeded):
            check_metadata(bad)


# -- the hand-over ---------------------------------------------------------------------------------------------
def test_the_new_best_is_approved_and_the_previous_rejected(registry: SQLiteModelRegistry) -> None:
    first = hand_over(registry, PackageSpec.of(record_of("m-a-1"), "macro_f1"))
    assert (first.created, first.approved.version, first.approved.status, first.rejected) == (True, 1, APPROVED, ())
    second = hand_over(registry, PackageSpec.of(record_of("m-b-2", f1=0.95), "macro_f1"))
    assert (second.created, second.approved.version, [p.version for p in second.rejected]) == (True, 2, [1])
    assert second.text() == "model registry: trial m-b-2 registered as version 2, Approved; version 1 (m-a-1) Rejected"
    packages = registry.packages("Cats")  # experiment names are case-insensitive
    assert [(p.version, p.trial, p.status) for p in packages] == [(1, "m-a-1", REJECTED), (2, "m-b-2", APPROVED)]
    assert approved(packages) == packages[1]
    assert packages[1].metric == "macro_f1" and packages[1].value == pytest.approx(0.95)
    assert packages[1].metadata["trial"] == "m-b-2" and packages[1].model_location.endswith("m-b-2/model.tar.gz")
    assert registry.experiments() == ["cats"]


def test_a_replayed_hand_over_registers_nothing_twice(registry: SQLiteModelRegistry) -> None:
    spec = PackageSpec.of(record_of("m-a-1"), "macro_f1")
    hand_over(registry, spec)
    again = hand_over(registry, spec)
    assert (again.created, again.approved.version, again.rejected) == (False, 1, ())
    assert len(registry.packages("cats")) == 1


def test_a_retry_completes_a_half_done_hand_over(registry: SQLiteModelRegistry) -> None:
    """The new version was created, then the call died before the previous one was rejected."""
    hand_over(registry, PackageSpec.of(record_of("m-a-1"), "macro_f1"))
    new = PackageSpec.of(record_of("m-b-2"), "macro_f1")
    registry.register(new)
    assert [p.status for p in registry.packages("cats")] == [APPROVED, APPROVED]
    assert approved(registry.packages("cats")).trial == "m-b-2"  # the newest approved is the best meanwhile
    done = hand_over(registry, new)
    assert (done.created, [p.version for p in done.rejected]) == (False, [1])
    assert [p.status for p in registry.packages("cats")] == [REJECTED, APPROVED]


def test_a_rejected_version_of_the_trial_is_approved_again(registry: SQLiteModelRegistry) -> None:
    hand_over(registry, PackageSpec.of(record_of("m-a-1"), "macro_f1"))
    [package] = registry.packages("cats")
    registry.set_status(package, REJECTED, "by hand")
    done = hand_over(registry, PackageSpec.of(record_of("m-a-1"), "macro_f1"))
    assert (done.created, done.approved.status) == (False, APPROVED)
    assert [p.status for p in registry.packages("cats")] == [APPROVED]


def test_the_database_holds_one_package_per_trial(registry: SQLiteModelRegistry) -> None:
    import sqlite3

    spec = PackageSpec.of(record_of("m-a-1"), "macro_f1")
    registry.register(spec)
    with pytest.raises(sqlite3.IntegrityError):
        registry.register(spec)


# -- RecordResults registers when the flag moves, and only then ---------------------------------------------------
@pytest.fixture
def world(tmp_path: Path) -> World:
    w = World(tmp_path)
    w.registry = SQLiteModelRegistry(w.experiments._db, clock=lambda: T0)  # type: ignore[attr-defined]
    w.deps.registry = w.registry  # type: ignore[attr-defined]
    return w


def statuses(world: World) -> list[tuple[int, str, str]]:
    return [(p.version, p.trial, p.status) for p in world.registry.packages("cats")]  # type: ignore[attr-defined]


def test_record_results_hands_over_when_the_flag_moves_and_not_when_it_stays(world: World) -> None:
    a, b, c = (run_state(f"m-{x}-000000000000000{i}") for i, x in enumerate("abc", 1))
    first = world.finish(a, wrong=2)
    assert first["model_package"] == {"version": 1, "status": APPROVED, "created": True, "arn": "", "rejected": []}
    assert f"model registry: trial {a['trial']} registered as version 1, Approved" in first["message"]
    second = world.finish(b, wrong=0)  # better: the flag moves
    assert second["verdict"] == "moved" and second["model_package"]["rejected"] == [1]
    assert statuses(world) == [(1, a["trial"], REJECTED), (2, b["trial"], APPROVED)]
    third = world.finish(c, wrong=3)  # worse: the flag stays, nothing is registered
    assert third["verdict"] == "kept" and "model_package" not in third and "model registry" not in third["message"]
    assert statuses(world) == [(1, a["trial"], REJECTED), (2, b["trial"], APPROVED)]
    retried = world.call("succeeded", b)  # a retried RecordResults: the same package, nothing new
    assert (retried["verdict"], retried["model_package"]["created"], retried["model_package"]["version"]) == (
        "already-best", False, 2)
    assert len(statuses(world)) == 2
    package = world.registry.packages("cats")[1]  # type: ignore[attr-defined]
    assert package.value == pytest.approx(score(0)) and package.metadata["trial"] == b["trial"]


def test_the_champion_decision_hands_over_too(world: World) -> None:
    """A challenger on another test set wins after the champion was re-scored on its test split."""
    old = run_state("m-old-0000000000000001", test_hash="1" * 64)
    new = run_state("m-new-0000000000000002", test_hash="2" * 64)
    world.finish(old, wrong=1)
    pending = world.finish(new, wrong=0)
    assert pending["verdict"] == "rescore" and "model_package" not in pending
    assert statuses(world) == [(1, old["trial"], APPROVED)]
    rescore = pending["rescore"]
    new.setdefault("results", {})["record"] = {"trial": pending}
    world.evaluate(new, wrong=3, job_name=rescore["job_name"], output=rescore["output_s3_uri"])
    decided = world.call("champion", new)
    assert decided["verdict"] == "moved" and decided["model_package"]["version"] == 2
    assert statuses(world) == [(1, old["trial"], REJECTED), (2, new["trial"], APPROVED)]


def test_without_a_registry_nothing_is_registered(tmp_path: Path) -> None:
    plain = World(tmp_path)
    answer = plain.finish(run_state("m-a-0000000000000001"), wrong=0)
    assert answer["is_best"] and "model_package" not in answer
    assert SQLiteModelRegistry(plain.experiments._db).packages("cats") == []  # type: ignore[attr-defined]


class BrokenRegistry(SQLiteModelRegistry):
    """The registry refuses to register once (SageMaker down, or a permission missing)."""

    def __init__(self, base: SQLiteModelRegistry) -> None:
        super().__init__(base._db, clock=lambda: T0)
        self.failures = 1

    def register(self, spec: PackageSpec):  # type: ignore[no-untyped-def]
        if self.failures:
            self.failures -= 1
            raise RuntimeError("AccessDeniedException: not authorized to perform sagemaker:CreateModelPackage")
        return super().register(spec)


def test_a_registry_failure_fails_the_record_loudly_and_a_retry_completes_it(world: World) -> None:
    """The decision is stored before the hand-over: the flag stays with the trial, and the retry registers it."""
    run = run_state("m-a-0000000000000001")
    world.deps.registry = BrokenRegistry(world.registry)  # type: ignore[attr-defined]
    world.call("started", run)
    world.evaluate(run, wrong=1)
    with pytest.raises(RuntimeError, match="CreateModelPackage"):
        world.call("succeeded", run)
    [trial] = world.experiments.list_trials("cats")
    assert trial.status == "Completed" and trial.is_best
    assert statuses(world) == []
    retried = world.call("succeeded", run)
    assert retried["verdict"] == "already-best" and retried["model_package"]["created"] is True
    assert statuses(world) == [(1, run["trial"], APPROVED)]


def test_an_older_database_gets_the_registry_table_when_opened(tmp_path: Path) -> None:
    """A root made before the registry existed: opening it creates model_packages, its trials untouched."""
    path = tmp_path / "nyanops.db"
    old = connect(path)
    old.execute("INSERT INTO trials (experiment, experiment_key, trial, status) "
                "VALUES ('cats', 'cats', 't1', 'Completed')")
    old.execute("DROP TABLE model_packages")
    old.close()
    db = connect(path)
    assert SQLiteModelRegistry(db).packages("cats") == []
    assert db.execute("SELECT trial FROM trials").fetchone()["trial"] == "t1"


def test_the_answer_passes_the_registry_line_on_to_the_comparison(world: World) -> None:
    a, b = (run_state(f"m-{x}-000000000000000{i}") for i, x in enumerate("ab", 1))
    first = world.finish(a, wrong=1)
    assert first["registry"] == f"model registry: trial {a['trial']} registered as version 1, Approved"
    kept = world.finish(b, wrong=3)  # worse: nothing registered, and nothing to pass on
    assert kept["verdict"] == "kept" and kept["registry"] == ""


class FlagMovedMeanwhile:
    """The experiment store as seen when another trial's record took (or cleared) the best flag between this
    trial's decision and its hand-over: the second decision session of a call shows the flag with ``holder``."""

    def __init__(self, store: Any, holder: str | None) -> None:
        self.store, self.holder, self.sessions = store, holder, 0

    @contextmanager
    def decision(self, experiment: str) -> Iterator[Any]:
        with self.store.decision(experiment) as session:
            self.sessions += 1
            yield session if self.sessions == 1 else Moved(session, self.holder)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


class Moved:
    def __init__(self, session: Any, holder: str | None) -> None:
        self.session, self.holder = session, holder

    def trials(self) -> list[TrialRecord]:
        return [replace(r, is_best=r.trial == self.holder) for r in self.session.trials()]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.session, name)


@pytest.mark.parametrize("holder", ["m-other-0000000000000009", None], ids=["taken", "cleared"])
def test_no_hand_over_when_the_flag_left_the_trial_before_it(world: World, holder: str | None) -> None:
    run = run_state("m-a-0000000000000001")
    world.call("started", run)
    world.evaluate(run, wrong=1)
    world.deps.experiments = FlagMovedMeanwhile(world.experiments, holder)
    answer = world.call("succeeded", run)
    assert answer["is_best"] and "model_package" not in answer and answer["registry"] == ""
    assert statuses(world) == []
