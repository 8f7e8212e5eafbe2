"""The overview drawn: every neuron of every layer as a heatmap tile, in fixed data coordinates.

ONE HoloViews element, whatever the network (each element costs every image switch and every new page 20–60 ms
of Python): the whole overview is one picture of palette indices (`overview_element`, one byte a pixel): the
input's channels in grey, the hidden layers' tiles in diverging levels (all-zero maps hatched), and a bar per class
as long as its probability (`bar_boxes`). The resting mesh of connections (`mesh_lines`) and the selection's
outline (`selection_boxes`) are no elements: never changing, or changing with every click, they are drawn by the
browser over the plot, so they cost no HoloViews plot. A tap is mapped back to (layer, neuron) with
`OverviewLayout.neuron_at`. Sizes, channel counts and classes all come from `Network.infos`; a layer with more
channels than `MAX_ROWS` wraps into sub-columns.

Coordinates: x grows to the right; `tops` are measured downwards from the top of the plot, as in CSS (the
keyboard layer places its buttons with them); the plot's y is `height - top`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import cache
from typing import Any

import holoviews as hv
import holoviews.plotting.bokeh  # registers the Bokeh backend the options below are for
import numpy as np

from cnnviz.colors import (
    DIVERGING_STOPS,
    GRADIENT_STOPS,
    GREY_STOPS,
    MAP_KINDS,
    color_ranges,
    diverging_indices,
    grey_indices,
    interpolate,
    layer_groups,
)
from cnnviz.engine import Network, Trace
from cnnviz.plots import picture_only
from cnnviz.plots.formula import _half_range

TILE = 1.0  # every heatmap is drawn 1 × 1 data unit, whatever its resolution
ROW_PITCH = 1.25
COLUMN_GAP = 1.3  # room for the edges between columns
SUB_COLUMN_GAP = 0.2  # between the sub-columns of a layer with more than MAX_ROWS channels
MAX_ROWS = 16  # a layer with more channels wraps into sub-columns of this many (or of the class count)
OUTPUT_WIDTH = 4.6  # class name + probability bar
LEFT_MARGIN = 0.5  # room for the first column's label
TOP_MARGIN = 1.2  # layer labels (and shapes, with details on)
BOTTOM_MARGIN = 1.0  # colour legends
BAR_HEIGHT = 0.5
NAME_SHARE = 0.5  # of the output column, left of the bars
BAR_SHARE = 0.36  # of the rest: the value after the bar ("90.1%", "−0.099") stays clear of even a full one
OUTPUT_KIND = "output"
PREDICTED_COLOR = "#f28e2b"
BAR_COLOR = "#9a9a9a"
MESH_FAN_IN = 16  # at most this many resting lines into one neuron
MIN_UNIT_PIXELS = 30  # the overview scrolls sideways rather than draw a tile smaller than this
HATCH_COLOR = "#9aa5b1"
HATCH_PERIOD = 6  # pixels between two hatching lines
MAX_TILE_PIXELS = 36  # a tile's side in the picture: about what a 1440-px screen shows of it (bytes!)
INPUT_CHANNEL_NAMES = {1: ("grey",), 3: ("red", "green", "blue")}
# The whole overview is one picture of one byte a pixel: its 256 colours hold the maps' diverging levels (fewer
# than the formula views' 255: steps of about 1 % of a range, as fine as a tile shows), the hatching, the input's
# greys and the two bar colours. Backward mode adds GRADIENTS to every pixel (two bytes a pixel then).
MAP_LEVELS = 189  # odd: the middle level is exactly zero
ZERO = MAP_LEVELS // 2
HATCH = MAP_LEVELS  # marks an all-zero map
GREY_LEVELS = 64
GREY = HATCH + 1  # where the input's greys start
BAR, PREDICTED_BAR = GREY + GREY_LEVELS, GREY + GREY_LEVELS + 1
GRADIENTS = 256  # where the backward-mode colours start: the same layout, the maps in gradient colours
_REST = [HATCH_COLOR, *interpolate(GREY_STOPS, GREY_LEVELS), BAR_COLOR, PREDICTED_COLOR]
MAP_PALETTE = [*interpolate(DIVERGING_STOPS, MAP_LEVELS), *_REST, *interpolate(GRADIENT_STOPS, MAP_LEVELS), *_REST]
"""Activations, input and bars (indices 0–255, one byte a pixel) and, in backward mode, gradients (256–511)."""


@dataclass(frozen=True)
class Column:
    """One column of the overview: a layer, where it sits, and where each of its neurons is drawn."""

    name: str
    kind: str  # engine layer kind, "input", or "output" (class probabilities)
    shape: tuple[int, ...]
    x: float  # left edge
    width: float
    tops: tuple[float, ...]  # top edge of each neuron, measured downwards from the top of the plot
    lefts: tuple[float, ...] = field(default=())  # left edge of each neuron when the column wraps (else x)

    def left(self, neuron: int) -> float:
        return self.lefts[neuron] if self.lefts else self.x

    def neuron_width(self) -> float:
        return self.width if self.kind == OUTPUT_KIND else TILE


@dataclass(frozen=True)
class OverviewLayout:
    columns: tuple[Column, ...]
    width: float
    height: float

    def column(self, name: str) -> Column:
        return next(column for column in self.columns if column.name == name)

    def to_json(self) -> dict[str, Any]:
        """Geometry for the browser (y grows downwards there, as in SVG and CSS)."""
        return {
            "width": self.width,
            "height": self.height,
            "tile": TILE,
            "bar_height": BAR_HEIGHT,
            "label_height": TOP_MARGIN - 0.1,
            "columns": [asdict(column) for column in self.columns],
        }

    def neuron_box(self, column: Column, neuron: int) -> tuple[float, float, float, float]:
        """(left, top, width, height) of a neuron's tile (or a class's bar row), tops measured downwards."""
        return column.left(neuron), column.tops[neuron], column.neuron_width(), TILE

    def neuron_at(self, x: float, top: float) -> tuple[Column, int] | None:
        """The column and neuron whose tile (or class row) is at (x, top), or None between them."""
        for column in self.columns:
            for neuron in range(len(column.tops)):
                left, up, width, height = self.neuron_box(column, neuron)
                if left <= x <= left + width and up <= top <= up + height:
                    return column, neuron
        return None

    def plot_box(self, left: float, top: float, width: float, height: float) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) in plot coordinates (y up) of a box given with its top measured downwards."""
        return left, self.height - top - height, left + width, self.height - top


