"""Every pane of the real app, rendered to Bokeh models, for networks that are not Tiny VGG (issue 15, item 4).

For each network (a grey 28×28 input with 2 classes; three 'same' conv blocks with 20 classes; 'same' padding with
stride 2 and a leaky ReLU; PyTorch's explicit padding with stride 2; 5×5 kernels with 'same' padding; one 7×7 block
on a grey input) one `Explainer` renders its whole page into a Bokeh document, and the learner's way through it is
walked with the panes' own HoloViews streams, as Bokeh fires them (`tap.event(x=…, y=…)`,
`pointer.event(x=…, y=…)`): a tap on an overview tile opens its elastic or formula view, a tap on an intermediate
result, a class score or a softmax row goes one level down, and backward mode opens the backward step of every
kind. At each level the headings, captions and summaries (read
from the rendered models where the page carries them) must name the network's own shapes, kernel, stride,
padding, channels and classes, and the numbers shown must be the engine's.

The per-pane tests (test_overview_plot, test_elastic_data, test_elastic_dense, test_formula_data,
test_backprop_formula) check each pane's arithmetic in depth; this one checks that the assembled page gets every
size and name from the network it explains.
"""

from __future__ import annotations

import html
import re

import numpy as np
import panel as pn
import pytest
from bokeh.document import Document
from test_architecture_matrix import MATRIX, classes
from test_backprop_formula import numbers, one, previous_of
from test_formula_data import layers_of, point

from cnnviz.app import Explainer
from cnnviz.engine.explain import conv_step, dense_step, flatten_index, pool_step, relu_step, softmax_terms
from cnnviz.examples import build_catalog
from cnnviz.plots.elastic import cell_box, source_title
from cnnviz.plots.formula import WHAT_IF, MapsLayout
from cnnviz.plots.overview import (
    BAR,
    OUTPUT_KIND,
    PREDICTED_BAR,
    bar_boxes,
    input_channel_name,
    tile_pixels,
    to_pixel,
)
from cnnviz.training.architecture import Architecture
from cnnviz.views.elastic import ConvElastic
from cnnviz.views.elastic_dense import FlattenElastic, SoftmaxElastic

NETWORKS = {
    **{name: MATRIX[name] for name in ("28x28x1, 2 classes", "32x32x3, 20 classes, 3 blocks same", "same + stride 2",
                                       "PyTorch padding + stride 2", "16 filters, one 7x7 block")},
    "5x5 kernels, 'same' padding": lambda: Architecture(kernel_size=5, padding="same", filters=4).engine_network(
        (24, 24, 3), classes(3), seed=8
    ),
}  # fmt: skip
OTHER_NETWORKS_WORDS = ("Tiny VGG", "64×64", "64 × 64", "10 classes", "koala")
"""Said by a page that explains Tiny VGG; never by one that explains another network."""


@pytest.fixture(scope="module", params=list(NETWORKS))
def session(request, tmp_path_factory) -> tuple[Explainer, Document]:
    """One app for the network, its whole page rendered into a Bokeh document (no server, no browser)."""
    network = NETWORKS[request.param]()
    explainer = Explainer(network=network, catalog=build_catalog(tmp_path_factory.mktemp("no-gallery"), network))
    document = Document()
    explainer.page().server_doc(document)
    return explainer, document


@pytest.fixture(autouse=True)
def at_rest(session):
    """Each test starts from the overview in forward mode, as the page opens.

    Bokeh takes stock of the document's models once, after the test, rather than after each change (what Panel's
    `hold(freeze=True)` does): its walk over the whole page after every change is most of what a click costs here.
    """
    explainer, document = session
    with document.models.freeze():
        yield
        explainer.learning.backward_mode = False
        explainer.state.show_details = False
        explainer.state.clear_selection()


# -- reading the rendered page ------------------------------------------------------------------------------------
def on_page(document: Document, viewable):
    """The Bokeh model a Panel object renders to under one of the page's roots."""
    roots = {root.ref["id"] for root in document.roots}
    (model,) = [model for ref, (model, _) in viewable._models.items() if ref in roots]
    return model


def component(document: Document, viewable):
    """What a Panel ESM component (OverviewKeys, ElasticBar, FormulaDialog) sends the browser: its `data` model."""
    return on_page(document, viewable).data


def rendered(document: Document, pane: pn.pane.HTML) -> str:
    """An HTML pane's text, checked to be what its model on the page carries (Panel escapes it)."""
    text = str(pane.object)
    assert text in html.unescape(on_page(document, pane).text), "the page does not carry the pane's text"
    return text


