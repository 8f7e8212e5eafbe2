"""Generated probe images: simple, known patterns that make a kernel's job easy to see.

They need no dataset, so the app can always show something, and each isolates one visual
feature (an edge orientation, a colour, a frequency) a student can trace through the network.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

PROBE_SIZE = 64
STRIPE_WIDTH = 4  # pixels per dark or bright band: wide enough to survive two 3x3 convolutions
CHECKER_SIZE = 8  # pixels per square
DOT_RADIUS = 4  # fully bright core of the radial probe, so its centre reaches 1.0

RED, GREEN, BLUE, YELLOW = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0), (1.0, 1.0, 0.0)


@dataclass(frozen=True, eq=False)  # eq=False: comparing numpy arrays with == is ambiguous
class Probe:
    key: str  # url-safe slug, e.g. "vertical-stripes"
    title: str
    description: str  # what a student might look for
    image: np.ndarray  # (64, 64, 3) float32 in [0, 1], read-only


def probe_images() -> tuple[Probe, ...]:
    """All probes in teaching order; the same read-only arrays on every call."""
    return _probes()


def probe(key: str) -> Probe:
    """The probe with ``key``; ``KeyError`` names the known keys so typos are easy to fix."""
    for candidate in _probes():
        if candidate.key == key:
            return candidate
    known = ", ".join(candidate.key for candidate in _probes())
    raise KeyError(f"Unknown probe {key!r}; known probes: {known}")


@cache
def _probes() -> tuple[Probe, ...]:
    rows, cols = np.mgrid[0:PROBE_SIZE, 0:PROBE_SIZE]
    centre = (PROBE_SIZE - 1) / 2
    distance = np.hypot(rows - centre, cols - centre)
    half = PROBE_SIZE // 2
    return (
        Probe(
            "vertical-stripes",
            "Vertical stripes",
            "Vertical edges: watch which kernels respond to left–right changes.",
            _grey((cols // STRIPE_WIDTH) % 2),
        ),
        Probe(
            "horizontal-stripes",
            "Horizontal stripes",
            "Horizontal edges: watch which kernels respond to top–bottom changes.",
            _grey((rows // STRIPE_WIDTH) % 2),
        ),
        Probe(
            "diagonal-stripes",
            "Diagonal stripes",
            "Diagonal edges: see whether any kernel prefers slanted lines over upright ones.",
            _grey(((rows + cols) // STRIPE_WIDTH) % 2),
        ),
        Probe(
            "checkerboard",
            "Checkerboard",
            "Edges in both directions at once: compare it with the two stripe probes.",
            _grey((rows // CHECKER_SIZE + cols // CHECKER_SIZE) % 2),
        ),
        Probe(
            "colour-patches",
            "Colour patches",
            "Red, green, blue and yellow quadrants: find kernels that react to one colour only.",
            _quadrants(half, top_left=RED, top_right=GREEN, bottom_left=BLUE, bottom_right=YELLOW),
        ),
        Probe(
            "horizontal-gradient",
            "Horizontal gradient",
            "A smooth ramp with no sharp edge: edge kernels stay quiet, brightness kernels do not.",
            _grey(cols / (PROBE_SIZE - 1)),
        ),
        Probe(
            "radial-gradient",
            "Radial gradient (dot)",
            "A bright dot fading out: see how pooling shrinks it and which kernels fire on its rim.",
            _grey(np.clip((half - distance) / (half - DOT_RADIUS), 0, 1)),
        ),
        Probe(
            "single-edge",
            "Single edge",
            "One dark-to-bright edge in the middle: activations should appear only along it.",
            _grey(cols >= half),
        ),
    )


def _grey(intensity: np.ndarray) -> np.ndarray:
    """Repeat one channel three times: grey patterns isolate shape from colour."""
    return _freeze(np.repeat(intensity.astype(np.float32)[:, :, None], 3, axis=2))


def _quadrants(
    half: int,
    *,
    top_left: tuple[float, float, float],
    top_right: tuple[float, float, float],
    bottom_left: tuple[float, float, float],
    bottom_right: tuple[float, float, float],
) -> np.ndarray:
    image = np.empty((PROBE_SIZE, PROBE_SIZE, 3), dtype=np.float32)
    image[:half, :half] = top_left
    image[:half, half:] = top_right
    image[half:, :half] = bottom_left
    image[half:, half:] = bottom_right
    return _freeze(image)


def _freeze(image: np.ndarray) -> np.ndarray:
    """Probes are cached and shared, so nobody may change them in place."""
    image.flags.writeable = False
    return image
