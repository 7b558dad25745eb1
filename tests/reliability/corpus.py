"""The bad-input corpus: one table of uploads that must each end in a refusal naming the problem and
the fix, with a ``rejected/<key>.error.json`` record, no execution started and the upload untouched.

Two modules run every case: ``tests/reliability/test_corpus_local.py`` (the local bucket and the
real StartPipeline handler wired to it) and ``tests/aws/test_corpus_moto.py`` (the same handler on
moto S3 / Step Functions / SNS, the key URL-encoded in the event as S3 sends it).

Each case is the triggering upload (``key`` + ``body``), the objects uploaded before it
(``objects``: a dataset's images), and every problem the refusal must list, in order: the field
exactly, fragments of the problem and of the fix. Both sides start from the same base bucket
(``BASE_OBJECTS``): one complete, valid dataset and one pushed code bundle, so a case fails only for
the reason it is about.

Image *contents* (corrupt, truncated, decompression-bomb JPEGs) cannot be judged from a listing: they
are ``IMAGE_CASES``, refused by ``nyanops dataset add`` before anything is copied
(``test_dataset_add_images.py``) and, if they slip in on AWS, by ``train.py`` naming the file
(``tests/ml/test_ml_scripts.py``).
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from nyanops.core import dataset as datasets
from nyanops.core import layout
from nyanops.core.manifest import MAX_MANIFEST_BYTES

GOOD_DATASET = "cats-ok"
CLASSES = ("bengal", "siamese")
CODE_HASH = hashlib.sha256(b"nyanops reliability corpus ml_code").hexdigest()
CREATED = datetime(2026, 11, 28, 6, 43, tzinfo=UTC)
SEALED_BY = datasets.SealedBy(datasets.TOOL, "reliability corpus")
DATASET_FIX = "write datasets/<dataset-id>, e.g. datasets/2026-11-28T064300Z"
EXPERIMENT_FIX = "use only letters, digits and hyphens"
UPLOAD_FIX = "upload the dataset with `nyanops dataset add` (it writes _dataset.json last) and name it here"
CODE_FIX = "write code/<64-hex sha256> as printed by `nyanops code push`, or leave it out"
MARKER_FIX = "`nyanops dataset add`"


# -- building uploads -------------------------------------------------------------------------------------
def fake_jpeg(label: str) -> bytes:
    """Bytes that start like a JPEG; StartPipeline never decodes images (it works from the listing)."""
    return b"\xff\xd8\xff\xe0" + label.encode() + b"\xff\xd9"


def image_tree(
    dataset_id: str,
    classes_by_split: dict[str, tuple[str, ...]] | None = None,
    per_class: int = 2,
    extra: dict[str, bytes] | None = None,
) -> dict[str, bytes]:
    """``<split>/<class>/<nnn>.jpg`` → bytes, plus ``extra`` (relative paths) for the odd files."""
    by_split = classes_by_split or {split: CLASSES for split in layout.SPLITS}
    files = {
        f"{split}/{cls}/{i:03d}.jpg": fake_jpeg(f"{dataset_id}/{split}/{cls}/{i}")
        for split, classes in by_split.items()
        for cls in classes
        for i in range(per_class)
    }
    files.update(extra or {})
    return files


def marker_bytes(dataset_id: str, files: dict[str, bytes]) -> bytes:
    """A ``_dataset.json`` (format 2) for ``files`` as a tool would write it, also when their layout is wrong
    (built by hand then: ``build_marker`` itself refuses a bad layout). No ETags: the same seal serves the
    local bucket and moto, whose ETags differ; sizes are still compared."""
    entries = [datasets.DatasetFile(p, len(b), hashlib.sha256(b).hexdigest()) for p, b in files.items()]
    try:
        doc = datasets.build_marker(dataset_id, entries, sealed_by=SEALED_BY, now=CREATED)
    except Exception:
        entries = [e for e in entries if e.path.count("/") == 2 and e.path.split("/")[0] in layout.SPLITS]
        split_hashes, combined = datasets.identity(entries)
        counts = datasets.count_images(entries)
        doc = {
            "format": datasets.MARKER_FORMAT,
            "dataset_id": dataset_id,
            "sealed_at": CREATED.isoformat(),
            "sealed_by": {"tool": SEALED_BY.tool, "detail": SEALED_BY.detail},
            "classes": sorted(counts["train"]),
            "counts": counts,
            "num_images": len(entries),
            "split_hashes": split_hashes,
            "content_hash": combined,
            "files": {e.path: {"size": e.size, "sha256": e.sha256, "etag": None} for e in entries},
            "start_run": True,
        }
    return datasets.marker_bytes(doc)


def prefixed(dataset_id: str, files: dict[str, bytes]) -> tuple[tuple[str, bytes], ...]:
    return tuple((layout.dataset_prefix(dataset_id) + path, body) for path, body in sorted(files.items()))


def good_dataset_objects(dataset_id: str = GOOD_DATASET) -> tuple[tuple[str, bytes], ...]:
    files = image_tree(dataset_id)
    return (*prefixed(dataset_id, files), (layout.dataset_marker_key(dataset_id), marker_bytes(dataset_id, files)))


# Every case starts from this bucket: a complete valid dataset and a pushed code bundle.
BASE_OBJECTS: tuple[tuple[str, bytes], ...] = (
    *good_dataset_objects(),
    (layout.code_bundle_key(CODE_HASH), b"fake sourcedir.tar.gz for the corpus"),
)


def manifest(**fields: Any) -> bytes:
    """A valid manifest for the base bucket, with ``fields`` replaced (a value of ``...`` removes it)."""
    body: dict[str, Any] = {
        "experiment": "cats",
        "dataset": f"datasets/{GOOD_DATASET}",
        "comment": "reliability corpus",
        "hyperparameters": {"epochs": 3},
        # Every case trains: the corpus's trials share one recipe on purpose (reuse has its own tests).
        "force": True,
    }
    body.update(fields)
    return json.dumps({k: v for k, v in body.items() if v is not ...}).encode()


def hp(**values: Any) -> bytes:
    return manifest(hyperparameters=values)


# -- the corpus -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Expected:
    """One problem of the refusal: ``field`` exactly, ``problem`` and ``fix`` as fragments of the text."""

    field: str
    problem: str
    fix: str


@dataclass(frozen=True)
class Case:
    id: str
    input: str  # what was uploaded, in words (the docs table)
    key: str  # the upload whose event is sent
    body: bytes
    expected: tuple[Expected, ...]  # every problem listed, in order
    objects: tuple[tuple[str, bytes], ...] = ()  # uploaded before ``key``, without events
    layer: str = "StartPipeline: manifest parsing"

    @property
    def rejection_key(self) -> str:
        return layout.rejection_key(self.key)


SCHEMA = "StartPipeline: manifest schema"
DATASET_REF = "StartPipeline: dataset reference"
DATASET_LISTING = "StartPipeline: dataset listing vs _dataset.json"
CODE_REF = "StartPipeline: code reference"
MARKER = "StartPipeline: _dataset.json"


def _marker_case(
    case_id: str,
    text: str,
    dataset_id: str,
    files: dict[str, bytes],
    expected: tuple[Expected, ...],
    marker_files: dict[str, bytes] | None = None,
    marker: bytes | None = None,
    layer: str = DATASET_LISTING,
) -> Case:
    """A dataset upload: ``files`` uploaded, then its ``_dataset.json`` (describing ``marker_files``)."""
    body = marker if marker is not None else marker_bytes(dataset_id, marker_files or files)
    key = layout.dataset_marker_key(dataset_id)
    return Case(case_id, text, key, body, expected, prefixed(dataset_id, files), layer)


def _ds(problem: str, fix: str) -> tuple[Expected, ...]:
    return (Expected("dataset", problem, fix),)


_HUGE_COMMENT = manifest(comment="x" * MAX_MANIFEST_BYTES)
_INCOMPLETE = image_tree("cats-uploading")
_PROMISED = image_tree("cats-partial")
_PARTIAL = {p: b for p, b in _PROMISED.items() if p != "test/siamese/001.jpg"}

CASES: tuple[Case, ...] = (
    # -- the file itself ------------------------------------------------------------------------------
    Case("not-json", "manifest with JSON syntax errors (unquoted key)", "manifests/not-json.json",
         b"{experiment: cats}", (Expected("(file)", "not valid JSON: Expecting property name enclosed in double "
                                           "quotes at line 1 column 2", "fix the JSON syntax"),)),
    Case("bom", "JSON saved with a UTF-8 byte order mark", "manifests/bom.json", b"\xef\xbb\xbf" + manifest(),
         (Expected("(file)", "starts with a UTF-8 byte order mark (BOM)", "save it as UTF-8 without BOM"),)),
    Case("empty", "zero-byte manifest (an upload cut short)", "manifests/empty.json", b"",
         (Expected("(file)", "the manifest is empty", "upload a JSON object like docs/manifest.md shows"),)),
    Case("too-large", "manifest larger than 1 MB (a 1 MB comment)", "manifests/too-large.json", _HUGE_COMMENT,
         (Expected("(file)", f"the manifest is {len(_HUGE_COMMENT)} bytes, larger than the 1000000 byte limit",
                   "keep it small"),)),
    Case("not-utf8", "manifest saved as Latin-1", "manifests/latin1.json",
         manifest(comment="CAFE").replace(b"CAFE", "café".encode("latin-1")),
         (Expected("(file)", "the manifest is not UTF-8 text (byte", "save it as UTF-8 JSON"),)),
    Case("top-level-array", "a JSON array of manifests", "manifests/array.json", b"[" + manifest() + b"]",
         (Expected("(file)", "must be a JSON object, got a array", '{"experiment": ...'),)),
    Case("top-level-null", "the JSON value null", "manifests/null.json", b"null",
         (Expected("(file)", "must be a JSON object, got a null", "wrap it as"),)),
    # -- fields: missing, unknown, wrongly typed --------------------------------------------------------
    Case("missing-experiment", "no experiment field", "manifests/no-experiment.json", manifest(experiment=...),
         (Expected("experiment", "required field is missing", 'add "experiment" to the manifest'),), layer=SCHEMA),
    Case("missing-dataset", "no dataset field", "manifests/no-dataset.json", manifest(dataset=...),
         (Expected("dataset", "required field is missing", 'add "dataset" to the manifest'),), layer=SCHEMA),
    Case("unknown-field", "misspelt top-level field (experimnt)", "manifests/typo.json",
         manifest(experiment=..., experimnt="cats"),
         (Expected("experiment", "required field is missing", 'add "experiment"'),
          Expected("experimnt", "unknown field", "did you mean 'experiment'?")), layer=SCHEMA),
    Case("unknown-hyperparameter", "hyperparameter with the Python name (batch_size)", "manifests/batch.json",
         hp(batch_size=8), (Expected("hyperparameters.batch_size", "unknown field", "did you mean 'batch-size'?"),),
         layer=SCHEMA),
    Case("experiment-number", "experiment given as a number", "manifests/exp-number.json", manifest(experiment=7),
         (Expected("experiment", "must be a string, got 7", "put the value in double quotes"),), layer=SCHEMA),
    Case("hyperparameters-array", "hyperparameters as a list of pairs", "manifests/hp-list.json",
         manifest(hyperparameters=[["epochs", 3]]),
         (Expected("hyperparameters", "must be a JSON object", 'write it as {"name": value, ...}'),), layer=SCHEMA),
    Case("augment-string", 'augment: "yes"', "manifests/augment.json", hp(augment="yes"),
         (Expected("hyperparameters.augment", 'must be true or false, got "yes"', "write true or false"),),
         layer=SCHEMA),
    Case("arch-unknown", "arch: vgg16 (not a known backbone)", "manifests/arch.json", hp(arch="vgg16"),
         (Expected("hyperparameters.arch", 'unknown value "vgg16"', "use one of: 'efficientnet_lite2'"),),
         layer=SCHEMA),
    # -- numbers -----------------------------------------------------------------------------------------
    Case("epochs-zero", "epochs: 0", "manifests/epochs-0.json", hp(epochs=0),
         (Expected("hyperparameters.epochs", "must be at least 1, got 0", "use a value at least 1"),), layer=SCHEMA),
    Case("epochs-negative", "epochs: -5", "manifests/epochs-neg.json", hp(epochs=-5),
         (Expected("hyperparameters.epochs", "must be at least 1, got -5", "use a value at least 1"),), layer=SCHEMA),
    Case("epochs-huge", "epochs: 10000000000", "manifests/epochs-huge.json", hp(epochs=10**10),
         (Expected("hyperparameters.epochs", "must be at most 1000, got 10000000000", "use a value at most 1000"),),
         layer=SCHEMA),
    Case("epochs-string", 'epochs: "10" (a string number)', "manifests/epochs-str.json", hp(epochs="10"),
         (Expected("hyperparameters.epochs", 'must be a whole number, got "10"', "write an integer without quotes"),),
         layer=SCHEMA),
    Case("epochs-float", "epochs: 2.5", "manifests/epochs-float.json", hp(epochs=2.5),
         (Expected("hyperparameters.epochs", "must be a whole number, got 2.5", "write an integer"),), layer=SCHEMA),
    Case("lr-nan", "lr: NaN (a JavaScript literal)", "manifests/lr-nan.json",
         manifest(hyperparameters=...)[:-1] + b', "hyperparameters": {"lr": NaN}}',
         (Expected("(file)", "NaN is not a valid JSON number", "use a finite number"),)),
    Case("lr-overflow", "lr: 1e400 (overflows to infinity)", "manifests/lr-inf.json",
         manifest(hyperparameters=...)[:-1] + b', "hyperparameters": {"lr": 1e400}}',
         (Expected("hyperparameters.lr", "must be a finite number, got inf", "write a number without quotes"),),
         layer=SCHEMA),
    Case("lr-string", 'lr: "0.01"', "manifests/lr-str.json", hp(lr="0.01"),
         (Expected("hyperparameters.lr", 'must be a finite number, got "0.01"', "write a number without quotes"),),
         layer=SCHEMA),
    Case("lr-negative", "lr: -0.1", "manifests/lr-neg.json", hp(lr=-0.1),
         (Expected("hyperparameters.lr", "must be greater than 0.0, got -0.1", "use a value greater than 0.0"),),
         layer=SCHEMA),
    Case("batch-size-huge", "batch-size: 100000", "manifests/batch-huge.json", hp(**{"batch-size": 100000}),
         (Expected("hyperparameters.batch-size", "must be at most 1024, got 100000", "use a value at most 1024"),),
         layer=SCHEMA),
    Case("freeze-beyond-epochs", "freeze-epochs 5 > epochs 2", "manifests/freeze.json",
         hp(epochs=2, **{"freeze-epochs": 5}),
         (Expected("hyperparameters", "freeze-epochs (5) is larger than epochs (2)", "make freeze-epochs at most "
                   "epochs"),), layer=SCHEMA),
    Case("num-classes-mismatch", "num-classes 3 for a 2-class dataset", "manifests/classes3.json",
         hp(**{"num-classes": 3}),
         (Expected("hyperparameters.num-classes", f"is 3 but dataset {GOOD_DATASET} has 2 classes (bengal, siamese)",
                   "set num-classes to 2 or leave it out"),), layer="StartPipeline: manifest vs dataset"),
    # -- experiment names SageMaker would refuse ---------------------------------------------------------
    Case("experiment-underscore", "experiment: my_cats", "manifests/exp-underscore.json",
         manifest(experiment="my_cats"),
         (Expected("experiment", '"my_cats" is not a valid SageMaker experiment name', EXPERIMENT_FIX),), layer=SCHEMA),
    Case("experiment-space", "experiment: my cats", "manifests/exp-space.json", manifest(experiment="my cats"),
         (Expected("experiment", "is not a valid SageMaker experiment name", EXPERIMENT_FIX),), layer=SCHEMA),
    Case("experiment-non-ascii", "experiment: ねこ", "manifests/exp-neko.json", manifest(experiment="ねこ"),
         (Expected("experiment", '"ねこ" is not a valid SageMaker experiment name', EXPERIMENT_FIX),), layer=SCHEMA),
    Case("experiment-trailing-hyphen", "experiment: cats-", "manifests/exp-hyphen.json", manifest(experiment="cats-"),
         (Expected("experiment", "is not a valid SageMaker experiment name", "starting and ending with a letter"),),
         layer=SCHEMA),
    Case("experiment-too-long", "experiment of 121 characters", "manifests/exp-long.json",
         manifest(experiment="c" * 121),
         (Expected("experiment", "is too long (at most 120 characters)", "shorten it"),), layer=SCHEMA),
    # -- dataset references that leave the layout ---------------------------------------------------------
    Case("dataset-dotdot", "dataset: datasets/../manifests", "manifests/ds-dotdot.json",
         manifest(dataset="datasets/../manifests"),
         (Expected("dataset", "contains '..' or '.' and would leave the datasets/ prefix", DATASET_FIX),),
         layer=DATASET_REF),
    Case("dataset-absolute", "dataset: /datasets/cats-ok", "manifests/ds-abs.json",
         manifest(dataset=f"/datasets/{GOOD_DATASET}"),
         (Expected("dataset", "is an absolute path", DATASET_FIX),), layer=DATASET_REF),
    Case("dataset-other-bucket", "dataset: s3://other-bucket/datasets/cats-ok", "manifests/ds-uri.json",
         manifest(dataset=f"s3://other-bucket/datasets/{GOOD_DATASET}"),
         (Expected("dataset", "is a URI; datasets are read only from this bucket", DATASET_FIX),), layer=DATASET_REF),
    Case("dataset-other-prefix", "dataset: runs/cats-ok (another prefix)", "manifests/ds-prefix.json",
         manifest(dataset=f"runs/{GOOD_DATASET}"),
         (Expected("dataset", "is not one folder directly under datasets/", DATASET_FIX),), layer=DATASET_REF),
    Case("dataset-split", "dataset: datasets/cats-ok/train (a split, not a dataset)", "manifests/ds-split.json",
         manifest(dataset=f"datasets/{GOOD_DATASET}/train"),
         (Expected("dataset", "is not one folder directly under datasets/", DATASET_FIX),), layer=DATASET_REF),
    # -- datasets that do not exist or are not complete ------------------------------------------------------
    Case("dataset-missing", "manifest naming a dataset that was never uploaded", "manifests/ds-missing.json",
         manifest(dataset="datasets/cats-nowhere"),
         (Expected("dataset", "datasets/cats-nowhere does not exist in this bucket", UPLOAD_FIX),),
         layer="StartPipeline: dataset existence"),
    Case("dataset-still-uploading", "manifest naming a dataset whose images are there but no _dataset.json yet",
         "manifests/ds-uploading.json", manifest(dataset="datasets/cats-uploading"),
         (Expected("dataset", "datasets/cats-uploading is still uploading or incomplete: no _dataset.json yet",
                   UPLOAD_FIX),), prefixed("cats-uploading", _INCOMPLETE), layer="StartPipeline: dataset existence"),
    _marker_case("marker-before-images", "_dataset.json promising 12 images, 11 uploaded", "cats-partial",
                 _PARTIAL, (Expected("datasets/cats-partial/_dataset.json",
                                     "the dataset is incomplete or changed: _dataset.json lists 12 images "
                                     "(train: 4, val: 4, test: 4), the bucket has 11 (train: 4, val: 4, test: 3)",
                                     "finish uploading every image before _dataset.json"),),
                 marker_files=_PROMISED),
    _marker_case("marker-not-json", "_dataset.json that is not JSON", "cats-badmarker", image_tree("cats-badmarker"),
                 (Expected("datasets/cats-badmarker/_dataset.json", "is not valid JSON", MARKER_FIX),),
                 marker=b"classes: bengal, siamese", layer=MARKER),
    _marker_case("marker-no-counts", "_dataset.json without counts / content_hash", "cats-nocounts",
                 image_tree("cats-nocounts"),
                 (Expected("datasets/cats-nocounts/_dataset.json",
                           "lacks format=2 or has wrong types for: counts, split_hashes, content_hash", MARKER_FIX),),
                 marker=json.dumps({"format": 2, "dataset_id": "cats-nocounts", "classes": list(CLASSES), "files": {},
                                    "sealed_by": {"tool": "by hand"}}).encode(), layer=MARKER),
    # -- dataset content visible in the listing -------------------------------------------------------
    _marker_case("mismatched-classes", "train has a class (persian) that val and test lack", "cats-mismatch",
                 image_tree("cats-mismatch", {"train": (*CLASSES, "persian"), "val": CLASSES, "test": CLASSES}),
                 (Expected("dataset", "the val split lacks classes persian that other splits have",
                           "use the same class folders in train, val and test"),
                  Expected("dataset", "the test split lacks classes persian that other splits have",
                           "use the same class folders in train, val and test"))),
    _marker_case("empty-class", "class folder persian with images in train/val, none in test", "cats-emptyclass",
                 image_tree("cats-emptyclass", {"train": (*CLASSES, "persian"), "val": (*CLASSES, "persian"),
                                                "test": CLASSES}),
                 _ds("the test split lacks classes persian that other splits have",
                     "each with at least one image")),
    _marker_case("empty-split", "no test images at all", "cats-notest",
                 image_tree("cats-notest", {"train": CLASSES, "val": CLASSES}),
                 _ds("the test split has no images", "add datasets/cats-notest/test/<class>/<image> files")),
    _marker_case("one-class", "only one class", "cats-oneclass",
                 image_tree("cats-oneclass", {split: ("bengal",) for split in layout.SPLITS}),
                 _ds("only one class", "a classifier needs at least two class folders")),
    _marker_case("non-image", "a notes.txt among the images", "cats-notes",
                 image_tree("cats-notes", extra={"train/bengal/notes.txt": b"remember to feed Tama"}),
                 _ds("non-image files: datasets/cats-notes/train/bengal/notes.txt", "keep only images (.jpg")),
    _marker_case("zero-byte-image", "a zero-byte .jpg (an interrupted upload)", "cats-zero",
                 image_tree("cats-zero", extra={"val/siamese/empty.jpg": b""}),
                 _ds("zero-byte images: datasets/cats-zero/val/siamese/empty.jpg", "re-upload those images")),
    _marker_case("misplaced-file", "an image directly under train/ (no class folder)", "cats-misplaced",
                 image_tree("cats-misplaced", extra={"train/loose.jpg": fake_jpeg("loose")}),
                 _ds("files outside {train,val,test}/<class>/<image>: datasets/cats-misplaced/train/loose.jpg",
                     "ImageFolder layout")),
    # -- keys with spaces and non-ASCII characters (URL-encoded in the event) ---------------------------------
    Case("key-space-non-ascii", "bad manifest at 'manifests/epochs 10 ねこ.json'", "manifests/epochs 10 ねこ.json",
         hp(epochs="10"), (Expected("hyperparameters.epochs", 'must be a whole number, got "10"', "without quotes"),),
         layer=SCHEMA),
    Case("key-plus-percent", "bad manifest at 'manifests/Mike & Tama +100%.json'", "manifests/Mike & Tama +100%.json",
         manifest(dataset="datasets/cats-nowhere"),
         (Expected("dataset", "datasets/cats-nowhere does not exist in this bucket", UPLOAD_FIX),),
         layer="StartPipeline: dataset existence"),
    _marker_case("dataset-id-non-ascii", "a dataset at datasets/ねこ 2026/ (space, non-ASCII id)", "ねこ 2026",
                 image_tree("ねこ 2026"),
                 (Expected("dataset", "invalid dataset id 'ねこ 2026'", "use letters, digits, '.', '_' and '-'"),),
                 layer="StartPipeline: dataset id"),
    # -- code from outside code/ ------------------------------------------------------------------------------
    Case("code-outside-prefix", "code: ml_code/<hash> (outside code/)", "manifests/code-outside.json",
         manifest(code="ml_code/" + CODE_HASH),
         (Expected("code", "is not a code bundle in this bucket's code/ prefix (code from anywhere else is never run)",
                   CODE_FIX),), layer=CODE_REF),
    Case("code-other-bucket", "code: s3://attacker/code/<hash>", "manifests/code-uri.json",
         manifest(code="s3://attacker/code/" + CODE_HASH),
         (Expected("code", "is not a code bundle in this bucket's code/ prefix", CODE_FIX),), layer=CODE_REF),
    Case("code-dotdot", "code: code/../runs/x", "manifests/code-dotdot.json", manifest(code="code/../runs/x"),
         (Expected("code", "is not a code bundle in this bucket's code/ prefix", CODE_FIX),), layer=CODE_REF),
    Case("code-not-pushed", "code: code/<hash never pushed>", "manifests/code-missing.json",
         manifest(code="code/" + "f" * 64),
         (Expected("code", f"code/{'f' * 64} does not exist in this bucket", "push ml_code with `nyanops code push`"),),
         layer=CODE_REF),
)


# -- image contents: judged by decoding, not by StartPipeline -----------------------------------------------
def real_jpeg(seed: int = 0, size: int = 8) -> bytes:
    """A small valid JPEG (needs Pillow)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (size, size), (seed * 40 % 256, 120, 200)).save(buf, "JPEG")
    return buf.getvalue()


