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
    padding: str
    pad_value: ClassVar[float] = 0.0

    def pad_amounts(self, height: int, width: int) -> tuple[tuple[int, int], tuple[int, int]]:
        """(top, bottom), (left, right) padding for an input of this size."""
        if self.padding == "valid":
            return (0, 0), (0, 0)
        return (
            same_padding(height, self.window[0], self.stride[0]),
            same_padding(width, self.window[1], self.stride[1]),
        )

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
    padding: str = "valid"

    kind: ClassVar[str] = "conv2d"
    formula: ClassVar[str] = (
        r"y_{i,j}^{(k)} = b^{(k)} + \sum_{c}\sum_{u,v} x_{i s + u,\, j s + v}^{(c)}\, w_{u,v}^{(c,k)}"
    )

    def __post_init__(self) -> None:
        self.kernel = np.asarray(self.kernel, np.float32)
        self.bias = np.asarray(self.bias, np.float32)
        self.stride = _pair(self.stride)
        if self.padding not in ("valid", "same"):
            raise ValueError(f"{self.name}: padding must be 'valid' or 'same', not {self.padding!r}")
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

    def output_shape(self, input_shape: Shape) -> Shape:
        rows, cols = self.pad_amounts(*input_shape[:2])
        height = input_shape[0] + sum(rows) - self.window[0]
        width = input_shape[1] + sum(cols) - self.window[1]
        return height // self.stride[0] + 1, width // self.stride[1] + 1, self.filters

    def weights(self) -> dict[str, np.ndarray]:
        return {"kernel": self.kernel, "bias": self.bias}


@dataclass(eq=False)
class MaxPool2D(_Windowed):
    """Keeps the largest value of each window, channel by channel."""

    name: str
    size: tuple[int, int] = (2, 2)
    stride: tuple[int, int] | None = None
    padding: str = "valid"

    kind: ClassVar[str] = "maxpool2d"
    formula: ClassVar[str] = r"y_{i,j}^{(k)} = \max_{u,v}\; x_{i s + u,\, j s + v}^{(k)}"
    pad_value: ClassVar[float] = -np.inf

    def __post_init__(self) -> None:
        self.size = _pair(self.size)
        self.stride = self.size if self.stride is None else _pair(self.stride)
        if self.padding not in ("valid", "same"):
            raise ValueError(f"{self.name}: padding must be 'valid' or 'same', not {self.padding!r}")

    @property
    def window(self) -> tuple[int, int]:  # type: ignore[override]
        return self.size

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self.windows(x).max(axis=(4, 5))

    def config(self) -> dict[str, Any]:
        return {**super().config(), "size": list(self.size)}


@dataclass(eq=False)
class ReLU(Layer):
    """Rectified linear unit: negative values become zero, positive ones pass unchanged."""

    name: str

    kind: ClassVar[str] = "relu"
    formula: ClassVar[str] = r"y = \max(0,\, x)"

    def forward(self, x: np.ndarray) -> np.ndarray:
        return np.maximum(x, 0, dtype=np.float32)

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
