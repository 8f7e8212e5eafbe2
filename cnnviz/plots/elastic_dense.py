"""The flatten and softmax elastic views drawn: the engine's numbers as a few HoloViews elements and HTML strings.

Flatten view (one class k of the dense layer): the maps the Flatten layer unrolls, tiled in a grid; the
flattened vector as one tall strip (in the engine's flatten order, `flatten_index`); one edge per element to
the ⊕ node, coloured by its weight; and the class score. The maps, the strip, the ⊕ and the score box are ONE
`hv.RGB` picture, the edges ONE `hv.Segments`, the texts ONE `hv.Labels`: HoloViews spends its time per element.

Softmax view: one row per class: logit circle → e^logit → ÷ Σ → probability circle. Circles are screen-sized
`hv.Points` on a plot of fixed row pitch, so the number inside a circle is sized to fit it at every width.

Backward mode draws both views in the same places with the gradient in their colours, the flow running right to
left (`explain_flatten_backward`, `explain_softmax_backward`): softmax with cross-entropy hands each score p − y;
the dense layer turns it into its weights' gradients (input × (p − y)) and passes w × (p − y) back to every
element, which un-flattening returns to the maps.

Every size, name and class count comes from the network (`Network.infos`), never from Tiny VGG. Coordinates:
x to the right, y from 0 (top) down; the flatten view measures in map tiles (one map = a 1 × 1 box), the
softmax view in rows (row i spans y ∈ [−i − 1, −i]).
"""

from __future__ import annotations

import html
import itertools
import math
from dataclasses import dataclass, replace

import holoviews as hv
import holoviews.plotting.bokeh  # registers the Bokeh backend the options below are for
import numpy as np

from cnnviz.colors import GRADIENT, ORANGES
from cnnviz.engine import Network, Trace
from cnnviz.engine.explain import DenseStep, SoftmaxTerms, dense_step, flatten_index, flatten_position, softmax_terms
from cnnviz.engine.explain_backward import OutputGradient, dense_gradient, output_gradient
from cnnviz.engine.gradients import Backward
from cnnviz.plots.formula import PALETTES, Shade, _chip_style, _half_range, _hex_rgb, _ink, format_number
from cnnviz.plots.formula_backward import gradient_text

MAP_GAP = 0.15  # between the tiles of the grid, in tiles
LEFT_MARGIN = 0.05  # keeps the outer maps' frames inside the picture (left, top and bottom)
STRIP_WIDTH = 0.22
STRIP_GAP = 1.1  # grid → strip (room for the hover connector)
EDGE_RUN = 2.4  # strip → ⊕: the weight edges fan in over this distance
PLUS_RADIUS = 0.22
SCORE_GAP = 0.5
SCORE_SIZE = (1.5, 0.7)
RIGHT_MARGIN = 0.1
MIN_HEIGHT = 2.6  # in tiles: a single map still leaves room for the edges to fan in
TILE_PIXELS = 96  # resolution of one map tile in the picture (each cell at least one whole pixel)
HIGHLIGHT = "#f59e0b"
SCORE_FILL, SCORE_LINE, SCORE_INK = "#fff4e8", "#b35806", "#7f2704"
FRAME = "#8a96a3"
NEIGHBOURS = 7  # the readout shows this many vector entries either side of the inspected one


def dense_source(network: Network, dense_name: str) -> tuple[str, tuple[int, int, int]]:
    """The layer whose maps the dense layer's input unrolls, and their (rows, cols, channels).

    After a Flatten that is the layer before it; a dense layer fed by a vector shows that vector as 1 × 1 maps.
    """
    names = [info.name for info in network.infos]
    index = names.index(dense_name)
    before = network.infos[index - 1]
    if before.kind == "flatten":
        source = network.infos[index - 2]
        return source.name, tuple(int(n) for n in source.shape)
    return before.name, (1, 1, int(np.prod(before.shape)))