def _tops(count: int, rows: int) -> tuple[float, ...]:
    """Neuron positions of a column of `count` neurons, centred on a grid of `rows` rows."""
    offset = (rows - count) * ROW_PITCH / 2
    return tuple(TOP_MARGIN + offset + i * ROW_PITCH for i in range(count))


def _map_column(name: str, kind: str, shape: tuple[int, ...], x: float, rows: int) -> Column:
    """A column of heatmaps; more channels than `rows` wrap into side-by-side sub-columns."""
    count = shape[-1]
    if count <= rows:
        return Column(name, kind, shape, x, TILE, _tops(count, rows))
    subs = math.ceil(count / rows)
    per = math.ceil(count / subs)  # as even as possible
    grid = _tops(per, rows)
    tops = tuple(grid[i % per] for i in range(count))
    lefts = tuple(x + (i // per) * (TILE + SUB_COLUMN_GAP) for i in range(count))
    return Column(name, kind, shape, x, subs * TILE + (subs - 1) * SUB_COLUMN_GAP, tops, lefts)


def overview_layout(network: Network) -> OverviewLayout:
    """Columns for the input channels, every heatmap layer, and the class probabilities."""
    maps = [info for info in network.infos if info.kind in ("input", *MAP_KINDS)]
    classes = len(network.class_names) or network.infos[-1].shape[-1]
    rows = max(min(max(info.shape[-1] for info in maps), MAX_ROWS), classes)
    columns, x = [], LEFT_MARGIN
    for info in maps:
        columns.append(_map_column(info.name, info.kind, info.shape, x, rows))
        x += columns[-1].width + COLUMN_GAP
    output = next(info for info in reversed(network.infos) if info.kind == "dense")
    columns.append(Column(output.name, OUTPUT_KIND, output.shape, x, OUTPUT_WIDTH, _tops(classes, rows)))
    height = TOP_MARGIN + rows * ROW_PITCH - (ROW_PITCH - TILE) + BOTTOM_MARGIN
    return OverviewLayout(tuple(columns), x + OUTPUT_WIDTH, height)


# -- the pictures -------------------------------------------------------------------------------------------


def tile_pixels(layout: OverviewLayout) -> int:
    """A tile's side in pixels: the largest map's own size, at most MAX_TILE_PIXELS (bytes sent per session)."""
    sizes = [max(column.shape[:2]) for column in layout.columns if column.kind != OUTPUT_KIND]
    return min(max(sizes), MAX_TILE_PIXELS)


def _sample(indices: np.ndarray, pixels: int) -> np.ndarray:
    """A map's palette indices at `pixels` × `pixels`: each pixel shows the cell under its centre."""
    rows = (np.arange(pixels) + 0.5) * indices.shape[0] // pixels
    cols = (np.arange(pixels) + 0.5) * indices.shape[1] // pixels
    return indices[rows.astype(int)][:, cols.astype(int)]


Block = tuple[float, float, np.ndarray]
"""Part of the picture: its top (measured downwards) and left in plot units, and its palette indices."""


Bounds = tuple[float, float, float, float]


def to_pixel(position: float) -> int:
    """The picture's pixel at `position` (in pixels): a block can sit half a pixel off the grid (a column of three
    channels centred beside one of ten), and a half must round the same way whichever sum computed it."""
    return round(round(position, 6))


def _paint(layout: OverviewLayout, blocks: list[Block], pixels: int) -> tuple[np.ndarray, Bounds]:
    """The blocks in one uint8 picture of `pixels` a plot unit, on the white of zero.

    Returns the picture (row 0 at the top) and its bounds (left, bottom, right, top) in plot coordinates.
    """
    left = min(block_left for _top, block_left, _indices in blocks)
    top = min(block_top for block_top, _left, _indices in blocks)
    # each block's pixel corner, rounded once: a canvas sized from the rounded extent could be a pixel short of it
    placed = [(to_pixel((block_top - top) * pixels), to_pixel((block_left - left) * pixels), indices)
              for block_top, block_left, indices in blocks]  # fmt: skip
    rows = max(row + indices.shape[0] for row, _col, indices in placed)
    cols = max(col + indices.shape[1] for _row, col, indices in placed)
    canvas = np.full((rows, cols), ZERO, np.uint8)
    for row, col, indices in placed:
        canvas[row : row + indices.shape[0], col : col + indices.shape[1]] = indices
    height, width = canvas.shape
    return canvas, (left, layout.height - top - height / pixels, left + width / pixels, layout.height - top)


def _hatched(indices: np.ndarray, values: np.ndarray, pixels: int) -> np.ndarray:
    """A map with no value but zero gets diagonal lines: "all zero" must not look like "not drawn"."""
    if np.any(values):
        return indices
    lines = (np.add.outer(np.arange(pixels), np.arange(pixels)) % HATCH_PERIOD) == 0
    return np.where(lines, HATCH, ZERO).astype(np.uint8)


def map_columns(layout: OverviewLayout) -> list[Column]:
    return [column for column in layout.columns if column.kind in MAP_KINDS]


def _tiles(columns: list[Column], tile: Callable[[Column, int], np.ndarray]) -> list[Block]:
    return [(top, column.left(neuron), tile(column, neuron)) for column in columns
            for neuron, top in enumerate(column.tops)]  # fmt: skip


def bar_boxes(layout: OverviewLayout, probabilities: np.ndarray) -> list[tuple[float, float, float, float]]:
    """(x0, y0, x1, y1) of each class's bar as drawn: as long as its probability, to the picture's pixel, and at
    least one pixel (every class shows where its bar starts)."""
    column = next(column for column in layout.columns if column.kind == OUTPUT_KIND)
    bar_left = column.x + NAME_SHARE * column.width  # the class name sits left of the bar
    span = (column.width - (bar_left - column.x)) * BAR_SHARE
    pixels = tile_pixels(layout)
    boxes = []
    for top, p in zip(column.tops, probabilities, strict=True):
        x0, y0, _x1, y1 = layout.plot_box(bar_left, top + (TILE - BAR_HEIGHT) / 2, 0, BAR_HEIGHT)
        boxes.append((x0, y0, x0 + max(1, round(float(p) * span * pixels)) / pixels, y1))
    return boxes


def _bars(layout: OverviewLayout, probabilities: np.ndarray, highlighted: int) -> list[Block]:
    """The class bars; the `highlighted` class (the prediction) in orange."""
    pixels = tile_pixels(layout)
    blocks = []
    for index, (x0, y0, x1, y1) in enumerate(bar_boxes(layout, probabilities)):
        shape = round((y1 - y0) * pixels), round((x1 - x0) * pixels)
        blocks.append(
            (layout.height - y1, x0, np.full(shape, PREDICTED_BAR if index == highlighted else BAR, np.uint8))
        )
    return blocks


def overview_picture(
    layout: OverviewLayout, trace: Trace, maps: dict[str, np.ndarray] | Trace, ranges: dict[str, float]
) -> tuple[np.ndarray, Bounds]:
    """The whole overview in palette indices: the input's channels in grey, the hidden layers' `maps` (the
    trace's, or gradients) in diverging levels of their `ranges` (all-zero maps hatched), the class bars."""
    pixels = tile_pixels(layout)

    def grey(column: Column, channel: int) -> np.ndarray:
        return GREY + _sample(grey_indices(trace[column.name][..., channel], GREY_LEVELS), pixels)

    def diverging(column: Column, neuron: int) -> np.ndarray:
        values = maps[column.name][..., neuron]
        return _hatched(_sample(diverging_indices(values, ranges[column.name], MAP_LEVELS), pixels), values, pixels)

    inputs = [column for column in layout.columns if column.kind == "input"]
    blocks = _tiles(inputs, grey) + _tiles(map_columns(layout), diverging)
    return _paint(layout, blocks + _bars(layout, trace.probabilities, trace.predicted_index), pixels)


def overview_element(layout: OverviewLayout, trace: Trace, ranges: dict[str, float]) -> hv.Image:
    """ONE element for the whole overview, a byte a pixel (an RGB picture would send four): each more element
    would cost every image switch and every new page 20–60 ms of the server's Python."""
    canvas, bounds = overview_picture(layout, trace, trace, ranges)
    return _framed_maps(layout.width, layout.height).clone(canvas, bounds=bounds)


def gradient_element(layout: OverviewLayout, trace: Trace, gradients: dict[str, np.ndarray]) -> hv.Image:
    """Backward mode: each hidden layer's ∂L/∂output in the gradient colours, each layer in its own range."""
    ranges = {column.name: _half_range(gradients[column.name]) for column in map_columns(layout)}
    canvas, bounds = overview_picture(layout, trace, gradients, ranges)
    return _framed_maps(layout.width, layout.height).clone(canvas.astype(np.uint16) + GRADIENTS, bounds=bounds)


def connections(layout: OverviewLayout) -> list[list[tuple[int, int]]]:
    """For every column, each neuron's inputs in the column before: (source, target) neuron pairs.

    A convolution (and the class scores, through flatten and dense) reads every channel of the column before;
    ReLU and pooling read only their own channel.
    """
    pairs: list[list[tuple[int, int]]] = [[]]
    for previous, column in zip(layout.columns, layout.columns[1:], strict=False):
        every = column.kind in ("conv2d", OUTPUT_KIND)
        sources = range(len(previous.tops))
        targets = range(len(column.tops))
        pairs.append([(s, t) for t in targets for s in (sources if every else [t])])
    return pairs


def mesh_lines(layout: OverviewLayout) -> list[list[float]]:
    """The light mesh of connections at rest, as [x0, top0, x1, top1] lines (tops measured downwards, as in CSS)
    from the right edge of a source column to the left of a target's; the browser draws it, once.

    Each neuron shows at most MESH_FAN_IN of its inputs (evenly spread): wide layers read every one of dozens of
    channels, and drawing them all would paint the gaps grey.
    """
    lines = []
    for index, pairs in enumerate(connections(layout)):
        if not pairs:
            continue
        previous, column = layout.columns[index - 1], layout.columns[index]
        step = math.ceil(len(previous.tops) / MESH_FAN_IN)
        x0 = previous.x + previous.width
        for source, target in pairs:
            if source % step == 0 or len(pairs) == len(column.tops):  # one-to-one layers keep every line
                lines.append([x0, previous.tops[source] + TILE / 2, column.x, column.tops[target] + TILE / 2])
    return lines


def selection_boxes(
    layout: OverviewLayout, network: Network, layer: str, neuron: int, cell: tuple[int, int] | None = None
) -> list[tuple[float, float, float, float]]:
    """Boxes (left, top, width, height, top measured downwards) of the selected neuron's tile (or class row) and,
    given `cell` = (row, col), of that cell in it."""
    names = [column.name for column in layout.columns]
    if layer and layer not in names and network.info(layer).kind == "softmax":
        layer = next(column.name for column in layout.columns if column.kind == OUTPUT_KIND)
    if layer not in names:
        return []
    column = layout.column(layer)
    if not 0 <= neuron < len(column.tops):
        return []
    left, top, width, height = layout.neuron_box(column, neuron)
    boxes = [(left, top, width, height)]
    if cell is not None and column.kind in MAP_KINDS:
        rows, cols = column.shape[:2]
        row, col = min(cell[0], rows - 1), min(cell[1], cols - 1)
        boxes.append((left + col * TILE / cols, top + row * TILE / rows, TILE / cols, TILE / rows))
    return boxes


@cache
def _framed_maps(width: float, height: float) -> hv.Image:
    """The picture's blank, with the whole plot's options for a `width` × `height` overview: every drawing is a
    clone of it, and clones share its options, so an image switch costs no `.opts` call (HoloViews re-applies a
    DynamicMap's `.opts` to every frame)."""
    frame = {"xlim": (0, width), "ylim": (0, height), "xaxis": None, "yaxis": None, "toolbar": None,
             "default_tools": [], "hooks": [picture_only], "responsive": True, "show_frame": False, "border": 0,
             "bgcolor": None, "aspect": None, "data_aspect": None, "title": ""}  # fmt: skip
    blank = hv.Image(np.zeros((1, 1)), kdims=["x", "y"], vdims=["index"], group="Maps")
    return blank.opts(cmap=MAP_PALETTE, clim=(0, len(MAP_PALETTE) - 1), **frame)


def neuron_stats(trace: Trace, layout: OverviewLayout) -> dict[str, list[list[float]]]:
    """(min, max, mean) of every neuron of every column, for readouts and screen-reader descriptions."""
    stats: dict[str, list[list[float]]] = {}
    for column in layout.columns:
        if column.kind == OUTPUT_KIND:
            stats[column.name] = [[float(p)] * 3 for p in trace.probabilities]
            continue
        values = trace[column.name].reshape(-1, column.shape[-1])
        stats[column.name] = np.stack([values.min(0), values.max(0), values.mean(0)], axis=1).round(4).tolist()
    return stats


def input_channel_name(channels: int, index: int) -> str:
    """red / green / blue for a colour input, grey for a grey one, else the channel's number."""
    names = INPUT_CHANNEL_NAMES.get(channels)
    return names[index] if names else f"channel {index + 1}"


def describe(column: Column, neuron: int, stats: list[float], class_names: tuple[str, ...]) -> str:
    """What the readout and a screen reader say about one neuron."""
    low, high, mean = stats
    if column.kind == OUTPUT_KIND:
        name = class_names[neuron] if class_names else f"class {neuron + 1}"
        return f"{name}: probability {100 * high:.1f} percent"
    if column.kind == "input":
        what = f"{input_channel_name(len(column.tops), neuron)} channel"
    else:
        what = f"neuron {neuron + 1} of {len(column.tops)}"
        if low == 0 and high == 0:
            return f"{column.name}, {what}: all zero for this image"
    return f"{column.name}, {what}: min {number_text(low)}, max {number_text(high)}, mean {number_text(mean)}"


def number_text(value: float, digits: int = 2) -> str:
    """A value as people read it: a real minus sign, and never "−0.00" for a value that rounds to zero."""
    text = f"{value:.{digits}f}"
    return text[1:] if text.startswith("-") and not text.strip("-0.") else text.replace("-", "−")


def legend_data(
    trace: Trace, layout: OverviewLayout, mode: str, ranges: dict[str, float] | None = None
) -> list[dict[str, Any]]:
    """One colour legend per group of columns sharing a range (and one for the grey input)."""
    ranges = color_ranges(trace, mode) if ranges is None else ranges  # the caller's, when it has them already
    legends = []
    for column in layout.columns:
        if column.kind == "input":
            legends.append(_legend(column, column, list(GREY_STOPS), "0", "", "1", "input pixel value"))
    for group in layer_groups(trace.network, mode):
        first, last = layout.column(group[0]), layout.column(group[-1])
        extent = ranges[group[0]]
        title = f"shared colour range of {', '.join(group)}"
        narrow = last.x + last.width - first.x < 2 * TILE  # three numbers do not fit under one column
        ticks = number_text(-extent), "" if narrow else "0", number_text(extent)
        legends.append(_legend(first, last, list(DIVERGING_STOPS), *ticks, title))
    return legends


def _legend(first: Column, last: Column, colors: list[str], low: str, middle: str, high: str, title: str) -> dict:
    return {
        "x0": first.x,
        "x1": last.x + last.width,
        "colors": colors,
        "low": low,
        "middle": middle,
        "high": high,
        "title": title,
    }
