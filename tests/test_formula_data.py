"""The formula views without a browser: fire the HoloViews streams, check the DynamicMaps and numbers with the engine.

Each test builds its networks with the engine (Tiny VGG, 5×5 kernels with 'same' padding, stride 2 on a 1-channel
28×28 input, 2 and 20 classes), opens a view through the session state as a click would, and points at the maps
with `stream.event(x=…, y=…)` as Bokeh would.
"""

from __future__ import annotations

import re

import numpy as np
import panel as pn
import pytest
from bokeh.document import Document
from panel.io.state import set_curdoc

from cnnviz.colors import color_ranges
from cnnviz.engine import Conv2D, Dense, Flatten, MaxPool2D, Network, ReLU, Softmax, tiny_vgg
from cnnviz.engine.experiments import WhatIf, apply
from cnnviz.engine.explain import conv_step, pool_step, relu_step, softmax_terms
from cnnviz.examples import Example, ExampleCatalog
from cnnviz.mathml import tex_to_mathml
from cnnviz.plots.formula import (
    PIXELS,
    MapsLayout,
    explain,
    format_number,
    maps_element,
    numbers_html,
)
from cnnviz.state import LINK_NAMES, ExplainerState
from cnnviz.views.formula import DEFAULT_SPEED, FormulaView


def tiny_vgg_with_biases() -> Network:
    network = tiny_vgg(seed=7)
    rng = np.random.default_rng(7)
    for name in ("conv_1_1", "conv_1_2", "conv_2_1", "conv_2_2"):  # tiny_vgg starts with zero biases
        layer = network.layer(name)
        layer.bias = rng.normal(0, 0.1, layer.bias.shape).astype(np.float32)
    return network


def small_network(input_shape, kernel: int, padding: str, stride: int, classes: int, pool_padding="valid") -> Network:
    """conv → relu → pool → conv → relu → pool → flatten → dense → softmax, sizes from the arguments."""
    rng = np.random.default_rng(kernel * 10 + stride)

    def conv(name, channels_in, channels_out):
        weights = rng.normal(0, 0.4, (kernel, kernel, channels_in, channels_out)).astype(np.float32)
        return Conv2D(name, weights, rng.normal(0, 0.2, channels_out).astype(np.float32), stride, padding)

    layers = [conv("c1", input_shape[2], 4), ReLU("r1"), MaxPool2D("p1", 2, 2, pool_padding), conv("c2", 4, 3),
              ReLU("r2"), MaxPool2D("p2", 2, 2, pool_padding)]  # fmt: skip
    flat = int(np.prod(Network(layers, input_shape, ()).infos[-1].shape))
    layers += [Flatten("f"), Dense("d", rng.normal(0, 0.3, (flat, classes)).astype(np.float32), np.zeros(classes)),
               Softmax("s")]  # fmt: skip
    return Network(layers, input_shape, tuple(f"class {chr(97 + i % 26)}{i}" for i in range(classes)))


NETWORKS = {
    "tiny-vgg": tiny_vgg_with_biases,
    "5x5-same-2-classes": lambda: small_network((19, 17, 3), 5, "same", 1, 2, pool_padding="same"),
    "stride-2-grey-28x28-20-classes": lambda: small_network((28, 28, 1), 3, "valid", 2, 20),
}


def catalog_for(network: Network) -> ExampleCatalog:
    image = np.random.default_rng(1).random(network.input_shape, dtype=np.float32)
    image.flags.writeable = False
    return ExampleCatalog((Example("noise", "Noise", "random pixels", image, None, ""),), "")


@pytest.fixture(params=list(NETWORKS), scope="module")
def network(request) -> Network:
    return NETWORKS[request.param]()


@pytest.fixture
def view(network) -> FormulaView:
    return FormulaView(ExplainerState(network, catalog_for(network)))


def layers_of(network: Network, kind: str) -> list[str]:
    return [info.name for info in network.infos if info.kind == kind]


