"""Step Functions on AWS: the core's ``ExecutionStarter`` port over a client created once by the caller."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from nyanops.core.ports import StartResult


class StepFunctionsStarter:
    def __init__(self, client: Any, state_machine_arn: str) -> None:
        self._sfn = client
        self._arn = state_machine_arn

    def start(self, name: str, execution_input: dict[str, Any]) -> StartResult:
        # StartExecution is idempotent for Standard workflows: the same name and input while the first
        # run is still going returns that run instead of ExecutionAlreadyExists. Ask first, so a
        # redelivered event is reported (and counted) as a duplicate, not as a second start.
        arn = execution_arn(self._arn, name)
        try:
            self._sfn.describe_execution(executionArn=arn)
            return StartResult(name, started=False, execution_id=arn)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ExecutionDoesNotExist":
                raise
        try:
            r = self._sfn.start_execution(stateMachineArn=self._arn, name=name, input=json.dumps(execution_input))
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ExecutionAlreadyExists":
                return StartResult(name, started=False, execution_id=arn)
            raise
        return StartResult(name, started=True, execution_id=r["executionArn"])


def execution_arn(state_machine_arn: str, name: str) -> str:
    """``arn:…:stateMachine:<machine>`` → ``arn:…:execution:<machine>:<name>``."""
    head, sep, machine = state_machine_arn.rpartition(":stateMachine:")
    if not sep:
        raise ValueError(f"not a state machine ARN: {state_machine_arn}")
    return f"{head}:execution:{machine}:{name}"
