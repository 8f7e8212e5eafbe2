"""Backpropagation against finite differences, and 'what if?' networks against direct engine computations."""

from __future__ import annotations

import numpy as np
import pytest

from cnnviz.engine import Conv2D, Network, tiny_vgg
from cnnviz.engine.experiments import CLASSIC_KERNELS, WhatIf, apply, compare
from cnnviz.engine.gradients import input_gradient, saliency
from cnnviz.engine.layers import MaxPool2D, ReLU

NETWORK = tiny_vgg(seed=8)
IMAGE = np.random.default_rng(3).random((64, 64, 3))


def logit(network: Network, image: np.ndarray, unit: int) -> float:
    x = np.asarray(image, np.float64)[np.newaxis]
    for layer, output in network.forward(x):
        if layer.name == "output":
            return float(output[0, unit])
    raise AssertionError("no output layer")


@pytest.mark.parametrize(
    "what_if",
    [
        WhatIf(),
        WhatIf(activation_slope=0.1),
        WhatIf(pooling="average"),
        WhatIf(pooling="min"),
        WhatIf(silenced=frozenset({("relu_1_2", 3)})),
    ],
)
def test_saliency_agrees_with_finite_differences(what_if):
    network = apply(NETWORK, what_if)
    result = saliency(network, IMAGE)
    rng = np.random.default_rng(0)
    step = 1e-6
    for _ in range(12):
        r, c, ch = int(rng.integers(64)), int(rng.integers(64)), int(rng.integers(3))
        plus, minus = IMAGE.copy(), IMAGE.copy()
        plus[r, c, ch] += step
        minus[r, c, ch] -= step
        numeric = (logit(network, plus, result.class_index) - logit(network, minus, result.class_index)) / (2 * step)
        analytic = result.gradient[r, c, ch]
        assert abs(analytic - numeric) <= 1e-3 * max(abs(numeric), 1e-3), (r, c, ch, analytic, numeric)
    assert result.strength.shape == (64, 64)


def test_gradient_through_softmax_and_same_padding_stride():
    from tests.test_engine import random_network  # a small CNN with 'same' padding and stride 2

    network = random_network(3, "same", 2, "same")
    image = np.random.default_rng(1).random(network.input_shape)
    gradient = input_gradient(network, image, "s", 2)
    x = np.asarray(image, np.float64)
    step = 1e-6
    for r, c, ch in [(0, 0, 0), (6, 5, 1), (12, 10, 2)]:
        plus, minus = x.copy(), x.copy()
        plus[r, c, ch] += step
        minus[r, c, ch] -= step
        numeric = (_final(network, plus)[2] - _final(network, minus)[2]) / (2 * step)
        assert abs(gradient[r, c, ch] - numeric) <= 1e-3 * max(abs(numeric), 1e-4)


def _final(network, image):
    *_, (_layer, output) = network.forward(np.asarray(image, np.float64)[np.newaxis])
    return output[0]


def test_average_pooling_over_padding_counts_it_as_zeros():
    """'What if average?' on a padded max pooling ('same' or PyTorch's explicit padding) gave -inf, then NaN."""
    from tests.test_engine import random_network

    for padding in ("same", ((1, 0), (0, 1))):
        network = apply(random_network(3, "same", 2, padding), WhatIf(pooling="average"))
        image = np.random.default_rng(2).random(network.input_shape)
        trace = network.trace(image)
        assert np.isfinite(trace.probabilities).all()
        pool = network.layer("p1")
        source = trace.input_of("p1")
        (top, bottom), (left, right) = pool.pad_amounts(*source.shape[:2])
        padded = np.pad(source, ((top, bottom), (left, right), (0, 0)))
        rows, cols = ((n - 1) * s for n, s in zip(trace["p1"].shape[:2], pool.stride, strict=True))
        assert rows + 2 > top + source.shape[0] or cols + 2 > left + source.shape[1]  # over the padding
        expected = padded[rows : rows + 2, cols : cols + 2].mean(axis=(0, 1))
        np.testing.assert_allclose(trace["p1"][-1, -1], expected, rtol=1e-5)
        gradient = input_gradient(network, image, "s", 1)
        x, step = np.asarray(image, np.float64), 1e-6
        for r, c, ch in [(0, 0, 0), (12, 10, 2)]:
            plus, minus = x.copy(), x.copy()
            plus[r, c, ch] += step
            minus[r, c, ch] -= step
            numeric = (_final(network, plus)[1] - _final(network, minus)[1]) / (2 * step)
            assert abs(gradient[r, c, ch] - numeric) <= 1e-3 * max(abs(numeric), 1e-4)


