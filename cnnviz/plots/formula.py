"""The formula views drawn: the engine's numbers for one window as HoloViews elements and small HTML tables.

A formula view explains one step of one layer (a convolution window, a ReLU cell, a pooling window, a softmax
term). Everything here is a pure function of the trace and a position: `explain` asks the engine
(`cnnviz.engine.explain`) once per opened neuron, `maps_element` / `window_marks` draw the input and output maps
and where the window is, and `numbers_html` writes out the arithmetic at one position. Sizes, kernel size,
stride, padding and names all come from the network, never from Tiny VGG.

Coordinates of the maps plot: the padded input fills a unit box at x ∈ [0, 1], the output a unit box at
x ∈ [1 + GAP, 2 + GAP]; y runs from 0 (top row) down to −1, so row r of a map lies below row r − 1.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import holoviews as hv
import holoviews.plotting.bokeh  # registers the Bokeh backend the options below are for
import numpy as np

from cnnviz.colors import DIVERGING, GRADIENT, GREYS, ORANGES, WEIGHTS, diverging_indices, grey_indices
from cnnviz.engine import Layer, Network, Trace
from cnnviz.engine.experiments import SWITCHED_LAYERS
from cnnviz.engine.explain import ConvSweep, conv_sweep, pool_step, relu_step, softmax_terms
from cnnviz.engine.network import INPUT_NAME

FORMULA_KINDS = ("conv2d", "relu", "maxpool2d", "softmax")
"""Layer kinds that have a formula view."""

MAP_KINDS = ("conv2d", "relu", "maxpool2d")
"""Formula views that slide a window over an input map."""

GAP = 0.35
"""Space between the two maps, in units of one map's box."""

PLOT_RANGE = {"x": (-0.02, 2 + GAP + 0.02), "y": (-1.02, 0.02)}
ASPECT = (PLOT_RANGE["x"][1] - PLOT_RANGE["x"][0]) / (PLOT_RANGE["y"][1] - PLOT_RANGE["y"][0])

RGB_CHANNEL_NAMES = ("red", "green", "blue")
PADDING_COLOR = "#dfe3e8"
MARK_COLOR = "#111111"  # the window on the input and the cell it makes on the output


def format_number(value: float, digits: int = 3) -> str:
    """A number as people read it: a real minus sign, no "−0.000", and ∞ for the padding of a pooling window."""
    if not math.isfinite(value):
        return "∞" if value > 0 else "−∞"
    if abs(value) >= 1e6:
        text = f"{value:.4g}"
    else:
        text = f"{value:.0f}" if abs(value) >= 1000 else f"{value:.{digits}f}"
    if text.startswith("-") and float(text) == 0:
        text = text[1:]
    return text.replace("-", "−")


def _hex_rgb(palette: Sequence[str]) -> np.ndarray:
    return np.array([[int(color[i : i + 2], 16) for i in (1, 3, 5)] for color in palette], np.uint8)


PALETTES = {"diverging": DIVERGING, "greys": GREYS, "weights": WEIGHTS, "gradient": GRADIENT}
_RGB = {name: _hex_rgb(palette) for name, palette in PALETTES.items()}
_HEX = {name: np.array(palette) for name, palette in PALETTES.items()}


def _half_range(values: np.ndarray) -> float:
    """Symmetric colour range of an array; 1 when it is all zeros, so nothing divides by zero."""
    extent = float(np.max(np.abs(values))) if np.size(values) else 0.0
    return extent if math.isfinite(extent) and extent > 0 else 1.0


@dataclass(frozen=True)
class Shade:
    """How a map's values become colours: a palette and, for a diverging one, its symmetric half range."""

    palette: str  # "greys" (input image, values in [0, 1]), "diverging" (activations), "weights" or "gradient"
    half_range: float = 1.0

    def indices(self, values: np.ndarray) -> np.ndarray:
        values = np.nan_to_num(np.asarray(values, np.float32), posinf=0.0, neginf=0.0)
        return grey_indices(values) if self.palette == "greys" else diverging_indices(values, self.half_range)

    def rgb(self, values: np.ndarray) -> np.ndarray:
        return _RGB[self.palette][self.indices(values)]

    def hex(self, value: float) -> str:
        return str(self.hexes(np.array([value]))[0])

    def hexes(self, values: np.ndarray) -> np.ndarray:
        """The colours of a whole array at once (one palette lookup, not one per value)."""
        return _HEX[self.palette][self.indices(values)]


