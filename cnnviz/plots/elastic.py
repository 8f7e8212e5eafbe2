"""The elastic explanation views drawn: the engine's numbers as HoloViews elements (no Panel import).

The convolution view (`ConvLayout`, `explain_conv`, `conv_picture`, `conv_mark_boxes`, …) shows how one neuron's map
is made from the previous layer: every input channel, its kernel, the intermediate result it gives, ⊕ with the
bias, and the output, between the other layers of the network drawn small and faded. All maps are painted into
ONE `hv.RGB` (HoloViews costs its time per element, not per pixel), with one `hv.Segments`, one `hv.Labels` and
one `hv.Rectangles` over it; the marker that follows the window is one more `hv.Rectangles`. Every size and
name comes from the network.

The flatten and softmax elastic views are drawn by `plots/elastic_dense.py`.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, replace

import holoviews as hv
import numpy as np

from cnnviz.colors import MAP_KINDS
from cnnviz.engine import Network, Trace
from cnnviz.engine.explain import conv_channel_results
from cnnviz.engine.explain_backward import conv_neuron_gradients
from cnnviz.engine.gradients import Backward
from cnnviz.engine.network import INPUT_NAME
from cnnviz.plots.formula import PADDING_COLOR, RGB_CHANNEL_NAMES, Shade, _half_range, _hex_rgb, format_number
from cnnviz.plots.overview import number_text


def _channels_first(maps: np.ndarray) -> np.ndarray:
    return np.moveaxis(np.asarray(maps), -1, 0)


# -- the convolution elastic view, drawn with HoloViews ------------------------------------------------------
# Plot coordinates: a VIEW_WIDTH × VIEW_HEIGHT box, x to the right from 0, y from 0 (top) down to −VIEW_HEIGHT.
# Everything is fitted into this fixed box, whatever the layer, so the one plot keeps its shape between layers.
VIEW_WIDTH, VIEW_HEIGHT = 20.0, 11.0
PIXELS_PER_UNIT = 48
"""Resolution of the composited picture; a 64-pixel map drawn one unit tall is sampled at 48 pixels."""
TITLE_BAND = 1.35  # column titles above the maps
LEGEND_BAND = 1.75  # colour legends below them
CONTEXT_ALPHA = 0.3  # how strongly the other layers show (they are context, not the subject)
PLUS_SIZE = 0.7
MAX_CHANNEL_TILE = 2.0
MAX_OUTPUT_TILE = 5.0
EDGE_COLOR = "#9aa5b1"
MAP_KIND_NAMES = ("input", *MAP_KINDS)


@dataclass(frozen=True)
class ContextColumn:
    """Another layer of the network, compressed and faded beside the explained one."""

    name: str
    x: float
    size: float
    tops: tuple[float, ...]  # y of each channel thumbnail's top edge


@dataclass(frozen=True)
class ConvLayout:
    """Where every piece of a conv layer's elastic view sits, read off the network (never Tiny VGG)."""

    layer: str
    source: str
    input_size: tuple[int, int]
    output_size: tuple[int, int]
    window: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[tuple[int, int], tuple[int, int]]
    tile: float  # one input channel / intermediate result, square
    tops: tuple[float, ...]  # y of each channel row's top edge (negative: below the top)
    x_input: float
    x_kernel: float
    kernel_size: float
    x_intermediate: float
    x_plus: float
    x_output: float
    output_tile: float
    context: tuple[ContextColumn, ...]

    @classmethod
    def of(cls, network: Network, layer: str) -> ConvLayout:
        conv = network.layer(layer)
        names = [info.name for info in network.infos]
        source = network.infos[names.index(layer) - 1]
        target = network.info(layer)
        channels = source.shape[2]
        top, bottom = -TITLE_BAND, -(VIEW_HEIGHT - LEGEND_BAND)
        band = top - bottom
        tile = min(MAX_CHANNEL_TILE, band / (channels + 0.25 * (channels - 1)))
        gap = min(0.6, (band - channels * tile) / max(channels - 1, 1))
        start = top - (band - channels * tile - (channels - 1) * gap) / 2
        tops = tuple(start - i * (tile + gap) for i in range(channels))
        maps = [info.name for info in network.infos if info.kind in MAP_KIND_NAMES]
        left, right = maps[: maps.index(source.name)], maps[maps.index(layer) + 1 :]
        context, focus_left, focus_right = _context(network, left, right, top, bottom)
        kernel = min(1.2, 0.6 * tile)
        output = min(MAX_OUTPUT_TILE, band, (focus_right - focus_left) - 2 * tile - kernel - PLUS_SIZE - 4.0)
        widths = [tile, kernel, tile, PLUS_SIZE, output]
        gap_x = min(2.6, (focus_right - focus_left - sum(widths)) / (len(widths) - 1))
        x = focus_left + (focus_right - focus_left - sum(widths) - gap_x * (len(widths) - 1)) / 2
        edges = []
        for width in widths:
            edges.append(x)
            x += width + gap_x
        input_size = tuple(source.shape[:2])
        return cls(
            layer, source.name, input_size, tuple(target.shape[:2]), tuple(conv.window), tuple(conv.stride),
            conv.pad_amounts(*input_size), tile, tops, edges[0], edges[1], kernel, edges[2], edges[3], edges[4],
            output, context,
        )  # fmt: skip

    @property
    def channels(self) -> int:
        return len(self.tops)

    @property
    def middle(self) -> float:
        return -(TITLE_BAND + (VIEW_HEIGHT - LEGEND_BAND)) / 2

    # boxes are (x0, y0, x1, y1) with y0 < y1
    def input_box(self, channel: int) -> tuple[float, float, float, float]:
        return self.x_input, self.tops[channel] - self.tile, self.x_input + self.tile, self.tops[channel]

    def kernel_box(self, channel: int) -> tuple[float, float, float, float]:
        y = self.tops[channel] - (self.tile - self.kernel_size) / 2
        return self.x_kernel, y - self.kernel_size, self.x_kernel + self.kernel_size, y

    def intermediate_box(self, channel: int) -> tuple[float, float, float, float]:
        x = self.x_intermediate
        return x, self.tops[channel] - self.tile, x + self.tile, self.tops[channel]

    def output_box(self) -> tuple[float, float, float, float]:
        half = self.output_tile / 2
        return self.x_output, self.middle - half, self.x_output + self.output_tile, self.middle + half

    def plus_box(self) -> tuple[float, float, float, float]:
        half = PLUS_SIZE / 2
        return self.x_plus, self.middle - half, self.x_plus + PLUS_SIZE, self.middle + half

    def window_box(self, channel: int, row: int, col: int) -> tuple[float, float, float, float]:
        """The input window of output (row, col) on an input channel (it may reach over the padding)."""
        (pad_top, _), (pad_left, _) = self.padding
        top, left = row * self.stride[0] - pad_top, col * self.stride[1] - pad_left
        return cell_box(self.input_box(channel), self.input_size, top, left, *self.window)

    def clamp(self, row: int, col: int) -> tuple[int, int]:
        rows, cols = self.output_size
        return min(max(int(row), 0), rows - 1), min(max(int(col), 0), cols - 1)

    def part_at(self, x: float | None, y: float | None) -> tuple[str, int, int, int] | None:
        """(part, channel, row, col) under plot point (x, y): the output cell it explains, or None off the maps.

        Over an input channel, the output whose window centres on the pointed pixel; over an intermediate result
        or the output, the cell under the pointer.
        """
        if x is None or y is None:
            return None
        for channel in range(self.channels):
            if _inside(self.intermediate_box(channel), x, y):
                return ("intermediate", channel, *self._cell(self.intermediate_box(channel), self.output_size, x, y))
            if _inside(self.input_box(channel), x, y):
                in_row, in_col = self._cell(self.input_box(channel), self.input_size, x, y)
                (pad_top, _), (pad_left, _) = self.padding
                row = round((in_row + pad_top - (self.window[0] - 1) / 2) / self.stride[0])
                col = round((in_col + pad_left - (self.window[1] - 1) / 2) / self.stride[1])
                return ("input", channel, *self.clamp(row, col))
            if _inside(self.kernel_box(channel), x, y):
                return ("kernel", channel, -1, -1)
        if _inside(self.output_box(), x, y):
            return ("output", -1, *self._cell(self.output_box(), self.output_size, x, y))
        return None

    def _cell(self, box: tuple[float, ...], size: tuple[int, int], x: float, y: float) -> tuple[int, int]:
        x0, _, x1, y1 = box
        row = math.floor((y1 - y) / (x1 - x0) * size[0])
        col = math.floor((x - x0) / (x1 - x0) * size[1])
        return min(max(row, 0), size[0] - 1), min(max(col, 0), size[1] - 1)


