"""The flatten and softmax elastic views without a browser: fire the streams as Bokeh would, check against the engine.

Every network of the architecture matrix (grey 28×28 with 2 classes, 20 classes, 96×96, 'same' + stride 2, 5×5
kernels, average pooling, the bundled shapes model, one 7×7 block) opens its views through the session state as
a click would; pointing (`pointer.event(x=…, y=…)`) and tapping (`tap.event`) go through the HoloViews streams.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from test_architecture_matrix import MATRIX
from test_formula_data import catalog_for, centre, point

from cnnviz.colors import color_ranges
from cnnviz.engine.explain import dense_step, flatten_index, flatten_position, softmax_terms
from cnnviz.plots.elastic_dense import (
    CHARACTER_WIDTH,
    CIRCLE_SHARE,
    FlattenLayout,
    circle_font,
    circle_text,
    dense_source,
    explain_flatten,
    flatten_canvas,
    flatten_picture,
)
from cnnviz.plots.formula import format_number
from cnnviz.state import ExplainerState
from cnnviz.views.elastic_dense import FlattenElastic, SoftmaxElastic


@pytest.fixture(scope="module", params=list(MATRIX))
def network(request):
    return MATRIX[request.param]()


@pytest.fixture
def state(network) -> ExplainerState:
    return ExplainerState(network, catalog_for(network))


@pytest.fixture
def views(state) -> tuple[FlattenElastic, SoftmaxElastic]:
    return FlattenElastic(state), SoftmaxElastic(state)


def value_of(html: str, css: str) -> float:
    return float(re.search(rf'class="[^"]*\b{css}\b[^"]*" data-value="([^"]+)"', html).group(1))


def dense_name(state) -> str:
    return [info.name for info in state.network.infos if info.kind == "dense"][-1]


def last_class(state) -> int:
    return int(state.network.infos[-1].shape[-1]) - 1


def test_pointing_at_a_pixel_or_the_strip_follows_that_value_with_the_engines_numbers(state, views):
    flatten, _ = views
    layer, unit = dense_name(state), last_class(state)
    state.select(layer, unit, level="elastic")
    assert flatten.showing and flatten._panel.visible
    step = dense_step(state.trace, layer, unit)
    layout = flatten.layout
    shape = layout.shape
    assert layout.count == step.inputs.size == int(np.prod(state.network.infos[-3].shape))
    rng = np.random.default_rng(0)
    corners = [(0, 0, 0), (shape[0] - 1, shape[1] - 1, shape[2] - 1)]
    for row, col, channel in corners + [tuple(int(rng.integers(n)) for n in shape) for _ in range(4)]:
        point(flatten.pointer, layout.cell_box(row, col, channel))
        index = flatten_index(shape, row, col, channel)
        assert flatten.inspected == index
        html = flatten._numbers.object
        assert value_of(html, "ed-input") == pytest.approx(step.inputs[index], abs=0)
        assert value_of(html, "ed-weight") == pytest.approx(step.weights[index], abs=0)
        assert value_of(html, "ed-product") == pytest.approx(step.products[index], abs=0)
        assert f'data-index="{index}"' in html and f"row {row}, column {col}" in html
        # the outlines: the pixel on its map and the element in the strip
        sides = flatten.marks[()].array()
        pixel, entry = sides[:4], sides[4:8]
        assert pixel[:, :2].min(axis=0) == pytest.approx(layout.cell_box(row, col, channel)[:2])
        assert pixel[:, :2].max(axis=0) == pytest.approx(layout.cell_box(row, col, channel)[2:])
        assert entry[:, 1].mean() == pytest.approx(layout.entry_y(index), abs=0.02)
        # the same element pointed at in the strip
        flatten.pointer.event(x=layout.strip_x + 0.1, y=layout.entry_y(index))
        assert flatten.inspected == index
    assert value_of(flatten._numbers.object, "ed-total") == pytest.approx(step.total)
    assert value_of(flatten._numbers.object, "ed-bias") == pytest.approx(step.bias, abs=0)
    assert value_of(flatten._numbers.object, "ed-score") == pytest.approx(step.result, abs=0)
    np.testing.assert_allclose(step.total + step.bias, step.result, rtol=1e-4, atol=1e-4)


def test_the_picture_the_edges_and_the_captions_come_from_the_network(state, views):
    flatten, _ = views
    layer, unit = dense_name(state), 0
    state.select(layer, unit, level="elastic")
    explained = flatten.explained
    source, shape = dense_source(state.network, layer)
    assert explained.source == source and explained.layout.shape == shape
    rows, cols, channels = shape
    captions = flatten._captions.object
    assert source in captions and f"{channels} map" in captions and f"{rows}×{cols}" in captions
    assert f"{rows * cols * channels} values" in captions
    name = state.network.class_names[unit]
    assert f"“{name}”" in captions and f"“{name}”" in flatten.heading
    # the picture shows each map's values in the overview's colours, where the layout puts them
    picture = flatten_picture(explained)
    image = flatten_canvas(explained)
    assert picture.bounds.lbrt() == (0, -explained.layout.height, explained.layout.width, 0)
    ranges = color_ranges(state.trace, state.color_mode)
    assert explained.value_shade.half_range == pytest.approx(ranges[source])
    scale = image.shape[0] / explained.layout.height
    for index in (0, explained.layout.count - 1, explained.layout.count // 2):
        row, col, channel = flatten_position(shape, index)
        x, y = centre(explained.layout.cell_box(row, col, channel))
        expected = explained.value_shade.rgb(np.array([state.trace[source][row, col, channel]]))[0]
        assert tuple(image[int(-y * scale), int(x * scale)][:3]) == tuple(expected)
    edges = flatten._draw(flatten.opened).values()[1]
    np.testing.assert_allclose(edges.dimension_values("weight"), dense_step(state.trace, layer, unit).weights)
    labels = flatten._draw(flatten.opened).values()[2]
    assert format_number(explained.step.result) in list(labels.dimension_values("text"))


def test_tapping_the_score_or_the_button_opens_softmax_mode_and_a_tap_on_a_value_pins_it(state, views):
    flatten, softmax = views
    layer, unit = dense_name(state), last_class(state)
    state.select(layer, unit, level="elastic")
    layout = flatten.layout
    point(flatten.tap, layout.cell_box(0, 0, 0))
    assert flatten.pinned and flatten.inspected == 0 and flatten.element.value == 0
    flatten.pointer.event(x=layout.strip_x + 0.1, y=layout.entry_y(layout.count - 1))
    assert flatten.inspected == 0, "a pinned value stays while the pointer moves"
    flatten.element.value = layout.count - 1  # the keyboard's way: the slider
    assert flatten.inspected == layout.count - 1 and flatten.pinned
    x, y = centre(layout.score_box)
    flatten.tap.event(x=x, y=y)
    assert (state.layer, state.neuron, state.level) == (state.network.infos[-1].name, unit, "elastic")
    assert not flatten._panel.visible and softmax._panel.visible
    state.select(layer, unit, level="elastic")
    flatten.softmax_button.clicks += 1  # a click, a tap or Enter on the button
    assert (state.layer, state.level) == (state.network.infos[-1].name, "elastic")


def test_softmax_rows_follow_the_pointer_and_open_the_formula_by_tap_and_by_button(state, views):
    _, softmax = views
    classes = int(state.network.infos[-1].shape[-1])
    softmax_layer = state.network.infos[-1].name
    state.select(softmax_layer, 0, level="elastic")
    terms = softmax_terms(state.trace.logits)
    assert len(softmax.buttons) == classes
    assert [button.label for button in softmax.buttons] == list(state.network.class_names)
    assert f"from {classes} class scores" in softmax.heading
    for index in {0, classes - 1, classes // 2}:
        softmax.pointer.event(x=2.0, y=-(index + 0.5))
        assert softmax.hovered == index
        html = softmax._numbers.object
        assert value_of(html, "ed-exp") == pytest.approx(terms.exps[index], rel=1e-12)
        assert value_of(html, "ed-total") == pytest.approx(terms.total, rel=1e-12)
        assert value_of(html, "ed-probability") == pytest.approx(terms.probabilities[index], rel=1e-12)
    circles = softmax._draw(softmax.opened).values()[0]
    assert len(circles) == 2 * classes
    softmax.tap.event(x=0.6, y=-(classes - 0.5))
    assert (state.layer, state.neuron, state.level) == (softmax_layer, classes - 1, "formula")
    assert softmax._panel.visible and softmax.selected == classes - 1, "the formula opens over softmax mode"
    state.select(softmax_layer, 0, level="elastic")
    softmax.buttons[classes // 2].clicks += 1
    assert (state.neuron, state.level) == (classes // 2, "formula")


def test_the_numbers_inside_the_logit_circles_fit_them_even_when_negative(state, views):
    _, softmax = views
    state.select(state.network.infos[-1].name, 0, level="elastic")
    inner = softmax._draw(softmax.opened).values()[2]
    texts = list(inner.dimension_values("text"))
    diameter = CIRCLE_SHARE * softmax.pitch
    size = int(inner.opts.get().kwargs["text_font_size"].removesuffix("px"))
    assert size == circle_font(texts, diameter)
    assert all(CHARACTER_WIDTH * len(text) * size <= 0.9 * diameter for text in texts)
    wide = circle_text(-123.456)
    assert wide == "−123.5" and circle_font([wide], diameter) * CHARACTER_WIDTH * len(wide) <= 0.9 * diameter


def test_the_views_stay_idle_while_another_layer_is_open(state, views):
    flatten, softmax = views
    conv = next(info.name for info in state.network.infos if info.kind == "conv2d")
    before = flatten.opened, softmax.opened
    state.select(conv, 0, level="elastic")
    state.select(conv, 0, level="formula")
    state.select(dense_name(state), 0, level="overview")
    assert (flatten.opened, softmax.opened) == before
    assert not flatten._panel.visible and not softmax._panel.visible
    flatten.pointer.event(x=0.5, y=-0.5)
    softmax.tap.event(x=0.6, y=-0.5)
    assert flatten.inspected is None and state.level == "overview"


def test_layout_maps_points_back_to_elements():
    layout = FlattenLayout((3, 5, 4))
    for index in range(layout.count):
        row, col, channel = flatten_position(layout.shape, index)
        assert layout.element_at(*centre(layout.cell_box(row, col, channel))) == index
        assert layout.element_at(layout.strip_x + 0.1, layout.entry_y(index)) == index
    assert layout.element_at(*centre(layout.score_box)) == "score"
    assert layout.element_at(layout.width - 0.01, -0.01) is None


def test_a_new_image_or_class_reopens_the_flatten_view_with_its_numbers(state, views):
    flatten, _ = views
    layer = dense_name(state)
    state.select(layer, 0, level="elastic")
    opened = flatten.opened
    state.select(layer, 1, level="elastic")
    assert flatten.opened == opened + 1
    assert flatten.explained.step.result == pytest.approx(float(state.trace[layer][1]))
    explained = explain_flatten(state.trace, layer, 1, color_ranges(state.trace, "unit"))
    assert explained.class_name == state.network.class_names[1]


def test_in_backward_mode_both_views_draw_the_engines_gradients_and_forward_mode_restores_them(state):
    from cnnviz.learning_state import LearningState
    from cnnviz.plots.formula import _RGB

    if state.network.infos[-1].kind != "softmax":
        pytest.skip("the loss needs probabilities: a network ending in logits has no backward mode")
    learning = LearningState(state)
    flatten, softmax = FlattenElastic(state, learning), SoftmaxElastic(state, learning)
    layer, unit = dense_name(state), last_class(state)
    state.select(layer, unit, level="elastic")
    learning.backward_mode = True
    backward = learning.backward
    source, shape = dense_source(state.network, layer)
    explained = flatten.explained
    assert explained.backward is not None and flatten.heading.startswith("Backward")
    p_minus_y = float(backward.probabilities[unit] - backward.target[unit])
    assert explained.score == pytest.approx(p_minus_y, abs=1e-12)
    np.testing.assert_array_equal(explained.maps, backward.gradients[source].reshape(shape))
    edges = flatten._draw(flatten.opened).values()[1]
    np.testing.assert_allclose(
        edges.dimension_values("weight"), backward.weight_gradients[layer]["kernel"][:, unit], rtol=1e-9, atol=1e-15
    )
    assert "∂L/∂" in flatten._captions.object and "gradient" in flatten._legends.object
    # the strip and the maps are painted in the gradient's colours, never the forward ones
    image = flatten_canvas(explained)
    scale = image.shape[0] / explained.layout.height
    allowed = {tuple(colour) for colour in _RGB["gradient"]}
    for index in (0, explained.layout.count - 1):
        x, y = centre(explained.layout.cell_box(*flatten_position(shape, index)))
        assert tuple(image[int(-y * scale), int(x * scale)]) in allowed
    # pointing at an element: its weight's gradient and the gradient it passes back, as the engine has them
    passed_back = backward.gradients[source].reshape(-1)
    for index in (0, explained.layout.count // 2):
        point(flatten.pointer, explained.layout.cell_box(*flatten_position(shape, index)))
        html = flatten._numbers.object
        assert value_of(html, "ed-weight-gradient") == pytest.approx(
            float(backward.weight_gradients[layer]["kernel"][index, unit]), rel=1e-9, abs=1e-15
        )
        assert value_of(html, "ed-passed") == pytest.approx(float(passed_back[index]), rel=1e-9, abs=1e-15)
    # softmax mode: each row's p − y, and the loss
    state.select(state.network.infos[-1].name, unit, level="elastic")
    assert softmax.heading.startswith("Backward")
    html = softmax._numbers.object
    assert value_of(html, "ed-gradient") == pytest.approx(p_minus_y, abs=1e-12)
    assert value_of(html, "ed-loss") == pytest.approx(backward.loss, rel=1e-12)
    texts = list(softmax._draw(softmax.opened).values()[3].dimension_values("text"))
    assert f"y = {int(backward.target[unit])}" in texts
    learning.backward_mode = False
    assert softmax.explained.gradient is None and not softmax.heading.startswith("Backward")
    state.select(layer, unit, level="elastic")
    assert flatten.explained.backward is None and not flatten.heading.startswith("Backward")