def centre(box) -> tuple[float, float]:
    x0, y0, x1, y1 = box
    return (x0 + x1) / 2, (y0 + y1) / 2


def point(stream, box) -> None:
    """A pointer event at the centre of a plot box, as Bokeh sends it."""
    x, y = centre(box)
    stream.event(x=x, y=y)


def values(html: str, css: str) -> list[float]:
    """The full-precision numbers (data-value) of the elements with class `css`, or of the cells of table `css`."""
    table = re.search(rf'<table class="fv-grid {css}[^"]*">(.*?)</table>', html)
    if table:
        return [float(v) for v in re.findall(r'data-value="([^"]+)"', table.group(1))]
    return [float(v) for v in re.findall(rf'class="fv-value [^"]*\b{css}\b[^"]*" data-value="([^"]+)"', html)]


def marks(view: FormulaView) -> np.ndarray:
    """The window outlines the DynamicMap draws now, as (x0, y0, x1, y1) rows."""
    return view.marks[()].array()


def positions(shape, count=5, seed=0):
    rng = np.random.default_rng(seed)
    return [(0, 0), (shape[0] - 1, shape[1] - 1)] + [
        (int(rng.integers(shape[0])), int(rng.integers(shape[1]))) for _ in range(count)
    ]


def test_pointing_at_the_output_map_explains_that_conv_window_with_the_engines_numbers(view):
    state = view.state
    for layer in layers_of(state.network, "conv2d"):
        channel = state.trace.input_of(layer).shape[2] - 1  # the last input channel
        state.input_channel = channel
        state.select(layer, 1, level="formula")
        assert view.explained.channel == channel
        layout = view.explained.layout
        assert view.dialog.open and view.dialog.heading.startswith(f"Convolution · {layer}, neuron 2")
        assert layout == MapsLayout.of(state.network, layer)
        for row, col in positions(state.trace[layer].shape):
            point(view.pointer, (layout.output_box(row, col)))
            assert (state.row, state.col) == (row, col)
            step = conv_step(state.trace, layer, row, col, 1)
            html = view._numbers.pane.object
            np.testing.assert_allclose(values(html, "fv-products"), step.products[:, :, channel].ravel(), atol=1e-6)
            np.testing.assert_allclose(values(html, "fv-kernel"), step.kernel[:, :, channel].ravel(), atol=0)
            np.testing.assert_allclose(values(html, "fv-window"), step.window[:, :, channel].ravel(), atol=0)
            assert values(html, "fv-total") == pytest.approx([step.channel_sums[channel]], abs=1e-6)
            np.testing.assert_allclose(values(html, "fv-sum-value"), step.channel_sums, atol=1e-6)
            assert values(html, "fv-bias") == [pytest.approx(step.bias, abs=0)]
            assert values(html, "fv-result") == [pytest.approx(step.result, abs=0)]
            # the outlines: the engine's window on the input, the explained cell on the output
            window, cell = marks(view)
            assert tuple(window) == pytest.approx(layout.input_box(*step.origin, *layout.window))
            assert tuple(cell) == pytest.approx(layout.output_box(row, col))
            assert f'data-position="{row},{col}"' in html


def test_pointing_at_the_input_map_moves_the_window_to_cover_that_pixel(view):
    state = view.state
    layer = layers_of(state.network, "conv2d")[0]
    state.select(layer, 0, level="formula")
    layout = view.explained.layout
    rows, cols = state.trace.input_of(layer).shape[:2]
    for in_row, in_col in positions((rows, cols), seed=3):
        point(view.pointer, (layout.input_box(in_row, in_col, 1, 1)))
        top, left = conv_step(state.trace, layer, state.row, state.col, 0).origin
        kr, kc = layout.window
        # the chosen window covers the pixel, or is the nearest one there is (edges, strides)
        assert top - layout.stride[0] < in_row < top + kr + layout.stride[0]
        assert left - layout.stride[1] < in_col < left + kc + layout.stride[1]