def _inside(box: tuple[float, ...], x: float, y: float) -> bool:
    return box[0] <= x <= box[2] and box[1] <= y <= box[3]


def cell_box(box: tuple[float, ...], size: tuple[int, int], row: float, col: float, rows=1, cols=1) -> tuple:
    """A block of cells of a map of `size` cells drawn (square cells) in `box`."""
    x0, _, x1, y1 = box
    cell = (x1 - x0) / max(size)
    return x0 + col * cell, y1 - (row + rows) * cell, x0 + (col + cols) * cell, y1 - row * cell


def _context(network: Network, left: list[str], right: list[str], top: float, bottom: float):
    """The layers before and after the explained pair, as thin faded columns at the picture's edges."""
    columns = []
    pitch = min(0.55, 3.2 / max(len(left), len(right), 1))
    size = 0.65 * pitch
    for names, edge, direction in ((left, 0.25, 1), (right, VIEW_WIDTH - 0.25 - size, -1)):
        ordered = names if direction == 1 else names[::-1]
        for index, name in enumerate(ordered):
            count = network.info(name).shape[2]
            thumb = min(size, (top - bottom) / (count * 1.15))
            used = count * thumb * 1.15
            start = top - (top - bottom - used) / 2
            tops = tuple(start - i * thumb * 1.15 for i in range(count))
            x = edge + direction * index * pitch + (size - thumb) / 2
            columns.append(ContextColumn(name, x, thumb, tops))
    focus_left = 0.25 + len(left) * pitch + (0.4 if left else 0.3)
    focus_right = VIEW_WIDTH - 0.25 - len(right) * pitch - (0.4 if right else 0.3)
    return tuple(columns), focus_left, focus_right


