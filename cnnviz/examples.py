"""The example images a learner can pick: gallery photos from `cnnviz data`, then the generated probes.

Every example is made at the network's own input size and channel count, so any network gets its gallery.
Loaded once per process and per network, and shared read-only by every session.
"""

from __future__ import annotations

import base64
import io
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image

from cnnviz.data import GALLERY_DIR_NAME, GALLERY_INDEX_NAME, DataError, default_data_dir, load_gallery
from cnnviz.engine import Network
from cnnviz.images import ImageError, array_to_image, fit_to_network, read_image
from cnnviz.probes import probe_images

THUMBNAIL_SIZE = 64
DEFAULT_INPUT_SHAPE = (64, 64, 3)
ADD_PHOTOS_HINT = (
    "No example photos are prepared yet, so cnnviz shows generated probe images. "
    "To add the Tiny ImageNet photos, run: cnnviz data --source <folder, tiny-imagenet-200.zip or URL>"
)


@dataclass(frozen=True, eq=False)
class Example:
    """One pickable image: a stable key for URLs, a title, and the 64×64 network input."""

    key: str
    title: str
    caption: str
    image: np.ndarray  # the network's input shape, e.g. (64, 64, 3), float32 in [0, 1], read-only
    label: str | None  # the true class of a gallery photo; None for probes
    thumbnail: str  # data URL of a small JPEG, so the gallery needs no extra requests

    @property
    def is_probe(self) -> bool:
        return self.label is None


@dataclass(frozen=True)
class ExampleCatalog:
    examples: tuple[Example, ...]
    hint: str  # non-empty when no photos are prepared

    def __getitem__(self, key: str) -> Example:
        for example in self.examples:
            if example.key == key:
                return example
        raise KeyError(key)

    def __contains__(self, key: str) -> bool:
        return any(example.key == key for example in self.examples)

    @property
    def default(self) -> Example:
        return self.examples[0]


def thumbnail_url(image: Image.Image, size: int = THUMBNAIL_SIZE) -> str:
    """A small JPEG data URL: cheap to ship with the page, no file server needed."""
    small = image.convert("RGB").copy()
    small.thumbnail((size, size))
    buffer = io.BytesIO()
    small.save(buffer, "JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def with_article(noun: str) -> str:
    """'a koala', 'an espresso', 'an orange': the article a reader expects before the class name."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def _readonly(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


def gallery_folder(data_dir: str | os.PathLike | None, weights: str | os.PathLike | None = None) -> Path:
    """Where the gallery comes from: `data_dir` if given (or $CNNVIZ_DATA_DIR, which `cnnviz serve --data-dir`
    sets), else beside the weights (`cnnviz train` puts one there), else the default data folder of `cnnviz data`."""
    data_dir = data_dir or os.environ.get("CNNVIZ_DATA_DIR") or None
    if data_dir is not None:
        return Path(data_dir)
    if weights is not None and (Path(weights).parent / GALLERY_DIR_NAME / GALLERY_INDEX_NAME).is_file():
        return Path(weights).parent
    return default_data_dir()


def gallery_mismatch(labels: set[str], class_names: tuple[str, ...], folder: Path) -> str:
    """A sentence when the gallery's classes are not the network's ('' when they fit)."""
    foreign = sorted(labels - set(class_names))
    if not class_names or not foreign:
        return ""
    shown = ", ".join(foreign[:3]) + (", …" if len(foreign) > 3 else "")
    return (
        f"The example photos in {folder} are of classes this network does not know ({shown}), so cnnviz shows "
        "generated probe images instead. Point --data-dir (or CNNVIZ_DATA_DIR) to the gallery made for this "
        "network, e.g. the output folder of `cnnviz train`."
    )


def build_catalog(data_dir: Path | None = None, network: Network | None = None) -> ExampleCatalog:
    """Gallery photos (if prepared, and of the network's classes) followed by the probes, all at the network's
    input size and channels; unreadable gallery files are skipped."""
    input_shape = network.input_shape if network is not None else DEFAULT_INPUT_SHAPE
    class_names = network.class_names if network is not None else ()
    folder = Path(data_dir) if data_dir is not None else default_data_dir()
    try:
        gallery = load_gallery(folder)
    except DataError as error:
        gallery, problem = [], str(error)
    else:
        problem = gallery_mismatch({entry.label for entry in gallery}, class_names, folder)
    photos = []
    for entry in [] if problem else gallery:
        try:
            image = _readonly(fit_to_network(read_image(entry.path), input_shape))
        except ImageError:
            continue
        key = entry.path.stem.replace("_", "-")
        photos.append(
            Example(
                key,
                entry.label.capitalize(),
                f"{with_article(entry.label).capitalize()} from the test images",
                image,
                entry.label,
                thumbnail_url(array_to_image(image)),
            )
        )
    probes = []
    for probe in probe_images():
        same = probe.image.shape == input_shape
        image = probe.image if same else _readonly(fit_to_network(array_to_image(probe.image), input_shape))
        probes.append(
            Example(
                f"probe-{probe.key}",
                probe.title,
                probe.description,
                image,
                None,
                thumbnail_url(array_to_image(image)),
            )
        )
    return ExampleCatalog(tuple(photos + probes), problem or ("" if photos else ADD_PHOTOS_HINT))


@cache
def catalog_for(network: Network, data_dir: Path | None = None) -> ExampleCatalog:
    """The examples for this network, built once per process and shared read-only by every session."""
    return build_catalog(data_dir, network)
