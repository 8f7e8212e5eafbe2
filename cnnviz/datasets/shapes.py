"""Shapes: a labelled image set cnnviz draws itself, so training needs no download and takes a few minutes.

Every image is one shape (circle, square, triangle, cross or stripes) in a random colour on a random
background, at a random size, position and angle, with pixel noise. The same seed always draws the same
images: image `i` of a split depends only on (seed, i), so a test split never overlaps a training split.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw

from cnnviz.data import PreparedData, Split

SHAPE_CLASSES = ("circle", "square", "triangle", "cross", "stripes")
DEFAULT_SIZE = 48
SUPERSAMPLING = 4  # drawn 4× larger, then shrunk: smooth edges at any size
MIN_COLOUR_DISTANCE = 110  # RGB distance between shape and background: every shape stays visible
NOISE_SIGMA = (2.0, 12.0)  # range of the per-image Gaussian pixel noise, in grey levels
SHIFT = 0.12  # largest move of the shape's centre from the image centre, as a share of the side
TEST_SEED_OFFSET = 1_000_003  # test images come from another stream of the same seed

Point = tuple[float, float]


def _rotate(points: list[Point], centre: Point, angle: float) -> list[Point]:
    cos, sin = np.cos(angle), np.sin(angle)
    cx, cy = centre
    return [(cx + (x - cx) * cos - (y - cy) * sin, cy + (x - cx) * sin + (y - cy) * cos) for x, y in points]


def _circle(draw: ImageDraw.ImageDraw, centre: Point, radius: float, angle: float, colour: tuple) -> None:
    cx, cy = centre
    draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=colour)


def _square(draw: ImageDraw.ImageDraw, centre: Point, radius: float, angle: float, colour: tuple) -> None:
    cx, cy = centre
    half = radius * 0.85  # as wide as the circle of the same radius is tall, so size never tells them apart
    corners = [(cx - half, cy - half), (cx + half, cy - half), (cx + half, cy + half), (cx - half, cy + half)]
    draw.polygon(_rotate(corners, centre, angle), fill=colour)


def _triangle(draw: ImageDraw.ImageDraw, centre: Point, radius: float, angle: float, colour: tuple) -> None:
    cx, cy = centre
    corners = [(cx + radius * np.sin(t), cy - radius * np.cos(t)) for t in (0, 2 * np.pi / 3, 4 * np.pi / 3)]
    draw.polygon(_rotate(corners, centre, angle), fill=colour)


def _cross(draw: ImageDraw.ImageDraw, centre: Point, radius: float, angle: float, colour: tuple) -> None:
    cx, cy = centre
    arm = radius * 0.3
    for corners in (
        [(cx - radius, cy - arm), (cx + radius, cy - arm), (cx + radius, cy + arm), (cx - radius, cy + arm)],
        [(cx - arm, cy - radius), (cx + arm, cy - radius), (cx + arm, cy + radius), (cx - arm, cy + radius)],
    ):
        draw.polygon(_rotate(corners, centre, angle), fill=colour)


def _stripes(draw: ImageDraw.ImageDraw, centre: Point, radius: float, angle: float, colour: tuple) -> None:
    """Three parallel bars filling a square patch: a texture, not an outline."""
    cx, cy = centre
    bar = radius / 3
    for offset in (-2, 0, 2):
        top = cy + (offset - 0.5) * bar
        corners = [(cx - radius, top), (cx + radius, top), (cx + radius, top + bar), (cx - radius, top + bar)]
        draw.polygon(_rotate(corners, centre, angle), fill=colour)


DRAWERS: dict[str, Callable[..., None]] = {
    "circle": _circle,
    "square": _square,
    "triangle": _triangle,
    "cross": _cross,
    "stripes": _stripes,
}


def _colours(rng: np.random.Generator) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """A background and a shape colour far enough apart to see the shape (re-drawn until they are)."""
    while True:
        background, shape = rng.integers(0, 256, (2, 3))
        if np.linalg.norm(background - shape) >= MIN_COLOUR_DISTANCE:
            return tuple(int(v) for v in background), tuple(int(v) for v in shape)


def draw_shape(label: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """One (size, size, 3) uint8 image of class `label`, its look drawn from `rng`."""
    canvas = size * SUPERSAMPLING
    background, colour = _colours(rng)
    radius = rng.uniform(0.26, 0.42) * canvas
    margin = radius * 1.05
    # Near the middle: one dense layer over the last feature maps has to recognise the shape wherever it is
    centre = tuple(np.clip(canvas / 2 + rng.uniform(-SHIFT, SHIFT, 2) * canvas, margin, canvas - margin))
    # Turned at most 20°: a square at 45° would be a diamond, a shape of its own
    angle = rng.uniform(-np.pi / 9, np.pi / 9) if SHAPE_CLASSES[label] != "stripes" else rng.uniform(0, np.pi)
    image = Image.new("RGB", (canvas, canvas), background)
    DRAWERS[SHAPE_CLASSES[label]](ImageDraw.Draw(image), centre, radius, angle, colour)
    pixels = np.asarray(image.resize((size, size), Image.Resampling.BOX), np.float32)
    pixels += rng.normal(0, rng.uniform(*NOISE_SIGMA), pixels.shape)
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)


def make_shapes(count: int, size: int = DEFAULT_SIZE, seed: int = 0, grey: bool = False) -> Split:
    """`count` images, classes taking turns (balanced), each drawn from its own seeded stream."""
    labels = np.arange(count, dtype=np.int64) % len(SHAPE_CLASSES)
    images = np.stack(
        [draw_shape(int(label), size, np.random.default_rng([seed, i])) for i, label in enumerate(labels)]
    )
    if grey:
        images = np.rint(images.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
        images = images.astype(np.uint8)
    files = tuple(f"{SHAPE_CLASSES[label]}_{i}.png" for i, label in enumerate(labels))
    return Split(images.reshape(count, size, size, -1), labels, files)


def shapes_dataset(
    train_count: int = 4000, test_count: int = 1000, size: int = DEFAULT_SIZE, seed: int = 0, grey: bool = False
) -> PreparedData:
    """Training and test images of the five shapes; the test images are drawn from a separate stream."""
    return PreparedData(
        train=make_shapes(train_count, size, seed, grey),
        val=make_shapes(test_count, size, seed + TEST_SEED_OFFSET, grey),
        class_names=SHAPE_CLASSES,
    )