def bomb_png(width: int = 30000, height: int = 30000) -> bytes:
    """A valid PNG header claiming ``width`` x ``height`` pixels (900 megapixels), a few hundred bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" * (1 + width)  # filter byte + one grey byte per pixel; only the first rows are written
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(row * 4)) + chunk(b"IEND", b"")


@dataclass(frozen=True)
class ImageCase:
    id: str
    input: str
    path: str  # relative to the dataset folder
    make: Callable[[], bytes]
    problem: tuple[str, ...]  # fragments of the refusal's problem text
    layer: str = "nyanops dataset add (decodes every image); train.py on AWS"


IMAGE_CASES: tuple[ImageCase, ...] = (
    ImageCase("corrupt-jpeg", "a .jpg whose bytes are not an image", "train/bengal/corrupt.jpg",
              lambda: b"this is not a jpeg at all" * 10, ("cannot be used as an image (UnidentifiedImageError",)),
    ImageCase("truncated-jpeg", "a JPEG cut off after half its bytes", "val/siamese/truncated.jpg",
              lambda: real_jpeg(3, 64)[: len(real_jpeg(3, 64)) // 2],
              ("cannot be used as an image (OSError: Truncated File Read)",)),
    ImageCase("header-only-jpeg", "a JPEG with only its first 20 bytes", "test/bengal/header.jpg",
              lambda: real_jpeg(4, 64)[:20], ("cannot be used as an image (UnidentifiedImageError",)),
    ImageCase("decompression-bomb", "a 900-megapixel PNG of a few hundred bytes", "train/siamese/bomb.png",
              bomb_png, ("cannot be used as an image (DecompressionBombError: Image size (900000000 pixels)",)),
    ImageCase("oversized-png", "a 56-megapixel PNG (over the 50-megapixel limit, under Pillow's bomb limit)",
              "test/siamese/huge.png", lambda: bomb_png(8000, 7000),
              ("cannot be used as an image (ValueError: 8000x7000 pixels is larger than the 50000000 pixel limit)",)),
)