def test_no_experiment_is_the_original_network():
    assert apply(NETWORK, WhatIf()) is NETWORK


def test_identity_activation_equals_a_network_without_relu():
    changed = apply(NETWORK, WhatIf(activation_slope=1.0))
    trace = changed.trace(IMAGE)
    for layer in changed.layers:
        if isinstance(layer, ReLU):
            np.testing.assert_array_equal(trace[layer.name], trace.input_of(layer.name))
    assert NETWORK.layer("relu_1_1").negative_slope == 0.0  # the original is untouched


@pytest.mark.parametrize("slope", [-0.1, 1.5, float("nan")])
def test_activation_slopes_stay_between_relu_and_identity(slope):
    """Outside [0, 1] the layer would no longer compute the max(s·x, x) its formula view shows."""
    with pytest.raises(ValueError, match="between 0 and 1"):
        ReLU("relu_x", slope)


@pytest.mark.parametrize("mode", ["min", "average"])
def test_pooling_modes_compute_what_they_say(mode):
    trace = apply(NETWORK, WhatIf(pooling=mode)).trace(IMAGE)
    source = trace.input_of("max_pool_1")
    blocks = source.reshape(30, 2, 30, 2, 10)
    expected = blocks.min(axis=(1, 3)) if mode == "min" else blocks.mean(axis=(1, 3))
    np.testing.assert_allclose(trace["max_pool_1"], expected, rtol=1e-6)


def test_silenced_channel_is_zero_and_changes_only_what_follows():
    before = NETWORK.trace(IMAGE)
    after = apply(NETWORK, WhatIf(silenced=frozenset({("conv_2_1", 4)}))).trace(IMAGE)
    np.testing.assert_array_equal(after["conv_2_1"][..., 4], 0)
    changes = {d.layer: d for d in compare(before, after)}
    assert changes["conv_1_2"].max_change == 0 and changes["max_pool_1"].max_change == 0
    assert changes["conv_2_1"].changed_channels == (4,)
    assert changes["relu_2_1"].changed_channels in ((4,), ())  # relu may already have been zero there
    assert changes["conv_2_2"].max_change > 0


def test_kernel_edit_equals_a_direct_convolution():
    weights = np.array(CLASSIC_KERNELS["vertical edge"], float)
    what_if = WhatIf().with_kernel("conv_1_1", 2, 0, weights).with_kernel("conv_1_1", 2, 0, weights * 2)
    assert len(what_if.kernels) == 1  # editing the same slice again replaces the edit
    changed = apply(NETWORK, what_if)
    layer: Conv2D = changed.layer("conv_1_1")
    np.testing.assert_array_equal(layer.kernel[:, :, 0, 2], weights * 2)
    kernel = NETWORK.layer("conv_1_1").kernel.copy()
    kernel[:, :, 0, 2] = weights * 2
    direct = Conv2D("direct", kernel, NETWORK.layer("conv_1_1").bias).forward(IMAGE[np.newaxis].astype(np.float32))
    np.testing.assert_allclose(changed.trace(IMAGE)["conv_1_1"], direct[0], rtol=1e-5, atol=1e-5)
    assert not np.array_equal(NETWORK.layer("conv_1_1").kernel[:, :, 0, 2], weights * 2)


def test_experiment_survives_save_and_load(tmp_path):
    changed = apply(NETWORK, WhatIf(activation_slope=0.1, pooling="average"))
    loaded = Network.load(changed.save(tmp_path / "what_if.npz"))
    assert isinstance(loaded.layer("max_pool_2"), MaxPool2D) and loaded.layer("max_pool_2").mode == "average"
    np.testing.assert_allclose(loaded.trace(IMAGE).probabilities, changed.trace(IMAGE).probabilities, rtol=1e-6)
