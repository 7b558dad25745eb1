"""Building the demo's three-class sample from photos in Oxford-IIIT Pet's layout: a small fake of that
dataset made here (Pillow, so these run in the ML virtualenv), built directly and fetched end to end from
a local HTTP server."""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections import Counter
from pathlib import Path

import pytest

from nyanops import sample_photos as sp

pytestmark = [pytest.mark.ml, pytest.mark.allow_hosts(["127.0.0.1"])]
OTHER_BREEDS = [b for b in sp.CAT_BREEDS if b not in sp.TARGET_BREEDS]


def fake_oxford(root: Path) -> Path:
    """images/ and annotations/list.txt as in Oxford-IIIT Pet, with what the real one has too: dogs, a
    duplicate, an undecodable file, a PNG and a greyscale photo named .jpg, photos larger than 320 px, a
    listed photo that is missing and a photo that is not listed."""
    from PIL import Image

    images = root / "images"
    images.mkdir(parents=True)
    listed = []
    per_breed = {"Bengal": 125, "Persian": 125, **dict.fromkeys(OTHER_BREEDS, 14), "beagle": 5}
    for b, (breed, n) in enumerate(per_breed.items()):
        for i in range(1, n + 1):
            size = (640, 480) if i % 20 == 0 else (24, 18)
            Image.new("RGB", size, (i, b * 10, 99)).save(images / f"{breed}_{i}.jpg", comment=f"{breed} {i}")
            listed.append(f"{breed}_{i} {b + 1} {2 if breed.islower() else 1} {b + 1}")
    (images / "Bengal_500.jpg").write_bytes((images / "Bengal_7.jpg").read_bytes())  # duplicate
    (images / "Persian_500.jpg").write_bytes(b"not a JPEG at all")  # undecodable
    Image.new("RGBA", (30, 20), (1, 2, 3, 128)).save(images / "Sphynx_500.jpg", format="PNG")
    Image.new("L", (400, 300), 77).save(images / "Siamese_500.jpg", quality=90)
    Image.new("RGB", (20, 20), (5, 5, 5)).save(images / "Bengal_600.jpg")  # not in list.txt: never used
    listed += ["Bengal_500 2 1 2", "Persian_500 8 1 8", "Sphynx_500 12 1 12", "Siamese_500 11 1 11"]
    listed += ["Bombay_999 4 1 4"]  # listed, file missing
    (root / "annotations").mkdir()
    header = "#Image CLASS-ID SPECIES BREED ID\n#SPECIES: 1:Cat 2:Dog\n"
    (root / "annotations" / "list.txt").write_text(header + "\n".join(listed) + "\n")
    return root


