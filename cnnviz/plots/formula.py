"""What the formula views send to the browser: the engine's numbers for every window position, in one buffer.

A formula view explains one step (a convolution window, a ReLU cell, a pooling window, a softmax term) and lets
the learner hover or sweep over every position without a server round trip. So the server asks the engine for
the step at *every* position once (`conv_sweep`, `relu_step`, `pool_step`, `softmax_terms`), and the browser only
indexes into the result: it never multiplies, adds or compares a model number itself.

Values travel as float32, colours as uint8 palette indices (`PALETTES`), packed into one binary buffer with a
small JSON header (`FormulaData.pack`), so the browser receives each view in one message.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from cnnviz.colors import DIVERGING, GREYS, ORANGES, WEIGHTS, diverging_indices, grey_indices
from cnnviz.engine import Trace
from cnnviz.engine.explain import conv_sweep, pool_step, relu_step, softmax_terms
from cnnviz.engine.network import INPUT_NAME

PALETTES: dict[str, list[str]] = {"diverging": DIVERGING, "greys": GREYS, "weights": WEIGHTS, "oranges": ORANGES}
"""Palette name -> hex colours; every `*_colors` array indexes one of these (named in `meta["palettes"]`)."""

FORMULA_KINDS = ("conv2d", "relu", "maxpool2d", "softmax")
"""Layer kinds that have a formula view."""

CHANNEL_NAMES = ("red", "green", "blue")


@dataclass(frozen=True)
class FormulaData:
    """Everything one formula view shows: a JSON-able description and named arrays (float32 or uint8)."""

    meta: dict[str, Any]
    arrays: dict[str, np.ndarray]

    def pack(self) -> bytes:
        """[uint32 header length][JSON header][arrays, each 4-byte aligned], little-endian.

        The header is `meta` plus, per array, its dtype, shape and byte offset, so the browser can wrap each one
        in a typed array without copying.
        """
        entries, chunks, offset = {}, [], 0
        for name, array in self.arrays.items():
            data = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
            entries[name] = {"dtype": array.dtype.name, "shape": list(array.shape), "offset": offset}
            padding = -len(data) % 4
            chunks.append(data + b"\0" * padding)
            offset += len(data) + padding
        header = json.dumps({**self.meta, "arrays": entries}, separators=(",", ":")).encode()
        header += b" " * (-(len(header) + 4) % 4)  # keep the arrays 4-byte aligned for Float32Array
        return struct.pack("<I", len(header)) + header + b"".join(chunks)


def unpack(payload: bytes) -> FormulaData:
    """The inverse of `FormulaData.pack` (for tests and notebooks)."""
    (length,) = struct.unpack_from("<I", payload)
    header = json.loads(payload[4 : 4 + length])
    entries = header.pop("arrays")
    start = 4 + length
    arrays = {
        name: np.frombuffer(
            payload, np.dtype(entry["dtype"]), int(np.prod(entry["shape"])), start + entry["offset"]
        ).reshape(entry["shape"])
        for name, entry in entries.items()
    }
    return FormulaData(header, arrays)


def _half_range(values: np.ndarray) -> float:
    """Symmetric colour range of an array; 1 when it is all zeros, so nothing divides by zero."""
    extent = float(np.abs(values).max()) if values.size else 0.0
    return extent if extent > 0 else 1.0


def _map_colors(trace: Trace, layer_name: str, values: np.ndarray, half_ranges: dict[str, float]) -> np.ndarray:
    """A layer's values in the overview's colours: grey for the input image, diverging for hidden layers."""
    if layer_name == INPUT_NAME:
        return grey_indices(values)
    return diverging_indices(values, half_ranges[layer_name])


def _input_name(trace: Trace, layer_name: str, channel: int) -> str:
    previous = trace.names[trace.names.index(layer_name) - 1]
    if previous == INPUT_NAME and channel < len(CHANNEL_NAMES):
        return f"input image, {CHANNEL_NAMES[channel]} channel"
    return f"{previous}, channel {channel + 1}"  # counted from 1, as everywhere on screen


def _window_geometry(layer, input_shape: tuple[int, ...]) -> dict[str, list[int]]:
    """Where output (row, col)'s window sits: origin = (row, col) × stride − padding (the engine's own rule)."""
    top, left = layer.window_origin(0, 0, input_shape)
    return {"window": list(layer.window), "stride": list(layer.stride), "offset": [top, left]}


def conv_formula(
    trace: Trace, layer_name: str, neuron: int, channel: int, half_ranges: dict[str, float]
) -> FormulaData:
    """Input channel `channel` × its kernel slice for `neuron`, at every position, and how channels join."""
    layer = trace.network.layer(layer_name)
    source = trace.input_of(layer_name)
    steps = conv_sweep(trace, layer_name, neuron)
    products = steps.products[..., channel]
    previous = trace.names[trace.names.index(layer_name) - 1]
    meta = {
        "kind": "conv2d",
        "layer": layer_name,
        "neuron": neuron,
        "channel": channel,
        "channels": source.shape[2],
        "input_name": _input_name(trace, layer_name, channel),
        "bias": steps.bias,
        "bias_color": int(diverging_indices(np.array([steps.bias]), _half_range(layer.bias))[0]),
        **_window_geometry(layer, source.shape),
        "palettes": {
            "input": "greys" if previous == INPUT_NAME else "diverging",
            "kernel": "weights",
            "products": "diverging",
            "sums": "diverging",
            "results": "diverging",
            "bias": "weights",
        },
    }
    arrays = {
        "input": source[:, :, channel].astype(np.float32),
        "input_colors": _map_colors(trace, previous, source[:, :, channel], half_ranges),
        "kernel": steps.kernel[:, :, channel],
        "kernel_colors": diverging_indices(steps.kernel[:, :, channel], _half_range(layer.kernel)),
        "products": products,
        "products_colors": diverging_indices(products, _half_range(products)),
        "sums": steps.channel_sums,
        "sums_colors": diverging_indices(steps.channel_sums, _half_range(steps.channel_sums)),
        "results": steps.results,
        "results_colors": diverging_indices(steps.results, half_ranges[layer_name]),
    }
    return FormulaData(meta, arrays)


def relu_formula(trace: Trace, layer_name: str, channel: int, half_ranges: dict[str, float]) -> FormulaData:
    """x and the activation's output for every cell of one channel (`slope`: 0 ReLU, leaky, or 1 for none)."""
    rows, cols = trace[layer_name].shape[:2]
    steps = [relu_step(trace, layer_name, row, col, channel) for row in range(rows) for col in range(cols)]
    inputs = np.array([step.x for step in steps], np.float32).reshape(rows, cols)
    outputs = np.array([step.y for step in steps], np.float32).reshape(rows, cols)
    previous = trace.names[trace.names.index(layer_name) - 1]
    meta = {
        "kind": "relu",
        "layer": layer_name,
        "neuron": channel,
        "slope": trace.network.layer(layer_name).negative_slope,
        "input_name": _input_name(trace, layer_name, channel),
        "window": [1, 1],
        "stride": [1, 1],
        "offset": [0, 0],
        "palettes": {"input": "diverging", "results": "diverging"},
    }
    arrays = {
        "input": inputs,
        "input_colors": _map_colors(trace, previous, inputs, half_ranges),
        "results": outputs,
        "results_colors": _map_colors(trace, layer_name, outputs, half_ranges),
    }
    return FormulaData(meta, arrays)


