"""Learn: the loss of the image on screen, its gradients, one training step at a time, and a quiz.

A thin view over `LearningState`: it writes the learner's choices to the state and shows the state's numbers;
every number comes from the engine. Like the Lab, it is a card that builds its widgets the first time it opens,
so visitors who never open it cost the server nothing. `Quiz`, the question and its answer, also sits under the
elastic views and in the formula dialog, where it asks about the layer on screen.
"""

from __future__ import annotations

import html

import numpy as np
import panel as pn
import param
from panel.viewable import Viewer

from cnnviz.article import SECTION_ANCHORS, read_section
from cnnviz.engine.explain_backward import output_gradient, strongest_gradient
from cnnviz.learning_state import LearningState
from cnnviz.offload import LatestOnly, Superseded, TooSlow
from cnnviz.plots.formula_backward import BACKWARD_KINDS
from cnnviz.quiz import QUESTION_KINDS, number, significant

LEARNING_RATES = (0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1)  # a log scale: each about three times the last
ANY_QUESTION = "Any question"
SIDE_BY_SIDE = {"flex": "1 1 300px"}  # the card's two columns share a wide row and wrap below 600 px
LEARNING_SECTIONS = ("loss", "gradients", "backpropagation", "learning-rate")
LEARN_CSS = """
.learn-readout { font: 14px/1.5 system-ui, sans-serif; margin: 4px 0; }
.learn-readout b { color: #1b5e73; }
.learn-note { color: #555; font: 13px/1.45 system-ui, sans-serif; margin: 2px 0; }
.learn-table { border-collapse: collapse; font: 13px system-ui, sans-serif; margin: 4px 0; }
.learn-table th, .learn-table td { padding: 1px 10px 1px 0; text-align: left; white-space: nowrap; }
.learn-table td.number { text-align: right; font-variant-numeric: tabular-nums; }
.learn-table tr.true-class td { font-weight: 600; }
.learn-links a { color: #1f5fa8; text-decoration: none; white-space: nowrap; }
.learn-links a:hover { text-decoration: underline; }
.learn-heading { font: 600 13px system-ui, sans-serif; margin: 6px 0 0 0; color: #333; }
.quiz-prompt { font: 15px/1.5 system-ui, sans-serif; margin: 4px 0; }
.quiz-feedback { font: 14px/1.5 system-ui, sans-serif; margin: 4px 0; padding: 6px 10px; border-radius: 6px; }
.quiz-feedback.right { background: #e8f5e9; border: 1px solid #a5d6a7; }
.quiz-feedback.wrong { background: #fff4e5; border: 1px solid #f5c27a; }
.quiz-feedback.hint { background: #f4f4f4; border: 1px solid #ddd; }
"""


def _article_links() -> str:
    """Links to the article's sections on learning; they scroll where the article is on the page (served)."""
    links = " · ".join(
        f'<a href="#{SECTION_ANCHORS[key]}" onclick="return !(window.cnnvizScrollToSection && '
        f"window.cnnvizScrollToSection('{SECTION_ANCHORS[key]}'))\">{html.escape(read_section(key)[0].split(':')[0])}</a>"
        for key in LEARNING_SECTIONS
    )
    return f"<p class='learn-note learn-links'>Read more: {links}</p>"


def _html(text: str = "", **params) -> pn.pane.HTML:
    return pn.pane.HTML(text, stylesheets=[LEARN_CSS], sizing_mode="stretch_width", **params)


