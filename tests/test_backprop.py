"""Backpropagation of the cross-entropy loss, checked against finite differences, and gradient-descent steps.

Every gradient the engine reports — at each column and for each kernel and bias — is compared with the change
of the loss when that one number is nudged, for several small architectures that together use every layer kind
and variant (stride, 'same' and explicit padding, leaky/no activation, max/min/average pooling, a silenced channel).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from cnnviz.engine import Conv2D, Dense, Flatten, MaxPool2D, Network, ReLU, Softmax, tiny_vgg
from cnnviz.engine.gradients import backward_pass, cross_entropy, image_loss, take_step, updated_weights

NUDGE = 1e-6
RELATIVE_ERROR = 1e-3
SAMPLES = 6  # random entries per array, besides the largest; 2 for the full-size Tiny VGG, to stay quick


def _conv(rng, name, cin, cout, size, stride=1, padding="valid"):
    return Conv2D(name, rng.normal(0, 0.5, (size, size, cin, cout)), rng.normal(0, 0.2, cout), stride, padding)


def _classifier(rng, layers, input_shape, classes=5, silenced=None):
    """Flatten, dense and softmax after `layers`, sized from what the layers produce."""
    flat = int(np.prod(Network(layers, input_shape, ()).infos[-1].shape))
    dense = Dense("logits", rng.normal(0, 0.3, (flat, classes)), rng.normal(0, 0.1, classes))
    layers = [*layers, Flatten("flatten"), dense, Softmax("softmax")]
    return Network(layers, input_shape, tuple(f"class {k}" for k in range(classes)), silenced=silenced)


def same_stride_two() -> Network:
    """5×5 kernels with 'same' padding and stride 2, a leaky ReLU, and 'same' max pooling."""
    rng = np.random.default_rng(11)
    layers = [
        _conv(rng, "conv_a", 3, 4, 5, 2, "same"),
        ReLU("relu_a", 0.1),
        _conv(rng, "conv_b", 4, 3, 3),
        ReLU("relu_b"),
        MaxPool2D("pool", 2, 2, "same"),
    ]
    return _classifier(rng, layers, (11, 9, 3))


def one_channel_28() -> Network:
    """A grey 28 × 28 input (digit-sized), max then average pooling."""
    rng = np.random.default_rng(12)
    layers = [
        _conv(rng, "conv_a", 1, 3, 3),
        ReLU("relu_a"),
        MaxPool2D("pool_a", 2),
        _conv(rng, "conv_b", 3, 4, 3),
        ReLU("relu_b"),
        MaxPool2D("pool_b", 2, mode="average"),
    ]
    return _classifier(rng, layers, (28, 28, 1), classes=10)


def overlapping_min_pool() -> Network:
    """Stride-2 convolution, no activation, overlapping 3×3/2 min pooling, and a silenced channel."""
    rng = np.random.default_rng(13)
    layers = [
        _conv(rng, "conv_a", 3, 4, 3, 2),
        ReLU("identity", 1.0),
        _conv(rng, "conv_b", 4, 4, 2),
        ReLU("relu_b", 0.2),
        MaxPool2D("pool", 3, 2, mode="min"),
    ]
    return _classifier(rng, layers, (15, 13, 3), classes=4, silenced={"conv_b": [1]})


def explicit_padding() -> Network:
    """PyTorch-style explicit padding: a ring of zeros with stride 2 on an even size, uneven pads, padded pooling."""
    rng = np.random.default_rng(14)
    layers = [
        _conv(rng, "conv_a", 3, 4, 3, 2, ((1, 1), (1, 1))),
        ReLU("relu_a"),
        _conv(rng, "conv_b", 4, 3, 3, 1, ((2, 0), (0, 1))),
        MaxPool2D("pool", 3, 2, ((1, 1), (1, 1))),
    ]
    return _classifier(rng, layers, (12, 10, 3))


ARCHITECTURES = {
    "same-stride-2": same_stride_two,
    "explicit-padding": explicit_padding,
    "one-channel-28": one_channel_28,
    "overlapping-min-pool": overlapping_min_pool,
    "tiny-vgg": lambda: tiny_vgg(seed=5),
}


@pytest.fixture(params=list(ARCHITECTURES), scope="module")
def case(request):
    network = ARCHITECTURES[request.param]()
    image = np.random.default_rng(4).random(network.input_shape)
    true_class = 1
    return network, image, true_class, backward_pass(network, image, true_class)


def _samples(network: Network) -> int:
    return 2 if network.parameter_count > 10_000 else SAMPLES


def _silenced(network: Network, layer_name: str, x: np.ndarray) -> np.ndarray:
    """What the network does after a layer: zero its silenced channels."""
    if layer_name in network.silenced:
        x = x.copy()
        x[..., list(network.silenced[layer_name])] = 0
    return x


def _loss_with(network: Network, backward, column: str, nudge) -> float:
    """−log p_true after `nudge` changed one column's value (a layer's output before any silencing).

    Only the layers from that column on run again: the earlier ones are taken from the backward pass.
    """
    names = [info.name for info in network.infos]
    position = names.index(column)  # the input is column 0, the output of layer k is column k + 1
    if position == 0:
        x = nudge(backward.activations[column][np.newaxis].copy())
    else:
        output = network.layers[position - 1].forward(backward.activations[names[position - 1]][np.newaxis])
        x = _silenced(network, column, nudge(output.copy()))
    for layer in network.layers[position:]:
        x = _silenced(network, layer.name, layer.forward(x))
    return float(-np.log(x[0, backward.true_class]))


def _nudge(index: tuple[int, ...], by: float):
    """A function that adds `by` to one entry of a batch of one."""

    def nudge(x: np.ndarray) -> np.ndarray:
        x[(0, *index)] += by
        return x

    return nudge


def _sampled(gradient: np.ndarray, value: np.ndarray, rng, samples: int) -> list[tuple[int, ...]]:
    """The largest entry and a few random ones, skipping exact zeros of the value: a ReLU's zeros tie in pooling,
    where the loss has a kink and a two-sided difference means nothing."""
    usable = np.flatnonzero(value.reshape(-1) != 0)
    picks = {int(usable[np.argmax(np.abs(gradient.reshape(-1)[usable]))])}
    picks.update(int(i) for i in rng.choice(usable, min(samples, len(usable)), replace=False))
    return [np.unravel_index(i, gradient.shape) for i in sorted(picks)]


def _assert_close(analytic: float, numeric: float, where) -> None:
    assert abs(analytic - numeric) <= RELATIVE_ERROR * max(abs(numeric), 1e-6), (where, analytic, numeric)


def test_the_loss_is_minus_log_of_the_true_class_probability(case):
    network, image, true_class, backward = case
    probabilities = network.trace(image).probabilities
    assert backward.loss == pytest.approx(-np.log(probabilities[true_class]), rel=1e-5, abs=1e-6)  # trace: float32
    assert backward.loss == pytest.approx(image_loss(network, image, true_class), rel=1e-12)
    np.testing.assert_allclose(backward.gradients[backward.logits_name], backward.probabilities - backward.target)


def test_every_column_gradient_matches_finite_differences(case):
    network, _image, _true_class, backward = case
    rng = np.random.default_rng(0)
    assert list(backward.gradients) == [info.name for info in network.infos]
    for column, gradient in backward.gradients.items():
        assert gradient.shape == network.info(column).shape
        value = backward.activations[column]
        for index in _sampled(gradient, value, rng, _samples(network)):
            by = NUDGE * min(1.0, abs(value[index]))  # a tiny probability needs a tinier nudge
            plus = _loss_with(network, backward, column, _nudge(index, by))
            minus = _loss_with(network, backward, column, _nudge(index, -by))
            _assert_close(gradient[index], (plus - minus) / (2 * by), (column, index))


def _with_weight(network: Network, layer_name: str, key: str, index: tuple[int, ...], by: float) -> Network:
    """The network with one weight nudged. The engine keeps float32 weights, which would round a 1e-6 nudge
    away, so the nudged layer holds float64 arrays (set after construction, before its first use)."""
    layers = []
    for layer in network.layers:
        if layer.name == layer_name:
            arrays = {name: np.array(array, np.float64) for name, array in layer.weights().items()}
            arrays[key][index] += by
            layer = replace(layer)
            for name, array in arrays.items():
                setattr(layer, name, array)
        layers.append(layer)
    return Network(layers, network.input_shape, network.class_names, silenced=network.silenced)


def test_every_weight_gradient_matches_finite_differences(case):
    network, image, true_class, backward = case
    rng = np.random.default_rng(1)
    trainable = [layer for layer in network.layers if layer.weights()]
    assert set(backward.weight_gradients) == {layer.name for layer in trainable}
    for layer in trainable:
        for key, weights in layer.weights().items():
            gradient = backward.weight_gradients[layer.name][key]
            assert gradient.shape == weights.shape
            for index in _sampled(gradient, np.ones_like(gradient), rng, _samples(network)):
                plus = image_loss(_with_weight(network, layer.name, key, index, NUDGE), image, true_class)
                minus = image_loss(_with_weight(network, layer.name, key, index, -NUDGE), image, true_class)
                _assert_close(gradient[index], (plus - minus) / (2 * NUDGE), (layer.name, key, index))


def test_a_silenced_channel_gets_no_gradient():
    network = overlapping_min_pool()
    backward = backward_pass(network, np.random.default_rng(2).random(network.input_shape), 0)
    assert not backward.gradients["conv_b"][..., 1].any()
    assert not backward.weight_gradients["conv_b"]["kernel"][..., 1].any()
    assert backward.weight_gradients["conv_b"]["bias"][1] == 0


def test_cross_entropy_survives_a_hopeless_prediction():
    assert cross_entropy(np.array([1000.0, 0.0, -1000.0]), 2) == pytest.approx(2000.0)


@pytest.mark.parametrize("architecture", list(ARCHITECTURES))
def test_a_small_step_lowers_the_loss_and_leaves_the_network_alone(architecture):
    network = ARCHITECTURES[architecture]()
    image = np.random.default_rng(6).random(network.input_shape)
    before = {(layer.name, key): array.copy() for layer in network.layers for key, array in layer.weights().items()}
    step = take_step(backward_pass(network, image, 2), learning_rate=1e-3)
    assert step.loss_after < step.loss_before
    assert step.loss_before == pytest.approx(image_loss(network, image, 2))
    assert step.loss_after == pytest.approx(image_loss(step.network, image, 2))
    for layer in network.layers:
        for key, array in layer.weights().items():
            np.testing.assert_array_equal(array, before[layer.name, key])
            assert not array.flags.writeable
    assert step.network.metadata["training_steps"] == 1
    assert step.network.silenced == network.silenced


def test_a_step_moves_each_weight_against_its_gradient():
    network = same_stride_two()
    backward = backward_pass(network, np.random.default_rng(7).random(network.input_shape), 0)
    stepped = updated_weights(backward, 0.05)
    for old, new in zip(network.layers, stepped.layers, strict=True):
        for key, array in old.weights().items():
            expected = (array - 0.05 * backward.weight_gradients[old.name][key]).astype(np.float32)
            np.testing.assert_array_equal(new.weights()[key], expected)
    with pytest.raises(ValueError, match="positive"):
        updated_weights(backward, 0.0)


def test_many_steps_overfit_one_image():
    network = tiny_vgg(seed=9)
    image = np.random.default_rng(8).random(network.input_shape)
    losses = []
    for _ in range(5):
        step = take_step(backward_pass(network, image, 4), learning_rate=0.01)
        network = step.network
        losses.append(step.loss_after)
    assert losses == sorted(losses, reverse=True)
    assert network.trace(image).predicted_index == 4


def test_the_loss_needs_a_softmax_and_a_real_class():
    network = same_stride_two()
    image = np.zeros(network.input_shape)
    with pytest.raises(IndexError, match="between 0 and 4"):
        backward_pass(network, image, 5)
    headless = Network(network.layers[:-1], network.input_shape, ())
    with pytest.raises(ValueError, match="softmax"):
        backward_pass(headless, image, 0)
