"""The manifest schema: every bad manifest is refused naming the field and the fix; good ones parse."""

from __future__ import annotations

import json
from typing import Any

import pytest

from nyanops.core.manifest import MAX_MANIFEST_BYTES, parse_manifest, validate_manifest
from nyanops.core.rejection import UploadRejected, rejection_record

DATASET = "datasets/2026-11-28T064300Z"
CODE = "code/" + "a" * 64


def doc(**fields: Any) -> bytes:
    body: dict[str, Any] = {"experiment": "cats", "dataset": DATASET}
    body.update(fields)
    return json.dumps(body).encode()


def hp(**values: Any) -> bytes:
    return doc(hyperparameters=values)


# raw bytes → (field the first problem names, fragment of its problem, fragment of its fix)
BAD_MANIFESTS: list[tuple[str, bytes, str, str, str]] = [
    ("not-json", b"{experiment: cats}", "(file)", "not valid JSON", "fix the JSON syntax"),
    ("bom", b"\xef\xbb\xbf" + doc(), "(file)", "byte order mark", "without BOM"),
    ("empty", b"", "(file)", "empty", "JSON object"),
    ("too-big", b" " * (MAX_MANIFEST_BYTES + 1), "(file)", "larger than the 1000000 byte limit", "keep it small"),
    ("latin-1", '{"experiment": "caté"}'.encode("latin-1"), "(file)", "not UTF-8", "UTF-8"),
    ("top-level-array", b'[{"experiment": "cats"}]', "(file)", "must be a JSON object, got a array", "wrap it"),
    ("top-level-string", b'"cats"', "(file)", "got a string", "wrap it"),
    ("missing-experiment", json.dumps({"dataset": DATASET}).encode(), "experiment", "required field is missing",
     'add "experiment"'),
    ("missing-dataset", json.dumps({"experiment": "cats"}).encode(), "dataset", "required field is missing",
     'add "dataset"'),
    ("unknown-top-level", doc(experimnt="cats"), "experimnt", "unknown field", "did you mean 'experiment'?"),
    ("unknown-hyperparameter", hp(batch_size=8), "hyperparameters.batch_size", "unknown field",
     "did you mean 'batch-size'?"),
    ("unknown-without-suggestion", hp(zzz=1), "hyperparameters.zzz", "unknown field", "allowed fields here: epochs"),
    ("epochs-string", hp(epochs="10"), "hyperparameters.epochs", 'whole number, got "10"', "without quotes"),
    ("epochs-true", hp(epochs=True), "hyperparameters.epochs", "whole number, got true", "integer"),
    ("epochs-float", hp(epochs=10.5), "hyperparameters.epochs", "whole number", "integer"),
    ("epochs-zero", hp(epochs=0), "hyperparameters.epochs", "at least 1, got 0", "at least 1"),
    ("epochs-10001", hp(epochs=10001), "hyperparameters.epochs", "at most 1000, got 10001", "at most 1000"),
    ("negative-lr", hp(lr=-0.1), "hyperparameters.lr", "greater than 0", "greater than 0"),
    ("zero-lr", hp(lr=0), "hyperparameters.lr", "greater than 0", "greater than 0"),
    ("nan-lr", doc()[:-1] + b', "hyperparameters": {"lr": NaN}}', "(file)", "NaN is not a valid JSON number",
     "finite number"),
    ("infinity-lr", doc()[:-1] + b', "hyperparameters": {"lr": Infinity}}', "(file)", "Infinity", "finite number"),
    ("overflowing-lr", doc()[:-1] + b', "hyperparameters": {"lr": 1e400}}', "hyperparameters.lr",
     "finite number", "number"),
    ("lr-string", hp(lr="0.01"), "hyperparameters.lr", "finite number", "without quotes"),
    ("momentum-1", hp(momentum=1), "hyperparameters.momentum", "got 1", "use a value"),
    ("bad-arch", hp(arch="vgg16"), "hyperparameters.arch", 'unknown value "vgg16"', "efficientnet_lite0"),
    ("augment-yes", hp(augment="yes"), "hyperparameters.augment", 'true or false, got "yes"', "true or false"),
    ("augment-1", hp(augment=1), "hyperparameters.augment", "true or false", "true or false"),
    ("fit-on-val", hp(**{"fit-on": "val"}), "hyperparameters.fit-on", 'unknown value "val"', "'train+val'"),
    ("tta-string", hp(tta="true"), "hyperparameters.tta", 'true or false, got "true"', "without quotes"),
    ("num-classes-1", hp(**{"num-classes": 1}), "hyperparameters.num-classes", "at least 2", "at least 2"),
    ("hyperparameters-array", doc(hyperparameters=[]), "hyperparameters", "must be a JSON object", "{"),
    ("hyperparameters-null", doc(hyperparameters=None), "hyperparameters", "must be a JSON object", "{"),
    ("experiment-underscore", doc(experiment="my_cats"), "experiment", "not a valid SageMaker experiment name",
     "letters, digits and hyphens"),
    ("experiment-space", doc(experiment="my cats"), "experiment", "not a valid SageMaker experiment name",
     "hyphens"),
    ("experiment-leading-hyphen", doc(experiment="-cats"), "experiment", "not a valid", "starting and ending"),
    ("experiment-too-long", doc(experiment="c" * 121), "experiment", "too long (at most 120", "shorten"),
    ("experiment-empty", doc(experiment=""), "experiment", "must not be empty", "fill it in"),
    ("experiment-number", doc(experiment=5), "experiment", "must be a string", "double quotes"),
    ("dataset-dotdot", doc(dataset="../x"), "dataset", "'..'", "datasets/<dataset-id>"),
    ("dataset-dotdot-inside", doc(dataset="datasets/../manifests"), "dataset", "'..'", "datasets/<dataset-id>"),
    ("dataset-absolute", doc(dataset="/abs"), "dataset", "absolute path", "datasets/<dataset-id>"),
    ("dataset-other-bucket", doc(dataset="s3://other-bucket/datasets/x"), "dataset", "is a URI",
     "datasets/<dataset-id>"),
    ("dataset-manifests", doc(dataset="manifests/x"), "dataset", "not one folder directly under datasets/",
     "datasets/<dataset-id>"),
    ("dataset-nested", doc(dataset="datasets/x/train"), "dataset", "not one folder directly under datasets/",
     "datasets/<dataset-id>"),
    ("dataset-bad-id", doc(dataset="datasets/-x"), "dataset", "invalid dataset id", "letters, digits"),
    ("code-outside-code", doc(code="ml_code/" + "a" * 64), "code", "not a code bundle in this bucket",
     "code/<64-hex sha256>"),
    ("code-short-hash", doc(code="code/abc"), "code", "not a code bundle", "leave it out"),
    ("code-uri", doc(code="s3://x/code/" + "a" * 64), "code", "not a code bundle", "code/<64-hex sha256>"),
    # The model-level check names the hyperparameters object; the message names both flags.
    ("freeze-beyond-epochs", hp(epochs=2, **{"freeze-epochs": 3}), "hyperparameters",
     "freeze-epochs (3) is larger than epochs (2)", "at most epochs"),
    ("comment-too-long", doc(comment="x" * 1001), "comment", "too long (at most 1000", "shorten"),
    ("comment-number", doc(comment=1), "comment", "must be a string", "double quotes"),
]


