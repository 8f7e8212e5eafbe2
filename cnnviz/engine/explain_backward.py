"""The arithmetic behind every number of the backward pass, as plain arrays for the explanation views.

The backward twin of `explain`: each function rebuilds one step from a `Backward`'s own activations, gradients
and weights, so what a view shows adds up to the gradient the engine reported. Gradients flow right to left:
"upstream" is always ∂L/∂(the layer's output), the gradient that arrives from the layer after it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .explain import flatten_position
from .gradients import Backward
from .layers import Conv2D, Dense, Flatten, Layer, MaxPool2D, ReLU


def _layer(backward: Backward, name: str, kind: type) -> Layer:
    layer = backward.network.layer(name)
    if not isinstance(layer, kind):
        raise TypeError(f"{name!r} is a {layer.kind} layer, not {kind.kind}")
    return layer


@dataclass(frozen=True)
class Terms:
    """A gradient written as a sum of products: Σ factors × upstream = total."""

    factors: np.ndarray  # what each upstream gradient is multiplied by (input values or weights)
    upstream: np.ndarray  # the gradients arriving from the right
    products: np.ndarray  # factors × upstream
    total: float  # Σ products: the gradient explained


def _terms(factors: np.ndarray, upstream: np.ndarray) -> Terms:
    products = factors * upstream
    return Terms(np.array(factors), np.array(upstream), products, float(products.sum()))


@dataclass(frozen=True)
class KernelGradientSweep:
    """∂L/∂w of one kernel slice (neuron k, input channel c) as a sliding window.

    At every output position the kernel sat on an input window during the forward pass; backwards, that window
    times the position's upstream gradient is the position's share of the kernel's gradient. The sum of all
    shares is the gradient; the sum of the upstream map alone is the bias's gradient.
    """

    windows: np.ndarray  # (rows, cols, kr, kc): input channel c under the kernel at each output position
    upstream: np.ndarray  # (rows, cols): ∂L/∂y of neuron k
    contributions: np.ndarray  # (rows, cols, kr, kc): window × upstream
    gradient: np.ndarray  # (kr, kc): Σ contributions = ∂L/∂w[:, :, c, k]
    bias_gradient: float  # Σ upstream = ∂L/∂b[k]

    def weight_terms(self, u: int, v: int) -> Terms:
        """One weight w[u, v]: every input value it multiplied, times that output's upstream gradient."""
        return _terms(self.windows[:, :, u, v], self.upstream)


def kernel_gradient_sweep(backward: Backward, layer_name: str, neuron: int, channel: int) -> KernelGradientSweep:
    layer: Conv2D = _layer(backward, layer_name, Conv2D)
    windows = layer.windows(backward.input_of(layer_name)[np.newaxis])[0, :, :, channel]  # (rows, cols, kr, kc)
    upstream = backward.upstream_of(layer_name)[..., neuron]
    contributions = windows * upstream[..., np.newaxis, np.newaxis]
    return KernelGradientSweep(
        windows=np.array(windows),
        upstream=np.array(upstream),
        contributions=contributions,
        gradient=contributions.sum(axis=(0, 1)),
        bias_gradient=float(upstream.sum()),
    )


@dataclass(frozen=True)
class InputGradientStep:
    """∂L/∂x of one input cell of a convolution: the "full" convolution of the upstream maps with flipped kernels.

    Every output whose window covered the cell sends back its upstream gradient times the weight that touched
    the cell. Laid out as a convolution: the upstream map, padded with zeros (and, for a stride above 1, with
    zeros between its cells), under the kernel turned by 180°. Cells of the window where no output window
    started are those zeros; `sources` says which output each other cell is.
    """

    position: tuple[int, int, int]  # (row, col, channel) of the input cell
    upstream_windows: np.ndarray  # (K, kr, kc): each neuron's upstream gradient under the flipped kernel
    flipped_kernels: np.ndarray  # (K, kr, kc): w[::-1, ::-1, channel, k]
    products: np.ndarray  # (K, kr, kc)
    neuron_sums: np.ndarray  # (K,): what each output neuron sends back
    sources: np.ndarray  # (kr, kc, 2): output (row, col) of each upstream cell, (-1, -1) for a zero
    gradient: float  # Σ neuron_sums: the gradient the layer passes back for this cell


