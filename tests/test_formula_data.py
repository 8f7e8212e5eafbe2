"""The formula views' data: every number sent to the browser is the engine's, and the view follows the state."""

from __future__ import annotations

import numpy as np
import pytest

from cnnviz.colors import PALETTE_SIZE, color_ranges
from cnnviz.engine import tiny_vgg
from cnnviz.engine.explain import conv_step, pool_step, relu_step, softmax_terms
from cnnviz.examples import build_catalog
from cnnviz.mathml import tex_to_mathml
from cnnviz.plots.formula import PALETTES, formula_data, unpack
from cnnviz.state import ExplainerState
from cnnviz.views.formula import FormulaView


def _network():
    network = tiny_vgg(seed=7)
    rng = np.random.default_rng(7)
    for name in ("conv_1_1", "conv_1_2", "conv_2_1", "conv_2_2"):  # tiny_vgg starts with zero biases
        layer = network.layer(name)
        layer.bias = rng.normal(0, 0.1, layer.bias.shape).astype(np.float32)
    return network


NETWORK = _network()
TRACE = NETWORK.trace(np.random.default_rng(1).random((64, 64, 3), dtype=np.float32))
RANGES = color_ranges(TRACE, "unit")


def sent(layer: str, neuron: int, channel: int = 0):
    """What the browser receives, decoded from the very bytes that travel."""
    return unpack(formula_data(TRACE, layer, neuron, channel, RANGES).pack())


def positions(shape, count=12, seed=0):
    rng = np.random.default_rng(seed)
    return [(int(rng.integers(shape[0])), int(rng.integers(shape[1]))) for _ in range(count)]


def window_origin(meta, row, col):
    """The browser's rule for where a window sits (formula.js `origin`)."""
    return row * meta["stride"][0] + meta["offset"][0], col * meta["stride"][1] + meta["offset"][1]


@pytest.mark.parametrize(("layer", "neuron", "channel"), [("conv_1_1", 4, 2), ("conv_1_2", 3, 7), ("conv_2_2", 9, 0)])
def test_conv_data_is_the_engines_step_at_every_sampled_position(layer, neuron, channel):
    data = sent(layer, neuron, channel)
    arrays, meta = data.arrays, data.meta
    assert (meta["kind"], meta["layer"], meta["neuron"], meta["channel"]) == ("conv2d", layer, neuron, channel)
    assert arrays["sums"].shape == (*TRACE[layer].shape[:2], TRACE.input_of(layer).shape[2])
    for row, col in positions(TRACE[layer].shape):
        step = conv_step(TRACE, layer, row, col, neuron)
        np.testing.assert_array_equal(arrays["products"][row, col], step.products[:, :, channel])
        np.testing.assert_array_equal(arrays["sums"][row, col], step.channel_sums)
        np.testing.assert_array_equal(arrays["kernel"], step.kernel[:, :, channel])
        assert arrays["results"][row, col] == np.float32(step.result)
        assert meta["bias"] == pytest.approx(step.bias, abs=0)
        top, left = window_origin(meta, row, col)
        assert (top, left) == step.origin
        np.testing.assert_array_equal(arrays["input"][top : top + 3, left : left + 3], step.window[:, :, channel])
        # what the join row shows adds up: every channel's result plus the bias is the neuron's value
        assert arrays["sums"][row, col].sum(dtype=np.float64) + meta["bias"] == pytest.approx(step.result, abs=1e-5)


def test_relu_data_is_the_engines_step_at_every_sampled_cell():
    data = sent("relu_2_1", 6)
    assert data.meta["kind"] == "relu"
    for row, col in positions(TRACE["relu_2_1"].shape):
        step = relu_step(TRACE, "relu_2_1", row, col, 6)
        assert (data.arrays["input"][row, col], data.arrays["results"][row, col]) == (step.x, step.y)


