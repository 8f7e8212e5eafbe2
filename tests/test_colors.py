"""Colour ranges: which layers share one, and that palette indices encode the engine's values."""

from __future__ import annotations

import numpy as np
import pytest

from cnnviz.colors import (
    DIVERGING,
    MIDDLE,
    PALETTE_SIZE,
    color_ranges,
    diverging_color,
    diverging_indices,
    interpolate,
    layer_groups,
)
from cnnviz.engine import tiny_vgg

NETWORK = tiny_vgg(seed=1)
TRACE = NETWORK.trace(np.random.default_rng(0).random((64, 64, 3), np.float32))


def test_unit_groups_follow_each_convolution():
    assert layer_groups(NETWORK, "unit") == [
        ["conv_1_1", "relu_1_1"],
        ["conv_1_2", "relu_1_2", "max_pool_1"],
        ["conv_2_1", "relu_2_1"],
        ["conv_2_2", "relu_2_2", "max_pool_2"],
    ]


def test_module_and_global_groups():
    first = ["conv_1_1", "relu_1_1", "conv_1_2", "relu_1_2", "max_pool_1"]
    second = ["conv_2_1", "relu_2_1", "conv_2_2", "relu_2_2", "max_pool_2"]
    assert layer_groups(NETWORK, "module") == [first, second]
    assert layer_groups(NETWORK, "global") == [first + second]


@pytest.mark.parametrize("mode", ["unit", "module", "global"])
def test_every_layer_of_a_group_gets_the_groups_largest_magnitude(mode):
    ranges = color_ranges(TRACE, mode)
    for group in layer_groups(NETWORK, mode):
        expected = max(float(np.abs(TRACE[name]).max()) for name in group)
        assert [ranges[name] for name in group] == pytest.approx([expected] * len(group))


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="colour mode"):
        layer_groups(NETWORK, "rainbow")


def test_zero_is_white_and_extremes_are_the_ends():
    assert DIVERGING[MIDDLE] == "#ffffff"
    assert len(DIVERGING) == PALETTE_SIZE
    np.testing.assert_array_equal(
        diverging_indices(np.array([-2.0, -1.0, 0.0, 1.0, 2.0]), 1.0),
        [0, 0, MIDDLE, PALETTE_SIZE - 1, PALETTE_SIZE - 1],
    )
    assert diverging_color(0.0, 3.0) == "#ffffff"
    assert diverging_color(-3.0, 3.0) == DIVERGING[0]


def test_indices_round_trip_values_to_palette_precision():
    values = np.linspace(-2.5, 2.5, 1001)
    decoded = (diverging_indices(values, 2.5).astype(float) - MIDDLE) / MIDDLE * 2.5
    assert np.abs(decoded - values).max() <= 2.5 / MIDDLE / 2 + 1e-6


def test_interpolate_hits_the_stops():
    assert interpolate(["#000000", "#ffffff"], 3) == ["#000000", "#808080", "#ffffff"]