def input_gradient_step(backward: Backward, layer_name: str, row: int, col: int, channel: int) -> InputGradientStep:
    layer: Conv2D = _layer(backward, layer_name, Conv2D)
    upstream = backward.upstream_of(layer_name)  # (rows, cols, K)
    out_rows, out_cols, _neurons = upstream.shape
    (top, _), (left, _) = layer.pad_amounts(*backward.input_of(layer_name).shape[:2])
    rows, cols = layer.window
    sources = np.full((rows, cols, 2), -1)
    windows = np.zeros((upstream.shape[2], rows, cols))
    for a in range(rows):
        for b in range(cols):
            u, v = rows - 1 - a, cols - 1 - b  # the flipped kernel's cell (a, b) is the kernel's (u, v)
            i, i_rest = divmod(row + top - u, layer.stride[0])
            j, j_rest = divmod(col + left - v, layer.stride[1])
            if i_rest == j_rest == 0 and 0 <= i < out_rows and 0 <= j < out_cols:
                sources[a, b] = i, j
                windows[:, a, b] = upstream[i, j]
    flipped = layer.kernel[::-1, ::-1, channel, :].transpose(2, 0, 1)
    products = windows * flipped
    return InputGradientStep(
        position=(row, col, channel),
        upstream_windows=windows,
        flipped_kernels=np.array(flipped),
        products=products,
        neuron_sums=products.sum(axis=(1, 2)),
        sources=sources,
        gradient=float(products.sum()),
    )


@dataclass(frozen=True)
class ConvNeuronGradients:
    """One conv neuron in the backward pass, channel by channel (the backward elastic view's numbers).

    The gradient arriving at the neuron's map makes its kernel's and bias's gradients and, through the kernel,
    its share of the gradient passed back to each input channel; the layer before adds the shares of every
    neuron of the layer.
    """

    upstream: np.ndarray  # (rows, cols): ∂L/∂(the neuron's map), arriving from the right
    kernel_gradients: np.ndarray  # (C, kr, kc): ∂L/∂(its kernel), one slice per input channel
    bias_gradient: float  # ∂L/∂(its bias) = Σ upstream
    passed_back: np.ndarray  # (C, H, W): its share of ∂L/∂(the layer's input), one map per input channel
    window_sums: np.ndarray  # (C, rows, cols): Σ input window × arriving gradient, each position's part of the
    # kernel gradient's sum (summed over the positions, Σ kernel_gradients[c])


def conv_neuron_gradients(backward: Backward, layer_name: str, neuron: int) -> ConvNeuronGradients:
    layer: Conv2D = _layer(backward, layer_name, Conv2D)
    inputs, upstream = backward.input_of(layer_name)[np.newaxis], backward.upstream_of(layer_name)
    alone = np.zeros_like(upstream)
    alone[..., neuron] = upstream[..., neuron]  # the other neurons' gradients pass back their own shares
    passed_back = layer.backward(inputs, alone[np.newaxis])[0]
    window_sums = layer.windows(inputs)[0].sum(axis=(3, 4)) * upstream[..., neuron, np.newaxis]  # (rows, cols, C)
    gradients = backward.weight_gradients[layer_name]
    return ConvNeuronGradients(
        upstream=np.array(upstream[..., neuron]),
        kernel_gradients=np.moveaxis(gradients["kernel"][..., neuron], -1, 0),
        bias_gradient=float(gradients["bias"][neuron]),
        passed_back=np.moveaxis(passed_back, -1, 0),
        window_sums=np.moveaxis(window_sums, -1, 0),
    )


@dataclass(frozen=True)
class GateStep:
    """ReLU backwards is a gate: the gradient passes where the input was positive (scaled by the slope elsewhere)."""

    x: float  # the ReLU's input in the forward pass
    upstream: float  # ∂L/∂y
    slope: float  # dy/dx: 1 where x > 0, else the negative slope (0 for a plain ReLU: the gate is shut)
    gradient: float  # upstream × slope = ∂L/∂x


def relu_gate(backward: Backward, layer_name: str, row: int, col: int, channel: int) -> GateStep:
    layer: ReLU = _layer(backward, layer_name, ReLU)
    x = float(backward.input_of(layer_name)[row, col, channel])
    upstream = float(backward.upstream_of(layer_name)[row, col, channel])
    slope = 1.0 if x > 0 else float(layer.negative_slope)
    return GateStep(x, upstream, slope, upstream * slope)


@dataclass(frozen=True)
class PoolRouting:
    """Pooling backwards: the output's gradient goes to the cell that was kept; the other cells get nothing.

    Average pooling instead shares it equally. Where windows overlap, an input cell adds up what each of its
    windows routes to it.
    """

    origin: tuple[int, int]  # top-left input coordinate of the window (negative over padding)
    window: np.ndarray  # (pr, pc): the values pooled in the forward pass (padding as ∓inf)
    kept: tuple[int, int] | None  # the cell max (or min) pooling kept; None for average pooling
    upstream: float  # ∂L/∂y of this output
    routed: np.ndarray  # (pr, pc): what each cell of the window receives from this output


def pool_routing(backward: Backward, layer_name: str, row: int, col: int, channel: int) -> PoolRouting:
    layer: MaxPool2D = _layer(backward, layer_name, MaxPool2D)
    source = backward.input_of(layer_name)
    window = np.array(layer.windows(source[np.newaxis])[0, row, col, channel])
    upstream = float(backward.upstream_of(layer_name)[row, col, channel])
    if layer.mode == "average":
        kept, routed = None, np.full(window.shape, upstream / window.size)
    else:  # the first winner, as in the forward pass
        flat = int(np.argmin(window) if layer.mode == "min" else np.argmax(window))
        kept = divmod(flat, window.shape[1])
        routed = np.zeros(window.shape)
        routed[kept] = upstream
    return PoolRouting(layer.window_origin(row, col, source.shape), window, kept, upstream, routed)


