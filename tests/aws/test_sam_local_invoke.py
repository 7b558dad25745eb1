"""``sam local invoke FUNCTION -e EVENT --env-vars events/env.json`` for every row of the README's table,
under moto: each function gets the environment SAM CLI would give it (``sam_local_env``), the bucket gets what
the event needs (``nyanops.event_fixtures``, the same code ``nyanops invoke`` prepares a local root with), and
the handler's result carries the README's expected outcome. Generic over the template's functions and the
files in events/, so a new function or event is covered by adding its README row."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from nyanops.aws.s3_store import S3ObjectStore
from nyanops.aws.sagemaker_experiments import SageMakerExperimentStore
from nyanops.event_fixtures import Ports, needs
from nyanops.sam_template import functions, load_template

from .conftest import BUCKET, World
from .sam_local_env import EVENTS, Invocation, function_environment, load_env_vars_file, readme_invocations

TEMPLATE = load_template(Path(__file__).resolve().parents[2] / "template.yaml")
INVOCATIONS = readme_invocations()


def test_the_readme_lists_every_event_and_every_function() -> None:
    listed = [i.event for i in INVOCATIONS]
    files = sorted(f"events/{p.name}" for p in EVENTS.glob("*.json") if p.name != "env.json")
    assert sorted(listed) == files, "README's sam local invoke table must list each file in events/ once"
    assert {i.function for i in INVOCATIONS} == set(functions(TEMPLATE)), "each function needs an example event"
    readme = (EVENTS.parent / "README.md").read_text(encoding="utf-8")
    for i in INVOCATIONS:
        assert f"sam local invoke {i.function} -e {i.event} --env-vars events/env.json" in readme
        assert f"nyanops invoke {i.function} --event {i.event}" in readme


@pytest.mark.parametrize("function", sorted(functions(TEMPLATE)))
def test_without_the_env_file_sam_gives_logical_ids_and_with_it_none(function: str) -> None:
    resources = set(TEMPLATE["Resources"])
    bare = function_environment(TEMPLATE, function)
    with_file = function_environment(TEMPLATE, function, load_env_vars_file())
    assert {v for v in with_file.values() if v in resources} == set(), with_file
    if function == "StartPipelineFunction":  # the reported symptom, for the record
        assert bare["BUCKET_NAME"] == "DataBucket" and bare["STATE_MACHINE_ARN"] == "TrainingPipeline"


@pytest.mark.parametrize("invocation", INVOCATIONS, ids=lambda i: f"{i.function}-{Path(i.event).stem}")
def test_each_example_event_reaches_its_outcome_with_the_sam_environment(
    invocation: Invocation, world: World, load_handler: Any, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = functions(TEMPLATE)[invocation.function]
    environment = function_environment(TEMPLATE, invocation.function, load_env_vars_file(), shell={})
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    handler = load_handler(spec.code_dir)
    handler.set_deps(None)  # built from the environment above, against moto

    event = json.loads((EVENTS.parent / invocation.event).read_text(encoding="utf-8"))
    record_results = load_handler("record_results")
    ports = Ports(
        store=S3ObjectStore(world.s3, BUCKET),
        experiments=SageMakerExperimentStore(world.sm, lock=None),
        register_trial=lambda run: record_results.lambda_handler({"mode": "started", "run": run}, lambda_context),
        push_code=world.put_code,
    )
    for need in needs(event, ports):
        if not need.present():
            need.make()
    result = handler.lambda_handler(event, lambda_context)
    text = json.dumps(result)
    assert invocation.result in text, text
    assert '"outcome": "ignored"' not in text