@dataclass(frozen=True)
class FlattenLayout:
    """Where the maps, the strip, the ⊕ and the score sit, and which element the pointer is over."""

    shape: tuple[int, int, int]  # rows, cols, channels of the unrolled maps

    @classmethod
    def of(cls, network: Network, dense_name: str) -> FlattenLayout:
        return cls(dense_source(network, dense_name)[1])

    @property
    def count(self) -> int:
        return int(np.prod(self.shape))

    @property
    def grid(self) -> tuple[int, int]:
        """(rows, columns) of map tiles: a grid about twice as tall as wide, like a column of the overview."""
        channels = self.shape[2]
        columns = max(1, math.ceil(math.sqrt(channels / 2)))
        return math.ceil(channels / columns), columns

    @property
    def _cell(self) -> float:
        return 1 / max(self.shape[:2])

    @property
    def height(self) -> float:
        rows = self.grid[0]
        return max(MIN_HEIGHT, rows + (rows - 1) * MAP_GAP + 2 * LEFT_MARGIN)

    @property
    def _grid_top(self) -> float:
        rows = self.grid[0]
        return -(self.height - (rows + (rows - 1) * MAP_GAP)) / 2

    @property
    def grid_width(self) -> float:
        columns = self.grid[1]
        return LEFT_MARGIN + columns + (columns - 1) * MAP_GAP

    @property
    def strip_x(self) -> float:
        return self.grid_width + STRIP_GAP

    @property
    def plus(self) -> tuple[float, float]:
        return self.strip_x + STRIP_WIDTH + EDGE_RUN, -self.height / 2

    @property
    def score_box(self) -> tuple[float, float, float, float]:
        x, y = self.plus
        left = x + PLUS_RADIUS + SCORE_GAP
        width, height = SCORE_SIZE
        return left, y - height / 2, left + width, y + height / 2

    @property
    def width(self) -> float:
        return self.score_box[2] + RIGHT_MARGIN

    def map_box(self, channel: int) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) of channel's map (cells are square, the map centred in its tile)."""
        columns = self.grid[1]
        tile_row, tile_col = divmod(channel, columns)
        rows, cols = self.shape[:2]
        left = LEFT_MARGIN + tile_col * (1 + MAP_GAP) + (1 - cols * self._cell) / 2
        top = self._grid_top - tile_row * (1 + MAP_GAP) - (1 - rows * self._cell) / 2
        return left, top - rows * self._cell, left + cols * self._cell, top

    def cell_box(self, row: int, col: int, channel: int) -> tuple[float, float, float, float]:
        x0, _, _, y1 = self.map_box(channel)
        cell = self._cell
        return x0 + col * cell, y1 - (row + 1) * cell, x0 + (col + 1) * cell, y1 - row * cell

    def entry_y(self, index: int) -> float:
        """Centre height of flattened element `index` in the strip (element 0 at the top)."""
        return -(index + 0.5) * self.height / self.count

    def entry_box(self, index: int) -> tuple[float, float, float, float]:
        pitch = self.height / self.count
        y = self.entry_y(index)
        half = max(pitch / 2, 0.012)  # an entry thinner than a pixel is still marked visibly
        return self.strip_x - 0.06, y - half, self.strip_x + STRIP_WIDTH + 0.06, y + half

    def element_at(self, x: float | None, y: float | None) -> int | str | None:
        """The flattened element under plot (x, y) (on a map or on the strip), "score" on the score box, or None."""
        if x is None or y is None:
            return None
        x0, y0, x1, y1 = self.score_box
        if x0 <= x <= x1 and y0 <= y <= y1:
            return "score"
        if self.strip_x - 0.1 <= x <= self.strip_x + STRIP_WIDTH + 0.1 and -self.height <= y <= 0:
            return min(self.count - 1, max(0, int(-y / self.height * self.count)))
        rows, cols, channels = self.shape
        for channel in range(channels):
            bx0, by0, bx1, by1 = self.map_box(channel)
            if bx0 <= x < bx1 and by0 < y <= by1:
                row = min(rows - 1, int((by1 - y) / self._cell))
                col = min(cols - 1, int((x - bx0) / self._cell))
                return flatten_index(self.shape, row, col, channel)
        return None

    def caption_columns(self) -> str:
        """CSS grid columns putting one caption over the maps, the strip, the ⊕ and the score."""
        plus_x = self.plus[0]
        bounds = [0, self.grid_width + STRIP_GAP / 2, self.strip_x + STRIP_WIDTH + EDGE_RUN / 2,
                  plus_x + PLUS_RADIUS + SCORE_GAP / 2, self.width]  # fmt: skip
        return " ".join(f"{(b - a) / self.width:.4f}fr" for a, b in itertools.pairwise(bounds))


@dataclass(frozen=True)
class FlattenExplained:
    """One opened flatten view: the engine's dense step for one class and how it is coloured."""

    layer: str
    unit: int
    class_name: str
    source: str
    layout: FlattenLayout
    maps: np.ndarray  # (rows, cols, channels): what the Flatten layer unrolls
    step: DenseStep
    value_shade: Shade  # the source layer's colours in the overview
    weight_shade: Shade
    backward: FlattenBackward | None = None
    """Backward mode: `maps` and the shades hold gradients (`explain_flatten_backward`)."""

    @property
    def strip(self) -> np.ndarray:
        """The flattened vector drawn: the values, or backward the gradient every element receives."""
        return self.step.inputs if self.backward is None else self.backward.input_gradient

    @property
    def edges(self) -> np.ndarray:
        """What the edges' colours show: the weights, or backward their gradients."""
        return self.step.weights if self.backward is None else self.backward.kernel_gradient

    @property
    def bias(self) -> float:
        """The ⊕ node's colour: the bias, or backward its gradient."""
        return self.step.bias if self.backward is None else self.backward.upstream

    @property
    def score(self) -> float:
        """The number in the score box: the class score, or backward the gradient arriving at it (p − y)."""
        return self.step.result if self.backward is None else self.backward.upstream


