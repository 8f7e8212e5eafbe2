"""One session's view of learning, with no Panel import: the loss, the backward pass, training steps and a quiz.

Composes with `ExplainerState`, which keeps the image, the trace and the selection. This object adds the true
class the loss is measured against, the loss and (in backward mode) the gradients of the trace on screen, and
a copy of the network that the learner trains one step at a time. The copy is handed to
`ExplainerState.stepped`, so every view shows its numbers; the shared network is never touched, and Reset hands
the trained network back, which restores the trained trace exactly.
"""

from __future__ import annotations

import numpy as np
import param

from cnnviz.engine import Network, Trace
from cnnviz.engine.gradients import Backward, Step, backward_pass, cross_entropy, image_loss, take_step
from cnnviz.quiz import QUESTION_KINDS, LiveNumbers, NoQuestion, Question, make_question, number, significant
from cnnviz.state import ExplainerState

LEARNING_RATE_BOUNDS = (1e-5, 0.1)
QUESTION_FOR_VIEW = {
    ("relu", False): "relu-output", ("relu", True): "relu-gate",
    ("maxpool2d", False): "pooling-kept-cell", ("maxpool2d", True): "pooling-kept-cell",
    ("conv2d", False): "output-size", ("conv2d", True): "weight-direction",
    ("dense", False): "winning-class", ("dense", True): "weight-direction",
    ("softmax", False): "winning-class", ("softmax", True): "winning-class",
}  # fmt: skip
"""(layer kind open, backward mode) -> the question the numbers of that view answer."""