@pytest.mark.parametrize(
    ("raw", "field", "problem", "fix"),
    [pytest.param(raw, field, problem, fix, id=name) for name, raw, field, problem, fix in BAD_MANIFESTS],
)
def test_bad_manifest_names_field_problem_and_fix(raw: bytes, field: str, problem: str, fix: str) -> None:
    with pytest.raises(UploadRejected) as caught:
        parse_manifest(raw)
    first = caught.value.problems[0]
    assert first.field == field
    assert problem in first.problem
    assert fix in first.fix
    # The one-line message (what the rejection file and the notification carry) names the field too.
    assert caught.value.message.startswith(f"{field}: ")


def test_there_are_at_least_twenty_bad_manifests() -> None:
    assert len(BAD_MANIFESTS) >= 20
    assert len({name for name, *_ in BAD_MANIFESTS}) == len(BAD_MANIFESTS)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(UploadRejected) as caught:
        parse_manifest(json.dumps({"experiment": "a b", "dataset": "/x", "hyperparameters": {"epochs": 0}}).encode())
    assert [p.field for p in caught.value.problems] == ["experiment", "dataset", "hyperparameters.epochs"]


def test_rejection_record_lists_problems_and_keeps_upload() -> None:
    with pytest.raises(UploadRejected) as caught:
        parse_manifest(hp(epochs="10"))
    record = rejection_record("manifests/x.json", caught.value)
    assert record["key"] == "manifests/x.json"
    assert record["problems"] == [
        {
            "field": "hyperparameters.epochs",
            "problem": 'must be a whole number, got "10"',
            "fix": "write an integer without quotes, e.g. 10",
        }
    ]
    assert "untouched" in record["note"]
    json.dumps(record)


