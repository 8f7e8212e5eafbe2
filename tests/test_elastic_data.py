"""The conv elastic view without a browser: fire its HoloViews streams, check its elements against the engine.

Pointer moves and taps are sent with `stream.event(x=…, y=…)` as Bokeh would; the marker's rectangles, the
readout's numbers, the picture's colours and the captions must match `cnnviz.engine` for every architecture.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from test_architecture_matrix import MATRIX
from test_formula_data import catalog_for

from cnnviz.article import SECTION_ANCHORS
from cnnviz.colors import color_ranges
from cnnviz.engine import Network, tiny_vgg
from cnnviz.engine.explain import conv_channel_results
from cnnviz.plots.elastic import (
    PIXELS_PER_UNIT,
    VIEW_HEIGHT,
    VIEW_WIDTH,
    ConvLayout,
    cell_box,
    conv_picture,
    explain_conv,
)
from cnnviz.state import ExplainerState
from cnnviz.views.elastic import PANES, ConvElastic, ElasticView

NETWORKS = {
    "tiny-vgg": lambda: tiny_vgg(seed=3),
    **{name: MATRIX[name] for name in ("28x28x1, 2 classes", "32x32x3, 20 classes, 3 blocks same", "same + stride 2",
                                       "5x5 kernels", "16 filters, one 7x7 block")},
}  # fmt: skip


@pytest.fixture(params=list(NETWORKS), scope="module")
def network(request) -> Network:
    return NETWORKS[request.param]()


@pytest.fixture
def view(network) -> ConvElastic:
    return ConvElastic(ExplainerState(network, catalog_for(network)))


def conv_layers(network: Network) -> list[str]:
    return [info.name for info in network.infos if info.kind == "conv2d"]


def centre(box) -> dict[str, float]:
    """A pointer event's coordinates at the centre of a plot box, as Bokeh sends them."""
    return {"x": (box[0] + box[2]) / 2, "y": (box[1] + box[3]) / 2}


def readout_values(html: str) -> dict[str, list[float]]:
    terms = [float(v) for v in re.findall(r'class="el-term" data-channel="\d+" data-value="([^"]+)"', html)]
    bias = float(re.search(r'el-bias" data-value="([^"]+)"', html).group(1))
    result = float(re.search(r'el-result" data-value="([^"]+)"', html).group(1))
    return {"terms": terms, "bias": [bias], "result": [result]}