class LearningState(param.Parameterized):
    """Backward mode, the true class, gradient-descent steps on a session copy, and the quiz score."""

    backward_mode = param.Boolean(default=False, doc="Show how the loss flows back instead of the forward pass.")
    true_class = param.Integer(
        default=0, bounds=(0, None), doc="Class the loss is measured against: the image's label, else the prediction."
    )
    learning_rate = param.Number(
        default=0.0001, bounds=LEARNING_RATE_BOUNDS, doc="η: how far one step moves each weight against its gradient."
    )
    steps = param.Integer(default=0, bounds=(0, None), doc="Steps taken since the trained weights (set by `step`).")
    loss = param.Number(default=None, allow_None=True, doc="Cross-entropy of the image on screen for `true_class`.")
    start_loss = param.Number(default=None, allow_None=True, doc="The same loss with the weights before any step.")
    last_step = param.ClassSelector(class_=Step, default=None, allow_None=True, doc="The latest step, or None.")
    backward = param.ClassSelector(
        class_=Backward, default=None, allow_None=True, doc="The backward pass of the trace on screen (backward mode)."
    )
    question = param.ClassSelector(class_=Question, default=None, allow_None=True, doc="The quiz question asked.")
    feedback = param.String(default="", doc="What the quiz says about the latest answer (or why it cannot ask).")
    score = param.Integer(default=0, bounds=(0, None), doc="Questions answered right in this session.")
    answered = param.Integer(default=0, bounds=(0, None), doc="Questions answered in this session.")
    asked_weight = param.Tuple(
        default=None, allow_None=True, length=2,
        doc="(layer, kernel cell) of the weight a question asked about, when it opens its formula view.",
    )  # fmt: skip

    def __init__(self, explainer: ExplainerState, seed: int | None = None, **params) -> None:
        self.explainer = explainer
        self._rng = np.random.default_rng(seed)
        self._start: Network | None = None  # the network the first step started from
        self._image: np.ndarray | None = None  # the image whose label set `true_class`
        self._scored: Question | None = None  # a question counts once, however often it is answered
        self._last_backward: Backward | None = None  # kept for the next step or quiz, in either mode
        self._start_losses: tuple | None = None  # (start network, image, class, its loss) last computed
        super().__init__(**params)
        self.param["true_class"].bounds = (0, explainer.network.infos[-1].shape[0] - 1)
        explainer.param.watch(self._follow_trace, "trace")
        explainer.param.watch(self._forget_steps, ["epoch", "experiment"])
        self._follow_trace()

    # -- the loss and the backward pass of what is on screen ------------------------------------------------
    def _label_class(self) -> int:
        """The class of the image's label when it has one that the network knows, else the predicted class."""
        explainer = self.explainer
        label = explainer.catalog[explainer.example].label if explainer.example in explainer.catalog else None
        names = explainer.network.class_names
        return names.index(label) if label in names else explainer.trace.predicted_index

    def _follow_trace(self, _event: param.parameterized.Event | None = None) -> None:
        if self.explainer.image is not self._image:  # a new picture: measure the loss against its own label
            self._image = self.explainer.image
            self.true_class = self._label_class()  # refreshes, if it changed
        self._refresh()

    @param.depends("true_class", "backward_mode", watch=True)
    def _refresh(self) -> None:
        trace = self.explainer.trace
        loss = cross_entropy(trace.logits, self.true_class)
        start = loss if self._start is None else self._start_loss()
        backward = self._backward_of(trace) if self.backward_mode else None
        self.param.update(loss=loss, start_loss=start, backward=backward)

    def _start_loss(self) -> float:
        """The loss before any step, for the image and class on screen (kept while only the steps change it)."""
        image, true_class = self.explainer.image, self.true_class
        known = self._start_losses
        if known is None or known[0] is not self._start or known[1] is not image or known[2] != true_class:
            self._start_losses = known = (self._start, image, true_class, image_loss(self._start, image, true_class))
        return known[3]

    def _backward_of(self, trace: Trace) -> Backward:
        """The backward pass of `trace` for the true class, computed once per trace and class."""
        known = self._last_backward
        if (
            known is None
            or known.network is not trace.network
            or known.true_class != self.true_class
            or not np.array_equal(known.activations["input"], trace.image)
        ):
            self._last_backward = known = backward_pass(trace.network, trace.image, self.true_class)
        return known

    # -- training steps on the session copy ---------------------------------------------------------------
    def step(self) -> Step:
        """One step of gradient descent on the image on screen; every view then shows the new weights."""
        return self.apply_step(self.compute_step())

    def compute_step(self) -> Step:
        """The arithmetic of a step, changing nothing on screen: a server may run it beside its event loop."""
        return take_step(self._backward_of(self.explainer.trace), self.learning_rate)

    def apply_step(self, taken: Step) -> Step:
        """Put a computed step's network on screen."""
        if self._start is None:
            self._start = taken.before.network
        self.explainer.stepped = taken.network  # retraces: the loss follows
        self.param.update(steps=self.steps + 1, last_step=taken)  # last, so a watcher of `steps` sees it all
        return taken

    def reset(self) -> None:
        """Back to the network before any step (the trained one): its trace, to the last bit."""
        self._start = None
        self.explainer.stepped = None
        self.param.update(steps=0, last_step=None)

    def _forget_steps(self, _event: param.parameterized.Event) -> None:
        """Steps belong to the weights they started from: another epoch or experiment starts afresh."""
        if self.steps:
            self.reset()

    # -- the quiz --------------------------------------------------------------------------------------------
    def ask_about_view(self) -> Question | None:
        """A question about the layer open on screen, of the kind its view explains (any question at rest)."""
        layer = self.explainer.layer
        kind = QUESTION_FOR_VIEW.get((self.explainer.network.info(layer).kind, self.backward_mode)) if layer else None
        return self.ask(kind, focus=layer, focus_neuron=self.explainer.neuron if layer else None)

    def ask(self, kind: str | None = None, focus: str = "", focus_neuron: int | None = None) -> Question | None:
        """A new question of `kind` (default: any) from the numbers on screen, about layer `focus` (and its neuron
        `focus_neuron`) where it can be; None, with a reason, if none fits."""
        if kind is not None and kind not in QUESTION_KINDS:
            raise ValueError(f"no question kind {kind!r}; kinds are {', '.join(QUESTION_KINDS)}")
        kinds = [kind] if kind else [str(k) for k in self._rng.permutation(list(QUESTION_KINDS))]
        trace, reason = self.explainer.trace, ""
        for candidate in kinds:
            needs = QUESTION_KINDS[candidate].needs_backward
            live = LiveNumbers(
                trace, self._backward_of(trace) if needs else None, self.learning_rate, focus, focus_neuron
            )
            try:
                question = make_question(candidate, live, self._rng)
            except NoQuestion as error:
                reason = f"No such question fits this image: {error}."
                continue
            self.param.update(question=question, feedback="")
            return question
        self.param.update(question=None, feedback=reason)
        return None

    @property
    def question_answered(self) -> bool:
        """Whether the question on screen has been answered (a typo that is not a number does not count)."""
        return self.question is not None and self._scored is self.question

    def show_question(self) -> None:
        """Open the view where the current question's numbers live (in backward mode for a backward question)."""
        question = self.question
        if question is None:
            return
        if QUESTION_KINDS[question.kind].needs_backward:
            self.backward_mode = True
        where = question.where
        if where.get("key") == "kernel" and len(where["index"]) == 4:  # a kernel weight: its (row, col) in the slice
            kernel_cols = self.explainer.network.layer(str(where["layer"])).window[1]
            self.asked_weight = (where["layer"], where["index"][0] * kernel_cols + where["index"][1])
        self.explainer.requests.run_pending("selection")  # after any click still waiting, not before it
        self.explainer.param.update(question_view(question, self.explainer.network))

    def answer(self, given: str | float) -> bool | None:
        """Check an answer with the engine's number and explain it; None (and a hint) if it cannot be read."""
        question = self.question
        if question is None:
            self.feedback = "Ask for a question first."
            return None
        try:
            correct = question.is_correct(given)
        except ValueError as error:
            self.feedback = str(error)
            return None
        if question is not self._scored:
            self._scored = question
            self.param.update(answered=self.answered + 1, score=self.score + int(correct))
        if correct:
            self.feedback = f"Right. {question.explanation}"
        else:
            expected = question.answer if question.choices else _shown(float(question.answer))
            self.feedback = f"Not quite: the answer is {expected}. {question.explanation}"
        return correct


