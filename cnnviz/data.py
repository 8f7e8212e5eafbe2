"""Prepare the 10-class Tiny ImageNet subset the model is trained on, and load it back.

Preparation decodes the JPEGs once into a single ``.npz`` (fast to load for training and
the app) and copies a few validation JPEGs into a small gallery the app can show. The
source can be a folder in the official layout, the official zip, or a URL to that zip.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import sys
import urllib.parse
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Protocol

import numpy as np
from PIL import Image, UnidentifiedImageError

from cnnviz.cli import bounded_int
from cnnviz.engine.tiny_vgg import TINY_VGG_CLASSES
from cnnviz.errors import CnnvizError

if TYPE_CHECKING:
    from tqdm import tqdm

# Reference order of CNN Explainer: the index in these tuples is the label the model predicts.
CLASS_WNIDS = (
    "n03662601",
    "n02165456",
    "n07873807",
    "n07720875",
    "n04146614",
    "n01882714",
    "n07920052",
    "n02509815",
    "n07747607",
    "n04285008",
)
CLASS_NAMES = TINY_VGG_CLASSES  # one list of names, shared with the engine's Tiny VGG

OFFICIAL_URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
OFFICIAL_MD5 = "90528d7ca1a48142e341f4ef8d21d0de"

_CHECKOUT_DATA_DIR = Path(__file__).resolve().parents[1] / "data"


def default_data_dir() -> Path:
    """Where prepared data lives: $CNNVIZ_DATA_DIR, else the checkout's data/ (a checkout or an editable install),
    else ./data where it exists (the static export unpacks it there), else the user's data folder (an installed
    cnnviz, e.g. ~/.local/share/cnnviz on Linux)."""
    if os.environ.get("CNNVIZ_DATA_DIR"):
        return Path(os.environ["CNNVIZ_DATA_DIR"])
    if (_CHECKOUT_DATA_DIR.parent / "pyproject.toml").is_file():
        return _CHECKOUT_DATA_DIR
    if (Path.cwd() / "data").is_dir() or sys.platform == "emscripten":
        return Path.cwd() / "data"
    from platformdirs import user_data_dir

    return Path(user_data_dir("cnnviz", appauthor=False))


IMAGE_SIZE = 64
PREPARED_FILE_NAME = "tiny_imagenet_10.npz"
GALLERY_DIR_NAME = "gallery"
GALLERY_INDEX_NAME = "index.json"
GALLERY_MAX_PER_CLASS = 50  # the validation images of one class: a gallery is a handful, not a dataset

_SOURCE_HINT = "run `cnnviz data --source <folder, tiny-imagenet-200.zip or URL>` first"
_NUMBER_IN_NAME = re.compile(r"_(\d+)\.")


class DataError(CnnvizError, RuntimeError):
    """Clear, user-facing message for a missing or malformed source."""


@dataclass(frozen=True, eq=False)  # eq=False: comparing numpy arrays with == is ambiguous
class Split:
    images: np.ndarray  # (N, 64, 64, 3) uint8
    labels: np.ndarray  # (N,) int64, index into CLASS_NAMES
    files: tuple[str, ...]  # original file names, e.g. "val_123.JPEG"


@dataclass(frozen=True, eq=False)
class PreparedData:
    train: Split
    val: Split
    class_names: tuple[str, ...]


@dataclass(frozen=True)
class GalleryImage:
    path: Path
    label: str
    class_index: int
    source: str  # original file name, e.g. "val_123.JPEG"


def prepare_dataset(
    source: str | Path,
    out_dir: Path | None = None,
    *,
    per_class_gallery: int = 3,
    expected_md5: str = OFFICIAL_MD5,
    progress: bool = True,
) -> Path:
    """Decode the 10 classes from ``source`` into ``out_dir`` and return the ``.npz`` path.

    ``source`` is a folder in the official layout (10 or 200 classes), a zip with that
    layout (top folder optional), or an http(s) URL to such a zip, which is downloaded to
    ``out_dir/downloads`` and checked against ``expected_md5``. Re-running overwrites
    the previous output.
    """
    out_dir = Path(out_dir) if out_dir is not None else default_data_dir()
    if isinstance(source, str) and source.startswith(("http://", "https://")):
        source = _download(source, out_dir / "downloads", expected_md5, progress)
    from tqdm import tqdm

    with _open_tree(Path(source)) as tree:
        train_files, val_files = _locate_class_files(tree)
        with tqdm(
            total=len(train_files) + len(val_files), desc="Decoding images", unit="image", disable=not progress
        ) as decode_progress:
            train = _decode_split(tree, train_files, decode_progress)
            val = _decode_split(tree, val_files, decode_progress)
        out_dir.mkdir(parents=True, exist_ok=True)
        npz_path = _write_npz(out_dir, train, val)
        _write_gallery(tree, val_files, out_dir / GALLERY_DIR_NAME, per_class_gallery)
    return npz_path


def load_prepared(data_dir: Path | None = None) -> PreparedData:
    """Load what :func:`prepare_dataset` wrote, failing with a hint on how to create it."""
    npz_path = Path(data_dir or default_data_dir()) / PREPARED_FILE_NAME
    if not npz_path.is_file():
        raise DataError(f"No prepared dataset at {npz_path}; {_SOURCE_HINT}.")
    try:
        with np.load(npz_path, allow_pickle=False) as arrays:
            wnids = tuple(str(w) for w in arrays["class_wnids"])
            if wnids != CLASS_WNIDS:
                raise DataError(f"{npz_path} holds different classes than cnnviz expects; {_SOURCE_HINT}.")
            return PreparedData(
                train=_split_from(arrays, "train"),
                val=_split_from(arrays, "val"),
                class_names=tuple(str(name) for name in arrays["class_names"]),
            )
    except (KeyError, ValueError, OSError, zipfile.BadZipFile) as error:
        raise DataError(f"{npz_path} is unreadable or incomplete ({error}); {_SOURCE_HINT}.") from error


def load_gallery(data_dir: Path | None = None) -> list[GalleryImage]:
    """Return the prepared gallery, or ``[]`` when none exists (the app then uses probes)."""
    gallery_dir = Path(data_dir or default_data_dir()) / GALLERY_DIR_NAME
    index_path = gallery_dir / GALLERY_INDEX_NAME
    if not index_path.is_file():
        return []
    try:
        entries = json.loads(index_path.read_text(encoding="utf-8"))
        return [
            GalleryImage(
                path=gallery_dir / entry["file"],
                label=entry["label"],
                class_index=int(entry["class_index"]),
                source=entry["source"],
            )
            for entry in entries
        ]
    except (ValueError, KeyError, TypeError) as error:
        raise DataError(f"{index_path} is malformed ({error}); {_SOURCE_HINT}.") from error


# --- source trees: one read interface over a folder and a zip ---------------------------------


class _SourceTree(Protocol):
    description: str

    def has_dir(self, relative: str) -> bool: ...
    def has_file(self, relative: str) -> bool: ...
    def list_files(self, relative_dir: str) -> list[str]: ...
    def read_bytes(self, relative: str) -> bytes: ...


class _DirectoryTree:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.description = f"folder {root}"

    def has_dir(self, relative: str) -> bool:
        return (self.root / relative).is_dir()

    def has_file(self, relative: str) -> bool:
        return (self.root / relative).is_file()

    def list_files(self, relative_dir: str) -> list[str]:
        folder = self.root / relative_dir
        return [p.name for p in folder.iterdir() if p.is_file()] if folder.is_dir() else []

    def read_bytes(self, relative: str) -> bytes:
        return (self.root / relative).read_bytes()


class _ZipTree:
    """Reads members in place, so a 200-class archive never needs extracting."""

    def __init__(self, archive: zipfile.ZipFile, path: Path) -> None:
        self.archive = archive
        self.description = f"zip {path}"
        members = [PurePosixPath(info.filename) for info in archive.infolist() if not info.is_dir()]
        layout_roots = [m.parent for m in members if m.name == "wnids.txt"]
        # The shortest wnids.txt marks the root (this skips junk such as __MACOSX/ copies); without
        # one, the archive root is used so the layout error can name every missing part.
        self.root = min(layout_roots, key=lambda p: len(p.parts)) if layout_roots else PurePosixPath()
        self.files_by_dir: dict[str, list[str]] = {}
        for member in members:
            if member.is_relative_to(self.root):
                relative = member.relative_to(self.root)
                self.files_by_dir.setdefault(relative.parent.as_posix(), []).append(relative.name)

    def has_dir(self, relative: str) -> bool:
        prefix = relative.rstrip("/") + "/"
        return any(folder == relative or folder.startswith(prefix) for folder in self.files_by_dir)

    def has_file(self, relative: str) -> bool:
        path = PurePosixPath(relative)
        return path.name in self.files_by_dir.get(path.parent.as_posix(), [])

    def list_files(self, relative_dir: str) -> list[str]:
        return list(self.files_by_dir.get(relative_dir, []))

    def read_bytes(self, relative: str) -> bytes:
        return self.archive.read((self.root / relative).as_posix())


@contextmanager
def _open_tree(source: Path) -> Iterator[_SourceTree]:
    if not source.exists():
        raise DataError(f"Source {source} does not exist; pass a Tiny ImageNet folder, zip or URL.")
    if source.is_dir():
        yield _DirectoryTree(source)
        return
    if not zipfile.is_zipfile(source):
        raise DataError(f"{source} is not a zip archive; pass a Tiny ImageNet folder, zip or URL.")
    try:
        with zipfile.ZipFile(source) as archive:
            yield _ZipTree(archive, source)
    except zipfile.BadZipFile as error:
        raise DataError(f"{source} is a damaged zip archive ({error}).") from error


def _locate_class_files(tree: _SourceTree) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """Check the layout and list (relative path, label) for train and val, in a stable order."""
    missing_parts = [
        part
        for part, present in (
            ("wnids.txt", tree.has_file("wnids.txt")),
            ("train/", tree.has_dir("train")),
            ("val/", tree.has_dir("val")),
        )
        if not present
    ]
    if missing_parts:
        raise DataError(
            f"{tree.description} is not in the Tiny ImageNet layout: missing {', '.join(missing_parts)}. "
            "Pass the folder (or zip) that contains wnids.txt, train/ and val/."
        )

    train_files: list[tuple[str, int]] = []
    missing_classes = []
    for label, wnid in enumerate(CLASS_WNIDS):
        names = sorted((n for n in tree.list_files(f"train/{wnid}/images") if _is_jpeg(n)), key=_file_order)
        if not names:
            missing_classes.append(f"{wnid} ({CLASS_NAMES[label]})")
        train_files += [(f"train/{wnid}/images/{name}", label) for name in names]
    if missing_classes:
        raise DataError(f"{tree.description} has no training images for: {', '.join(missing_classes)}.")

    annotations = "val/val_annotations.txt"
    if not tree.has_file(annotations):
        raise DataError(f"{tree.description} lacks {annotations}, which holds the validation labels.")
    label_of = {wnid: label for label, wnid in enumerate(CLASS_WNIDS)}
    val_names = []
    for line in tree.read_bytes(annotations).decode("utf-8").splitlines():
        fields = line.split("\t")
        if len(fields) >= 2 and fields[1] in label_of:
            val_names.append((fields[0], label_of[fields[1]]))
    val_names.sort(key=lambda item: _file_order(item[0]))
    labels_with_val = {label for _, label in val_names}
    missing_val = [f"{wnid} ({CLASS_NAMES[label]})" for wnid, label in label_of.items() if label not in labels_with_val]
    if missing_val:
        raise DataError(f"{annotations} in {tree.description} lists no images for: {', '.join(missing_val)}.")
    return train_files, [(f"val/images/{name}", label) for name, label in val_names]


def _is_jpeg(name: str) -> bool:
    return name.lower().endswith((".jpeg", ".jpg"))


def _file_order(name: str) -> tuple[int, str]:
    """Sort ``val_10`` after ``val_9``: numeric order is what people expect when browsing."""
    match = _NUMBER_IN_NAME.search(name)
    return (int(match.group(1)) if match else -1, name)


# --- decoding and writing ---------------------------------------------------------------------


def _decode_split(tree: _SourceTree, files: list[tuple[str, int]], progress: tqdm) -> Split:
    images = np.empty((len(files), IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    for row, (relative, _) in enumerate(files):
        images[row] = _decode_rgb(tree, relative)
        progress.update()
    return Split(
        images=images,
        labels=np.array([label for _, label in files], dtype=np.int64),
        files=tuple(PurePosixPath(relative).name for relative, _ in files),
    )


def _decode_rgb(tree: _SourceTree, relative: str) -> np.ndarray:
    """Decode one JPEG as RGB; a few Tiny ImageNet images are greyscale."""
    try:
        data = tree.read_bytes(relative)
        with Image.open(io.BytesIO(data)) as image:
            pixels = np.asarray(image.convert("RGB"))
    except (OSError, KeyError, UnidentifiedImageError) as error:
        raise DataError(f"Cannot read image {relative} in {tree.description} ({error}).") from error
    if pixels.shape != (IMAGE_SIZE, IMAGE_SIZE, 3):
        raise DataError(
            f"Image {relative} in {tree.description} is {pixels.shape[1]}x{pixels.shape[0]}, "
            f"expected {IMAGE_SIZE}x{IMAGE_SIZE}."
        )
    return pixels


def _write_npz(out_dir: Path, train: Split, val: Split) -> Path:
    """Write via a temporary file so an interrupted run never leaves a half-written dataset."""
    npz_path = out_dir / PREPARED_FILE_NAME
    partial_path = out_dir / (PREPARED_FILE_NAME + ".partial")
    with partial_path.open("wb") as handle:
        np.savez(
            handle,
            train_images=train.images,
            train_labels=train.labels,
            train_files=np.array(train.files, dtype=str),
            val_images=val.images,
            val_labels=val.labels,
            val_files=np.array(val.files, dtype=str),
            class_names=np.array(CLASS_NAMES, dtype=str),
            class_wnids=np.array(CLASS_WNIDS, dtype=str),
        )
    partial_path.replace(npz_path)
    return npz_path


def _write_gallery(tree: _SourceTree, val_files: list[tuple[str, int]], gallery_dir: Path, per_class: int) -> None:
    """Copy the first ``per_class`` validation JPEGs of each class byte for byte."""
    if gallery_dir.exists():
        shutil.rmtree(gallery_dir)
    gallery_dir.mkdir(parents=True)
    entries = []
    for class_index, class_name in enumerate(CLASS_NAMES):
        chosen = [relative for relative, label in val_files if label == class_index][:per_class]
        for number, relative in enumerate(chosen, start=1):
            file_name = f"{class_name.replace(' ', '_')}_{number}.jpg"
            (gallery_dir / file_name).write_bytes(tree.read_bytes(relative))
            entries.append(
                {
                    "file": file_name,
                    "label": class_name,
                    "class_index": class_index,
                    "source": PurePosixPath(relative).name,
                }
            )
    (gallery_dir / GALLERY_INDEX_NAME).write_text(json.dumps(entries, indent=2) + "\n", encoding="utf-8")


def _split_from(arrays: np.lib.npyio.NpzFile, prefix: str) -> Split:
    return Split(
        images=arrays[f"{prefix}_images"],
        labels=arrays[f"{prefix}_labels"],
        files=tuple(str(name) for name in arrays[f"{prefix}_files"]),
    )


# --- download ---------------------------------------------------------------------------------


def _download(url: str, downloads_dir: Path, expected_md5: str, progress: bool) -> Path:
    """Fetch ``url`` once with pooch; a previous download with the right checksum is reused."""
    import pooch
    import requests

    name = PurePosixPath(urllib.parse.urlparse(url).path).name or "download.zip"
    try:
        return Path(pooch.retrieve(url, f"md5:{expected_md5}", fname=name, path=downloads_dir, progressbar=progress))
    except requests.HTTPError as error:
        reason = f"HTTP Error {error.response.status_code}: {error.response.reason}"
    except (requests.RequestException, OSError) as error:
        reason = str(getattr(error, "reason", None) or error)
    except ValueError as error:  # pooch's checksum check; it has already deleted the download
        raise DataError(
            f"Checksum mismatch for {url}: {error} The download is corrupt or not the official archive."
        ) from error
    raise DataError(
        f"Could not download {url} ({reason}). If this machine cannot reach it, download "
        "tiny-imagenet-200.zip elsewhere, copy it here and pass its path to `cnnviz data --source`."
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `cnnviz data`."""
    parser.add_argument(
        "--source",
        default=OFFICIAL_URL,
        help="a folder in the official Tiny ImageNet layout, tiny-imagenet-200.zip, or its URL (default: %(default)s)",
    )
    parser.add_argument("--out", type=Path, default=None, help=f"output folder (default: {default_data_dir()})")
    parser.add_argument(
        "--gallery",
        type=bounded_int(0, GALLERY_MAX_PER_CLASS),
        default=3,
        help=f"example images per class, 0 to {GALLERY_MAX_PER_CLASS} (default: %(default)s)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress output")


def run(args: argparse.Namespace) -> int:
    """`cnnviz data`: prepare the training arrays and the example gallery."""
    npz_path = prepare_dataset(args.source, args.out, per_class_gallery=args.gallery, progress=not args.quiet)
    gallery = load_gallery(npz_path.parent)
    print(f"Prepared {npz_path} and {len(gallery)} gallery images in {npz_path.parent / GALLERY_DIR_NAME}")
    return 0