@dataclass(frozen=True)
class ConvExplained:
    """One opened conv elastic view: the engine's numbers and the colours they are drawn in."""

    layout: ConvLayout
    neuron: int
    source_is_image: bool
    inputs: np.ndarray  # (C, H, W): what the layer received
    kernel: np.ndarray  # (C, kr, kc): the neuron's kernel, one slice per input channel
    bias: float
    results: np.ndarray  # (C, rows, cols): each input channel convolved with its kernel (intermediate results)
    output: np.ndarray  # (rows, cols): the neuron's map, as traced
    shades: dict[str, Shade]  # input, weights, intermediate, output
    backward: bool = False
    """Backward mode: `kernel`, `bias`, `results` and `output` hold the gradients (`explain_conv_backward`)."""
    window_sums: np.ndarray | None = None  # backward: (C, rows, cols) Σ input window × arriving gradient
    context_maps: dict[str, tuple[np.ndarray, Shade]] | None = None
    """Backward: the other layers' gradients and their colours (forward, the trace's values are drawn)."""


def explain_conv(trace: Trace, layer: str, neuron: int, half_ranges: dict[str, float]) -> ConvExplained:
    """Everything the conv elastic view of `neuron` shows, asked of the engine once per opened neuron."""
    network = trace.network
    layout = ConvLayout.of(network, layer)
    conv = network.layer(layer)
    kernel = _channels_first(conv.kernel[:, :, :, neuron])
    bias = float(conv.bias[neuron])
    results = conv_channel_results(trace, layer, neuron)
    source_is_image = layout.source == INPUT_NAME
    return ConvExplained(
        layout, neuron, source_is_image, _channels_first(trace.input_of(layer)), kernel, bias, results,
        np.asarray(trace[layer][..., neuron], np.float32),
        {
            "input": Shade("greys") if source_is_image else Shade("diverging", half_ranges[layout.source]),
            "weights": Shade("weights", _half_range(np.append(kernel, bias))),
            "intermediate": Shade("diverging", _half_range(results)),
            "output": Shade("diverging", half_ranges[layer]),
        },
    )  # fmt: skip


