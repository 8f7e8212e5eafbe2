"""'What if?' versions of a trained network: change one design decision and see what happens.

Each experiment builds a new Network that shares every untouched weight array (read-only) with the
original, so undoing it is simply using the original again.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from .layers import Conv2D, Layer, MaxPool2D, ReLU
from .network import Network, Trace

CLASSIC_KERNELS = {  # 3×3 image-processing kernels a learner may know, to drop into a convolution
    "vertical edge": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
    "horizontal edge": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
    "blur": [[1 / 9] * 3] * 3,
    "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
    "identity": [[0, 0, 0], [0, 1, 0], [0, 0, 0]],
}


@dataclass(frozen=True)
class WhatIf:
    """One or more changes to the network; the default changes nothing."""

    activation_slope: float | None = None  # None: each as trained; else all: 0 ReLU, 0.1 leaky ReLU, 1 identity
    pooling: str | None = None  # None: each pooling layer as trained; "max" / "average" / "min": all of them so
    silenced: frozenset[tuple[str, int]] = frozenset()  # (layer, channel) forced to zero
    kernels: tuple[tuple[str, int, int, tuple[float, ...]], ...] = field(default=())  # (layer, neuron, channel, 9 w)

    @property
    def changes_nothing(self) -> bool:
        return self == WhatIf()

    def with_kernel(self, layer: str, neuron: int, channel: int, weights: np.ndarray) -> WhatIf:
        """This experiment plus one 3×3 kernel slice replaced (a later edit of the same slice wins)."""
        kept = tuple(k for k in self.kernels if k[:3] != (layer, neuron, channel))
        values = tuple(float(w) for w in np.asarray(weights, float).ravel())
        return replace(self, kernels=(*kept, (layer, neuron, channel, values)))


SWITCHED_LAYERS = "what_if_switched"
"""Metadata key: the layers whose operation the experiment switched (their views mark it "(what if?)")."""


def apply(network: Network, what_if: WhatIf) -> Network:
    """The network with the experiment's changes; the original network is untouched."""
    if what_if.changes_nothing:
        return network
    layers: list[Layer] = [_changed(layer, what_if) for layer in network.layers]
    silenced: dict[str, set[int]] = {}
    for layer_name, channel in what_if.silenced:
        silenced.setdefault(layer_name, set()).add(channel)
    switched = [
        new.name
        for old, new in zip(network.layers, layers, strict=True)
        if new is not old and isinstance(old, ReLU | MaxPool2D)  # an operation switched, not a kernel edited
    ]
    metadata = {**network.metadata, "what_if": repr(what_if), SWITCHED_LAYERS: switched}
    return Network(layers, network.input_shape, network.class_names, metadata, silenced)


def _changed(layer: Layer, what_if: WhatIf) -> Layer:
    if isinstance(layer, ReLU) and what_if.activation_slope not in (None, layer.negative_slope):
        return ReLU(layer.name, what_if.activation_slope)
    if isinstance(layer, MaxPool2D) and what_if.pooling not in (None, layer.mode):
        return MaxPool2D(layer.name, layer.size, layer.stride, layer.padding, what_if.pooling)
    if isinstance(layer, Conv2D):
        edits = [k for k in what_if.kernels if k[0] == layer.name]
        if edits:
            kernel = layer.kernel.copy()
            for _, neuron, channel, weights in edits:
                kernel[:, :, channel, neuron] = np.reshape(weights, kernel.shape[:2])
            return Conv2D(layer.name, kernel, layer.bias, layer.stride, layer.padding)
    return layer


def pooling_modes(network: Network) -> tuple[str, ...]:
    """How the network's pooling layers pool, each mode once in order: ("max",), ("average",), ("max", "average")."""
    return tuple(dict.fromkeys(layer.mode for layer in network.layers if isinstance(layer, MaxPool2D)))


def activation_slopes(network: Network) -> tuple[float, ...]:
    """The negative slopes of the network's ReLU layers, each once in order: (0.0,) for plain ReLUs."""
    return tuple(dict.fromkeys(layer.negative_slope for layer in network.layers if isinstance(layer, ReLU)))


def without_no_ops(what_if: WhatIf, network: Network) -> WhatIf:
    """The experiment without a switch to what every such layer does already: "max" on a max-pooled network is
    the trained network, and must say so (no change), not "max pooling"; the same for the activation."""
    unchanged = {}
    if what_if.pooling is not None and pooling_modes(network) in ((), (what_if.pooling,)):
        unchanged["pooling"] = None
    if what_if.activation_slope is not None and activation_slopes(network) in ((), (what_if.activation_slope,)):
        unchanged["activation_slope"] = None
    return replace(what_if, **unchanged) if unchanged else what_if


@dataclass(frozen=True)
class Difference:
    """How one layer's output changed between two traces of the same image."""

    layer: str
    max_change: float  # largest absolute difference
    changed_channels: tuple[int, ...]


def compare(before: Trace, after: Trace, tolerance: float = 1e-6) -> list[Difference]:
    """Layer by layer, what an experiment changed (the traces must come from the same architecture)."""
    differences = []
    for name in before.names[1:]:
        delta = np.abs(after[name].astype(np.float64) - before[name])
        moved = delta > tolerance
        per_channel = moved.reshape(-1, moved.shape[-1]).any(axis=0)  # maps and vectors alike
        channels = tuple(int(c) for c in np.flatnonzero(per_channel))
        differences.append(Difference(name, float(delta.max(initial=0.0)), channels))
    return differences