@dataclass(frozen=True)
class FlattenBackward:
    """One class of the dense layer run backwards: p − y arrives at its score and flows left."""

    probability: float  # p of this class
    target: float  # y: 1 for the true class, else 0
    upstream: float  # p − y = ∂L/∂score, which is also the bias's gradient
    kernel_gradient: np.ndarray  # (n,) input × (p − y) = ∂L/∂w of each edge
    shares: np.ndarray  # (n,) w × (p − y): what this class passes back to each element
    input_gradient: np.ndarray  # (n,) ∂L/∂input: the shares of every class added up
    classes: int


def class_names(network: Network) -> list[str]:
    count = int(network.infos[-1].shape[-1])
    return list(network.class_names) or [f"class {index + 1}" for index in range(count)]


def explain_flatten(trace: Trace, dense_name: str, unit: int, half_ranges: dict[str, float]) -> FlattenExplained:
    """Everything the flatten view of class `unit` shows, asked of the engine once per opened class."""
    network = trace.network
    source, shape = dense_source(network, dense_name)
    step = dense_step(trace, dense_name, unit)
    half_range = half_ranges.get(source) or float(np.max(np.abs(step.inputs))) or 1.0
    weight_range = float(np.max(np.abs(np.append(step.weights, step.bias)))) or 1.0
    return FlattenExplained(
        dense_name, unit, class_names(network)[unit], source, FlattenLayout(shape),
        np.asarray(step.inputs).reshape(shape), step, Shade("diverging", half_range), Shade("weights", weight_range),
    )  # fmt: skip


def explain_flatten_backward(trace: Trace, backward: Backward, dense_name: str, unit: int) -> FlattenExplained:
    """The flatten view of class `unit` for the backward pass, asked of the engine once per opened class."""
    forward = explain_flatten(trace, dense_name, unit, {})  # its colours are replaced below
    gradient = dense_gradient(backward, dense_name, unit)
    source_name = forward.source
    passed_back = np.asarray(backward.gradients[source_name], np.float64)
    output = output_gradient(backward) if dense_name == backward.logits_name else None
    flowing = FlattenBackward(
        probability=float(output.probabilities[unit]) if output is not None else float("nan"),
        target=float(output.target[unit]) if output is not None else float("nan"),
        upstream=gradient.upstream, kernel_gradient=gradient.kernel_gradient,
        shares=np.asarray(forward.step.weights, np.float64) * gradient.upstream,
        input_gradient=passed_back.reshape(-1),  # the flatten order is the maps' own (channels last)
        classes=len(backward.gradients[dense_name]),
    )  # fmt: skip
    return replace(
        forward, maps=passed_back.reshape(forward.layout.shape), backward=flowing,
        value_shade=Shade("gradient", _half_range(passed_back)),
        # the edges' own range: the bias's gradient (p − y itself) is often far larger and would wash them out;
        # the ⊕ then saturates, and its number is written in the score box and under the picture
        weight_shade=Shade("gradient", _half_range(gradient.kernel_gradient)),
    )  # fmt: skip


def _fill(canvas: np.ndarray, box: tuple[float, ...], height: float, color: np.ndarray | str) -> None:
    """Fill plot box (x0, y0, x1, y1) of a canvas covering x ∈ [0, width], y ∈ [−height, 0]."""
    scale = canvas.shape[0] / height
    x0, y0, x1, y1 = box
    top, bottom = round(-y1 * scale), round(-y0 * scale)
    left, right = round(x0 * scale), round(x1 * scale)
    canvas[top:bottom, left:right] = _hex_rgb([color])[0] if isinstance(color, str) else color


def _frame(canvas: np.ndarray, box: tuple[float, ...], height: float, color: str, pixels: int = 1) -> None:
    scale = canvas.shape[0] / height
    x0, y0, x1, y1 = box
    edge = pixels / scale
    for side in ((x0 - edge, y0 - edge, x1 + edge, y0), (x0 - edge, y1, x1 + edge, y1 + edge),
                 (x0 - edge, y0, x0, y1), (x1, y0, x1 + edge, y1)):  # fmt: skip
        _fill(canvas, side, height, color)


def flatten_picture(explained: FlattenExplained) -> hv.RGB:
    """The maps, the strip of flattened values, the ⊕ and the score box, painted as ONE picture."""
    layout = explained.layout
    # datatype "image": HoloViews otherwise tries its other data interfaces first, ~20× slower for this array
    return hv.RGB(flatten_canvas(explained), bounds=(0, -layout.height, layout.width, 0), datatype=["image"])


