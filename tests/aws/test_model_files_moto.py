"""A trial's model and code as local files (``nyanops.model_files``) from S3 under moto: the model downloaded once
per model URI and used again while its ETag is unchanged; the code bundle checked against its hash and
unpacked once; the local bucket's own files used in place."""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from nyanops import model_files
from nyanops.aws.s3_store import S3ObjectStore
from nyanops.code_bundle import build_bundle, push_bundle
from nyanops.core import layout
from nyanops.errors import CliError
from nyanops.local.bucket import LocalObjectStore

BUCKET = "nyanops-test-models"
MODEL_KEY = "runs/m-a/model/m-a-train/output/model.tar.gz"


class CountingStore(S3ObjectStore):
    def __init__(self, client: Any, bucket: str) -> None:
        super().__init__(client, bucket)
        self.gets: list[str] = []

    def get(self, key: str, version_id: str | None = None) -> bytes:
        self.gets.append(key)
        return super().get(key, version_id)


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[CountingStore]:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield CountingStore(client, BUCKET)


def code_tree(tmp_path: Path) -> Path:
    code = tmp_path / "ml_code"
    code.mkdir()
    (code / "inference.py").write_text("VALUE = 1\n")
    (code / "evaluation.py").write_text("# evaluation\n")
    return code


def test_a_model_is_downloaded_once_per_uri_and_again_when_it_changed(s3: CountingStore, tmp_path: Path) -> None:
    s3.put(MODEL_KEY, b"model v1", "application/gzip")
    uri = f"s3://{BUCKET}/{MODEL_KEY}"
    key = model_files.model_key(s3, uri)
    first = model_files.object_file(s3, key, tmp_path, "the model")
    assert first.downloaded and first.path.read_bytes() == b"model v1" and first.path.name == "model.tar.gz"
    again = model_files.object_file(s3, key, tmp_path, "the model")
    assert not again.downloaded and again.path == first.path and s3.gets == [MODEL_KEY]
    assert first.path.parent.name == hashlib.sha256(uri.encode()).hexdigest()[:32]  # one folder per model URI
    s3.put(MODEL_KEY, b"model v2 (overwritten)", "application/gzip")  # a new ETag
    changed = model_files.object_file(s3, key, tmp_path, "the model")
    assert changed.downloaded and changed.path.read_bytes() == b"model v2 (overwritten)"


def test_a_missing_model_or_one_outside_the_bucket_is_refused(s3: CountingStore, tmp_path: Path) -> None:
    with pytest.raises(CliError, match=f"the model s3://{BUCKET}/runs/gone/model.tar.gz does not exist"):
        model_files.object_file(s3, "runs/gone/model.tar.gz", tmp_path, "the model")
    with pytest.raises(CliError, match="is outside this pipeline's bucket nyanops-test-models"):
        model_files.model_key(s3, "s3://someone-else/model.tar.gz")
    with pytest.raises(CliError, match="is not an s3:// URI"):
        model_files.model_key(s3, "/tmp/model.tar.gz")


def test_the_code_bundle_is_checked_against_its_hash_and_unpacked_once(s3: CountingStore, tmp_path: Path) -> None:
    bundle = build_bundle(code_tree(tmp_path))
    push_bundle(s3, bundle)
    cache = tmp_path / "cache"
    folder = model_files.code_dir(s3, bundle.hash, cache)
    assert folder == cache / "code" / bundle.hash and (folder / "inference.py").read_text() == "VALUE = 1\n"
    assert model_files.code_dir(s3, bundle.hash, cache) == folder
    assert s3.gets.count(layout.code_bundle_key(bundle.hash)) == 1
    with pytest.raises(CliError, match=f"code/{'0' * 64} is gone from s3://{BUCKET}"):
        model_files.code_dir(s3, "0" * 64, cache)


def test_a_replaced_code_bundle_is_not_run(s3: CountingStore, tmp_path: Path) -> None:
    bundle = build_bundle(code_tree(tmp_path))
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        info = tarfile.TarInfo("inference.py")
        body = b"import os; os.system('something else')\n"
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
    s3.put(layout.code_bundle_key(bundle.hash), raw.getvalue(), "application/gzip")
    with pytest.raises(CliError, match="it is not the bundle the trial ran"):
        model_files.code_dir(s3, bundle.hash, tmp_path / "cache")
    assert not (tmp_path / "cache" / "code" / bundle.hash).exists()


def test_the_local_bucket_is_used_in_place(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "bucket")
    store.put(MODEL_KEY, b"model", "application/gzip")
    copy = model_files.object_file(store, MODEL_KEY, tmp_path / "cache", "the model")
    assert copy == model_files.LocalCopy(store.path(MODEL_KEY), False)
    with pytest.raises(CliError, match="is gone from the local bucket"):
        model_files.object_file(store, "runs/none/model.tar.gz", tmp_path / "cache", "the model")
    bundle = build_bundle(code_tree(tmp_path))
    push_bundle(store, bundle)
    assert (model_files.code_dir(store, bundle.hash, tmp_path / "cache") / "inference.py").is_file()
