"""The overview as one Bokeh plot: every neuron of every layer as a heatmap, in fixed data coordinates.

All hidden-layer heatmaps live in ONE image glyph (one row per neuron, each its own native resolution), the
input channels in a second (grey) one, and the class probabilities are bars: three sources to update on an
image switch, however many neurons there are. Values travel as uint8 palette indices, a quarter of float32.
Hover, focus, edges and labels are drawn by the browser overlay (`views/overview.py`) from `OverviewLayout`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from bokeh.models import ColumnDataSource, LinearColorMapper, Range1d
from bokeh.plotting import figure

from cnnviz.colors import (
    DIVERGING,
    DIVERGING_STOPS,
    GREY_STOPS,
    GREYS,
    MAP_KINDS,
    PALETTE_SIZE,
    color_ranges,
    diverging_indices,
    grey_indices,
    layer_groups,
)
from cnnviz.engine import Network, Trace

TILE = 1.0  # every heatmap is drawn 1 × 1 data unit, whatever its resolution
ROW_PITCH = 1.25
COLUMN_GAP = 1.3  # room for the edges between columns
OUTPUT_WIDTH = 4.6  # class name + probability bar
LEFT_MARGIN = 0.5  # room for the first column's label
TOP_MARGIN = 1.2  # layer labels (and shapes, with details on)
BOTTOM_MARGIN = 1.0  # colour legends
BAR_HEIGHT = 0.5
NAME_SHARE = 0.5  # of the output column, left of the bars
BAR_SHARE = 0.45  # of the rest; the percentage is written after the bar, clear of even a full one
OUTPUT_KIND = "output"
PREDICTED_COLOR = "#f28e2b"
BAR_COLOR = "#9a9a9a"


@dataclass(frozen=True)
class Column:
    """One column of the overview: a layer, where it sits, and where each of its neurons is drawn."""

    name: str
    kind: str  # engine layer kind, "input", or "output" (class probabilities)
    shape: tuple[int, ...]
    x: float  # left edge
    width: float
    tops: tuple[float, ...]  # top edge of each neuron, measured downwards from the top of the plot


@dataclass(frozen=True)
class OverviewLayout:
    columns: tuple[Column, ...]
    width: float
    height: float

    def column(self, name: str) -> Column:
        return next(column for column in self.columns if column.name == name)

    def to_json(self) -> dict[str, Any]:
        """Geometry for the browser overlay (y grows downwards there, as in SVG and CSS)."""
        return {
            "width": self.width,
            "height": self.height,
            "tile": TILE,
            "bar_height": BAR_HEIGHT,
            "label_height": TOP_MARGIN - 0.1,
            "columns": [asdict(column) for column in self.columns],
        }


def _tops(count: int, rows: int) -> tuple[float, ...]:
    """Neuron positions of a column of `count` neurons, centred on a grid of `rows` rows."""
    offset = (rows - count) * ROW_PITCH / 2
    return tuple(TOP_MARGIN + offset + i * ROW_PITCH for i in range(count))


def overview_layout(network: Network) -> OverviewLayout:
    """Columns for the input channels, every heatmap layer, and the class probabilities."""
    maps = [info for info in network.infos if info.kind in ("input", *MAP_KINDS)]
    rows = max(max(info.shape[-1] for info in maps), len(network.class_names))
    columns, x = [], LEFT_MARGIN
    for info in maps:
        columns.append(Column(info.name, info.kind, info.shape, x, TILE, _tops(info.shape[-1], rows)))
        x += TILE + COLUMN_GAP
    output = next(info for info in reversed(network.infos) if info.kind == "dense")
    bars = _tops(len(network.class_names), rows)
    columns.append(Column(output.name, OUTPUT_KIND, output.shape, x, OUTPUT_WIDTH, bars))
    height = TOP_MARGIN + rows * ROW_PITCH - (ROW_PITCH - TILE) + BOTTOM_MARGIN
    return OverviewLayout(tuple(columns), x + OUTPUT_WIDTH, height)


def _glyph_rows(layout: OverviewLayout, columns: list[Column], values) -> dict[str, list]:
    """Image glyph columns: one row per neuron, flipped because Bokeh images start at the bottom."""
    data: dict[str, list] = {"image": [], "x": [], "y": [], "dw": [], "dh": []}
    for column in columns:
        for neuron, top in enumerate(column.tops):
            data["image"].append(np.flipud(values(column, neuron)))
            data["x"].append(column.x)
            data["y"].append(layout.height - top - TILE)
            data["dw"].append(TILE)
            data["dh"].append(TILE)
    return data


def heatmap_data(trace: Trace, layout: OverviewLayout, ranges: dict[str, float]) -> dict[str, list]:
    """Hidden-layer heatmaps as palette indices under the given symmetric colour ranges."""
    columns = [column for column in layout.columns if column.kind in MAP_KINDS]
    return _glyph_rows(
        layout, columns, lambda column, n: diverging_indices(trace[column.name][..., n], ranges[column.name])
    )


def input_data(trace: Trace, layout: OverviewLayout) -> dict[str, list]:
    """The input's colour channels as grey heatmaps (0 black, 1 white)."""
    columns = [column for column in layout.columns if column.kind == "input"]
    return _glyph_rows(layout, columns, lambda column, n: grey_indices(trace[column.name][..., n]))


