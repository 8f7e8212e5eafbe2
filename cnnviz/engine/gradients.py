"""Backpropagation in NumPy: which input pixels raise or lower a class score (saliency), no TensorFlow.

The forward pass runs in float64 here, so the gradient can be checked against finite differences.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .network import Network


def input_gradient(network: Network, image: np.ndarray, layer_name: str, unit: int) -> np.ndarray:
    """d output[unit] / d image for one image: (H, W, C), float64.

    `unit` indexes the layer's output flattened, so it is a class for a dense layer or a position of a map.
    """
    x = network._check_input(np.asarray(image)[np.newaxis], np.float64)
    inputs, output = [], x
    for layer, output in network.forward(x):
        inputs.append((layer, x))
        x = output
        if layer.name == layer_name:
            break
    else:
        raise KeyError(f"no layer {layer_name!r}")
    grad = np.zeros_like(output).reshape(1, -1)
    grad[0, unit] = 1.0
    grad = grad.reshape(output.shape)
    for layer, layer_input in reversed(inputs):
        if layer.name in network.silenced:
            grad = grad.copy()
            grad[..., list(network.silenced[layer.name])] = 0  # a silenced channel passes nothing back
        grad = layer.backward(layer_input, grad)
    return grad[0]


@dataclass(frozen=True)
class Saliency:
    """How much each input pixel moves one class's score (its logit, before softmax)."""

    class_index: int
    gradient: np.ndarray  # (H, W, C): d logit / d pixel value
    strength: np.ndarray  # (H, W): the signed sum over colour channels, for an overlay


def saliency(network: Network, image: np.ndarray, class_index: int | None = None) -> Saliency:
    """Gradient of a class's logit (default: the predicted class) with respect to the input image."""
    dense = [info.name for info in network.infos if info.kind == "dense"]
    if not dense:
        raise ValueError("saliency needs a network that ends in a dense layer")
    if class_index is None:
        class_index = network.trace(image).predicted_index
    gradient = input_gradient(network, image, dense[-1], class_index)
    return Saliency(class_index, gradient, gradient.sum(axis=-1))
