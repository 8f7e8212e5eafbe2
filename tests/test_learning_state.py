"""A session's learning state driven as a view would drive it: loss, backward mode, steps, Reset, sessions apart."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from cnnviz.engine import tiny_vgg
from cnnviz.engine.gradients import backward_pass, image_loss
from cnnviz.examples import Example, ExampleCatalog, build_catalog
from cnnviz.learning_state import LearningState
from cnnviz.state import ExplainerState

NETWORK = tiny_vgg(seed=4)
TRAINED_WEIGHTS = {(layer.name, key): w.copy() for layer in NETWORK.layers for key, w in layer.weights().items()}


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    """The probes plus one labelled 'photo' (random pixels said to be a koala)."""
    probes = build_catalog(tmp_path_factory.mktemp("empty"))
    image = np.random.default_rng(0).random(NETWORK.input_shape).astype(np.float32)
    image.flags.writeable = False
    koala = Example("koala-1", "Koala", "A koala", image, "koala", "")
    return ExampleCatalog((koala, *probes.examples), "")


def session(catalog, **params) -> tuple[ExplainerState, LearningState]:
    explainer = ExplainerState(NETWORK, catalog)
    return explainer, LearningState(explainer, seed=0, **params)


def _assert_shared_network_untouched():
    for layer in NETWORK.layers:
        for key, array in layer.weights().items():
            np.testing.assert_array_equal(array, TRAINED_WEIGHTS[layer.name, key])


def test_the_true_class_is_the_label_else_the_prediction(catalog):
    explainer, learning = session(catalog)
    assert learning.true_class == NETWORK.class_names.index("koala")
    assert learning.loss == pytest.approx(-np.log(explainer.trace.probabilities[learning.true_class]), rel=1e-5)
    explainer.example = catalog.examples[1].key  # a probe: no label
    assert learning.true_class == explainer.trace.predicted_index
    learning.true_class = 0
    assert learning.loss == pytest.approx(-np.log(explainer.trace.probabilities[0]), rel=1e-5)


def test_backward_mode_keeps_the_gradients_of_the_screen(catalog):
    explainer, learning = session(catalog)
    assert learning.backward is None  # nothing computed for a learner who never asks
    learning.backward_mode = True
    expected = backward_pass(NETWORK, explainer.image, learning.true_class)
    for name, gradient in expected.gradients.items():
        np.testing.assert_array_equal(learning.backward.gradients[name], gradient)
    learning.true_class = 2
    assert learning.backward.true_class == 2
    learning.backward_mode = False
    assert learning.backward is None


def test_a_step_lowers_the_loss_and_every_view_sees_the_new_weights(catalog):
    explainer, learning = session(catalog, learning_rate=1e-3)
    trained_trace = explainer.trace
    step = learning.step()
    assert learning.steps == 1
    assert step.loss_after < step.loss_before == pytest.approx(learning.start_loss, rel=1e-5)
    assert learning.loss == pytest.approx(step.loss_after, rel=1e-4)
    assert explainer.trace.network is step.network is not NETWORK
    assert not np.array_equal(explainer.trace["conv_1_1"], trained_trace["conv_1_1"])
    _assert_shared_network_untouched()


def test_five_steps_keep_lowering_the_loss(catalog):
    _explainer, learning = session(catalog, learning_rate=1e-3)
    losses = [learning.loss]
    for _ in range(5):
        learning.step()
        losses.append(learning.loss)
    assert losses == sorted(losses, reverse=True)
    assert learning.steps == 5 and learning.last_step.loss_after == pytest.approx(losses[-1], rel=1e-4)


def test_reset_restores_the_trained_trace_exactly(catalog):
    explainer, learning = session(catalog)
    trained = explainer.trace
    for _ in range(3):
        learning.step()
    learning.reset()
    assert learning.steps == 0 and learning.last_step is None
    assert explainer.trace.network is NETWORK
    for name in trained:
        np.testing.assert_array_equal(explainer.trace[name], trained[name])
    assert learning.loss == learning.start_loss


def test_a_new_image_keeps_the_steps_and_compares_with_the_trained_loss(catalog):
    explainer, learning = session(catalog)
    learning.step()
    stepped = explainer.trace.network
    explainer.example = catalog.examples[2].key
    assert explainer.trace.network is stepped and learning.steps == 1
    assert learning.start_loss == pytest.approx(image_loss(NETWORK, explainer.image, learning.true_class))


def test_another_experiment_starts_afresh(catalog):
    explainer, learning = session(catalog)
    learning.step()
    explainer.experiment = "relu:0.1"
    assert learning.steps == 0
    assert explainer.trace.network is not NETWORK  # the experiment's network, not the stepped one
    assert explainer.active_network.layer("relu_1_1").negative_slope == 0.1


def test_two_sessions_stepping_never_see_each_others_weights(catalog):
    explainer_a, learning_a = session(catalog)
    explainer_b, learning_b = session(catalog, learning_rate=0.01)
    untouched = explainer_b.trace
    learning_a.step()
    learning_a.step()
    for name in untouched:
        np.testing.assert_array_equal(explainer_b.trace[name], untouched[name])
    a_weights = explainer_a.trace.network.layer("conv_1_1").kernel.copy()
    learning_b.true_class = 3
    learning_b.step()
    np.testing.assert_array_equal(explainer_a.trace.network.layer("conv_1_1").kernel, a_weights)
    assert explainer_a.trace.network is not explainer_b.trace.network
    _assert_shared_network_untouched()


def test_the_learning_rate_stays_in_range(catalog):
    _explainer, learning = session(catalog)
    with pytest.raises(ValueError):
        learning.learning_rate = 5.0
    with pytest.raises(ValueError):
        learning.true_class = len(NETWORK.class_names)


def test_quiz_score_counts_each_question_once(catalog):
    _explainer, learning = session(catalog)
    question = learning.ask("winning-class")
    assert learning.answer(question.answer) is True
    assert learning.answer(question.answer) is True
    assert (learning.score, learning.answered) == (1, 1)
    assert learning.feedback.startswith("Right.") and question.explanation in learning.feedback
    question = learning.ask("output-size")
    assert learning.answer("not a number") is None and "not a number" in learning.feedback
    assert learning.answer(question.answer + 1) is False
    assert (learning.score, learning.answered) == (1, 2)
    assert learning.feedback.startswith(f"Not quite: the answer is {question.answer:.3f}")


def test_any_question_comes_from_the_screen(catalog):
    _explainer, learning = session(catalog)
    kinds = {learning.ask().kind for _ in range(30)}
    assert len(kinds) >= 4
    with pytest.raises(ValueError, match="no question kind"):
        learning.ask("nonsense")


def test_after_an_answer_a_question_opens_the_view_where_its_numbers_live(catalog):
    from cnnviz.quiz import QUESTION_KINDS

    explainer, learning = session(catalog)
    for kind in QUESTION_KINDS:
        for _ in range(3):
            question = learning.ask(kind)
            assert not learning.question_answered  # before an answer the view would give it away
            if not question.choices:
                learning.answer("not a number")  # a typo is not an answer
                assert not learning.question_answered
            learning.answer(question.answer)
            assert learning.question_answered
            learning.show_question()
            where, info = question.where, NETWORK.info(question.where["layer"])
            assert explainer.layer == where["layer"], kind
            if QUESTION_KINDS[kind].needs_backward:
                assert learning.backward is not None  # the view shows the gradients the question asked about
            index = where.get("index", ())
            if info.kind in ("relu", "maxpool2d"):  # the window asked about, in its formula view
                assert (explainer.level, explainer.row, explainer.col, explainer.neuron) == ("formula", *index)
            elif where.get("key") == "kernel" and info.kind == "conv2d":  # the weight's kernel slice
                row, col, channel, neuron = index
                assert (explainer.level, explainer.neuron, explainer.input_channel) == ("formula", neuron, channel)
                # the backward formula view writes that weight's update out (it takes the cell, then clears it)
                assert learning.asked_weight == (info.name, row * NETWORK.layer(info.name).window[1] + col)
            else:  # a layer, a bias or a class: the layer's elastic view
                assert explainer.level == "elastic"
                assert explainer.neuron == (index[-1] if index else 0)
            explainer.param.update(layer="", neuron=0, level="overview")
            learning.backward_mode = False


def test_a_view_asks_about_its_own_layer_with_the_question_its_numbers_answer(catalog):
    from cnnviz.learning_state import QUESTION_FOR_VIEW

    explainer, learning = session(catalog)
    for backward in (False, True):
        learning.backward_mode = backward
        for info in NETWORK.infos:
            kind = QUESTION_FOR_VIEW.get((info.kind, backward))
            if kind is None:
                continue
            explainer.param.update(layer=info.name, neuron=1, level="formula" if info.kind != "conv2d" else "elastic")
            question = learning.ask_about_view()
            assert question is not None and question.kind == kind, (info.name, learning.feedback)
            if kind != "winning-class":  # about the whole output, not one layer
                assert question.where["layer"] == info.name
            if "index" in question.where and kind != "winning-class":  # and about the neuron on screen
                assert question.where["index"][-1] == 1, (info.name, question.where)
    explainer.param.update(layer="", level="overview")
    assert learning.ask_about_view() is not None  # at rest: any question


def test_a_network_without_pooling_says_why_it_cannot_ask(catalog):
    _explainer, learning = session(catalog)
    learning.explainer.experiment = "pool:average"
    assert learning.ask("pooling-kept-cell") is None
    assert "max or min pooling" in learning.feedback


def test_two_sessions_computing_steps_at_the_same_time_stay_apart(catalog):
    """The served app computes steps beside the event loop: two at once must not mix their arithmetic."""
    sessions = [session(catalog, learning_rate=rate)[1] for rate in (1e-3, 1e-2)]
    sessions[1].true_class = 0
    expected = [learning.compute_step() for learning in sessions]  # one after the other
    with ThreadPoolExecutor(max_workers=2) as pool:
        concurrent = list(pool.map(lambda learning: learning.compute_step(), sessions))
    for alone, together in zip(expected, concurrent, strict=True):
        for layer_alone, layer_together in zip(alone.network.layers, together.network.layers, strict=True):
            for key, weights in layer_alone.weights().items():
                np.testing.assert_array_equal(layer_together.weights()[key], weights)
    for learning, step in zip(sessions, concurrent, strict=True):
        learning.apply_step(step)
    assert sessions[0].explainer.trace.network is concurrent[0].network
    assert sessions[1].explainer.trace.network is concurrent[1].network
    _assert_shared_network_untouched()
