"""The SageMaker job contract shared by train.py and evaluation.py: paths with fallbacks, boolean
hyperparameters, the one-line failure reason, and exit codes.

SageMaker passes hyperparameters as ``--name value`` strings. A failed job's one-line reason goes where
its job type reads it: a training job's ``FailureReason`` comes from ``/opt/ml/output/failure``; a
processing job's ``ExitMessage`` (DescribeProcessingJob, first 1 KB, UTF-8) from ``/opt/ml/output/message``
(its ``FailureReason`` stays SageMaker's generic text). Outside a container the same scripts run with
local fallbacks (``SM_OUTPUT_DIR`` or ``--failure-file``).
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable, Sequence

from hyperparameters import str_to_bool

EXIT_INPUT_ERROR = 2
EXIT_FAILURE = 1
SAGEMAKER_OUTPUT_DIR = "/opt/ml/output"
TRAINING_REASON_FILE = "failure"  # -> DescribeTrainingJob FailureReason
PROCESSING_REASON_FILE = "message"  # -> DescribeProcessingJob ExitMessage


class InputError(Exception):
    """Bad input the user can fix (a file, a folder, an argument); the message says what and how."""


def str2bool(value: str | bool) -> bool:
    """argparse type for SageMaker's string hyperparameters: true/false/1/0/yes/no (any case), parsed by the
    hyperparameter table's own rule."""
    try:
        return str_to_bool(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def bounded(kind: type, low: float | None = None, high: float | None = None, low_open: bool = False):
    """argparse type: ``kind`` (int or float) within [low, high] (or (low, high] with ``low_open``)."""

    def parse(value: str):
        try:
            number = kind(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind.__name__}, got {value!r}") from None
        if low is not None and (number <= low if low_open else number < low):
            raise argparse.ArgumentTypeError(f"must be {'>' if low_open else '>='} {low}, got {value}")
        if high is not None and number > high:
            raise argparse.ArgumentTypeError(f"must be <= {high}, got {value}")
        return number

    parse.__name__ = kind.__name__
    return parse


def env_path(*names: str, default: str | None = None) -> str | None:
    """The first of the environment variables ``names`` that is set, else ``default``."""
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return default


def in_container_default(container_path: str, local_fallback: str | None) -> str | None:
    """``container_path`` when its parent exists (inside SageMaker), else ``local_fallback``."""
    return container_path if os.path.isdir(os.path.dirname(container_path.rstrip("/"))) else local_fallback


def default_failure_file(name: str = TRAINING_REASON_FILE) -> str | None:
    """Where SageMaker reads a failed job's reason from (``name``: failure or message), when that place exists."""
    explicit = os.environ.get("SM_OUTPUT_DIR")
    if explicit:
        return os.path.join(explicit, name)
    if os.path.isdir(SAGEMAKER_OUTPUT_DIR):
        return os.path.join(SAGEMAKER_OUTPUT_DIR, name)
    return None


def write_failure(message: str, failure_file: str | None) -> None:
    if not failure_file:
        return
    try:
        os.makedirs(os.path.dirname(os.path.abspath(failure_file)), exist_ok=True)
        with open(failure_file, "w", encoding="utf-8") as fh:  # SageMaker keeps the first 1 KB, UTF-8
            fh.write(message.encode("utf-8")[:1023].decode("utf-8", errors="ignore") + "\n")
    except OSError as exc:  # the failure reason is best effort; the exit status still reports failure
        print(f"warning: cannot write failure reason to {failure_file}: {exc}", file=sys.stderr)


def run_job(
    main: Callable[[argparse.Namespace], object],
    parse_args: Callable[[Sequence[str] | None], argparse.Namespace],
    argv: Sequence[str] | None = None,
    reason_file: str = TRAINING_REASON_FILE,
) -> int:
    """Parse ``argv``, run ``main``; turn failures into one stderr line, the reason file and an exit code.

    ``reason_file`` is the file name SageMaker reads the reason from for this job type (failure for a
    training job, message for a processing job). Input errors (exit 2) print only the line. Other
    failures (exit 1) print the traceback first, then the line, so the last line always says what went wrong.
    """
    args = parse_args(argv)
    failure_file = getattr(args, "failure_file", None) or default_failure_file(reason_file)
    try:
        main(args)
    except InputError as exc:
        message = f"error: {exc}"
        code = EXIT_INPUT_ERROR
    except KeyboardInterrupt:
        message, code = "error: interrupted", EXIT_FAILURE
    except Exception as exc:
        traceback.print_exc()
        message = f"error: {exc.__class__.__name__}: {exc}"
        code = EXIT_FAILURE
    else:
        return 0
    print(message, file=sys.stderr, flush=True)
    write_failure(message, failure_file)
    return code