class Learn(Viewer):
    """A collapsible card: backward mode, the true class, the loss, Take a step / Reset, and quiz prompts."""

    def __init__(self, learning: LearningState, **params) -> None:
        super().__init__(**params)
        self.learning = learning
        self.panel: LearnPanel | None = None
        self.card = pn.Card(
            title="Learn: loss, gradients, one step at a time", collapsed=True, sizing_mode="stretch_width"
        )
        self.card.param.watch(self._build, "collapsed")
        learning.param.watch(self._open_in_backward_mode, "backward_mode")
        self._open_in_backward_mode()

    def __panel__(self) -> pn.viewable.Viewable:
        return self.card

    def _open_in_backward_mode(self, *_events) -> None:
        """Backward mode turned on elsewhere (a shared link) opens the card that explains and controls it."""
        if self.learning.backward_mode:
            self.card.collapsed = False

    def _build(self, event: param.parameterized.Event) -> None:
        if not event.new and self.panel is None:
            self.panel = LearnPanel(self.learning)
            self.card.objects = [self.panel.layout]


class LearnPanel:
    """The card's widgets, wired to the learning state (built on first open)."""

    def __init__(self, learning: LearningState) -> None:
        self.learning = learning
        self._stepping = LatestOnly()
        names = learning.explainer.network.class_names
        self.backward_mode = pn.widgets.Checkbox.from_param(
            learning.param.backward_mode, label="Backward mode", css_classes=["backward-mode"]
        )
        self.true_class = pn.widgets.Select(
            label="True class", options={name: index for index, name in enumerate(names)}, width=170
        )
        self.learning_rate = pn.widgets.DiscreteSlider(
            label="Learning rate η", options=list(LEARNING_RATES), value=nearest_rate(learning.learning_rate)
        )
        self.take_step = pn.widgets.Button(label="Take a step", color="primary", width=130)
        self.reset = pn.widgets.Button(label="Reset", color="warning", width=90)
        self.loss = _html(css_classes=["learn-loss"])
        follow = [info.name for info in reversed(learning.explainer.network.infos) if info.kind in BACKWARD_KINDS]
        self.follow_buttons = [
            pn.widgets.Button(label=name, color="light", css_classes=["follow-gradient"], margin=(2, 3))
            for name in follow
        ]
        for button in self.follow_buttons:
            button.on_click(lambda _event, name=button.label: self.follow(name))
        self.trail = pn.Column(
            _html(
                "<p class='learn-heading'>Follow the gradient from the loss back to the first kernels</p>"
                "<p class='learn-note'>Each button opens a layer's backward formula view at its largest gradient.</p>"
            ),
            pn.FlexBox(*self.follow_buttons, flex_wrap="wrap", gap="0"),
            css_classes=["follow-the-gradient"],
            margin=0,
            visible=False,
        )
        self.gradients = _html(css_classes=["learn-gradients"])

        self.quiz_kind = pn.widgets.Select(
            label="Question", options=[ANY_QUESTION, *(kind.title for kind in QUESTION_KINDS.values())], width=260
        )
        self.ask = pn.widgets.Button(label="New question", width=130)
        self.quiz = Quiz(learning)

        self.layout = pn.FlexBox(
            pn.Column(
                _html(
                    "<p class='learn-note'>Backward mode measures how wrong the network is about the true class "
                    "(the loss) and how every number would have to change to make it less wrong (the gradients). "
                    "Take a step to train your own copy of the network on this image: every view shows the new "
                    "numbers, and nobody else sees them.</p>" + _article_links()
                ),
                self.backward_mode,
                self.true_class,
                self.learning_rate,
                pn.Row(self.take_step, self.reset),
                self.loss,
                self.trail,
                self.gradients,
                sizing_mode="stretch_width",
                max_width=420,
                styles=SIDE_BY_SIDE,
            ),
            pn.Column(
                _html("<p class='learn-heading'>Check your understanding</p>"),
                pn.Row(self.quiz_kind, self.ask),
                self.quiz,
                sizing_mode="stretch_width",
                styles=SIDE_BY_SIDE,
            ),
            sizing_mode="stretch_width",
            flex_wrap="wrap",  # side by side on a wide screen, one under the other on a phone (never a fixed width)
        )
        self._show_numbers()

        self.true_class.param.watch(self._choose_class, "value")
        self.learning_rate.param.watch(self._choose_rate, "value")
        self.take_step.on_click(self._take_step)
        self.reset.on_click(lambda _event: learning.reset())
        self.ask.on_click(self._ask)
        learning.param.watch(
            self._show_numbers, ["loss", "start_loss", "last_step", "backward", "steps", "true_class", "learning_rate"]
        )

    # -- from the widgets to the state ----------------------------------------------------------------------
    def _choose_class(self, event: param.parameterized.Event) -> None:
        self.learning.true_class = event.new

    def _choose_rate(self, event: param.parameterized.Event) -> None:
        self.learning.learning_rate = event.new

    async def _take_step(self, _event) -> None:
        """The step's arithmetic runs beside the event loop (`cnnviz.offload`: inline in Pyodide); a step computed
        for an image or weights that changed meanwhile is dropped, since it would put stale weights on screen."""
        explainer = self.learning.explainer
        computed_for = explainer.trace
        self.take_step.disabled = True
        try:
            step = await self._stepping.run(self.learning.compute_step)
        except Superseded:
            return
        except TooSlow:
            explainer.message = "The step took too long (the server may be busy); please try again."
            return
        finally:
            self.take_step.disabled = False
        if explainer.trace is computed_for:
            self.learning.apply_step(step)

    def follow(self, layer: str) -> None:
        """Open the backward formula view of `layer` where its gradient is largest (and, for a convolution, the
        input channel whose kernel slice has the largest gradient)."""
        backward = self.learning.backward
        if backward is None:
            return
        strongest = strongest_gradient(backward, layer)
        self.learning.explainer.param.update(
            input_channel=strongest.channel, row=strongest.row, col=strongest.col,
            layer=layer, neuron=strongest.neuron, level="formula",
        )  # fmt: skip

    def _ask(self, _event) -> None:
        titles = {kind.title: key for key, kind in QUESTION_KINDS.items()}
        self.learning.ask(titles.get(self.quiz_kind.value))

    # -- from the state to the screen -------------------------------------------------------------------------
    def _show_numbers(self, *_events) -> None:
        learning = self.learning
        names = learning.explainer.network.class_names
        true_name = names[learning.true_class] if names else str(learning.true_class)
        probability = float(learning.explainer.trace.probabilities[learning.true_class])
        text = (
            f"<p class='learn-readout' role='status'>Loss for <b>{html.escape(true_name)}</b>: "
            f"<b class='learn-loss-value'>{significant(learning.loss)}</b> = −ln {number(probability, 4)}"
        )
        if learning.steps:
            text += f"<br>With the trained weights: {significant(learning.start_loss)}"
        step = learning.last_step
        if step is not None:
            text += (
                f"<br>Step {learning.steps} (η = {step.learning_rate:g}): loss "
                f"<span class='learn-step'>{significant(step.loss_before)} → {significant(step.loss_after)}</span>"
            )
        with pn.io.hold():
            self.loss.object = text + "</p>"
            self.true_class.value = learning.true_class
            self.learning_rate.value = nearest_rate(learning.learning_rate)
            self.reset.disabled = not learning.steps
            self.gradients.object = _gradient_tables(learning) if learning.backward is not None else ""
            self.trail.visible = learning.backward is not None


