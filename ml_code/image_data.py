"""Image folders in, uint8 tensors out: class discovery, checks with fixable messages, one decode per image.

Each image is read once, hashed, decoded (EXIF rotation applied, any mode converted to RGB), resized so
its shorter side is ``stored_size`` and centre-cropped square. Training then crops / augments these
tensors in batches every epoch instead of decoding JPEGs again.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import torch
from content_identity import combined_hash, file_hash, short, split_hash
from job_contract import InputError
from PIL import Image, ImageOps, UnidentifiedImageError
from torch.nn import functional as F

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
# Larger images are refused rather than risking memory exhaustion (PIL's own bomb check is at 2x this).
MAX_IMAGE_PIXELS = 100_000_000
# Stored side per training side: the classic 256 / 224 resize-then-crop ratio.
STORE_RATIO = 256 / 224


def stored_size(image_size: int) -> int:
    return math.ceil(image_size * STORE_RATIO)


def find_classes(root: str, split: str = "data") -> list[str]:
    """Sorted class folder names under ``root``; every class folder must contain at least one image."""
    if not root or not os.path.isdir(root):
        raise InputError(f"{root}: {split} folder not found; it must contain one sub-folder per class")
    classes = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    if not classes:
        raise InputError(f"{root}: no class folders in the {split} folder; expected {root}/<class>/<image>")
    for name in classes:
        if not any(_is_image_name(f) for f in os.listdir(os.path.join(root, name))):
            raise InputError(f"{os.path.join(root, name)}: class folder has no images; add photos or remove the folder")
    return classes


def check_same_classes(classes_by_split: dict[str, list[str]]) -> list[str]:
    """The common class list; an error naming the differences when the splits disagree."""
    splits = list(classes_by_split)
    reference = classes_by_split[splits[0]]
    for split in splits[1:]:
        other = classes_by_split[split]
        if other != reference:
            only_ref = sorted(set(reference) - set(other))
            only_other = sorted(set(other) - set(reference))
            raise InputError(
                f"class folders differ between {splits[0]} and {split}: only in {splits[0]}: {only_ref or '-'}; "
                f"only in {split}: {only_other or '-'}; every split needs the same class folders"
            )
    return reference


def _is_image_name(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)


def list_images(root: str, class_names: Sequence[str]) -> list[tuple[str, int]]:
    """(path relative to ``root``, class index) for every image, sorted; non-image files are an error."""
    items = []
    for index, name in enumerate(class_names):
        folder = os.path.join(root, name)
        for entry in sorted(os.listdir(folder)):
            path = os.path.join(folder, entry)
            if entry.startswith(".") or os.path.isdir(path):
                continue  # hidden files (.DS_Store) and nested folders are not part of the dataset
            if not _is_image_name(entry):
                raise InputError(
                    f"{path}: not an image file (extension {os.path.splitext(entry)[1] or 'none'}); "
                    f"remove it or convert it to one of {', '.join(IMAGE_EXTENSIONS)}"
                )
            items.append((f"{name}/{entry}", index))
    return items


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB view of any PIL image: transparency composited on white, CMYK / grayscale / 16-bit converted."""
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image.convert("RGBA"), mask=image.convert("RGBA").getchannel("A"))
        return background
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        image = image.point(lambda v: v / 256).convert("L")
    if image.mode == "F":
        image = image.convert("L")
    return image.convert("RGB") if image.mode != "RGB" else image


def decode_image(data: bytes, path: str, side: int) -> torch.Tensor:
    """uint8 tensor (3, side, side): shorter side resized to ``side``, centre-cropped square."""
    if not data:
        raise InputError(f"{path}: empty file (0 bytes); remove or replace it")
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                raise InputError(
                    f"{path}: image too large ({width}x{height} pixels, limit {MAX_IMAGE_PIXELS:,}); "
                    "downscale it (e.g. to 4000 pixels on the long side)"
                )
            # JPEG can decode directly at 1/2, 1/4, 1/8 scale: big photos cost little.
            image.draft("RGB", (side, side))
            image = ImageOps.exif_transpose(image)
            image = to_rgb(image)
            scale = side / min(image.size)
            new_size = (max(side, round(image.width * scale)), max(side, round(image.height * scale)))
            image = image.resize(new_size, Image.Resampling.BILINEAR, reducing_gap=3.0)
            left, top = (image.width - side) // 2, (image.height - side) // 2
            image = image.crop((left, top, left + side, top + side))
            tensor = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8)
    except InputError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
        kind = "image too large" if isinstance(exc, Image.DecompressionBombError) else "not a readable image"
        raise InputError(f"{path}: {kind} ({exc.__class__.__name__}); remove or replace it") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{path}: cannot decode image (corrupt or truncated: {exc}); remove or replace it") from None
    return tensor.view(side, side, 3).permute(2, 0, 1).contiguous()


@dataclass
class SplitFiles:
    """The image files of one split, read and hashed but not decoded: enough to check the dataset identity."""

    root: str
    class_names: list[str]
    items: list[tuple[str, int]]  # (path relative to root, class index), sorted as list_images sorts
    file_hashes: list[str]
    content_hash: str  # content_identity.split_hash of the files

    def __len__(self) -> int:
        return len(self.items)