def tap_overview(explainer: Explainer, layer: str, neuron: int) -> None:
    """A tap on a neuron's tile (or a class's row) of the overview, through its Tap stream."""
    layout = explainer.overview.layout
    point(explainer.overview.tap, layout.plot_box(*layout.neuron_box(layout.column(layer), neuron)))


def sizes(shape) -> str:
    return "×".join(str(size) for size in shape)


# -- overview -----------------------------------------------------------------------------------------------------
def test_the_overview_draws_the_networks_columns_shapes_classes_and_probabilities(session):
    explainer, document = session
    state, network = explainer.state, explainer.state.network
    state.show_details = True  # the layer labels say their shapes
    keys = component(document, explainer.overview._keys)
    columns = [info for info in network.infos if info.kind in ("input", "conv2d", "relu", "maxpool2d")]
    dense = next(info for info in reversed(network.infos) if info.kind == "dense")
    assert [label["text"] for label in keys.labels] == [info.name for info in [*columns, dense]]
    assert [label["shape"] for label in keys.labels] == [sizes(info.shape) for info in [*columns, dense]]
    neurons = keys.geometry["neurons"]
    channels = network.input_shape[2]
    assert [n["caption"] for n in neurons if n["layer"] == "input"] == [
        input_channel_name(channels, c) for c in range(channels)
    ]
    assert [n["name"] for n in neurons if n["name"]] == list(network.class_names)
    for info in columns:
        assert sum(n["layer"] == info.name for n in neurons) == info.shape[2], info.name
    # the probabilities: the bars' lengths and the texts beside them are the trace's
    trace = state.trace
    layout = explainer.overview.layout
    pixels = tile_pixels(layout)
    picture = explainer.overview.picture[()]  # one row through the middle of each bar: as long as bar_boxes says
    top = picture.bounds.lbrt()[3]
    for index, (x0, y0, x1, y1) in enumerate(bar_boxes(layout, trace.probabilities)):
        row = picture.data[to_pixel((top - (y0 + y1) / 2) * pixels)]
        colour = PREDICTED_BAR if index == trace.predicted_index else BAR
        assert np.count_nonzero(row == colour) == to_pixel((x1 - x0) * pixels)
    outputs = [i for i, n in enumerate(neurons) if n["name"]]
    assert [keys.values[i] for i in outputs] == [f"{100 * p:.1f}%" for p in trace.probabilities]
    assert keys.marked["ov-predicted"] == [outputs[trace.predicted_index]]
    conv = layers_of(network, "conv2d")[0]
    first = next(i for i, n in enumerate(neurons) if n["layer"] == conv)
    assert keys.readouts[first].startswith(f"{conv}, neuron 1 of {network.info(conv).shape[2]}")


# -- conv elastic views -------------------------------------------------------------------------------------------
def test_every_conv_layer_opens_from_its_tile_and_describes_its_own_kernel_stride_and_padding(session):
    explainer, document = session
    state, network = explainer.state, explainer.state.network
    for layer in layers_of(network, "conv2d"):
        conv, neuron = network.layer(layer), network.info(layer).shape[2] - 1
        tap_overview(explainer, layer, neuron)
        assert (state.layer, state.neuron, state.level) == (layer, neuron, "elastic")
        pane = explainer.elastic.pane
        assert isinstance(pane, ConvElastic)
        source = previous_of(network, layer)
        heading = component(document, explainer.elastic.bar).heading
        assert heading == f"Convolution · {layer}, neuron {neuron + 1}, computed from {source}"
        kr, kc = conv.window
        (rows, cols, channels), (out_rows, out_cols, _) = state.trace.input_of(layer).shape, state.trace[layer].shape
        summary = rendered(document, pane._summary)
        assert re.findall(r"(\d+)×(\d+) kernel", summary) == [(str(kr), str(kc))], summary
        stride = str(conv.stride[0]) if conv.stride[0] == conv.stride[1] else sizes(conv.stride)
        assert f"stride {stride}," in summary
        assert ("'same' padding" in summary) == (conv.padding == "same")
        assert ("no padding" in summary) == (conv.padding == "valid")
        if conv.padding not in ("valid", "same"):  # explicit amounts, as PyTorch's padding=p
            assert f"{conv.padding[0][0]} ring" in summary
        assert ("keeps the size" in summary) == (conv.padding == "same" and conv.stride == (1, 1))
        assert f"sum of {channels} intermediate results" in summary and f"the {out_rows}×{out_cols} output" in summary
        labels = next(element for element in pane._plot.object[()] if type(element).__name__ == "Labels")
        texts = list(labels.dimension_values("text"))
        output = f"{out_rows}×{out_cols}"
        for caption in (f"{source_title(source)}\n{rows}×{cols}×{channels}", f"kernels\n{kr}×{kc} each",
                        f"intermediate\nresults {output}", f"{layer}, neuron {neuron + 1}\n{output}"):  # fmt: skip
            assert caption in texts, (caption, texts)
        shown = [button for button in pane._explain.objects[1:] if button.visible]  # a lead text, then the buttons
        assert len(shown) == channels  # one shown per input channel: buttons are kept across layers, relabelled
    # pointing at the last layer's last output cell: the readout and the marker follow, with the engine's numbers
    layout = pane.explained.layout
    point(pane.pointer, cell_box(layout.output_box(), layout.output_size, out_rows - 1, out_cols - 1))
    assert (state.row, state.col) == (out_rows - 1, out_cols - 1)
    step = conv_step(state.trace, layer, out_rows - 1, out_cols - 1, neuron)
    readout = rendered(document, pane._readout)
    np.testing.assert_allclose(numbers(readout, "el-term")[:channels], step.channel_sums, atol=1e-5)
    assert one(readout, "el-result") == pytest.approx(step.result, abs=1e-6)
    assert tuple(pane.marks[()].array()[0]) == pytest.approx(layout.window_box(0, out_rows - 1, out_cols - 1))