def test_every_conv_layer_draws_the_engines_numbers_where_the_pointer_is(view):
    state = view.state
    for layer in conv_layers(state.network):
        neuron = state.network.info(layer).shape[2] - 1
        state.select(layer, neuron)
        explained = view.explained
        layout = explained.layout
        results = conv_channel_results(state.trace, layer, neuron)
        assert np.array_equal(explained.results, results)
        assert layout.channels == state.trace.input_of(layer).shape[2]
        rows, cols = state.trace[layer].shape[:2]
        for row, col in [(0, 0), (rows - 1, cols - 1), (rows // 2, cols // 3)]:
            view.pointer.event(**centre(cell_box(layout.output_box(), layout.output_size, row, col)))
            assert (state.row, state.col) == (row, col)
            numbers = readout_values(view._readout.object)
            assert numbers["terms"] == pytest.approx(results[:, row, col].tolist(), abs=1e-6)
            assert numbers["result"][0] == pytest.approx(float(state.trace[layer][row, col, neuron]), abs=1e-6)
            assert sum(numbers["terms"]) + numbers["bias"][0] == pytest.approx(numbers["result"][0], abs=1e-4)
            marks = view.marks[()].array()
            assert len(marks) == 2 * layout.channels + 1  # a window per input, a cell per result, the output cell
            assert np.allclose(marks[-1], cell_box(layout.output_box(), layout.output_size, row, col))
            assert np.allclose(marks[0], layout.window_box(0, row, col))


def test_pointing_at_an_input_channel_explains_the_output_whose_window_centres_there(view):
    state = view.state
    layer = conv_layers(state.network)[-1]
    state.select(layer, 0)
    layout = view.explained.layout
    conv = state.network.layer(layer)
    rows, cols = layout.input_size
    pixel = (rows // 2, cols // 2)
    view.pointer.event(**centre(cell_box(layout.input_box(0), layout.input_size, *pixel)))
    top, left = conv.window_origin(state.row, state.col, state.trace.input_of(layer).shape)
    assert top <= pixel[0] < top + conv.window[0] + conv.stride[0]
    assert left <= pixel[1] < left + conv.window[1] + conv.stride[1]


def test_a_tap_on_an_intermediate_result_opens_its_formula_and_empty_space_steps_back(view):
    state = view.state
    layer = conv_layers(state.network)[0]
    state.select(layer, 1)
    layout = view.explained.layout
    channel = layout.channels - 1
    view.tap.event(**centre(cell_box(layout.intermediate_box(channel), layout.output_size, 1, 2)))
    assert (state.level, state.layer, state.neuron, state.input_channel) == ("formula", layer, 1, channel)
    assert (state.row, state.col) == (1, 2)
    state.back()
    assert state.level == "elastic"
    view.tap.event(x=layout.x_output - 0.5, y=-VIEW_HEIGHT + 0.05)  # empty space
    assert state.level == "overview"


def test_the_picture_is_one_element_in_the_views_colours(network):
    trace = network.trace(catalog_for(network).default.image)
    ranges = color_ranges(trace, "unit")
    for layer in conv_layers(network):
        explained = explain_conv(trace, layer, 0, ranges)
        picture = conv_picture(explained, trace, ranges)
        layout = explained.layout
        canvas = picture.data  # the (rows, cols, 3) picture itself
        assert canvas.shape == (round(VIEW_HEIGHT * PIXELS_PER_UNIT), round(VIEW_WIDTH * PIXELS_PER_UNIT), 3)
        x0, y0, x1, y1 = cell_box(layout.output_box(), layout.output_size, 0, 0)
        row, col = int(-(y0 + y1) / 2 * PIXELS_PER_UNIT), int((x0 + x1) / 2 * PIXELS_PER_UNIT)
        expected = explained.shades["output"].rgb(np.array([[explained.output[0, 0]]]))[0, 0]
        assert np.array_equal(canvas[row, col], expected), layer
        # every piece inside the picture
        for box in [layout.output_box(), *[layout.input_box(c) for c in range(layout.channels)]]:
            assert 0 <= box[0] < box[2] <= VIEW_WIDTH and -VIEW_HEIGHT <= box[1] < box[3] <= 0, layer


def test_the_summary_says_the_layers_real_kernel_stride_and_padding(view):
    state = view.state
    for layer in conv_layers(state.network):
        state.select(layer, 0)
        conv = state.network.layer(layer)
        summary = view._summary.object
        assert f"own {conv.window[0]}×{conv.window[1]} kernel" in summary
        assert f"stride {conv.stride[0]}" in summary
        assert ("'same' padding" in summary) == (conv.padding == "same")
        channels = state.trace.input_of(layer).shape[2]
        assert f"sum of {channels} intermediate results" in summary
        # a lead text and one button shown per input channel (buttons are kept across layers, relabelled)
        shown = [button for button in view._explain.objects[1:] if button.visible]
        assert [button.description for button in shown] == [f"Open the formula of {name}" for name in view.names]
        assert len(shown) == channels


def test_the_sweep_steps_through_the_map_at_the_chosen_speed_and_survives_an_image_change(view):
    state = view.state
    layer = conv_layers(state.network)[0]
    state.select(layer, 0)
    rows, cols = view.explained.layout.output_size
    view.replay()
    assert view.playing and (state.row, state.col) == (0, 0)
    per_tick = view.positions_per_tick
    view.step()
    assert state.row * cols + state.col == min(per_tick, rows * cols - 1)
    view.speed = "slow"
    assert view.positions_per_tick <= per_tick
    position = (state.row, state.col)
    state.color_mode = "global"  # a colour change redraws but keeps the sweep where it is
    assert view.playing and (state.row, state.col) == position
    view.toggle_sweep()
    assert not view.playing
    while (state.row, state.col) != (rows - 1, cols - 1):
        view.step()
    assert not view.playing
    state.clear_selection()
    assert not view.playing


def test_the_container_registers_panes_by_kind_and_builds_them_on_first_open(network):
    from cnnviz.views.overview import Overview

    state = ExplainerState(network, catalog_for(network))
    container = ElasticView(state, Overview(state))
    assert container.panes == {} and not container.is_open
    assert set(PANES) == {"conv2d", "dense", "softmax"}  # the flatten view opens on the dense layer
    layer = conv_layers(network)[0]
    state.select(layer, 0)
    assert container.is_open and isinstance(container.pane, ConvElastic)
    assert container.bar.active and layer in container.bar.heading
    container.bar._handle_msg({"action": "back"})  # Esc or the Back button
    assert state.level == "overview" and not container.bar.active


def test_layout_reads_sizes_from_the_network(network):
    for layer in conv_layers(network):
        layout = ConvLayout.of(network, layer)
        conv = network.layer(layer)
        assert layout.window == conv.window and layout.stride == conv.stride
        assert layout.output_size == network.info(layer).shape[:2]


def test_in_backward_mode_the_conv_view_draws_the_engines_gradients_where_the_pointer_is(network):
    from cnnviz.engine.explain_backward import conv_neuron_gradients
    from cnnviz.learning_state import LearningState
    from cnnviz.views.overview import Overview

    state = ExplainerState(network, catalog_for(network))
    learning = LearningState(state)
    container = ElasticView(state, Overview(state, learning=learning))
    layer = conv_layers(network)[-1]
    state.select(layer, 1)
    learning.backward_mode = True
    view, backward = container.pane, learning.backward
    gradients = conv_neuron_gradients(backward, layer, 1)
    assert view.explained.backward and container.bar.heading.startswith("Backward")
    assert container.bar.section == SECTION_ANCHORS["backpropagation"]  # where its info button reads on
    np.testing.assert_array_equal(view.explained.kernel, gradients.kernel_gradients)
    np.testing.assert_array_equal(view.explained.results, gradients.passed_back)
    np.testing.assert_array_equal(view.explained.output, gradients.upstream)
    assert "gradient flows right to left" in view._hint.object and "Backward mode" in view._summary.object
    layout = view.explained.layout
    row, col = np.unravel_index(int(np.argmax(np.abs(gradients.upstream))), gradients.upstream.shape)
    view.pointer.event(**centre(cell_box(layout.output_box(), layout.output_size, int(row), int(col))))
    html = view._readout.object
    assert f'data-position="{row},{col}"' in html
    arriving = float(re.search(r'el-result" data-value="([^"]+)"', html).group(1))
    assert arriving == pytest.approx(float(gradients.upstream[row, col]), abs=1e-9)
    sums = [float(v) for v in re.findall(r'class="el-term" data-channel="\d+" data-value="([^"]+)"', html)]
    assert sums == pytest.approx(gradients.window_sums[:, row, col].tolist(), abs=1e-9)
    # the other layers, drawn small beside it, show their gradients too, in the gradient colours
    from cnnviz.plots.elastic import CONTEXT_ALPHA, PIXELS_PER_UNIT
    from cnnviz.plots.formula import _RGB

    picture = conv_picture(view.explained, state.trace, color_ranges(state.trace, state.color_mode)).data
    blended = np.rint(CONTEXT_ALPHA * _RGB["gradient"] + (1 - CONTEXT_ALPHA) * 255).astype(np.uint8)
    allowed = {tuple(colour) for colour in blended} | {(255, 255, 255)}
    for column in layout.context:
        top, bottom = round(-column.tops[0] * PIXELS_PER_UNIT), round((-column.tops[0] + column.size) * PIXELS_PER_UNIT)
        left, right = round(column.x * PIXELS_PER_UNIT), round((column.x + column.size) * PIXELS_PER_UNIT)
        colours = {tuple(colour) for colour in picture[top + 1 : bottom - 1, left + 1 : right - 1].reshape(-1, 3)}
        assert colours <= allowed, column.name
    learning.backward_mode = False
    assert not view.explained.backward and container.bar.heading.startswith("Convolution")
    assert container.bar.section == SECTION_ANCHORS["convolution"]
