"""The Lab without a browser: every number shown equals a direct engine computation, and every change undoes."""

from __future__ import annotations

import base64
import json
from dataclasses import replace

import numpy as np
import panel as pn
import pytest
from panel.io.location import Location

from cnnviz.engine import Conv2D, Dense, Flatten, Network, ReLU, Softmax
from cnnviz.engine.experiments import CLASSIC_KERNELS, WhatIf, apply, compare
from cnnviz.examples import Example, ExampleCatalog, build_catalog
from cnnviz.lab_state import (
    AS_TRAINED,
    changes_in_words,
    describe_experiment,
    model_card_path,
    parse_experiment,
    pooling_choices,
    shared_history,
)
from cnnviz.resources import default_weights_path, shared_network
from cnnviz.state import ExplainerState, SharedLink
from cnnviz.views.lab import Lab

EXPERIMENTS = {
    "identity instead of ReLU": WhatIf(activation_slope=1.0),
    "leaky ReLU": WhatIf(activation_slope=0.1),
    "min pooling": WhatIf(pooling="min"),
    "average pooling": WhatIf(pooling="average"),
    "a neuron switched off": WhatIf(silenced=frozenset({("conv_1_2", 4), ("relu_2_1", 0)})),
    "a classic kernel": WhatIf().with_kernel("conv_1_1", 2, 1, np.array(CLASSIC_KERNELS["vertical edge"])),
}


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    return build_catalog(tmp_path_factory.mktemp("no-gallery"))  # generated probes only


@pytest.fixture
def state(catalog):
    return ExplainerState(shared_network(), catalog)


def assert_same_trace(trace, expected) -> None:
    assert trace.names == expected.names
    for name in expected.names:
        np.testing.assert_array_equal(trace[name], expected[name], err_msg=name)


@pytest.mark.parametrize("what_if", EXPERIMENTS.values(), ids=EXPERIMENTS.keys())
def test_each_experiment_traces_the_changed_network(state, what_if):
    state.what_if = what_if
    assert state.what_if == what_if
    assert_same_trace(state.trace, apply(state.network, what_if).trace(state.image))
    assert_same_trace(state.baseline_trace, state.network.trace(state.image))  # side by side: as trained
    assert state.active_network is state.trace.network


def test_experiments_combine_with_a_checkpoint(state):
    what_if = WhatIf(pooling="min", silenced=frozenset({("conv_2_1", 3)}))
    state.param.update(epoch=8, experiment=describe_experiment(what_if))
    checkpoint = Network.load(shared_history().checkpoint(8).path)
    assert_same_trace(state.trace, apply(checkpoint, what_if).trace(state.image))
    assert_same_trace(state.baseline_trace, checkpoint.trace(state.image))


def test_every_epoch_traces_its_checkpoint_and_shows_the_card_accuracy(state):
    card = json.loads(model_card_path(default_weights_path()).read_text())
    assert [c["epoch"] for c in card["checkpoints"]] == list(state.history.epochs)
    for entry in card["checkpoints"]:
        state.epoch = entry["epoch"]
        expected = Network.load(default_weights_path().parent / entry["file"]).trace(state.image)
        assert_same_trace(state.trace, expected)
        assert state.history.test_top1(state.epoch) == entry["test_top1"]
    state.epoch = None
    assert_same_trace(state.trace, state.network.trace(state.image))
    assert state.history.test_top1(None) == card["test"]["top1"]


def test_untrained_network_guesses_uniformly_and_final_one_is_confident(state):
    state.epoch = 0
    assert state.trace.probabilities.max() < 0.2
    state.epoch = None
    assert state.trace.probabilities.max() > 0.5


def test_reset_returns_to_the_trained_network_exactly(state):
    before = state.trace
    state.epoch = 3
    state.what_if = EXPERIMENTS["min pooling"]
    state.param.update(epoch=None, experiment="")
    assert state.active_network is state.network
    assert state.baseline_trace is state.trace
    assert_same_trace(state.trace, before)