def test_relu_and_pool_views_show_the_engines_step_under_the_pointer(view):
    state = view.state
    for layer, step_of in [
        (layers_of(state.network, "relu")[-1], relu_step),
        (layers_of(state.network, "maxpool2d")[0], pool_step),
    ]:
        state.select(layer, 2)  # what a click in the overview does: these open straight into the formula
        assert state.level == "formula" and view.dialog.open
        layout = view.explained.layout
        for row, col in positions(state.trace[layer].shape, seed=5):
            point(view.pointer, (layout.output_box(row, col)))
            step = step_of(state.trace, layer, row, col, 2)
            html = view._numbers.pane.object
            if step_of is relu_step:
                assert values(html, "fv-x")[0] == pytest.approx(step.x, abs=0)
                assert values(html, "fv-y") == [pytest.approx(step.y, abs=0)]
            else:
                np.testing.assert_array_equal(values(html, "fv-term"), step.window.ravel())
                assert values(html, "fv-y") == [pytest.approx(step.result, abs=0)]
                kept = re.findall(r'class="fv-value fv-chip fv-term fv-max" data-value="([^"]+)"', html)
                assert [float(v) for v in kept] == [pytest.approx(step.result, abs=0)]
                window, _ = marks(view)
                assert tuple(window) == pytest.approx(layout.input_box(*step.origin, *layout.window))


def test_the_maps_are_one_picture_in_the_overviews_colours(view):
    state = view.state
    layer = layers_of(state.network, "maxpool2d")[0]
    state.select(layer, 1)
    explained = view.explained
    picture = maps_element(
        explained.layout, explained.input_map, explained.input_shade, explained.output_map, explained.output_shade
    )
    pixels = np.stack([picture.data[name] for name in ("R", "G", "B")], axis=-1) if isinstance(picture.data, dict) \
        else picture.data  # fmt: skip
    layout = explained.layout
    for row, col in positions(state.trace[layer].shape, seed=2):
        x, y = centre(layout.output_box(row, col))
        pixel = pixels[int(-y * PIXELS), int(x * PIXELS)]
        np.testing.assert_array_equal(
            pixel[:3], explained.output_shade.rgb(np.array([state.trace[layer][row, col, 1]]))[0]
        )
    rows = state.trace.input_of(layer).shape[0]
    x, y = centre(layout.input_box(rows - 1, 0, 1, 1))
    expected = explained.input_shade.rgb(np.array([state.trace.input_of(layer)[rows - 1, 0, 1]]))[0]
    np.testing.assert_array_equal(pixels[int(-y * PIXELS), int(x * PIXELS)][:3], expected)


def test_a_tap_pins_the_window_until_the_next_tap_on_it(view):
    state = view.state
    layer = layers_of(state.network, "relu")[0]
    state.select(layer, 0)
    layout = view.explained.layout
    point(view.tap, (layout.output_box(2, 3)))
    assert view.pinned and (state.row, state.col) == (2, 3)
    point(view.pointer, (layout.output_box(5, 1)))
    assert (state.row, state.col) == (2, 3)  # pointing elsewhere leaves a pinned window in place
    point(view.tap, (layout.output_box(2, 3)))
    assert not view.pinned
    point(view.pointer, (layout.output_box(5, 1)))
    assert (state.row, state.col) == (5, 1)


