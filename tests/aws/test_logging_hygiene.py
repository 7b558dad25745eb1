"""No secret and no full event body reaches the logs: both handlers run on moto with Powertools at DEBUG,
with marker values in the parts of the event (and the environment) that must never be logged."""

from __future__ import annotations

import copy
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import EXAMPLE_MANIFEST, World

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
MARKERS = {
    "AWS_SECRET_ACCESS_KEY": "MARKERsecretKEY0123456789",
    "AWS_SESSION_TOKEN": "MARKERsessionTOKEN0123456789",
    "AWS_ACCESS_KEY_ID": "AKIAMARKER0123456789",
}
EVENT_MARKER = "MARKERevent"


@pytest.fixture
def log_lines(world: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """Everything both handlers' Powertools loggers write, at DEBUG, plus anything logged to the root."""
    for name, value in MARKERS.items():
        monkeypatch.setenv(name, value)
    sink = io.StringIO()
    added: list[tuple[logging.Logger, logging.Handler, int]] = []
    for handler_module in world.handlers:
        powertools = handler_module.logger
        inner: logging.Logger = powertools._logger
        stream = logging.StreamHandler(sink)
        stream.setFormatter(powertools.registered_formatter)
        added.append((inner, stream, inner.level))
        inner.addHandler(stream)
        inner.setLevel(logging.DEBUG)
    root = logging.getLogger()
    root_stream = logging.StreamHandler(sink)
    added.append((root, root_stream, root.level))
    root.addHandler(root_stream)
    root.setLevel(logging.INFO)  # boto's DEBUG logs carry signed headers by design; Lambda's root is WARNING
    try:
        yield sink
    finally:
        for logger, stream, level in added:
            logger.removeHandler(stream)
            logger.setLevel(level)


def hostile_event(world: World, key: str, body: bytes) -> dict[str, Any]:
    event = world.upload_event(key, body)
    detail = event["detail"]
    detail["requester"] = f"{EVENT_MARKER}-requester"
    detail["source-ip-address"] = f"{EVENT_MARKER}-ip"
    detail["request-id"] = f"{EVENT_MARKER}-request-id"
    detail["x-amz-security-token"] = f"{EVENT_MARKER}-security-token"
    event["id"] = f"{EVENT_MARKER}-event-id"
    return event


def assert_clean(text: str) -> None:
    assert text.strip(), "nothing was logged: the capture is wrong"
    for line in text.splitlines():
        if line.startswith("{"):
            json.loads(line)  # structured logs only
    for marker in (*MARKERS.values(), EVENT_MARKER):
        assert marker not in text, f"{marker} was logged:\n{text}"
    assert '"detail"' not in text and "Object Created" not in text, "the event body was logged"


def test_start_pipeline_logs_no_event_body_or_credentials(world: World, log_lines: io.StringIO,
                                                         lambda_context: Any) -> None:
    world.put_dataset()
    world.put_code()
    body = json.dumps({**EXAMPLE_MANIFEST, "comment": f"{EVENT_MARKER} comment"}).encode()
    started = world.handlers[0].lambda_handler(hostile_event(world, "manifests/ok.json", body), lambda_context)
    assert started["results"][0]["outcome"] == "started"
    refused_body = json.dumps({**EXAMPLE_MANIFEST, "api-key": f"{EVENT_MARKER}-value"}).encode()
    refused = world.handlers[0].lambda_handler(hostile_event(world, "manifests/bad.json", refused_body),
                                               lambda_context)
    assert refused["results"][0]["outcome"] == "rejected"
    text = log_lines.getvalue()
    assert "upload handled" in text
    assert_clean(text)


def test_record_results_logs_no_run_input_or_credentials(world: World, log_lines: io.StringIO, load_event: Any,
                                                         lambda_context: Any) -> None:
    run = copy.deepcopy(load_event("record_results_success.json")["run"])
    run["comment"] = f"{EVENT_MARKER} comment"
    run["source"]["key"] = f"manifests/{EVENT_MARKER}.json"
    world.handlers[1].lambda_handler({"mode": "started", "run": run}, lambda_context)
    world.put_evaluation(run, wrong=1)
    world.handlers[1].lambda_handler({"mode": "succeeded", "run": run, "token": f"{EVENT_MARKER}"}, lambda_context)
    text = log_lines.getvalue()
    assert "trial recorded" in text
    assert_clean(text)


@pytest.mark.parametrize("name", ["start_pipeline", "record_results"])
def test_handlers_never_log_the_event(name: str) -> None:
    # POWERTOOLS_LOGGER_LOG_EVENT cannot switch event logging on: the decorator says False explicitly.
    source = (FUNCTIONS / name / "app.py").read_text()
    assert "@logger.inject_lambda_context(log_event=False)" in source
    assert "logger.info(event" not in source and "extra=event" not in source