def pool_formula(trace: Trace, layer_name: str, channel: int, half_ranges: dict[str, float]) -> FormulaData:
    """Every pooling window of one channel, the value it keeps and where that sits (`mode`: max, min or average)."""
    layer = trace.network.layer(layer_name)
    source = trace.input_of(layer_name)
    rows, cols = trace[layer_name].shape[:2]
    steps = [pool_step(trace, layer_name, row, col, channel) for row in range(rows) for col in range(cols)]
    previous = trace.names[trace.names.index(layer_name) - 1]
    results = np.array([step.result for step in steps], np.float32).reshape(rows, cols)
    meta = {
        "kind": "maxpool2d",
        "layer": layer_name,
        "neuron": channel,
        "mode": layer.mode,
        "input_name": _input_name(trace, layer_name, channel),
        **_window_geometry(layer, source.shape),
        "palettes": {"input": "diverging", "windows": "diverging", "results": "diverging"},
    }
    windows = np.stack([step.window for step in steps]).astype(np.float32).reshape(rows, cols, *layer.window)
    arrays = {
        "input": source[:, :, channel].astype(np.float32),
        "input_colors": _map_colors(trace, previous, source[:, :, channel], half_ranges),
        "windows": windows,
        "windows_colors": _map_colors(trace, previous, np.nan_to_num(windows), half_ranges),
        "argmax": np.array([step.argmax for step in steps], np.uint8).reshape(rows, cols, 2),
        "results": results,
        "results_colors": _map_colors(trace, layer_name, results, half_ranges),
    }
    return FormulaData(meta, arrays)


def softmax_formula(trace: Trace, layer_name: str, neuron: int) -> FormulaData:
    """p_k = e^{z_k} / Σ_j e^{z_j} with every term, for class `neuron` (all classes travel: hover is local)."""
    terms = softmax_terms(trace.logits)
    low, high = float(terms.logits.min()), float(terms.logits.max())
    shades = (terms.logits - low) / (high - low) if high > low else np.full_like(terms.logits, 0.5)
    meta = {
        "kind": "softmax",
        "layer": layer_name,
        "neuron": neuron,
        "classes": list(trace.network.class_names),
        "total": terms.total,
        "palettes": {"logits": "oranges"},
    }
    arrays = {
        "logits": terms.logits.astype(np.float32),
        "logits_colors": np.rint(shades * 255).astype(np.uint8),
        "exps": terms.exps.astype(np.float32),
        "probabilities": terms.probabilities.astype(np.float32),
    }
    return FormulaData(meta, arrays)


def formula_data(
    trace: Trace, layer_name: str, neuron: int, input_channel: int, half_ranges: dict[str, float]
) -> FormulaData:
    """The formula view of `layer_name`'s neuron (a conv: of its `input_channel` part), by layer kind."""
    kind = trace.network.info(layer_name).kind
    if kind == "conv2d":
        return conv_formula(trace, layer_name, neuron, input_channel, half_ranges)
    if kind == "relu":
        return relu_formula(trace, layer_name, neuron, half_ranges)
    if kind == "maxpool2d":
        return pool_formula(trace, layer_name, neuron, half_ranges)
    if kind == "softmax":
        return softmax_formula(trace, layer_name, neuron)
    raise ValueError(f"{layer_name!r} is a {kind} layer; formula views exist for {', '.join(FORMULA_KINDS)}")
