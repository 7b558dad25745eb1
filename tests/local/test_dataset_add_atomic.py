"""``nyanops dataset add`` is all or nothing: every name is judged before anything is copied, an error or a
kill (SIGKILL included) during the copy leaves no dataset (only a staging folder the next start removes),
and of two concurrent adds of one id exactly one wins."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
import unicodedata
from pathlib import Path

import pytest

from nyanops.core import layout
from nyanops.core.rejection import UploadRejected
from nyanops.local import datasets as local_datasets
from nyanops.local.bucket import LocalObjectStore
from nyanops.local.datasets import STAGING_PREFIX, add_dataset

SRC = Path(__file__).resolve().parents[2] / "src"


def photos(folder: Path, classes: tuple[str, ...] = ("mike", "tama"), per_class: int = 2, size: int = 16) -> Path:
    for split in layout.SPLITS:
        for cls in classes:
            (folder / split / cls).mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                body = f"\xff\xd8 {split} {cls} {i} ".encode()
                (folder / split / cls / f"{i:04d}.jpg").write_bytes(body + b"\0" * max(0, size - len(body)))
    return folder


def nothing_in(store: LocalObjectStore) -> bool:
    datasets_dir = store.directory / layout.DATASETS_PREFIX
    leftovers = [p for p in store.directory.glob(STAGING_PREFIX + "*")]
    return not leftovers and (not datasets_dir.exists() or not any(datasets_dir.iterdir()))


def image_in(folder: Path) -> None:
    folder.mkdir(parents=True)
    (folder / "0000.jpg").write_bytes(b"\xff\xd8 a photo")


def bytes_name(folder: Path, name: bytes) -> bytes:
    return os.fsencode(folder) + b"/" + name


@pytest.mark.parametrize(
    ("make", "field", "problem"),
    [
        (lambda f: image_in(f / "train" / "mi\\ke"), "dataset", "class folder contains a backslash"),
        (lambda f: image_in(f / "train" / ".thumbs"), "dataset", "class folder starts with '.'"),
        (lambda f: image_in(f / "val" / "ta\x1bma"), "dataset", "class folder contains control characters"),
        (lambda f: open(bytes_name(f / "train" / "mike", b"caf\xe9.jpg"), "wb").close(), "dataset",
         "file name is not valid UTF-8"),
        (lambda f: os.symlink(f / "train" / "mike", f / "train" / "mike2"), "train/mike2",
         "is a symbolic link; links are not followed"),
        (lambda f: os.symlink(f / "train" / "mike" / "0000.jpg", f / "train" / "mike" / "link.jpg"),
         "train/mike/link.jpg", "is a symbolic link"),
        (lambda f: os.mkfifo(f / "train" / "mike" / "pipe.jpg"), "train/mike/pipe.jpg", "is not a regular file"),
    ],
    ids=["backslash", "dot-class", "control", "latin1-file", "symlinked-class", "symlinked-file", "fifo"],
)
def test_a_bad_name_or_entry_is_refused_before_anything_is_copied(tmp_path: Path, make, field: str,
                                                                  problem: str) -> None:
    folder = photos(tmp_path / "photos")
    make(folder)
    store = LocalObjectStore(tmp_path / "bucket")
    with pytest.raises(UploadRejected) as refused:
        add_dataset(store, folder, "cats")
    assert any(p.field == field and problem in p.problem for p in refused.value.problems), refused.value.problems
    assert nothing_in(store)


def test_class_names_that_collide_on_other_systems_are_refused(tmp_path: Path) -> None:
    nfc, nfd = unicodedata.normalize("NFC", "café"), unicodedata.normalize("NFD", "café")
    folder = photos(tmp_path / "photos", classes=("Tama", "tama", nfc, "mike"))
    for split in layout.SPLITS:
        os.rename(folder / split / nfc, folder / split / nfd) if split == "val" else None
    store = LocalObjectStore(tmp_path / "bucket")
    with pytest.raises(UploadRejected) as refused:
        add_dataset(store, folder, "cats")
    assert "differ only in case" in refused.value.message and "differ only in Unicode normalisation" in (
        refused.value.message)
    assert nothing_in(store)


def test_an_error_in_the_middle_of_the_copy_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = LocalObjectStore(tmp_path / "bucket")
    copy, calls = local_datasets._copy, []

    def disk_full_on_the_fourth(f, staged):  # type: ignore[no-untyped-def]
        calls.append(f)
        if len(calls) == 4:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(staged / f.rel))
        return copy(f, staged)

    monkeypatch.setattr(local_datasets, "_copy", disk_full_on_the_fourth)
    with pytest.raises(UploadRejected) as refused:
        add_dataset(store, photos(tmp_path / "photos"), "cats")
    [problem] = refused.value.problems
    assert problem.field == "(local bucket)" and "No space left on device" in problem.problem
    assert "nothing was added" in problem.fix
    assert nothing_in(store)


def _add(root: Path, folder: Path, name: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.Popen([sys.executable, "-m", "nyanops.cli", "--root", str(root), "dataset", "add", str(folder),
                             "--name", name, "--no-run"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def test_sigkill_during_the_copy_leaves_no_dataset_and_the_next_add_cleans_up(tmp_path: Path) -> None:
    folder = photos(tmp_path / "photos", classes=("mike", "tama"), per_class=700, size=32 * 1024)  # 4,200 files
    root = tmp_path / "root"
    proc = _add(root, folder, "big")
    bucket = root / "bucket"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        staging = list(bucket.glob(STAGING_PREFIX + "*")) if bucket.exists() else []
        if staging and sum(1 for _ in staging[0].rglob("*.jpg")) > 100:
            break
        assert proc.poll() is None, f"the add finished before it could be killed: {proc.communicate()}"
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    store = LocalObjectStore(bucket)
    assert not (bucket / "datasets" / "big").exists(), "a killed add never leaves a partial dataset"
    assert list(bucket.glob(STAGING_PREFIX + "*")), "only its staging folder, which no listing shows"
    assert list(store.list(layout.DATASETS_PREFIX)) == []
    _, marker = add_dataset(store, folder, "big")  # the next start removes the leftover, then adds
    assert marker["num_images"] == 4200
    assert not list(bucket.glob(STAGING_PREFIX + "*"))
    assert sum(1 for o in store.list(layout.dataset_prefix("big"))) == 4201


def test_two_concurrent_adds_of_one_id_one_wins_the_other_is_refused(tmp_path: Path) -> None:
    first = photos(tmp_path / "first", per_class=300)
    second = photos(tmp_path / "second", classes=("bengal", "siamese"), per_class=300)
    root = tmp_path / "root"
    procs = [_add(root, first, "same"), _add(root, second, "same")]
    outcomes = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    codes = sorted(code for code, _, _ in outcomes)
    assert codes == [0, 2], outcomes
    loser_err = next(err for code, _, err in outcomes if code == 2)
    assert "datasets/same" in loser_err and ("appeared while this dataset was being copied" in loser_err
                                             or "exists already" in loser_err)
    assert "Traceback" not in loser_err
    store = LocalObjectStore(root / "bucket")
    classes = {o.key.split("/")[3] for o in store.list(layout.dataset_prefix("same")) if o.key.count("/") == 4}
    assert classes in ({"mike", "tama"}, {"bengal", "siamese"}), "the winner's files only, never a mix"
    assert not list((root / "bucket").glob(STAGING_PREFIX + "*"))