def test_each_window_move_renders_its_numbers_once(view, monkeypatch):
    """`move_window` shows the numbers before it moves the state; the view's watcher on the state then finds them
    shown and renders nothing more (it rendered them a second time, ~3 ms a pointer move)."""
    state = view.state
    state.select(layers_of(state.network, "relu")[0], 0)
    layout, render, rendered = view.explained.layout, view._numbers._render, []
    monkeypatch.setattr(view._numbers, "_render", lambda *args: rendered.append(args[1:]) or render(*args))
    point(view.pointer, layout.output_box(1, 2))
    view._on_action({"action": "move", "rows": 1, "cols": 0})
    assert rendered == [(1, 2), (2, 2)]
    assert 'data-position="2,2"' in view._numbers.pane.object
    state.color_mode = "layer" if state.color_mode != "layer" else "unit"  # new colours: the same window again
    assert rendered == [(1, 2), (2, 2), (2, 2)]


def test_arrow_keys_move_the_window_and_stay_inside_the_map(view):
    state = view.state
    layer = layers_of(state.network, "maxpool2d")[-1]
    state.param.update(row=500, col=500)  # e.g. from a bigger layer, or a hand-made URL
    state.select(layer, 0)
    rows, cols = state.trace[layer].shape[:2]
    assert (state.row, state.col) == (rows - 1, cols - 1)
    view._on_action({"action": "move", "rows": 1, "cols": 0})
    assert (state.row, state.col) == (rows - 1, cols - 1)
    view._on_action({"action": "move", "rows": -1, "cols": -1})
    assert (state.row, state.col) == (max(rows - 2, 0), max(cols - 2, 0))
    assert f'data-position="{state.row},{state.col}"' in view._numbers.pane.object


def test_the_sweep_steps_along_the_rows_and_stops_when_the_view_closes(view):
    state = view.state
    layer = layers_of(state.network, "relu")[0]
    state.select(layer, 1)
    cols = state.trace[layer].shape[1]
    state.param.update(row=0, col=cols - 1)
    view._on_action({"action": "play"})
    assert view.dialog.playing and view._sweep is not None
    assert view._sweep.period == 1000 // DEFAULT_SPEED  # a pace a learner can read
    view.step()
    assert (state.row, state.col) == (1, 0)
    view.dialog.speed = 4
    assert view._sweep.period == 250
    view._on_action({"action": "close"})
    assert state.level == "overview" and not view.dialog.open
    assert view._sweep is None and not view.dialog.playing


def test_the_sweep_stops_at_the_last_window(view):
    state = view.state
    layer = layers_of(state.network, "maxpool2d")[0]
    state.select(layer, 0)
    rows, cols = state.trace[layer].shape[:2]
    state.param.update(row=rows - 1, col=cols - 2)
    view.toggle_sweep()
    view.step()
    assert (state.row, state.col) == (rows - 1, cols - 1) and view._sweep is None
    view.toggle_sweep()  # playing again from the end starts over
    assert (state.row, state.col) == (0, 0)
    view.toggle_sweep()
    assert view._sweep is None


def test_softmax_formula_shows_every_term_and_a_pick_explains_another_class(view):
    state = view.state
    softmax = state.network.infos[-1].name
    state.select(softmax, 1, level="formula")
    terms = softmax_terms(state.trace.logits)
    html = view._numbers.pane.object
    assert not view.dialog.playable and not view._maps.visible
    assert values(html, "fv-result") == [pytest.approx(terms.probabilities[1], rel=1e-12)]
    assert values(html, "fv-total") == [pytest.approx(terms.total, rel=1e-12)]
    np.testing.assert_allclose(values(html, "fv-logit-value"), terms.logits, rtol=1e-12)
    assert len(re.findall(r'data-pick="\d+"', html)) == len(state.network.class_names)
    assert state.network.class_names[1] in view.dialog.heading
    view._on_action({"action": "pick", "index": 0})
    assert (state.layer, state.neuron, state.level) == (softmax, 0, "formula")
    assert values(view._numbers.pane.object, "fv-result") == [pytest.approx(terms.probabilities[0], rel=1e-12)]
    view._on_action({"action": "pick", "index": 99})  # a stale page: ignored
    assert state.neuron == 0
    view._on_action({"action": "close"})
    assert state.level == "elastic"


