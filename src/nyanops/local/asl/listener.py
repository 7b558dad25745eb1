"""Observing an execution: the listener interface, and the history events it and ExecutionResult carry."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol


class ExecutionListener(Protocol):
    """Receives an execution's progress as it happens (e.g. to persist the history); all methods return None.

    The iterations of a Map state run in threads of their own, so the calls may come from several threads, but
    never two at once: the executor makes them one at a time (see Serialized).
    """

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


class Serialized:
    """Forwards every method call to ``target`` while holding ``lock``, so that calls made from several
    threads reach it one at a time (the executor wraps its listener in one; the local pipeline wraps its
    display, which job output also writes to)."""

    def __init__(self, target: Any, lock: threading.RLock | None = None) -> None:
        self._target = target
        self._lock = lock or threading.RLock()

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._target, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return method(*args, **kwargs)

        return call
