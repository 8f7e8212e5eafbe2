"""The backward formula views without a browser: fire the HoloViews streams as Bokeh would, read the panes, and
check every number against the engine's backward pass and against finite differences of the loss.

Networks: three small architectures of `test_backprop` (5×5 'same' stride 2 with a leaky ReLU; a grey 28×28 input
with average pooling; stride 2, no activation, overlapping min pooling and a silenced channel) and Tiny VGG.
"""

from __future__ import annotations

import re

import holoviews.plotting.bokeh  # noqa: F401 (the maps' options need a plotting backend, as in the app)
import numpy as np
import pytest

from cnnviz.article import SECTION_ANCHORS
from cnnviz.engine.explain_backward import kernel_gradient_sweep, pool_routing, strongest_gradient
from cnnviz.engine.gradients import image_loss
from cnnviz.learning_state import LearningState
from cnnviz.plots.formula import window_marks
from cnnviz.plots.formula_backward import BACKWARD_KINDS
from cnnviz.state import ExplainerState
from cnnviz.views.formula import FormulaView
from cnnviz.views.formula_backward import BackwardFormula
from tests.test_backprop import ARCHITECTURES, NUDGE, _assert_close, _loss_with, _nudge, _with_weight
from tests.test_formula_data import catalog_for, centre

NETWORKS = ["same-stride-2", "one-channel-28", "overlapping-min-pool", "tiny-vgg"]


@pytest.fixture(params=NETWORKS, scope="module")
def network(request):
    return ARCHITECTURES[request.param]()


@pytest.fixture
def session(network):
    state = ExplainerState(network, catalog_for(network))
    learning = LearningState(state)
    view = FormulaView(state, backward=BackwardFormula(state, learning))
    learning.backward_mode = True
    return state, learning, view


def numbers(html: str, css: str) -> list[float]:
    """Full-precision numbers (data-value) of the cells of table `css`, or of the elements of class `css`."""
    table = re.search(rf'<table class="fv-grid {css}(?: [^"]*)?">(.*?)</table>', html)
    if table:
        return [float(v) for v in re.findall(r'data-value="([^"]+)"', table.group(1))]
    pattern = rf"class=['\"](?:[^'\"]* )?{css}(?: [^'\"]*)?['\"][^>]*data-value=['\"]([^'\"]+)"
    return [float(v) for v in re.findall(pattern, html)]


def one(html: str, css: str) -> float:
    found = numbers(html, css)
    assert len(found) == 1, (css, found)
    return found[0]


def layers_of(network, kind: str) -> list[str]:
    return [info.name for info in network.infos if info.kind == kind]


def previous_of(network, layer: str) -> str:
    names = ["input"] + [info.name for info in network.infos]
    return names[names.index(layer) - 1]


def column_gradient_by_nudging(learning, column: str, index: tuple[int, ...]) -> float:
    backward = learning.backward
    by = NUDGE * min(1.0, abs(float(backward.activations[column][index])) or 1.0)
    plus = _loss_with(backward.network, backward, column, _nudge(index, by))
    minus = _loss_with(backward.network, backward, column, _nudge(index, -by))
    return (plus - minus) / (2 * by)


def weight_gradient_by_nudging(learning, layer: str, key: str, index: tuple[int, ...]) -> float:
    backward = learning.backward
    image, true_class = backward.activations["input"], backward.true_class
    plus = image_loss(_with_weight(backward.network, layer, key, index, NUDGE), image, true_class)
    minus = image_loss(_with_weight(backward.network, layer, key, index, -NUDGE), image, true_class)
    return (plus - minus) / (2 * NUDGE)


