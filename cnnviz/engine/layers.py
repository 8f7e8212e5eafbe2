"""Layer classes of a sequential CNN, in pure NumPy.

Every layer works on a batch in channels-last layout (N, H, W, C), exactly like Keras, so weights trained
there mean the same here. Each class also carries its formula (LaTeX), so views can show the maths next to
the numbers without knowing which layer they are looking at.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

Shape = tuple[int, ...]


def _pair(value: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    """Accept Keras-style `3` or `(3, 3)` and always return a (rows, cols) pair."""
    if isinstance(value, int | np.integer):
        return int(value), int(value)
    rows, cols = value
    return int(rows), int(cols)


Padding = str | tuple[tuple[int, int], tuple[int, int]]  # 'valid', 'same' or ((top, bottom), (left, right))


def checked_padding(padding: Any, name: str) -> Padding:
    """'valid', 'same' (Keras' names), or explicit zeros ((top, bottom), (left, right)) as PyTorch and ONNX
    give them: PyTorch's `padding=1` with stride 2 pads differently from 'same', so it needs its own amounts."""
    if isinstance(padding, str) and padding in ("valid", "same"):
        return padding
    try:
        (top, bottom), (left, right) = padding
        amounts = (int(top), int(bottom)), (int(left), int(right))
    except (TypeError, ValueError):
        raise ValueError(
            f"{name}: padding must be 'valid', 'same' or ((top, bottom), (left, right)), not {padding!r}"
        ) from None
    if min(*amounts[0], *amounts[1]) < 0:
        raise ValueError(f"{name}: padding cannot be negative, not {padding!r}")
    return "valid" if amounts == ((0, 0), (0, 0)) else amounts


def same_padding(size: int, window: int, stride: int) -> tuple[int, int]:
    """Keras' 'same' padding along one axis: output = ceil(size / stride), extra pixel at the end."""
    out = -(-size // stride)
    total = max((out - 1) * stride + window - size, 0)
    return total // 2, total - total // 2


class Layer:
    """Base class: a named step of the forward pass."""

    kind: ClassVar[str] = "layer"
    formula: ClassVar[str] = ""
    name: str

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Map a batch of inputs to a batch of outputs."""
        raise NotImplementedError

    def output_shape(self, input_shape: Shape) -> Shape:
        """Shape of one output (no batch axis) for one input of `input_shape`."""
        return tuple(self.forward(np.zeros((1, *input_shape), np.float32)).shape[1:])

    def backward(self, x: np.ndarray, grad: np.ndarray) -> np.ndarray:
        """Gradient with respect to the input `x`, given the gradient `grad` with respect to the output."""
        raise NotImplementedError(f"{self.kind} layers have no backward pass")

    def weight_gradients(self, x: np.ndarray, grad: np.ndarray) -> dict[str, np.ndarray]:
        """Gradient with respect to each of `weights()`, summed over the batch; empty for parameter-free layers."""
        return {}

    def config(self) -> dict[str, Any]:
        """JSON-serialisable hyperparameters; with `weights()` it rebuilds the layer."""
        return {"kind": self.kind, "name": self.name}

    def weights(self) -> dict[str, np.ndarray]:
        """Trainable arrays by short name ('kernel', 'bias'); empty for parameter-free layers."""
        return {}

    @property
    def parameter_count(self) -> int:
        return sum(int(w.size) for w in self.weights().values())


class _Windowed(Layer):
    """Shared sliding-window mechanics of convolution and pooling."""

    window: tuple[int, int]
    stride: tuple[int, int]
    padding: Padding
    pad_value: ClassVar[float] = 0.0

    def pad_amounts(self, height: int, width: int) -> tuple[tuple[int, int], tuple[int, int]]:
        """(top, bottom), (left, right) padding for an input of this size."""
        if self.padding == "valid":
            return (0, 0), (0, 0)
        if self.padding == "same":
            return (
                same_padding(height, self.window[0], self.stride[0]),
                same_padding(width, self.window[1], self.stride[1]),
            )
        return self.padding

    def padded(self, x: np.ndarray) -> np.ndarray:
        """The batch with this layer's padding applied (no copy for 'valid')."""
        rows, cols = self.pad_amounts(x.shape[1], x.shape[2])
        if rows == (0, 0) and cols == (0, 0):
            return x
        return np.pad(x, ((0, 0), rows, cols, (0, 0)), constant_values=self.pad_value)

    def windows(self, x: np.ndarray) -> np.ndarray:
        """Strided view (N, out_rows, out_cols, C, window_rows, window_cols) of every input window."""
        view = sliding_window_view(self.padded(x), self.window, axis=(1, 2))
        return view[:, :: self.stride[0], :: self.stride[1]]

    def _scatter(self, per_window: np.ndarray, input_shape: Shape) -> np.ndarray:
        """Add per-window gradients (N, out_rows, out_cols, C, wr, wc) back onto the input they came from."""
        batch, out_rows, out_cols = per_window.shape[:3]
        (top, bottom), (left, right) = self.pad_amounts(input_shape[1], input_shape[2])
        padded = np.zeros(
            (batch, input_shape[1] + top + bottom, input_shape[2] + left + right, input_shape[3]), per_window.dtype
        )
        for u in range(self.window[0]):
            for v in range(self.window[1]):
                rows = slice(u, u + out_rows * self.stride[0], self.stride[0])
                cols = slice(v, v + out_cols * self.stride[1], self.stride[1])
                padded[:, rows, cols, :] += per_window[..., u, v]
        return padded[:, top : top + input_shape[1], left : left + input_shape[2], :]

    def window_origin(self, row: int, col: int, input_shape: Shape) -> tuple[int, int]:
        """Top-left input coordinate of output (row, col)'s window; negative where it covers padding."""
        (top, _), (left, _) = self.pad_amounts(input_shape[0], input_shape[1])
        return row * self.stride[0] - top, col * self.stride[1] - left

    def config(self) -> dict[str, Any]:
        return {**super().config(), "stride": list(self.stride), "padding": self.padding}


@dataclass(eq=False)
class Conv2D(_Windowed):
    """2-D convolution (cross-correlation, as in Keras) with one kernel per (input, output) channel pair."""

    name: str
    kernel: np.ndarray  # (rows, cols, in_channels, out_channels), Keras layout
    bias: np.ndarray  # (out_channels,)
    stride: tuple[int, int] = (1, 1)
    padding: Padding = "valid"

    kind: ClassVar[str] = "conv2d"
    formula: ClassVar[str] = (
        r"y_{i,j}^{(k)} = b^{(k)} + \sum_{c}\sum_{u,v} x_{i s + u,\, j s + v}^{(c)}\, w_{u,v}^{(c,k)}"
    )

    def __post_init__(self) -> None:
        self.kernel = np.asarray(self.kernel, np.float32)
        self.bias = np.asarray(self.bias, np.float32)
        self.stride = _pair(self.stride)
        self.padding = checked_padding(self.padding, self.name)
        if self.kernel.ndim != 4 or self.bias.shape != (self.kernel.shape[3],):
            raise ValueError(f"{self.name}: kernel {self.kernel.shape} and bias {self.bias.shape} do not fit")

    @property
    def window(self) -> tuple[int, int]:  # type: ignore[override]
        return self.kernel.shape[0], self.kernel.shape[1]

    @property
    def filters(self) -> int:
        return self.kernel.shape[3]

    @cached_property
    def _kernel_matrix(self) -> np.ndarray:
        """Kernel reordered to match `windows()`' (C, rows, cols) order, so one matmul does the layer."""
        rows, cols, channels, filters = self.kernel.shape
        return np.ascontiguousarray(self.kernel.transpose(2, 0, 1, 3).reshape(channels * rows * cols, filters))

    def forward(self, x: np.ndarray) -> np.ndarray:
        windows = self.windows(x)
        batch, out_rows, out_cols = windows.shape[:3]
        columns = windows.reshape(batch * out_rows * out_cols, -1)  # im2col: the one copy
        out = columns @ self._kernel_matrix
        out += self.bias
        return out.reshape(batch, out_rows, out_cols, self.filters)

    def backward(self, x: np.ndarray, grad: np.ndarray) -> np.ndarray:
        batch, out_rows, out_cols, filters = grad.shape
        per_column = grad.reshape(-1, filters) @ self._kernel_matrix.T  # the im2col step, run backwards
        per_window = per_column.reshape(batch, out_rows, out_cols, self.kernel.shape[2], *self.window)
        return self._scatter(per_window, x.shape)

    def weight_gradients(self, x: np.ndarray, grad: np.ndarray) -> dict[str, np.ndarray]:
        """∂L/∂w: every input window times the gradient of the output it made, summed (im2col transposed)."""
        windows = self.windows(x)
        columns = windows.reshape(-1, windows[0, 0, 0].size)
        per_weight = columns.T @ grad.reshape(-1, self.filters)  # (C·rows·cols, filters), `_kernel_matrix` order
        rows, cols, channels, filters = self.kernel.shape
        kernel = per_weight.reshape(channels, rows, cols, filters).transpose(1, 2, 0, 3)
        return {"kernel": kernel, "bias": grad.sum(axis=(0, 1, 2))}

    def output_shape(self, input_shape: Shape) -> Shape:
        rows, cols = self.pad_amounts(*input_shape[:2])
        height = input_shape[0] + sum(rows) - self.window[0]
        width = input_shape[1] + sum(cols) - self.window[1]
        return height // self.stride[0] + 1, width // self.stride[1] + 1, self.filters

    def weights(self) -> dict[str, np.ndarray]:
        return {"kernel": self.kernel, "bias": self.bias}


@dataclass(eq=False)
class MaxPool2D(_Windowed):
    """Keeps the largest value of each window, channel by channel.

    `mode` swaps the reduction for "what if?" experiments (min or average pooling); trained networks use max.
    """

    name: str
    size: tuple[int, int] = (2, 2)
    stride: tuple[int, int] | None = None
    padding: Padding = "valid"
    mode: str = "max"

    kind: ClassVar[str] = "maxpool2d"
    MODES: ClassVar[tuple[str, ...]] = ("max", "min", "average")

    def __post_init__(self) -> None:
        self.size = _pair(self.size)
        self.stride = self.size if self.stride is None else _pair(self.stride)
        self.padding = checked_padding(self.padding, self.name)
        if self.mode not in self.MODES:
            raise ValueError(f"{self.name}: pooling mode must be one of {self.MODES}, not {self.mode!r}")

    @property
    def window(self) -> tuple[int, int]:  # type: ignore[override]
        return self.size

    @property
    def formula(self) -> str:  # type: ignore[override]
        average = rf"\frac{{1}}{{{self.size[0] * self.size[1]}}}\sum_{{u,v}}"
        reduction = {"max": r"\max_{u,v}", "min": r"\min_{u,v}"}.get(self.mode, average)
        return rf"y_{{i,j}}^{{(k)}} = {reduction}\; x_{{i s + u,\, j s + v}}^{{(k)}}"

    @property
    def pad_value(self) -> float:  # type: ignore[override]
        """Padding never wins: -inf for max, +inf for min. An average counts it as zeros (PyTorch's default), so
        that "what if average?" on a padded max pooling gives numbers, not -inf."""
        return {"max": -np.inf, "min": np.inf}.get(self.mode, 0.0)

    def forward(self, x: np.ndarray) -> np.ndarray:
        windows = self.windows(x)
        if self.mode == "average":
            return windows.mean(axis=(4, 5), dtype=x.dtype)
        return windows.min(axis=(4, 5)) if self.mode == "min" else windows.max(axis=(4, 5))

    def backward(self, x: np.ndarray, grad: np.ndarray) -> np.ndarray:
        windows = self.windows(x)
        rows, cols = self.window
        if self.mode == "average":
            share = np.broadcast_to(grad[..., np.newaxis, np.newaxis] / (rows * cols), windows.shape)
        else:  # the whole gradient goes to the (first) winning position of each window
            flat = windows.reshape(*windows.shape[:4], -1)
            winner = flat.argmin(-1) if self.mode == "min" else flat.argmax(-1)
            chosen = np.arange(rows * cols) == winner[..., np.newaxis]
            share = (chosen * grad[..., np.newaxis]).reshape(windows.shape)
        return self._scatter(share, x.shape)

    def config(self) -> dict[str, Any]:
        config = {**super().config(), "size": list(self.size)}
        return config if self.mode == "max" else {**config, "mode": self.mode}


@dataclass(eq=False)
class ReLU(Layer):
    """Rectified linear unit: negative values become zero, positive ones pass unchanged.

    `negative_slope` is for "what if?" experiments: 0 is the ReLU, a small value a leaky ReLU, 1 no
    activation at all (the identity).
    """

    name: str
    negative_slope: float = 0.0

    kind: ClassVar[str] = "relu"

    def __post_init__(self) -> None:
        self.check_slope(self.negative_slope, self.name)

    @staticmethod
    def check_slope(slope: float, name: str) -> float:
        """The slope, if the layer can use it: beyond 1 (or below 0) y = max(s·x, x) no longer holds."""
        if not 0.0 <= slope <= 1.0:
            raise ValueError(f"{name}: negative_slope must be between 0 and 1, not {slope!r}")
        return slope

    @property
    def formula(self) -> str:  # type: ignore[override]
        if self.negative_slope == 0.0:
            return r"y = \max(0,\, x)"
        if self.negative_slope == 1.0:
            return r"y = x"
        return rf"y = \max({self.negative_slope:g}\,x,\; x)"

    def forward(self, x: np.ndarray) -> np.ndarray:
        if self.negative_slope == 0.0:
            return np.maximum(x, 0)
        return np.where(x > 0, x, x * np.asarray(self.negative_slope, x.dtype))

    def backward(self, x: np.ndarray, grad: np.ndarray) -> np.ndarray:
        return grad * np.where(x > 0, 1.0, self.negative_slope)

    def config(self) -> dict[str, Any]:
        config = super().config()
        return config if self.negative_slope == 0.0 else {**config, "negative_slope": self.negative_slope}

    def output_shape(self, input_shape: Shape) -> Shape:
        return tuple(input_shape)


@dataclass(eq=False)
class Flatten(Layer):
    """Unrolls (rows, cols, channels) into one vector, channel index fastest (Keras' channels-last order)."""

    name: str

    kind: ClassVar[str] = "flatten"
    formula: ClassVar[str] = r"y_{(i W + j) C + k} = x_{i,j}^{(k)}"

    def forward(self, x: np.ndarray) -> np.ndarray:
        return x.reshape(x.shape[0], -1)

    def backward(self, x: np.ndarray, grad: np.ndarray) -> np.ndarray:
        return grad.reshape(x.shape)

    def output_shape(self, input_shape: Shape) -> Shape:
        return (int(np.prod(input_shape)),)


@dataclass(eq=False)
class Dense(Layer):
    """Fully connected layer: every output is a weighted sum of all inputs plus a bias."""

    name: str
    kernel: np.ndarray  # (inputs, units)
    bias: np.ndarray  # (units,)

    kind: ClassVar[str] = "dense"
    formula: ClassVar[str] = r"z_k = b_k + \sum_{n} x_n\, w_{n,k}"

    def __post_init__(self) -> None:
        self.kernel = np.asarray(self.kernel, np.float32)
        self.bias = np.asarray(self.bias, np.float32)
        if self.kernel.ndim != 2 or self.bias.shape != (self.kernel.shape[1],):
            raise ValueError(f"{self.name}: kernel {self.kernel.shape} and bias {self.bias.shape} do not fit")

    def forward(self, x: np.ndarray) -> np.ndarray:
        return x.reshape(x.shape[0], -1) @ self.kernel + self.bias

    def backward(self, x: np.ndarray, grad: np.ndarray) -> np.ndarray:
        return (grad @ self.kernel.T).reshape(x.shape)

    def weight_gradients(self, x: np.ndarray, grad: np.ndarray) -> dict[str, np.ndarray]:
        """∂L/∂w_{n,k} = x_n · ∂L/∂z_k, summed over the batch; ∂L/∂b_k = ∂L/∂z_k."""
        return {"kernel": x.reshape(x.shape[0], -1).T @ grad, "bias": grad.sum(axis=0)}

    def output_shape(self, input_shape: Shape) -> Shape:
        return (self.kernel.shape[1],)

    def weights(self) -> dict[str, np.ndarray]:
        return {"kernel": self.kernel, "bias": self.bias}


@dataclass(eq=False)
class Softmax(Layer):
    """Turns scores (logits) into probabilities that are positive and sum to one."""

    name: str

    kind: ClassVar[str] = "softmax"
    formula: ClassVar[str] = r"p_k = \frac{e^{z_k}}{\sum_{j} e^{z_j}}"

    def forward(self, x: np.ndarray) -> np.ndarray:
        shifted = np.exp(x - x.max(axis=-1, keepdims=True))  # same result, no overflow
        return shifted / shifted.sum(axis=-1, keepdims=True)

    def backward(self, x: np.ndarray, grad: np.ndarray) -> np.ndarray:
        y = self.forward(x)
        return y * (grad - (grad * y).sum(axis=-1, keepdims=True))

    def output_shape(self, input_shape: Shape) -> Shape:
        return tuple(input_shape)


LAYER_TYPES: dict[str, type[Layer]] = {cls.kind: cls for cls in (Conv2D, MaxPool2D, ReLU, Flatten, Dense, Softmax)}


def layer_from_config(config: dict[str, Any], weights: dict[str, np.ndarray]) -> Layer:
    """Rebuild a layer from `Layer.config()` and `Layer.weights()` (the inverse of saving it)."""
    options = {key: value for key, value in config.items() if key != "kind"}
    try:
        layer_type = LAYER_TYPES[config["kind"]]
    except KeyError:
        raise ValueError(f"unknown layer kind {config.get('kind')!r}") from None
    return layer_type(**options, **weights)
