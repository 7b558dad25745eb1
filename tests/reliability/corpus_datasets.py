"""The datasets corpus: adversarial names, dataset contents, concurrency, replays and limits, each with the exact
outcome, run on both sides by the same runner (``run_case``):

* ``tests/reliability/test_corpus_datasets_local.py``: the local bucket, ``nyanops watch``'s dataset side
  (scans → the sealing core, a controlled clock) and the real StartPipeline handler;
* ``tests/aws/test_corpus_datasets_moto.py``: moto S3 / DynamoDB / SNS / Step Functions with the real
  NoteDatasetUploads, SealDatasets and StartPipeline handlers, fed the S3 events each upload would send.

A case uploads ``files`` under ``datasets/<id>/`` and then, by ``kind``:

* ``seal``: the pipeline's sealer runs after the quiet period (``sealers`` times);
* ``start``: a seal written by a tool (``seal_edit`` / ``seal_raw`` make it hand-made), ``after`` changes
  applied, then the seal's event goes to StartPipeline (``deliveries`` times);
* ``late``: a tool's seal, noticed, then ``after`` files arrive (each event ``deliveries`` times);
  ``replay_drop`` re-delivers every original upload event after the seal.

Every case asserts: the refusal (record ``rejected/<key>.error.json`` with exactly ``expected``'s fields, in
order, problem and fix fragments, notified) or none; exactly one notification per refusal; how many runs
started; no seal where the sealer refused (nothing partial); every object that was there is still there,
unchanged (nothing lost, nothing else written); no exception escapes (no traceback).
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from nyanops.core import dataset as datasets
from nyanops.core import layout

from .corpus import Expected

CLASSES = ("mike", "tama")
NFC, NFD = unicodedata.normalize("NFC", "café"), unicodedata.normalize("NFD", "café")
SEALED_BY = datasets.SealedBy(datasets.TOOL, "datasets corpus")
NAMES = "sealer: dataset names"
CONTENT = "sealer: dataset layout"
SEAL = "StartPipeline: the seal"
IDENTITY = "StartPipeline: listing vs the seal"
LATE = "noter: files after the seal"
ONCE = "exactly once (duplicates, replays, concurrency)"
LOCAL_AND_MOTO = ("local", "moto")
MOTO_ONLY = ("moto",)  # names a local file system cannot hold (".", "..", 256 bytes) but an S3 key can
LOCAL_ONLY = ("local",)  # names S3 cannot hold (not UTF-8) but a local folder can


def jpeg(label: str) -> bytes:
    return b"\xff\xd8\xff\xe0 " + label.encode("utf-8", "surrogateescape") + b" \xff\xd9"


def tree(classes: tuple[str, ...] = CLASSES, per_class: int = 2, extra: dict[str, bytes] | None = None,
         by_split: dict[str, tuple[str, ...]] | None = None) -> dict[str, bytes]:
    files = {
        f"{split}/{cls}/{i:03d}.jpg": jpeg(f"{split}/{cls}/{i}")
        for split in layout.SPLITS for cls in (by_split or {}).get(split, classes) for i in range(per_class)
    }
    files.update(extra or {})
    return files


def dataset_problem(problem: str, fix: str) -> tuple[Expected, ...]:
    return (Expected("dataset", problem, fix),)


@dataclass(frozen=True)
class DatasetCase:
    id: str
    input: str  # one line for the docs table
    layer: str
    kind: str  # "seal" | "start" | "late"
    files: dict[str, bytes]
    expected: tuple[Expected, ...] = ()  # the one refusal's problems, in order; () = accepted
    refused: str = layout.DATASET_MARKER  # the refused key, relative to datasets/<id>/
    after: dict[str, bytes | None] = field(default_factory=dict)  # changes after the seal (None: removed)
    seal_edit: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    seal_raw: bytes | None = None
    deliveries: int = 1
    sealers: int = 1
    replay_drop: bool = False
    runs: int = 0
    sides: tuple[str, ...] = LOCAL_AND_MOTO
    dataset_id: str = ""

    @property
    def did(self) -> str:
        return self.dataset_id or f"ds-{self.id}"


def _edit(path: str, value: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def edit(doc: dict[str, Any]) -> dict[str, Any]:
        node = doc
        *parents, last = path.split("|")
        for part in parents:
            node = node[part]
        node[last] = value
        return doc

    return edit


_LONG = "d" * 250
CASES: tuple[DatasetCase, ...] = (
    # -- names the sealer refuses (StartPipeline and dataset add apply the same rules) -----------------------
    DatasetCase("dot-class", "a class folder named .thumbs (train.py skips hidden folders)", NAMES, "seal",
                tree(extra={"train/.thumbs/a.jpg": jpeg("t"), "val/.thumbs/a.jpg": jpeg("v"),
                            "test/.thumbs/a.jpg": jpeg("s")}),
                dataset_problem("class folder starts with '.' (a hidden name: train.py skips it)",
                                "rename the class folder so it does not start with '.'")),
    DatasetCase("dot-segment", "a key with a '.' segment (train/./a.jpg)", NAMES, "seal",
                tree(extra={"train/./a.jpg": jpeg("dot")}),
                dataset_problem("class folder starts with '.'", "or remove it"), sides=MOTO_ONLY),
    DatasetCase("dotdot-segment", "a key with a '..' segment (train/../a.jpg)", NAMES, "seal",
                tree(extra={"train/../a.jpg": jpeg("dotdot")}),
                dataset_problem("class folder starts with '.'", "or remove it"), sides=MOTO_ONLY),
    DatasetCase("hidden-file", "an image named .a.jpg (train.py skips hidden files)", NAMES, "seal",
                tree(extra={"train/mike/.a.jpg": jpeg("hidden")}),
                dataset_problem("file name starts with '.' (a hidden name: train.py skips it): "
                                "'datasets/ds-hidden-file/train/mike/.a.jpg'", "rename the file name")),
    DatasetCase("tab-in-class", "a tab in a class folder name", NAMES, "seal",
                tree(classes=("mike", "ta\tma")),
                dataset_problem("class folder contains control characters: 'datasets/ds-tab-in-class/test/ta\\x09ma",
                                "without control characters")),
    DatasetCase("escape-in-file", "an escape sequence (ESC [2J) in a file name", NAMES, "seal",
                tree(extra={"val/tama/\x1b[2Jx.jpg": jpeg("esc")}),
                dataset_problem("file name contains control characters: "
                                "'datasets/ds-escape-in-file/val/tama/\\x1b[2Jx.jpg'", "without control characters")),
    DatasetCase("bidi-class", "a right-to-left override in a class folder name", NAMES, "seal",
                tree(classes=("mike", "ta\u202ema")),
                dataset_problem("class folder contains bidirectional control characters", "without bidirectional")),
    DatasetCase("backslash-class", "a backslash in a class folder name", NAMES, "seal",
                tree(classes=("mike", "ta\\ma")),
                dataset_problem("class folder contains a backslash", "Windows and some tools")),
    DatasetCase("latin1-file", "a file name that is not UTF-8 (Latin-1 bytes)", NAMES, "seal",
                tree(extra={"train/mike/caf\udce9.jpg": jpeg("latin1")}),
                dataset_problem("file name is not valid UTF-8: 'datasets/ds-latin1-file/train/mike/caf\\udce9.jpg'",
                                "UTF-8 characters"), sides=LOCAL_ONLY),
    DatasetCase("nfc-nfd-classes", "class café typed on Linux (NFC) in train, on a Mac (NFD) in val and test",
                NAMES, "seal", tree(by_split={"train": ("mike", NFC), "val": ("mike", NFD), "test": ("mike", NFD)}),
                dataset_problem("class folders differ only in Unicode normalisation", "one Unicode form")),
    DatasetCase("case-classes", "classes Tama and tama", NAMES, "seal", tree(classes=("mike", "Tama", "tama")),
                dataset_problem("class folders differ only in case (one folder on macOS and Windows, two classes "
                                "for train.py): 'Tama' and 'tama'", "give each class one spelling")),
    DatasetCase("nfc-nfd-files", "two files café.jpg, one NFC and one NFD, in one class folder", NAMES, "seal",
                tree(extra={f"train/mike/{NFC}.jpg": jpeg("nfc"), f"train/mike/{NFD}.jpg": jpeg("nfd")}),
                dataset_problem("file names differ only in Unicode normalisation (one file on macOS)",
                                "rename or remove one of each pair")),
    DatasetCase("name-256-bytes", "a class folder name of 256 bytes (file systems allow 255)", NAMES, "seal",
                tree(classes=("mike", "c" * 256)),
                dataset_problem("class folder is 256 bytes long (a class folder may have at most 255 bytes)",
                                "use a shorter class folder"), sides=MOTO_ONLY),
    DatasetCase("key-over-1024", "a key of 1,317 bytes (S3 allows 1,024), every segment under 255", NAMES, "seal",
                tree(extra={f"train/{_LONG}/{_LONG}/{_LONG}/{_LONG}/{_LONG}.jpg": jpeg("long")}),
                dataset_problem("keys longer than S3's 1024 bytes", "use shorter class folder and file names"),
                sides=MOTO_ONLY),
    DatasetCase("id-not-allowed", "a dataset id with a space and non-ASCII letters (datasets/ねこ 2026/)", NAMES,
                "seal", tree(), dataset_problem("invalid dataset id 'ねこ 2026'", "use letters, digits"),
                dataset_id="ねこ 2026"),
    # -- layout the sealer refuses ------------------------------------------------------------------------------
    DatasetCase("zero-byte-image", "a zero-byte .jpg (an upload cut short)", CONTENT, "seal",
                tree(extra={"test/tama/empty.jpg": b""}),
                dataset_problem("zero-byte images: datasets/ds-zero-byte-image/test/tama/empty.jpg",
                                "re-upload those images")),
    DatasetCase("readme-only", "only a README.md dropped at the dataset's top (beside the splits: not data)",
                CONTENT, "seal", {"README.md": b"photos to come"},
                (Expected("dataset", "the train split has no images", "train/<class>/<image>"),
                 Expected("dataset", "the val split has no images", "val/<class>/<image>"),
                 Expected("dataset", "the test split has no images", "test/<class>/<image>"))),
    DatasetCase("one-class-drop", "photos of one cat only", CONTENT, "seal", tree(classes=("mike",)),
                dataset_problem("only one class", "at least two class folders")),
    DatasetCase("loose-image", "an image directly under train/ (no class folder)", CONTENT, "seal",
                tree(extra={"train/loose.jpg": jpeg("loose")}),
                dataset_problem("files outside {train,val,test}/<class>/<image>: datasets/ds-loose-image/train/"
                                "loose.jpg", "ImageFolder layout")),
    DatasetCase("readme-beside", "a whole folder dropped with its README and licence beside the splits", CONTENT,
                "seal", tree(extra={"README.md": b"Mike and Tama", "LICENSE_NOTES.md": b"mine"}), runs=1),
    DatasetCase("readme-after-seal", "a README added beside the splits after the seal (not data, not late)", LATE,
                "late", tree(), after={"NOTES.md": b"more about Tama"}),
    # -- seals StartPipeline refuses -----------------------------------------------------------------------------
    DatasetCase("seal-format-1", "a _dataset.json of format 1 (an earlier nyanops)", SEAL, "start", tree(),
                (Expected(layout.DATASET_MARKER, "is format 1", "`nyanops dataset add DIR --name NEW-ID`"),),
                seal_raw=json.dumps({"format": 1, "content_hash": "0" * 64}).encode()),
    DatasetCase("seal-other-id", "a seal copied from another dataset", SEAL, "start", tree(),
                (Expected(layout.DATASET_MARKER, "names dataset 'cats-elsewhere' but is the seal of", "dataset add"),),
                seal_edit=_edit("dataset_id", "cats-elsewhere")),
    DatasetCase("seal-hash-edited", "a seal whose content_hash was edited by hand", SEAL, "start", tree(),
                (Expected(layout.DATASET_MARKER, "is inconsistent: content_hash do not match its files",
                          "dataset add"),), seal_edit=_edit("content_hash", "0" * 64)),
    DatasetCase("seal-count-edited", "a seal claiming one more image than its files", SEAL, "start", tree(),
                (Expected(layout.DATASET_MARKER, "is inconsistent: counts", "dataset add"),),
                seal_edit=_edit("counts|train|mike", 3)),
    DatasetCase("seal-bad-sha", "a seal listing a file without a sha256", SEAL, "start", tree(),
                (Expected(layout.DATASET_MARKER, "needs size (a whole number), sha256 (64 hex digits)",
                          "dataset add"),), seal_edit=_edit("files|train/mike/000.jpg|sha256", "abc")),
    DatasetCase("seal-no-run", "a seal with start_run false (dataset add --no-run)", SEAL, "start", tree(),
                seal_edit=_edit("start_run", False)),
    # -- the bucket no longer holds what the seal covers -----------------------------------------------------------
    DatasetCase("replaced-same-size", "an image replaced after sealing by another of the same size", IDENTITY,
                "start", tree(),
                (Expected(layout.DATASET_MARKER, "replaced after sealing (size or ETag differ): "
                          "datasets/ds-replaced-same-size/val/tama/001.jpg", "remove files added or replaced"),),
                after={"val/tama/001.jpg": jpeg("val/tama/9")}),
    DatasetCase("added-after-seal", "an image added after sealing", IDENTITY, "start", tree(),
                (Expected(layout.DATASET_MARKER, "not sealed (added after _dataset.json): "
                          "datasets/ds-added-after-seal/train/mike/new.jpg", "datasets are immutable"),),
                after={"train/mike/new.jpg": jpeg("new")}),
    DatasetCase("removed-after-seal", "an image removed after sealing", IDENTITY, "start", tree(),
                (Expected(layout.DATASET_MARKER, "not in the bucket: datasets/ds-removed-after-seal/test/mike/000.jpg",
                          "finish uploading every image"),), after={"test/mike/000.jpg": None}),
    # -- files after the seal --------------------------------------------------------------------------------------
    DatasetCase("late-new-file", "a new image after the seal", LATE, "late", tree(),
                (Expected("datasets/ds-late-new-file/train/tama/late.jpg",
                          "arrived after datasets/ds-late-new-file was sealed; datasets are immutable",
                          "upload the changed dataset to a new id"),), refused="train/tama/late.jpg",
                after={"train/tama/late.jpg": jpeg("late")}),
    DatasetCase("late-replaced-file", "a sealed image overwritten after the seal", LATE, "late", tree(),
                (Expected("datasets/ds-late-replaced-file/val/mike/000.jpg", "arrived after", "remove it"),),
                refused="val/mike/000.jpg", after={"val/mike/000.jpg": jpeg("val/mike/0 retouched")}),
    # -- exactly once --------------------------------------------------------------------------------------------
    DatasetCase("sealer-twice-seal-event-thrice", "the sealer runs twice; the seal's event reaches StartPipeline "
                "three times", ONCE, "seal", tree(), sealers=2, deliveries=3, runs=1),
    DatasetCase("late-event-thrice", "a late file's event delivered three times", ONCE, "late", tree(),
                (Expected("datasets/ds-late-event-thrice/test/tama/late.jpg", "arrived after", "new id"),),
                refused="test/tama/late.jpg", after={"test/tama/late.jpg": jpeg("late")}, deliveries=3),
    DatasetCase("replayed-upload-events", "every upload event replayed after the seal (sealed files, not late)",
                ONCE, "late", tree(), replay_drop=True),
    DatasetCase("refused-prefix-replayed", "a refused prefix whose events are replayed: looked at again, "
                "notified once", ONCE, "seal", tree(extra={"train/mike/notes.txt": b"feed Tama"}),
                dataset_problem("non-image files: datasets/ds-refused-prefix-replayed/train/mike/notes.txt",
                                "keep only images"), sealers=2, replay_drop=True),
)


class Side(Protocol):
    """One side (local or moto) as the runner drives it."""

    def drop(self, dataset_id: str, files: dict[str, bytes], note: bool) -> None: ...

    def replay(self, dataset_id: str) -> None: ...

    def seal(self) -> list[str]: ...

    def put_seal(self, dataset_id: str, body: bytes, note: bool) -> None: ...

    def etag(self, key: str) -> str | None: ...

    def change(self, dataset_id: str, changes: dict[str, bytes | None], note: bool, deliveries: int) -> None: ...

    def start(self, dataset_id: str, deliveries: int) -> list[str]: ...

    def record(self, key: str) -> dict[str, Any] | None: ...

    def exists(self, key: str) -> bool: ...

    def notifications(self) -> int: ...

    def executions(self) -> int: ...

    def snapshot(self) -> dict[str, str]: ...


def tool_seal(case: DatasetCase, side: Side) -> bytes:
    """The seal `dataset add` would write for ``case.files`` (sizes, sha256, the bucket's ETags), edited as the
    case says."""
    if case.seal_raw is not None:
        return case.seal_raw
    prefix = layout.dataset_prefix(case.did)
    files = [datasets.DatasetFile(rel, len(body), hashlib.sha256(body).hexdigest(), side.etag(prefix + rel))
             for rel, body in case.files.items()]
    doc = datasets.build_marker(case.did, files, sealed_by=SEALED_BY)
    if case.seal_edit is not None:
        doc = case.seal_edit(doc)
    return json.dumps(doc).encode()


def run_case(case: DatasetCase, side: Side) -> None:
    did, prefix = case.did, layout.dataset_prefix(case.did)
    marker_key = layout.dataset_marker_key(did)
    side.drop(did, case.files, note=case.kind != "start")
    if case.kind == "seal":
        initial = side.snapshot()
        outcomes = []
        for n in range(case.sealers):
            outcomes += side.seal()
            if n == 0 and case.replay_drop:
                side.replay(did)
        if case.expected:
            assert "refused" in outcomes and "sealed" not in outcomes, outcomes
        else:
            assert outcomes.count("sealed") == 1, outcomes
    else:
        side.put_seal(did, tool_seal(case, side), note=case.kind == "late")
        side.change(did, case.after, note=case.kind == "late", deliveries=case.deliveries)
        if case.replay_drop:
            side.replay(did)
        initial = side.snapshot()
    if case.kind != "late" and side.exists(marker_key):
        side.start(did, case.deliveries)
    assert side.executions() == case.runs
    assert side.notifications() == (1 if case.expected else 0)
    record = side.record(prefix + case.refused)
    if not case.expected:
        assert record is None or case.kind == "start", record
    else:
        assert record is not None, f"no refusal record for {prefix + case.refused}"
        assert record["notified"] is True and record["key"] == prefix + case.refused
        problems = record["problems"]
        assert len(problems) == len(case.expected), problems
        for want, got in zip(case.expected, problems, strict=True):
            field_name = want.field if "/" in want.field or want.field == "dataset" else prefix + want.field
            assert got["field"] == field_name, (got, want)
            assert want.problem in got["problem"], (got["problem"], want.problem)
            assert want.fix in got["fix"], (got["fix"], want.fix)
        if case.kind == "seal":
            assert not side.exists(marker_key), "a refused prefix is never sealed (nothing partial)"
    final = side.snapshot()
    assert {k: final.get(k) for k in initial} == initial, "nothing lost, nothing changed"
    written = set(final) - set(initial)
    assert written <= {marker_key}, f"nothing but the seal and refusal records written: {written}"
    if case.kind == "seal":
        assert (marker_key in written) is not bool(case.expected)
