"""Data and geometry for the elastic explanation views, as plain JSON-ready dicts (no UI import).

The browser (`views/elastic.js`) draws and animates everything; the server sends each view's numbers once per
(image, layer, neuron). Maps travel as base64 uint8 palette indices like the overview's; the values a learner
can read on hover travel as base64 float32, so every number shown is the engine's own. Geometry is in the
overview's data units, so a view can grow out of the overview and shrink back into it.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

from cnnviz.colors import (
    DIVERGING,
    GREYS,
    ORANGES,
    WEIGHTS,
    diverging_indices,
    grey_indices,
)
from cnnviz.engine import Network, Trace
from cnnviz.engine.explain import (
    conv_channel_results,
    dense_step,
    flatten_position,
    flatten_source_shape,
    softmax_terms,
)
from cnnviz.plots.overview import OUTPUT_KIND, TILE, OverviewLayout, number_text

CONTEXT_WIDTH = 0.3  # a compressed context column
CONTEXT_PITCH = 0.55
FOCUS_PADDING = 0.5  # between the context strips and the focused layers
THUMBNAIL_SIZE = 16  # context maps are downsampled to at most this many pixels a side
MAX_SOURCE_TILE = 2.4
OUTPUT_TILE = 6.0
POOL_GRID_COLUMNS = 2
STRIP_WIDTH = 0.45
PLUS_RADIUS = 0.35
LOGIT_RADIUS = 0.48


def encode(array: np.ndarray) -> str:
    """Base64 of the array's bytes in C order (uint8 stays uint8, everything else becomes float32)."""
    array = np.asarray(array)
    if array.dtype != np.uint8:
        array = array.astype(np.float32)
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def decode(text: str, dtype: type = np.uint8) -> np.ndarray:
    """Inverse of `encode` (flat); the browser does the same with atob and typed arrays."""
    return np.frombuffer(base64.b64decode(text), dtype=dtype)


def _extent(values: np.ndarray) -> float:
    extent = float(np.abs(values).max()) if np.size(values) else 0.0
    return extent if extent > 0 else 1.0


def _channels_first(maps: np.ndarray) -> np.ndarray:
    return np.moveaxis(np.asarray(maps), -1, 0)


def _plus(value: float) -> str:
    """ "+ 0.13" or "− 0.09": a signed term of a written-out sum."""
    return f"{'−' if value < 0 else '+'} {abs(value):.2f}"


# -- context (once per image) --------------------------------------------------------------------------------
def palettes() -> dict[str, list[str]]:
    return {"diverging": DIVERGING, "greys": GREYS, "weights": WEIGHTS, "oranges": ORANGES}