def flatten_canvas(explained: FlattenExplained) -> np.ndarray:
    """The pixels of `flatten_picture`: (rows, columns, RGB) covering x ∈ [0, width], y ∈ [−height, 0]."""
    layout = explained.layout
    rows, cols, channels = layout.shape
    cell_pixels = max(1, math.ceil(TILE_PIXELS / max(rows, cols)))
    scale = cell_pixels * max(rows, cols)  # pixels per plot unit
    canvas = np.full((round(layout.height * scale), round(layout.width * scale), 3), 255, np.uint8)
    colors = explained.value_shade.rgb(explained.maps)  # (rows, cols, channels, 3)
    for channel in range(channels):
        x0, _, _, y1 = layout.map_box(channel)
        block = np.repeat(np.repeat(colors[:, :, channel], cell_pixels, 0), cell_pixels, 1)
        top, left = round(-y1 * scale), round(x0 * scale)
        canvas[top : top + block.shape[0], left : left + block.shape[1]] = block
        _frame(canvas, layout.map_box(channel), layout.height, FRAME)
    strip = explained.value_shade.rgb(explained.strip)  # in flatten order, element 0 at the top
    pixel_rows = canvas.shape[0]
    entries = np.minimum((np.arange(pixel_rows) + 0.5) * layout.count / pixel_rows, layout.count - 1).astype(int)
    left, right = round(layout.strip_x * scale), round((layout.strip_x + STRIP_WIDTH) * scale)
    canvas[:, left:right] = strip[entries][:, np.newaxis]
    _frame(canvas, (layout.strip_x, -layout.height, layout.strip_x + STRIP_WIDTH, 0), layout.height, FRAME)
    x, y = layout.plus
    box = layout.score_box
    _fill(canvas, (x + PLUS_RADIUS, y - 0.01, box[0], y + 0.01), layout.height, "#9aa5b1")  # ⊕ → score
    _fill(canvas, box, layout.height, SCORE_FILL)
    _frame(canvas, box, layout.height, SCORE_LINE, 2)
    _plus_disc(canvas, layout, scale, explained.weight_shade.hex(explained.bias))
    return canvas


def _plus_disc(canvas: np.ndarray, layout: FlattenLayout, scale: float, fill: str) -> None:
    """The ⊕ node: a disc in the bias's weight colour with a dark rim and a "+" that stays readable on it."""
    x, y = layout.plus
    size = math.ceil(PLUS_RADIUS * scale) + 2
    cx, cy = x * scale, -y * scale
    top, left = max(0, round(cy) - size), max(0, round(cx) - size)
    rows = np.arange(top, min(canvas.shape[0], round(cy) + size))[:, np.newaxis] + 0.5
    cols = np.arange(left, min(canvas.shape[1], round(cx) + size))[np.newaxis, :] + 0.5
    distance = np.hypot(rows - cy, cols - cx) / scale
    region = canvas[top : top + rows.shape[0], left : left + cols.shape[1]]
    region[distance <= PLUS_RADIUS] = _hex_rgb(["#39434f"])[0]
    region[distance <= PLUS_RADIUS - 2 / scale] = _hex_rgb([fill])[0]
    arm, half = 0.55 * PLUS_RADIUS * scale, max(1.0, 0.05 * PLUS_RADIUS * scale)
    dy, dx = np.abs(rows - cy), np.abs(cols - cx)
    ink = "#ffffff" if _ink(fill) == "#fff" else "#111111"
    region[((dy <= half) & (dx <= arm)) | ((dx <= half) & (dy <= arm))] = _hex_rgb([ink])[0]


def flatten_edges(explained: FlattenExplained) -> hv.Segments:
    """One edge per flattened element, strip → ⊕, coloured by its weight, or backward by its gradient (vdim
    `weight`)."""
    layout = explained.layout
    ys = layout.entry_y(np.arange(layout.count))
    x_plus, y_plus = layout.plus
    start = layout.strip_x + STRIP_WIDTH
    data = {
        "x0": np.full(layout.count, start), "y0": ys, "x1": np.full(layout.count, x_plus - PLUS_RADIUS),
        "y1": np.full(layout.count, y_plus), "weight": explained.edges.astype(np.float64),
    }  # fmt: skip
    half = explained.weight_shade.half_range
    return hv.Segments(data, ["x0", "y0", "x1", "y1"], ["weight"]).opts(
        color="weight",
        cmap=PALETTES[explained.weight_shade.palette],
        clim=(-half, half),
        line_alpha=0.45,
        line_width=0.7,
    )


def flatten_labels(explained: FlattenExplained) -> hv.Labels:
    """The score (backward: p − y) inside its box (the class name is in the caption above it)."""
    x0, y0, x1, y1 = explained.layout.score_box
    score = format_number(explained.score) if explained.backward is None else gradient_text(explained.score)
    return hv.Labels([((x0 + x1) / 2, (y0 + y1) / 2, score)], ["x", "y"], ["text"]).opts(
        text_color=SCORE_INK, text_font_size="15px", text_font_style="bold"
    )