def test_the_header_formula_is_the_layers_own_and_the_info_button_knows_its_section(view):
    state = view.state
    state.select(layers_of(state.network, "relu")[0], 0)
    assert view._formula.object == tex_to_mathml(state.network.layer(state.layer).formula, display=True)
    assert view.dialog.section == "article-relu"


@pytest.mark.parametrize(
    ("what_if", "relu_title", "equation", "pool_title"),
    [
        (WhatIf(activation_slope=0.1, pooling="min"), "Leaky ReLU (what if?)", "max(0.1 ×", "Min pooling (what if?)"),
        (WhatIf(activation_slope=1.0, pooling="average"), "No activation (what if?)", "", "Average pooling (what if?)"),
    ],
)
def test_what_if_experiments_change_the_title_equation_and_numbers(what_if, relu_title, equation, pool_title):
    network = apply(tiny_vgg_with_biases(), what_if)
    trace = network.trace(np.random.default_rng(1).random(network.input_shape, dtype=np.float32))
    ranges = color_ranges(trace, "unit")
    relu = explain(trace, "relu_1_2", 4, 0, ranges)
    assert relu.title.startswith(relu_title)
    html = numbers_html(relu, 10, 20)
    step = relu_step(trace, "relu_1_2", 10, 20, 4)
    assert values(html, "fv-y") == [pytest.approx(step.y, abs=0)]
    assert ("max(0," not in html) and (equation in html)
    assert f'points="-1,{what_if.activation_slope:g} 0,0 1,-1"' in html  # the plotted function's negative branch
    pool = explain(trace, "max_pool_2", 3, 0, ranges)
    assert pool.title.startswith(pool_title)
    html = numbers_html(pool, 5, 7)
    assert values(html, "fv-y") == [pytest.approx(pool_step(trace, "max_pool_2", 5, 7, 3).result, abs=0)]
    assert ("fv-max" in html) == (what_if.pooling != "average")  # the average keeps no single cell


def test_only_the_layers_an_experiment_switched_are_marked_what_if():
    """A network's own average pooling and leaky ReLU are no experiment; max pooling or a plain ReLU put in their
    place by the Lab's What-if are."""
    own = small_network((12, 12, 3), 3, "valid", 1, 2)
    own.layer("p1").mode, own.layer("r1").negative_slope = "average", 0.2  # as a model trained that way
    image = np.random.default_rng(2).random(own.input_shape, dtype=np.float32)
    trace = own.trace(image)
    ranges = color_ranges(trace, "unit")
    assert explain(trace, "p1", 0, 0, ranges).title.startswith("Average pooling ·")
    assert explain(trace, "r1", 0, 0, ranges).title.startswith("Leaky ReLU ·")
    switched = apply(own, WhatIf(pooling="max", activation_slope=0.0))
    trace = switched.trace(image)
    titles = {name: explain(trace, name, 0, 0, ranges).title for name in ("p1", "p2", "r1", "r2")}
    assert titles["p1"].startswith("Max pooling (what if?) ·") and titles["r1"].startswith("ReLU (what if?) ·")
    assert titles["p2"].startswith("Max pooling ·") and titles["r2"].startswith("ReLU ·")  # trained as they are


def test_there_is_no_formula_view_for_a_dense_layer():
    network = tiny_vgg_with_biases()
    trace = network.trace(np.zeros(network.input_shape, np.float32))
    with pytest.raises(ValueError, match="dense"):
        explain(trace, "output", 0, 0, color_ranges(trace, "unit"))


def test_numbers_read_as_people_write_them():
    assert format_number(-0.0001) == "0.000"  # never "−0.000"
    assert format_number(-0.0) == "0.000"
    assert format_number(-1.23456) == "−1.235"
    assert format_number(0.5, 2) == "0.50"
    assert format_number(12345.6) == "12346"
    assert format_number(-3.5e7) == "−3.5e+07"
    assert format_number(float("-inf")) == "−∞"