def explain_conv_backward(
    trace: Trace, backward: Backward, layer: str, neuron: int, half_ranges: dict[str, float]
) -> ConvExplained:
    """The same view for the backward pass, drawn in the same places, the flow running right to left: the
    gradient arriving at the neuron's map (where the output was), its kernel's gradients (where the kernels
    were) and the share of the gradient it passes back to each input channel (where the intermediate results
    were). The inputs stay: the kernel's gradient is made of them."""
    forward = explain_conv(trace, layer, neuron, half_ranges)
    gradients = conv_neuron_gradients(backward, layer, neuron)
    return replace(
        forward, kernel=gradients.kernel_gradients, bias=gradients.bias_gradient, results=gradients.passed_back,
        output=gradients.upstream, backward=True, window_sums=gradients.window_sums,
        context_maps={
            column.name: (
                backward.gradients[column.name], Shade("gradient", _half_range(backward.gradients[column.name]))
            )
            for column in forward.layout.context
        },
        shades={
            "input": forward.shades["input"],
            # the kernels' own range: the bias's gradient (a sum over the whole map) is often far larger and would
            # wash them out; its box saturates and its number is written under it
            "weights": Shade("gradient", _half_range(gradients.kernel_gradients)),
            "intermediate": Shade("gradient", _half_range(gradients.passed_back)),
            "output": Shade("gradient", _half_range(gradients.upstream)),
        },
    )  # fmt: skip


def _pixels(value: float) -> int:
    return round(value * PIXELS_PER_UNIT)


def _paint(canvas: np.ndarray, box: tuple[float, ...], rgb: np.ndarray) -> None:
    """Paint a map's colours (H, W, 3) into `box` of the canvas, nearest cell per pixel."""
    x0, y0, x1, y1 = box
    left, right = max(_pixels(x0), 0), min(_pixels(x1), canvas.shape[1])
    top, bottom = max(_pixels(-y1), 0), min(_pixels(-y0), canvas.shape[0])
    if right <= left or bottom <= top:
        return
    rows = (np.arange(top, bottom) + 0.5 - (-y1) * PIXELS_PER_UNIT) / ((y1 - y0) * PIXELS_PER_UNIT) * rgb.shape[0]
    cols = (np.arange(left, right) + 0.5 - x0 * PIXELS_PER_UNIT) / ((x1 - x0) * PIXELS_PER_UNIT) * rgb.shape[1]
    rows = np.clip(rows.astype(int), 0, rgb.shape[0] - 1)
    cols = np.clip(cols.astype(int), 0, rgb.shape[1] - 1)
    canvas[top:bottom, left:right] = rgb[np.ix_(rows, cols)]


def _faded(rgb: np.ndarray, alpha: float) -> np.ndarray:
    """Colours blended over white with `alpha`: a whole layer at once, not a map at a time (a view's context has
    over a hundred maps)."""
    return np.rint(alpha * rgb + (1 - alpha) * 255.0).astype(np.uint8)


def _plus_sign(size: int) -> np.ndarray:
    """A ⊕ as an RGB stamp: a dark ring with a cross, on white."""
    centre = (size - 1) / 2
    y, x = np.mgrid[0:size, 0:size]
    distance = np.hypot(x - centre, y - centre)
    thickness = max(1.0, size / 14)
    ring = np.abs(distance - (size / 2 - thickness)) <= thickness / 2 + 0.5
    cross = ((np.abs(x - centre) <= thickness / 2) | (np.abs(y - centre) <= thickness / 2)) & (distance < size / 2 - 1)
    stamp = np.full((size, size, 3), 255, np.uint8)
    stamp[ring | cross] = (60, 72, 88)
    return stamp