def flatten_marks(explained: FlattenExplained | None, index: int | None) -> hv.Segments:
    """Outlines of the inspected element on its map and in the strip (4 sides each), the line joining them and
    its weight edge to ⊕: ONE `hv.Segments` (a multi-path `hv.Path` costs several times more per pointer move)."""
    if explained is None or index is None:
        return hv.Segments([], ["x0", "y0", "x1", "y1"])
    layout = explained.layout
    row, col, channel = flatten_position(layout.shape, index)
    pixel = layout.cell_box(row, col, channel)
    y = layout.entry_y(index)
    x_plus, y_plus = layout.plus
    cx0, cy0, cx1, cy1 = pixel
    joiner = ((cx0 + cx1) / 2, (cy0 + cy1) / 2, layout.strip_x - 0.06, y)
    edge = (layout.strip_x + STRIP_WIDTH + 0.06, y, x_plus - PLUS_RADIUS, y_plus)
    rows = [*_sides(pixel), *_sides(layout.entry_box(index)), joiner, edge]
    return hv.Segments(np.array(rows, np.float64), ["x0", "y0", "x1", "y1"])


def _sides(box: tuple[float, float, float, float]) -> list[tuple[float, float, float, float]]:
    x0, y0, x1, y1 = box
    return [(x0, y0, x1, y0), (x1, y0, x1, y1), (x1, y1, x0, y1), (x0, y1, x0, y0)]


def flatten_captions(explained: FlattenExplained) -> str:
    """Column titles with shapes, aligned over the maps, the strip, the ⊕ and the score."""
    rows, cols, channels = explained.layout.shape
    maps = f"{channels} map{'s' if channels != 1 else ''} of {rows}×{cols}"
    if explained.backward is None:
        parts = [
            (explained.source, maps),
            ("flatten", f"{explained.layout.count} values, in order"),
            ("× weights, Σ + bias", "edge colour: weight"),
            (f"score of “{explained.class_name}”", "logit, before softmax"),
        ]
    else:
        parts = [
            (f"∂L/∂{explained.source}", f"un-flattened: {maps}"),
            ("∂L/∂(flattened)", f"Σ of w × (p − y) over {explained.backward.classes} classes"),
            ("∂L/∂w = x·(p − y)", "edge colour: weight gradient"),
            (f"p − y of “{explained.class_name}”", "the gradient at the score"),
        ]
    spans = "".join(
        f'<span class="ed-caption"><b>{html.escape(title)}</b><small>{html.escape(note)}</small></span>'
        for title, note in parts
    )
    return f'<div class="ed-captions" style="grid-template-columns:{explained.layout.caption_columns()}">{spans}</div>'


def legend_html(title: str, palette: list[str], low: float, high: float, middle: str | None = "0") -> str:
    """A colour bar with its range, in HTML (costs no HoloViews element)."""
    stops = ", ".join(palette[round(i * (len(palette) - 1) / 8)] for i in range(9))
    middle_tick = f"<span>{html.escape(middle)}</span>" if middle is not None else ""
    return (
        f'<figure class="ed-legend"><figcaption>{html.escape(title)}</figcaption>'
        f'<div class="ed-bar" style="background:linear-gradient(to right, {stops})"></div>'
        f'<div class="ed-ticks"><span>{format_number(low, 2)}</span>{middle_tick}'
        f"<span>{format_number(high, 2)}</span></div></figure>"
    )


def flatten_legends(explained: FlattenExplained) -> str:
    values, weights = explained.value_shade.half_range, explained.weight_shade.half_range
    if explained.backward is None:
        titles = f"{explained.source} values (as in the overview)", "weights and bias"
    else:
        titles = f"gradient at {explained.source} and the flattened values", "gradient of the weights (the bias: p − y)"
    return (
        '<div class="ed-legends">'
        + legend_html(titles[0], PALETTES[explained.value_shade.palette], -values, values)
        + legend_html(titles[1], PALETTES[explained.weight_shade.palette], -weights, weights)
        + "</div>"
    )


def _chip(value: float, color: str, css: str = "", label: str = "", shown=format_number) -> str:
    title = f' title="{html.escape(label)}"' if label else ""
    return (
        f'<span class="ed-value {css}" data-value="{value!r}" style="{_chip_style(color)}"{title}>{shown(value)}</span>'
    )