def _map_shade(trace: Trace, layer_name: str, half_ranges: dict[str, float]) -> Shade:
    """A layer's colours in the overview: grey for the input image, diverging in its group's range otherwise."""
    return Shade("greys") if layer_name == INPUT_NAME else Shade("diverging", half_ranges[layer_name])


@dataclass(frozen=True)
class MapsLayout:
    """Where the input and output maps sit in the plot, and how a window of the layer covers the input."""

    input_size: tuple[int, int]
    output_size: tuple[int, int]
    window: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[tuple[int, int], tuple[int, int]] = ((0, 0), (0, 0))  # (top, bottom), (left, right)

    @classmethod
    def of(cls, network: Network, layer_name: str) -> MapsLayout:
        """The layout of a convolution, ReLU or pooling layer, read off the network itself."""
        layer = network.layer(layer_name)
        names = [info.name for info in network.infos]
        source = network.infos[names.index(layer_name) - 1].shape
        output = network.info(layer_name).shape
        if not hasattr(layer, "window_origin"):  # element-wise: one cell in, one cell out
            return cls(tuple(source[:2]), tuple(output[:2]))
        return cls(
            tuple(source[:2]), tuple(output[:2]), tuple(layer.window), tuple(layer.stride),
            layer.pad_amounts(source[0], source[1]),
        )  # fmt: skip

    @property
    def _padded(self) -> tuple[int, int]:
        (top, bottom), (left, right) = self.padding
        return self.input_size[0] + top + bottom, self.input_size[1] + left + right

    @property
    def _input_scale(self) -> float:
        return 1 / max(self._padded)

    @property
    def _output_scale(self) -> float:
        return 1 / max(self.output_size)

    def _input_origin(self) -> tuple[float, float]:
        """Plot (x, y) of the top-left corner of input cell (0, 0)."""
        scale, (rows, cols) = self._input_scale, self._padded
        (top, _), (left, _) = self.padding
        return (1 - cols * scale) / 2 + left * scale, -((1 - rows * scale) / 2 + top * scale)

    def _output_origin(self) -> tuple[float, float]:
        scale, (rows, cols) = self._output_scale, self.output_size
        return 1 + GAP + (1 - cols * scale) / 2, -(1 - rows * scale) / 2

    def window_origin(self, row: int, col: int) -> tuple[int, int]:
        """Top-left input cell of output (row, col)'s window (negative over padding): the engine's rule."""
        (top, _), (left, _) = self.padding
        return row * self.stride[0] - top, col * self.stride[1] - left

    def input_box(self, top: float, left: float, rows: float, cols: float) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) of a block of input cells."""
        x, y = self._input_origin()
        scale = self._input_scale
        return x + left * scale, y - (top + rows) * scale, x + (left + cols) * scale, y - top * scale

    def output_box(self, row: float, col: float, rows: float = 1, cols: float = 1) -> tuple[float, ...]:
        x, y = self._output_origin()
        scale = self._output_scale
        return x + col * scale, y - (row + rows) * scale, x + (col + cols) * scale, y - row * scale

    def clamp(self, row: int, col: int) -> tuple[int, int]:
        rows, cols = self.output_size
        return min(max(int(row), 0), rows - 1), min(max(int(col), 0), cols - 1)

    def position_at(self, x: float | None, y: float | None) -> tuple[int, int] | None:
        """The output cell explained when the pointer is at plot (x, y): under it, or whose window centres there."""
        if x is None or y is None:
            return None
        if x < 1 + GAP / 2:
            x0, y0 = self._input_origin()
            scale = self._input_scale
            in_row, in_col = (y0 - y) / scale, (x - x0) / scale
            (top, _), (left, _) = self.padding
            row = round((in_row - 0.5 + top - (self.window[0] - 1) / 2) / self.stride[0])
            col = round((in_col - 0.5 + left - (self.window[1] - 1) / 2) / self.stride[1])
            return self.clamp(row, col)
        x0, y0 = self._output_origin()
        scale = self._output_scale
        return self.clamp(math.floor((y0 - y) / scale), math.floor((x - x0) / scale))

    def caption_columns(self) -> str:
        """CSS grid columns that put captions above the two maps of a plot drawn in PLOT_RANGE."""
        left, right = PLOT_RANGE["x"]
        width = right - left
        return f"{-left / width:.4f}fr {1 / width:.4f}fr {GAP / width:.4f}fr {1 / width:.4f}fr"


def _paint(canvas: np.ndarray, left: float, top: float, scale: float, rgb: np.ndarray, pad=((0, 0), (0, 0))) -> None:
    """Paint a map's colours into `canvas` (PIXELS per plot unit), its padding in PADDING_COLOR around it.

    (left, top) is the plot position of the map's cell (0, 0); cells are `scale` plot units wide.
    """
    height, width = canvas.shape[:2]
    down = (np.arange(height) + 0.5) / PIXELS  # each pixel's centre, in plot units below the top
    across = (np.arange(width) + 0.5) / PIXELS
    rows = np.floor((down + top) / scale).astype(int)[:, np.newaxis]
    cols = np.floor((across - left) / scale).astype(int)[np.newaxis, :]
    (pad_top, pad_bottom), (pad_left, pad_right) = pad
    map_rows, map_cols = rgb.shape[:2]
    padded = (rows >= -pad_top) & (rows < map_rows + pad_bottom) & (cols >= -pad_left) & (cols < map_cols + pad_right)
    inside = (rows >= 0) & (rows < map_rows) & (cols >= 0) & (cols < map_cols)
    canvas[padded & ~inside] = _hex_rgb([PADDING_COLOR])[0]
    rows, cols = np.broadcast_arrays(rows, cols)
    canvas[inside] = rgb[rows[inside], cols[inside]]


PIXELS = 240
"""Resolution of the maps picture, in pixels per map box: enough for every cell to stay a sharp block."""


def maps_element(
    layout: MapsLayout, input_map: np.ndarray, input_shade: Shade, output_map: np.ndarray, output_shade: Shade
) -> hv.RGB:
    """The input map (its padding in grey) beside the output map, in the overview's colours, as ONE picture.

    One element, however big the maps: HoloViews spends its time per element, and the window's outline is
    redrawn over this picture on every pointer move.
    """
    canvas = np.full((PIXELS, round(PIXELS * (2 + GAP)), 3), 255, np.uint8)
    left, top = layout._input_origin()
    _paint(canvas, left, top, layout._input_scale, input_shade.rgb(input_map), layout.padding)
    left, top = layout._output_origin()
    _paint(canvas, left, top, layout._output_scale, output_shade.rgb(output_map))
    return hv.RGB(canvas, bounds=(0, -1, 2 + GAP, 0))


@cache
def _styled_marks() -> hv.Rectangles:
    """The outlines' style, set once: each position is a clone of this, and clones share its options, so a pointer
    move costs no `.opts` call (a dozen milliseconds of HoloViews each)."""
    return hv.Rectangles([], vdims=[]).opts(fill_alpha=0, line_color=MARK_COLOR, line_width=3, apply_ranges=False)


def window_marks(layout: MapsLayout, row: int, col: int) -> hv.Rectangles:
    """Outlines of output (row, col)'s window on the input and of the cell it makes on the output."""
    top, left = layout.window_origin(row, col)
    # an array: HoloViews deep-copies a list's NumPy scalars one by one (most of a pointer move's Python)
    boxes = np.array([layout.input_box(top, left, *layout.window), layout.output_box(row, col)], float)
    return _styled_marks().clone(boxes)