# -- formula views ------------------------------------------------------------------------------------------------
def test_a_tap_on_an_intermediate_result_opens_its_conv_formula_linked_to_the_elastic_view_and_overview(session):
    explainer, document = session
    state, network = explainer.state, explainer.state.network
    layer = layers_of(network, "conv2d")[-1]
    conv, neuron = network.layer(layer), 1
    tap_overview(explainer, layer, neuron)
    elastic = explainer.elastic.pane
    layout = elastic.explained.layout
    channel = layout.channels - 1
    point(elastic.tap, cell_box(layout.intermediate_box(channel), layout.output_size, 0, 0))
    assert (state.layer, state.neuron, state.level, state.input_channel) == (layer, neuron, "formula", channel)
    formula = explainer.formula
    assert formula is not None and formula.dialog.open  # built at the first formula view, and put on the page
    dialog = component(document, explainer.formula.dialog)
    assert dialog.heading == f"Convolution · {layer}, neuron {neuron + 1}, input channel {channel + 1}"
    assert dialog.kind == "conv2d" and dialog.playable
    (rows, cols, _), (out_rows, out_cols, _) = state.trace.input_of(layer).shape, state.trace[layer].shape
    captions = rendered(document, formula._captions)
    assert f"({rows}×{cols})" in captions and f"({out_rows}×{out_cols})" in captions
    maps = formula.explained.layout
    assert maps == MapsLayout.of(network, layer) and maps.window == conv.window and maps.stride == conv.stride
    row, col = out_rows - 1, out_cols - 1
    point(formula.pointer, maps.output_box(row, col))
    assert (state.row, state.col) == (row, col)
    step = conv_step(state.trace, layer, row, col, neuron)
    shown = rendered(document, formula._numbers.pane)
    kernel = re.search(r'<table class="fv-grid fv-kernel">(.*?)</table>', shown)[1]
    assert (kernel.count("<tr>"), kernel.count("<td")) == (conv.window[0], conv.window[0] * conv.window[1])
    np.testing.assert_allclose(numbers(shown, "fv-kernel"), step.kernel[:, :, channel].ravel(), atol=0)
    np.testing.assert_allclose(numbers(shown, "fv-window"), step.window[:, :, channel].ravel(), atol=0)
    assert one(shown, "fv-result") == pytest.approx(step.result, abs=0)
    # the same window in the elastic view beneath and in the overview
    assert tuple(elastic.marks[()].array()[0]) == pytest.approx(layout.window_box(0, row, col))
    assert len(explainer.overview._keys.outline) == 2  # the neuron's tile and the explained cell in it
    state.back()
    assert state.level == "elastic" and not formula.dialog.open