class Quiz(Viewer):
    """The session's quiz question: its prompt, a way to answer, the engine's verdict with its arithmetic, the
    score, and after an answer a way to the view where the numbers live. Shown in the Learn card and, with
    `here`, in the elastic and formula views, where it asks about the layer they explain."""

    def __init__(self, learning: LearningState, here: bool = False, **params) -> None:
        super().__init__(**params)
        self.learning = learning
        self.ask_here = pn.widgets.Button(label="Quiz me on this", width=150, visible=here, css_classes=["quiz-here"])
        self.prompt = _html(css_classes=["quiz-prompt-pane"])
        self.choices = pn.widgets.RadioBoxGroup(options=[], inline=False, visible=False)
        self.typed = pn.widgets.TextInput(placeholder="Type a number", width=160, visible=False)
        self.check = pn.widgets.Button(label="Check", color="success", width=90, disabled=True, visible=False)
        self.feedback = _html(css_classes=["quiz-feedback-pane"])
        self.see_it = pn.widgets.Button(label="See it in the network", width=190, visible=False)
        self.score = _html()
        self.layout = pn.Column(
            self.ask_here, self.prompt, self.choices, pn.Row(self.typed, self.check), self.feedback, self.see_it,
            self.score, sizing_mode="stretch_width", margin=0,
        )  # fmt: skip
        self._show_question()
        self.ask_here.on_click(lambda _event: learning.ask_about_view())
        self.see_it.on_click(lambda _event: learning.show_question())
        self.check.on_click(self._check)
        self.typed.param.watch(self._check, "enter_pressed")
        learning.param.watch(self._show_question, ["question", "feedback", "score", "answered"])

    def __panel__(self) -> pn.Column:
        return self.layout

    def _check(self, _event) -> None:
        question = self.learning.question
        if question is not None:
            self.learning.answer(self.choices.value if question.choices else self.typed.value_input)

    def _show_question(self, *_events) -> None:
        learning = self.learning
        question = learning.question
        with pn.io.hold():
            self.prompt.object = (
                f"<p class='quiz-prompt'>{html.escape(question.prompt)}</p>" if question is not None else ""
            )
            self.choices.visible = bool(question and question.choices)
            self.typed.visible = bool(question and not question.choices)
            if question is not None and question.choices and list(self.choices.options) != list(question.choices):
                self.choices.options = list(question.choices)
                self.choices.value = None
            self.check.param.update(disabled=question is None, visible=question is not None)
            self.feedback.object = _feedback_html(learning.feedback)
            # after an answer (before, the view would give it away): where the numbers live in the network
            self.see_it.visible = learning.question_answered
            self.score.object = (
                f"<p class='learn-note quiz-score'>Score: {learning.score} of {learning.answered}</p>"
                if learning.answered
                else ""
            )