# -- what one view explains, asked of the engine once per opened neuron ---------------------------------------


@dataclass(frozen=True)
class Explained:
    """One opened formula view: what it explains, its layout and colours, and (conv) the engine's full sweep."""

    kind: str
    layer: str
    neuron: int  # the neuron (conv), channel (ReLU, pooling) or class (softmax)
    channel: int  # the input channel of a convolution whose part is explained
    title: str
    input_name: str
    output_name: str
    layout: MapsLayout
    input_map: np.ndarray
    input_shade: Shade
    output_map: np.ndarray
    output_shade: Shade
    trace: Trace | None
    sweep: ConvSweep | None = None
    shades: dict[str, Shade] | None = None  # the arithmetic's own colours (conv: kernel, products, sums, bias)


BLANK = Explained(
    "relu", "", 0, 0, "", "", "", MapsLayout((1, 1), (1, 1)),
    np.zeros((1, 1), np.float32), Shade("diverging"), np.zeros((1, 1), np.float32), Shade("diverging"), None,
)  # fmt: skip
"""A stand-in for the maps before anything is opened (a DynamicMap must always draw something)."""


def _input_name(trace: Trace, layer_name: str, channel: int) -> str:
    previous = trace.names[trace.names.index(layer_name) - 1]
    if previous == INPUT_NAME:
        channels = trace[INPUT_NAME].shape[2]
        if channels == 1:
            return "input image"
        if channels == len(RGB_CHANNEL_NAMES):
            return f"input image, {RGB_CHANNEL_NAMES[channel]} channel"
        return f"input image, channel {channel + 1}"
    return f"{previous}, channel {channel + 1}"  # counted from 1, as everywhere on screen