def test_moving_the_window_replaces_the_url_entry_under_the_names_the_app_uses():
    """The page's history rule (connection.js) needs the URL names of state.row / state.col."""
    from cnnviz.views.controls import ReloadFromUrl

    assert ReloadFromUrl().window_keys == [LINK_NAMES["row"], LINK_NAMES["col"]]


def test_a_pointer_move_in_a_page_keeps_every_model_of_the_page_known():
    """The move skips Bokeh's walk over the page's models (`one_model_walk`): it must not have added one to walk."""
    network = tiny_vgg_with_biases()
    view = FormulaView(ExplainerState(network, catalog_for(network)))
    doc = Document()
    pn.Column(view).server_doc(doc)
    view.state.select("conv_1_2", 3, level="formula")
    layout = MapsLayout.of(network, "conv_1_2")
    for row, col in [(20, 40), (0, 0), (59, 59)]:
        with set_curdoc(doc):
            point(view.pointer, layout.output_box(row, col))
        assert (view.state.row, view.state.col) == (row, col)
        known = set(doc.models)
        doc.models.recompute()
        assert set(doc.models) == known
    sources = [model for model in doc.models if type(model).__name__ == "ColumnDataSource" and "left" in model.data]
    assert any(list(source.data["left"]) == list(marks(view)[:, 0]) for source in sources)


def test_one_model_walk_walks_once_only_when_a_model_came_and_ends_its_freeze_even_when_the_work_raises(monkeypatch):
    from bokeh.document.models import DocumentModelManager
    from bokeh.models import ColumnDataSource, Div, Row

    from cnnviz.serve import one_model_walk

    walks = []
    walk = DocumentModelManager.recompute
    monkeypatch.setattr(DocumentModelManager, "recompute", lambda models: walks.append(1) or walk(models))
    doc, source, row = Document(), ColumnDataSource({"x": [1]}), Row()
    doc.add_root(row)
    doc.add_root(source)
    walks.clear()
    with one_model_walk(doc):
        for value in range(5):  # data only: what a pointer move changes
            with doc.models.freeze():  # as HoloViews does around every plot update
                source.data = {"x": [value]}
    assert walks == []
    added = Div(text="new")
    with one_model_walk(doc):
        row.children = [added]
        with doc.models.freeze():
            source.data = {"x": [9]}
    assert walks == [1] and added in set(doc.models)
    nested = Div(text="nested")
    with one_model_walk(doc):
        with one_model_walk(doc):  # a handler that walks once, called from work that does
            row.children = [nested]
        source.data = {"x": [8]}
    assert nested in set(doc.models)
    with pytest.raises(ValueError, match="the work failed"), one_model_walk(doc):
        raise ValueError("the work failed")
    later = Div(text="later")
    row.children = [later]  # no freeze was left open: the page takes the new model at once
    assert later in set(doc.models) and nested not in set(doc.models)


def test_no_plot_of_the_page_takes_a_drag_or_a_wheel():
    """Hidden pan and zoom tools still take a drag: a finger swiping over a picture on a phone would move it."""
    from bokeh.models import BoxZoomTool, PanTool, WheelZoomTool

    from cnnviz.app import Explainer
    from cnnviz.resources import shared_catalog, shared_network

    explainer = Explainer(network=shared_network(), catalog=shared_catalog())
    doc = Document()
    explainer.page().server_doc(doc)
    convs = [info.name for info in explainer.state.network.infos if info.kind == "conv2d"]
    with set_curdoc(doc):
        explainer.state.select(convs[1], 1, level="formula")
    figures = [model for model in doc.models if type(model).__name__ == "figure"]
    assert len(figures) >= 3  # the overview, the elastic view, the formula view
    for figure in figures:
        assert not [tool for tool in figure.toolbar.tools if isinstance(tool, (PanTool, BoxZoomTool, WheelZoomTool))]
