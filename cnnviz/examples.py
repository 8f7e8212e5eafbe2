"""The example images a learner can pick: gallery photos from `cnnviz data`, then the generated probes.

Loaded once per process and shared read-only by every session.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from cnnviz.data import load_gallery
from cnnviz.images import ImageError, array_to_image, load_image
from cnnviz.probes import probe_images

THUMBNAIL_SIZE = 64
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
    image: np.ndarray  # (64, 64, 3) float32 in [0, 1], read-only
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


def build_catalog(data_dir: Path | None = None) -> ExampleCatalog:
    """Gallery photos (if prepared) followed by the probes; unreadable gallery files are skipped."""
    photos = []
    for entry in load_gallery(data_dir):
        try:
            image = _readonly(load_image(entry.path))
        except ImageError:
            continue
        key = entry.path.stem.replace("_", "-")
        photos.append(
            Example(
                key,
                entry.label.capitalize(),
                f"{with_article(entry.label).capitalize()} from the validation images",
                image,
                entry.label,
                thumbnail_url(array_to_image(image)),
            )
        )
    probes = [
        Example(
            f"probe-{probe.key}",
            probe.title,
            probe.description,
            probe.image,
            None,
            thumbnail_url(array_to_image(probe.image)),
        )
        for probe in probe_images()
    ]
    return ExampleCatalog(tuple(photos + probes), "" if photos else ADD_PHOTOS_HINT)