def flatten_numbers(explained: FlattenExplained, index: int | None) -> str:
    """The arithmetic behind the score, and the inspected element's part in it, with the engine's numbers."""
    if explained.backward is not None:
        return _flatten_backward_numbers(explained, index)
    step, layout = explained.step, explained.layout
    sum_line = (
        f'<p class="ed-sum">Σ of the {layout.count} products = '
        f'<span class="ed-total" data-value="{step.total!r}">{format_number(step.total)}</span>; + bias '
        + _chip(step.bias, explained.weight_shade.hex(step.bias), "ed-bias")
        + ' = score <span class="ed-score" data-value="'
        + f'{step.result!r}">{format_number(step.result)}</span></p>'
    )
    if index is None:
        hint = "Point at a pixel of a map or at the strip to follow one value; tap pins it."
        return f'<div class="ed-numbers">{sum_line}<p class="ed-status" aria-live="polite">{hint}</p></div>'
    row, col, channel = flatten_position(layout.shape, index)
    value, weight, product = (float(a[index]) for a in (step.inputs, step.weights, step.products))
    where = f"{explained.source}, channel {channel + 1}, row {row}, column {col}"
    element = (
        f'<p class="ed-element" data-index="{index}">{html.escape(where)} → element {index}: '
        + _chip(value, explained.value_shade.hex(value), "ed-input", "value")
        + " × weight "
        + _chip(weight, explained.weight_shade.hex(weight), "ed-weight", "weight")
        + f' = <span class="ed-product" data-value="{product!r}">{format_number(product)}</span></p>'
    )
    status = f"Element {index}: {format_number(value)} × {format_number(weight)} = {format_number(product)}."
    return (
        f'<div class="ed-numbers">{element}{_near(explained, index)}{sum_line}'
        f'<p class="ed-status" aria-live="polite">{html.escape(status)}</p></div>'
    )


def _near(explained: FlattenExplained, index: int) -> str:
    """The strip's entries either side of the inspected one, in their colours."""
    lo, hi = max(0, index - NEIGHBOURS), min(explained.layout.count, index + NEIGHBOURS + 1)
    cells = "".join(
        f'<span class="ed-cell{" ed-current" if i == index else ""}" data-index="{i}" '
        f'style="background:{explained.value_shade.hex(float(explained.strip[i]))}"></span>'
        for i in range(lo, hi)
    )
    return f'<p class="ed-near" aria-hidden="true">elements {lo}–{hi - 1} of the vector: {cells}</p>'


def _number(value: float, css: str, shown=format_number) -> str:
    return f'<span class="{css}" data-value="{value!r}">{shown(value)}</span>'


def _flatten_backward_numbers(explained: FlattenExplained, index: int | None) -> str:
    """p − y at the score, then for the inspected element: its weight's gradient and the gradient passed back."""
    flowing, step = explained.backward, explained.step
    upstream = _chip(
        flowing.upstream, explained.weight_shade.hex(flowing.upstream), "ed-upstream", "p − y", gradient_text
    )
    arriving = (
        f"p − y = {format_number(flowing.probability, 4)} − {format_number(flowing.target, 0)} = "
        if np.isfinite(flowing.probability)
        else ""
    )
    sum_line = (
        f'<p class="ed-sum">At the score of “{html.escape(explained.class_name)}” the gradient arrives: {arriving}'
        f"{upstream}. The bias's gradient is the same number: ∂L/∂b = p − y.</p>"
    )
    if index is None:
        hint = "Point at a pixel of a map or at the strip to see one element's gradients; tap pins it."
        return f'<div class="ed-numbers">{sum_line}<p class="ed-status" aria-live="polite">{hint}</p></div>'
    row, col, channel = flatten_position(explained.layout.shape, index)
    value, weight = float(step.inputs[index]), float(step.weights[index])
    weight_gradient, share = float(flowing.kernel_gradient[index]), float(flowing.shares[index])
    passed = float(flowing.input_gradient[index])
    where = f"{explained.source}, channel {channel + 1}, row {row}, column {col}"
    element = (
        f'<p class="ed-element" data-index="{index}">Element {index}: its weight\'s gradient is value '
        f"{_number(value, 'ed-input')} × {gradient_text(flowing.upstream)} = "
        + _chip(
            weight_gradient, explained.weight_shade.hex(weight_gradient), "ed-weight-gradient", "∂L/∂w", gradient_text
        )
        + f". Back to the element: weight {_number(weight, 'ed-weight')} × {gradient_text(flowing.upstream)} = "
        f"{_number(share, 'ed-share', gradient_text)} from this class; with the other {flowing.classes - 1} "
        "classes' shares, ∂L/∂(element) = "
        + _chip(passed, explained.value_shade.hex(passed), "ed-passed", "∂L/∂element", gradient_text)
        + f", which un-flattening puts back at {html.escape(where)}.</p>"
    )
    status = f"Element {index}: ∂L/∂w = {gradient_text(weight_gradient)}; gradient passed back {gradient_text(passed)}."
    return (
        f'<div class="ed-numbers">{element}{_near(explained, index)}{sum_line}'
        f'<p class="ed-status" aria-live="polite">{html.escape(status)}</p></div>'
    )


# -- softmax ----------------------------------------------------------------------------------------------------


SOFTMAX_X = {"logit": 0.6, "exp": 2.1, "sum": 3.15, "probability": 3.95, "percent": 4.95}
SOFTMAX_WIDTH = 5.6
CIRCLE_SHARE = 0.9  # of the row pitch
CHARACTER_WIDTH = 0.62  # of the font size, for digits and signs in the sans-serif font
CIRCLE_TEXT_SHARE = 0.9  # of a circle's diameter its number may take


