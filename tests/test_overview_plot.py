"""The overview without a browser: its layout, pictures and streams, for networks of every shape.

The streams are fired as Bokeh would fire them (`tap.event(x=…, y=…)`, parameter changes on the state) and the
DynamicMaps' output is compared with the engine's numbers.
"""

from __future__ import annotations

import numpy as np
import panel as pn
import pytest
from bokeh.models import GlyphRenderer, Image

from cnnviz.colors import color_ranges, diverging_indices, grey_indices
from cnnviz.engine import Network, tiny_vgg
from cnnviz.examples import Example, ExampleCatalog
from cnnviz.learning_state import LearningState
from cnnviz.plots.overview import (
    BAR,
    BAR_SHARE,
    GRADIENTS,
    GREY,
    GREY_LEVELS,
    HATCH,
    MAP_LEVELS,
    MAP_PALETTE,
    MAX_ROWS,
    NAME_SHARE,
    OUTPUT_KIND,
    PREDICTED_BAR,
    PREDICTED_COLOR,
    TILE,
    ZERO,
    bar_boxes,
    connections,
    legend_data,
    mesh_lines,
    neuron_stats,
    number_text,
    overview_layout,
    overview_picture,
    tile_pixels,
    to_pixel,
)
from cnnviz.state import ExplainerState
from cnnviz.training.architecture import Architecture
from cnnviz.views.overview import Overview


def classes(count: int) -> tuple[str, ...]:
    return tuple(f"class {index}" for index in range(count))


NETWORKS = {
    "tiny-vgg": lambda: tiny_vgg(seed=2),
    "grey 28x28, 2 classes": lambda: Architecture().engine_network((28, 28, 1), classes(2), seed=1),
    "3 blocks, 20 classes": lambda: Architecture(conv_blocks=3, padding="same").engine_network(
        (32, 32, 3), classes(20), seed=2
    ),
    "32 channels, 5x5": lambda: Architecture(filters=32, kernel_size=5).engine_network((40, 40, 3), classes(4), seed=3),
    "64 channels, one block": lambda: Architecture(conv_blocks=1, filters=64).engine_network(
        (24, 24, 3), classes(3), seed=4
    ),
}


@pytest.fixture(scope="module", params=list(NETWORKS))
def network(request) -> Network:
    return NETWORKS[request.param]()


def catalog_for(network: Network) -> ExampleCatalog:
    image = np.random.default_rng(1).random(network.input_shape, dtype=np.float32)
    image.flags.writeable = False
    return ExampleCatalog((Example("noise", "Noise", "random pixels", image, None, ""),), "")


@pytest.fixture
def overview(network) -> Overview:
    return Overview(ExplainerState(network, catalog_for(network)), sections={"conv2d": "convolution"})


def neurons(layout):
    return [(column, index) for column in layout.columns for index in range(len(column.tops))]


# -- layout -------------------------------------------------------------------------------------------------


def test_the_columns_come_from_the_network(network):
    layout = overview_layout(network)
    drawn = [info for info in network.infos if info.kind in ("input", "conv2d", "relu", "maxpool2d")]
    assert [column.name for column in layout.columns[:-1]] == [info.name for info in drawn]
    assert [len(column.tops) for column in layout.columns[:-1]] == [info.shape[-1] for info in drawn]
    assert layout.columns[-1].kind == OUTPUT_KIND and len(layout.columns[-1].tops) == len(network.class_names)


def test_tiles_never_overlap_and_stay_inside_the_plot(network):
    layout = overview_layout(network)
    boxes = [layout.neuron_box(column, index) for column, index in neurons(layout)]
    for left, top, width, height in boxes:
        assert left >= 0 and left + width <= layout.width + 1e-9
        assert top > 0 and top + height <= layout.height
    for i, (l1, t1, w1, h1) in enumerate(boxes):
        for l2, t2, w2, h2 in boxes[i + 1 :]:
            assert l1 + w1 <= l2 + 1e-9 or l2 + w2 <= l1 + 1e-9 or t1 + h1 <= t2 + 1e-9 or t2 + h2 <= t1 + 1e-9


