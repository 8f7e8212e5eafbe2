"""The elastic views' data, without a browser: everything sent decodes to the engine's own numbers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cnnviz.colors import MIDDLE, color_ranges, diverging_indices, grey_indices
from cnnviz.engine import tiny_vgg
from cnnviz.engine.explain import conv_channel_results, dense_step, flatten_index, softmax_terms
from cnnviz.plots.elastic import context_thumbnails, decode, elastic_geometries, encode, view_data
from cnnviz.plots.overview import overview_layout

NETWORK = tiny_vgg(seed=3)
TRACE = NETWORK.trace(np.random.default_rng(1).random((64, 64, 3), np.float32))
RANGES = color_ranges(TRACE, "unit")
LAYOUT = overview_layout(NETWORK)
CONV_LAYERS = ["conv_1_1", "conv_1_2", "conv_2_1", "conv_2_2"]


def test_encoding_round_trips_bytes_and_floats():
    indices = np.arange(256, dtype=np.uint8).reshape(16, 16)
    assert np.array_equal(decode(encode(indices)).reshape(16, 16), indices)
    values = np.linspace(-3, 3, 50, dtype=np.float32)
    assert np.array_equal(decode(encode(values), np.float32), values)


@pytest.mark.parametrize(("layer", "neuron"), [("conv_1_1", 2), ("conv_1_2", 3), ("conv_2_1", 0), ("conv_2_2", 9)])
def test_conv_view_sends_the_engines_channel_results_and_they_add_up(layer, neuron):
    view = view_data(TRACE, layer, neuron, RANGES)
    rows, cols = view["output_size"]
    results = decode(view["intermediate_values"], np.float32).reshape(-1, rows, cols)
    assert np.array_equal(results, conv_channel_results(TRACE, layer, neuron))
    output = decode(view["output_values"], np.float32).reshape(rows, cols)
    assert np.array_equal(output, TRACE[layer][..., neuron])
    assert np.allclose(results.sum(axis=0) + view["bias"], output, atol=1e-5)
    kernel = NETWORK.layer(layer).kernel[..., neuron]
    assert np.allclose(np.array(view["kernels"]).reshape(-1, 3, 3), np.moveaxis(kernel, -1, 0))
    assert view["bias"] == pytest.approx(float(NETWORK.layer(layer).bias[neuron]))
    assert view["window"] == {"origin": [0, 0], "stride": [1, 1]}
    # colours: the same encoding as everywhere else
    source = TRACE.input_of(layer)
    expected_inputs = grey_indices(source) if layer == "conv_1_1" else diverging_indices(source, RANGES[view["source"]])
    assert np.array_equal(decode(view["inputs"]).reshape(-1, *view["input_size"]), np.moveaxis(expected_inputs, -1, 0))
    assert np.array_equal(decode(view["output"]).reshape(rows, cols), diverging_indices(output, RANGES[layer]))
    middle = diverging_indices(results, view["intermediate_range"])
    assert np.array_equal(decode(view["intermediates"]).reshape(results.shape), middle)
    assert view["intermediate_range"] == pytest.approx(float(np.abs(results).max()))


def test_conv_summary_carries_the_actual_numbers():
    view = view_data(TRACE, "conv_1_2", 3, RANGES)
    output = TRACE["conv_1_2"][..., 3]
    row, col = np.unravel_index(int(np.argmax(output)), output.shape)
    bias = f"{float(NETWORK.layer('conv_1_2').bias[3]):.2f}".replace("-", "−")
    assert view["summary"].startswith(f"conv_1_2 neuron 4 = sum of 10 intermediate maps + bias {bias};")
    assert f"max {float(output.max()):.2f}".replace("-", "−") in view["summary"]
    assert f"at ({row}, {col})" in view["summary"]


def test_flatten_view_maps_all_1690_elements_to_their_pixels():
    view = view_data(TRACE, "output", 4, RANGES)
    shape = TRACE["max_pool_2"].shape
    order = np.array(view["order"]).reshape(-1, 3)
    assert len(order) == 1690
    for index, (row, col, channel) in enumerate(order):
        assert flatten_index(shape, row, col, channel) == index
    values = decode(view["values"], np.float32)
    assert np.array_equal(values, TRACE["max_pool_2"][order[:, 0], order[:, 1], order[:, 2]])
    step = dense_step(TRACE, "output", 4)
    assert np.array_equal(decode(view["weights"], np.float32), step.weights)
    assert np.array_equal(decode(view["products"], np.float32), step.products)
    assert view["bias"] == pytest.approx(step.bias)
    assert view["score"] == pytest.approx(float(TRACE["output"][4]))
    maps = decode(view["inputs"]).reshape(shape[2], shape[0], shape[1])
    assert maps.shape == (10, 13, 13)  # every channel, not just two
    assert np.array_equal(decode(view["value_colors"]), maps[order[:, 2], order[:, 0], order[:, 1]])


def test_softmax_view_carries_the_softmax_terms():
    view = view_data(TRACE, "softmax", 2, RANGES)
    terms = softmax_terms(TRACE.logits)
    assert np.allclose(view["logits"], terms.logits)
    assert np.allclose(view["exps"], terms.exps)
    assert view["total"] == pytest.approx(terms.total)
    assert np.allclose(view["probabilities"], TRACE.probabilities, atol=1e-6)
    assert view["logit_colors"][int(np.argmax(terms.logits))] == 255
    assert view["logit_colors"][int(np.argmin(terms.logits))] == 0


def test_only_convolutions_and_the_output_have_elastic_views():
    with pytest.raises(ValueError, match="no elastic view"):
        view_data(TRACE, "relu_1_1", 0, RANGES)


def test_geometry_keeps_every_piece_inside_the_overviews_frame():
    geometries = elastic_geometries(NETWORK, LAYOUT)
    assert set(geometries) == {*CONV_LAYERS, "output", "softmax"}
    for name, geometry in geometries.items():
        assert len(geometry["columns"]) == len(LAYOUT.columns)
        rects = [r for key in ("inputs", "kernels", "intermediates") for r in geometry.get(key, [])]
        rects += [geometry[key] for key in ("output", "strip") if key in geometry]
        for rect in rects:
            assert 0 <= rect["x"] <= rect["x"] + rect["w"] <= LAYOUT.width, name
            assert 0 <= rect["y"] <= rect["y"] + rect["h"] <= LAYOUT.height, name
        context = [c for c in geometry["columns"] if c["alpha"] > 0]
        assert all(c["w"] < 0.5 for c in context)  # compressed, faded context
    conv = geometries["conv_1_2"]
    assert len(conv["inputs"]) == len(conv["kernels"]) == len(conv["intermediates"]) == 10
    assert len(geometries["conv_1_1"]["inputs"]) == 3


def test_payloads_stay_small_and_json_ready():
    sizes = {layer: len(json.dumps(view_data(TRACE, layer, 0, RANGES))) for layer in [*CONV_LAYERS, "output"]}
    assert max(sizes.values()) < 400_000, sizes
    context = context_thumbnails(TRACE, LAYOUT, RANGES)
    assert len(json.dumps(context)) < 60_000
    relu = decode(context["maps"]["relu_1_1"]["data"])
    assert relu.max() <= 2 * MIDDLE
