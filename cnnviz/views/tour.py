"""A first-visit guided tour: one short card per part of the tool, with the part itself in a spotlight.

Steps that explain a detail view open that view first (through the session state), so the learner sees what
the card talks about; leaving the tour puts the state back where it was.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import param
from panel.custom import JSComponent
from panel.viewable import Viewer

from cnnviz.state import ExplainerState
from cnnviz.views import DEEP_QUERY_JS

HERE = Path(__file__).parent
TOUR_CSS = (HERE / "tour.css").read_text()


@dataclass(frozen=True)
class TourStep:
    selector: str  # CSS selector of the part to put in the spotlight (searched through shadow roots)
    title: str
    text: str
    opens: tuple[str, int, str] | None = None  # (layer, neuron, level) to show while this step is on screen


def tour_steps(state: ExplainerState) -> list[TourStep]:
    """The walkthrough, in the order a first-time visitor meets the parts."""
    convs = [info.name for info in state.network.infos if info.kind == "conv2d"]
    conv = convs[1] if len(convs) > 1 else convs[0]
    rows, cols = state.network.layer(conv).kernel.shape[:2]
    return [
        TourStep(
            ".ov-frame",
            "The whole network at a glance",
            "Each column is one layer and each small square one neuron's output for the current image. "
            "Red means negative, white zero, blue positive. Hover over a square to see where its inputs come from.",
        ),
        TourStep(
            f".ov-tile[data-layer='{conv}'][data-index='3']",
            "Open a neuron",
            "Click any convolution neuron, or Tab into the network and press Enter, to see how it is computed "
            "from the layer before it.",
        ),
        TourStep(
            ".el-view",
            "How one neuron is made",
            "Every input channel is convolved with its own small kernel. Adding those intermediate results and a "
            "bias gives the neuron's map. Press Esc or click empty space to go back.",
            opens=(conv, 3, "elastic"),
        ),
        TourStep(
            ".fv-dialog",
            "The arithmetic of one step",
            f"Here every number is written out: {rows * cols} input values times {rows * cols} weights ({rows}×{cols} "
            "windows), summed. Hover the matrices or press the arrow keys to move the window.",
            opens=(conv, 3, "formula"),
        ),
        TourStep(
            ".ov-class.ov-predicted",
            "The prediction",
            "The last layer turns the features into one probability per class. The orange bar is the network's "
            "best guess; click a class to see how its score is added up.",
        ),
        TourStep(
            ".dropzone",
            "Try your own picture",
            "Drop a photo here or click to choose one. It is cropped and shrunk to "
            f"{state.network.input_shape[0]} × {state.network.input_shape[1]} pixels, exactly what the network sees. "
            "The tutorial below explains every layer.",
        ),
    ]


class TourControl(JSComponent):
    """The launcher button, the spotlight and the step card, all drawn in the browser."""

    steps = param.List(doc="TourStep fields for the browser: selector, title, text.")
    step = param.Integer(default=-1, doc="Index of the step on screen; -1 when the tour is closed.")
    auto_start = param.Boolean(default=True, doc="Open on a first visit (remembered in the browser).")
    refresh = param.Integer(default=0, doc="Bumped when a view opened for a step, so the spotlight re-measures.")
    card_css = param.String(default=TOUR_CSS, constant=True, doc="Styles of the card, which lives outside this root.")

    _esm = DEEP_QUERY_JS + (HERE / "tour.js").read_text()
    _stylesheets: ClassVar[list[str]] = [TOUR_CSS]

    def _handle_msg(self, message: Any) -> None:
        """A click on the card's buttons (`send_msg`, handled at once): go to that step; -1 closes the tour."""
        if isinstance(message, dict) and isinstance(message.get("step"), int):
            self.step = max(-1, min(message["step"], len(self.steps) - 1))


class Tour(Viewer):
    """Opens the views the cards talk about, and restores the learner's own view when the tour ends."""

    def __init__(self, state: ExplainerState, auto_start: bool = True, **params) -> None:
        super().__init__(**params)
        self.state = state
        self.steps = tour_steps(state)
        self._control = TourControl(steps=[asdict(step) for step in self.steps], auto_start=auto_start)
        self._saved: dict | None = None
        self._control.param.watch(self._follow_step, "step")

    def __panel__(self) -> TourControl:
        return self._control

    def _follow_step(self, event: param.parameterized.Event) -> None:
        state = self.state
        if event.old < 0 <= event.new:
            self._saved = {name: getattr(state, name) for name in ("layer", "neuron", "level")}
        if event.new < 0:
            if self._saved is not None:
                state.param.update(**self._saved)
                self._saved = None
            return
        opens = self.steps[event.new].opens
        if opens:
            layer, neuron, level = opens
            state.select(layer, neuron, level)
        elif self._saved is not None:
            state.param.update(**self._saved)
        # after the selection's request (state.requests runs them in order): the view is open when the spotlight
        # measures it
        state.requests.submit("tour", self._remeasure)

    def _remeasure(self) -> None:
        self._control.refresh += 1