def test_a_layer_with_many_channels_wraps_into_sub_columns_of_readable_tiles(network):
    layout = overview_layout(network)
    rows = max(min(max(len(c.tops) for c in layout.columns[:-1]), MAX_ROWS), len(network.class_names))
    for column in layout.columns[:-1]:
        count = len(column.tops)
        lefts = {column.left(index) for index in range(count)}
        assert len(lefts) == -(-count // rows)  # as few sub-columns as the rows allow
        assert len(set(column.tops)) <= rows
    channels = max(len(c.tops) for c in layout.columns[:-1])
    if channels > rows:
        assert layout.height < channels * TILE  # wrapped, not one tall column


def test_a_point_maps_back_to_the_neuron_drawn_there(network):
    layout = overview_layout(network)
    for column, index in neurons(layout):
        left, top, width, height = layout.neuron_box(column, index)
        hit = layout.neuron_at(left + width / 2, top + height / 2)
        assert hit is not None and (hit[0].name, hit[1]) == (column.name, index)
    first = layout.columns[0]
    assert layout.neuron_at(first.x + first.width + 0.5, first.tops[0] + 0.5) is None  # between two columns


# -- the pictures -------------------------------------------------------------------------------------------


def _tile(picture, layout, column, index):
    """The block of the picture where neuron `index` of `column` is drawn."""
    canvas, (left, _bottom, _right, top) = picture
    pixels = tile_pixels(layout)
    row = to_pixel((column.tops[index] - (layout.height - top)) * pixels)  # the picture's top, measured downwards
    col = to_pixel((column.left(index) - left) * pixels)
    return canvas[row : row + pixels, col : col + pixels]


def sampled(values: np.ndarray, pixels: int) -> np.ndarray:
    """What a tile of `pixels` × `pixels` shows of a map: the cell under each pixel's centre."""
    rows = ((np.arange(pixels) + 0.5) * values.shape[0] // pixels).astype(int)
    cols = ((np.arange(pixels) + 0.5) * values.shape[1] // pixels).astype(int)
    return values[rows][:, cols]


@pytest.mark.parametrize("mode", ["unit", "layer"])
def test_every_tile_shows_the_engines_values_in_the_palette(network, mode):
    layout = overview_layout(network)
    trace = network.trace(np.random.default_rng(5).random(network.input_shape, np.float32))
    ranges = color_ranges(trace, mode)
    picture = overview_picture(layout, trace, trace, ranges)
    pixels = tile_pixels(layout)
    assert picture[0].dtype == np.uint8  # one byte a pixel
    for column, index in neurons(layout):
        if column.kind in ("input", OUTPUT_KIND):
            continue
        values = trace[column.name][..., index]
        tile = _tile(picture, layout, column, index)
        if not values.any():
            assert (tile == HATCH).any() and set(np.unique(tile)) <= {HATCH, ZERO}
            continue
        np.testing.assert_array_equal(tile, sampled(diverging_indices(values, ranges[column.name], MAP_LEVELS), pixels))
        if pixels >= max(values.shape):  # every cell of the map is seen
            assert np.array_equal(np.unique(sampled(np.arange(values.size).reshape(values.shape), pixels)),
                                  np.arange(values.size))  # fmt: skip
    assert MAP_PALETTE[ZERO] == "#ffffff"  # zero, and the picture between the tiles, is white


def test_the_input_channels_are_grey_levels(network):
    layout = overview_layout(network)
    trace = network.trace(np.random.default_rng(6).random(network.input_shape, np.float32))
    picture = overview_picture(layout, trace, trace, color_ranges(trace, "unit"))
    column = layout.columns[0]
    pixels = tile_pixels(layout)
    for index in range(len(column.tops)):
        tile = _tile(picture, layout, column, index)
        np.testing.assert_array_equal(tile, GREY + sampled(grey_indices(trace.image[..., index], GREY_LEVELS), pixels))
    assert (MAP_PALETTE[GREY], MAP_PALETTE[GREY + GREY_LEVELS - 1]) == ("#000000", "#ffffff")


def test_bars_are_as_long_as_the_probabilities_and_the_winner_stands_out(network):
    layout = overview_layout(network)
    trace = network.trace(np.random.default_rng(7).random(network.input_shape, np.float32))
    canvas, (left, _bottom, _right, top) = overview_picture(layout, trace, trace, color_ranges(trace, "unit"))
    pixels = tile_pixels(layout)
    boxes = bar_boxes(layout, trace.probabilities)
    output = layout.columns[-1]
    span = output.width * (1 - NAME_SHARE) * BAR_SHARE  # a whole bar's length, right of the class name
    for index, ((x0, y0, x1, y1), p) in enumerate(zip(boxes, trace.probabilities, strict=True)):
        assert x1 - x0 == pytest.approx(max(p * span, 1 / pixels), abs=0.5 / pixels)  # to the pixel, ≥ 1 pixel
        # the picture's pixels in the bar's row: the bar's colour exactly over its length, from its left edge
        row = canvas[to_pixel((top - (y0 + y1) / 2) * pixels)]
        colour = PREDICTED_BAR if index == trace.predicted_index else BAR
        drawn = np.flatnonzero(row == colour)
        assert drawn[0] == to_pixel((x0 - left) * pixels) and len(drawn) == to_pixel((x1 - x0) * pixels)
    assert np.count_nonzero(canvas == PREDICTED_BAR) and MAP_PALETTE[PREDICTED_BAR] == PREDICTED_COLOR


def test_the_mesh_joins_what_each_layer_reads(network):
    layout = overview_layout(network)
    pairs = connections(layout)
    expected = 0
    for previous, column in zip(layout.columns, layout.columns[1:], strict=False):
        every = column.kind in ("conv2d", OUTPUT_KIND)
        expected += len(column.tops) * (len(previous.tops) if every else 1)
    assert sum(map(len, pairs)) == expected
    lines = mesh_lines(layout)
    assert 0 < len(lines) <= expected
    centres = {column.x + column.width: [top + TILE / 2 for top in column.tops] for column in layout.columns}
    starts = {column.x: [top + TILE / 2 for top in column.tops] for column in layout.columns}
    for x0, top0, x1, top1 in lines:  # from a tile's middle on a column's right edge to one on the next column's left
        assert top0 in centres[x0] and top1 in starts[x1]
        assert x1 == min(x for x in starts if x > x0)


def test_stats_and_legends_describe_the_trace():
    network = tiny_vgg(seed=2)
    trace = network.trace(np.random.default_rng(5).random((64, 64, 3), np.float32))
    layout = overview_layout(network)
    stats = neuron_stats(trace, layout)
    low, high, mean = stats["conv_1_2"][4]
    values = trace["conv_1_2"][..., 4]
    assert (low, high, mean) == pytest.approx((values.min(), values.max(), values.mean()), abs=1e-4)
    unit, glob = legend_data(trace, layout, "unit"), legend_data(trace, layout, "global")
    assert len(unit) == 1 + 4 and len(glob) == 1 + 1
    assert glob[1]["high"] == f"{color_ranges(trace, 'global')['conv_1_1']:.2f}"


# -- the view and its streams -------------------------------------------------------------------------------


def test_a_tap_selects_the_neuron_under_it(overview):
    state, layout = overview.state, overview.layout
    for column, index in neurons(layout)[1::7]:
        left, top, width, height = layout.neuron_box(column, index)
        overview.tap.event(x=left + width / 2, y=layout.height - top - height / 2)
        assert (state.layer, state.neuron) == (column.name, index)
    output = layout.columns[-1]
    overview.tap.event(x=output.x + 0.2, y=layout.height - output.tops[-1] - 0.5)  # on the class's name
    assert (state.layer, state.neuron, state.level) == (output.name, len(output.tops) - 1, "elastic")
    overview.tap.event(x=layout.columns[0].x + 1.2, y=layout.height - 0.3)  # nothing there: nothing changes
    assert (state.layer, state.neuron) == (output.name, len(output.tops) - 1)


def test_the_selection_outline_follows_the_state(overview):
    """Its boxes (left, top, width, height, as the browser layer places them) reach the browser layer."""
    state, layout = overview.state, overview.layout
    assert overview._keys.outline == []
    column = next(column for column in layout.columns if column.kind == "relu")
    state.select(column.name, 1, level="elastic")
    left, top, width, height = layout.neuron_box(column, 1)
    assert overview._keys.outline == [pytest.approx((left, top, width, height))]
    rows, cols = column.shape[:2]
    state.param.update(level="formula", row=rows - 1, col=0)  # the formula view's cell, in the tile
    cell = overview._keys.outline[1]
    assert cell == pytest.approx((left, top + (rows - 1) * height / rows, width / cols, height / rows))


def test_enter_on_a_focused_neuron_selects_it(overview):
    geometry = overview._keys.geometry
    index = next(
        k for k, neuron in enumerate(geometry["neurons"]) if neuron["layer"] == overview.layout.columns[1].name
    )
    overview._keys._handle_msg({"pick": index + 1})
    assert (overview.state.layer, overview.state.neuron) == (overview.layout.columns[1].name, 1)
    overview._keys._handle_msg({"pick": 10_000})  # nothing there
    assert overview.state.neuron == 1


def test_texts_name_the_channels_and_values(overview, network):
    keys, trace = overview._keys, overview.state.trace
    captions = [neuron["caption"] for neuron in keys.geometry["neurons"] if neuron["caption"]]
    assert captions == (["grey"] if network.input_shape[2] == 1 else ["red", "green", "blue"])
    names = [neuron["name"] for neuron in keys.geometry["neurons"] if neuron["name"]]
    assert names == list(network.class_names)
    predicted = keys.marked["ov-predicted"]
    assert len(predicted) == 1 and keys.values[predicted[0]] == f"{100 * trace.probabilities.max():.1f}%"
    first = overview.layout.columns[1]
    values = trace[first.name][..., 0]
    readout = keys.readouts[len(overview.layout.columns[0].tops)]
    assert readout.startswith(f"{first.name}, neuron 1 of {len(first.tops)}")
    if values.any():
        assert f"max {values.max():.2f}".replace("-", "−") in readout


def test_an_image_switch_updates_the_plot_in_place(overview, network):
    root = pn.panel(overview).get_root()
    images = [r for r in root.select({"type": GlyphRenderer}) if isinstance(r.glyph, Image)]
    sources = [renderer.data_source for renderer in images]
    before = [np.array(source.data["image"][0]) for source in sources]
    overview.state.use_array(np.zeros(network.input_shape, np.float32), "black")
    after_images = [r for r in root.select({"type": GlyphRenderer}) if isinstance(r.glyph, Image)]
    assert [r.data_source for r in after_images] == sources  # the same glyphs and sources, new data
    assert any(not np.array_equal(b, np.array(s.data["image"][0])) for b, s in zip(before, sources, strict=True))


def test_backward_mode_shows_the_gradients_in_their_own_colours(network):
    state = ExplainerState(network, catalog_for(network))
    learning = LearningState(state)
    overview = Overview(state, learning=learning)
    assert overview.picture[()].data.max() < GRADIENTS
    learning.backward_mode = True
    picture = overview.picture[()]
    assert picture.data.min() >= GRADIENTS  # the gradient half of the palette
    assert "loss" in overview._keys.hint
    backward = learning.backward
    slopes = [value for value in overview._keys.values if value]
    pairs = zip(backward.probabilities, backward.target, strict=True)
    assert slopes == [number_text(p - y, 3) for p, y in pairs]
    assert any("gradient" in legend["title"] for legend in overview._keys.legends)
    learning.backward_mode = False
    assert overview.picture[()].data.max() < GRADIENTS
