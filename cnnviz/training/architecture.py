"""The small family of CNNs `cnnviz train` builds: conv blocks of (conv, ReLU) × n then a pool, a dense output.

The default is exactly CNN Explainer's Tiny VGG. The same description builds a Keras model (for training) or
an engine network with random weights (for tests and the untrained checkpoint), with the same layer names.
No TensorFlow import at module level: the engine side works without it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cnnviz.engine import Conv2D, Dense, Flatten, Layer, MaxPool2D, Network, ReLU, Softmax
from cnnviz.engine.tiny_vgg import _glorot
from cnnviz.errors import CnnvizError

PADDINGS = ("valid", "same")
POOLINGS = ("max", "average")
LIMITS = {"conv_blocks": (1, 4), "convs_per_block": (1, 3), "filters": (1, 64), "kernel_size": (1, 7)}


class ArchitectureError(CnnvizError, ValueError):
    """An architecture that cannot be built for this input: the message says which option to change."""


@dataclass(frozen=True)
class Architecture:
    """Every field is a `cnnviz train --option`; the defaults are Tiny VGG."""

    conv_blocks: int = field(default=2, metadata={"help": "blocks of convolutions, each ending in a 2×2 pool"})
    convs_per_block: int = field(default=2, metadata={"help": "convolution + ReLU pairs per block"})
    filters: int = field(default=10, metadata={"help": "kernels (output channels) of every convolution"})
    kernel_size: int = field(default=3, metadata={"help": "kernel height and width of every convolution"})
    padding: str = field(
        default="valid", metadata={"help": "'valid' (shrinks) or 'same' (keeps the size)", "choices": PADDINGS}
    )
    pooling: str = field(default="max", metadata={"help": "pooling at the end of each block", "choices": POOLINGS})

    def __post_init__(self) -> None:
        for name, (low, high) in LIMITS.items():
            if not low <= getattr(self, name) <= high:
                option = name.replace("_", "-")
                raise ArchitectureError(f"--{option} must be between {low} and {high}, not {getattr(self, name)}.")
        if self.padding not in PADDINGS:
            raise ArchitectureError(f"--padding must be one of {', '.join(PADDINGS)}, not {self.padding!r}.")
        if self.pooling not in POOLINGS:
            raise ArchitectureError(f"--pooling must be one of {', '.join(POOLINGS)}, not {self.pooling!r}.")

    @property
    def pool_name(self) -> str:
        return "max_pool" if self.pooling == "max" else "avg_pool"

    def describe(self) -> str:
        """One line for people, e.g. "2 blocks × 2 convolutions, 10 filters of 3×3, 'valid' padding, max pooling"."""
        return (
            f"{self.conv_blocks} block{'s' * (self.conv_blocks > 1)} × {self.convs_per_block} "
            f"convolution{'s' * (self.convs_per_block > 1)}, {self.filters} filters of "
            f"{self.kernel_size}×{self.kernel_size}, '{self.padding}' padding, {self.pooling} pooling"
        )

    def final_size(self, input_size: int) -> int:
        """Rows (= columns) left before the flatten; raises ArchitectureError if the image shrinks to nothing."""
        size = input_size
        for block in range(1, self.conv_blocks + 1):
            for _ in range(self.convs_per_block):
                size = size if self.padding == "same" else size - self.kernel_size + 1
                if size < 1:
                    break
            size //= 2
            if size < 1:
                raise ArchitectureError(
                    f"A {input_size}×{input_size} input shrinks to nothing in block {block} of {self.describe()}; "
                    "use fewer --conv-blocks or --convs-per-block, a smaller --kernel-size, --padding same, "
                    "or a larger --input-size."
                )
        return size

    def _layer_names(self) -> list[tuple[str, str]]:
        names = []
        for block in range(1, self.conv_blocks + 1):
            for position in range(1, self.convs_per_block + 1):
                names += [("conv", f"conv_{block}_{position}"), ("relu", f"relu_{block}_{position}")]
            names.append(("pool", f"{self.pool_name}_{block}"))
        return names

    def keras_model(self, input_shape: tuple[int, int, int], class_count: int) -> Any:
        """The Keras Sequential model to train (imports Keras, so only the training command calls it)."""
        import keras

        self.final_size(input_shape[0])
        pool = keras.layers.MaxPooling2D if self.pooling == "max" else keras.layers.AveragePooling2D
        layers: list[Any] = [keras.Input(input_shape)]
        for kind, name in self._layer_names():
            if kind == "conv":
                layers.append(keras.layers.Conv2D(self.filters, self.kernel_size, padding=self.padding, name=name))
            elif kind == "relu":
                layers.append(keras.layers.Activation("relu", name=name))
            else:
                layers.append(pool(2, name=name))
        layers += [
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(class_count, activation="softmax", name="output"),
        ]
        return keras.Sequential(layers, name="tiny_vgg" if self == Architecture() else "cnnviz_cnn")

    def engine_network(self, input_shape: tuple[int, int, int], class_names: tuple[str, ...], seed: int = 0) -> Network:
        """The same architecture in the engine, with Glorot-uniform kernels and zero biases (no TensorFlow)."""
        self.final_size(input_shape[0])
        rng = np.random.default_rng(seed)
        layers: list[Layer] = []
        channels, size = input_shape[2], input_shape[0]
        for kind, name in self._layer_names():
            if kind == "conv":
                fan_in, fan_out = self.kernel_size**2 * channels, self.kernel_size**2 * self.filters
                kernel = _glorot(rng, (self.kernel_size, self.kernel_size, channels, self.filters), fan_in, fan_out)
                layers.append(Conv2D(name, kernel, np.zeros(self.filters, np.float32), padding=self.padding))
                channels = self.filters
            elif kind == "relu":
                layers.append(ReLU(name))
            else:
                layers.append(MaxPool2D(name, 2, 2, mode=self.pooling))
        size = self.final_size(input_shape[0])
        flat, classes = size * size * channels, len(class_names)
        layers += [
            Flatten("flatten"),
            Dense("output", _glorot(rng, (flat, classes), flat, classes), np.zeros(classes, np.float32)),
            Softmax("softmax"),
        ]
        return Network(layers, input_shape, class_names, {"normalisation": "pixel / 255", "weights": "random"})
