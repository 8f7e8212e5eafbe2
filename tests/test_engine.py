"""The NumPy engine on its own: shapes, the weights file, and explanations that add up to the trace."""

from __future__ import annotations

import numpy as np
import pytest

from cnnviz.engine import (
    Conv2D,
    Dense,
    Flatten,
    MaxPool2D,
    Network,
    ReLU,
    Softmax,
    WeightsError,
    conv_channel_results,
    conv_step,
    conv_sweep,
    dense_step,
    flatten_index,
    flatten_position,
    flatten_source_shape,
    load_tfjs_layers_model,
    pool_step,
    relu_step,
    softmax_terms,
    tiny_vgg,
)
from cnnviz.engine.layers import Padding


def random_network(seed: int, padding: Padding, stride: int, pool_padding: Padding = "valid") -> Network:
    """A small CNN of every layer type, with odd sizes so padding and stride edge cases show up."""
    rng = np.random.default_rng(seed)

    def conv(name, cin, cout, size):
        return Conv2D(name, rng.normal(0, 0.5, (size, size, cin, cout)), rng.normal(0, 0.3, cout), stride, padding)

    layers = [conv("c1", 3, 4, 3), ReLU("r1"), conv("c2", 4, 5, 2), ReLU("r2"), MaxPool2D("p1", 2, 2, pool_padding)]
    network_in = Network(layers, (13, 11, 3), ())
    flat = int(np.prod(network_in.infos[-1].shape))
    layers += [Flatten("f"), Dense("d", rng.normal(0, 0.2, (flat, 6)), rng.normal(0, 0.1, 6)), Softmax("s")]
    return Network(layers, (13, 11, 3), tuple("abcdef"))


NETWORKS = {
    "tiny_vgg": lambda: tiny_vgg(seed=3),
    "valid-s1": lambda: random_network(1, "valid", 1),
    "same-s1": lambda: random_network(2, "same", 1, "same"),
    "same-s2": lambda: random_network(3, "same", 2, "same"),
    "valid-s2": lambda: random_network(4, "valid", 2),
    "explicit-s2": lambda: random_network(5, ((1, 1), (1, 1)), 2, ((1, 0), (0, 1))),  # PyTorch's padding=1
}


@pytest.fixture(params=list(NETWORKS), scope="module")
def traced(request):
    network = NETWORKS[request.param]()
    image = np.random.default_rng(7).random(network.input_shape, np.float32)
    return network, network.trace(image)


def test_tiny_vgg_matches_the_reference_shapes():
    network = tiny_vgg()
    shapes = {info.name: info.shape for info in network.infos}
    assert shapes["conv_1_1"] == (62, 62, 10)
    assert shapes["max_pool_1"] == (30, 30, 10)
    assert shapes["conv_2_2"] == (26, 26, 10)
    assert shapes["max_pool_2"] == (13, 13, 10)
    assert shapes["flatten"] == (1690,)
    assert shapes["softmax"] == (10,)
    assert network.parameter_count == 19_920


def test_trace_records_every_layer_in_order(traced):
    network, trace = traced
    assert trace.names == ("input", *network.layer_names)
    for info in trace.layers:
        assert trace[info.name].shape == info.shape
        assert not trace[info.name].flags.writeable
    assert trace.probabilities.sum() == pytest.approx(1.0, abs=1e-5)
    assert trace.predicted_class == network.class_names[int(np.argmax(trace.probabilities))]


def test_trace_equals_batched_predict(traced):
    network, trace = traced
    batch = np.stack([trace.image, trace.image[::-1]])
    np.testing.assert_allclose(network.predict(batch)[0], trace.probabilities, rtol=1e-5, atol=1e-6)


def test_channel_results_sum_with_bias_to_the_neuron_map(traced):
    network, trace = traced
    for layer in network.layers:
        if isinstance(layer, Conv2D):
            for neuron in range(layer.filters):
                parts = conv_channel_results(trace, layer.name, neuron)
                assert parts.shape == (layer.kernel.shape[2], *trace[layer.name].shape[:2])
                rebuilt = parts.sum(axis=0) + layer.bias[neuron]
                np.testing.assert_allclose(rebuilt, trace[layer.name][..., neuron], rtol=1e-5, atol=1e-5)


