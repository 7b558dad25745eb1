"""The error every part of the CLI raises for a problem the user can fix (printed as one line, no
traceback), and the exit statuses: 0 done, 1 a run failed, 2 bad input or a refusal, 130 interrupted."""

from __future__ import annotations

EXIT_OK, EXIT_RUN_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


class CliError(Exception):
    """A problem the user can fix; printed without a traceback."""

    def __init__(self, message: str, code: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message)
        self.code = code
