"""StartPipeline's core (core/start_pipeline) on in-memory ports: every outcome of one upload, exactly, and the
limits it meets before anything would break later (size from the event or a HEAD, classes, input size)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from reliability.corpus import (
    BASE_OBJECTS,
    CODE_HASH,
    GOOD_DATASET,
    SEALED_BY,
    image_tree,
    manifest,
    marker_bytes,
    prefixed,
)

from nyanops.core import dataset as datasets
from nyanops.core import layout, limits
from nyanops.core.manifest import MAX_MANIFEST_BYTES
from nyanops.core.ports import StartResult
from nyanops.core.rejection import Problem
from nyanops.core.settings import PipelineSettings
from nyanops.core.start_pipeline import (
    Outcome,
    StartPipelineDeps,
    UploadResult,
    check_class_count,
    check_execution_input,
    default_manifest,
    handle_upload,
    resolve_code,
    upload_size,
)
from nyanops.core.upload_events import Upload

from .memory_ports import T0, MemoryNotifier, MemoryObjects

BUCKET = "nyanops-test"
UPLOAD_FIX = (
    "upload the dataset with `nyanops dataset add` (it writes _dataset.json last) and name it here; images "
    "uploaded any other way are sealed by the pipeline once the upload has been quiet for a while "
    "(`nyanops datasets` shows each dataset's state)"
)
CODE_FIX = "push ml_code with `nyanops code push` (it uploads code/<hash>/) and name it, or leave `code` out"


@dataclass
class Starter:
    started: dict[str, dict[str, Any]] = field(default_factory=dict)

    def start(self, name: str, execution_input: dict[str, Any]) -> StartResult:
        if name in self.started:
            return StartResult(name, False)
        self.started[name] = execution_input
        return StartResult(name, True, f"arn:{name}")


class World:
    def __init__(self) -> None:
        self.objects = ReadCountingObjects(bucket=BUCKET)
        for key, body in BASE_OBJECTS:
            self.objects.put(key, body)
        self.notifier, self.starter = MemoryNotifier(), Starter()
        settings = PipelineSettings.model_validate({"BUCKET_NAME": BUCKET, "AWS_REGION": "us-east-1",
                                                    "DEFAULT_EXPERIMENT": "felines"})
        self.deps = StartPipelineDeps(self.objects, self.starter, self.notifier, settings,
                                      clock=lambda: T0 + timedelta(minutes=1))

    def upload(self, key: str, body: bytes, **fields: Any) -> Upload:
        self.objects.put(key, body)
        version = self.objects.versions[key][-1][0]
        return Upload(fields.pop("bucket", BUCKET), key, fields.pop("version_id", version), None,
                      fields.pop("size", len(body)), fields.pop("sequencer", None))

    def send(self, upload: Upload) -> UploadResult:
        return handle_upload(upload, self.deps)


class ReadCountingObjects(MemoryObjects):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.reads: list[str] = []

    def get(self, key: str, version_id: str | None = None) -> bytes:
        self.reads.append(key)
        return super().get(key, version_id)


@pytest.fixture
def world() -> World:
    return World()


def refused(world: World, upload: Upload) -> Problem:
    result = world.send(upload)
    assert result.outcome is Outcome.REJECTED and result.key == upload.key
    assert result.reason == "; ".join(p.line() for p in result.problems)
    record = json.loads(world.objects.get(layout.rejection_key(upload.key)))
    assert record["rejected_at"] == (T0 + timedelta(minutes=1)).isoformat(timespec="seconds")
    assert record["key"] == upload.key and world.starter.started == {}
    [problem] = result.problems
    return problem


def test_a_manifest_starts_one_run(world: World) -> None:
    upload = world.upload("manifests/run.json", manifest())
    result = world.send(upload)
    assert result.outcome is Outcome.STARTED and result.key == "manifests/run.json"
    [(name, execution_input)] = world.starter.started.items()
    assert result.execution_name == name and name.startswith("m-run-")
    assert result.as_dict() == {"outcome": "started", "key": "manifests/run.json", "execution_name": name,
                                "problems": [], "reason": ""}
    assert execution_input["experiment"] == "cats" and execution_input["code"]["hash"] == CODE_HASH
    assert execution_input["source"]["kind"] == "manifest"
    assert world.send(upload).outcome is Outcome.DUPLICATE


def test_other_buckets_and_other_keys_are_ignored(world: World) -> None:
    other = world.upload("manifests/run.json", manifest(), bucket="someone-elses")
    assert world.send(other).as_dict() == {"outcome": "ignored", "key": "manifests/run.json", "execution_name": None,
                                           "problems": [], "reason": "bucket someone-elses is not this pipeline's"}
    image = world.send(world.upload("datasets/x/train/a/1.jpg", b"jpg"))
    assert (image.outcome, image.key, image.reason) == (
        Outcome.IGNORED, "datasets/x/train/a/1.jpg", "neither a manifest nor a dataset marker")
    assert world.starter.started == {} and world.notifier.sent == []


def test_a_manifest_gone_before_it_is_read_is_ignored(world: World) -> None:
    upload = world.upload("manifests/run.json", manifest(), version_id="v9")
    result = world.send(upload)
    assert (result.outcome, result.key, result.reason) == (
        Outcome.IGNORED, "manifests/run.json", "manifests/run.json no longer exists")


def test_a_refusal_is_recorded_with_the_time_and_notified(world: World) -> None:
    problem = refused(world, world.upload("manifests/bad.json", manifest(experiment="my_cats")))
    assert problem.field == "experiment"
    [(subject, message)] = world.notifier.sent
    assert subject == "nyanops: upload refused: manifests/bad.json" and problem.line() in message


def test_the_manifest_size_comes_from_the_event_before_any_read(world: World) -> None:
    upload = world.upload("manifests/huge.json", manifest(), size=600 * 1024 * 1024)
    problem = refused(world, upload)
    size = 600 * 1024 * 1024
    assert problem.problem == f"the manifest is {size} bytes, larger than the {MAX_MANIFEST_BYTES} byte limit"
    assert "manifests/huge.json" not in world.objects.reads


def test_without_a_size_in_the_event_a_head_gives_it(world: World) -> None:
    body = b" " * (MAX_MANIFEST_BYTES + 1)
    problem = refused(world, world.upload("manifests/big.json", body, size=None))
    assert f"{MAX_MANIFEST_BYTES + 1} bytes" in problem.problem and "manifests/big.json" not in world.objects.reads


def test_upload_size(world: World) -> None:
    world.objects.put("k", b"12345")
    assert upload_size(world.objects, Upload(BUCKET, "k", "v1", None, 7)) == 7  # the event's, no HEAD
    assert upload_size(world.objects, Upload(BUCKET, "k", "v1", None, None)) == 5
    assert upload_size(world.objects, Upload(BUCKET, "k", None, None, None)) == 5
    assert upload_size(world.objects, Upload(BUCKET, "k", "v0", None, None)) is None  # HEAD is another version
    assert upload_size(world.objects, Upload(BUCKET, "missing", None, None, None)) is None


def dataset_objects(world: World, dataset_id: str, classes: tuple[str, ...] = ("a", "b")) -> None:
    files = image_tree(dataset_id, {split: classes for split in layout.SPLITS})
    for key, body in prefixed(dataset_id, files):
        world.objects.put(key, body)
    world.objects.put(layout.dataset_marker_key(dataset_id), marker_bytes(dataset_id, files))


def test_a_dataset_marker_starts_the_default_run(world: World) -> None:
    dataset_objects(world, "cats-two")
    upload = Upload(BUCKET, layout.dataset_marker_key("cats-two"), "v1", None, 10)
    result = world.send(upload)
    assert result.outcome is Outcome.STARTED and result.execution_name.startswith("ds-cats-two-")
    [execution_input] = world.starter.started.values()
    assert execution_input["experiment"] == "felines" and execution_input["comment"] == "new dataset cats-two"
    assert execution_input["source"]["kind"] == "dataset"


def test_the_marker_version_of_the_event_is_the_one_checked(world: World) -> None:
    dataset_objects(world, "cats-two")
    world.objects.put(layout.dataset_marker_key("cats-two"), b"not json")  # v2, after the event's v1
    assert world.send(Upload(BUCKET, layout.dataset_marker_key("cats-two"), "v1", None, 10)).outcome is (
        Outcome.STARTED)


def test_a_marker_version_gone_is_ignored(world: World) -> None:
    dataset_objects(world, "cats-two")
    result = world.send(Upload(BUCKET, layout.dataset_marker_key("cats-two"), "v7", None, 10))
    assert (result.outcome, result.reason) == (Outcome.IGNORED, "datasets/cats-two/_dataset.json no longer exists")


def sealed_without_a_run(world: World, dataset_id: str) -> None:
    """A dataset sealed by ``dataset add --no-run``: its seal says ``"start_run": false``."""
    files = image_tree(dataset_id, {split: ("a", "b") for split in layout.SPLITS})
    for key, body in prefixed(dataset_id, files):
        world.objects.put(key, body)
    entries = [datasets.DatasetFile(p, len(b), hashlib.sha256(b).hexdigest()) for p, b in files.items()]
    doc = datasets.build_marker(dataset_id, entries, sealed_by=SEALED_BY, start_run=False)
    world.objects.put(layout.dataset_marker_key(dataset_id), datasets.marker_bytes(doc))


def test_a_seal_that_asks_for_no_run_starts_nothing_and_refuses_nothing(world: World) -> None:
    sealed_without_a_run(world, "quiet")
    result = world.send(Upload(BUCKET, layout.dataset_marker_key("quiet"), "v1", None, 10))
    assert result.as_dict() == {
        "outcome": "ignored", "key": "datasets/quiet/_dataset.json", "execution_name": None, "problems": [],
        "reason": 'datasets/quiet is sealed with start_run false (dataset add --no-run): runs start from manifests '
                  'naming "datasets/quiet"',
    }
    assert world.starter.started == {} and world.notifier.sent == []
    assert world.objects.head(layout.rejection_key("datasets/quiet/_dataset.json")) is None


def test_a_manifest_naming_a_dataset_sealed_without_a_run_starts_it(world: World) -> None:
    sealed_without_a_run(world, "quiet")
    result = world.send(world.upload("manifests/q.json", manifest(dataset="datasets/quiet")))
    assert result.outcome is Outcome.STARTED
    [execution_input] = world.starter.started.values()
    assert execution_input["source"]["kind"] == "manifest"


def test_a_refusal_is_notified_once_per_upload_version_and_an_older_replay_changes_nothing(world: World) -> None:
    key = "manifests/bad.json"
    first = world.upload(key, manifest(experiment="my_cats"), sequencer="00A1")
    refused(world, first)
    refused(world, first)  # the same event delivered twice: one notification
    assert len(world.notifier.sent) == 1
    second = world.upload(key, manifest(experiment="your_cats"), sequencer="00B2")
    assert refused(world, second).problem.startswith('"your_cats"')
    assert len(world.notifier.sent) == 2 and second.version != first.version
    world.send(first)  # a late replay of the older upload: the newer refusal stays, nobody is told
    record = json.loads(world.objects.get(layout.rejection_key(key)))
    assert (record["version"], record["sequencer"]) == (second.version, "00B2")
    assert '"your_cats"' in record["message"] and len(world.notifier.sent) == 2


def test_a_marker_with_an_invalid_dataset_id(world: World) -> None:
    key = "datasets/-bad/_dataset.json"
    assert refused(world, world.upload(key, b"{}")) == Problem(
        "dataset", "invalid dataset id '-bad'",
        "use letters, digits, '.', '_' and '-' (at most 128, starting with a letter or digit)")


def test_a_dataset_that_does_not_exist_or_is_still_uploading(world: World) -> None:
    assert refused(world, world.upload("manifests/a.json", manifest(dataset="datasets/nowhere"))) == Problem(
        "dataset", "datasets/nowhere does not exist in this bucket", UPLOAD_FIX)
    world.objects.put("datasets/half/train/a/1.jpg", b"x")
    assert refused(world, world.upload("manifests/b.json", manifest(dataset="datasets/half"))) == Problem(
        "dataset", "datasets/half is still uploading or incomplete: no _dataset.json yet", UPLOAD_FIX)


def test_num_classes_must_match_the_dataset(world: World) -> None:
    upload = world.upload("manifests/n.json", manifest(hyperparameters={"num-classes": 3}))
    assert refused(world, upload) == Problem(
        "hyperparameters.num-classes", f"is 3 but dataset {GOOD_DATASET} has 2 classes (bengal, siamese)",
        "set num-classes to 2 or leave it out (it is taken from the dataset)")
    ok = world.upload("manifests/n2.json", manifest(hyperparameters={"num-classes": 2}))
    assert world.send(ok).outcome is Outcome.STARTED


def test_a_wrong_num_classes_is_named_where_the_manifest_set_it(world: World) -> None:
    fix = "set num-classes to 2 or leave it out (it is taken from the dataset)"
    problem = f"is 3 but dataset {GOOD_DATASET} has 2 classes (bengal, siamese)"
    grid = world.upload("manifests/g.json", manifest(sweep={"num-classes": [2, 3]}))
    assert refused(world, grid) == Problem("sweep.num-classes", problem, fix)
    listed = world.upload("manifests/l.json", manifest(sweep=[{"epochs": 4}, {"num-classes": 3}]))
    assert refused(world, listed) == Problem("sweep.num-classes", problem, fix)
    # A sweep over other values: the wrong value is the manifest's own, in grid and list form alike.
    for name, sweep in (("hg", {"epochs": [4, 5]}), ("hl", [{"epochs": 4}, {"epochs": 5}])):
        upload = world.upload(f"manifests/{name}.json", manifest(hyperparameters={"num-classes": 3}, sweep=sweep))
        assert refused(world, upload) == Problem("hyperparameters.num-classes", problem, fix)


def test_the_code_bundle(world: World) -> None:
    assert resolve_code(world.objects, CODE_HASH) == CODE_HASH
    missing = "f" * 64
    assert refused(world, world.upload("manifests/c.json", manifest(code=f"code/{missing}"))) == Problem(
        "code", f"code/{missing} does not exist in this bucket", CODE_FIX)
    empty = MemoryObjects(bucket=BUCKET)
    with pytest.raises(Exception) as caught:
        resolve_code(empty, None)
    assert caught.value.problems == [Problem("code", "no ml_code bundle has been pushed to this bucket yet", CODE_FIX)]


def test_the_newest_code_bundle_is_taken_and_a_tie_keeps_the_first(world: World) -> None:
    objects = MemoryObjects(bucket=BUCKET)
    older, newer, tied = "1" * 64, "2" * 64, "3" * 64
    objects.put(layout.code_bundle_key(newer), b"x")
    objects.now = T0 - timedelta(hours=1)
    objects.put(layout.code_bundle_key(older), b"x")
    objects.put(layout.code_source_prefix(older) + "train.py", b"x")  # not a bundle
    assert resolve_code(objects, None) == newer
    objects.now = T0
    objects.put(layout.code_bundle_key(tied), b"x")
    assert resolve_code(objects, None) == newer  # listed first among the newest


def test_default_manifest() -> None:
    settings = PipelineSettings.model_validate({"BUCKET_NAME": BUCKET, "AWS_REGION": "r", "DEFAULT_EXPERIMENT": "x"})
    m = default_manifest("2026-11-28T064300Z", settings)
    assert (m.experiment, m.dataset, m.dataset_id, m.comment) == (
        "x", "datasets/2026-11-28T064300Z", "2026-11-28T064300Z", "new dataset 2026-11-28T064300Z")
    assert default_manifest("MAX", settings).dataset == "datasets/MAX"  # only the slash is trimmed


def test_an_execution_input_over_the_budget_is_refused_before_the_start(world: World,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "EXECUTION_INPUT_MAX_BYTES", 1000)
    problem = refused(world, world.upload("manifests/run.json", manifest()))
    assert problem.field == "dataset" and "more than the 1000 bytes a Step Functions execution" in problem.problem
    assert "(2 classes, names of up to 7 characters)" in problem.problem


def test_a_marker_that_is_not_json_names_its_key(world: World) -> None:
    world.objects.put("datasets/cats-two/train/a/1.jpg", b"x")
    problem = refused(world, world.upload(layout.dataset_marker_key("cats-two"), b"not json"))
    assert problem.field == "datasets/cats-two/_dataset.json"


@dataclass
class Summary:
    """What the checks read of a dataset summary."""

    dataset_id: str
    classes: tuple[str, ...]


def summary(n: int) -> Summary:
    return Summary("big", tuple(f"c{i:04d}" for i in range(n)))


def test_the_class_count_at_both_ends() -> None:
    check_class_count(summary(limits.MAX_CLASSES))  # type: ignore[arg-type]
    with pytest.raises(Exception) as caught:
        check_class_count(summary(limits.MAX_CLASSES + 1))  # type: ignore[arg-type]
    assert caught.value.problems == [Problem(
        "dataset", f"datasets/big has {limits.MAX_CLASSES + 1} classes, more than the {limits.MAX_CLASSES} the "
        "pipeline supports",
        f"split the classes over several datasets (and experiments) of at most {limits.MAX_CLASSES} classes")]


@dataclass
class Request:
    dataset: Summary


def test_the_execution_input_at_both_ends() -> None:
    room = limits.EXECUTION_INPUT_MAX_BYTES - len(json.dumps({"x": ""}))
    request = Request(summary(3))
    check_execution_input({"x": "a" * room}, request)  # type: ignore[arg-type]
    with pytest.raises(Exception) as caught:
        check_execution_input({"x": "a" * (room + 1)}, request)  # type: ignore[arg-type]
    assert caught.value.problems == [Problem(
        "dataset", f"the run's input would be {limits.EXECUTION_INPUT_MAX_BYTES + 1} bytes, more than the "
        f"{limits.EXECUTION_INPUT_MAX_BYTES} bytes a Step Functions execution can carry with its results (3 classes, "
        "names of up to 5 characters)", "use shorter class folder names or fewer classes per dataset")]
    with pytest.raises(Exception, match="would be"):
        check_execution_input({"x": "é" * (room // 2 + 1)}, request)  # bytes of UTF-8, not characters
    with pytest.raises(Exception, match=r"\(0 classes, names of up to 0 characters\)"):
        check_execution_input({"x": "a" * (room + 1)}, Request(summary(0)))  # type: ignore[arg-type]


def test_an_oversized_sweep_input_names_the_sweep_and_its_trial_count() -> None:
    trials = [{"learning-rate": 0.1}, {"learning-rate": 0.2}]
    base = {"trials": trials, "x": ""}
    room = limits.EXECUTION_INPUT_MAX_BYTES - len(json.dumps(base))
    request = Request(summary(3))
    check_execution_input({**base, "x": "a" * room}, request)  # type: ignore[arg-type]
    with pytest.raises(Exception) as caught:
        check_execution_input({**base, "x": "a" * (room + 1)}, request)  # type: ignore[arg-type]
    assert caught.value.problems == [Problem(
        "sweep", f"the run's input would be {limits.EXECUTION_INPUT_MAX_BYTES + 1} bytes for 2 trials, more than "
        f"the {limits.EXECUTION_INPUT_MAX_BYTES} bytes a Step Functions execution can carry with its results "
        "(3 classes, names of up to 5 characters)", "sweep fewer values (or split the sweep over several manifests)")]
    one = {"trials": trials[:1], "x": "a" * (room + 100)}
    with pytest.raises(Exception) as caught:
        check_execution_input(one, request)  # type: ignore[arg-type]
    assert caught.value.problems[0].field == "dataset"  # one trial: the dataset is what is too big
