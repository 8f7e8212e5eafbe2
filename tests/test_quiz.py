"""Every quiz answer is the engine's number, recomputed here from the trace and the backward pass directly."""

from __future__ import annotations

import re

import numpy as np
import pytest

from cnnviz.engine import tiny_vgg
from cnnviz.engine.gradients import backward_pass, updated_weights
from cnnviz.playground import output_size as playground_output_size
from cnnviz.quiz import (
    QUESTION_KINDS,
    LiveNumbers,
    NoQuestion,
    Question,
    make_question,
    number,
    parse_number,
    significant,
)
from tests.test_backprop import ARCHITECTURES

SEEDS = range(8)


@pytest.fixture(params=["tiny-vgg", "same-stride-2", "overlapping-min-pool"], scope="module")
def live(request):
    network = tiny_vgg(seed=2) if request.param == "tiny-vgg" else ARCHITECTURES[request.param]()
    image = np.random.default_rng(3).random(network.input_shape).astype(np.float32)
    trace = network.trace(image)
    return LiveNumbers(trace, backward_pass(network, image, 1), learning_rate=0.01)


def _before(names, name):
    return names[list(names).index(name) - 1]


def test_relu_output_is_the_traced_value(live):
    for seed in SEEDS:
        question = make_question("relu-output", live, np.random.default_rng(seed))
        layer, index = question.where["layer"], question.where["index"]
        x = live.trace.input_of(layer)[index]
        slope = live.trace.network.layer(layer).negative_slope
        assert question.answer == live.trace[layer][index] == pytest.approx(max(x, slope * x))
        assert number(x) in question.prompt and question.is_correct(number(question.answer))
        assert not question.choices


def test_pooling_keeps_the_winner_of_the_window(live):
    for seed in SEEDS:
        question = make_question("pooling-kept-cell", live, np.random.default_rng(seed))
        layer = live.trace.network.layer(question.where["layer"])
        row, col, channel = question.where["index"]
        source = live.trace.input_of(layer.name)
        top, left = row * layer.stride[0], col * layer.stride[1]
        window = source[top : top + layer.size[0], left : left + layer.size[1], channel]
        pick = np.argmax(window) if layer.mode == "max" else np.argmin(window)
        kept = np.unravel_index(pick, window.shape)
        assert window[kept] == live.trace[layer.name][row, col, channel]
        assert question.choices[int(pick)] == question.answer
        assert question.is_correct(question.answer)
        assert not any(question.is_correct(choice) for choice in question.choices if choice != question.answer)
        assert f"(channel {channel + 1})" in question.prompt  # counted from 1, as the views' buttons count them


def test_the_weight_moves_the_way_the_step_moves_it(live):
    stepped = updated_weights(live.backward, live.learning_rate)
    for seed in SEEDS:
        question = make_question("weight-direction", live, np.random.default_rng(seed))
        layer, key, index = question.where["layer"], question.where["key"], question.where["index"]
        before = live.trace.network.layer(layer).weights()[key][index]
        after = stepped.layer(layer).weights()[key][index]
        assert question.answer == {1: "up", -1: "down", 0: "it stays"}[int(np.sign(after - before))]
        assert number(after, 6) in question.explanation
        # the arithmetic written out adds up at the digits shown (the weight was once rounded to four)
        shown = re.search(r"= (\S+) − (\S+) × \((\S+)\) = (\S+)\.", question.explanation)
        w, rate, g, result = (float(text.replace("−", "-")) for text in shown.groups())
        assert abs(w - rate * g - result) <= 1e-6 + abs(rate * g) * 1e-3  # g shows four significant digits


def test_the_relu_gate_passes_the_engines_gradient(live):
    names = [info.name for info in live.backward.network.infos]
    for seed in SEEDS:
        question = make_question("relu-gate", live, np.random.default_rng(seed))
        layer, index = question.where["layer"], question.where["index"]
        assert question.answer == pytest.approx(live.backward.gradients[_before(names, layer)][index], abs=1e-15)
        assert question.is_correct(significant(question.answer))


def test_output_size_is_the_size_the_engine_slides_out(live):
    for seed in SEEDS:
        question = make_question("output-size", live, np.random.default_rng(seed))
        layer = live.trace.network.layer(question.where["layer"])
        n, k = live.trace.input_of(layer.name).shape[0], layer.window[0]
        p, s = question.where["padding"], question.where["stride"]
        assert question.answer == playground_output_size(n, p, k, s) == len(range(0, n + 2 * p - k + 1, s))
        assert question.explanation.endswith(f"= {int(question.answer)}.")
        assert question.is_correct(str(int(question.answer))) and not question.is_correct(question.answer + 1)


def test_the_winning_class_is_the_prediction(live):
    question = make_question("winning-class", live, np.random.default_rng(0))
    assert question.answer == live.trace.predicted_class
    assert f"{100 * live.trace.probabilities.max():.1f} %" in question.explanation
    assert set(question.choices) == set(live.trace.network.class_names)


def test_every_kind_has_a_level_and_a_maker():
    assert set(QUESTION_KINDS) == {
        "relu-output",
        "pooling-kept-cell",
        "weight-direction",
        "relu-gate",
        "output-size",
        "winning-class",
    }
    assert {kind.level for kind in QUESTION_KINDS.values()} == {"overview", "elastic", "formula"}


def test_backward_questions_need_the_backward_pass(live):
    forward_only = LiveNumbers(live.trace)
    with pytest.raises(NoQuestion, match="backward pass"):
        make_question("weight-direction", forward_only, np.random.default_rng(0))
    with pytest.raises(ValueError, match="no question kind"):
        make_question("nonsense", forward_only, np.random.default_rng(0))


def test_typed_numbers_are_read_kindly():
    assert parse_number(" −0,25 ") == -0.25
    with pytest.raises(ValueError, match="is not a number"):
        parse_number("zero")
    question = Question("output-size", "?", 31.0, "because", tolerance=0)
    assert question.is_correct("31") and not question.is_correct("30")
    assert number(-0.0001) == "0.000" and number(-1.5) == "−1.500" and significant(-0.0) == "0"