def bar_data(trace: Trace, layout: OverviewLayout) -> dict[str, list]:
    """One horizontal bar per class, as long as its probability; the predicted class stands out."""
    column = next(column for column in layout.columns if column.kind == OUTPUT_KIND)
    probabilities = trace.probabilities
    bar_left = column.x + NAME_SHARE * column.width  # the class name sits left of the bar
    span = (column.width - (bar_left - column.x)) * BAR_SHARE
    predicted = trace.predicted_index
    return {
        "left": [bar_left] * len(probabilities),
        "right": [bar_left + span * float(p) for p in probabilities],
        "top": [layout.height - top - (TILE - BAR_HEIGHT) / 2 for top in column.tops],
        "bottom": [layout.height - top - (TILE + BAR_HEIGHT) / 2 for top in column.tops],
        "color": [PREDICTED_COLOR if i == predicted else BAR_COLOR for i in range(len(probabilities))],
    }


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


@dataclass(frozen=True, eq=False)
class OverviewPlot:
    """The Bokeh figure and the three sources an image switch updates."""

    figure: Any
    heatmaps: ColumnDataSource
    inputs: ColumnDataSource
    bars: ColumnDataSource

    def update(self, trace: Trace, layout: OverviewLayout, ranges: dict[str, float]) -> None:
        self.heatmaps.data = heatmap_data(trace, layout, ranges)
        self.inputs.data = input_data(trace, layout)
        self.bars.data = bar_data(trace, layout)


def overview_plot(trace: Trace, layout: OverviewLayout, ranges: dict[str, float]) -> OverviewPlot:
    """A frameless figure whose data coordinates fill the canvas exactly, so the overlay can align with it."""
    fig = figure(
        x_range=Range1d(0, layout.width, bounds="auto"),
        y_range=Range1d(0, layout.height, bounds="auto"),
        sizing_mode="stretch_both",
        toolbar_location=None,
        tools="",
        min_border=0,
        outline_line_color=None,
        background_fill_color=None,
        border_fill_color=None,
        output_backend="canvas",
        x_axis_type=None,  # no axes, grids, tickers: models every session would build, send and hide
        y_axis_type=None,
        title=None,
    )
    heatmaps = ColumnDataSource(heatmap_data(trace, layout, ranges))
    inputs = ColumnDataSource(input_data(trace, layout))
    bars = ColumnDataSource(bar_data(trace, layout))
    diverging = LinearColorMapper(palette=DIVERGING, low=0, high=PALETTE_SIZE - 1)
    greys = LinearColorMapper(palette=GREYS, low=0, high=255)
    renderers = [
        fig.image(image="image", x="x", y="y", dw="dw", dh="dh", source=heatmaps, color_mapper=diverging),
        fig.image(image="image", x="x", y="y", dw="dw", dh="dh", source=inputs, color_mapper=greys),
        fig.quad(left="left", right="right", top="top", bottom="bottom", color="color", source=bars, line_color=None),
    ]
    for renderer in renderers:  # nothing is ever selected or muted: let the browser derive those glyphs if asked
        renderer.update(nonselection_glyph="auto", muted_glyph="auto")
    return OverviewPlot(fig, heatmaps, inputs, bars)


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
            legends.append(_legend(column, column, list(GREY_STOPS), "0", "0.5", "1", "input pixel value"))
    for group in layer_groups(trace.network, mode):
        first, last = layout.column(group[0]), layout.column(group[-1])
        extent = ranges[group[0]]
        title = f"shared colour range of {', '.join(group)}"
        ticks = number_text(-extent), "0", number_text(extent)
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