def test_experiment_text_round_trips():
    network = shared_network()
    what_if = WhatIf(
        activation_slope=0.1,
        pooling="average",
        silenced=frozenset({("conv_1_1", 3), ("max_pool_2", 9)}),
        kernels=WhatIf().with_kernel("conv_2_2", 9, 7, np.arange(9) / 7).kernels,
    )
    text = describe_experiment(what_if)
    assert parse_experiment(text, network) == what_if
    assert describe_experiment(WhatIf()) == ""


@pytest.mark.parametrize(
    "text",
    [
        "bogus",
        "pool:median",
        "relu:2",
        "relu:-0.5",
        "relu:nan",
        "off:conv_9.1",
        "off:conv_1_1.10",
        "kernel:conv_1_1.0.0=1,2",
        "kernel:relu_1_1.0.0=1",
    ],
)
def test_a_broken_shared_link_says_so_and_shows_the_trained_network(state, text):
    state.experiment = text
    assert state.experiment == ""
    assert "not one this network can do" in state.message
    assert state.active_network is state.network


def test_unknown_epoch_says_so(state):
    state.epoch = 4
    assert state.epoch is None
    assert "no checkpoint of epoch 4" in state.message


def test_url_round_trip(state, catalog):
    location = Location()
    SharedLink(state).sync_with(location)
    what_if = EXPERIMENTS["a classic kernel"]
    state.epoch = 21
    state.what_if = what_if
    assert "epoch=21" in location.search and "whatif=" in location.search

    shared = ExplainerState(shared_network(), catalog)
    SharedLink(shared).sync_with(Location(search=location.search))
    assert (shared.epoch, shared.what_if) == (21, what_if)
    assert_same_trace(shared.trace, state.trace)


# -- the Lab viewer driven through its widgets, as the browser would -----------------------------------------
@pytest.fixture
def lab(state):
    lab = Lab(state)
    assert lab.workbench is None  # nothing is built until the card opens
    lab.card.collapsed = False
    return lab.workbench


def test_lab_widgets_write_the_experiment_and_undo_it(lab, state):
    lab.tabs.active = 1
    lab.activation.value = 1.0
    lab.pooling.value = "min"
    state.select("conv_1_2", 5)
    lab.silence.clicks += 1
    assert state.what_if == WhatIf(activation_slope=1.0, pooling="min", silenced=frozenset({("conv_1_2", 5)}))
    assert "back on" in lab.silence.label
    assert state.trace.predicted_class in lab.prediction.object
    lab.reset.clicks += 1
    assert state.experiment == "" and lab.activation.value == lab.pooling.value == AS_TRAINED
    assert lab.pooling.options == {"max (as trained)": AS_TRAINED, "average": "average", "min": "min"}
    assert lab.activation.options == {"ReLU (as trained)": AS_TRAINED, "leaky ReLU": 0.1, "identity": 1.0}


def pooled(mode_of_each: tuple[str, ...]) -> Network:
    """A small network whose pooling layers pool as given (average only, max then average), or has none."""
    from cnnviz.engine import Conv2D, Dense, Flatten, ReLU, Softmax
    from cnnviz.training.architecture import Architecture

    if not mode_of_each:
        rng = np.random.default_rng(0)
        layers = [Conv2D("conv", rng.normal(size=(3, 3, 3, 2)), np.zeros(2)), ReLU("relu"), Flatten("flatten")]
        layers += [Dense("output", rng.normal(size=(30 * 30 * 2, 2)), np.zeros(2)), Softmax("softmax")]
        return Network(layers, (32, 32, 3), ("a", "b"))
    architecture = Architecture(conv_blocks=len(mode_of_each), convs_per_block=1, filters=4)
    network = architecture.engine_network((32, 32, 3), ("a", "b"))
    modes = iter(mode_of_each)
    layers = [replace(layer, mode=next(modes)) if layer.kind == "maxpool2d" else layer for layer in network.layers]
    return Network(layers, network.input_shape, network.class_names)