def test_conv_steps_reconstruct_every_traced_value(traced):
    network, trace = traced
    rng = np.random.default_rng(0)
    for layer in network.layers:
        if not isinstance(layer, Conv2D):
            continue
        rows, cols, filters = trace[layer.name].shape
        for _ in range(25):
            row, col, neuron = int(rng.integers(rows)), int(rng.integers(cols)), int(rng.integers(filters))
            step = conv_step(trace, layer.name, row, col, neuron)
            np.testing.assert_allclose(step.products, step.window * step.kernel)
            assert step.total == pytest.approx(step.products.sum(), rel=1e-5, abs=1e-5)
            assert step.total + step.bias == pytest.approx(step.result, rel=1e-4, abs=1e-5)
            parts = conv_channel_results(trace, layer.name, neuron)[:, row, col]
            np.testing.assert_allclose(step.channel_sums, parts, rtol=1e-4, atol=1e-5)
            # the window really is the input at `origin` (zeros where it hangs over padding)
            source = trace.input_of(layer.name)
            r0, c0 = step.origin
            for u in range(step.window.shape[0]):
                for v in range(step.window.shape[1]):
                    r, c = r0 + u, c0 + v
                    inside = 0 <= r < source.shape[0] and 0 <= c < source.shape[1]
                    np.testing.assert_array_equal(step.window[u, v], source[r, c] if inside else 0)