LEGEND_WIDTH = 2.6
RGB_DIMENSIONS = [hv.Dimension(name, range=(0, 255)) for name in "RGB"]
"""Colour dimensions with their range given, so HoloViews never scans the picture for it on a redraw."""


def legend_boxes(layout: ConvLayout) -> dict[str, tuple[float, float, float, float]]:
    """Colour bars under the maps: input, kernel weights, intermediate results, output (in that order)."""
    names = ["input", "weights", "intermediate", "output"]
    left = layout.x_input
    right = layout.x_output + layout.output_tile
    gap = (right - left - len(names) * LEGEND_WIDTH) / (len(names) - 1)
    y1 = -(VIEW_HEIGHT - LEGEND_BAND) - 0.55
    return {
        name: (left + i * (LEGEND_WIDTH + gap), y1 - 0.22, left + i * (LEGEND_WIDTH + gap) + LEGEND_WIDTH, y1)
        for i, name in enumerate(names)
    }


def conv_picture(explained: ConvExplained, trace: Trace, half_ranges: dict[str, float]) -> hv.RGB:
    """Every map of the view in ONE picture: the faded context, edges, inputs, kernels, results, ⊕, output and the
    legends' colour bars."""
    layout, shades = explained.layout, explained.shades
    canvas = np.full((_pixels(VIEW_HEIGHT), _pixels(VIEW_WIDTH), 3), 255, np.uint8)
    for column in layout.context:
        if explained.context_maps is not None:
            values, shade = explained.context_maps[column.name]
        else:
            values = trace[column.name]
            shade = Shade("greys") if column.name == INPUT_NAME else Shade("diverging", half_ranges[column.name])
        maps = _faded(shade.rgb(_channels_first(values)), CONTEXT_ALPHA)
        for channel, top in enumerate(column.tops):
            _paint(canvas, (column.x, top - column.size, column.x + column.size, top), maps[channel])
    _draw_lines(canvas, conv_edges(layout), EDGE_COLOR)  # first: the maps are painted over the line ends
    padding = np.array([[_hex_rgb([PADDING_COLOR])[0]]], np.uint8)
    (pad_top, pad_bottom), (pad_left, pad_right) = layout.padding
    for channel in range(layout.channels):
        box = layout.input_box(channel)
        if pad_top or pad_bottom or pad_left or pad_right:
            rows = layout.input_size[0] + pad_top + pad_bottom
            cols = layout.input_size[1] + pad_left + pad_right
            _paint(canvas, cell_box(box, layout.input_size, -pad_top, -pad_left, rows, cols), padding)
        _paint(canvas, box, shades["input"].rgb(explained.inputs[channel]))
        _paint(canvas, layout.kernel_box(channel), shades["weights"].rgb(explained.kernel[channel]))
        _paint(canvas, layout.intermediate_box(channel), shades["intermediate"].rgb(explained.results[channel]))
    _paint(canvas, layout.output_box(), shades["output"].rgb(explained.output))
    plus = layout.plus_box()
    _paint(canvas, plus, _plus_sign(_pixels(PLUS_SIZE)))
    bias_box = (plus[0] + 0.15, plus[1] - 0.75, plus[2] - 0.15, plus[1] - 0.35)
    _paint(canvas, bias_box, shades["weights"].rgb(np.array([[explained.bias]])))
    for name, box in legend_boxes(layout).items():
        shade = shades[name]
        ramp = np.linspace(0, 1, 128) if shade.palette == "greys" else np.linspace(-1, 1, 128) * shade.half_range
        _paint(canvas, box, shade.rgb(ramp[np.newaxis, :]))
    return hv.RGB(canvas, bounds=(0, -VIEW_HEIGHT, VIEW_WIDTH, 0), vdims=RGB_DIMENSIONS)


def _centre_right(box: tuple[float, ...]) -> tuple[float, float]:
    return box[2], (box[1] + box[3]) / 2