@pytest.mark.parametrize(
    ("modes", "choices", "heading"),
    [
        (("average", "average"), ["average (as trained)", "max", "min"], "Why average? Pool with"),
        (("max", "average"), ["max + average (as trained)", "max", "average", "min"], "Why max and average?"),
        ((), [], None),
    ],
)
def test_the_pooling_switch_names_the_networks_own_pooling_and_switches_away_from_it(tmp_path, modes, choices, heading):
    """An average-pooled network said "max (as trained)", and its "max" button changed nothing."""
    network = pooled(modes)
    state = ExplainerState(network, build_catalog(tmp_path, network))
    lab = Lab(state)
    lab.card.collapsed = False
    workbench = lab.workbench
    assert list(workbench.pooling.options) == choices
    headings = " ".join(pane.object or "" for pane in workbench.tabs[1].select(pn.pane.HTML))
    assert (heading in headings) if heading else ("Pool with" not in headings)
    if not modes:
        assert pooling_choices(network) == {}
        return
    assert workbench.pooling.value == AS_TRAINED
    trained = state.trace
    workbench.pooling.value = "max"
    assert state.what_if == (WhatIf(pooling="max") if "average" in modes else WhatIf())
    pools = [layer for layer in state.active_network.layers if layer.kind == "maxpool2d"]
    assert [layer.mode for layer in pools] == ["max"] * len(modes)
    assert not np.array_equal(state.trace.probabilities, trained.probabilities)
    assert changes_in_words(state.what_if, None) == "max pooling" and state.experiment == "pool:max"
    workbench.pooling.value = AS_TRAINED
    assert state.experiment == "" and state.what_if.changes_nothing
    np.testing.assert_array_equal(state.trace.probabilities, trained.probabilities)
    if modes == ("average", "average"):  # the network's own mode is no change, whichever way it is written
        state.what_if = WhatIf(pooling="average")
        assert state.experiment == "" and parse_experiment("pool:average", network) == WhatIf()
        assert workbench.pooling.value == AS_TRAINED


def with_slopes(*slopes: float) -> Network:
    """Two conv blocks whose activations have these negative slopes (0: ReLU, 0.2: a leaky ReLU)."""
    from cnnviz.training.architecture import Architecture

    network = Architecture(convs_per_block=1, filters=4).engine_network((32, 32, 3), ("a", "b"))
    kept = iter(slopes)
    layers = [replace(layer, negative_slope=next(kept)) if layer.kind == "relu" else layer for layer in network.layers]
    return Network(layers, network.input_shape, network.class_names)


@pytest.mark.parametrize(
    ("slopes", "choices", "heading"),
    [
        ((0.2, 0.2), ["leaky ReLU 0.2 (as trained)", "ReLU", "leaky ReLU", "identity"], "Why leaky ReLU 0.2?"),
        ((0.1, 0.1), ["leaky ReLU (as trained)", "ReLU", "identity"], "Why leaky ReLU? Replace every activation by"),
        ((0.1, 0.0), ["leaky ReLU + ReLU (as trained)", "ReLU", "leaky ReLU", "identity"], "Why leaky ReLU and ReLU"),
    ],
)
def test_the_activation_switch_names_the_networks_own_activation_and_switches_away_from_it(
    tmp_path, slopes, choices, heading
):
    """A leaky-ReLU network said "ReLU (as trained)", and its "ReLU" button changed nothing."""
    network = with_slopes(*slopes)
    state = ExplainerState(network, build_catalog(tmp_path, network))
    lab = Lab(state)
    lab.card.collapsed = False
    workbench = lab.workbench
    assert list(workbench.activation.options) == choices and workbench.activation.value == AS_TRAINED
    assert workbench.activation.orientation == ("vertical" if len(choices) > 3 else "horizontal")  # 4 overflow a row
    assert heading in " ".join(pane.object or "" for pane in workbench.tabs[1].select(pn.pane.HTML))
    trained = state.trace
    workbench.activation.value = 0.0
    assert state.what_if == WhatIf(activation_slope=0.0) and state.experiment == "relu:0.0"
    relus = [layer.negative_slope for layer in state.active_network.layers if layer.kind == "relu"]
    assert relus == [0.0, 0.0] and changes_in_words(state.what_if, None) == "ReLU"
    assert any(difference.changed_channels for difference in compare(trained, state.trace))
    workbench.activation.value = AS_TRAINED
    assert state.experiment == "" and state.what_if.changes_nothing
    if len(set(slopes)) == 1:  # its own slope is no change, whichever way it is written
        assert parse_experiment(f"relu:{slopes[0]}", network) == WhatIf()
    state.experiment = "relu:0.3"  # a linked slope no button offers: none is pressed
    assert workbench.activation.value is None and state.what_if == WhatIf(activation_slope=0.3)