def activation_title(slope: float) -> str:
    if slope == 0:
        return "ReLU"
    return "No activation" if slope == 1 else "Leaky ReLU"


POOLING_TITLES = {"max": "Max pooling", "min": "Min pooling", "average": "Average pooling"}
WHAT_IF = " (what if?)"


def operation_title(network: Network, layer: Layer) -> str:
    """What a ReLU or pooling layer computes, marked "(what if?)" only where an experiment switched it: a network
    may have a leaky ReLU or average pooling of its own, and max pooling is an experiment on an average-pooled one."""
    title = activation_title(layer.negative_slope) if layer.kind == "relu" else POOLING_TITLES[layer.mode]
    return title + WHAT_IF if layer.name in network.metadata.get(SWITCHED_LAYERS, ()) else title


def explain(trace: Trace, layer_name: str, neuron: int, input_channel: int, half_ranges: dict[str, float]) -> Explained:
    """Everything the formula view of `layer_name`'s neuron needs that does not change with the window."""
    network = trace.network
    kind = network.info(layer_name).kind
    if kind not in FORMULA_KINDS:
        raise ValueError(f"{layer_name!r} is a {kind} layer; formula views exist for {', '.join(FORMULA_KINDS)}")
    if kind == "softmax":
        name = network.class_names[neuron] if network.class_names else f"class {neuron + 1}"
        layout = MapsLayout((1, 1), (1, 1))
        empty = np.zeros((1, 1), np.float32)
        return Explained(
            kind, layer_name, neuron, 0, f"Softmax · class “{name}”", "logits", "probabilities", layout,
            empty, Shade("diverging"), empty, Shade("diverging"), trace,
        )  # fmt: skip
    previous = trace.names[trace.names.index(layer_name) - 1]
    layout = MapsLayout.of(network, layer_name)
    channels = trace.input_of(layer_name).shape[2]
    channel = min(max(input_channel, 0), channels - 1) if kind == "conv2d" else neuron  # may come from another layer
    source = trace.input_of(layer_name)[:, :, channel]
    input_shade = _map_shade(trace, previous, half_ranges)
    if kind == "conv2d":
        layer = network.layer(layer_name)
        sweep = conv_sweep(trace, layer_name, neuron)
        output_map = sweep.channel_sums[:, :, channel]
        shades = {
            "input": input_shade,
            "kernel": Shade("weights", _half_range(layer.kernel)),
            "bias": Shade("weights", _half_range(layer.bias)),
            "products": Shade("diverging", _half_range(sweep.products[..., channel])),
            "sums": Shade("diverging", _half_range(sweep.channel_sums)),
            "result": _map_shade(trace, layer_name, half_ranges),
        }
        return Explained(
            kind, layer_name, neuron, channel,
            f"Convolution · {layer_name}, neuron {neuron + 1}, input channel {channel + 1}",
            _input_name(trace, layer_name, channel),
            f"this channel's part of {layer_name}, neuron {neuron + 1}",
            layout, source, input_shade, output_map, shades["sums"], trace, sweep, shades,
        )  # fmt: skip
    layer = network.layer(layer_name)
    what = operation_title(network, layer)
    output_shade = _map_shade(trace, layer_name, half_ranges)
    return Explained(
        kind, layer_name, neuron, channel, f"{what} · {layer_name}, channel {neuron + 1}",
        _input_name(trace, layer_name, channel), f"{layer_name}, channel {neuron + 1}",
        layout, source, input_shade, trace[layer_name][:, :, neuron], output_shade, trace,
        shades={"input": input_shade, "result": output_shade},
    )  # fmt: skip


# -- the arithmetic at one position, as HTML --------------------------------------------------------------------


