"""The SageMaker Experiments store's own logic with a scripted client: how SageMaker's answers are classified,
throttling backed off, pages followed, idempotent registration step by step, and a trial component read back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from nyanops.aws import sagemaker_experiments as se
from nyanops.aws.experiment_lock import DynamoExperimentLock
from nyanops.aws.sagemaker_experiments import ExperimentsThrottled, SageMakerExperimentStore, record_from_component
from nyanops.core import limits
from nyanops.core.experiments import TrialRecord, TrialResult, TrialStart

T0 = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)


def error(code: str, message: str = "") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "Op")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("code", "message", "exists", "associated", "not_found"),
    [
        ("ResourceInUse", "Experiment cats already exists", True, True, False),
        ("ValidationException", "Trial m-x already Exists", True, True, False),
        ("ValidationException", "component is already associated with the trial", False, True, False),
        ("ValidationException", "Experiment 'cats' does NOT exist", True, False, True),
        ("ResourceNotFound", "whatever", False, False, True),
        ("ValidationException", "1 validation error detected", False, False, False),
        ("AccessDeniedException", "not authorized; already exists", False, False, False),
        ("ThrottlingException", "Rate exceeded", False, False, False),
    ],
)
def test_answers_are_classified(code: str, message: str, exists: bool, associated: bool, not_found: bool) -> None:
    exc = error(code, message)
    assert (se._already_exists(exc), se._already_associated(exc), se._not_found(exc)) == (exists, associated,
                                                                                           not_found)


def test_an_answer_without_an_error_block_is_nothing_known() -> None:
    exc = ClientError({}, "Op")  # type: ignore[arg-type]
    assert (se._code(exc), se._message(exc)) == ("", "")
    assert not (se._already_exists(exc) or se._already_associated(exc) or se._not_found(exc))


class Scripted:
    """A SageMaker client: each operation answers from its script (an exception is raised), then ``ok``."""

    def __init__(self, **scripts: list[Any]) -> None:
        self.scripts = scripts
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, operation: str) -> Any:
        def call(**kwargs: Any) -> Any:
            self.calls.append((operation, kwargs))
            script = self.scripts.get(operation, [])
            answer = script.pop(0) if script else {}
            if isinstance(answer, Exception):
                raise answer
            return answer

        return call


def test_throttling_is_backed_off_then_given_up() -> None:
    sleeps: list[float] = []
    client = Scripted(create_trial=[error(code) for code in sorted(se.THROTTLING_CODES)] * 2)
    store = SageMakerExperimentStore(client, sleep=sleeps.append)
    with pytest.raises(ExperimentsThrottled, match="SageMaker throttled create_trial 6 times; retry later"):
        store.call("create_trial", TrialName="t")
    assert sleeps == [0.5, 1.0, 2.0, 4.0, 8.0] and len(client.calls) == 6


def test_throttling_once_is_absorbed_and_other_errors_are_raised_at_once() -> None:
    sleeps: list[float] = []
    store = SageMakerExperimentStore(Scripted(create_trial=[error("ThrottlingException"), {"TrialArn": "a"}]),
                                     sleep=sleeps.append)
    assert store.call("create_trial", TrialName="t") == {"TrialArn": "a"} and sleeps == [0.5]
    client = Scripted(create_trial=[error("ValidationException", "bad name")])
    with pytest.raises(ClientError):
        SageMakerExperimentStore(client, sleep=sleeps.append).call("create_trial", TrialName="t")
    assert len(client.calls) == 1


def a_start() -> TrialStart:
    return TrialStart("cats", "m-x", "m-x", "ds", "h", "c", "", {}, "manifests/x.json", T0)


def test_registration_completes_what_an_earlier_attempt_left() -> None:
    """Experiment, trial and component exist already (an attempt that failed before associating): the retry
    creates nothing twice and associates."""
    client = Scripted(create_trial=[error("ResourceInUse", "Trial already exists")],
                      create_trial_component=[error("ValidationException", "component already exists")])
    SageMakerExperimentStore(client).start_trial(a_start())
    assert [op for op, _ in client.calls] == ["describe_experiment", "create_trial", "create_trial_component",
                                              "associate_trial_component"]
    assert client.calls[-1][1] == {"TrialComponentName": "m-x-results", "TrialName": "m-x"}


def test_registration_of_a_new_experiment() -> None:
    client = Scripted(describe_experiment=[error("ResourceNotFound", "no such experiment")],
                      associate_trial_component=[error("ValidationException", "is already associated")])
    SageMakerExperimentStore(client).start_trial(a_start())
    assert [op for op, _ in client.calls] == ["describe_experiment", "create_experiment", "create_trial",
                                              "create_trial_component", "associate_trial_component"]
    assert client.calls[1][1] == {"ExperimentName": "cats", "DisplayName": "cats", "Description": "nyanops experiment"}
    component = client.calls[3][1]
    assert component["Status"] == {"PrimaryStatus": "InProgress", "Message": "training"}
    assert component["StartTime"] == T0 and component["DisplayName"] == "Results"


def test_an_experiment_created_by_another_run_at_the_same_moment() -> None:
    client = Scripted(describe_experiment=[error("ResourceNotFound")],
                      create_experiment=[error("ResourceInUse", "Experiment already exists")])
    SageMakerExperimentStore(client).start_trial(a_start())
    assert [op for op, _ in client.calls][-1] == "associate_trial_component"


@pytest.mark.parametrize("operation", ["describe_experiment", "create_trial", "create_trial_component",
                                       "associate_trial_component"])
def test_other_errors_while_registering_are_raised(operation: str) -> None:
    client = Scripted(**{operation: [error("AccessDeniedException", "not authorized")]})
    with pytest.raises(ClientError, match="not authorized"):
        SageMakerExperimentStore(client).start_trial(a_start())


def test_a_store_opened_for_reading_cannot_write() -> None:
    store = SageMakerExperimentStore(Scripted())
    with pytest.raises(RuntimeError, match="opened for reading"), store.decision("cats"):
        pass


def test_pages_are_followed() -> None:
    client = Scripted(
        list_experiments=[{"ExperimentSummaries": [{"ExperimentName": "a"}], "NextToken": "n1"},
                          {"ExperimentSummaries": [{"ExperimentName": "b"}]}],
        list_trials=[{"TrialSummaries": [{"TrialName": "a1"}], "NextToken": "p"}, {"TrialSummaries": []},
                     error("ResourceNotFound", "experiment gone")],
        describe_trial_component=[{"Status": {"PrimaryStatus": "Completed"}, "Parameters": {}},
                                  error("ValidationException", "component does not exist")],
    )
    records = SageMakerExperimentStore(client).list_trials()
    assert [(r.experiment, r.trial, r.status) for r in records] == [("a", "a1", "Completed")]
    kwargs = [k for op, k in client.calls if op in ("list_experiments", "list_trials")]
    assert kwargs == [{}, {"NextToken": "n1"}, {"ExperimentName": "a"}, {"ExperimentName": "a", "NextToken": "p"},
                      {"ExperimentName": "b"}]


def test_a_trial_component_is_read_back() -> None:
    d = {
        "StartTime": T0,
        "Parameters": {
            "dataset_id": {"StringValue": "ds"}, "comment": {"StringValue": "c"},
            "hp:epochs": {"NumberValue": 10.0}, "hp:lr": {"NumberValue": 0.01}, "hp:augment": {"StringValue": "true"},
            "hp:tta": {"StringValue": "false"}, "hp:arch": {"StringValue": "resnet18"}, "hp:odd": {},
            "macro_f1": {"NumberValue": 0.5}, "accuracy": {"StringValue": "0.7"}, "f1": {"NumberValue": 0.5},
            "is_best": {"NumberValue": 1.0}, "error": {"StringValue": "e" * 3000},
            "champion_value": {"NumberValue": 0.25}, "best_epoch": {"NumberValue": 4.0},
        },
    }
    record = record_from_component("cats", "m-x", d)
    assert record == TrialRecord(
        experiment="cats", trial="m-x", status="Unknown", started_at=T0, finished_at=None, dataset_id="ds",
        comment="c", hyperparameters={"epochs": 10, "lr": 0.01, "augment": True, "tta": False, "arch": "resnet18",
                                      "odd": ""},
        metrics={"macro_f1": 0.5}, is_best=True, error=record.error, champion_value=0.25, best_epoch=4,
    )
    assert len(record.error) == 2000 and record.error.endswith(" [...]")
    assert isinstance(record.hyperparameters["epochs"], int) and isinstance(record.best_epoch, int)
    assert record_from_component("cats", "m-x", {"Parameters": {"is_best": {"NumberValue": 0.0}}}).is_best is False
    assert record_from_component("cats", "m-x", {}).hyperparameters == {}


# -- found by mutation testing ------------------------------------------------------------------------------
def test_an_account_without_experiments_lists_no_trials() -> None:
    """SageMaker may leave ``ExperimentSummaries`` out of an empty page."""
    assert SageMakerExperimentStore(Scripted(list_experiments=[{}])).list_trials() == []


def test_the_parameters_of_a_component_that_does_not_exist_are_none() -> None:
    client = Scripted(describe_trial_component=[error("ResourceNotFound", "no such component"),
                                                error("AccessDeniedException", "not authorized")])
    store = SageMakerExperimentStore(client)
    assert store.parameters("m-gone") == {}
    with pytest.raises(ClientError, match="not authorized"):
        store.parameters("m-x")


def test_a_failure_that_would_not_fit_the_component_is_refused_before_sagemaker_sees_it() -> None:
    full = {f"hp:p{i}": {"NumberValue": 1.0} for i in range(limits.TRIAL_COMPONENT_PARAMETERS_MAX - 1)}
    client = Scripted(describe_trial_component=[{"Status": {"PrimaryStatus": "InProgress"}, "Parameters": full}])
    store = SageMakerExperimentStore(client, DynamoExperimentLock(Scripted(), "locks"))
    with pytest.raises(limits.LimitExceeded, match="301 parameters, more than SageMaker's 300"):
        store.fail_trial("cats", "m-x", "boom", T0)
    assert [op for op, _ in client.calls] == ["describe_trial_component"]


def test_a_completed_component_shows_its_model_and_evaluation_and_drops_an_earlier_error() -> None:
    client = Scripted(describe_trial_component=[{"Parameters": {"dataset_id": {"StringValue": "ds"},
                                                                "error": {"StringValue": "an earlier attempt"}}}])
    result = TrialResult({"macro_f1": 0.5}, {}, "s3://b/model.tar.gz", "s3://b/evaluation.json", T0)
    se.SageMakerSession(SageMakerExperimentStore(client), "cats").complete("m-x", result)
    [(describe, asked), (update, written)] = client.calls
    assert (describe, asked, update) == (
        "describe_trial_component", {"TrialComponentName": "m-x-results"}, "update_trial_component")
    assert written["TrialComponentName"] == "m-x-results" and written["EndTime"] == T0
    assert written["Status"] == {"PrimaryStatus": "Completed", "Message": "evaluated"}
    assert written["OutputArtifacts"] == {
        "model": {"Value": "s3://b/model.tar.gz", "MediaType": "application/x-tar"},
        "evaluation": {"Value": "s3://b/evaluation.json", "MediaType": "application/json"},
    }
    assert written["Parameters"]["dataset_id"] == {"StringValue": "ds"} and "error" not in written["Parameters"]


def test_a_trial_is_created_under_its_own_name_in_the_console() -> None:
    client = Scripted()
    SageMakerExperimentStore(client).start_trial(a_start())
    assert [k for op, k in client.calls if op == "create_trial"] == [
        {"TrialName": "m-x", "ExperimentName": "cats", "DisplayName": "m-x"}]


def test_a_reading_store_says_why_it_cannot_write() -> None:
    with pytest.raises(RuntimeError) as caught, SageMakerExperimentStore(Scripted()).decision("cats"):
        pass
    assert str(caught.value) == "this SageMakerExperimentStore was opened for reading (no experiment lock)"


def test_empty_trial_pages_and_vanished_components_are_skipped() -> None:
    client = Scripted(
        list_experiments=[{"ExperimentSummaries": [{"ExperimentName": "a"}, {"ExperimentName": "b"}]}],
        list_trials=[{}, {"TrialSummaries": [{"TrialName": "b1"}, {"TrialName": "b2"}]}],
        describe_trial_component=[error("ResourceNotFound", "component gone"),
                                  {"Status": {"PrimaryStatus": "Completed"}, "Parameters": {}}],
    )
    records = SageMakerExperimentStore(client).list_trials()
    assert [(r.experiment, r.trial) for r in records] == [("b", "b2")]