def _centre_left(box: tuple[float, ...]) -> tuple[float, float]:
    return box[0], (box[1] + box[3]) / 2


def conv_edges(layout: ConvLayout) -> list[tuple[float, float, float, float]]:
    """Lines from each input channel through its kernel to its intermediate result, on to ⊕ and the output."""
    segments = []
    plus = _centre_left(layout.plus_box())
    for channel in range(layout.channels):
        segments.append((*_centre_right(layout.input_box(channel)), *_centre_left(layout.kernel_box(channel))))
        segments.append((*_centre_right(layout.kernel_box(channel)), *_centre_left(layout.intermediate_box(channel))))
        segments.append((*_centre_right(layout.intermediate_box(channel)), *plus))
    segments.append((*_centre_right(layout.plus_box()), *_centre_left(layout.output_box())))
    return segments


def _draw_lines(canvas: np.ndarray, segments: list[tuple[float, ...]], color: str) -> None:
    """One-pixel lines in the picture itself (a separate Segments element would cost a redraw per tick)."""
    rgb = _hex_rgb([color])[0]
    for x0, y0, x1, y1 in segments:
        steps = max(2, 2 * round(math.hypot(x1 - x0, y1 - y0) * PIXELS_PER_UNIT))
        t = np.linspace(0, 1, steps)
        cols = np.clip(np.rint((x0 + t * (x1 - x0)) * PIXELS_PER_UNIT).astype(int), 0, canvas.shape[1] - 1)
        rows = np.clip(np.rint(-(y0 + t * (y1 - y0)) * PIXELS_PER_UNIT).astype(int), 0, canvas.shape[0] - 1)
        canvas[rows, cols] = rgb


def source_title(source: str) -> str:
    return "input image" if source == INPUT_NAME else source


def conv_labels(explained: ConvExplained) -> hv.Labels:
    """Column titles with shapes, the bias under ⊕, and each colour legend's name and range."""
    layout = explained.layout
    (rows, cols), (out_rows, out_cols) = layout.input_size, layout.output_size
    kr, kc = layout.window
    title_y = -TITLE_BAND / 2
    centre = lambda x, width: x + width / 2  # noqa: E731
    neuron = f"{layout.layer}, neuron {explained.neuron + 1}"
    titles = (
        [f"kernel gradients\n{kr}×{kc} each", f"passed back\n{rows}×{cols} each", "Σ arriving\n= bias gradient",
         f"gradient arriving at\n{neuron}", f"bias gradient {number_text(explained.bias)}"]
        if explained.backward
        else [f"kernels\n{kr}×{kc} each", f"intermediate\nresults {out_rows}×{out_cols}", "sum\n+ bias",
              f"{neuron}\n{out_rows}×{out_cols}", f"bias {number_text(explained.bias)}"]
    )  # fmt: skip
    texts = [
        (centre(layout.x_input, layout.tile), title_y,
         f"{source_title(layout.source)}\n{rows}×{cols}×{layout.channels}"),
        (centre(layout.x_kernel, layout.kernel_size), title_y, titles[0]),
        (centre(layout.x_intermediate, layout.tile), title_y, titles[1]),
        (centre(layout.x_plus, PLUS_SIZE), title_y, titles[2]),
        (centre(layout.x_output, layout.output_tile), title_y, titles[3]),
        (centre(layout.x_plus, PLUS_SIZE), layout.plus_box()[1] - 1.0, titles[4]),
    ]  # fmt: skip
    names = channel_names_of(layout)
    row_gap = layout.tops[0] - layout.tops[1] - layout.tile if layout.channels > 1 else LEGEND_BAND
    if row_gap >= 0.35:  # room under each input channel for its name
        for channel, name in enumerate(names):
            x0, y0, x1, _ = layout.input_box(channel)
            texts.append(((x0 + x1) / 2, y0 - 0.17, name))
    legend_titles = dict(
        zip(
            ["input", "weights", "intermediate", "output"],
            ["input (pixel values)" if explained.source_is_image else "input activations",
             *(("kernel gradients", "gradient passed back", "gradient arriving") if explained.backward
               else ("kernel weights, bias", "intermediate results", "output activations"))],
            strict=True,
        )
    )  # fmt: skip
    for name, (x0, y0, x1, y1) in legend_boxes(layout).items():
        shade = explained.shades[name]
        low, high = (0.0, 1.0) if shade.palette == "greys" else (-shade.half_range, shade.half_range)
        texts.append(((x0 + x1) / 2, y1 + 0.3, legend_titles[name]))
        texts.append((x0, y0 - 0.3, number_text(low)))
        texts.append((x1, y0 - 0.3, number_text(high)))
    left = [column for column in layout.context if column.x < layout.x_input]
    right = [column for column in layout.context if column.x > layout.x_output]
    context_y = -(VIEW_HEIGHT - LEGEND_BAND) - 0.45
    for columns, text in ((left, "earlier\nlayers"), (right, "later\nlayers")):
        if columns:
            texts.append(((columns[0].x + columns[-1].x + columns[-1].size) / 2, context_y, text))
    return hv.Labels(texts, ["x", "y"], "text")


