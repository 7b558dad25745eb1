"""The demo's sample photos: a folder at hand, or else the public Oxford-IIIT Pet photos fetched once.

``nyanops demo`` looks for photos where it always did (``--data``, ``NYANOPS_SAMPLE_DATA``,
``../shared/datasets/cats-dev`` beside the checkout). When none is there it downloads Oxford-IIIT Pet
once into the user's cache directory (resumable, checksum-verified) and builds from its twelve cat
breeds a three-class ImageFolder in the shape of cats-dev: ``bengal``, ``persian`` and ``other``,
train / val / test = 40 / 25 / 50 (60 for ``other``), deterministic for a given seed. The built folder
carries the licence and attribution beside its splits; the archives can be deleted once it exists.
"""

from __future__ import annotations

import hashlib
import http.client
import itertools
import os
import random
import shutil
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from PIL import Image

SAMPLE_DATA_ENV = "NYANOPS_SAMPLE_DATA"
CACHE_ENV = "NYANOPS_CACHE_DIR"
SHARED_SAMPLE = Path("shared") / "datasets" / "cats-dev"  # beside the checkout: <checkout>/../shared/...


@dataclass(frozen=True)
class Archive:
    name: str
    url: str
    md5: str
    size: int  # bytes


# URLs and MD5s as in torchvision 0.29's ``torchvision.datasets.OxfordIIITPet._RESOURCES``; sizes are the
# Content-Length the server sends for them. Only tests replace them (``archives=``, or this module attribute), with
# archives they build and serve on 127.0.0.1.
OXFORD_PAGE = "https://www.robots.ox.ac.uk/~vgg/data/pets/"
OXFORD_ARCHIVES = (
    Archive(
        "annotations.tar.gz",
        "https://www.robots.ox.ac.uk/~vgg/data/pets/data/annotations.tar.gz",
        "95a8c909bbe2e81eed6a22bccdf3f68f",
        19_173_078,
    ),
    Archive(
        "images.tar.gz",
        "https://www.robots.ox.ac.uk/~vgg/data/pets/data/images.tar.gz",
        "5c4f3ee8e5d25df40f4fd59a7f44e54c",
        791_918_971,
    ),
)
ATTRIBUTION = (
    'Oxford-IIIT Pet (O. M. Parkhi, A. Vedaldi, A. Zisserman, C. V. Jawahar, "Cats and Dogs", IEEE CVPR 2012), '
    f"{OXFORD_PAGE}"
)
LICENCE, LICENCE_URL = "CC BY-SA 4.0", "https://creativecommons.org/licenses/by-sa/4.0/"

# The twelve cat breeds (file-name prefixes in images/) and the demo's three classes, as in cats-dev.
CAT_BREEDS = (
    "Abyssinian", "Bengal", "Birman", "Bombay", "British_Shorthair", "Egyptian_Mau",
    "Maine_Coon", "Persian", "Ragdoll", "Russian_Blue", "Siamese", "Sphynx",
)  # fmt: skip
TARGET_BREEDS = {"Bengal": "bengal", "Persian": "persian"}  # every other cat breed is "other"
SPLITS = ("train", "val", "test")
COUNTS = {"bengal": (40, 25, 50), "persian": (40, 25, 50), "other": (40, 25, 60)}
LONGEST_SIDE, JPEG_QUALITY = 320, 90
DEFAULT_SEED = 0
TIMEOUT_S = 15  # connect and each read: offline fails at once (DNS) or after this at most
CHUNK = 1 << 20


class SamplePhotosUnavailable(Exception):
    """No sample photos could be found or fetched; the message is the whole story for the user."""


class FetchFailed(Exception):
    """One archive could not be downloaded or verified (message: what and why)."""


