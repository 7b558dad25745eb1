"""The moto side of the record corpus (``tests/reliability/sides.py`` has the interface and the local side)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from reliability.corpus import BASE_OBJECTS
from reliability.sides import at_once

from nyanops.aws.sagemaker_experiments import SageMakerExperimentStore
from nyanops.core import layout
from nyanops.core.execution_input import trial_run
from nyanops.core.experiments import TrialRecord

from .conftest import World


class MotoSide:
    name = "moto"
    keeps_versions = True

    def __init__(self, world: World, context: Any) -> None:
        self.world, self.context = world, context
        for key, body in BASE_OBJECTS:
            world.put(key, body)
        self._reads: list[str] = []
        store = world.handlers[0].get_deps().store
        original = store.get

        def spy(key: str, version_id: str | None = None) -> bytes:
            self._reads.append(key)
            return original(key, version_id)

        store.get = spy
        self._sequence = 0

    def put(self, key: str, body: bytes) -> dict[str, Any]:
        info = self.world.put(key, body)
        self._sequence += 1
        event = self.world.eventbridge(key, info)
        event["detail"]["object"]["sequencer"] = f"0062E99A88DC4074{self._sequence:02X}"
        return event

    def send(self, event: dict[str, Any]) -> dict[str, Any]:
        [result] = self.world.handlers[0].lambda_handler(event, self.context)["results"]
        return result

    def refusal(self, key: str) -> dict[str, Any] | None:
        if layout.rejection_key(key) not in self.world.keys(layout.rejection_key(key)):
            return None
        return json.loads(self.world.get(layout.rejection_key(key)))

    def keys(self, prefix: str) -> list[str]:
        return self.world.keys(prefix)

    def notifications(self) -> list[tuple[str, str]]:
        return self.world.notifications()

    def executions(self) -> list[str]:
        return [e["name"] for e in self.world.executions()]

    def reads(self) -> list[str]:
        return list(self._reads)

    def run_input(self, execution: str) -> dict[str, Any]:
        arn = next(e["executionArn"] for e in self.world.executions() if e["name"] == execution)
        execution_input = json.loads(self.world.sfn.describe_execution(executionArn=arn)["input"])
        return trial_run(execution_input, 0)  # the state the run's (first) trial's states get

    def record(self, mode: str, run: dict[str, Any]) -> dict[str, Any]:
        return self.world.handlers[1].lambda_handler({"mode": mode, "run": run}, self.context)

    def evaluate(self, run: dict[str, Any], body: bytes, *, started: datetime | None = None,
                 ended: datetime | None = None, status: str = "Completed", exit_message: str = "",
                 rescore: dict[str, Any] | None = None) -> None:
        begin = started or datetime.now(UTC) - timedelta(seconds=1)
        job = rescore or run["evaluation"]
        self.world.put(layout.parse_s3_uri(job["output_s3_uri"].rstrip("/") + "/evaluation.json")[1], body)
        self.world.processing_job(job["job_name"], job["output_s3_uri"], started=begin, ended=ended, status=status,
                                  exit_message=exit_message)

    def trials(self, experiment: str) -> list[TrialRecord]:
        return SageMakerExperimentStore(self.world.sm).list_trials(experiment)

    def experiments(self) -> list[str]:
        return sorted(e["ExperimentName"] for e in self.world.sm.list_experiments()["ExperimentSummaries"])

    def record_at_once(self, mode: str, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        handler = self.world.handlers[1]
        return at_once([lambda run=run: handler.lambda_handler({"mode": mode, "run": run}, self.context)
                        for run in runs])