def test_conv_sweep_is_conv_step_at_every_position(traced):
    network, trace = traced
    for layer in network.layers:
        if isinstance(layer, Conv2D):
            sweep = conv_sweep(trace, layer.name, 1)
            rows, cols = trace[layer.name].shape[:2]
            for row, col in [(0, 0), (rows // 2, cols // 3), (rows - 1, cols - 1)]:
                step = conv_step(trace, layer.name, row, col, 1)
                np.testing.assert_array_equal(sweep.products[row, col], step.products)
                np.testing.assert_allclose(sweep.channel_sums[row, col], step.channel_sums, rtol=1e-6, atol=1e-6)
                assert sweep.results[row, col] == step.result and sweep.bias == step.bias
            np.testing.assert_allclose(sweep.channel_sums.sum(-1) + sweep.bias, sweep.results, rtol=1e-4, atol=1e-4)


def test_pool_and_relu_steps_reconstruct_every_traced_value(traced):
    network, trace = traced
    for layer in network.layers:
        output = trace[layer.name]
        if isinstance(layer, MaxPool2D):
            for row, col, channel in np.ndindex(*output.shape):
                step = pool_step(trace, layer.name, row, col, channel)
                assert step.window.max() == step.result == output[row, col, channel]
                assert step.window[step.argmax] == step.result
        elif isinstance(layer, ReLU):
            for row, col, channel in [(0, 0, 0), (output.shape[0] - 1, output.shape[1] - 1, output.shape[2] - 1)]:
                step = relu_step(trace, layer.name, row, col, channel)
                assert step.y == max(0.0, step.x) == output[row, col, channel]


def test_flatten_mapping_round_trips_and_matches_the_traced_vector(traced):
    network, trace = traced
    flatten = next(layer for layer in network.layers if isinstance(layer, Flatten))
    shape = flatten_source_shape(trace, flatten.name)
    source, flat = trace.input_of(flatten.name), trace[flatten.name]
    for index in range(flat.size):
        row, col, channel = flatten_position(shape, index)
        assert flatten_index(shape, row, col, channel) == index
        assert flat[index] == source[row, col, channel]
    with pytest.raises(IndexError):
        flatten_position(shape, flat.size)


def test_dense_and_softmax_terms_reconstruct_the_outputs(traced):
    network, trace = traced
    dense = next(layer for layer in network.layers if isinstance(layer, Dense))
    for unit in range(dense.kernel.shape[1]):
        step = dense_step(trace, dense.name, unit)
        np.testing.assert_allclose(step.products, step.inputs * step.weights)
        assert step.total + step.bias == pytest.approx(step.result, rel=1e-4, abs=1e-4)
    terms = softmax_terms(trace.logits)
    np.testing.assert_allclose(terms.exps, np.exp(trace.logits.astype(np.float64)))
    assert terms.total == pytest.approx(terms.exps.sum())
    np.testing.assert_allclose(terms.probabilities, trace.probabilities, rtol=1e-5, atol=1e-6)


def test_explanations_refuse_the_wrong_layer_kind():
    trace = tiny_vgg().trace(np.zeros((64, 64, 3), np.float32))
    with pytest.raises(TypeError, match="relu"):
        conv_step(trace, "relu_1_1", 0, 0, 0)
    with pytest.raises(KeyError, match="no layer"):
        trace["conv_9_9"]


def test_save_and_load_round_trip(tmp_path, traced):
    network, trace = traced
    path = network.save(tmp_path / "net.npz")
    loaded = Network.load(path)
    assert loaded.layer_names == network.layer_names
    assert loaded.class_names == network.class_names
    again = loaded.trace(trace.image)
    for name in trace.names:
        np.testing.assert_array_equal(again[name], trace[name])


def test_explicit_padding_is_zeros_around_the_input_then_a_valid_convolution():
    """PyTorch's padding=1 with stride 2 on an even size: one ring of zeros, unlike 'same' (which pads 0 and 1)."""
    rng = np.random.default_rng(9)
    kernel, bias, image = rng.normal(size=(3, 3, 2, 4)), rng.normal(size=4), rng.random((2, 8, 10, 2))
    explicit = Conv2D("padded", kernel, bias, stride=2, padding=((1, 1), (2, 0)))
    valid = Conv2D("valid", kernel, bias, stride=2)
    expected = valid.forward(np.pad(image, ((0, 0), (1, 1), (2, 0), (0, 0))))
    np.testing.assert_allclose(explicit.forward(image), expected, atol=1e-6)
    assert explicit.output_shape((8, 10, 2)) == expected.shape[1:] == (4, 5, 4)
    same = Conv2D("same", kernel, bias, stride=2, padding="same")
    assert (
        same.pad_amounts(8, 8)
        == ((0, 1), (0, 1))
        != Conv2D("torch", kernel, bias, 2, ((1, 1), (1, 1))).pad_amounts(8, 8)
    )
    assert Conv2D("zero", kernel, bias, padding=((0, 0), (0, 0))).padding == "valid"
    for bad in ("full", 1, ((1, -1), (0, 0))):
        with pytest.raises(ValueError, match="padding"):
            Conv2D("bad", kernel, bias, padding=bad)


def test_shared_weights_are_read_only():
    network = tiny_vgg()
    with pytest.raises(ValueError, match="read-only"):
        network.layer("conv_1_1").kernel[0, 0, 0, 0] = 1.0


def test_a_shared_network_traces_each_recent_image_once_and_forgets_the_oldest():
    network = random_network(1, "valid", 1)
    images = np.random.default_rng(8).random((3, *network.input_shape), np.float32)
    assert network.trace(images[0]) is not network.trace(images[0])  # not kept unless asked
    one_trace = sum(int(np.prod(info.shape)) for info in network.infos) * 4
    network.keep_recent_traces(2.5 * one_trace / 2**20)  # room for two traces
    first = network.trace(images[0])
    assert network.trace(images[0].copy()) is first  # the same pixels, another array: the kept trace
    np.testing.assert_array_equal(first[network.layer_names[-1]], network.predict(images[:1])[0])
    second = network.trace(images[1])
    assert network.trace(images[0]) is first  # now the most recent of the two
    network.trace(images[2])  # a third image: the least recent (the second) is forgotten
    assert network.trace(images[0]) is first
    assert network.trace(images[1]) is not second
    np.testing.assert_array_equal(network.trace(images[1])["c1"], second["c1"])


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "not found"), (b"", "damaged"), (b"PK\x03\x04 not really a zip", "damaged"), (b"\x00" * 100, "damaged")],
)
def test_bad_weights_files_give_a_clear_error(tmp_path, content, message):
    path = tmp_path / "weights.npz"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(WeightsError, match=message):
        Network.load(path)


def test_weights_file_without_architecture_is_refused(tmp_path):
    path = tmp_path / "plain.npz"
    np.savez(path, kernel=np.zeros(3))
    with pytest.raises(WeightsError, match="does not describe"):
        Network.load(path)


def test_wrong_input_shape_is_refused():
    with pytest.raises(ValueError, match="expected images of shape"):
        tiny_vgg().trace(np.zeros((32, 32, 3)))


def test_reference_tfjs_weights_load_without_tensorflow(reference_weights_dir):
    network = load_tfjs_layers_model(reference_weights_dir)
    assert [info.name for info in network.infos][1:] == [
        "conv_1_1",
        "relu_1_1",
        "conv_1_2",
        "relu_1_2",
        "max_pool_1",
        "conv_2_1",
        "relu_2_1",
        "conv_2_2",
        "relu_2_2",
        "max_pool_2",
        "flatten",
        "output",
        "softmax",
    ]
    assert network.parameter_count == 19_920
    trace = network.trace(np.full((64, 64, 3), 0.5, np.float32))
    assert trace.probabilities.sum() == pytest.approx(1.0, abs=1e-5)
