"""The backward explanations add up to the engine's gradients, cell by cell, for every layer kind."""

from __future__ import annotations

import numpy as np
import pytest

from cnnviz.engine import flatten_index
from cnnviz.engine.explain_backward import (
    conv_neuron_gradients,
    dense_gradient,
    dense_input_terms,
    input_gradient_step,
    kernel_gradient_sweep,
    output_gradient,
    pool_routing,
    relu_gate,
    unflatten_gradient,
    weight_update,
)
from cnnviz.engine.gradients import backward_pass, updated_weights
from tests.test_backprop import ARCHITECTURES

SMALL = ["same-stride-2", "one-channel-28", "overlapping-min-pool"]


@pytest.fixture(params=SMALL, scope="module")
def backward(request):
    network = ARCHITECTURES[request.param]()
    return backward_pass(network, np.random.default_rng(5).random(network.input_shape), 2)


def _layers(backward, kind):
    return [layer for layer in backward.network.layers if layer.kind == kind]


def test_the_kernel_gradient_is_the_sum_of_window_times_upstream(backward):
    for layer in _layers(backward, "conv2d"):
        grads = backward.weight_gradients[layer.name]
        for neuron in range(layer.filters):
            for channel in range(layer.kernel.shape[2]):
                sweep = kernel_gradient_sweep(backward, layer.name, neuron, channel)
                np.testing.assert_allclose(sweep.gradient, grads["kernel"][:, :, channel, neuron], atol=1e-12)
                assert sweep.bias_gradient == pytest.approx(grads["bias"][neuron], abs=1e-12)
                terms = sweep.weight_terms(1, 0)
                assert terms.total == pytest.approx(grads["kernel"][1, 0, channel, neuron], abs=1e-12)
                np.testing.assert_array_equal(terms.products, terms.factors * terms.upstream)


