"""The Tiny VGG architecture of CNN Explainer, built directly in the engine (random weights).

Used for the untrained checkpoint, for benchmarks and tests that need the real shapes without a trained file.
"""

from __future__ import annotations

import numpy as np

from .layers import Conv2D, Dense, Flatten, Layer, MaxPool2D, ReLU, Softmax
from .network import Network

TINY_VGG_CLASSES = (
    "lifeboat",
    "ladybug",
    "pizza",
    "bell pepper",
    "school bus",
    "koala",
    "espresso",
    "red panda",
    "orange",
    "sport car",
)
INPUT_SHAPE = (64, 64, 3)


def _glorot(rng: np.random.Generator, shape: tuple[int, ...], fan_in: int, fan_out: int) -> np.ndarray:
    """Keras' default initialiser, so an 'untrained' network looks like one Keras would start from."""
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, shape).astype(np.float32)


def tiny_vgg(seed: int = 0, filters: int = 10, classes: tuple[str, ...] = TINY_VGG_CLASSES) -> Network:
    """Tiny VGG with Glorot-uniform kernels and zero biases: 2 × (conv, relu, conv, relu, pool), dense, softmax."""
    rng = np.random.default_rng(seed)
    layers: list[Layer] = []
    channels = INPUT_SHAPE[2]
    for block in (1, 2):
        for position in (1, 2):
            kernel = _glorot(rng, (3, 3, channels, filters), 9 * channels, 9 * filters)
            layers += [
                Conv2D(f"conv_{block}_{position}", kernel, np.zeros(filters, np.float32)),
                ReLU(f"relu_{block}_{position}"),
            ]
            channels = filters
        layers.append(MaxPool2D(f"max_pool_{block}", 2, 2))
    flat = 13 * 13 * filters
    layers += [
        Flatten("flatten"),
        Dense("output", _glorot(rng, (flat, len(classes)), flat, len(classes)), np.zeros(len(classes), np.float32)),
        Softmax("softmax"),
    ]
    return Network(layers, INPUT_SHAPE, classes, {"normalisation": "pixel / 255", "weights": "random"})