def intermediate_targets(layout: ConvLayout, channel_names: list[str]) -> hv.Rectangles:
    """The intermediate results as click targets: invisible until hovered, then outlined with a hint."""
    rows = [(*layout.intermediate_box(c), name) for c, name in enumerate(channel_names)]
    return hv.Rectangles(rows, vdims=["hint"])


def channel_names_of(layout: ConvLayout) -> list[str]:
    """How each input channel is called on screen: red/green/blue for a colour image, else numbered from 1."""
    if layout.source == INPUT_NAME and layout.channels == len(RGB_CHANNEL_NAMES):
        return [f"{name} channel" for name in RGB_CHANNEL_NAMES]
    if layout.source == INPUT_NAME and layout.channels == 1:
        return ["the image"]
    return [f"{layout.source}, channel {c + 1}" for c in range(layout.channels)]


def conv_mark_boxes(layout: ConvLayout, row: int, col: int) -> np.ndarray:
    """Where output (row, col) comes from: its window on every input channel, its cell on every result, as
    (x0, y0, x1, y1) rows. Boxes, not an element: the view clones its styled marker with them (every HoloViews
    element built costs a pointer move a few milliseconds)."""
    row, col = layout.clamp(row, col)
    boxes = [layout.window_box(c, row, col) for c in range(layout.channels)]
    boxes += [cell_box(layout.intermediate_box(c), layout.output_size, row, col) for c in range(layout.channels)]
    boxes.append(cell_box(layout.output_box(), layout.output_size, row, col))
    return np.array(boxes, float)


def readout_html(explained: ConvExplained, row: int, col: int, names: list[str]) -> str:
    """The numbers at output (row, col): each channel's intermediate value, the bias, their sum (the engine's)."""
    row, col = explained.layout.clamp(row, col)
    if explained.backward:
        return _backward_readout_html(explained, row, col, names)
    values = explained.results[:, row, col]
    result = float(explained.output[row, col])
    shade = explained.shades["intermediate"]
    terms = " + ".join(
        f'<span class="el-term" data-channel="{c}" data-value="{float(v)!r}" title="{html.escape(names[c])}" '
        f'style="border-color:{shade.hex(float(v))}">{format_number(float(v))}</span>'
        for c, v in enumerate(values)
    )
    bias = f'<span class="el-term el-bias" data-value="{explained.bias!r}">{format_number(explained.bias)}</span>'
    output = explained.shades["output"].hex(result)
    return (
        f'<div class="el-readout" data-position="{row},{col}" aria-live="polite">'
        f"<b>Row {row}, column {col}:</b> {terms} + bias {bias} = "
        f'<span class="el-term el-result" data-value="{result!r}" style="border-color:{output}">'
        f"{format_number(result)}</span></div>"
    )