@pytest.mark.parametrize("layer", ["max_pool_1", "max_pool_2"])
def test_pool_data_is_the_engines_step_at_every_sampled_window(layer):
    data = sent(layer, 5)
    for row, col in positions(TRACE[layer].shape):
        step = pool_step(TRACE, layer, row, col, 5)
        np.testing.assert_array_equal(data.arrays["windows"][row, col], step.window)
        assert tuple(data.arrays["argmax"][row, col]) == step.argmax
        assert data.arrays["results"][row, col] == np.float32(step.result)
        top, left = window_origin(data.meta, row, col)
        assert (top, left) == step.origin
        np.testing.assert_array_equal(data.arrays["input"][top : top + 2, left : left + 2], step.window)


def test_softmax_data_is_the_engines_terms():
    data = sent("softmax", 3)
    terms = softmax_terms(TRACE.logits)
    np.testing.assert_array_equal(data.arrays["logits"], terms.logits.astype(np.float32))
    np.testing.assert_array_equal(data.arrays["exps"], terms.exps.astype(np.float32))
    np.testing.assert_array_equal(data.arrays["probabilities"], terms.probabilities.astype(np.float32))
    assert data.meta["total"] == terms.total
    assert data.meta["classes"] == list(NETWORK.class_names)


@pytest.mark.parametrize(("layer", "neuron"), [("conv_1_1", 0), ("relu_1_2", 1), ("max_pool_1", 2), ("softmax", 0)])
def test_colours_index_their_palettes_and_arrays_are_aligned(layer, neuron):
    data = formula_data(TRACE, layer, neuron, 0, RANGES)
    for name, array in data.arrays.items():
        if name.endswith("_colors"):
            assert array.dtype == np.uint8
            assert int(array.max()) < len(PALETTES[data.meta["palettes"][name.removesuffix("_colors")]])
        else:
            assert array.dtype in (np.float32, np.uint8)
    payload = data.pack()
    header_length = int.from_bytes(payload[:4], "little")
    assert (4 + header_length) % 4 == 0
    assert all(entry["offset"] % 4 == 0 for entry in unpack(payload).meta.get("arrays", {}).values())
    assert len(PALETTES["diverging"]) == PALETTE_SIZE


def test_there_is_no_formula_view_for_a_dense_layer():
    with pytest.raises(ValueError, match="dense"):
        formula_data(TRACE, "output", 0, 0, RANGES)


@pytest.fixture
def view(tmp_path):
    return FormulaView(ExplainerState(NETWORK, build_catalog(tmp_path)))


def test_the_view_opens_for_a_relu_neuron_and_closes_with_back(view):
    state, panel = view.state, view._panel
    assert not panel.open
    state.select("relu_1_1", 2)  # a click in the overview
    assert panel.open and state.level == "formula"
    data = unpack(panel.payload)
    assert (data.meta["kind"], data.meta["neuron"]) == ("relu", 2)
    assert view._formula.object == tex_to_mathml(NETWORK.layer("relu_1_1").formula, display=True)
    assert panel.section == "article-relu"
    panel.closed = [1]  # Esc, × or a click outside
    assert state.level == "overview" and not panel.open


def test_the_window_position_travels_both_ways_and_stays_inside_the_map(view):
    state, panel = view.state, view._panel
    state.param.update(row=50, col=61)
    state.select("max_pool_2", 1)
    assert panel.position == [12, 12]  # clamped into the 13 × 13 map
    panel.position = [3, 4]  # the browser reports where the window rests
    assert (state.row, state.col) == (3, 4)
    state.param.update(row=7, col=8)  # e.g. the elastic view or the URL
    assert panel.position == [7, 8]


def test_a_conv_formula_follows_the_input_channel_and_goes_back_to_the_elastic_view(view):
    state, panel = view.state, view._panel
    state.select("conv_1_2", 3, level="formula")
    assert unpack(panel.payload).meta["channel"] == 0
    state.input_channel = 6
    assert unpack(panel.payload).meta["channel"] == 6
    panel.closed = [1]
    assert (state.level, state.layer) == ("elastic", "conv_1_2")
    assert not panel.open


def test_clicking_a_class_in_the_softmax_formula_explains_that_class(view):
    state, panel = view.state, view._panel
    state.select("softmax", 0, level="formula")
    panel.picked = [4, 1]
    assert (state.layer, state.neuron, state.level) == ("softmax", 4, "formula")
    assert unpack(panel.payload).meta["neuron"] == 4
