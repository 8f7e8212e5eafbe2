"""Keras model → engine Network → `.npz`: the one way trained weights reach the NumPy engine."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cnnviz.engine import Layer, Network, layers_from_keras


def network_from_keras(model: Any, class_names: Sequence[str] = (), metadata: dict[str, Any] | None = None) -> Network:
    """Rebuild a built Keras Sequential model as an engine Network with the same weights."""
    layers: list[Layer] = []
    for keras_layer in model.layers:
        layers.extend(
            layers_from_keras(type(keras_layer).__name__, keras_layer.get_config(), keras_layer.get_weights())
        )
    return Network(layers, tuple(model.input_shape[1:]), class_names, metadata)


def export_keras(
    model: Any, path: str | os.PathLike, class_names: Sequence[str] = (), metadata: dict[str, Any] | None = None
) -> Path:
    """Write a Keras model's weights and architecture as a cnnviz `.npz` file."""
    return network_from_keras(model, class_names, metadata).save(path)
