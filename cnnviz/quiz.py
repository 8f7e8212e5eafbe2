"""'Check your understanding': questions made from the live numbers of the learner's own image, checked by the engine.

No UI import. Each question carries its answer, computed by the engine (never by the quiz's own arithmetic), and
an explanation that writes out the real arithmetic, so a wrong answer still teaches something. Which numbers a
question uses is random: ask again and the same kind of question comes with other numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from cnnviz.engine import Conv2D, MaxPool2D, ReLU, Trace, pool_step, relu_step, softmax_terms
from cnnviz.engine.explain_backward import relu_gate, weight_update
from cnnviz.engine.gradients import Backward

DIRECTIONS = ("up", "down", "it stays")
CELL_NAMES_2X2 = {(0, 0): "top left", (0, 1): "top right", (1, 0): "bottom left", (1, 1): "bottom right"}


class NoQuestion(ValueError):
    """This network or image offers no clear-cut numbers for this kind of question (e.g. no max pooling)."""


def number(value: float, digits: int = 3) -> str:
    """A value as the views print it, with a real minus sign."""
    text = f"{value:.{digits}f}"
    return text.replace("-", "−") if value < 0 and float(text) != 0 else text.lstrip("-")


def significant(value: float, digits: int = 4) -> str:
    """A gradient, which may be tiny, to a few significant digits, with a real minus sign."""
    text = f"{value:.{digits}g}"
    return "0" if float(text) == 0 else text.replace("-", "−")


def _plain(value: float, digits: int = 3) -> str:
    """A positive value to about `digits` significant digits, without exponent notation: 9,136 rather than
    9.14e+03."""
    return f"{value:,.0f}" if value >= 10 ** (digits - 1) * 10 else f"{value:.{digits}g}"


def parse_number(text: str) -> float:
    """A typed number: accepts a typographic minus and a decimal comma; ValueError with a sentence otherwise."""
    cleaned = str(text).strip().replace("−", "-").replace("–", "-").replace(",", ".")
    try:
        return float(cleaned)
    except ValueError:
        raise ValueError(f"{str(text).strip()!r} is not a number; type one like 0.25 or −1.5.") from None


@dataclass(frozen=True)
class Question:
    """One prompt with its engine-computed answer and the arithmetic that explains it."""

    kind: str  # a key of QUESTION_KINDS
    prompt: str
    answer: str | float  # the right choice, or the number the engine computed
    explanation: str  # the real arithmetic behind the answer
    choices: tuple[str, ...] = ()  # options to pick from; empty: the learner types a number
    tolerance: float = 0.0  # for numbers: how far off still counts (the prompt shows rounded values)
    where: dict[str, object] = field(default_factory=dict)  # layer and position, for views to highlight

    @property
    def level(self) -> str:
        return QUESTION_KINDS[self.kind].level

    def is_correct(self, given: str | float) -> bool:
        """Whether `given` is the answer (a typed number may be off by `tolerance`); ValueError for a non-number."""
        if self.choices:
            return str(given) == self.answer
        return abs(parse_number(given) - float(self.answer)) <= self.tolerance


@dataclass(frozen=True)
class LiveNumbers:
    """What questions are made from: the trace on screen and, for backward questions, its backward pass."""

    trace: Trace
    backward: Backward | None = None  # must belong to the same network, image and true class as `trace`
    learning_rate: float = 0.001
    focus: str = ""  # the layer on screen: a question about a layer asks about this one when it can
    focus_neuron: int | None = None  # and the neuron (or class) on screen in it

    def needs_backward(self) -> Backward:
        if self.backward is None:
            raise NoQuestion("this question needs the backward pass")
        return self.backward


def _position(shape: tuple[int, ...], index: tuple[int, ...]) -> str:
    if len(shape) == 3:
        return f"row {index[0]}, column {index[1]} of channel {index[2] + 1}"
    return f"entry {index[0]}"


def _layers(trace: Trace, kind: type) -> list:
    return [layer for layer in trace.network.layers if isinstance(layer, kind)]


def _input_name(trace: Trace, layer_name: str) -> str:
    return trace.names[trace.names.index(layer_name) - 1]


def _on_screen(live: LiveNumbers, layer_name: str, cells: np.ndarray) -> np.ndarray:
    """Of `cells` (rows of indices into a layer's numbers, the neuron last), those of the neuron on screen, when the
    question is about its layer and it has any."""
    if layer_name != live.focus or live.focus_neuron is None:
        return cells
    mine = cells[cells[:, -1] == live.focus_neuron]
    return mine if len(mine) else cells


def _pick(rng: np.random.Generator, options: list, what: str, focus: str = ""):
    """One of `options` (layers, or layer names): the `focus` layer when it is one of them, else any."""
    if not options:
        raise NoQuestion(f"this network has no {what}")
    focused = [option for option in options if getattr(option, "name", option) == focus]
    return focused[0] if focused else options[int(rng.integers(len(options)))]


def relu_output(live: LiveNumbers, rng: np.random.Generator) -> Question:
    """'What will this ReLU output?' for a clearly positive or clearly negative input, half of each."""
    trace = live.trace
    layer: ReLU = _pick(rng, _layers(trace, ReLU), "activation layer", live.focus)
    x = trace.input_of(layer.name)
    wanted_positive = bool(rng.integers(2))
    candidates = _on_screen(live, layer.name, np.argwhere((x > 0.005) if wanted_positive else (x < -0.005)))
    if not len(candidates):
        candidates = _on_screen(live, layer.name, np.argwhere(np.abs(x) > 0.005))
    if not len(candidates):
        raise NoQuestion(f"{layer.name} receives no clearly non-zero input on this image")
    index = tuple(int(i) for i in candidates[int(rng.integers(len(candidates)))])
    step = relu_step(trace, layer.name, *index)
    shown = number(step.x)
    slope = layer.negative_slope
    if slope == 0:
        rule = f"max(0, {shown}) = {number(step.y)}"
        why = "a positive input passes unchanged" if step.x > 0 else "a negative input becomes zero"
    elif slope == 1:
        rule, why = f"y = x = {number(step.y)}", "without an activation function every value passes unchanged"
    else:
        rule = f"max({slope:g} × {shown}, {shown}) = {number(step.y, 4)}"
        why = "a positive input passes unchanged" if step.x > 0 else f"a negative input is multiplied by {slope:g}"
    return Question(
        kind="relu-output",
        prompt=f"{layer.name} receives {shown} at {_position(x.shape, index)}. What will it output?",
        answer=step.y,
        explanation=f"{rule}: {why}.",
        tolerance=0.001,
        where={"layer": layer.name, "index": index},
    )


def _cell_name(shape: tuple[int, int], cell: tuple[int, int]) -> str:
    return CELL_NAMES_2X2[cell] if shape == (2, 2) else f"row {cell[0]}, column {cell[1]}"


def pooling_kept_cell(live: LiveNumbers, rng: np.random.Generator) -> Question:
    """'Which cell of this window does max pooling keep?' for a window whose winner is clear at 3 decimals."""
    trace = live.trace
    layers = [layer for layer in _layers(trace, MaxPool2D) if layer.mode in ("max", "min")]
    layer: MaxPool2D = _pick(rng, layers, "max or min pooling", live.focus)
    windows = layer.windows(trace.input_of(layer.name)[np.newaxis])[0]  # (rows, cols, channels, pr, pc)
    ordered = np.sort(windows.reshape(*windows.shape[:3], -1), axis=-1)
    inside = np.isfinite(ordered).all(axis=-1)  # padding cells are ∓inf
    ordered = np.where(inside[..., np.newaxis], ordered, 0.0)
    margin = ordered[..., -1] - ordered[..., -2] if layer.mode == "max" else ordered[..., 1] - ordered[..., 0]
    clear = _on_screen(live, layer.name, np.argwhere(inside & (margin > 0.002)))  # a winner visible at 3 decimals
    if not len(clear):
        raise NoQuestion(f"no window of {layer.name} has a clear winner on this image")
    row, col, channel = (int(i) for i in clear[int(rng.integers(len(clear)))])
    step = pool_step(trace, layer.name, row, col, channel)  # the engine says which cell it keeps
    shape = step.window.shape
    cells = [(u, v) for u in range(shape[0]) for v in range(shape[1])]
    listed = ", ".join(f"{_cell_name(shape, cell)} {number(step.window[cell])}" for cell in cells)
    kept = _cell_name(shape, step.argmax)
    values = ", ".join(number(step.window[cell]) for cell in cells)
    return Question(
        kind="pooling-kept-cell",
        prompt=(
            f"A {shape[0]}×{shape[1]} window of {_input_name(trace, layer.name)} (channel {channel + 1}) holds: "
            f"{listed}. Which cell does {layer.mode} pooling keep?"
        ),
        answer=kept,
        explanation=(
            f"{layer.mode}({values}) = {number(step.result)}, the {kept} cell. It becomes the value at row {row}, "
            f"column {col} of {layer.name}; the other cells of the window are dropped."
        ),
        choices=tuple(_cell_name(shape, cell) for cell in cells),
        where={"layer": layer.name, "index": (row, col, channel)},
    )


def _weight_name(layer_name: str, key: str, index: tuple[int, ...], trace: Trace) -> str:
    if key == "bias":
        return f"the bias of neuron {index[0] + 1} of {layer_name}"
    if len(index) == 4:
        u, v, channel, neuron = index
        return (
            f"the kernel weight at row {u}, column {v} of {layer_name}'s neuron {neuron + 1}, "
            f"input channel {channel + 1}"
        )
    names = trace.network.class_names
    output = layer_name == trace.network.layer_names[-2] and names
    target = f"class {names[index[1]]!r}" if output else f"unit {index[1] + 1}"
    return f"the weight from input {index[0]} to {target} in {layer_name}"


def weight_direction(live: LiveNumbers, rng: np.random.Generator) -> Question:
    """'Which way will this weight move?' for a weight whose step is visible: among the larger gradients."""
    trace, backward, learning_rate = live.trace, live.needs_backward(), live.learning_rate
    layer_name = _pick(rng, list(backward.weight_gradients), "trainable layer", live.focus)
    key = "kernel" if rng.random() < 0.8 else "bias"
    gradient = backward.weight_gradients[layer_name][key]
    cells = _on_screen(live, layer_name, np.argwhere(np.ones(gradient.shape, bool)))
    strongest = cells[np.argsort(np.abs(gradient[tuple(cells.T)]), kind="stable")[-max(1, len(cells) // 10) :]]
    index = tuple(int(i) for i in strongest[int(rng.integers(len(strongest)))])
    update = weight_update(backward, layer_name, key, index, learning_rate)
    answer = {"up": "up", "down": "down"}.get(update.direction, "it stays")
    g = significant(update.gradient)
    reason = {
        "down": "the gradient is positive: the loss grows with this weight, so the step makes it smaller",
        "up": "the gradient is negative: the loss shrinks as this weight grows, so the step makes it larger",
        "it stays": "the gradient is zero: this weight did not affect the loss on this image",
    }[answer]
    return Question(
        kind="weight-direction",
        prompt=(
            f"The loss's gradient with respect to {_weight_name(layer_name, key, index, trace)} (now "
            f"{number(update.weight, 4)}) is {g}. With learning rate η = {learning_rate:g}, which way will the "
            "weight move in the next step?"
        ),
        answer=answer,
        explanation=(
            f"w ← w − η·g = {number(update.weight, 6)} − {learning_rate:g} × ({g}) = {number(update.new_weight, 6)}. "
            f"{reason[0].upper()}{reason[1:]}."
        ),
        choices=DIRECTIONS,
        where={"layer": layer_name, "key": key, "index": index},
    )


def relu_gate_gradient(live: LiveNumbers, rng: np.random.Generator) -> Question:
    """'What gradient does this ReLU pass back?': the gate is open where the forward input was positive."""
    trace, backward = live.trace, live.needs_backward()
    layer: ReLU = _pick(rng, _layers(trace, ReLU), "activation layer", live.focus)
    upstream = backward.upstream_of(layer.name)
    candidates = _on_screen(
        live, layer.name, np.argwhere((np.abs(upstream) > 1e-6) & (np.abs(backward.input_of(layer.name)) > 0.005))
    )
    if not len(candidates):
        raise NoQuestion(f"no gradient arrives at {layer.name} on this image")
    index = tuple(int(i) for i in candidates[int(rng.integers(len(candidates)))])
    gate = relu_gate(backward, layer.name, *index)
    g, passed = significant(gate.upstream), significant(gate.gradient)
    if gate.x > 0:
        why = "the input was positive, so the gate is open and the gradient passes unchanged"
    elif gate.slope == 0:
        why = "the input was negative, so the gate is shut: nothing flows back"
    else:
        why = f"the input was negative, so only the slope {gate.slope:g} of the gradient flows back"
    return Question(
        kind="relu-gate",
        prompt=(
            f"In the backward pass, the gradient {g} arrives at {layer.name}, {_position(upstream.shape, index)}. "
            f"In the forward pass its input there was {number(gate.x)}. What gradient does it pass back?"
        ),
        answer=gate.gradient,
        explanation=f"{g} × {gate.slope:g} = {passed}. {why[0].upper()}{why[1:]}.",
        tolerance=1e-3 * abs(gate.upstream),
        where={"layer": layer.name, "index": index},
    )


def output_size(live: LiveNumbers, rng: np.random.Generator) -> Question:
    """'What size is the output with padding P and stride S?' for one of this network's convolutions."""
    trace = live.trace
    layer: Conv2D = _pick(rng, _layers(trace, Conv2D), "convolution", live.focus)
    n, width = trace.input_of(layer.name).shape[:2]
    k = layer.window[0]
    padding, stride = int(rng.integers(k)), int(rng.integers(1, 4))
    probe = Conv2D("probe", np.zeros((k, 1, 1, 1)), np.zeros(1), (stride, 1), "valid")
    size = probe.forward(np.zeros((1, n + 2 * padding, 1, 1))).shape[1]  # the engine slides a kernel down the rows
    return Question(
        kind="output-size",
        prompt=(
            f"{layer.name} slides a {k}×{k} kernel over its {n}×{width} input. With padding {padding} and stride "
            f"{stride}, how many rows would its output have?"
        ),
        answer=float(size),
        explanation=(
            f"⌊(n + 2p − k) / s⌋ + 1 = ⌊({n} + 2×{padding} − {k}) / {stride}⌋ + 1 = "
            f"⌊{n + 2 * padding - k} / {stride}⌋ + 1 = {(n + 2 * padding - k) // stride} + 1 = {size}."
        ),
        where={"layer": layer.name, "padding": padding, "stride": stride},
    )


def winning_class(live: LiveNumbers, rng: np.random.Generator) -> Question:
    """'Which class wins?' from the logits, explained with the softmax shares."""
    trace = live.trace
    names = trace.network.class_names or tuple(str(k) for k in range(len(trace.logits)))
    terms = softmax_terms(trace.logits)
    listed = ", ".join(f"{name} {number(z, 2)}" for name, z in zip(names, terms.logits, strict=True))
    winner = trace.predicted_index
    z = number(terms.logits[winner], 2)
    return Question(
        kind="winning-class",
        prompt=f"The output layer gives these scores (logits): {listed}. Which class wins?",
        answer=names[winner],
        explanation=(
            f"Softmax gives each class e^z / Σ e^z. The largest score, {z} for {names[winner]}, gets the largest "
            f"share: e^{z} / Σ e^z = {_plain(terms.exps[winner], 4)} / {_plain(terms.total, 4)} = "
            f"{100 * terms.probabilities[winner]:.1f} %. Softmax never changes the order of the scores."
        ),
        choices=tuple(names),
        where={"layer": trace.network.layer_names[-1], "index": (winner,)},
    )


@dataclass(frozen=True)
class QuestionKind:
    title: str
    level: str  # where in the app it belongs: "overview", "elastic" or "formula"
    make: Callable[..., Question]
    needs_backward: bool = False


QUESTION_KINDS: dict[str, QuestionKind] = {
    "relu-output": QuestionKind("What will this ReLU output?", "formula", relu_output),
    "pooling-kept-cell": QuestionKind("Which cell does pooling keep?", "formula", pooling_kept_cell),
    "output-size": QuestionKind("What size is the output?", "overview", output_size),
    "winning-class": QuestionKind("Which class wins?", "elastic", winning_class),
    "weight-direction": QuestionKind("Which way will this weight move?", "formula", weight_direction, True),
    "relu-gate": QuestionKind("What does the ReLU pass back?", "elastic", relu_gate_gradient, True),
}


def make_question(kind: str, live: LiveNumbers, rng: np.random.Generator) -> Question:
    """A question of `kind` about the live numbers; NoQuestion if they offer nothing clear-cut for it."""
    try:
        maker = QUESTION_KINDS[kind].make
    except KeyError:
        raise ValueError(f"no question kind {kind!r}; kinds are {', '.join(QUESTION_KINDS)}") from None
    return maker(live, rng)
