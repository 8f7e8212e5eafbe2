"""Colour maps and the shared colour ranges of the overview, with no UI import.

Activations use a diverging red (negative) – white (zero) – blue (positive) map with a symmetric range, so
white always means exactly zero. Which layers share a range is the user's choice (unit, module or global).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cnnviz.engine import Network, Trace

PALETTE_SIZE = 255  # odd, so the middle entry (127) is exactly zero
MIDDLE = PALETTE_SIZE // 2

DIVERGING_STOPS = (  # ColorBrewer RdBu, reversed so that red is negative, with a pure white centre
    "#67001f", "#b2182b", "#d6604d", "#f4a582", "#fddbc7", "#ffffff",
    "#d1e5f0", "#92c5de", "#4393c3", "#2166ac", "#053061",
)  # fmt: skip
GREY_STOPS = ("#000000", "#ffffff")
WEIGHT_STOPS = (  # ColorBrewer BrBG: brown negative, teal positive, for kernel weights and biases
    "#543005", "#8c510a", "#bf812d", "#dfc27d", "#f6e8c3", "#f5f5f5",
    "#c7eae5", "#80cdc1", "#35978f", "#01665e", "#003c30",
)  # fmt: skip
GRADIENT_STOPS = (  # ColorBrewer PRGn: purple negative, green positive, for gradients (backward mode)
    "#40004b", "#762a83", "#9970ab", "#c2a5cf", "#e7d4e8", "#f7f7f7",
    "#d9f0d3", "#a6dba0", "#5aae61", "#1b7837", "#00441b",
)  # fmt: skip
ORANGE_STOPS = ("#fff5eb", "#fdd0a2", "#fd8d3c", "#d94801", "#7f2704")  # logits

COLOR_MODES = ("unit", "module", "global", "layer")
MAP_KINDS = ("conv2d", "relu", "maxpool2d")  # layers drawn as heatmaps with the diverging map


def interpolate(stops: Sequence[str], size: int = PALETTE_SIZE) -> list[str]:
    """An evenly interpolated palette of `size` hex colours through the given stops."""
    rgb = np.array([[int(stop[i : i + 2], 16) for i in (1, 3, 5)] for stop in stops], float)
    positions = np.linspace(0, 1, len(stops))
    samples = np.linspace(0, 1, size)
    channels = np.rint([np.interp(samples, positions, rgb[:, c]) for c in range(3)]).astype(int)
    return [f"#{r:02x}{g:02x}{b:02x}" for r, g, b in channels.T]


DIVERGING = interpolate(DIVERGING_STOPS)
GREYS = interpolate(GREY_STOPS, 256)
WEIGHTS = interpolate(WEIGHT_STOPS)
GRADIENT = interpolate(GRADIENT_STOPS)
ORANGES = interpolate(ORANGE_STOPS, 256)


def layer_groups(network: Network, mode: str) -> list[list[str]]:
    """Layers that share one colour range.

    unit: each convolution with the ReLU/pooling layers after it; module: everything up to and including a
    pooling layer; global: all hidden layers together; layer: each layer on its own, so that a layer whose
    values are all small next to the convolution before it (a ReLU that zeroes most of it) still shows its
    structure.
    """
    if mode not in COLOR_MODES:
        raise ValueError(f"colour mode must be one of {COLOR_MODES}, not {mode!r}")
    groups: list[list[str]] = []
    starts_group = True
    for info in network.infos:
        if info.kind not in MAP_KINDS:
            continue
        if starts_group or mode == "layer" or (mode == "unit" and info.kind == "conv2d"):
            groups.append([])
        groups[-1].append(info.name)
        starts_group = mode == "module" and info.kind == "maxpool2d"
    return groups


def color_ranges(trace: Trace, mode: str) -> dict[str, float]:
    """Half-width of the symmetric colour range of each hidden layer: the largest |value| in its group."""
    ranges: dict[str, float] = {}
    for group in layer_groups(trace.network, mode):
        extent = max(float(np.abs(trace[name]).max()) for name in group)
        ranges.update(dict.fromkeys(group, extent if extent > 0 else 1.0))
    return ranges


def diverging_indices(values: np.ndarray, half_range: float, levels: int = PALETTE_SIZE) -> np.ndarray:
    """Indices (uint8) into a palette of `levels` (odd) colours of `values` in the symmetric range ±half_range;
    zero maps to the white middle."""
    middle = levels // 2
    scaled = np.clip(np.asarray(values, np.float32) / half_range, -1.0, 1.0)
    return np.rint(scaled * middle + middle).astype(np.uint8)


def grey_indices(values: np.ndarray, levels: int = 256) -> np.ndarray:
    """Indices (uint8) into a palette of `levels` greys of input values in [0, 1]."""
    return np.rint(np.clip(np.asarray(values, np.float32), 0.0, 1.0) * (levels - 1)).astype(np.uint8)


def diverging_color(value: float, half_range: float) -> str:
    """The hex colour a single value gets in the diverging map."""
    return DIVERGING[int(diverging_indices(np.array([value]), half_range)[0])]