def test_lab_kernel_editor_changes_the_selected_kernel(lab, state):
    state.select("conv_1_1", 7)
    state.input_channel = 2
    lab.classic_kernel.value = "sharpen"
    kernel = state.active_network.layer("conv_1_1").kernel
    np.testing.assert_array_equal(kernel[:, :, 2, 7], CLASSIC_KERNELS["sharpen"])
    assert [w.value for w in lab.weights] == [float(w) for row in CLASSIC_KERNELS["sharpen"] for w in row]
    lab.weights[4].value = 2.5
    lab.use_weights.clicks += 1
    assert state.active_network.layer("conv_1_1").kernel[1, 1, 2, 7] == 2.5


def test_the_kernel_editor_takes_the_size_of_the_selected_layers_kernels():
    """5×5 kernels get 25 inputs in five columns and no classic (3×3) kernels; a 3×3 layer gets them back."""
    rng = np.random.default_rng(3)
    layers = [
        Conv2D("wide", rng.normal(0, 0.3, (5, 5, 3, 2)).astype(np.float32), np.zeros(2, np.float32), 1, "same"),
        ReLU("relu"),
        Conv2D("narrow", rng.normal(0, 0.3, (3, 3, 2, 2)).astype(np.float32), np.zeros(2, np.float32), 1, "valid"),
        Flatten("flatten"),
        Dense("dense", rng.normal(0, 0.1, (6 * 6 * 2, 2)).astype(np.float32), np.zeros(2, np.float32)),
        Softmax("softmax"),
    ]
    network = Network(layers, (8, 8, 3), ("a", "b"))
    image = rng.random(network.input_shape, dtype=np.float32)
    image.flags.writeable = False
    state = ExplainerState(network, ExampleCatalog((Example("noise", "Noise", "random pixels", image, None, ""),), ""))
    outer = Lab(state)
    outer.card.collapsed = False
    lab = outer.workbench
    state.select("wide", 1)
    assert lab.kernel_editor.visible and lab.classic_kernel.disabled
    assert len(lab.weights) == 25 and lab._weight_grid.ncols == 5 and lab.use_weights.label == "Use these 25 weights"
    kernel = network.layer("wide").kernel[:, :, 0, 1]
    assert [widget.value for widget in lab.weights] == [round(float(weight), 4) for weight in kernel.ravel()]
    lab.weights[12].value = 3.0  # the centre
    lab.use_weights.clicks += 1
    assert state.active_network.layer("wide").kernel[2, 2, 0, 1] == 3.0
    state.select("narrow", 0)
    assert len(lab.weights) == 9 and lab._weight_grid.ncols == 3 and not lab.classic_kernel.disabled


