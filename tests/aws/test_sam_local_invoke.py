"""``sam local invoke FUNCTION -e EVENT --env-vars events/env.json`` for every row of the README's table,
under moto: each function gets the environment SAM CLI would give it (``sam_local_env``), the bucket gets what
the event needs (``nyanops.event_fixtures``, the same code ``nyanops invoke`` prepares a local root with), and
the handler's result carries the README's expected outcome. Generic over the template's functions and the
files in events/, so a new function or event is covered by adding its README row. Where a result alone does
not show the outcome (an SQS batch response is only its failed items), ``OUTCOMES`` checks what the function
changed."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from nyanops.aws.dataset_registry import DynamoDatasetRegistry
from nyanops.aws.s3_store import S3ObjectStore
from nyanops.aws.sagemaker_experiments import SageMakerExperimentStore
from nyanops.aws.sagemaker_jobs import SageMakerProcessingJobs
from nyanops.core import dataset as datasets
from nyanops.core import layout
from nyanops.core.sealing import TIME_MARGIN_SECONDS
from nyanops.event_fixtures import Ports, needs
from nyanops.local.integrations import LambdaContext
from nyanops.sam_template import functions, load_template

from .conftest import BUCKET, World
from .dataset_registry_table import REGISTRY_TABLE
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


def test_functions_carry_the_template_timeout_and_memory() -> None:
    glob = TEMPLATE["Globals"]["Function"]
    for logical_id, spec in functions(TEMPLATE).items():
        props = TEMPLATE["Resources"][logical_id]["Properties"]
        assert spec.timeout_seconds == props.get("Timeout", glob["Timeout"]), logical_id
        assert spec.memory_mb == props.get("MemorySize", glob["MemorySize"]), logical_id
    # The sealer stops taking datasets when less than the margin is left: its context must start with more.
    assert functions(TEMPLATE)["SealDatasetsFunction"].timeout_seconds > TIME_MARGIN_SECONDS


@pytest.mark.parametrize("function", sorted(functions(TEMPLATE)))
def test_without_the_env_file_sam_gives_logical_ids_and_with_it_none(function: str) -> None:
    resources = set(TEMPLATE["Resources"])
    bare = function_environment(TEMPLATE, function)
    with_file = function_environment(TEMPLATE, function, load_env_vars_file())
    assert {v for v in with_file.values() if v in resources} == set(), with_file
    if function == "StartPipelineFunction":  # the reported symptom, for the record
        assert bare["BUCKET_NAME"] == "DataBucket" and bare["STATE_MACHINE_ARN"] == "TrainingPipeline"


def uploads_noted(world: World, event: dict[str, Any], result: Any) -> None:
    """Every dataset the batch announces waits in the registry with each upload counted; nothing refused."""
    keys = [json.loads(r["body"])["detail"]["object"]["key"] for r in event["Records"]]
    by_dataset: dict[str, int] = {}
    for key in keys:
        dataset_id = layout.dataset_id_of(key)
        assert dataset_id is not None, key
        by_dataset[dataset_id] = by_dataset.get(dataset_id, 0) + 1
    registry = DynamoDatasetRegistry(world.ddb, REGISTRY_TABLE)
    for dataset_id, count in by_dataset.items():
        record = registry.get(dataset_id)
        assert record is not None and (record.state, record.uploads) == ("waiting", count), record
    assert world.notifications() == [] and world.keys(layout.REJECTED_PREFIX) == []
    assert world.keys(layout.DATASETS_PREFIX) == sorted(keys), "the prepared bucket holds what the batch announces"


def dataset_sealed(world: World, event: dict[str, Any], result: Any) -> None:
    """The settled dataset got a format 2 seal by the pipeline covering every object with the ETag S3 gives it,
    and the registry says sealed."""
    [sealed] = [r for r in result["results"] if r["outcome"] == "sealed"]
    dataset_id = sealed["dataset_id"]
    marker = datasets.parse_marker(dataset_id, world.get(layout.dataset_marker_key(dataset_id)))
    assert marker.sealed_by.tool == datasets.PIPELINE
    prefix = layout.dataset_prefix(dataset_id)
    listed = world.s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)["Contents"]
    etags = {o["Key"][len(prefix) :]: o["ETag"].strip('"') for o in listed if not o["Key"].endswith(".json")}
    assert etags and {rel: f.etag for rel, f in marker.files.items()} == etags
    record = DynamoDatasetRegistry(world.ddb, REGISTRY_TABLE).get(dataset_id)
    assert record is not None and record.state == "sealed"


OUTCOMES: dict[str, Callable[[World, dict[str, Any], Any], None]] = {
    "NoteDatasetUploadsFunction": uploads_noted,
    "SealDatasetsFunction": dataset_sealed,
}


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
        registry=DynamoDatasetRegistry(world.ddb, REGISTRY_TABLE),
        register_trial=lambda run: record_results.lambda_handler({"mode": "started", "run": run}, lambda_context),
        push_code=world.put_code,
        quiet_seconds=float(environment.get("QUIET_SECONDS") or 0),  # SealDatasets': the template's default
        # On AWS only the run's own evaluation job makes this record; here moto's SageMaker stands in for it.
        evaluation_jobs=SageMakerProcessingJobs(world.sm),
        record_evaluation_job=lambda job, output: world.processing_job(
            job, output, started=datetime.now(UTC) - timedelta(minutes=1)),
    )
    for need in needs(event, ports):
        if not need.present():
            need.make()
    assert all(need.present() for need in needs(event, ports))
    # A context with the template's timeout, as SAM gives it (the sealer's time margin depends on it).
    context = LambdaContext(invocation.function, memory_limit_in_mb=spec.memory_mb,
                            timeout_seconds=spec.timeout_seconds)
    result = handler.lambda_handler(event, context)
    text = json.dumps(result)
    assert invocation.result in text, text
    assert '"outcome": "ignored"' not in text
    if invocation.function in OUTCOMES:
        OUTCOMES[invocation.function](world, event, result)