@dataclass(frozen=True)
class UnflattenStep:
    """Flatten backwards only reshapes: entry `index` of the vector's gradient goes back to its (row, col, channel)."""

    index: int
    position: tuple[int, int, int]
    gradient: float


def unflatten_gradient(backward: Backward, layer_name: str, index: int) -> UnflattenStep:
    _layer(backward, layer_name, Flatten)
    position = flatten_position(backward.input_of(layer_name).shape, index)
    return UnflattenStep(index, position, float(backward.upstream_of(layer_name)[index]))


@dataclass(frozen=True)
class OutputGradient:
    """Softmax and cross-entropy together: the loss −log p_true and the logits' gradient p − y."""

    true_class: int
    logits: np.ndarray
    probabilities: np.ndarray  # p
    target: np.ndarray  # y: one for the true class, zero elsewhere
    gradient: np.ndarray  # p − y = ∂L/∂logits
    loss: float


def output_gradient(backward: Backward) -> OutputGradient:
    return OutputGradient(
        true_class=backward.true_class,
        logits=np.array(backward.activations[backward.logits_name]),
        probabilities=np.array(backward.probabilities),
        target=backward.target,
        gradient=np.array(backward.gradients[backward.logits_name]),
        loss=backward.loss,
    )


@dataclass(frozen=True)
class DenseGradient:
    """A dense unit backwards: its weights' gradient is each input times the unit's gradient, its bias's is that
    gradient itself."""

    inputs: np.ndarray  # (n,): x
    upstream: float  # ∂L/∂z of the unit (p − y for the output layer)
    kernel_gradient: np.ndarray  # (n,): x × upstream = ∂L/∂w[:, unit]
    bias_gradient: float


def dense_gradient(backward: Backward, layer_name: str, unit: int) -> DenseGradient:
    _layer(backward, layer_name, Dense)
    inputs = np.array(backward.input_of(layer_name)).reshape(-1)
    upstream = float(backward.upstream_of(layer_name)[unit])
    return DenseGradient(inputs, upstream, inputs * upstream, upstream)


def dense_input_terms(backward: Backward, layer_name: str, index: int) -> Terms:
    """∂L/∂x_n of a dense layer's input n: Σ over units of w[n, unit] × the unit's gradient."""
    layer: Dense = _layer(backward, layer_name, Dense)
    return _terms(layer.kernel[index].astype(np.float64), backward.upstream_of(layer_name))


@dataclass(frozen=True)
class WeightUpdate:
    """One weight's step of gradient descent: w ← w − η·g."""

    weight: float
    gradient: float  # g = ∂L/∂w
    learning_rate: float  # η
    new_weight: float  # as the network stores it (float32)

    @property
    def change(self) -> float:
        return self.new_weight - self.weight

    @property
    def direction(self) -> str:
        """'down' for a positive gradient, 'up' for a negative one, 'stays' for none: always against the slope."""
        return "down" if self.gradient > 0 else "up" if self.gradient < 0 else "stays"


def weight_update(
    backward: Backward, layer_name: str, key: str, index: tuple[int, ...], learning_rate: float
) -> WeightUpdate:
    """The update of one weight (`key` 'kernel' or 'bias', `index` into that array), as a step would apply it."""
    weight = backward.network.layer(layer_name).weights()[key][index]
    gradient = float(backward.weight_gradients[layer_name][key][index])
    new_weight = np.float32(np.float64(weight) - learning_rate * gradient)  # the arithmetic of `updated_weights`
    return WeightUpdate(float(weight), gradient, float(learning_rate), float(new_weight))


@dataclass(frozen=True)
class Strongest:
    """Where a layer's gradient is largest: the neuron, position and (convolution) input channel to follow back."""

    neuron: int
    row: int
    col: int
    channel: int


def strongest_gradient(backward: Backward, layer_name: str) -> Strongest:
    """The output of `layer_name` whose gradient is largest in size, and for a convolution the input channel whose
    kernel slice of that neuron has the largest gradient: following these from the loss leads to the numbers
    that matter most for this image."""
    upstream = np.abs(backward.upstream_of(layer_name))
    if upstream.ndim == 3:
        row, col, neuron = (int(i) for i in np.unravel_index(int(np.argmax(upstream)), upstream.shape))
    else:
        row, col, neuron = 0, 0, int(np.argmax(upstream))
    channel = 0
    kernel = backward.weight_gradients.get(layer_name, {}).get("kernel")
    if kernel is not None and kernel.ndim == 4:
        channel = int(np.argmax(np.abs(kernel[:, :, :, neuron]).sum(axis=(0, 1))))
    return Strongest(neuron, row, col, channel)
