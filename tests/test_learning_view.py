"""The Learn card driven through its widgets, without a browser: what it shows is the learning state's numbers."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from cnnviz.engine import tiny_vgg
from cnnviz.examples import build_catalog
from cnnviz.learning_state import LearningState
from cnnviz.quiz import significant
from cnnviz.state import ExplainerState
from cnnviz.views.learning import LEARNING_RATES, Learn


@pytest.fixture
def learn(tmp_path):
    learning = LearningState(ExplainerState(tiny_vgg(seed=6), build_catalog(tmp_path)), seed=1)
    view = Learn(learning)
    view.card.collapsed = False  # opening the card builds it
    return view


def test_nothing_is_built_until_the_card_opens(tmp_path):
    view = Learn(LearningState(ExplainerState(tiny_vgg(seed=6), build_catalog(tmp_path))))
    assert view.panel is None and not view.card.objects


def test_the_widgets_drive_the_state_and_the_readout_follows(learn):
    panel, learning = learn.panel, learn.learning
    assert significant(learning.loss) in panel.loss.object
    panel.true_class.value = 4
    assert learning.true_class == 4
    panel.learning_rate.value = LEARNING_RATES[-1]
    assert learning.learning_rate == LEARNING_RATES[-1]
    assert panel.gradients.object == ""
    panel.backward_mode.value = True
    assert "p − y" in panel.gradients.object and "learn-flow" in panel.gradients.object
    assert panel.reset.disabled

    asyncio.run(panel._take_step(None))  # what a click does: the arithmetic beside the event loop
    assert learning.steps == 1 and not panel.reset.disabled
    assert f"{significant(learning.last_step.loss_before)} → {significant(learning.loss)}" in panel.loss.object

    panel.reset.clicks += 1
    assert learning.steps == 0 and "Step" not in panel.loss.object
    np.testing.assert_array_equal(
        learning.explainer.trace.probabilities, learning.explainer.network.trace(learning.explainer.image).probabilities
    )


def test_a_quiz_through_the_widgets(learn):
    panel, learning = learn.panel, learn.learning
    quiz = panel.quiz  # the question, the answer widgets and the verdict
    assert quiz.check.disabled
    panel.quiz_kind.value = "Which class wins?"
    panel.ask.clicks += 1
    question = learning.question
    assert question.kind == "winning-class" and question.prompt in quiz.prompt.object
    assert quiz.choices.visible and not quiz.typed.visible and list(quiz.choices.options) == list(question.choices)
    quiz.choices.value = next(choice for choice in question.choices if choice != question.answer)
    quiz.check.clicks += 1
    assert "Not quite" in quiz.feedback.object and "Score: 0 of 1" in quiz.score.object

    panel.quiz_kind.value = "What will this ReLU output?"
    panel.ask.clicks += 1
    assert quiz.typed.visible and not quiz.choices.visible
    quiz.typed.value_input = f"{learning.question.answer:.4f}"
    quiz.check.clicks += 1
    assert "Right." in quiz.feedback.object and "Score: 1 of 2" in quiz.score.object


def test_follow_the_gradient_buttons_walk_from_the_loss_to_a_first_layer_kernel(tmp_path):
    import holoviews.plotting.bokeh  # noqa: F401 (the formula view's maps need a plotting backend, as in the app)

    from cnnviz.app import Explainer

    explainer = Explainer(tiny_vgg(seed=6), build_catalog(tmp_path))
    explainer.learn.card.collapsed = False
    panel, state = explainer.learn.panel, explainer.state
    assert not panel.trail.visible
    panel.backward_mode.value = True
    assert panel.trail.visible
    names = [button.label for button in panel.follow_buttons]
    assert names[0] == state.network.infos[-1].name and names[-1] == state.network.layer_names[0]  # right to left
    for button in panel.follow_buttons:
        button.clicks += 1  # as a click does
        backward = explainer.learning.backward
        upstream = np.abs(backward.upstream_of(button.label))
        assert (state.layer, state.level) == (button.label, "formula")
        assert explainer.formula.backward.active and explainer.formula.dialog.open
        at = (state.row, state.col, state.neuron) if upstream.ndim == 3 else (state.neuron,)
        assert upstream[at] == upstream.max()
    kernel = np.abs(backward.weight_gradients[names[-1]]["kernel"][:, :, :, state.neuron]).sum(axis=(0, 1))
    assert kernel[state.input_channel] == kernel.max()
    assert explainer.formula.dialog.kind == "backward-conv2d"
    assert f"neuron {state.neuron + 1}, input channel {state.input_channel + 1}" in explainer.formula.dialog.heading


def test_backward_mode_from_a_link_opens_the_card(tmp_path):
    learning = LearningState(ExplainerState(tiny_vgg(seed=6), build_catalog(tmp_path)))
    view = Learn(learning)
    learning.backward_mode = True
    assert not view.card.collapsed and view.panel is not None and view.panel.backward_mode.value