def default_cache_dir() -> Path:
    """``$NYANOPS_CACHE_DIR``, else ``$XDG_CACHE_HOME/nyanops``, else ``~/.cache/nyanops``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "nyanops"


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def _is_image_folder(path: Path) -> bool:
    return (path / "train").is_dir()


# -- the entry point the CLI calls ------------------------------------------------------------------------
def find_or_fetch_sample_photos(
    given: str | None,
    project: Path | None,
    *,
    cache_dir: Path | None = None,
    out: TextIO = sys.stdout,
    seed: int = DEFAULT_SEED,
    archives: Sequence[Archive] | None = None,
) -> Path:
    """The demo's photos: ``given`` (``--data``), else ``$NYANOPS_SAMPLE_DATA``, else cats-dev beside the
    checkout, else the Oxford-IIIT Pet sample in the cache (downloaded and built on first use).
    ``archives`` is for tests only (default: Oxford's)."""
    archives = archives or OXFORD_ARCHIVES
    if given:
        if _is_image_folder(Path(given)):
            return Path(given)
        raise SamplePhotosUnavailable(
            f"no sample photos in {given}: --data needs a folder with train/, val/ and test/ class folders of "
            "images (ImageFolder layout)"
        )
    env = os.environ.get(SAMPLE_DATA_ENV)
    shared = project.parent / SHARED_SAMPLE if project is not None else None
    for candidate in (Path(env) if env else None, shared):
        if candidate is not None and _is_image_folder(candidate):
            return candidate
    if env:  # asked for a particular folder: say so rather than download something else
        raise SamplePhotosUnavailable(
            f"no sample photos in {env} (from {SAMPLE_DATA_ENV}): it needs train/, val/ and test/ class folders "
            f"of images (ImageFolder layout); fix it, unset it, or pass --data DIR"
        )
    cache = cache_dir or default_cache_dir()
    try:
        return fetch_oxford_sample(cache, out=out, seed=seed, archives=archives, note_missing=shared)
    except (FetchFailed, OSError) as exc:  # OSError: an unwritable cache, a full disk
        raise SamplePhotosUnavailable(_unavailable_message(str(exc), shared, cache, archives)) from None


def _unavailable_message(reason: str, shared: Path | None, cache: Path, archives: Sequence[Archive]) -> str:
    total = sum(a.size for a in archives)
    where = shared if shared is not None else f"../{SHARED_SAMPLE.as_posix()}"
    return (
        f"no sample photos found at {where}, and fetching the public Oxford-IIIT Pet photos "
        f"({_mib(total)}, {LICENCE}) into {cache} failed:\n"
        f"  {reason}\n"
        "Provide photos in any one of three ways (a folder with train/, val/ and test/ class folders):\n"
        "  - nyanops demo --data DIR\n"
        f"  - export {SAMPLE_DATA_ENV}=DIR\n"
        f"  - put the cats-dev folder at {where}\n"
        f"or run again with network access ({CACHE_ENV} or --cache-dir choose where the download goes)."
    )


def built_sample_dir(cache: Path, seed: int = DEFAULT_SEED) -> Path:
    """Where the sample built from Oxford-IIIT Pet lives in the cache directory (built or not)."""
    return cache / "oxford-iiit-pet" / f"cats-sample-seed{seed}"


def fetch_oxford_sample(
    cache: Path,
    *,
    out: TextIO = sys.stdout,
    seed: int = DEFAULT_SEED,
    archives: Sequence[Archive] | None = None,
    note_missing: Path | None = None,
) -> Path:
    """The built sample folder in ``cache``, downloading and building it first if it is not there yet."""
    archives = archives or OXFORD_ARCHIVES
    built = built_sample_dir(cache, seed)
    base = built.parent
    downloads = base / "downloads"
    if not _is_image_folder(built):
        missing = f"no sample photos at {note_missing}; " if note_missing is not None else ""
        print(
            f"{missing}fetching the public Oxford-IIIT Pet photos once ({_mib(sum(a.size for a in archives))}, "
            f"{LICENCE}) into {base}",
            file=out,
            flush=True,
        )
        paths = [download(a, downloads, out=out) for a in archives]
        print(f"building the three-class sample (bengal, persian, other; seed {seed}) in {built}", file=out, flush=True)
        build_from_archives(paths, built, seed=seed)
    print(f"sample photos: {built}", file=out)
    print(f"  from {ATTRIBUTION}", file=out)
    print(
        f"  licence {LICENCE} ({LICENCE_URL}); copyright with the photographers; see {built / 'LICENSE.md'}", file=out
    )
    if downloads.is_dir():
        print(f"  the downloaded archives are no longer needed: rm -r {downloads}", file=out)
    out.flush()
    return built


# -- download: resumable, verified --------------------------------------------------------------------------
def md5_of(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def download(archive: Archive, dest: Path, *, out: TextIO = sys.stdout, timeout: float = TIMEOUT_S) -> Path:
    """``dest/<name>``, verified against the archive's size and MD5. A partial ``<name>.part`` is resumed with
    an HTTP Range request (a server that ignores it sends everything again and the part is restarted); a file
    that fails the checksum is removed. Raises FetchFailed."""
    final = dest / archive.name
    if final.is_file():
        if md5_of(final) == archive.md5:
            return final
        final.unlink()
    part = dest / f"{archive.name}.part"
    have = part.stat().st_size if part.is_file() else 0
    if have >= archive.size:  # complete already, or longer than it can be: verify, or start over
        if have == archive.size and md5_of(part) == archive.md5:
            part.replace(final)
            return final
        part.unlink()
        have = 0
    request = urllib.request.Request(archive.url, headers={"User-Agent": "nyanops"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416:  # the part does not fit what the server has now: start over next time
            part.unlink(missing_ok=True)
            raise FetchFailed(f"{archive.url}: HTTP 416; the partial download was removed, run again") from None
        raise FetchFailed(f"{archive.url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise FetchFailed(f"{archive.url}: {reason}") from None
    with response:
        resumed = (
            have > 0
            and response.status == 206
            and response.headers.get("Content-Range", "").startswith(f"bytes {have}-")
        )
        start = have if resumed else 0
        dest.mkdir(parents=True, exist_ok=True)
        verb = f"resuming at {_mib(start)}" if resumed else "downloading"
        print(f"{verb} {archive.name} ({_mib(archive.size)}) from {archive.url}", file=out, flush=True)
        meter = _Meter(out, archive.name, archive.size, start)
        with part.open("ab" if resumed else "wb") as f:
            try:
                while chunk := response.read1(CHUNK):  # what has arrived: a timeout loses none of it
                    f.write(chunk)
                    meter.advance(len(chunk))
            except (OSError, http.client.HTTPException) as exc:
                meter.close()
                raise FetchFailed(_interrupted(archive, part, f.tell(), repr(exc))) from None
        meter.close()
    got = part.stat().st_size
    if got < archive.size:
        raise FetchFailed(_interrupted(archive, part, got, "the connection closed early"))
    actual = md5_of(part)
    if got != archive.size or actual != archive.md5:
        part.unlink()
        raise FetchFailed(
            f"{archive.url}: checksum mismatch ({got} bytes, md5 {actual}; expected {archive.size} bytes, md5 "
            f"{archive.md5}); the bad file was removed, run again to download it afresh"
        )
    part.replace(final)
    return final


def _interrupted(archive: Archive, part: Path, got: int, why: str) -> str:
    return (
        f"{archive.url}: interrupted after {_mib(got)} of {_mib(archive.size)} ({why}); run again to resume "
        f"({part} is kept)"
    )


class _Meter:
    """A progress bar redrawn in place on a terminal; a plain line every 10 % otherwise."""

    def __init__(self, out: TextIO, label: str, total: int, start: int = 0) -> None:
        self.out, self.label, self.total, self.done = out, label, max(total, 1), start
        self.interactive = out.isatty()
        self.started, self.start_bytes, self.drawn = time.monotonic(), start, 0.0
        self.next_percent = (start * 100 // self.total) // 10 * 10 + 10

    def advance(self, n: int) -> None:
        self.done += n
        percent = self.done * 100 // self.total
        if self.interactive:
            now = time.monotonic()
            if now - self.drawn >= 0.1 or self.done >= self.total:
                self.drawn = now
                self._draw(percent)
        else:
            if percent >= self.next_percent:
                print(f"  {self.label}: {min(percent, 100)}% ({_mib(self.done)} of {_mib(self.total)})", file=self.out)
                self.out.flush()
                self.next_percent = percent // 10 * 10 + 10

    def _draw(self, percent: int) -> None:
        width = 30
        filled = min(width, width * percent // 100)
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = (self.done - self.start_bytes) / elapsed
        bar = "#" * filled + "-" * (width - filled)
        self.out.write(
            f"\r\033[K  {self.label} [{bar}] {percent:3d}% {_mib(self.done)} of {_mib(self.total)} {_mib(int(rate))}/s"
        )
        self.out.flush()

    def close(self) -> None:
        if self.interactive:
            self._draw(self.done * 100 // self.total)
            self.out.write("\n")
            self.out.flush()


# -- building the three-class ImageFolder ---------------------------------------------------------------------
def build_from_archives(archives: Sequence[Path], target: Path, *, seed: int = DEFAULT_SEED) -> dict[str, int]:
    """Extract the cat photos and list.txt from Oxford's archives and build ``target`` from them. Everything
    happens in a temporary folder beside ``target``, renamed into place only when complete."""
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".building-", dir=target.parent))
    try:
        extract_cats(archives, work / "oxford")
        counts = build_sample_folder(work / "oxford", work / "sample", seed=seed)
        try:
            (work / "sample").rename(target)
        except OSError:  # another run finished first: keep theirs
            if not _is_image_folder(target):
                raise
        return counts
    finally:
        shutil.rmtree(work, ignore_errors=True)


def read_cat_names(list_txt: str) -> list[str]:
    """The image names Oxford's annotations/list.txt gives as cats (``<name> <class> <species> <breed>``,
    species 1 = cat, 2 = dog; comment lines start with #)."""
    names = []
    for line in list_txt.splitlines():
        fields = line.split()
        if len(fields) >= 3 and not line.startswith("#") and fields[2] == "1":
            names.append(fields[0])
    return names


def extract_cats(archives: Iterable[Path], dest: Path) -> None:
    """Oxford's layout under ``dest``, cats only: ``annotations/list.txt`` and ``images/<Breed>_<n>.jpg`` for the
    twelve cat breeds (one pass over each archive). Members are matched by name and written under names built
    here, so no path from an archive is trusted."""
    (dest / "annotations").mkdir(parents=True)
    (dest / "images").mkdir()
    for archive in archives:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                name = member.name.removeprefix("./")
                folder, _, filename = name.partition("/")
                wanted = (name == "annotations/list.txt") or (
                    folder == "images" and filename.endswith(".jpg") and filename.rsplit("_", 1)[0] in CAT_BREEDS
                )
                extracted = tar.extractfile(member) if wanted and member.isfile() else None
                if extracted is not None:
                    (dest / folder / filename).write_bytes(extracted.read())
    if not (dest / "annotations" / "list.txt").is_file():
        raise FetchFailed("annotations/list.txt is missing from the downloaded archives; delete them and retry")


@dataclass(frozen=True)
class Candidate:
    path: Path
    breed: str
    md5: str


def plan_sample(oxford_dir: Path, seed: int = DEFAULT_SEED) -> dict[str, list[Candidate]]:
    """Per class, the candidate photos in the order they fill train, then val, then test: exact duplicates
    dropped (the first name in sorted order kept), each breed shuffled with ``seed``, and ``other`` taking
    its ten breeds in turn so that every split mixes them all."""
    names = read_cat_names((oxford_dir / "annotations" / "list.txt").read_text(encoding="utf-8", errors="replace"))
    by_breed: dict[str, list[Candidate]] = {b: [] for b in CAT_BREEDS}
    seen: set[str] = set()
    for name in sorted(set(names)):
        breed = name.rsplit("_", 1)[0]
        if breed not in by_breed:
            raise FetchFailed(f"list.txt names {name} a cat, but {breed} is not one of Oxford's twelve cat breeds")
        path = oxford_dir / "images" / f"{name}.jpg"
        if not path.is_file():
            continue
        digest = md5_of(path)
        if digest not in seen:
            seen.add(digest)
            by_breed[breed].append(Candidate(path, breed, digest))
    for breed, candidates in by_breed.items():
        random.Random(f"{seed}/{breed}").shuffle(candidates)
    plan = {cls: by_breed[breed] for breed, cls in TARGET_BREEDS.items()}
    others = itertools.zip_longest(*(by_breed[b] for b in CAT_BREEDS if b not in TARGET_BREEDS))
    plan["other"] = [c for turn in others for c in turn if c is not None]
    return plan


def build_sample_folder(oxford_dir: Path, target: Path, *, seed: int = DEFAULT_SEED) -> dict[str, int]:
    """Write ``target/{train,val,test}/{bengal,persian,other}/<Breed>_<n>.jpg`` (RGB, longest side at most
    320 px, JPEG quality 90) plus README.md, LICENSE.md and SOURCES.tsv beside the splits. A photo that
    cannot be decoded is skipped for the next candidate. Returns the number of photos per class."""
    from PIL import Image

    rows = ["file\tbreed\tsource\tsource_md5"]
    counts: dict[str, int] = {}
    for cls, candidates in plan_sample(oxford_dir, seed).items():
        slots = [split for split, n in zip(SPLITS, COUNTS[cls], strict=True) for _ in range(n)]
        decoded = ((c, photo) for c in candidates if (photo := _load_rgb(c.path)) is not None)
        for split, (candidate, photo) in zip(slots, decoded, strict=False):  # stops when the slots are full
            photo.thumbnail((LONGEST_SIDE, LONGEST_SIDE), Image.Resampling.LANCZOS)
            rel = Path(split) / cls / candidate.path.name
            (target / rel.parent).mkdir(parents=True, exist_ok=True)
            photo.save(target / rel, "JPEG", quality=JPEG_QUALITY)
            rows.append(f"{rel.as_posix()}\t{candidate.breed}\timages/{candidate.path.name}\t{candidate.md5}")
            counts[cls] = counts.get(cls, 0) + 1
        if counts.get(cls, 0) < len(slots):
            raise FetchFailed(
                f"only {counts.get(cls, 0)} usable {cls} photos in the download, {len(slots)} needed; "
                "delete the archives and retry"
            )
    (target / "SOURCES.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (target / "LICENSE.md").write_text(_licence_text(seed), encoding="utf-8")
    (target / "README.md").write_text(_readme_text(seed), encoding="utf-8")
    return counts


def _load_rgb(path: Path) -> Image.Image | None:
    from PIL import Image  # imported here: the serverless virtualenv has no Pillow

    try:
        with Image.open(path) as image:
            image.load()
            return image.convert("RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return None


def _licence_text(seed: int) -> str:
    return f"""# Licence and attribution

These photos are derived from the Oxford-IIIT Pet dataset:
O. M. Parkhi, A. Vedaldi, A. Zisserman, C. V. Jawahar, "Cats and Dogs", IEEE Conference on Computer Vision
and Pattern Recognition (CVPR), 2012. {OXFORD_PAGE}

The dataset is released under the Creative Commons Attribution-ShareAlike 4.0 International licence
(CC BY-SA 4.0, https://creativecommons.org/licenses/by-sa/4.0/). The copyright of the images remains with
their original owners (mostly Flickr and web photographers).

Changes made here by nyanops: only the twelve cat breeds; exact duplicates removed; converted to RGB,
resized to a longest side of at most {LONGEST_SIDE} px and saved as JPEG quality {JPEG_QUALITY}; split into
train / val / test with seed {seed}. These derived files are likewise under CC BY-SA 4.0. The origin of
every file is listed in SOURCES.tsv.
"""


def _readme_text(seed: int) -> str:
    table = "\n".join(f"| {s} | " + " | ".join(str(COUNTS[c][i]) for c in COUNTS) + " |" for i, s in enumerate(SPLITS))
    return f"""# Sample cat photos for the nyanops demo (built from Oxford-IIIT Pet, seed {seed})

ImageFolder layout: `{{train,val,test}}/{{bengal,persian,other}}/<Breed>_<n>.jpg`, RGB JPEG (quality
{JPEG_QUALITY}), longest side at most {LONGEST_SIDE} px.

| split | {" | ".join(COUNTS)} |
|---|---:|---:|---:|
{table}

`other` mixes the ten remaining cat breeds, taken in turn, including look-alikes of both targets. The
breed of every file is its name prefix. No image repeats across splits. Licence: see LICENSE.md.
"""
