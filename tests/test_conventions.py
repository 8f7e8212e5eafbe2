"""One way to say things across the app: colours (blue positive, red negative), numbers and articles."""

from __future__ import annotations

import holoviews as hv
import numpy as np
import pytest

from cnnviz.colors import DIVERGING, color_ranges, layer_groups
from cnnviz.engine import tiny_vgg
from cnnviz.examples import with_article
from cnnviz.plots.lab import saliency_map
from cnnviz.plots.overview import number_text

NETWORK = tiny_vgg(seed=1)


def test_layer_mode_gives_every_layer_its_own_range():
    trace = NETWORK.trace(np.random.default_rng(0).random((64, 64, 3), np.float32))
    groups = layer_groups(NETWORK, "layer")
    assert groups == [[name] for group in layer_groups(NETWORK, "global") for name in group]
    ranges = color_ranges(trace, "layer")
    for (name,) in groups:
        assert ranges[name] == pytest.approx(float(np.abs(trace[name]).max()) or 1.0)


def test_saliency_uses_the_apps_diverging_colours_blue_for_raising_the_score():
    strength = np.linspace(-1, 1, 64 * 64).reshape(64, 64)
    overlay = saliency_map(np.zeros((64, 64, 3)), strength, "koala")
    options = hv.Store.lookup_options("bokeh", overlay.Image.II, "style").kwargs
    assert options["cmap"] == DIVERGING  # red (negative) - white - blue (positive), as in every other view


@pytest.mark.parametrize(
    ("value", "digits", "text"),
    [
        (-0.001, 2, "0.00"),
        (-0.004, 2, "0.00"),
        (0.0, 2, "0.00"),
        (-0.04, 1, "0.0"),
        (-1.5, 2, "−1.50"),
        (2.345, 1, "2.3"),
    ],
)
def test_numbers_never_read_minus_zero(value, digits, text):
    assert number_text(value, digits) == text


@pytest.mark.parametrize(
    ("noun", "text"),
    [("espresso", "an espresso"), ("orange", "an orange"), ("koala", "a koala"), ("lifeboat", "a lifeboat")],
)
def test_captions_use_the_right_article(noun, text):
    assert with_article(noun) == text
