"""Session state driven as a view would drive it, with no browser."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from cnnviz.engine import tiny_vgg
from cnnviz.examples import build_catalog
from cnnviz.state import ExplainerState

NETWORK = tiny_vgg(seed=4)


@pytest.fixture
def state(tmp_path):
    return ExplainerState(NETWORK, build_catalog(tmp_path))  # no gallery there: probes only


def png(color=(200, 30, 30), size=(90, 70)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return buffer.getvalue()


def test_starts_on_the_first_example_with_its_trace(state):
    assert state.example == state.catalog.default.key
    np.testing.assert_array_equal(state.trace.image, state.catalog.default.image)
    assert state.catalog.hint  # no photos prepared: the hint says how to add them


def test_choosing_an_example_retraces(state):
    key = state.catalog.examples[3].key
    state.example = key
    np.testing.assert_array_equal(state.trace.image, state.catalog[key].image)
    np.testing.assert_array_equal(state.trace.probabilities, NETWORK.trace(state.catalog[key].image).probabilities)


def test_unknown_example_falls_back_and_says_so(state):
    state.example = "no-such-image"
    assert state.example == state.catalog.default.key
    assert "no-such-image" in state.message


def test_upload_replaces_the_image_and_clears_the_example(state):
    assert state.upload(png())
    assert state.example == "" and state.original is not None and state.message == ""
    np.testing.assert_allclose(state.image[..., 0], 200 / 255, atol=1e-6)
    assert state.trace.image is state.image or np.array_equal(state.trace.image, state.image)


def test_bad_upload_keeps_the_previous_image_and_explains(state):
    before = state.image
    assert not state.upload(b"%PDF-1.4 not an image")
    assert state.image is before
    assert "not an image" in state.message


def test_selection_is_validated(state):
    state.select("conv_2_1", 9)
    assert (state.layer, state.neuron) == ("conv_2_1", 9)
    with pytest.raises(IndexError):
        state.select("conv_2_1", 10)
    with pytest.raises(KeyError):
        state.select("conv_9", 0)
    state.clear_selection()
    assert state.layer == "" and state.level == "overview"


@pytest.mark.parametrize(
    ("layer", "level"),
    [
        ("conv_1_1", "elastic"),
        ("output", "elastic"),
        ("relu_2_1", "formula"),
        ("max_pool_1", "formula"),
        ("input", "overview"),
    ],
)
def test_selecting_a_neuron_opens_the_view_that_explains_it(state, layer, level):
    state.select(layer, 1)
    assert state.level == level


def test_back_climbs_one_level_at_a_time(state):
    state.select("conv_1_2", 3)
    state.param.update(level="formula", input_channel=4, row=5, col=6)
    state.back()
    assert (state.layer, state.level) == ("conv_1_2", "elastic")
    state.back()
    assert (state.layer, state.level) == ("", "overview")
    state.select("softmax", 2, level="formula")
    state.back()  # to softmax mode, the view beneath the formula, then to the class's score
    assert (state.layer, state.neuron, state.level) == ("softmax", 2, "elastic")
    state.back()
    assert (state.layer, state.neuron, state.level) == ("output", 2, "elastic")
    state.select("relu_1_1", 0)
    state.back()
    assert state.level == "overview"


def test_use_array_checks_the_shape(state):
    state.use_array(np.full((64, 64, 3), 0.25))
    assert state.example == "" and state.trace.image.mean() == pytest.approx(0.25)
    with pytest.raises(ValueError, match="shape"):
        state.use_array(np.zeros((32, 32, 3)))


def test_sessions_do_not_share_state(tmp_path):
    catalog = build_catalog(tmp_path)
    first, second = ExplainerState(NETWORK, catalog), ExplainerState(NETWORK, catalog)
    first.param.update(example=catalog.examples[2].key, color_mode="global", layer="conv_1_1")
    assert second.example == catalog.default.key
    assert second.color_mode == "unit" and second.layer == ""


def test_behind_a_formula_view_the_shown_window_follows_once_the_pointer_rests(state):
    """`shown_window` (the elastic marker, the overview's outline) lags only behind a formula view, and only
    while the pointer moves: there a move redraws the formula view alone."""
    waiting = []
    state.echo_later = waiting.append
    conv = next(info.name for info in state.network.infos if info.kind == "conv2d")
    state.select(conv, 1)
    state.param.update(row=3, col=4)
    assert state.shown_window == (3, 4) and waiting == []  # the elastic view: at once
    state.select(conv, 1, level="formula")
    assert state.shown_window == (3, 4) and waiting == []
    for col in (5, 6, 7):
        state.param.update(row=3, col=col)
    assert state.shown_window == (3, 4) and len(waiting) == 3
    waiting[-1]()  # the pointer rested
    assert state.shown_window == (3, 7)
    state.back()
    state.param.update(row=9, col=9)
    assert state.shown_window == (9, 9) and len(waiting) == 3