def _ink(color: str) -> str:
    """White or near-black text, whichever contrasts more with the cell (WCAG relative luminance: white wins
    below 0.18)."""
    channels = [int(color[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    r, g, b = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return "#fff" if 0.2126 * r + 0.7152 * g + 0.0722 * b < 0.18 else "#111"


def _chip_style(color: str) -> str:
    """A cell's colour with ink that reads on it."""
    return f"background:{color};color:{_ink(color)}"


def _value(value: float, color: str | None = None, css: str = "", label: str = "", digits: int = 3) -> str:
    """A number in a coloured chip; `data-value` keeps full precision for tests and screen readers' titles."""
    style = f' style="{_chip_style(color)}"' if color else ""
    title = f' title="{html.escape(label)}"' if label else ""
    return f'<span class="fv-value {css}" data-value="{value!r}"{style}{title}>{format_number(value, digits)}</span>'


def _grid(values: np.ndarray, colors: Sequence[Sequence[str]], css: str, cell=None, marked=None) -> str:
    """A table of numbers (a window, a kernel, products); the `marked` (row, col) is outlined."""
    rows = []
    for r, row in enumerate(values):
        cells = []
        for c, value in enumerate(row):
            content = cell(r, c) if cell else format_number(float(value))
            color = colors[r][c]
            mark = ' class="fv-max"' if (r, c) == marked else ""
            cells.append(f'<td{mark} data-value="{float(value)!r}" style="{_chip_style(color)}">{content}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table class="fv-grid {css}">{"".join(rows)}</table>'


def _figure(caption: str, content: str, css: str = "") -> str:
    return f'<figure class="fv-part {css}"><figcaption>{html.escape(caption)}</figcaption>{content}</figure>'


def _op(text: str) -> str:
    return f'<span class="fv-op">{html.escape(text)}</span>'


def _window_values(explained: Explained, row: int, col: int) -> np.ndarray:
    """The input values under output (row, col)'s window, padding as the layer pads (conv: zeros)."""
    top, left = explained.layout.window_origin(row, col)
    rows, cols = explained.layout.window
    source = explained.input_map
    window = np.zeros((rows, cols), np.float32)
    for u in range(rows):
        for v in range(cols):
            if 0 <= top + u < source.shape[0] and 0 <= left + v < source.shape[1]:
                window[u, v] = source[top + u, left + v]
    return window


def conv_numbers(explained: Explained, row: int, col: int) -> str:
    sweep, shades, channel = explained.sweep, explained.shades, explained.channel
    window = _window_values(explained, row, col)
    kernel = sweep.kernel[:, :, channel]
    products = sweep.products[row, col, :, :, channel]
    sums = sweep.channel_sums[row, col]
    result = float(sweep.results[row, col])
    small = kernel.size <= 9  # 3×3 and smaller: each product also says which two numbers it multiplies

    def product(r: int, c: int) -> str:
        value = format_number(float(products[r, c]))
        if not small:
            return value
        factors = f"{format_number(float(window[r, c]))} × {format_number(float(kernel[r, c]))}"
        return f"<small>{factors}</small><b>{value}</b>"

    def colors(shade: Shade, values: np.ndarray) -> np.ndarray:
        return shade.hexes(values)

    arithmetic = (
        _figure("window (input values)", _grid(window, colors(shades["input"], window), "fv-window"))
        + _op("⊙")
        + _figure("kernel (weights)", _grid(kernel, colors(shades["kernel"], kernel), "fv-kernel"))
        + _op("=")
        + _figure(
            "products (input × weight)",
            _grid(
                products,
                colors(shades["products"], products),
                "fv-products" + (" fv-factors" if small else ""),
                product,
            ),
        )
        + _op("→ Σ =")
        + _figure(
            "this channel's result",
            _value(float(sums[channel]), shades["sums"].hex(float(sums[channel])), "fv-total", "sum of the products"),
        )
    )
    chips = _op("+").join(
        f'<span class="fv-chip fv-sum{" fv-current" if c == channel else ""}" data-channel="{c}">'
        f"{_value(float(s), shades['sums'].hex(float(s)), 'fv-sum-value')}<small>channel {c + 1}</small></span>"
        for c, s in enumerate(sums)
    )
    bias = float(sweep.bias)
    join = (
        f'<p class="fv-join-label">Every input channel gives one such result; with the bias they make '
        f"{html.escape(explained.layer)}, neuron {explained.neuron + 1} at row {row}, column {col}:</p>"
        f'<div class="fv-terms">{chips}{_op("+ bias")}{_value(bias, shades["bias"].hex(bias), "fv-bias", "bias")}'
        f"{_op('=')}{_value(result, shades['result'].hex(result), 'fv-result', 'the neuron’s value')}</div>"
    )
    status = (
        f"Window at row {row}, column {col}: the {products.size} products sum to {format_number(float(sums[channel]))};"
        f" the neuron's value there is {format_number(result)}."
    )
    return f'<div class="fv-row fv-arithmetic">{arithmetic}</div><div class="fv-row fv-join">{join}</div>' + _status(
        status
    )


def _status(text: str) -> str:
    return f'<p class="fv-status" aria-live="polite">{html.escape(text)}</p>'


def relu_numbers(explained: Explained, row: int, col: int) -> str:
    step = relu_step(explained.trace, explained.layer, row, col, explained.neuron)
    slope = explained.trace.network.layer(explained.layer).negative_slope
    x_color, y_color = explained.input_shade.hex(step.x), explained.output_shade.hex(step.y)
    x = _value(step.x, x_color, "fv-x", "input x")
    y = _value(step.y, y_color, "fv-y", "output y")
    if slope == 0:
        equation, rule = _op("max(0,") + x + _op(") =") + y, "y = max(0, x)"
    elif slope == 1:
        equation, rule = x + _op("=") + y, "y = x (no activation function)"
    else:
        equation, rule = _op(f"max({slope:g} ×") + x + _op(",") + x + _op(") =") + y, f"y = max({slope:g} × x, x)"
    extent = _half_range(explained.input_map)
    plot = (
        '<svg class="fv-relu-plot" viewBox="-1.15 -1.15 2.3 2.3" role="img" aria-label="the function, with x marked">'
        '<line x1="-1.1" y1="0" x2="1.1" y2="0" class="fv-axis"/>'
        '<line x1="0" y1="-1.1" x2="0" y2="1.1" class="fv-axis"/>'
        f'<polyline points="-1,{slope:g} 0,0 1,-1" class="fv-curve"/>'
        f'<circle r="0.07" cx="{step.x / extent:.4f}" cy="{-step.y / extent:.4f}" class="fv-dot"/>'
        '<text x="1.1" y="0.2" text-anchor="end">x</text><text x="0.08" y="-0.98">y</text></svg>'
    )
    arithmetic = _figure(rule, f'<div class="fv-equation">{equation}</div>') + _figure(
        f"x from {format_number(-extent, 2)} to {format_number(extent, 2)}", plot
    )
    rule_text = {0: f"max(0, {format_number(step.x)})", 1: format_number(step.x)}.get(
        slope, f"max({slope:g} × {format_number(step.x)}, {format_number(step.x)})"
    )
    return f'<div class="fv-row fv-arithmetic">{arithmetic}</div>' + _status(
        f"Row {row}, column {col}: {rule_text} = {format_number(step.y)}."
    )


def pool_numbers(explained: Explained, row: int, col: int) -> str:
    step = pool_step(explained.trace, explained.layer, row, col, explained.neuron)
    mode = explained.trace.network.layer(explained.layer).mode
    reduce, kept = {"max": ("max", "the largest"), "min": ("min", "the smallest"), "average": ("mean", "the average")}[
        mode
    ]
    marked = None if mode == "average" else step.argmax  # the average keeps no one cell
    shade = explained.input_shade

    def chip(u: int, v: int) -> str:
        value = float(step.window[u, v])
        css = "fv-chip fv-term" + (" fv-max" if (u, v) == marked else "")
        return _value(value, shade.hex(value), css)

    cells = [(u, v) for u in range(step.window.shape[0]) for v in range(step.window.shape[1])]
    terms = _op(",").join(chip(u, v) for u, v in cells)
    colors = [[shade.hex(float(v)) for v in line] for line in step.window]
    grid = _grid(step.window, colors, "fv-window", marked=marked)
    y = _value(step.result, explained.output_shade.hex(step.result), "fv-chip fv-y", f"{kept} value")
    equation = f'<div class="fv-equation">{_op(reduce + "(")}{terms}{_op(") =")}{y}</div>'
    arithmetic = _figure("window", grid) + _op("→") + _figure(f"y = {reduce}(window)", equation)
    return f'<div class="fv-row fv-arithmetic">{arithmetic}</div>' + _status(
        f"Window at row {row}, column {col}: {kept} of its {step.window.size} values is {format_number(step.result)}."
    )


def _orange(value: float, low: float, high: float) -> str:
    share = (value - low) / (high - low) if high > low else 0.5
    return ORANGES[round(share * (len(ORANGES) - 1))]


def softmax_numbers(explained: Explained) -> str:
    """p_k = e^{z_k} / Σ_j e^{z_j}, every term written out; hovering a class lights up its term (CSS only)."""
    network = explained.trace.network
    terms = softmax_terms(explained.trace.logits)
    k = explained.neuron
    names = list(network.class_names) or [f"class {j + 1}" for j in range(len(terms.logits))]
    low, high = float(terms.logits.min()), float(terms.logits.max())

    def power(j: int, css: str = "") -> str:
        logit = format_number(float(terms.logits[j]))
        return (
            f'<span class="fv-exp {css}" data-index="{j}"><span class="fv-exp-power">e<sup>{logit}</sup></span>'
            f"{_value(float(terms.exps[j]))}</span>"
        )

    logits = "".join(
        f'<button type="button" class="fv-logit{" fv-current" if j == k else ""}" data-index="{j}" data-pick="{j}"'
        f' aria-label="{html.escape(name)}: logit {format_number(float(z))}; explain this class">'
        f'<span class="fv-dot-logit" style="background:{_orange(float(z), low, high)}"></span>'
        f'<span class="fv-logit-name">{html.escape(name)}</span>{_value(float(z), css="fv-logit-value")}</button>'
        for j, (name, z) in enumerate(zip(names, terms.logits, strict=True))
    )
    denominator = _op("+").join(power(j) for j in range(len(names)))
    probability = float(terms.probabilities[k])
    # hover or focus on a class lights up its term in the sum, and the other way round: the browser alone does it
    links = "".join(
        f".fv-softmax-view:has([data-index='{j}']:is(:hover,:focus-visible)) [data-index='{j}']"
        "{border-color:#f28e2b;background:#fff3e6}"
        for j in range(len(names))
    )
    return (
        f'<div class="fv-softmax-view"><style>{links}</style>'
        + _figure(
            "Logits z: click a class (or Tab to it and press Enter) to explain it",
            f'<div class="fv-logit-row">{logits}</div>',
            "fv-logits",
        )
        + f'<div class="fv-row fv-softmax">{_op(f"p({names[k]}) =")}<div class="fv-fraction">'
        f'<div class="fv-numerator">{power(k, "fv-current")}</div><div class="fv-denominator">{denominator}</div>'
        "</div></div>"
        f'<div class="fv-row fv-softmax-result">{_op("=")}{_value(float(terms.exps[k]), css="fv-top")}{_op("/")}'
        f'{_value(terms.total, css="fv-total", label="sum of the exponentials")}{_op("=")}'
        f'{_value(probability, css="fv-result", label="probability")}'
        f'<span class="fv-percent">({100 * probability:.1f} %)</span></div></div>'
        + _status(f"{names[k]}: e to the power {format_number(float(terms.logits[k]))} is "
                  f"{format_number(float(terms.exps[k]))}, its share of the sum is {format_number(probability)}.")
    )  # fmt: skip


def numbers_html(explained: Explained, row: int, col: int) -> str:
    """The arithmetic of output (row, col) (ignored by softmax), as HTML with the engine's numbers."""
    if explained.kind == "softmax":
        return softmax_numbers(explained)
    row, col = explained.layout.clamp(row, col)
    body = {"conv2d": conv_numbers, "relu": relu_numbers, "maxpool2d": pool_numbers}[explained.kind](
        explained, row, col
    )
    return f'<div class="fv-numbers" data-position="{row},{col}">{body}</div>'


def captions_html(explained: Explained) -> str:
    """Captions above the two maps, aligned with them (see MapsLayout.caption_columns)."""
    rows, cols = explained.layout.input_size
    out_rows, out_cols = explained.layout.output_size
    return (
        f'<div class="fv-captions" style="grid-template-columns:{explained.layout.caption_columns()}"><span></span>'
        f"<span>Input: {html.escape(explained.input_name)} ({rows}×{cols})</span>"
        '<span class="fv-arrow" aria-hidden="true">→</span>'
        f"<span>Output: {html.escape(explained.output_name)} ({out_rows}×{out_cols})</span></div>"
    )