def test_relu_and_pooling_tiles_open_their_formula_with_the_layers_window_and_the_engines_numbers(session):
    explainer, document = session
    state, network = explainer.state, explainer.state.network
    relu, pool = layers_of(network, "relu")[-1], layers_of(network, "maxpool2d")[0]
    for layer, step_of in [(relu, relu_step), (pool, pool_step)]:
        channel = network.info(layer).shape[2] - 1
        tap_overview(explainer, layer, channel)
        assert (state.layer, state.neuron, state.level) == (layer, channel, "formula")
        formula, dialog = explainer.formula, component(document, explainer.formula.dialog)
        assert dialog.heading.endswith(f"· {layer}, channel {channel + 1}") and dialog.kind == network.info(layer).kind
        assert WHAT_IF not in dialog.heading  # the network's own layer (a leaky ReLU too), no experiment
        (rows, cols, _), (out_rows, out_cols, _) = state.trace.input_of(layer).shape, state.trace[layer].shape
        captions = rendered(document, formula._captions)
        assert f"{previous_of(network, layer)}, channel {channel + 1} ({rows}×{cols})" in captions
        assert f"Output: {layer}, channel {channel + 1} ({out_rows}×{out_cols})" in captions
        maps = formula.explained.layout
        point(formula.pointer, maps.output_box(out_rows - 1, out_cols - 1))
        assert (state.row, state.col) == (out_rows - 1, out_cols - 1)
        step = step_of(state.trace, layer, out_rows - 1, out_cols - 1, channel)
        shown = rendered(document, formula._numbers.pane)
        if step_of is relu_step:
            assert one(shown, "fv-y") == pytest.approx(step.y, abs=0)
        else:
            pool = network.layer(layer)
            assert maps.window == pool.window and maps.stride == pool.stride
            assert len(numbers(shown, "fv-term")) == pool.window[0] * pool.window[1]
            assert one(shown, "fv-y") == pytest.approx(step.result, abs=0)
        state.back()
        assert state.level == "overview" and not formula.dialog.open


# -- flatten, softmax mode and the softmax formula ----------------------------------------------------------------
def test_a_class_opens_its_flatten_view_then_softmax_mode_then_its_softmax_formula(session):
    explainer, document = session
    state, network = explainer.state, explainer.state.network
    names, count = network.class_names, len(network.class_names)
    dense = next(c.name for c in explainer.overview.layout.columns if c.kind == OUTPUT_KIND)
    unit = count - 1
    tap_overview(explainer, dense, unit)
    assert (state.layer, state.neuron, state.level) == (dense, unit, "elastic")
    flatten = explainer.elastic.pane
    assert isinstance(flatten, FlattenElastic)
    assert f"“{names[unit]}”" in component(document, explainer.elastic.bar).heading
    source = previous_of(network, previous_of(network, dense))  # the maps the Flatten layer unrolls
    rows, cols, channels = network.info(source).shape
    captions = rendered(document, flatten._captions)
    assert f"{channels} map{'s' if channels != 1 else ''} of {rows}×{cols}" in captions
    assert f"{rows * cols * channels} values" in captions and f"score of “{names[unit]}”" in captions
    layout = flatten.layout
    point(flatten.pointer, layout.cell_box(rows - 1, cols - 1, channels - 1))
    index = flatten_index((rows, cols, channels), rows - 1, cols - 1, channels - 1)
    assert flatten.inspected == index == rows * cols * channels - 1
    step = dense_step(state.trace, dense, unit)
    shown = rendered(document, flatten._numbers)
    assert one(shown, "ed-product") == pytest.approx(step.products[index], abs=0)
    assert one(shown, "ed-score") == pytest.approx(step.result, abs=0)
    assert f"{source}, channel {channels}, row {rows - 1}, column {cols - 1}" in shown
    # the score opens softmax mode
    point(flatten.tap, layout.score_box)
    softmax = explainer.elastic.pane
    assert isinstance(softmax, SoftmaxElastic) and (state.layer, state.level) == (network.infos[-1].name, "elastic")
    assert component(document, explainer.elastic.bar).heading == f"Softmax: from {count} class scores to probabilities"
    assert [button.label for button in softmax.buttons] == list(names)
    terms = softmax_terms(state.trace.logits)
    softmax.pointer.event(x=2.0, y=-0.5)  # the first class's row
    assert softmax.hovered == 0
    shown = rendered(document, softmax._numbers)
    assert one(shown, "ed-probability") == pytest.approx(terms.probabilities[0], rel=1e-12)
    assert names[0] in shown and "Σ e^z = " in rendered(document, softmax._captions)
    # a tap on a row opens that class's softmax formula over softmax mode
    softmax.tap.event(x=0.6, y=-(count - 0.5))
    assert (state.neuron, state.level) == (count - 1, "formula")
    dialog = component(document, explainer.formula.dialog)
    assert dialog.heading == f"Softmax · class “{names[-1]}”" and dialog.kind == "softmax" and not dialog.playable
    shown = rendered(document, explainer.formula._numbers.pane)
    assert one(shown, "fv-result") == pytest.approx(terms.probabilities[-1], rel=1e-12)
    np.testing.assert_allclose(numbers(shown, "fv-logit-value"), terms.logits, rtol=1e-12)
    assert len(re.findall(r'data-pick="\d+"', shown)) == count
    state.back()  # to softmax mode beneath, then to the class's score, as test_state says
    assert (state.layer, state.neuron, state.level) == (network.infos[-1].name, count - 1, "elastic")
    assert softmax._panel.visible
    state.back()
    assert (state.layer, state.neuron, state.level) == (dense, count - 1, "elastic") and flatten._panel.visible