def nearest_rate(rate: float) -> float:
    return min(LEARNING_RATES, key=lambda option: abs(np.log(option) - np.log(rate)))


def _feedback_html(feedback: str) -> str:
    if not feedback:
        return ""
    tone = "right" if feedback.startswith("Right") else "wrong" if feedback.startswith("Not quite") else "hint"
    return f"<p class='quiz-feedback {tone}' role='status'>{html.escape(feedback)}</p>"


def _gradient_tables(learning: LearningState) -> str:
    """p − y for every class, then the largest gradient at each column, right to left (the way it flows)."""
    backward = learning.backward
    result = output_gradient(backward)
    names = backward.network.class_names or tuple(str(k) for k in range(len(result.gradient)))
    rows = "".join(
        f"<tr class='{'true-class' if k == result.true_class else ''}'><td>{html.escape(name)}</td>"
        f"<td class='number'>{number(p, 4)}</td><td class='number'>{int(y)}</td>"
        f"<td class='number'>{number(g, 4)}</td></tr>"
        for k, (name, p, y, g) in enumerate(
            zip(names, result.probabilities, result.target, result.gradient, strict=True)
        )
    )
    flow = "".join(
        f"<tr><td>{html.escape(name)}</td><td class='number'>{significant(float(np.abs(gradient).max()), 3)}</td></tr>"
        for name, gradient in reversed(backward.gradients.items())
        if name != backward.network.layer_names[-1]
    )
    return (
        "<p class='learn-heading'>At the logits: ∂L/∂z = p − y</p>"
        f"<table class='learn-table learn-output-gradient'><tr><th>class</th><th>p</th><th>y</th><th>p − y</th></tr>"
        f"{rows}</table>"
        "<p class='learn-heading'>Largest |gradient| in each column, right to left</p>"
        f"<table class='learn-table learn-flow'>{flow}</table>"
    )