def context_thumbnails(trace: Trace, layout: OverviewLayout, ranges: dict[str, float]) -> dict[str, Any]:
    """Every overview column's maps, downsampled, so faded context keeps its structure; plus the probabilities."""
    thumbnails = {}
    for column in layout.columns:
        if column.kind == OUTPUT_KIND:
            continue
        maps = _channels_first(trace[column.name])
        step = max(1, -(-maps.shape[1] // THUMBNAIL_SIZE))
        small = maps[:, ::step, ::step]
        indices = grey_indices(small) if column.kind == "input" else diverging_indices(small, ranges[column.name])
        thumbnails[column.name] = {"size": list(small.shape[1:]), "data": encode(indices)}
    return {"maps": thumbnails, "probabilities": [float(p) for p in trace.probabilities]}


# -- geometry (once per session) -----------------------------------------------------------------------------
def _rect(x: float, y: float, width: float, height: float) -> dict[str, float]:
    return {"x": round(x, 4), "y": round(y, 4), "w": round(width, 4), "h": round(height, 4)}


def _label(text: str, x: float, note: str, width: float, note_top: float | None = None) -> dict[str, Any]:
    """A column title and its annotation, centred on x, at most `width` wide so neighbours never overlap.

    The annotation sits under the neuron rows unless `note_top` puts it elsewhere (e.g. under a ⊕ node).
    """
    label = {"text": text, "x": round(x, 4), "note": note, "w": round(width, 4)}
    return label if note_top is None else {**label, "note_top": round(note_top, 4)}


def _context_columns(layout: OverviewLayout, first_focus: int, last_focus: int) -> tuple[list[dict], float, float]:
    """Columns left of `first_focus` squeezed to the left edge and right of `last_focus` to the right edge."""
    columns = []
    right_count = len(layout.columns) - 1 - last_focus
    for index, column in enumerate(layout.columns):
        if index < first_focus:
            x = layout.columns[0].x + index * CONTEXT_PITCH
        elif index > last_focus:
            x = layout.width - layout.columns[0].x - (len(layout.columns) - index) * CONTEXT_PITCH
        else:
            columns.append({"x": column.x, "w": column.width, "alpha": 0.0})  # becomes the focus
            continue
        columns.append({"x": round(x, 4), "w": CONTEXT_WIDTH, "alpha": 0.35})
    left = layout.columns[0].x + first_focus * CONTEXT_PITCH + FOCUS_PADDING
    right = layout.width - layout.columns[0].x - right_count * CONTEXT_PITCH - FOCUS_PADDING
    return columns, left, right


def _stack(count: int, top: float, bottom: float, largest: float) -> tuple[float, list[float]]:
    """Tile size and tops of `count` tiles centred in [top, bottom], as large as fits up to `largest`."""
    gap = 0.25
    tile = min(largest, (bottom - top - (count - 1) * gap) / count)
    if tile == largest and count > 1:
        gap = min(0.8, (bottom - top - count * tile) / (count - 1))
    used = count * tile + (count - 1) * gap
    start = top + (bottom - top - used) / 2
    return tile, [start + i * (tile + gap) for i in range(count)]


def _spread(left: float, right: float, widths: list[float], max_gap: float = 4.2) -> tuple[list[float], float]:
    """Left edges of pieces of the given widths spread over [left, right] with equal gaps (at most max_gap)."""
    gap = min(max_gap, (right - left - sum(widths)) / (len(widths) - 1))
    start = left + (right - left - sum(widths) - gap * (len(widths) - 1)) / 2
    edges = []
    for width in widths:
        edges.append(start)
        start += width + gap
    return edges, gap


def _band(layout: OverviewLayout) -> tuple[float, float]:
    """Vertical extent of the neuron rows."""
    tops = [top for column in layout.columns for top in column.tops]
    return min(tops), max(tops) + TILE


def conv_geometry(layout: OverviewLayout, layer: str) -> dict[str, Any]:
    """Inputs, a kernel glyph per input, intermediate results, ⊕ and the big output, between faded context."""
    target = next(i for i, column in enumerate(layout.columns) if column.name == layer)
    source = target - 1
    columns, left, right = _context_columns(layout, source, target)
    top, bottom = _band(layout)
    count = len(layout.columns[source].tops)
    tile, tops = _stack(count, top, bottom, MAX_SOURCE_TILE)
    kernel = round(min(1.4, 0.62 * tile), 4)
    output = min(OUTPUT_TILE, bottom - top - 1.0)
    (x_in, x_kernel, x_mid, x_plus, x_out), gap = _spread(left, right, [tile, kernel, tile, 2 * PLUS_RADIUS, output])
    middle = (top + bottom) / 2
    return {
        "kind": "conv",
        "columns": columns,
        "source": source,
        "target": target,
        "inputs": [_rect(x_in, y, tile, tile) for y in tops],
        "kernels": [_rect(x_kernel, y + (tile - kernel) / 2, kernel, kernel) for y in tops],
        "intermediates": [_rect(x_mid, y, tile, tile) for y in tops],
        "plus": {"x": round(x_plus + PLUS_RADIUS, 4), "y": round(middle, 4), "r": PLUS_RADIUS},
        "output": _rect(x_out, middle - output / 2, output, output),
        "labels": [
            _label("input", x_in + tile / 2, "the previous layer", tile + gap),
            _label("kernels", x_kernel + kernel / 2, "each input channel gets its own kernel", kernel + gap),
            _label("intermediate results", x_mid + tile / 2, "each channel convolved with its kernel", tile + gap),
            _label(
                "sum + bias", x_plus + PLUS_RADIUS, "add all intermediate results, then the bias", 3.0, middle + 1.1
            ),
            _label("output", x_out + output / 2, "the clicked neuron", output),
        ],
    }


def flatten_geometry(layout: OverviewLayout) -> dict[str, Any]:
    """max_pool_2's maps as a grid, the flatten strip, ⊕ and the class score, the rest compressed to the left."""
    target = len(layout.columns) - 1
    source = target - 1
    columns, left, right = _context_columns(layout, source, target)
    top, bottom = _band(layout)
    count = len(layout.columns[source].tops)
    rows = -(-count // POOL_GRID_COLUMNS)
    tile, tops = _stack(rows, top, bottom, MAX_SOURCE_TILE)
    grid_width = POOL_GRID_COLUMNS * tile + (POOL_GRID_COLUMNS - 1) * 0.3
    score = 1.6
    widths = [grid_width, STRIP_WIDTH, 2 * PLUS_RADIUS, score]
    (x_grid, x_strip, x_plus, x_score), gap = _spread(left, right, widths, 5.0)
    middle = (top + bottom) / 2
    maps = [_rect(x_grid + (i % POOL_GRID_COLUMNS) * (tile + 0.3), tops[i // POOL_GRID_COLUMNS], tile, tile)
            for i in range(count)]  # fmt: skip
    return {
        "kind": "flatten",
        "columns": columns,
        "source": source,
        "target": target,
        "inputs": maps,
        "strip": _rect(x_strip, top, STRIP_WIDTH, bottom - top),
        "plus": {"x": round(x_plus + PLUS_RADIUS, 4), "y": round(middle, 4), "r": PLUS_RADIUS},
        "output": _rect(x_score, middle - score / 2, score, score),
        "labels": [
            _label(
                layout.columns[source].name, x_grid + grid_width / 2, "hover a pixel to follow it", grid_width + gap
            ),
            _label("flatten", x_strip + STRIP_WIDTH / 2, "all maps unrolled into one vector", gap),
            _label(
                "× weights, sum + bias",
                x_plus + PLUS_RADIUS,
                "each element times its weight (edge colour)",
                3.0,
                middle + 1.1,
            ),
            _label("class score", x_score + score / 2, "the logit, before softmax", score + 1.5),
        ],
    }


def softmax_geometry(layout: OverviewLayout) -> dict[str, Any]:
    """Logit circles (before normalisation) and probability circles (after), with everything else compressed."""
    target = len(layout.columns) - 1
    columns, left, right = _context_columns(layout, target, target)
    tops = layout.columns[target].tops
    (x_logits, x_probs), gap = _spread(left + 2.0, right - 3.5, [2 * LOGIT_RADIUS, 2 * LOGIT_RADIUS], 9.0)

    def circle(x: float, y: float) -> dict[str, float]:
        return {"x": round(x + LOGIT_RADIUS, 4), "y": round(y + TILE / 2, 4), "r": LOGIT_RADIUS}

    return {
        "kind": "softmax",
        "columns": columns,
        "source": None,
        "target": target,
        "inputs": [],
        "logits": [circle(x_logits, y) for y in tops],
        "probabilities": [circle(x_probs, y) for y in tops],
        "labels": [
            _label("logits", x_logits + LOGIT_RADIUS, "before normalisation", gap),
            _label("probabilities", x_probs + LOGIT_RADIUS, "after normalisation: e^score / Σ e^scores", gap),
        ],
    }


def elastic_geometries(network: Network, layout: OverviewLayout) -> dict[str, dict[str, Any]]:
    """Geometry of every elastic view, by the layer whose selection opens it (sent once, so the browser can
    start the transition the moment a neuron is clicked, before the server has answered)."""
    geometries = {info.name: conv_geometry(layout, info.name) for info in network.infos if info.kind == "conv2d"}
    dense, softmax = network.infos[-2], network.infos[-1]
    geometries[dense.name] = flatten_geometry(layout)
    if softmax.kind == "softmax":
        geometries[softmax.name] = softmax_geometry(layout)
    return geometries


# -- one view (per image, layer and neuron) ------------------------------------------------------------------
def conv_view(trace: Trace, layer: str, neuron: int, ranges: dict[str, float]) -> dict[str, Any]:
    """Everything the conv elastic view draws for `neuron` of `layer`, straight from the engine."""
    network = trace.network
    names = trace.names
    source = names[names.index(layer) - 1]
    conv = network.layer(layer)
    inputs = _channels_first(trace.input_of(layer))
    results = conv_channel_results(trace, layer, neuron)  # (C, rows, cols)
    output = np.asarray(trace[layer][..., neuron], np.float32)
    kernel = _channels_first(conv.kernel[:, :, :, neuron])  # (C, kr, kc)
    bias = float(conv.bias[neuron])
    weight_range = _extent(np.append(conv.kernel[..., neuron], bias))
    result_range = _extent(results)
    source_is_image = network.info(source).kind == "input"
    row, col = np.unravel_index(int(np.argmax(output)), output.shape)
    origin = conv.window_origin(0, 0, trace.input_of(layer).shape)
    step = np.subtract(conv.window_origin(1, 1, trace.input_of(layer).shape), origin)
    return {
        "kind": "conv",
        "layer": layer,
        "neuron": neuron,
        "source": source,
        "source_is_image": source_is_image,
        "input_size": list(inputs.shape[1:]),
        "inputs": encode(grey_indices(inputs) if source_is_image else diverging_indices(inputs, ranges[source])),
        "kernel_size": list(kernel.shape[1:]),
        "window": {"origin": [int(v) for v in origin], "stride": [int(v) for v in step]},  # input window of (r, c)
        "kernels": [float(w) for w in kernel.reshape(-1)],
        "kernel_colors": encode(diverging_indices(kernel, weight_range)),
        "bias": bias,
        "bias_color": int(diverging_indices(np.array(bias), weight_range)),
        "weight_range": weight_range,
        "output_size": list(output.shape),
        "intermediates": encode(diverging_indices(results, result_range)),
        "intermediate_values": encode(results),
        "intermediate_range": result_range,
        "output": encode(diverging_indices(output, ranges[layer])),
        "output_values": encode(output),
        "output_range": ranges[layer],
        "argmax": [int(row), int(col)],
        "summary": conv_summary(layer, neuron, source, len(inputs), bias, output),
    }


def conv_summary(layer: str, neuron: int, source: str, channels: int, bias: float, output: np.ndarray) -> str:
    row, col = np.unravel_index(int(np.argmax(output)), output.shape)
    what = "colour channels of the input image" if source == "input" else f"neurons of {source}"
    return (
        f"{layer} neuron {neuron + 1} = sum of {channels} intermediate maps + bias {number_text(bias)}; "
        f"max {number_text(float(output.max()))} at ({row}, {col}), min {number_text(float(output.min()))}. "
        f"Each of the {channels} {what} is convolved with its own 3×3 kernel, giving one intermediate map per "
        f"channel; the {output.shape[0]}×{output.shape[1]} output adds them up pixel by pixel, then adds the bias."
    )


def flatten_view(trace: Trace, unit: int) -> dict[str, Any]:
    """The flatten view of output class `unit`: pooled maps, their flatten order, weights and products."""
    network = trace.network
    dense_name, flatten_name = network.infos[-2].name, network.infos[-3].name
    step = dense_step(trace, dense_name, unit)
    shape = flatten_source_shape(trace, flatten_name)
    source = trace.names[trace.names.index(flatten_name) - 1]
    order = [part for i in range(step.inputs.size) for part in flatten_position(shape, i)]  # row, col, channel
    weight_range = _extent(np.append(step.weights, step.bias))
    maps = _channels_first(trace[source])
    map_range = _extent(maps)
    return {
        "kind": "flatten",
        "layer": dense_name,
        "neuron": unit,
        "class_name": network.class_names[unit] if network.class_names else str(unit),
        "source": source,
        "input_size": list(shape[:2]),
        "inputs": encode(diverging_indices(maps, map_range)),
        "order": order,
        "values": encode(step.inputs),
        "value_colors": encode(diverging_indices(step.inputs, map_range)),
        "weights": encode(step.weights),
        "weight_colors": encode(diverging_indices(step.weights, weight_range)),
        "products": encode(step.products),
        "bias": step.bias,
        "bias_color": int(diverging_indices(np.array(step.bias), weight_range)),
        "score": step.result,
        "summary": flatten_summary(trace, unit, source, step),
    }


def flatten_summary(trace: Trace, unit: int, source: str, step) -> str:
    name = trace.network.class_names[unit] if trace.network.class_names else str(unit)
    strongest = int(np.argmax(np.abs(step.products)))
    return (
        f"The score of “{name}” = sum of {step.inputs.size} flattened values × their weights + bias "
        f"{number_text(step.bias)} = {number_text(step.total)} {_plus(step.bias)} = {number_text(step.result)}. "
        f"Flatten unrolls the {trace[source].shape[2]} maps of {source} ({trace[source].shape[0]}×"
        f"{trace[source].shape[1]} each) into one vector, pixel by pixel, all channels of a pixel side by side; "
        f"the largest contribution is element {strongest} ({number_text(float(step.inputs[strongest]))} × "
        f"{number_text(float(step.weights[strongest]))} = {number_text(float(step.products[strongest]))})."
    )


def softmax_view(trace: Trace, unit: int) -> dict[str, Any]:
    """Softmax mode: logits coloured by value, then the probabilities they normalise to."""
    terms = softmax_terms(trace.logits)
    low, high = float(terms.logits.min()), float(terms.logits.max())
    scaled = (terms.logits - low) / (high - low) if high > low else np.full_like(terms.logits, 0.5)
    names = list(trace.network.class_names) or [str(i) for i in range(terms.logits.size)]
    best = int(np.argmax(terms.probabilities))
    return {
        "kind": "softmax",
        "layer": trace.network.infos[-1].name,
        "neuron": unit,
        "classes": names,
        "logits": terms.logits.tolist(),
        "logit_colors": np.rint(scaled * 255).astype(int).tolist(),
        "exps": terms.exps.tolist(),
        "total": terms.total,
        "probabilities": terms.probabilities.tolist(),
        "summary": (
            f"Softmax turns the {terms.logits.size} class scores (logits, from {number_text(low)} to "
            f"{number_text(high)}) into probabilities: p = e^score / Σ e^scores, where Σ = {terms.total:.4g}. "
            f"“{names[unit]}”: e^{number_text(float(terms.logits[unit]))} / {terms.total:.4g} = "
            f"{100 * terms.probabilities[unit]:.1f} %; "
            f"the prediction is “{names[best]}” at {100 * terms.probabilities[best]:.1f} %."
        ),
    }


def view_data(trace: Trace, layer: str, neuron: int, ranges: dict[str, float]) -> dict[str, Any]:
    """The elastic view opened by selecting (`layer`, `neuron`) at level "elastic"."""
    kind = trace.network.info(layer).kind
    if kind == "conv2d":
        return conv_view(trace, layer, neuron, ranges)
    if kind == "dense":
        return flatten_view(trace, neuron)
    if kind == "softmax":
        return softmax_view(trace, neuron)
    raise ValueError(f"{layer!r} ({kind}) has no elastic view")