def question_view(question: Question, network: Network) -> dict[str, object]:
    """The explainer's selection that shows where a question's numbers live (its `where`): the formula view of
    the window or weight it asks about, the view of the layer for a layer-wide question."""
    where = question.where
    layer = str(where["layer"])
    kind = network.info(layer).kind
    index = tuple(int(i) for i in where.get("index", ()))
    if kind in ("relu", "maxpool2d") and len(index) == 3:  # a window: (row, col, channel)
        row, col, channel = index
        return {"layer": layer, "neuron": channel, "level": "formula", "row": row, "col": col}
    if kind == "conv2d" and where.get("key") == "kernel":  # a kernel weight: (row, col, input channel, neuron)
        return {"layer": layer, "neuron": index[3], "input_channel": index[2], "level": "formula", "row": 0, "col": 0}
    # the elastic view of the neuron last in the index: a convolution's bias (or the layer, for its size), a dense
    # weight (input, unit) or bias (unit) in the flatten view, a class in softmax mode
    return {"layer": layer, "neuron": index[-1] if index else 0, "level": "elastic"}


def _shown(value: float) -> str:
    return number(value) if abs(value) >= 0.01 or value == 0 else significant(value)


def backward_on_screen(learning: LearningState | None) -> Backward | None:
    """The backward pass the views draw: None without a learning state, or in forward mode (`backward` itself
    may still hold the previous pass while the watchers of `backward_mode` run)."""
    return learning.backward if learning is not None and learning.backward_mode else None
