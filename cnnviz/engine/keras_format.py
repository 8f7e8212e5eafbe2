"""Translate Keras layer configs (from a live Keras model or a TF.js `model.json`) into engine layers.

Pure Python and NumPy: the TF.js reader uses it without TensorFlow, and the Keras exporter shares it, so
both paths agree on what every Keras layer means.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .layers import Conv2D, Dense, Flatten, Layer, MaxPool2D, ReLU, Softmax
from .network import Network, WeightsError

# Layers that do nothing at inference time (augmentation, regularisation): skipped on export.
INFERENCE_NO_OPS = {
    "Dropout",
    "SpatialDropout2D",
    "GaussianNoise",
    "GaussianDropout",
    "InputLayer",
    "RandomFlip",
    "RandomRotation",
    "RandomTranslation",
    "RandomZoom",
    "RandomContrast",
    "RandomBrightness",
    "RandomCrop",
}


KERAS_LEAKY_ACTIVATION_SLOPE = 0.2
KERAS_LEAKY_LAYER_SLOPE = 0.3  # the LeakyReLU layer's default differs from the activation function's


class UnsupportedKerasLayer(ValueError):
    """A Keras layer the engine cannot rebuild; `what` names it once, with what about it is unsupported."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} is not supported by the engine")
        self.what = what


def _activation(name: str, activation: str | None) -> list[Layer]:
    """The engine layer(s) for a Keras activation, named as Keras would show them."""
    if activation in (None, "linear"):
        return []
    if activation == "relu":
        return [ReLU(name)]
    if activation == "leaky_relu":  # Keras' activation function uses slope 0.2
        return [ReLU(name, negative_slope=KERAS_LEAKY_ACTIVATION_SLOPE)]
    if activation == "softmax":
        return [Softmax(name)]
    raise ValueError(f"with activation {activation!r}")


def layers_from_keras(class_name: str, config: dict[str, Any], weights: list[np.ndarray]) -> list[Layer]:
    """Engine layers for one Keras layer (an activation folded into a layer becomes its own layer)."""
    try:
        return _engine_layers(class_name, config, weights)
    except ValueError as error:  # the reason alone: the layer is named once, here
        detail = f" {error}" if str(error) else ""
        raise UnsupportedKerasLayer(f"Layer {config['name']} ({class_name}{detail})") from None


def _engine_layers(class_name: str, config: dict[str, Any], weights: list[np.ndarray]) -> list[Layer]:
    name = config["name"]
    if class_name in INFERENCE_NO_OPS:
        return []
    if class_name == "Conv2D":
        if tuple(config.get("dilation_rate", (1, 1))) != (1, 1) or config.get("groups", 1) != 1:
            raise ValueError("with dilation or groups")
        kernel = weights[0]
        bias = weights[1] if config.get("use_bias", True) else np.zeros(kernel.shape[3], np.float32)
        conv = Conv2D(name, kernel, bias, stride=config.get("strides", 1), padding=config.get("padding", "valid"))
        return [conv, *_activation(f"{name}_{config.get('activation')}", config.get("activation"))]
    if class_name == "Dense":
        kernel = weights[0]
        bias = weights[1] if config.get("use_bias", True) else np.zeros(kernel.shape[1], np.float32)
        activation = config.get("activation")
        return [
            Dense(name, kernel, bias),
            *_activation("softmax" if activation == "softmax" else f"{name}_{activation}", activation),
        ]
    if class_name == "Activation":
        return _activation(name, config["activation"])
    if class_name == "ReLU":
        if config.get("max_value") is not None or config.get("threshold", 0):
            raise ValueError("with a cap or threshold")
        return [ReLU(name, negative_slope=float(config.get("negative_slope") or 0.0))]
    if class_name == "LeakyReLU":
        slope = config.get("negative_slope", config.get("alpha", KERAS_LEAKY_LAYER_SLOPE))
        return [ReLU(name, negative_slope=float(slope))]
    if class_name == "Softmax":
        return [Softmax(name)]
    if class_name in ("MaxPooling2D", "AveragePooling2D"):
        padding, mode = config.get("padding", "valid"), "max" if class_name == "MaxPooling2D" else "average"
        if mode == "average" and padding != "valid":
            raise ValueError(f"with {padding!r} padding, where Keras averages only the real pixels at the border")
        return [MaxPool2D(name, config.get("pool_size", 2), config.get("strides"), padding, mode)]
    if class_name == "Flatten":
        return [Flatten(name)]
    raise ValueError("")


def load_tfjs_layers_model(directory: str | os.PathLike, class_names: tuple[str, ...] = ()) -> Network:
    """Read a TF.js "layers-model" (`model.json` + `.bin` shards) into an engine Network, without TensorFlow."""
    directory = Path(directory)
    try:
        model = json.loads((directory / "model.json").read_text())
        topology = model["modelTopology"]
        layer_configs = topology.get("model_config", topology)["config"]
        layer_configs = layer_configs["layers"] if isinstance(layer_configs, dict) else layer_configs
        arrays = _read_tfjs_weights(directory, model["weightsManifest"])
    except (OSError, KeyError, ValueError, TypeError) as error:
        raise WeightsError(f"{directory} is not a readable TF.js layers model ({error})") from None
    input_shape = tuple(layer_configs[0]["config"]["batch_input_shape"][1:])
    layers: list[Layer] = []
    for entry in layer_configs:
        name = entry["config"]["name"]
        weights = [arrays[f"{name}/{key}"] for key in ("kernel", "bias") if f"{name}/{key}" in arrays]
        layers.extend(layers_from_keras(entry["class_name"], entry["config"], weights))
    return Network(layers, input_shape, class_names, {"source": f"TF.js layers model in {directory.name}"})


def _read_tfjs_weights(directory: Path, manifest: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    for group in manifest:
        buffer = b"".join((directory / part).read_bytes() for part in group["paths"])
        offset = 0
        for spec in group["weights"]:
            if spec.get("dtype", "float32") != "float32" or "quantization" in spec:
                raise ValueError(f"weight {spec['name']} is not plain float32")
            count = int(np.prod(spec["shape"]))
            arrays[spec["name"]] = np.frombuffer(buffer, "<f4", count, offset).reshape(spec["shape"]).copy()
            offset += 4 * count
    return arrays
