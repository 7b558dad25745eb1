"""Where the demo's photos come from, and the resumable, verified download of the public ones, against a
local HTTP server (no test here reaches beyond 127.0.0.1; none needs Pillow)."""

from __future__ import annotations

import hashlib
import io
import itertools
import os
import socket
import tarfile
from pathlib import Path

import pytest

from nyanops import cli
from nyanops import sample_photos as sp

pytestmark = pytest.mark.allow_hosts(["127.0.0.1"])
REPO = Path(__file__).resolve().parents[2]


def archive(server, name: str, body: bytes, *, md5: str | None = None, size: int | None = None) -> sp.Archive:
    server.files[name] = body
    return sp.Archive(name, server.url(name), md5 or hashlib.md5(body).hexdigest(), len(body) if size is None else size)


def closed_port_archives() -> tuple[sp.Archive, ...]:
    """Archives at a local port nothing listens on: the connection is refused at once, as offline."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return tuple(sp.Archive(a.name, f"http://127.0.0.1:{port}/{a.name}", a.md5, a.size) for a in sp.OXFORD_ARCHIVES)


def image_folder(root: Path) -> Path:
    for split in ("train", "val", "test"):
        (root / split / "cats").mkdir(parents=True)
    return root


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (sp.SAMPLE_DATA_ENV, sp.CACHE_ENV, "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)


# -- the download ------------------------------------------------------------------------------------------
def test_download_verifies_moves_into_place_and_prints_plain_progress_lines(archive_server, tmp_path: Path) -> None:
    body = os.urandom(3 * sp.CHUNK + 1234)
    out = io.StringIO()
    path = sp.download(archive(archive_server, "images.tar.gz", body), tmp_path / "dl", out=out)
    assert path == tmp_path / "dl" / "images.tar.gz" and path.read_bytes() == body
    assert not (tmp_path / "dl" / "images.tar.gz.part").exists()
    text = out.getvalue()
    assert "downloading images.tar.gz (3.0 MiB)" in text and "\r" not in text
    percents = [int(line.split()[1].rstrip("%")) for line in text.splitlines() if line.startswith("  images.tar.gz: ")]
    assert len(percents) <= 10 and all(b // 10 > a // 10 for a, b in itertools.pairwise(percents))
    assert text.endswith("  images.tar.gz: 100% (3.0 MiB of 3.0 MiB)\n")


def test_download_draws_a_progress_bar_on_a_terminal(archive_server, tmp_path: Path) -> None:
    out = Terminal()
    sp.download(archive(archive_server, "a.tar.gz", os.urandom(2 * sp.CHUNK)), tmp_path, out=out)
    text = out.getvalue()
    assert "\r\033[K  a.tar.gz [" + "#" * 30 + "] 100% 2.0 MiB of 2.0 MiB" in text and text.endswith("\n")


def test_an_archive_already_there_and_intact_is_not_downloaded_again(archive_server, tmp_path: Path) -> None:
    a = archive(archive_server, "a.tar.gz", b"payload")
    (tmp_path / "a.tar.gz").write_bytes(b"payload")
    assert sp.download(a, tmp_path, out=io.StringIO()).read_bytes() == b"payload"
    assert archive_server.requests == []
    (tmp_path / "a.tar.gz").write_bytes(b"payloaX")  # damaged since: fetched afresh
    assert sp.download(a, tmp_path, out=io.StringIO()).read_bytes() == b"payload"
    assert archive_server.requests == [("a.tar.gz", None)]


def test_a_checksum_mismatch_is_a_clear_error_and_the_bad_file_is_removed(archive_server, tmp_path: Path) -> None:
    a = archive(archive_server, "a.tar.gz", b"what the server has", md5=hashlib.md5(b"what we expect").hexdigest())
    with pytest.raises(sp.FetchFailed, match="checksum mismatch") as failed:
        sp.download(a, tmp_path, out=io.StringIO())
    assert "removed, run again" in str(failed.value) and a.md5 in str(failed.value)
    assert list(tmp_path.iterdir()) == []


def test_an_interrupted_download_is_kept_and_resumed_with_a_range_request(archive_server, tmp_path: Path) -> None:
    body = os.urandom(2 * sp.CHUNK + 77)
    a = archive(archive_server, "a.tar.gz", body)
    archive_server.cut_after = sp.CHUNK + 5
    with pytest.raises(sp.FetchFailed, match=r"interrupted after 1\.0 MiB of 2\.0 MiB") as failed:
        sp.download(a, tmp_path, out=io.StringIO())
    assert "run again to resume" in str(failed.value)
    assert (tmp_path / "a.tar.gz.part").stat().st_size == sp.CHUNK + 5 and not (tmp_path / "a.tar.gz").exists()
    out = io.StringIO()
    assert sp.download(a, tmp_path, out=out).read_bytes() == body
    assert archive_server.requests[-1] == ("a.tar.gz", f"bytes={sp.CHUNK + 5}-")
    assert "resuming at 1.0 MiB a.tar.gz" in out.getvalue() and not (tmp_path / "a.tar.gz.part").exists()


def test_a_server_that_ignores_range_restarts_the_download_cleanly(archive_server, tmp_path: Path) -> None:
    body = os.urandom(sp.CHUNK + 99)
    a = archive(archive_server, "a.tar.gz", body)
    (tmp_path / "a.tar.gz.part").write_bytes(b"stale bytes from some other attempt")
    archive_server.honour_range = False
    out = io.StringIO()
    assert sp.download(a, tmp_path, out=out).read_bytes() == body
    assert archive_server.requests == [("a.tar.gz", "bytes=35-")]
    assert "downloading a.tar.gz" in out.getvalue()


def test_a_part_as_long_as_the_archive_is_verified_not_fetched_again(archive_server, tmp_path: Path) -> None:
    a = archive(archive_server, "a.tar.gz", b"complete body")
    (tmp_path / "a.tar.gz.part").write_bytes(b"complete body")
    assert sp.download(a, tmp_path, out=io.StringIO()).read_bytes() == b"complete body"
    assert archive_server.requests == []
    (tmp_path / "a.tar.gz").unlink()
    (tmp_path / "a.tar.gz.part").write_bytes(b"complete bodX")  # full length but wrong: started over
    assert sp.download(a, tmp_path, out=io.StringIO()).read_bytes() == b"complete body"
    assert archive_server.requests == [("a.tar.gz", None)]


def test_a_stalled_download_times_out_and_is_kept_for_resuming(archive_server, tmp_path: Path) -> None:
    body = os.urandom(sp.CHUNK + 10)
    a = archive(archive_server, "a.tar.gz", body)
    archive_server.cut_after, archive_server.stall = 10, 1.0
    with pytest.raises(sp.FetchFailed, match=r"interrupted after 0.0 MiB of 1.0 MiB \(TimeoutError"):
        sp.download(a, tmp_path, out=io.StringIO(), timeout=0.3)
    assert (tmp_path / "a.tar.gz.part").read_bytes() == body[:10]
    assert sp.download(a, tmp_path, out=io.StringIO()).read_bytes() == body
    assert archive_server.requests[-1] == ("a.tar.gz", "bytes=10-")


def test_a_part_the_server_cannot_resume_is_removed_so_the_next_run_starts_over(archive_server, tmp_path: Path) -> None:
    a = archive(archive_server, "a.tar.gz", b"0123456789", size=20)  # the server's file is shorter than the part
    (tmp_path / "a.tar.gz.part").write_bytes(b"0123456789ab")
    with pytest.raises(sp.FetchFailed, match="HTTP 416; the partial download was removed"):
        sp.download(a, tmp_path, out=io.StringIO())
    assert archive_server.requests == [("a.tar.gz", "bytes=12-")] and list(tmp_path.iterdir()) == []


def test_an_unwritable_cache_is_a_clear_message_not_a_traceback(
    archive_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_env: None
) -> None:
    monkeypatch.setattr(sp, "OXFORD_ARCHIVES", (archive(archive_server, "a.tar.gz", b"x"),))
    (tmp_path / "cache").write_text("a file where the cache folder should be")
    with pytest.raises(sp.SamplePhotosUnavailable, match=r"File exists|Not a directory") as failed:
        sp.find_or_fetch_sample_photos(None, tmp_path / "checkout", cache_dir=tmp_path / "cache", out=io.StringIO())
    assert "--data DIR" in str(failed.value)


def test_http_errors_and_unreachable_servers_say_what_was_tried(archive_server, tmp_path: Path) -> None:
    missing = sp.Archive("gone.tar.gz", archive_server.url("gone.tar.gz"), "0" * 32, 10)
    with pytest.raises(sp.FetchFailed, match=r"gone\.tar\.gz: HTTP 404"):
        sp.download(missing, tmp_path, out=io.StringIO())
    offline = closed_port_archives()[0]
    with pytest.raises(sp.FetchFailed, match="Connection refused") as failed:
        sp.download(offline, tmp_path, out=io.StringIO())
    assert offline.url in str(failed.value)
    assert list(tmp_path.iterdir()) == []


# -- where the photos come from --------------------------------------------------------------------------
def test_photos_at_hand_are_used_in_the_order_data_env_shared_without_any_download(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_env: None
) -> None:
    monkeypatch.setattr(sp, "OXFORD_ARCHIVES", closed_port_archives())
    project = tmp_path / "checkout"
    shared = image_folder(tmp_path / "shared" / "datasets" / "cats-dev")
    given, env = image_folder(tmp_path / "given"), image_folder(tmp_path / "env")
    cache, out = tmp_path / "cache", io.StringIO()
    assert sp.find_or_fetch_sample_photos(str(given), project, cache_dir=cache) == given
    assert sp.find_or_fetch_sample_photos(None, project, cache_dir=cache, out=out) == shared
    assert out.getvalue() == ""  # with ../shared present the demo says and does what it always did
    monkeypatch.setenv(sp.SAMPLE_DATA_ENV, str(env))
    assert sp.find_or_fetch_sample_photos(None, project, cache_dir=cache) == env
    monkeypatch.setenv(sp.SAMPLE_DATA_ENV, str(tmp_path / "nothing"))  # as today: falls back to shared
    assert sp.find_or_fetch_sample_photos(None, project, cache_dir=cache) == shared
    assert not cache.exists()


def test_a_folder_asked_for_by_name_that_is_not_there_is_an_error_not_a_download(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_env: None
) -> None:
    monkeypatch.setattr(sp, "OXFORD_ARCHIVES", closed_port_archives())
    with pytest.raises(sp.SamplePhotosUnavailable, match=r"no sample photos in .*nothing: --data needs"):
        sp.find_or_fetch_sample_photos(str(tmp_path / "nothing"), tmp_path / "checkout", cache_dir=tmp_path / "c")
    monkeypatch.setenv(sp.SAMPLE_DATA_ENV, str(tmp_path / "nothing"))
    with pytest.raises(sp.SamplePhotosUnavailable, match=f"from {sp.SAMPLE_DATA_ENV}"):
        sp.find_or_fetch_sample_photos(None, tmp_path / "checkout", cache_dir=tmp_path / "c")
    assert not (tmp_path / "c").exists()


def test_a_sample_built_earlier_is_used_offline_with_its_attribution(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_env: None
) -> None:
    monkeypatch.setattr(sp, "OXFORD_ARCHIVES", closed_port_archives())
    monkeypatch.setenv(sp.CACHE_ENV, str(tmp_path / "cache"))
    built = image_folder(tmp_path / "cache" / "oxford-iiit-pet" / "cats-sample-seed0")
    out = io.StringIO()
    assert sp.find_or_fetch_sample_photos(None, tmp_path / "checkout", out=out) == built
    text = out.getvalue()
    assert "Oxford-IIIT Pet (O. M. Parkhi" in text and "CC BY-SA 4.0" in text and "rm -r" not in text
    (built.parent / "downloads").mkdir()
    out = io.StringIO()
    sp.find_or_fetch_sample_photos(None, tmp_path / "checkout", out=out)
    assert f"no longer needed: rm -r {built.parent / 'downloads'}" in out.getvalue()


def test_the_cache_dir_is_nyanops_cache_dir_else_xdg_else_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_env: None
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert sp.default_cache_dir() == tmp_path / "home" / ".cache" / "nyanops"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert sp.default_cache_dir() == tmp_path / "xdg" / "nyanops"
    monkeypatch.setenv(sp.CACHE_ENV, str(tmp_path / "mine"))
    assert sp.default_cache_dir() == tmp_path / "mine"


def test_a_failed_build_leaves_nothing_half_built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    annotations = tmp_path / "annotations.tar.gz"
    with tarfile.open(annotations, "w:gz") as tar:
        data = b"Bengal_1 2 1 1\n"
        info = tarfile.TarInfo("annotations/list.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))

    def half_then_crash(oxford_dir: Path, target: Path, *, seed: int) -> dict[str, int]:
        (target / "train" / "bengal").mkdir(parents=True)
        raise KeyboardInterrupt

    monkeypatch.setattr(sp, "build_sample_folder", half_then_crash)
    target = tmp_path / "cache" / "cats-sample-seed0"
    with pytest.raises(KeyboardInterrupt):
        sp.build_from_archives([annotations], target)
    assert list(target.parent.iterdir()) == []


# -- the demo on a fresh machine, offline -------------------------------------------------------------------
def test_demo_offline_with_no_photos_exits_2_with_one_clear_message_and_builds_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], clean_env: None
) -> None:
    checkout = tmp_path / "fresh" / "nyanops"  # nothing at fresh/shared
    checkout.mkdir(parents=True)
    for name in ("statemachine", "functions", "ml_code"):
        (checkout / name).symlink_to(REPO / name)
    monkeypatch.setenv("NYANOPS_PROJECT", str(checkout))
    monkeypatch.setattr(sp, "OXFORD_ARCHIVES", closed_port_archives())
    cache = tmp_path / "cache"
    code = cli.main(["--root", str(tmp_path / "root"), "demo", "--cache-dir", str(cache)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert err.startswith("nyanops: no sample photos found at ")
    total = sum(a.size for a in sp.OXFORD_ARCHIVES)
    for needed in ("Oxford-IIIT Pet", f"{total / 2**20:.1f} MiB", sp.OXFORD_ARCHIVES[0].url, "--data DIR",
                   sp.SAMPLE_DATA_ENV, str(tmp_path / "fresh" / "shared" / "datasets" / "cats-dev")):  # fmt: skip
        assert needed in err
    assert not cache.exists()  # nothing half-built: nothing at all


def test_the_readme_states_the_download_size_and_licence() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    total = sum(a.size for a in sp.OXFORD_ARCHIVES)
    assert f"{round(total / 2**20)} MiB" in readme and "Oxford-IIIT Pet" in readme and "CC BY-SA 4.0" in readme
