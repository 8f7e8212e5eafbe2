"""The arithmetic behind any number in a trace, as plain arrays for the explanation views.

Every function here recomputes one step from the trace's own inputs and weights, so what a view shows always
adds up to the value the forward pass produced.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .layers import Conv2D, Dense, Flatten, MaxPool2D, ReLU, Shape
from .network import Trace


def _layer(trace: Trace, name: str, kind: type):
    layer = trace.network.layer(name)
    if not isinstance(layer, kind):
        raise TypeError(f"{name!r} is a {layer.kind} layer, not {kind.kind}")
    return layer


def conv_channel_results(trace: Trace, layer_name: str, neuron: int) -> np.ndarray:
    """(in_channels, rows, cols): each input channel convolved with its own kernel slice for `neuron`.

    These are the "intermediate results" of the elastic view: their sum plus the bias is the neuron's map.
    """
    layer: Conv2D = _layer(trace, layer_name, Conv2D)
    windows = layer.windows(trace.input_of(layer_name)[np.newaxis])[0]  # (rows, cols, C, kr, kc)
    kernel = layer.kernel[:, :, :, neuron].transpose(2, 0, 1)  # (C, kr, kc)
    return np.einsum("ijcuv,cuv->cij", windows, kernel, dtype=np.float32)


@dataclass(frozen=True)
class ConvStep:
    """One output value of a convolution, written out: window × kernel = products; sum + bias = result."""

    origin: tuple[int, int]  # top-left input coordinate of the window (negative over padding)
    window: np.ndarray  # (kr, kc, C): the input values under the kernel (padding as zeros)
    kernel: np.ndarray  # (kr, kc, C)
    products: np.ndarray  # window * kernel
    channel_sums: np.ndarray  # (C,): one number per intermediate result
    total: float  # sum of all products
    bias: float
    result: float  # the traced output value: total + bias


def conv_step(trace: Trace, layer_name: str, row: int, col: int, neuron: int) -> ConvStep:
    layer: Conv2D = _layer(trace, layer_name, Conv2D)
    windows = layer.windows(trace.input_of(layer_name)[np.newaxis])[0]
    window = windows[row, col].transpose(1, 2, 0)  # (kr, kc, C)
    kernel = layer.kernel[:, :, :, neuron]
    products = window * kernel
    return ConvStep(
        origin=layer.window_origin(row, col, trace.input_of(layer_name).shape),
        window=np.array(window),
        kernel=np.array(kernel),
        products=products,
        channel_sums=products.sum(axis=(0, 1)),
        total=float(products.sum()),
        bias=float(layer.bias[neuron]),
        result=float(trace[layer_name][row, col, neuron]),
    )


@dataclass(frozen=True)
class ConvSweep:
    """`conv_step` at every output position of one neuron at once: a whole formula view in a few arrays."""

    products: np.ndarray  # (rows, cols, kr, kc, C): window × kernel at each position
    channel_sums: np.ndarray  # (rows, cols, C)
    kernel: np.ndarray  # (kr, kc, C)
    bias: float
    results: np.ndarray  # (rows, cols): the traced output map of the neuron


def conv_sweep(trace: Trace, layer_name: str, neuron: int) -> ConvSweep:
    layer: Conv2D = _layer(trace, layer_name, Conv2D)
    windows = layer.windows(trace.input_of(layer_name)[np.newaxis])[0]  # (rows, cols, C, kr, kc)
    kernel = layer.kernel[:, :, :, neuron]
    products = windows.transpose(0, 1, 3, 4, 2) * kernel
    return ConvSweep(
        products=products,
        channel_sums=products.sum(axis=(2, 3)),
        kernel=np.array(kernel),
        bias=float(layer.bias[neuron]),
        results=np.array(trace[layer_name][..., neuron]),
    )


@dataclass(frozen=True)
class PoolStep:
    """One output value of max pooling: the window it looked at and where its maximum sits."""

    origin: tuple[int, int]
    window: np.ndarray  # (pr, pc), padding as -inf
    argmax: tuple[int, int]  # position of the kept value inside the window (the minimum for min-pooling)
    result: float


def pool_step(trace: Trace, layer_name: str, row: int, col: int, channel: int) -> PoolStep:
    layer: MaxPool2D = _layer(trace, layer_name, MaxPool2D)
    window = np.array(layer.windows(trace.input_of(layer_name)[np.newaxis])[0, row, col, channel])
    flat = int(np.argmin(window) if layer.mode == "min" else np.argmax(window))  # the value pooling keeps
    return PoolStep(
        origin=layer.window_origin(row, col, trace.input_of(layer_name).shape),
        window=window,
        argmax=(flat // window.shape[1], flat % window.shape[1]),
        result=float(trace[layer_name][row, col, channel]),
    )


@dataclass(frozen=True)
class ElementStep:
    """An element-wise step (ReLU): the input value and what became of it."""

    x: float
    y: float


def relu_step(trace: Trace, layer_name: str, row: int, col: int, channel: int) -> ElementStep:
    _layer(trace, layer_name, ReLU)
    return ElementStep(
        x=float(trace.input_of(layer_name)[row, col, channel]),
        y=float(trace[layer_name][row, col, channel]),
    )


def flatten_index(shape: Shape, row: int, col: int, channel: int) -> int:
    """Position in the flattened vector of input (row, col, channel), channels-last like Keras."""
    rows, cols, channels = shape
    if not (0 <= row < rows and 0 <= col < cols and 0 <= channel < channels):
        raise IndexError(f"({row}, {col}, {channel}) is outside {tuple(shape)}")
    return (row * cols + col) * channels + channel


def flatten_position(shape: Shape, index: int) -> tuple[int, int, int]:
    """Inverse of `flatten_index`: (row, col, channel) of a flattened element."""
    rows, cols, channels = shape
    if not 0 <= index < rows * cols * channels:
        raise IndexError(f"index {index} is outside a flattened {tuple(shape)}")
    pixel, channel = divmod(index, channels)
    row, col = divmod(pixel, cols)
    return row, col, channel


def flatten_source_shape(trace: Trace, layer_name: str) -> Shape:
    """Shape of the map a Flatten layer unrolls."""
    _layer(trace, layer_name, Flatten)
    return trace.input_of(layer_name).shape


@dataclass(frozen=True)
class DenseStep:
    """One output of a dense layer: every input times its weight, summed, plus the bias."""

    inputs: np.ndarray  # (n,)
    weights: np.ndarray  # (n,)
    products: np.ndarray  # (n,)
    total: float
    bias: float
    result: float


def dense_step(trace: Trace, layer_name: str, unit: int) -> DenseStep:
    layer: Dense = _layer(trace, layer_name, Dense)
    inputs = trace.input_of(layer_name).reshape(-1)
    weights = np.array(layer.kernel[:, unit])
    products = inputs * weights
    return DenseStep(
        inputs=inputs,
        weights=weights,
        products=products,
        total=float(products.sum()),
        bias=float(layer.bias[unit]),
        result=float(trace[layer_name][unit]),
    )


@dataclass(frozen=True)
class SoftmaxTerms:
    """Softmax written out: exp of each logit, their sum, and each share of it."""

    logits: np.ndarray
    exps: np.ndarray
    total: float
    probabilities: np.ndarray


def softmax_terms(logits: np.ndarray) -> SoftmaxTerms:
    """The terms a learner sees in p_k = e^{z_k} / Σ e^{z_j}, in float64 so the shown sums add up."""
    logits = np.asarray(logits, np.float64)
    exps = np.exp(logits)
    total = float(exps.sum())
    return SoftmaxTerms(logits=logits, exps=exps, total=total, probabilities=exps / total)