@pytest.fixture(scope="module")
def oxford(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fake_oxford(tmp_path_factory.mktemp("oxford"))


def listing(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.jpg"))


def test_the_sample_has_cats_dev_s_classes_counts_and_photo_format(oxford: Path, tmp_path: Path) -> None:
    from PIL import Image

    counts = sp.build_sample_folder(oxford, tmp_path / "s")
    assert counts == {"bengal": 115, "persian": 115, "other": 125}
    for split, quotas in zip(sp.SPLITS, zip(*sp.COUNTS.values(), strict=True), strict=True):
        assert sorted(p.name for p in (tmp_path / "s" / split).iterdir()) == ["bengal", "other", "persian"]
        for cls, quota in zip(sp.COUNTS, quotas, strict=True):
            photos = list((tmp_path / "s" / split / cls).iterdir())
            assert len(photos) == quota, (split, cls)
            breeds = {p.name.rsplit("_", 1)[0] for p in photos}
            assert breeds == ({cls.capitalize()} if cls != "other" else set(OTHER_BREEDS)), (split, cls)
    for path in (tmp_path / "s").rglob("*.jpg"):
        with Image.open(path) as image:
            assert image.format == "JPEG" and image.mode == "RGB" and max(image.size) <= sp.LONGEST_SIDE
    names = [p.name for p in (tmp_path / "s").rglob("*.jpg")]
    assert "Bengal_20.jpg" in names or "Persian_20.jpg" in names  # a 640x480 photo, now 320x240
    assert not {"Persian_500.jpg", "Bengal_600.jpg"} & set(names) and not any(n.islower() for n in names)


def test_no_photo_is_in_two_splits_and_exact_duplicates_count_once(oxford: Path, tmp_path: Path) -> None:
    sp.build_sample_folder(oxford, tmp_path / "s")
    files = listing(tmp_path / "s")
    assert len({f.split("/", 1)[1] for f in files}) == len(files)  # no name twice
    sources = [line.split("\t") for line in (tmp_path / "s" / "SOURCES.tsv").read_text().splitlines()[1:]]
    assert sorted(row[0] for row in sources) == files
    digests = Counter(row[3] for row in sources)
    assert max(digests.values()) == 1  # no source content twice
    candidates = [c.path.name for cs in sp.plan_sample(oxford).values() for c in cs]
    assert ("Bengal_7.jpg" in candidates) != ("Bengal_500.jpg" in candidates)  # one of the two is ever a candidate
    for row in sources:
        assert hashlib.md5((oxford / row[2]).read_bytes()).hexdigest() == row[3]


def test_the_same_seed_gives_the_same_files_and_another_seed_others(oxford: Path, tmp_path: Path) -> None:
    sp.build_sample_folder(oxford, tmp_path / "a", seed=0)
    sp.build_sample_folder(oxford, tmp_path / "b", seed=0)
    sp.build_sample_folder(oxford, tmp_path / "c", seed=1)
    assert listing(tmp_path / "a") == listing(tmp_path / "b") != listing(tmp_path / "c")
    assert all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in listing(tmp_path / "a"))


def test_too_few_usable_photos_is_a_clear_error(tmp_path: Path) -> None:
    oxford = fake_oxford(tmp_path / "ox")
    for path in list((oxford / "images").glob("Persian_1*.jpg")):
        path.unlink()
    with pytest.raises(sp.FetchFailed, match=r"only \d+ usable persian photos in the download, 115 needed"):
        sp.build_sample_folder(oxford, tmp_path / "s")


def tar_gz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_fetched_end_to_end_from_a_server_built_once_then_reused_offline(
    oxford: Path, tmp_path: Path, archive_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nyanops.local.datasets import scan_folder

    monkeypatch.delenv(sp.SAMPLE_DATA_ENV, raising=False)
    images = {f"images/{p.name}": p.read_bytes() for p in sorted((oxford / "images").iterdir())}
    images["images/Abyssinian_1.mat"] = b"MATLAB 5.0"  # the real archive has a few of these
    bodies = {
        "annotations.tar.gz": tar_gz({"annotations/list.txt": (oxford / "annotations" / "list.txt").read_bytes()}),
        "images.tar.gz": tar_gz(images),
    }
    archives = []
    for name, body in bodies.items():
        archive_server.files[name] = body
        archives.append(sp.Archive(name, archive_server.url(name), hashlib.md5(body).hexdigest(), len(body)))
    cache, out = tmp_path / "cache", io.StringIO()
    built = sp.find_or_fetch_sample_photos(None, tmp_path / "checkout", cache_dir=cache, out=out, archives=archives)
    assert built == cache / "oxford-iiit-pet" / "cats-sample-seed0"
    assert listing(built) == listing(_built_directly(oxford, tmp_path))
    text = out.getvalue()
    assert f"no sample photos at {tmp_path / 'shared' / 'datasets' / 'cats-dev'}" in text
    assert "images.tar.gz: 100%" in text and "Oxford-IIIT Pet (O. M. Parkhi" in text and "CC BY-SA 4.0" in text
    assert f"rm -r {cache / 'oxford-iiit-pet' / 'downloads'}" in text
    assert sorted(p.name for p in built.parent.iterdir()) == ["cats-sample-seed0", "downloads"]  # no leftovers
    licence = (built / "LICENSE.md").read_text()
    assert "Parkhi" in licence and "CC BY-SA 4.0" in licence and "seed 0" in licence
    files, beside = scan_folder(built)  # what `nyanops dataset add` takes: the photos, not the notes
    assert len(files) == 355 and beside == ["LICENSE.md", "README.md", "SOURCES.tsv"]
    # What the demo says to do afterwards is true: without the archives, the sample is still used.
    requests = len(archive_server.requests)
    for path in (cache / "oxford-iiit-pet" / "downloads").iterdir():
        path.unlink()
    (cache / "oxford-iiit-pet" / "downloads").rmdir()
    again = sp.find_or_fetch_sample_photos(None, tmp_path / "checkout", cache_dir=cache, out=io.StringIO())
    assert again == built and len(archive_server.requests) == requests


def _built_directly(oxford: Path, tmp_path: Path) -> Path:
    sp.build_sample_folder(oxford, tmp_path / "direct")
    return tmp_path / "direct"
