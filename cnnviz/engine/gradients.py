"""Backpropagation in NumPy, no TensorFlow: the loss of one image, the gradient at every column and for every
weight, one step of gradient descent, and saliency (which input pixels raise or lower a class score).

The forward pass runs in float64 here, so every gradient can be checked against finite differences.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np

from .layers import Layer, Softmax
from .network import INPUT_NAME, Network


@dataclass(frozen=True)
class _Forward:
    """A float64 forward pass that keeps what backpropagation needs: each layer with its input and output."""

    network: Network
    steps: tuple[tuple[Layer, np.ndarray, np.ndarray], ...]  # (layer, its input, its output), with batch axis

    @classmethod
    def run(cls, network: Network, image: np.ndarray, upto: str | None = None) -> _Forward:
        x = network._check_input(np.asarray(image)[np.newaxis], np.float64)
        steps = []
        for layer, output in network.forward(x):
            steps.append((layer, x, output))
            x = output
            if layer.name == upto:
                break
        else:
            if upto is not None:
                raise KeyError(f"no layer {upto!r}")
        return cls(network, tuple(steps))

    def backpropagate(
        self, grad: np.ndarray, weights: bool = False
    ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, np.ndarray]]]:
        """Carry ∂L/∂(last step's output) back to the input.

        Returns ∂L/∂(each column) by name — for a layer, its output as it computed it, so a silenced channel, which
        passes nothing on, gets zeros — and, if asked, ∂L/∂(each weight array) by layer.
        """
        columns: dict[str, np.ndarray] = {}
        weight_grads: dict[str, dict[str, np.ndarray]] = {}
        for layer, layer_input, _output in reversed(self.steps):
            if layer.name in self.network.silenced:
                grad = grad.copy()
                grad[..., list(self.network.silenced[layer.name])] = 0  # a silenced channel passes nothing back
            columns[layer.name] = grad
            if weights and layer.weights():
                weight_grads[layer.name] = layer.weight_gradients(layer_input, grad)
            grad = layer.backward(layer_input, grad)
        columns[INPUT_NAME] = grad
        return columns, weight_grads


def input_gradient(network: Network, image: np.ndarray, layer_name: str, unit: int) -> np.ndarray:
    """d output[unit] / d image for one image: (H, W, C), float64.

    `unit` indexes the layer's output flattened, so it is a class for a dense layer or a position of a map.
    """
    forward = _Forward.run(network, image, upto=layer_name)
    output = forward.steps[-1][2]
    grad = np.zeros(output.size)
    grad[unit] = 1.0
    columns, _ = forward.backpropagate(grad.reshape(output.shape))
    return columns[INPUT_NAME][0]


def _check_softmax_output(network: Network) -> None:
    if not isinstance(network.layers[-1], Softmax) or len(network.layers) < 2:
        raise ValueError("the loss needs a network whose last layer is a softmax after at least one other layer")


def cross_entropy(logits: np.ndarray, true_class: int) -> float:
    """−log p_true, computed from the logits (log-sum-exp) so a tiny probability never becomes log(0)."""
    logits = np.asarray(logits, np.float64)
    top = logits.max()
    return float(top + np.log(np.exp(logits - top).sum()) - logits[true_class])


@dataclass(frozen=True, eq=False)
class Backward:
    """The backward pass of one image for one true class: the loss, and how it changes with every number.

    `activations` are the forward values (float64) the gradients were computed from, so explanations built
    from both add up exactly. Keys are column names ('input' first), as in a Trace.
    """

    network: Network
    true_class: int
    loss: float
    activations: dict[str, np.ndarray]  # every column's value, no batch axis
    gradients: dict[str, np.ndarray]  # ∂L/∂(every column's value), same shapes
    weight_gradients: dict[str, dict[str, np.ndarray]]  # layer -> {'kernel': ∂L/∂kernel, 'bias': ∂L/∂bias}

    @property
    def probabilities(self) -> np.ndarray:
        return self.activations[self.network.layer_names[-1]]

    @property
    def logits_name(self) -> str:
        """The column holding the scores softmax turns into probabilities."""
        return self.network.infos[-2].name

    @cached_property
    def target(self) -> np.ndarray:
        """y: one for the true class, zero for every other class."""
        return np.eye(len(self.probabilities))[self.true_class]

    def input_of(self, name: str) -> np.ndarray:
        names = list(self.activations)
        return self.activations[names[names.index(name) - 1]]

    def upstream_of(self, name: str) -> np.ndarray:
        """∂L/∂(the named layer's output): the gradient that arrives at the layer from its right."""
        return self.gradients[name]


def backward_pass(network: Network, image: np.ndarray, true_class: int) -> Backward:
    """Cross-entropy loss of `image` for `true_class`, and its gradient at every column and for every weight.

    The network must end in a softmax. The gradient at the logits is p − y, computed directly (the same value
    as −y/p carried back through softmax, without dividing by a probability that may be tiny).
    """
    _check_softmax_output(network)
    classes = network.infos[-1].shape[0]
    if not 0 <= true_class < classes:
        raise IndexError(f"the true class must be between 0 and {classes - 1}, not {true_class}")
    full = _Forward.run(network, image)
    softmax, logits_in, probabilities = full.steps[-1]
    forward = _Forward(network, full.steps[:-1])  # up to the logits
    target = np.eye(classes)[true_class]
    columns, weight_grads = forward.backpropagate((probabilities - target), weights=True)
    activations = {INPUT_NAME: forward.steps[0][1][0]}
    activations.update((layer.name, output[0]) for layer, _input, output in forward.steps)
    activations[softmax.name] = probabilities[0]
    gradients = {name: grad[0] for name, grad in reversed(columns.items())}
    gradients[softmax.name] = -target / probabilities[0]  # ∂(−log p_t)/∂p: only the true class matters
    for arrays in (activations, gradients, *weight_grads.values()):
        for array in arrays.values():
            array.flags.writeable = False  # explanations share these arrays: nobody may change them
    return Backward(
        network=network,
        true_class=true_class,
        loss=cross_entropy(logits_in[0], true_class),
        activations=activations,
        gradients=gradients,
        weight_gradients=weight_grads,
    )


def updated_weights(backward: Backward, learning_rate: float) -> Network:
    """The network after one step of gradient descent, w ← w − η·∂L/∂w for every weight; the original is untouched.

    New arrays throughout (the shared network's are read-only); silenced channels and metadata carry over.
    """
    if not learning_rate > 0:
        raise ValueError(f"the learning rate must be positive, not {learning_rate!r}")
    network = backward.network
    layers = []
    for layer in network.layers:
        grads = backward.weight_gradients.get(layer.name)
        if grads:
            stepped = {key: array - learning_rate * grads[key] for key, array in layer.weights().items()}
            layer = replace(layer, **stepped)
        layers.append(layer)
    metadata = {**network.metadata, "training_steps": int(network.metadata.get("training_steps", 0)) + 1}
    return Network(layers, network.input_shape, network.class_names, metadata, network.silenced)


@dataclass(frozen=True, eq=False)
class Step:
    """One step of gradient descent on one image: the new network and the loss before and after."""

    before: Backward
    network: Network
    learning_rate: float
    loss_after: float

    @property
    def loss_before(self) -> float:
        return self.before.loss


def take_step(before: Backward, learning_rate: float) -> Step:
    """Move every weight against its gradient once, and measure the loss of the same image again."""
    stepped = updated_weights(before, learning_rate)
    image = before.activations[INPUT_NAME]
    return Step(before, stepped, learning_rate, image_loss(stepped, image, before.true_class))


def image_loss(network: Network, image: np.ndarray, true_class: int) -> float:
    """Cross-entropy of one image for its true class (float64 forward pass)."""
    _check_softmax_output(network)
    steps = _Forward.run(network, image).steps
    _softmax, logits, _probabilities = steps[-1]
    return cross_entropy(logits[0], true_class)


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