def test_painting_and_dropping_a_colour_change_the_input_until_restored(lab, state):
    example, image = state.example, state.image
    painted = np.zeros(state.network.input_shape, np.uint8)
    painted[10:20, 10:20] = 255
    lab.canvas.painted = base64.b64encode(painted.tobytes()).decode()
    np.testing.assert_array_equal(state.image, painted / 255)
    assert_same_trace(state.trace, state.network.trace(painted / 255))
    lab.drop_channel[0].clicks += 1
    assert state.image[..., 0].max() == 0
    lab.restore_image.clicks += 1
    assert state.example == example
    np.testing.assert_array_equal(state.image, image)


def test_lab_shows_the_epoch_accuracy_and_saliency(lab, state):
    from cnnviz.engine.gradients import saliency

    state.epoch = 13
    assert "69.4 %" in lab.epoch_readout.object
    lab.tabs.active = 2
    state.select(state.network.infos[-1].name, 3, level="elastic")
    assert state.network.class_names[3] in lab.saliency_note.object
    expected = saliency(state.active_network, state.image, 3).strength
    gradient = lab.saliency.object.Image.II  # over the greyed input
    np.testing.assert_allclose(np.flipud(gradient.dimension_values(2, flat=False)), expected)


def test_a_changed_network_is_named_in_words():
    kernels = WhatIf().with_kernel("conv_1_1", 0, 0, np.zeros(9)).kernels
    what_if = WhatIf(activation_slope=0.1, pooling="average", silenced=frozenset({("conv_1_1", 3)}), kernels=kernels)
    assert changes_in_words(what_if, 48) == (
        "the weights of training epoch 48, leaky ReLU (slope 0.1), average pooling, 1 neuron switched off, "
        "1 kernel edited"
    )
    assert changes_in_words(WhatIf(activation_slope=1.0, pooling="min"), None) == "no activation function, min pooling"
    assert changes_in_words(WhatIf(), None) == ""


def test_the_saliency_input_draws_for_a_grey_network_too():
    """A one-channel input made an RGB element with one channel, which HoloViews could not draw (a blank tab)."""
    import holoviews as hv
    import holoviews.plotting.bokeh  # rendering needs the backend

    from cnnviz.plots.lab import input_picture

    for channels in (1, 3):
        image = np.random.default_rng(0).random((28, 28, channels)).astype(np.float32)
        figure = hv.render(input_picture(image), backend="bokeh")  # raised IndexError for one channel
        assert figure.renderers[0].data_source.data["image"][0].shape == (28, 28)


@pytest.mark.parametrize("epochs", [2, 8, 120])
def test_the_accuracy_chart_shows_0_to_100_percent_over_whole_epochs_from_0(epochs):
    """No tick at epoch −2 (a short training made the axis start there), none above 100 %, dots on an edge whole."""
    from pathlib import Path

    import holoviews as hv
    import holoviews.plotting.bokeh  # rendering needs the backend

    from cnnviz.lab_state import Checkpoint, TrainingHistory
    from cnnviz.plots.lab import epoch_marker, training_curves

    tested = [Checkpoint(epoch, Path(f"epoch_{epoch}.npz"), min(1.0, 0.1 + epoch / 2)) for epoch in range(epochs + 1)]
    curves = {"epoch": tuple(range(1, epochs + 1)), "accuracy": (1.0,) * epochs, "holdout_accuracy": (0.9,) * epochs}
    history = TrainingHistory(tuple(tested), curves, epochs, epochs, 1.0)
    figure = hv.render(training_curves(history, hv.DynamicMap(lambda: epoch_marker(None, history))), backend="bokeh")
    assert figure.y_range.start == 0 and 100 < figure.y_range.end <= 103  # room for the dot at 100 %
    assert list(figure.yaxis[0].ticker.ticks) == [0, 20, 40, 60, 80, 100]
    assert -0.05 * epochs - 0.25 <= figure.x_range.start < 0 and epochs < figure.x_range.end <= 1.05 * epochs + 0.25
    if epochs <= 10:
        assert list(figure.xaxis[0].ticker.ticks) == list(range(epochs + 1))