# -- backward mode ------------------------------------------------------------------------------------------------
def test_backward_mode_explains_every_kinds_backward_step_with_the_engines_gradients(session):
    explainer, document = session
    state, network, learning = explainer.state, explainer.state.network, explainer.learning
    learning.backward_mode = True
    backward = learning.backward
    dense = next(info.name for info in reversed(network.infos) if info.kind == "dense")
    opened = [
        (layers_of(network, "conv2d")[0], 0), (layers_of(network, "relu")[-1], 0),
        (layers_of(network, "maxpool2d")[-1], 0), (layers_of(network, "flatten")[0], 0),
        (dense, backward.true_class), (network.infos[-1].name, 0),
    ]  # fmt: skip
    for layer, neuron in opened:
        kind = network.info(layer).kind
        state.select(layer, neuron, level="formula")  # as a link or the Learn card's "follow the gradient" does
        view = explainer.formula.backward
        assert view.active and explainer.formula.dialog.open
        dialog = component(document, explainer.formula.dialog)
        assert dialog.kind == f"backward-{kind}" and layer in dialog.heading and WHAT_IF not in dialog.heading
        if kind in ("conv2d", "relu", "maxpool2d"):
            (rows, cols, _), (out_rows, out_cols, _) = state.trace.input_of(layer).shape, state.trace[layer].shape
            captions = rendered(document, view._captions)
            assert f"({rows}×{cols})" in captions
            assert f"∂L/∂({layer}), channel {neuron + 1} ({out_rows}×{out_cols})" in captions
        if kind == "relu":  # the window follows the pointer, and the gradient it passes back with it
            point(view.pointer, view.explained.layout.output_box(out_rows - 1, out_cols - 1))
            assert (state.row, state.col) == (out_rows - 1, out_cols - 1)
        shown = rendered(document, view._numbers.pane)
        if kind == "conv2d":
            kernel = re.search(r'<table class="fv-grid fv-kernel-gradient[^"]*">(.*?)</table>', shown)[1]
            assert kernel.count("<tr>") == network.layer(layer).window[0]
            bias = backward.weight_gradients[layer]["bias"][neuron]
            assert one(shown, "fv-bias-gradient") == pytest.approx(bias, rel=1e-9, abs=1e-15)
        elif kind in ("relu", "maxpool2d"):
            upstream = backward.upstream_of(layer)[state.row, state.col, neuron]
            assert one(shown, "fv-upstream") == pytest.approx(upstream, rel=1e-9, abs=1e-15)
            if kind == "relu":
                passed = backward.gradients[previous_of(network, layer)][state.row, state.col, neuron]
                assert one(shown, "fv-passed-gradient") == pytest.approx(passed, rel=1e-9, abs=1e-15)
        elif kind in ("flatten", "dense"):
            css = "fv-upstream" if kind == "dense" else "fv-passed-gradient"
            assert one(shown, css) == pytest.approx(backward.upstream_of(layer)[neuron], rel=1e-9, abs=1e-15)
        else:
            np.testing.assert_allclose(numbers(shown, "fv-p-minus-y"), backward.probabilities - backward.target)
            assert one(shown, "fv-loss") == pytest.approx(backward.loss, rel=1e-9)
            assert len(re.findall(r"data-pick='\d+'", shown)) == len(network.class_names)
    state.back()
    learning.backward_mode = False
    assert not explainer.formula.backward.active


def test_no_text_on_the_page_speaks_of_tiny_vgg(session):
    """Run last for each network: by then every pane above has put its texts on the page."""
    _, document = session
    document.models.recompute()
    texts = [html.unescape(model.text) for model in document.models if isinstance(getattr(model, "text", None), str)]
    assert len(texts) > 20
    assert not [words for words in OTHER_NETWORKS_WORDS if any(words in text for text in texts)]
