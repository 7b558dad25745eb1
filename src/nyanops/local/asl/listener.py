"""Observing an execution: the listener interface, and the history events it and ExecutionResult carry."""

from __future__ import annotations

from typing import Any, Protocol


class ExecutionListener(Protocol):
    """Receives an execution's progress as it happens (e.g. to persist the history); all methods return None."""

    def execution_started(self, name: str, input: Any) -> None:
        """The execution started with ``input``."""

    def state_entered(self, state_name: str, state_type: str, input: Any) -> None:
        """A state was entered with its raw input."""

    def state_exited(self, state_name: str, output: Any) -> None:
        """A state finished (normally, or through a Catch) with ``output``."""

    def state_failed(self, state_name: str, error: str, cause: str | None) -> None:
        """An attempt of a state failed (it may still be retried or caught) or a Fail state was reached."""

    def state_retry(self, state_name: str, error: str, cause: str | None, attempt: int, delay_seconds: float) -> None:
        """A failed state will run again (retry number ``attempt``, from 1) after ``delay_seconds``."""

    def state_caught(self, state_name: str, error: str, next_state: str) -> None:
        """A Catcher handled the state's error and the execution goes on at ``next_state``."""

    def execution_succeeded(self, output: Any) -> None:
        """The execution succeeded with ``output``."""

    def execution_failed(self, error: str | None, cause: str | None) -> None:
        """The execution failed."""

    def execution_aborted(self, reason: str) -> None:
        """The execution was interrupted (KeyboardInterrupt / SystemExit), which then propagates."""

    def history_event(self, event: dict[str, Any]) -> None:
        """Every history event (with its id and ISO timestamp), as also collected in ExecutionResult.history."""


class NullListener:
    """A listener that ignores everything; subclass it and override only what you need."""

    def execution_started(self, name: str, input: Any) -> None:
        """Ignored."""

    def state_entered(self, state_name: str, state_type: str, input: Any) -> None:
        """Ignored."""

    def state_exited(self, state_name: str, output: Any) -> None:
        """Ignored."""

    def state_failed(self, state_name: str, error: str, cause: str | None) -> None:
        """Ignored."""

    def state_retry(self, state_name: str, error: str, cause: str | None, attempt: int, delay_seconds: float) -> None:
        """Ignored."""

    def state_caught(self, state_name: str, error: str, next_state: str) -> None:
        """Ignored."""

    def execution_succeeded(self, output: Any) -> None:
        """Ignored."""

    def execution_failed(self, error: str | None, cause: str | None) -> None:
        """Ignored."""

    def execution_aborted(self, reason: str) -> None:
        """Ignored."""

    def history_event(self, event: dict[str, Any]) -> None:
        """Ignored."""