def test_the_input_gradient_is_a_full_convolution_with_the_flipped_kernel(backward):
    names = backward.network.layer_names
    for layer in _layers(backward, "conv2d"):
        column = "input" if layer is backward.network.layers[0] else names[names.index(layer.name) - 1]
        passed_back = layer.backward(
            backward.input_of(layer.name)[np.newaxis], backward.upstream_of(layer.name)[np.newaxis]
        )[0]
        rows, cols, channels = passed_back.shape
        for row, col, channel in [(0, 0, 0), (rows - 1, cols - 1, channels - 1), (rows // 2, cols // 3, 0)]:
            step = input_gradient_step(backward, layer.name, row, col, channel)
            assert step.gradient == pytest.approx(passed_back[row, col, channel], abs=1e-12)
            assert step.gradient == pytest.approx(backward.gradients[column][row, col, channel], abs=1e-12)
            np.testing.assert_array_equal(step.flipped_kernels[:, 0, 0], layer.kernel[-1, -1, channel])
            sources = step.sources.reshape(-1, 2)
            zeros = (sources == -1).all(axis=1)
            assert not step.upstream_windows.reshape(len(step.neuron_sums), -1)[:, zeros].any()


def test_a_conv_neurons_gradients_add_up_to_the_layers(backward):
    """The backward elastic view's numbers: each neuron's kernel and bias gradients, and the shares it passes
    back, which summed over the layer's neurons are the gradient the layer before receives."""
    names = backward.network.layer_names
    for layer in _layers(backward, "conv2d"):
        column = "input" if layer is backward.network.layers[0] else names[names.index(layer.name) - 1]
        shares = []
        for neuron in range(layer.filters):
            explained = conv_neuron_gradients(backward, layer.name, neuron)
            np.testing.assert_array_equal(explained.upstream, backward.upstream_of(layer.name)[..., neuron])
            for channel in range(layer.kernel.shape[2]):
                sweep = kernel_gradient_sweep(backward, layer.name, neuron, channel)
                np.testing.assert_allclose(explained.kernel_gradients[channel], sweep.gradient, atol=1e-12)
                np.testing.assert_allclose(explained.window_sums[channel], sweep.contributions.sum(axis=(2, 3)))
            assert explained.bias_gradient == pytest.approx(explained.upstream.sum(), abs=1e-12)
            shares.append(explained.passed_back)
        total = np.moveaxis(np.sum(shares, axis=0), 0, -1)
        np.testing.assert_allclose(total, backward.gradients[column], atol=1e-12)


def test_a_stride_two_convolution_sends_gradient_back_through_gaps():
    network = ARCHITECTURES["same-stride-2"]()
    backward = backward_pass(network, np.random.default_rng(1).random(network.input_shape), 0)
    step = input_gradient_step(backward, "conv_a", 4, 4, 0)
    # 5×5 kernel, stride 2: of the 25 cells under the flipped kernel only every other row and column is an output
    assert (step.sources[..., 0] >= 0).sum() == 9


def test_relu_lets_the_gradient_through_only_where_its_input_was_positive(backward):
    for layer in _layers(backward, "relu"):
        x = backward.input_of(layer.name)
        for index in [np.unravel_index(np.argmax(x), x.shape), np.unravel_index(np.argmin(x), x.shape)]:
            gate = relu_gate(backward, layer.name, *map(int, index))
            assert gate.slope == (1.0 if gate.x > 0 else layer.negative_slope)
            assert gate.gradient == pytest.approx(backward.gradients[_before(backward, layer.name)][index], abs=1e-12)


def _before(backward, name):
    names = list(backward.gradients)
    return names[names.index(name) - 1]


def test_pooling_routes_the_gradient_to_the_kept_cell(backward):
    for layer in _layers(backward, "maxpool2d"):
        passed_back = np.zeros(backward.input_of(layer.name).shape)
        rows, cols, channels = backward.upstream_of(layer.name).shape
        for row in range(rows):
            for col in range(cols):
                for channel in range(channels):
                    routing = pool_routing(backward, layer.name, row, col, channel)
                    top, left = routing.origin
                    for (u, v), share in np.ndenumerate(routing.routed):
                        if 0 <= top + u < passed_back.shape[0] and 0 <= left + v < passed_back.shape[1]:
                            passed_back[top + u, left + v, channel] += share
                    if layer.mode == "average":
                        assert routing.kept is None
                        assert routing.routed.sum() == pytest.approx(routing.upstream)
                    else:
                        assert routing.routed[routing.kept] == routing.upstream
                        assert np.count_nonzero(routing.routed) <= 1
        np.testing.assert_allclose(passed_back, backward.gradients[_before(backward, layer.name)], atol=1e-12)


def test_flatten_only_reshapes_the_gradient(backward):
    (layer,) = _layers(backward, "flatten")
    shape = backward.input_of(layer.name).shape
    for index in (0, 7, int(np.prod(shape)) - 1):
        step = unflatten_gradient(backward, layer.name, index)
        assert flatten_index(shape, *step.position) == index
        assert step.gradient == backward.gradients[_before(backward, layer.name)][step.position]


def test_the_output_gradient_is_p_minus_y(backward):
    result = output_gradient(backward)
    assert result.target.sum() == 1 and result.target[result.true_class] == 1
    np.testing.assert_allclose(result.gradient, result.probabilities - result.target, atol=1e-15)
    assert result.loss == pytest.approx(-np.log(result.probabilities[result.true_class]))
    assert result.gradient.sum() == pytest.approx(0, abs=1e-12)  # probabilities and the target both sum to one


def test_dense_gradients_are_inputs_times_the_units_gradient(backward):
    (layer,) = _layers(backward, "dense")
    grads = backward.weight_gradients[layer.name]
    for unit in range(layer.kernel.shape[1]):
        result = dense_gradient(backward, layer.name, unit)
        np.testing.assert_allclose(result.kernel_gradient, grads["kernel"][:, unit], atol=1e-15)
        assert result.bias_gradient == pytest.approx(grads["bias"][unit])
    terms = dense_input_terms(backward, layer.name, 3)
    assert terms.total == pytest.approx(backward.gradients[_before(backward, layer.name)][3], abs=1e-12)


def test_one_weights_update_is_the_one_a_step_makes(backward):
    stepped = updated_weights(backward, 0.05)
    for layer, new in zip(backward.network.layers, stepped.layers, strict=True):
        for key, array in layer.weights().items():
            gradient = backward.weight_gradients[layer.name][key]
            index = tuple(int(i) for i in np.unravel_index(np.argmax(np.abs(gradient)), array.shape))
            update = weight_update(backward, layer.name, key, index, 0.05)
            assert update.new_weight == new.weights()[key][index]
            assert update.change == pytest.approx(-0.05 * update.gradient, rel=1e-3, abs=1e-7)
            assert update.direction == ("down" if update.gradient > 0 else "up")