def row_pitch(classes: int) -> int:
    """Pixels per class row: larger for a few classes, never too small to tap."""
    return int(min(46, max(30, 420 // max(classes, 1))))


def circle_font(texts: list[str], diameter: float) -> int:
    """The largest font size (px) at which every text fits inside a circle of `diameter` px."""
    longest = max((len(text) for text in texts), default=1)
    return int(max(6, min(0.42 * diameter, CIRCLE_TEXT_SHARE * diameter / (CHARACTER_WIDTH * longest))))


def exp_text(value: float) -> str:
    """e^z as people read it: small values keep their digits ("1.4e−04", not "0.000")."""
    return format_number(value) if value >= 0.01 or value == 0 else f"{value:.1e}".replace("-", "−")


def circle_text(logit: float) -> str:
    """A logit short enough for its circle: two decimals, one from ±10 on (a circle's chord is its diameter)."""
    return format_number(logit, 2 if abs(logit) < 10 else 1)


def _oranges(values: np.ndarray, low: float, high: float) -> list[str]:
    share = (values - low) / (high - low) if high > low else np.full(len(values), 0.5)
    return [ORANGES[round(float(s) * (len(ORANGES) - 1))] for s in share]


@dataclass(frozen=True)
class SoftmaxExplained:
    layer: str
    names: list[str]
    terms: SoftmaxTerms
    pitch: int
    gradient: OutputGradient | None = None
    """Backward mode: the loss and p − y, which the logit circles then show (`explain_softmax_backward`)."""

    @property
    def count(self) -> int:
        return len(self.names)

    def row_at(self, y: float | None) -> int | None:
        if y is None or not -self.count <= y <= 0:
            return None
        return min(self.count - 1, int(-y))


def explain_softmax(trace: Trace) -> SoftmaxExplained:
    network = trace.network
    names = class_names(network)
    return SoftmaxExplained(network.infos[-1].name, names, softmax_terms(trace.logits), row_pitch(len(names)))


def explain_softmax_backward(trace: Trace, backward: Backward) -> SoftmaxExplained:
    """Softmax with the cross-entropy loss, backwards: each score receives p − y."""
    return replace(explain_softmax(trace), gradient=output_gradient(backward))


def _gradient_colors(values: np.ndarray) -> list[str]:
    return list(Shade("gradient", _half_range(values)).hexes(values))


def softmax_elements(explained: SoftmaxExplained) -> hv.Overlay:
    """Logit and probability circles (one Points), arrows (one Segments), numbers (two Labels). Backward, the
    logit circles hold p − y in the gradient's colours and the texts write it out."""
    terms, count, gradient = explained.terms, explained.count, explained.gradient
    ys = -(np.arange(count) + 0.5)
    low, high = float(terms.logits.min()), float(terms.logits.max())
    logit_colors = _oranges(terms.logits, low, high) if gradient is None else _gradient_colors(gradient.gradient)
    probability_colors = _oranges(terms.probabilities, 0.0, 1.0)
    xs = np.r_[np.full(count, SOFTMAX_X["logit"]), np.full(count, SOFTMAX_X["probability"])]
    diameter = CIRCLE_SHARE * explained.pitch
    circles = hv.Points(
        {"x": xs, "y": np.r_[ys, ys], "color": logit_colors + probability_colors}, ["x", "y"], ["color"]
    ).opts(color="color", size=diameter, line_color="#c08a5b", line_width=1)
    inner = [circle_text(float(z)) for z in (terms.logits if gradient is None else gradient.gradient)]
    inner_labels = hv.Labels(
        {"x": np.full(count, SOFTMAX_X["logit"]), "y": ys, "text": inner, "ink": [_ink(c) for c in logit_colors]},
        ["x", "y"], ["text", "ink"],
    ).opts(text_color="ink", text_font_size=f"{circle_font(inner, diameter)}px", text_font_style="bold")  # fmt: skip
    if gradient is None:
        outer = [exp_text(float(e)) for e in terms.exps] + [f"{100 * p:.1f} %" for p in terms.probabilities]
    else:  # as short as the forward texts, so they fit a phone's row too; the numbers below give four digits
        outer = [
            f"{format_number(float(p))} − {int(y)}" for p, y in zip(terms.probabilities, gradient.target, strict=True)
        ]
        outer += [f"y = {int(y)}" for y in gradient.target]
    outer_labels = hv.Labels(
        {"x": np.r_[np.full(count, SOFTMAX_X["exp"]), np.full(count, SOFTMAX_X["percent"])], "y": np.r_[ys, ys],
         "text": outer},
        ["x", "y"], ["text"],
    ).opts(text_color="#333333", text_font_size="12px")  # fmt: skip
    gap = 0.55 if gradient is None else 0.8  # keeps the arrows clear of the numbers at their ends ("0.901 − 1")
    segments = [(SOFTMAX_X["logit"] + 0.3, y, SOFTMAX_X["exp"] - gap, y) for y in ys]
    segments += [(SOFTMAX_X["exp"] + gap, y, SOFTMAX_X["probability"] - 0.3, y) for y in ys]
    if gradient is None:
        segments.append((SOFTMAX_X["sum"], -0.2, SOFTMAX_X["sum"], -count + 0.2))  # the ÷ Σ bar every share crosses
    arrows = hv.Segments(segments, ["x0", "y0", "x1", "y1"]).opts(color="#c9b8a8", line_width=1.2)
    return circles * arrows * inner_labels * outer_labels


def softmax_marks(explained: SoftmaxExplained | None, selected: int, hovered: int | None) -> hv.Rectangles:
    """A frame around the selected class's row (and the pointed-at one)."""
    if explained is None:
        return hv.Rectangles([], vdims=[])
    rows = [selected] + ([hovered] if hovered is not None and hovered != selected else [])
    return hv.Rectangles([(0.05, -r - 0.97, SOFTMAX_WIDTH - 0.05, -r - 0.03) for r in rows], vdims=[])


def softmax_captions(explained: SoftmaxExplained) -> str:
    bounds = [0, 1.35, 2.75, 3.5, SOFTMAX_WIDTH]
    columns = " ".join(f"{(b - a) / SOFTMAX_WIDTH:.4f}fr" for a, b in itertools.pairwise(bounds))
    total = format_number(explained.terms.total, 3)
    parts = [("logit z", "class score"), ("e^z", "always positive"), ("÷ Σ", f"Σ e^z = {total}"),
             ("probability", "e^z ÷ Σ")]  # fmt: skip
    if explained.gradient is not None:
        parts = [("∂L/∂z = p − y", "the gradient at each score"), ("p − y", "written out"), ("", ""),
                 ("probability p, target y", "y = 1 for the true class")]  # fmt: skip
    spans = "".join(
        f'<span class="ed-caption"><b>{html.escape(title)}</b><small>{html.escape(note)}</small></span>'
        for title, note in parts
    )
    return f'<div class="ed-captions" style="grid-template-columns:{columns}">{spans}</div>'


def softmax_numbers(explained: SoftmaxExplained, index: int) -> str:
    if explained.gradient is not None:
        return _softmax_backward_numbers(explained, index)
    terms = explained.terms
    name = explained.names[index]
    logit, exp, probability = float(terms.logits[index]), float(terms.exps[index]), float(terms.probabilities[index])
    return (
        f'<div class="ed-numbers" data-index="{index}"><p class="ed-element">{html.escape(name)}: '
        f'e<sup>{format_number(logit)}</sup> = <span class="ed-exp" data-value="{exp!r}">{format_number(exp)}</span>'
        f' ÷ Σ <span class="ed-total" data-value="{terms.total!r}">{format_number(terms.total)}</span> = '
        f'<span class="ed-probability" data-value="{probability!r}">{format_number(probability)}</span> '
        f"({100 * probability:.1f} %)</p>"
        '<p class="ed-status" aria-live="polite">Click, tap or press Enter on a class to open its softmax formula.'
        "</p></div>"
    )


def _softmax_backward_numbers(explained: SoftmaxExplained, index: int) -> str:
    """One class's p − y, and the loss it comes from."""
    gradient = explained.gradient
    name, true_name = explained.names[index], explained.names[gradient.true_class]
    probability, target = float(gradient.probabilities[index]), int(gradient.target[index])
    slope = float(gradient.gradient[index])
    effect = (
        "raising this score would raise the loss, so a step lowers it"
        if slope > 0
        else "raising this score would lower the loss, so a step raises it"
        if slope < 0
        else "this score does not change the loss"
    )
    true_probability = float(gradient.probabilities[gradient.true_class])
    return (
        f'<div class="ed-numbers" data-index="{index}"><p class="ed-element">{html.escape(name)}: '
        f"∂L/∂z = p − y = {format_number(probability, 4)} − {target} = "
        f"{_number(slope, 'ed-gradient', gradient_text)}: {effect}.</p>"
        f'<p class="ed-sum">The loss measures the true class, “{html.escape(true_name)}”: L = −ln p = '
        f"−ln {format_number(true_probability)} = {_number(gradient.loss, 'ed-loss')}.</p>"
        '<p class="ed-status" aria-live="polite">Click, tap or press Enter on a class to open its formula.</p></div>'
    )


def softmax_legends(explained: SoftmaxExplained) -> str:
    logits = explained.terms.logits
    if explained.gradient is not None:
        extent = _half_range(explained.gradient.gradient)
        return (
            '<div class="ed-legends">'
            + legend_html("gradient at each score, p − y", GRADIENT, -extent, extent)
            + legend_html("probabilities", ORANGES, 0.0, 1.0, None)
            + "</div>"
        )
    return (
        '<div class="ed-legends">'
        + legend_html("logits (lowest to highest)", ORANGES, float(logits.min()), float(logits.max()), None)
        + legend_html("probabilities", ORANGES, 0.0, 1.0, None)
        + "</div>"
    )
