"""The overview's data: geometry, and heatmap indices that decode to the engine's values in every mode."""

from __future__ import annotations

import numpy as np
import pytest

from cnnviz.colors import MIDDLE, color_ranges
from cnnviz.engine import tiny_vgg
from cnnviz.plots.overview import (
    OUTPUT_KIND,
    PREDICTED_COLOR,
    TILE,
    bar_data,
    heatmap_data,
    input_data,
    legend_data,
    neuron_stats,
    overview_layout,
    overview_plot,
)

NETWORK = tiny_vgg(seed=2)
TRACE = NETWORK.trace(np.random.default_rng(5).random((64, 64, 3), np.float32))
LAYOUT = overview_layout(NETWORK)


def test_layout_has_a_column_per_drawn_layer_and_103_heatmaps():
    names = [column.name for column in LAYOUT.columns]
    assert names == [
        "input",
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
        "output",
    ]
    heatmaps = sum(len(column.tops) for column in LAYOUT.columns if column.kind != OUTPUT_KIND)
    assert heatmaps == 103
    assert len(LAYOUT.column("output").tops) == 10
    xs = [column.x for column in LAYOUT.columns]
    assert xs == sorted(xs) and LAYOUT.width >= xs[-1] + LAYOUT.columns[-1].width


def test_tiles_do_not_overlap_and_fit_the_plot():
    for column in LAYOUT.columns:
        tops = np.array(column.tops)
        assert np.all(np.diff(tops) >= TILE)
        assert tops.min() > 0 and tops.max() + TILE <= LAYOUT.height


@pytest.mark.parametrize("mode", ["unit", "module", "global"])
def test_heatmap_pixels_decode_to_the_engines_values(mode):
    ranges = color_ranges(TRACE, mode)
    data = heatmap_data(TRACE, LAYOUT, ranges)
    row = 0
    for column in LAYOUT.columns:
        if column.kind in ("input", OUTPUT_KIND):
            continue
        for neuron, top in enumerate(column.tops):
            image = np.flipud(data["image"][row])  # Bokeh draws row 0 at the bottom
            values = TRACE[column.name][..., neuron]
            decoded = (image.astype(float) - MIDDLE) / MIDDLE * ranges[column.name]
            assert image.dtype == np.uint8 and image.shape == values.shape
            np.testing.assert_allclose(
                decoded, np.clip(values, -ranges[column.name], ranges[column.name]), atol=ranges[column.name] / MIDDLE
            )
            assert data["x"][row] == column.x
            assert data["y"][row] == pytest.approx(LAYOUT.height - top - TILE)
            row += 1
    assert row == 100


def test_input_channels_are_grey_levels_of_the_pixels():
    data = input_data(TRACE, LAYOUT)
    assert len(data["image"]) == 3
    for channel, image in enumerate(data["image"]):
        np.testing.assert_allclose(np.flipud(image) / 255, TRACE.image[..., channel], atol=0.5 / 255 + 1e-6)


def test_bars_are_as_long_as_the_probabilities_and_the_winner_stands_out():
    data = bar_data(TRACE, LAYOUT)
    lengths = np.subtract(data["right"], data["left"])
    np.testing.assert_allclose(lengths / lengths.sum(), TRACE.probabilities, rtol=1e-5)
    assert data["color"][TRACE.predicted_index] == PREDICTED_COLOR
    assert data["color"].count(PREDICTED_COLOR) == 1


def test_stats_and_legends_describe_the_trace():
    stats = neuron_stats(TRACE, LAYOUT)
    low, high, mean = stats["conv_1_2"][4]
    values = TRACE["conv_1_2"][..., 4]
    assert (low, high, mean) == pytest.approx((values.min(), values.max(), values.mean()), abs=1e-4)
    assert [row[0] for row in stats["output"]] == pytest.approx(TRACE.probabilities.tolist())
    unit, glob = legend_data(TRACE, LAYOUT, "unit"), legend_data(TRACE, LAYOUT, "global")
    assert len(unit) == 1 + 4 and len(glob) == 1 + 1
    assert glob[1]["high"] == f"{color_ranges(TRACE, 'global')['conv_1_1']:.2f}"


def test_plot_update_replaces_the_source_data():
    plot = overview_plot(TRACE, LAYOUT, color_ranges(TRACE, "unit"))
    other = NETWORK.trace(np.zeros((64, 64, 3), np.float32))
    plot.update(other, LAYOUT, color_ranges(other, "unit"))
    assert len(plot.heatmaps.data["image"]) == 100
    np.testing.assert_array_equal(plot.inputs.data["image"][0], 0)