@dataclass
class ImageSet:
    """Decoded images of one split: ``images`` uint8 (N, 3, S, S), ``labels`` int64 (N,)."""

    root: str
    class_names: list[str]
    paths: list[str]
    images: torch.Tensor
    labels: torch.Tensor
    content_hash: str

    def __len__(self) -> int:
        return len(self.paths)


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise InputError(f"{path}: cannot read file ({exc.strerror}); check permissions") from None


def _threads(workers: int) -> int:
    return workers if workers > 0 else (os.cpu_count() or 1)


def scan_split(root: str, class_names: Sequence[str], workers: int = 0) -> SplitFiles:
    """List and hash every image under ``root`` (no decoding): the split's content identity."""
    items = list_images(root, class_names)
    with ThreadPoolExecutor(max_workers=_threads(workers)) as pool:
        hashes = list(pool.map(lambda item: file_hash(_read(os.path.join(root, item[0]))), items))
    return SplitFiles(
        root=root,
        class_names=list(class_names),
        items=items,
        file_hashes=hashes,
        content_hash=split_hash((rel, h) for (rel, _), h in zip(items, hashes, strict=True)),
    )


def verify_split(files: SplitFiles, split: str, expected: str) -> None:
    """Refuse a split whose content differs from the hash it was sealed with (``expected``; empty = no check)."""
    sealed = expected.strip().lower().split(":", 1)[-1]
    if not sealed or sealed == files.content_hash:
        return
    raise InputError(
        f"{files.root}: the {split} split differs from the sealed dataset (content hash {short(files.content_hash)}, "
        f"sealed {short(sealed)}; {len(files)} image files found): an image was replaced, added or removed after "
        "sealing; upload the dataset again under a new dataset id"
    )


def decode_split(
    files: SplitFiles, side: int, workers: int = 0, on_image: Callable[[], None] | None = None
) -> ImageSet:
    """Decode every image of a scanned split (threads: PIL decodes without the GIL)."""

    def decode(item: tuple[str, int]) -> torch.Tensor:
        path = os.path.join(files.root, item[0])
        return decode_image(_read(path), path, side)

    decoded = []
    with ThreadPoolExecutor(max_workers=_threads(workers)) as pool:
        for tensor in pool.map(decode, files.items):  # in order, in this thread: progress needs no lock
            decoded.append(tensor)
            if on_image is not None:
                on_image()
    images = torch.stack(decoded) if decoded else torch.empty((0, 3, side, side), dtype=torch.uint8)
    return ImageSet(
        root=files.root,
        class_names=list(files.class_names),
        paths=[rel for rel, _ in files.items],
        images=images,
        labels=torch.tensor([label for _, label in files.items], dtype=torch.long),
        content_hash=files.content_hash,
    )


def load_image_set(root: str, class_names: Sequence[str], side: int, workers: int = 0) -> ImageSet:
    """Read, hash and decode every image under ``root``."""
    return decode_split(scan_split(root, class_names, workers), side, workers)


def dataset_hash(hashes: dict[str, str]) -> str:
    """One content hash for several splits, as recorded in model_meta.json (``sha256:`` + combined_hash)."""
    return "sha256:" + combined_hash(hashes)


def normalize(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 (N, 3, H, W) -> float, scaled to [0, 1] and normalized per channel."""
    m = torch.tensor(mean, device=images.device).view(1, 3, 1, 1)
    s = torch.tensor(std, device=images.device).view(1, 3, 1, 1)
    return (images.float() / 255.0 - m) / s


def center_crop(images: torch.Tensor, size: int) -> torch.Tensor:
    top = (images.shape[-2] - size) // 2
    left = (images.shape[-1] - size) // 2
    return images[..., top : top + size, left : left + size]


def augment_batch(images: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """The seed article's augmentation on a normalized float batch, as one affine resampling per image.

    RandomCrop(size) from the stored square, RandomHorizontalFlip, RandomVerticalFlip and
    RandomAffine(degrees=10, translate=0.1, scale=AUGMENT_SCALE); empty borders take the mean colour.
    """
    n = images.shape[0]

    def uniform(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(n, generator=generator)

    crop = size / images.shape[-1]  # output spans this fraction of the stored square
    angle = uniform(-AUGMENT_DEGREES, AUGMENT_DEGREES) * math.pi / 180
    scale = uniform(*AUGMENT_SCALE)
    hflip = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
    vflip = torch.where(torch.rand(n, generator=generator) < AUGMENT_VFLIP_P, -1.0, 1.0)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = cos * crop / scale * hflip
    theta[:, 0, 1] = -sin * crop / scale * vflip
    theta[:, 1, 0] = sin * crop / scale * hflip
    theta[:, 1, 1] = cos * crop / scale * vflip
    shift = (1 - crop) + 2 * AUGMENT_TRANSLATE * crop
    theta[:, 0, 2] = uniform(-shift, shift)
    theta[:, 1, 2] = uniform(-shift, shift)
    grid = F.affine_grid(theta.to(images.device), [n, 3, size, size], align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


AUGMENT_DEGREES = 10.0
AUGMENT_TRANSLATE = 0.1
AUGMENT_SCALE = (0.8, 1.2)
AUGMENT_VFLIP_P = 0.5
