"""Exceptions of the local ASL executor: definition errors (load time) and States errors (run time)."""

from __future__ import annotations

# Error names defined by the Amazon States Language (Appendix A) that the executor itself raises.
STATES_ALL = "States.ALL"
STATES_RUNTIME = "States.Runtime"
STATES_DATA_LIMIT_EXCEEDED = "States.DataLimitExceeded"
STATES_TASK_FAILED = "States.TaskFailed"
STATES_TIMEOUT = "States.Timeout"
STATES_RESULT_PATH_MATCH_FAILURE = "States.ResultPathMatchFailure"
STATES_NO_CHOICE_MATCHED = "States.NoChoiceMatched"
STATES_INTRINSIC_FAILURE = "States.IntrinsicFailure"

# Errors that no Retrier or Catcher handles, not even States.ALL: they always fail the execution.
TERMINAL_ERRORS = frozenset({STATES_RUNTIME, STATES_DATA_LIMIT_EXCEEDED})


class DefinitionError(Exception):
    """A state machine definition could not be loaded; the message names the state and the field."""


class InvalidDefinition(DefinitionError):
    """The definition is not valid Amazon States Language (it would be refused by Step Functions too)."""


class UnsupportedDefinition(DefinitionError):
    """The definition is valid ASL but uses a construct the local executor does not implement."""


class StatesError(Exception):
    """A named error raised while a state runs (the ``Error``/``Cause`` pair of Step Functions)."""

    def __init__(self, error: str, cause: str | None = None) -> None:
        super().__init__(f"{error}: {cause}" if cause else error)
        self.error = error
        self.cause = cause


class TaskFailed(StatesError):
    """Raised by a TaskRunner to fail a Task state with a named error, e.g. ``SageMaker.ThrottlingException``."""

    def __init__(self, error: str, cause: str = "") -> None:
        super().__init__(error, cause)