def centre_cell(layout, row: int, col: int) -> tuple[int, int]:
    """The input cell under the centre of output (row, col)'s window (clamped into the input)."""
    top, left = layout.window_origin(row, col)
    rows, cols = layout.input_size
    return min(max(top + layout.window[0] // 2, 0), rows - 1), min(max(left + layout.window[1] // 2, 0), cols - 1)


def positions(shape, seed=0) -> list[tuple[int, int]]:
    rng = np.random.default_rng(seed)
    return [(0, 0), (shape[0] - 1, shape[1] - 1), (int(rng.integers(shape[0])), int(rng.integers(shape[1])))]


def test_pointing_at_a_convolution_explains_its_kernel_bias_and_input_gradients(session):
    state, learning, view = session
    for layer in layers_of(state.network, "conv2d"):
        previous = previous_of(state.network, layer)
        channel = learning.backward.activations[previous].shape[2] - 1
        neuron = state.network.info(layer).shape[2] - 1
        state.input_channel = channel
        state.select(layer, neuron, level="formula")
        backward_view = view.backward
        assert backward_view.active and view.dialog.open and not view._forward.visible
        assert view.dialog.heading == backward_view.explained.title and view.dialog.kind == "backward-conv2d"
        gradients = learning.backward.weight_gradients[layer]
        layout = backward_view.explained.layout
        for row, col in positions(layout.output_size):
            x, y = centre(layout.output_box(row, col))
            backward_view.pointer.event(x=x, y=y)
            assert (state.row, state.col) == (row, col)
            np.testing.assert_allclose(backward_view.marks[()].array(), window_marks(layout, row, col).array())
            html = backward_view._numbers.pane.object
            sweep = kernel_gradient_sweep(learning.backward, layer, neuron, channel)
            np.testing.assert_allclose(numbers(html, "fv-window"), sweep.windows[row, col].ravel())
            assert one(html, "fv-upstream") == learning.backward.upstream_of(layer)[row, col, neuron]
            np.testing.assert_allclose(numbers(html, "fv-share"), sweep.contributions[row, col].ravel())
            np.testing.assert_allclose(numbers(html, "fv-kernel-gradient"), gradients["kernel"][:, :, channel, neuron]
                                       .ravel(), rtol=1e-10, atol=1e-15)  # fmt: skip
            assert one(html, "fv-bias-gradient") == pytest.approx(gradients["bias"][neuron], rel=1e-10, abs=1e-15)
            cell = centre_cell(layout, row, col)
            passed = learning.backward.gradients[previous][(*cell, channel)]
            assert one(html, "fv-passed-gradient") == pytest.approx(passed, rel=1e-10, abs=1e-15)
        # the numbers are the loss's real slopes: nudge the explained weight, the bias and the input cell
        html = backward_view._numbers.pane.object
        kernel = gradients["kernel"][:, :, channel, neuron]
        u, v = np.unravel_index(int(np.argmax(np.abs(kernel))), kernel.shape)
        shown = one(html, "fv-grad")
        assert shown == kernel[u, v]
        _assert_close(shown, weight_gradient_by_nudging(learning, layer, "kernel", (u, v, channel, neuron)), layer)
        _assert_close(one(html, "fv-bias-gradient"), weight_gradient_by_nudging(learning, layer, "bias", (neuron,)),
                      layer)  # fmt: skip
        # the window whose centre cell gets the largest gradient back (a tiny one would only measure rounding)
        passed = learning.backward.gradients[previous][..., channel]
        row, col = max(np.ndindex(*layout.output_size), key=lambda at: abs(passed[centre_cell(layout, *at)]))
        view._on_action({"action": "move", "rows": row - state.row, "cols": col - state.col})  # the arrow keys
        cell = centre_cell(layout, row, col)
        assert one(backward_view._numbers.pane.object, "fv-passed-gradient") == pytest.approx(passed[cell], rel=1e-12)
        if learning.backward.activations[previous][(*cell, channel)] != 0:
            nudged = column_gradient_by_nudging(learning, previous, (*cell, channel))
            _assert_close(one(backward_view._numbers.pane.object, "fv-passed-gradient"), nudged, layer)


def test_picking_a_weight_and_the_learning_rate_write_out_its_update(session):
    state, learning, view = session
    layer = layers_of(state.network, "conv2d")[0]
    state.select(layer, 0, level="formula")
    kernel_size = state.network.layer(layer).window
    view._on_action({"action": "pick", "index": kernel_size[1] + 1})  # the kernel's cell (1, 1), as formula.js sends
    for rate in (0.001, 0.1):
        view.backward.rate.value = rate
        assert learning.learning_rate == rate
        html = view.backward._numbers.pane.object
        weight = state.network.layer(layer).kernel[1, 1, 0, 0]
        gradient = learning.backward.weight_gradients[layer]["kernel"][1, 1, 0, 0]
        assert one(html, "fv-weight") == pytest.approx(weight)
        assert one(html, "fv-rate") == rate
        assert one(html, "fv-grad") == gradient
        assert one(html, "fv-new-weight") == pytest.approx(float(np.float32(weight - rate * gradient)))
        assert ("goes down" in html) == (gradient > 0)


def test_relu_gates_and_pooling_routes_the_gradient_under_the_pointer(session):
    state, learning, view = session
    backward = learning.backward
    for kind in ("relu", "maxpool2d"):
        for layer in layers_of(state.network, kind):
            previous = previous_of(state.network, layer)
            channel = state.network.info(layer).shape[2] - 1
            state.select(layer, channel, level="formula")
            backward_view = view.backward
            assert view.dialog.kind == f"backward-{kind}"
            layout = backward_view.explained.layout
            for row, col in positions(layout.output_size, seed=3):
                top, left = layout.window_origin(row, col)  # point at the input side: the window centred there
                x, y = centre(layout.input_box(top, left, *layout.window))
                backward_view.pointer.event(x=x, y=y)
                assert (state.row, state.col) == (row, col)
                html = backward_view._numbers.pane.object
                upstream = backward.upstream_of(layer)[row, col, channel]
                assert one(html, "fv-upstream") == upstream
                if kind == "relu":
                    x_value = backward.activations[previous][row, col, channel]
                    slope = 1.0 if x_value > 0 else state.network.layer(layer).negative_slope
                    assert one(html, "fv-slope") == slope
                    assert one(html, "fv-passed-gradient") == backward.gradients[previous][row, col, channel]
                    if x_value != 0:
                        nudged = column_gradient_by_nudging(learning, previous, (row, col, channel))
                        _assert_close(one(html, "fv-passed-gradient"), nudged, layer)
                else:
                    routing = pool_routing(backward, layer, row, col, channel)
                    np.testing.assert_allclose(numbers(html, "fv-routed"), routing.routed.ravel())
                    assert sum(numbers(html, "fv-routed")) == pytest.approx(upstream)
            if kind == "maxpool2d":  # the passed-back map sums every window's routes: check it by nudging
                # the largest, away from ReLU's zeros: where pooled values tie, the loss has a kink
                passed = np.abs(backward.gradients[previous][..., channel])
                passed[backward.activations[previous][..., channel] == 0] = 0
                cell = np.unravel_index(int(np.argmax(passed)), passed.shape)
                _assert_close(float(backward_view.explained.input_map[cell]),
                              column_gradient_by_nudging(learning, previous, (*cell, channel)), layer)  # fmt: skip


def test_the_output_dense_and_flatten_views_explain_p_minus_y_and_unflattening(session):
    state, learning, view = session
    network, backward = state.network, learning.backward
    softmax, dense, flatten = network.infos[-1].name, network.infos[-2].name, layers_of(network, "flatten")[0]

    state.select(softmax, 1, level="formula")
    html = view.backward._numbers.pane.object
    assert view.dialog.kind == "backward-softmax" and view.dialog.open
    np.testing.assert_allclose(numbers(html, "fv-p-minus-y"), backward.probabilities - backward.target)
    assert one(html, "fv-loss") == pytest.approx(image_loss(network, backward.activations["input"],
                                                            learning.true_class))  # fmt: skip
    for index in range(len(backward.probabilities)):
        _assert_close(numbers(html, "fv-p-minus-y")[index],
                      column_gradient_by_nudging(learning, dense, (index,)), index)  # fmt: skip
    view._on_action({"action": "pick", "index": 0})  # a class button
    assert (state.layer, state.neuron) == (softmax, 0)

    unit = learning.true_class
    state.select(dense, unit, level="formula")
    html = view.backward._numbers.pane.object
    upstream = backward.upstream_of(dense)[unit]
    assert one(html, "fv-upstream") == upstream
    inputs = backward.input_of(dense).reshape(-1)
    shown = [int(n) for n in re.findall(r"data-pick='(\d+)'", html)]
    np.testing.assert_allclose(numbers(html, "fv-weight-gradient"), inputs[shown] * upstream)
    assert np.abs(inputs[shown[0]] * upstream) == pytest.approx(np.abs(inputs * upstream).max())
    view._on_action({"action": "pick", "index": len(inputs) - 1})
    html = view.backward._numbers.pane.object
    gradient = backward.weight_gradients[dense]["kernel"][len(inputs) - 1, unit]
    assert one(html, "fv-grad") == gradient
    _assert_close(gradient, weight_gradient_by_nudging(learning, dense, "kernel", (len(inputs) - 1, unit)), dense)

    index = int(np.argmax(np.abs(backward.gradients[flatten])))
    state.select(flatten, index, level="formula")
    html = view.backward._numbers.pane.object
    assert one(html, "fv-passed-gradient") == backward.gradients[flatten][index]
    assert sum(numbers(html, "fv-term")) == pytest.approx(backward.gradients[flatten][index])


def test_backward_mode_off_gives_the_dialog_back_to_the_forward_view(session):
    state, learning, view = session
    layer = layers_of(state.network, "conv2d")[0]
    state.select(layer, 0, level="formula")
    assert view.dialog.kind == "backward-conv2d" and view.dialog.playable
    view._on_action({"action": "move", "rows": 1, "cols": 2})  # arrow keys move the backward window
    assert (state.row, state.col) == (1, 2)
    learning.backward_mode = False
    assert not view.backward.active and view._forward.visible and view.dialog.kind == "conv2d"
    assert view.explained is not None and view.dialog.playable
    assert f'data-position="{state.row},{state.col}"' in view._numbers.pane.object
    flatten = layers_of(state.network, "flatten")[0]
    state.select(flatten, 0, level="formula")  # no forward formula view for flatten: the dialog closes
    assert not view.dialog.open
    learning.backward_mode = True
    assert view.dialog.open and view.dialog.kind == "backward-flatten"


def test_a_step_updates_the_open_backward_view(session):
    state, learning, view = session
    layer = layers_of(state.network, "conv2d")[-1]
    state.select(layer, 0, level="formula")
    before = one(view.backward._numbers.pane.object, "fv-bias-gradient")
    learning.learning_rate = 0.01
    learning.step()
    after = one(view.backward._numbers.pane.object, "fv-bias-gradient")
    assert after == pytest.approx(learning.backward.weight_gradients[layer]["bias"][0], rel=1e-10, abs=1e-15)
    assert after != before
    assert learning.backward.network is state.trace.network is learning.last_step.network


def test_following_the_strongest_gradient_walks_from_the_loss_to_the_first_kernel(session):
    state, learning, _view = session
    backward = learning.backward
    for info in state.network.infos:
        strongest = strongest_gradient(backward, info.name)
        upstream = np.abs(backward.upstream_of(info.name))
        index = (strongest.row, strongest.col, strongest.neuron) if upstream.ndim == 3 else (strongest.neuron,)
        assert upstream[index] == upstream.max()
    first = layers_of(state.network, "conv2d")[0]
    strongest = strongest_gradient(backward, first)
    kernel = np.abs(backward.weight_gradients[first]["kernel"][:, :, :, strongest.neuron]).sum(axis=(0, 1))
    assert kernel[strongest.channel] == kernel.max()


def opened_backward(session, kind: str):
    """Open the backward formula view of the first layer of `kind`: the state, the dialog's view, the backward
    view, and the plot point (as a pointer event's x, y) of an output cell of its maps."""
    state, _learning, view = session
    state.select(layers_of(state.network, kind)[0], 0, level="formula")
    layout = view.backward.explained.layout

    def at(row: int, col: int) -> dict[str, float]:
        return dict(zip("xy", centre(layout.output_box(row, col)), strict=True))

    return state, view, view.backward, at


def test_a_tap_pins_the_backward_window_and_the_info_button_reads_on(session):
    state, view, backward_view, at = opened_backward(session, "maxpool2d")
    assert view.dialog.section == SECTION_ANCHORS["backpropagation"]
    backward_view.tap.event(**at(1, 1))
    assert backward_view.pinned and (state.row, state.col) == (1, 1)
    backward_view.pointer.event(**at(0, 0))  # pinned: pointing elsewhere leaves it
    assert (state.row, state.col) == (1, 1)
    backward_view.tap.event(**at(1, 1))  # a tap on the pinned cell lets it go
    backward_view.pointer.event(**at(0, 0))
    assert not backward_view.pinned and (state.row, state.col) == (0, 0)
    state.select(state.network.infos[-1].name, 0, level="formula")
    assert view.dialog.section == SECTION_ANCHORS["loss"]


def test_play_sweeps_the_backward_window_and_a_tap_or_a_key_stops_it(session):
    state, view, backward_view, at = opened_backward(session, "relu")
    assert view.dialog.playable and view.dialog.kind == "backward-relu"
    state.param.update(row=0, col=0)
    view._on_action({"action": "play"})  # the Play button, or space
    assert view.dialog.playing and backward_view.sweeping
    for _ in range(3):
        view.step()
    assert (state.row, state.col) == (0, 3)
    assert 'data-position="0,3"' in backward_view._numbers.pane.object  # the numbers follow the window
    backward_view.pointer.event(**at(2, 2))
    assert (state.row, state.col) == (0, 3), "the sweep has the window, not the pointer"
    backward_view.tap.event(**at(2, 2))
    assert not view.dialog.playing and backward_view.pinned and (state.row, state.col) == (2, 2)
    view._on_action({"action": "play"})
    assert view.dialog.playing and not backward_view.pinned
    view._on_action({"action": "move", "rows": 1, "cols": 0})  # an arrow key takes the window back
    assert not view.dialog.playing and not backward_view.sweeping
    flatten = layers_of(state.network, "flatten")[0]
    state.select(flatten, 0, level="formula")
    assert not view.dialog.playable  # a vector has no window to sweep


def _luminance(color: str) -> float:
    channels = [int(color.lstrip("#")[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    r, g, b = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def test_every_coloured_number_reads_on_its_colour_where_the_gradient_is_largest(session):
    """Following the gradient opens each view at its largest gradient: its number sits on the darkest colour."""
    state, learning, view = session
    for info in state.network.infos:
        if info.kind not in BACKWARD_KINDS:
            continue
        strongest = strongest_gradient(learning.backward, info.name)
        state.param.update(input_channel=strongest.channel, row=strongest.row, col=strongest.col)
        state.select(info.name, strongest.neuron, level="formula")
        shown = view.backward._numbers.pane.object
        styles = re.findall(r"""style=["']([^"']*background:#[0-9a-f]{6}[^"']*)["']""", shown)
        assert styles, info.name
        for style in styles:
            background = re.search(r"background:(#[0-9a-f]{6})", style)[1]
            ink = re.search(r"color:(#[0-9a-f]{3,6})", style)
            assert ink, f"{info.name}: no ink set on {background}"
            ink = ink[1] if len(ink[1]) == 7 else "#" + "".join(c * 2 for c in ink[1][1:])
            light, dark = sorted((_luminance(background), _luminance(ink)), reverse=True)
            assert (light + 0.05) / (dark + 0.05) >= 3, f"{info.name}: {ink} on {background}"