def _backward_readout_html(explained: ConvExplained, row: int, col: int, names: list[str]) -> str:
    """Where the gradient arriving at output (row, col) goes: back through the kernels into each channel's
    window, and into the kernels' gradients as the window's inputs times it (each channel's sum shown)."""
    arriving = float(explained.output[row, col])
    shade = explained.shades["weights"]
    sums = explained.window_sums[:, row, col]
    terms = ", ".join(
        f'<span class="el-term" data-channel="{c}" data-value="{float(v)!r}" title="{html.escape(names[c])}" '
        f'style="border-color:{shade.hex(float(v))}">{format_number(float(v))}</span>'
        for c, v in enumerate(sums)
    )
    return (
        f'<div class="el-readout" data-position="{row},{col}" aria-live="polite">'
        f"<b>Row {row}, column {col}:</b> the gradient arriving here is "
        f'<span class="el-term el-result" data-value="{arriving!r}" '
        f'style="border-color:{explained.shades["output"].hex(arriving)}">{format_number(arriving)}</span>. '
        "It flows back through each channel's kernel into that channel's window (outlined), and adds the window's "
        f"inputs × {format_number(arriving)} to each kernel's gradient, channel by channel (summed over the "
        f"kernel's cells): {terms}; the bias gradient gains {format_number(arriving)}.</div>"
    )


def conv_backward_summary(explained: ConvExplained, network: Network) -> str:
    """The backward view (`explain_conv_backward`) in one paragraph, with this neuron's numbers."""
    layout = explained.layout
    neurons = network.layer(layout.layer).filters
    return (
        f"Backward mode: the loss's gradient arrives at {layout.layer} neuron {explained.neuron + 1} from the right "
        f"(the map on the right: the loss rises where it is positive). Its kernel's gradient, for each of the "
        f"{layout.channels} input channels, is the sum over every position of the input window times the gradient "
        f"arriving there; its bias's gradient is the sum of the arriving map ({number_text(explained.bias, 3)}). "
        f"Through its kernel it passes a share of the gradient back to each channel of {layout.source}; "
        f"{layout.source} adds up the shares of all {neurons} neurons of {layout.layer}."
    )


def conv_summary(trace: Trace, layer: str, neuron: int) -> str:
    """One paragraph about the layer as it really is: its kernel size, stride and padding, and this neuron."""
    network = trace.network
    conv = network.layer(layer)
    source = trace.names[trace.names.index(layer) - 1]
    channels = trace.input_of(layer).shape[2]
    output = trace[layer][..., neuron]
    row, col = np.unravel_index(int(np.argmax(output)), output.shape)
    kr, kc = conv.window
    sr, sc = conv.stride
    stride = f"{sr}" if sr == sc else f"{sr}×{sc}"
    what = "colour channels of the input image" if source == INPUT_NAME else f"channels of {source}"
    if channels == 1 and source == INPUT_NAME:
        what = "channel of the input image"
    padding = "no padding"
    if conv.padding == "same":  # Keras' rule: the output has ceil(input / stride) rows and columns
        keeps = "keeps the size" if (sr, sc) == (1, 1) else f"leaves the size ÷ {stride}, rounded up"
        padding = f"'same' padding: a border of zeros {keeps}"
    elif conv.padding != "valid":  # explicit amounts, as PyTorch's padding=p gives them
        (top, bottom), (left, right) = conv.padding
        sides = {top, bottom, left, right}
        padding = (
            f"{top} ring{'s' * (top != 1)} of zeros around the input"
            if len(sides) == 1
            else f"zeros padded {top} above, {bottom} below, {left} left and {right} right"
        )
    return (
        f"{layer} neuron {neuron + 1} = sum of {channels} intermediate results + bias "
        f"{number_text(float(conv.bias[neuron]))}; max {number_text(float(output.max()))} at ({row}, {col}), min "
        f"{number_text(float(output.min()))}. Each of the {channels} {what} is convolved with its own {kr}×{kc} "
        f"kernel (stride {stride}, {padding}), giving one intermediate result per channel; the "
        f"{output.shape[0]}×{output.shape[1]} output adds them up cell by cell, then adds the bias."
    )