GOOD_MANIFESTS: list[tuple[str, bytes, dict[str, Any]]] = [
    ("minimal", doc(), {}),
    ("seed-article", hp(epochs=10, **{"batch-size": 8}, lr=0.01, momentum=0.9, augment=True),
     {"epochs": 10, "batch-size": 8, "lr": 0.01, "momentum": 0.9, "augment": True}),
    ("all-flags", hp(epochs=300, **{"batch-size": 16, "test-batch-size": 32, "num-classes": 4, "image-size": 224,
                                     "freeze-epochs": 300}, lr=1, momentum=0, arch="resnet18", pretrained=False,
                     augment=False, seed=0, workers=0),
     {"epochs": 300, "batch-size": 16, "test-batch-size": 32, "num-classes": 4, "image-size": 224,
      "freeze-epochs": 300, "lr": 1.0, "momentum": 0.0, "arch": "resnet18", "pretrained": False, "augment": False,
      "seed": 0, "workers": 0}),
    ("trailing-slash-and-code", doc(dataset=DATASET + "/", code=CODE + "/sourcedir.tar.gz", comment="ねこ"), {}),
    ("pretty-printed", json.dumps({"experiment": "cats-v2", "dataset": DATASET, "hyperparameters": {"epochs": 1}},
                                  indent=2).encode() + b"\n", {"epochs": 1}),
]


@pytest.mark.parametrize(("raw", "given"), [pytest.param(r, g, id=n) for n, r, g in GOOD_MANIFESTS])
def test_good_manifest_parses_and_given_returns_flag_names(raw: bytes, given: dict[str, Any]) -> None:
    manifest = parse_manifest(raw)
    assert manifest.hyperparameters.given() == given
    assert manifest.dataset_id == "2026-11-28T064300Z"
    assert all("_" not in flag for flag in manifest.hyperparameters.given())


def test_given_values_keep_their_types() -> None:
    given = parse_manifest(hp(epochs=3, lr=0.5, augment=True)).hyperparameters.given()
    assert type(given["epochs"]) is int and type(given["lr"]) is float and given["augment"] is True


def test_code_reference_resolves_to_hash() -> None:
    assert parse_manifest(doc(code=CODE)).code_hash == "a" * 64
    assert parse_manifest(doc()).code_hash is None


def test_validate_manifest_refuses_python_attribute_names() -> None:
    # populate_by_name is off: only the documented flag names are accepted.
    with pytest.raises(UploadRejected) as caught:
        validate_manifest({"experiment": "cats", "dataset": DATASET, "hyperparameters": {"freeze_epochs": 1}})
    assert caught.value.problems[0].field == "hyperparameters.freeze_epochs"
    assert "did you mean 'freeze-epochs'?" in caught.value.problems[0].fix
