"""A folder of your own images, one sub-folder per class, read into training and test arrays.

Checked before anything is trained: every problem (one class, an empty class, an unreadable image, too few
images) is refused with one sentence that says how to fix the folder.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image

from cnnviz.data import GALLERY_DIR_NAME, GALLERY_INDEX_NAME, PreparedData, Split
from cnnviz.errors import CnnvizError
from cnnviz.images import ImageError, read_image, to_network_input

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff")
IMAGE_KINDS = ", ".join(suffix[1:] for suffix in IMAGE_SUFFIXES)
MIN_CLASSES, MAX_CLASSES = 2, 20
MIN_IMAGES_PER_CLASS = 10  # enough for a few to fit, one to select the epoch and a couple to test on
INPUT_SIZES = (32, 128)
COLOUR_CHOICES = ("auto", "grey", "colour")
GREY_TOLERANCE = 2  # grey levels: JPEG leaves tiny channel differences in grey photos

T = TypeVar("T")
Progress = Callable[[Iterable[T], int, str], Iterator[T]]


class FolderError(CnnvizError, ValueError):
    """The image folder cannot be trained on; the message says why and how to fix it."""


def _no_progress(items: Iterable[T], total: int, label: str) -> Iterator[T]:
    return iter(items)


def _quiet(message: str) -> None:
    """The default for `say`: a library caller that wants the notices passes `print` or its own logger."""


def scan_folder(root: str | os.PathLike, say: Callable[[str], None] = _quiet) -> dict[str, list[Path]]:
    """Class name → its image files (sorted), checked for the number of classes and images.

    Other files in the class folders (notes, labels, a stray PDF) are left out, and `say` is told which, once.
    """
    root = Path(root)
    if not root.is_dir():
        raise FolderError(f"{root} is not a folder; pass a folder with one sub-folder of images per class.")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        loose = [p for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
        where = f"holds {len(loose)} images but" if loose else "has"
        raise FolderError(
            f"{root} {where} no class sub-folders; put each class's images in a sub-folder named after the class "
            f"({root}/cat/, {root}/dog/, …)."
        )
    if not MIN_CLASSES <= len(folders) <= MAX_CLASSES:
        listed = ", ".join(p.name for p in folders[:5]) + (", …" if len(folders) > 5 else "")
        raise FolderError(
            f"{root} has {len(folders)} class folder{'s' * (len(folders) != 1)} ({listed}); "
            f"cnnviz trains on {MIN_CLASSES} to {MAX_CLASSES} classes, one sub-folder each."
        )
    found = {
        folder.name: sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
        for folder in folders
    }
    classes = {name: [p for p in paths if p.suffix.lower() in IMAGE_SUFFIXES] for name, paths in found.items()}
    skipped = [
        p.relative_to(root).as_posix()
        for paths in found.values()
        for p in paths
        if p.suffix.lower() not in IMAGE_SUFFIXES
    ]
    for name, files in classes.items():
        if not files:
            raise FolderError(
                f"The class folder {root / name} holds no images ({IMAGE_KINDS}); add images or remove the folder."
            )
        if len(files) < MIN_IMAGES_PER_CLASS:
            raise FolderError(
                f"The class {name!r} has only {len(files)} image{'s' * (len(files) != 1)}; every class needs at "
                f"least {MIN_IMAGES_PER_CLASS} (a few hundred train a much better model)."
            )
    if skipped:
        say(skipped_sentence(skipped))
    return classes


def skipped_sentence(skipped: list[str], shown: int = 5) -> str:
    """'Skipped 3 files that are not images: cat/notes.txt, …': counted, the first few named, said once."""
    listed = ", ".join(skipped[:shown]) + (f" and {len(skipped) - shown} more" if len(skipped) > shown else "")
    what = "file that is not an image" if len(skipped) == 1 else "files that are not images"
    return f"Skipped {len(skipped)} {what}: {listed}; cnnviz reads {IMAGE_KINDS}."


def _decode(path: Path, size: int) -> np.ndarray:
    """(size, size, 3) uint8: upright, flattened onto white, short side scaled to `size`, centre cropped."""
    try:
        return np.rint(to_network_input(read_image(path), size) * 255).astype(np.uint8)
    except ImageError as error:
        raise FolderError(f"{path} cannot be used: {error} Remove or replace it, then train again.") from None


def is_grey(images: np.ndarray) -> bool:
    """True when every pixel of every image has (almost) equal red, green and blue."""
    spread = images.max(axis=3).astype(np.int16) - images.min(axis=3)
    return bool(spread.max(initial=0) <= GREY_TOLERANCE)


def load_folder(
    root: str | os.PathLike,
    size: int = 64,
    colour: str = "auto",
    test_fraction: float = 0.2,
    seed: int = 0,
    progress: Progress = _no_progress,
    say: Callable[[str], None] = _quiet,
) -> PreparedData:
    """Decode every image of `root` at size × size; `test_fraction` of each class (≥ 1 image) becomes the test set.

    `colour` "auto" gives one grey channel when every image is grey, else three; "grey" and "colour" force it.
    """
    if not INPUT_SIZES[0] <= size <= INPUT_SIZES[1]:
        raise FolderError(f"--input-size must be between {INPUT_SIZES[0]} and {INPUT_SIZES[1]} pixels, not {size}.")
    if colour not in COLOUR_CHOICES:
        raise FolderError(f"--colour must be one of {', '.join(COLOUR_CHOICES)}, not {colour!r}.")
    if not 0 < test_fraction < 1:
        raise FolderError(f"--test-fraction must be between 0 and 1, not {test_fraction}.")
    classes = scan_folder(root, say)
    files = [(path, label) for label, paths in enumerate(classes.values()) for path in paths]
    images = np.stack([_decode(path, size) for path, _ in progress(files, len(files), "Reading images")])
    labels = np.array([label for _, label in files], np.int64)
    if colour == "grey" or (colour == "auto" and is_grey(images)):
        images = np.rint(images.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32))
        images = images.astype(np.uint8)[..., np.newaxis]
    rng = np.random.default_rng(seed)
    test = np.zeros(len(labels), bool)
    for label in range(len(classes)):
        members = rng.permutation(np.flatnonzero(labels == label))
        test[members[: max(1, round(test_fraction * len(members)))]] = True
    names = tuple(path.relative_to(root).as_posix() for path, _ in files)

    def split(chosen: np.ndarray) -> Split:
        indices = np.flatnonzero(chosen)
        return Split(images[indices], labels[indices], tuple(names[i] for i in indices))

    return PreparedData(train=split(~test), val=split(test), class_names=tuple(classes))


def write_gallery(split: Split, class_names: tuple[str, ...], out_dir: Path, per_class: int = 3) -> Path:
    """The first `per_class` images of each class as PNGs plus the index `cnnviz.data.load_gallery` reads."""
    gallery_dir = out_dir / GALLERY_DIR_NAME
    gallery_dir.mkdir(parents=True, exist_ok=True)
    for stale in gallery_dir.glob("*.png"):
        stale.unlink()
    entries = []
    for class_index, class_name in enumerate(class_names):
        for number, row in enumerate(np.flatnonzero(split.labels == class_index)[:per_class], start=1):
            file_name = f"{_slug(class_name)}_{number}.png"
            pixels = split.images[row]
            Image.fromarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels).save(gallery_dir / file_name)
            entries.append(
                {"file": file_name, "label": class_name, "class_index": class_index, "source": split.files[row]}
            )
    index = gallery_dir / GALLERY_INDEX_NAME
    index.write_text(json.dumps(entries, indent=2) + "\n", encoding="utf-8")
    return index


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).strip("_") or "class"
