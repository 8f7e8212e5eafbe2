"""The backward formula views: how the loss's gradient passes through the layer a formula view opened.

Shown inside the formula dialog (`views/formula.py`) while the Learn card's backward mode is on. Built like the
forward view: one DynamicMap of the layer's two sides (a single `hv.RGB`) under one of the window's outline,
which follows `state.row` / `state.col` through `streams.Params`; `PointerXY` and `Tap` on the outline write
the position to the state, so the forward view, the URL and these numbers (one HTML pane) stay on one window.
The learning rate slider and the chosen weight only rewrite the numbers.
"""

from __future__ import annotations

from pathlib import Path

import holoviews as hv
import panel as pn
import param
from panel.viewable import Viewer

from cnnviz.article import section_for
from cnnviz.colors import color_ranges
from cnnviz.learning_state import LearningState, backward_on_screen
from cnnviz.mathml import tex_to_mathml
from cnnviz.plots import picture_only
from cnnviz.plots.formula import ASPECT, BLANK, PLOT_RANGE, MapsLayout, maps_element, window_marks
from cnnviz.plots.formula_backward import (
    BACKWARD_KINDS,
    TEX,
    BackwardExplained,
    backward_captions_html,
    backward_numbers_html,
    explain_backward,
)
from cnnviz.state import ExplainerState
from cnnviz.views.component import NumbersPane, move_window, redraws_once
from cnnviz.views.learning import LEARNING_RATES, nearest_rate

HERE = Path(__file__).parent
CSS = [(HERE / name).read_text() for name in ("formula.css", "formula_backward.css")]
MAPS_MAX_WIDTH = 640  # as the forward maps: the two views swap places in one dialog

HINTS = {
    "maps": "The gradient of the loss arrives on the right and flows left. Point at either map to move the window, "
    "tap to pin it; the arrow keys move it too, space plays or pauses.",
    "weights": " Pick a weight to see its update.",
    "vector": "The gradient of the loss arrives from the right and flows left.",
}


class BackwardFormula(Viewer):
    """The backward step of the selected neuron, while backward mode is on and a formula view is open."""

    active = param.Boolean(default=False, doc="Whether the backward step is on screen (the dialog follows it).")
    opened = param.Integer(default=0, doc="Counts the explanations put on screen; the maps' DynamicMap follows it.")
    picked = param.Integer(default=-1, doc="The weight whose update is written out; -1: the largest gradient's.")
    pinned = param.Boolean(default=False, doc="A tap pinned the window: pointing elsewhere leaves it in place.")
    sweeping = param.Boolean(default=False, doc="The dialog's Play is moving the window: pointing leaves it alone.")

    def __init__(self, state: ExplainerState, learning: LearningState, **params) -> None:
        super().__init__(**params)
        self.state, self.learning = state, learning
        self.explained: BackwardExplained | None = None
        self._key: tuple | None = None
        self._formula = pn.pane.HTML("", sizing_mode="stretch_width", stylesheets=CSS, margin=(0, 0, 4, 0))
        self._hint = pn.pane.HTML("", sizing_mode="stretch_width", stylesheets=CSS, margin=0)
        self._captions = pn.pane.HTML("", sizing_mode="stretch_width", stylesheets=CSS, margin=0)
        self._numbers = NumbersPane(
            backward_numbers_html, sizing_mode="stretch_width", stylesheets=CSS, margin=(4, 0, 0, 0)
        )
        self.rate = pn.widgets.DiscreteSlider(
            label="Learning rate η", options=list(LEARNING_RATES), value=nearest_rate(learning.learning_rate),
            width=300, css_classes=["fv-learning-rate"],
        )  # fmt: skip
        maps = hv.DynamicMap(self._draw_maps, streams=[hv.streams.Params(self, ["opened"])])
        self.marks = hv.DynamicMap(
            self._draw_marks, streams=[hv.streams.Params(self, ["opened"]), hv.streams.Params(state, ["row", "col"])]
        ).opts(fill_alpha=0, line_color="#111111", line_width=3, apply_ranges=False)
        self.pointer = hv.streams.PointerXY(source=self.marks)
        self.tap = hv.streams.Tap(source=self.marks)
        self.pointer.add_subscriber(self._on_pointer)
        self.tap.add_subscriber(self._on_tap)
        self._plot = (maps * self.marks).opts(
            xaxis=None, yaxis=None, toolbar=None, default_tools=[], xlim=PLOT_RANGE["x"], ylim=PLOT_RANGE["y"],
            responsive="width", aspect=ASPECT, show_frame=False, border=0, bgcolor="#ffffff", hooks=[picture_only],
        )  # fmt: skip
        self._maps = pn.Column(  # the plot joins at the first backward step shown: most sessions never need it
            self._captions, max_width=MAPS_MAX_WIDTH, sizing_mode="stretch_width", align="center", margin=0
        )
        self.layout = pn.Column(
            self._formula, self._hint, self._maps, self.rate, self._numbers.pane,
            sizing_mode="stretch_width", margin=0, visible=False, css_classes=["fv-backward-view"],
        )  # fmt: skip
        self.rate.param.watch(self._choose_rate, "value")
        state.param.watch(self._refresh, ["level", "layer", "neuron", "input_channel", "color_mode"])
        learning.param.watch(self._refresh, ["backward_mode", "backward"])
        state.param.watch(self._show_numbers, ["row", "col"])
        learning.param.watch(self._follow_rate, "learning_rate")
        self.param.watch(self._show_numbers, "picked")
        self._refresh()

    def __panel__(self) -> pn.Column:
        return self.layout

    def _wanted(self) -> bool:
        state = self.state
        return (
            backward_on_screen(self.learning) is not None
            and state.level == "formula"
            and bool(state.layer)
            and state.network.info(state.layer).kind in BACKWARD_KINDS
        )

    @property
    def frame(self) -> dict:
        """What the dialog frame shows while this view is on screen."""
        kind = self.explained.kind
        return {
            "heading": self.explained.title,
            "kind": f"backward-{kind}",
            "playable": self.explained.has_maps,
            "section": section_for(kind, backward=True),
        }

    @property
    def slides(self) -> bool:
        return self.active and self.explained is not None and self.explained.has_maps

    # -- drawing ------------------------------------------------------------------------------------------
    def _draw_maps(self, opened: int) -> hv.RGB:
        explained = self.explained if self.explained is not None and self.explained.has_maps else BLANK
        return maps_element(
            explained.layout, explained.input_map, explained.input_shade, explained.output_map, explained.output_shade
        )

    def _draw_marks(self, opened: int, row: int, col: int) -> hv.Rectangles:
        layout = self.explained.layout if self.explained is not None else MapsLayout((1, 1), (1, 1))
        return window_marks(layout, *layout.clamp(row, col))

    def _show_numbers(self, *_events) -> None:
        if self.active:
            self._show_numbers_at(self.state.row, self.state.col)

    def _show_numbers_at(self, row: int, col: int) -> None:
        self._numbers.show(self.explained, row, col, self.picked, self.learning.learning_rate)

    def _refresh(self, *_events) -> None:
        state, learning = self.state, self.learning
        if not self._wanted():
            self.layout.visible = False
            self.active = False
            return
        key = (learning.backward, state.layer, state.neuron, state.input_channel, state.color_mode)
        with pn.io.hold():
            if key != self._key:
                if key[1:3] != (self._key or (None,) * 3)[1:3]:
                    asked = learning.asked_weight  # a quiz question's weight, when it opened this view
                    picked = asked[1] if asked is not None and asked[0] == state.layer else -1
                    self.param.update(picked=picked, pinned=False)
                    learning.asked_weight = None
                self._key = key
                self.explained = explained = explain_backward(
                    state.trace, learning.backward, state.layer, state.neuron, state.input_channel,
                    color_ranges(state.trace, state.color_mode),
                )  # fmt: skip
                parts = "".join(f"<span>{tex_to_mathml(part, display=True)}</span>" for part in TEX[explained.kind])
                self._formula.object = f'<div class="fv-formulas">{parts}</div>'
                self._maps.visible = explained.has_maps
                if explained.has_maps and len(self._maps) == 1:
                    self._maps.append(pn.pane.HoloViews(self._plot, margin=0, linked_axes=False))
                has_weights = bool(learning.backward.weight_gradients.get(state.layer))
                self.rate.visible = has_weights
                hint = HINTS["maps" if explained.has_maps else "vector"] + (HINTS["weights"] if has_weights else "")
                self._hint.object = f'<p class="fv-hint">{hint}</p>'
                if explained.has_maps:
                    self._captions.object = backward_captions_html(explained)
                    row, col = explained.layout.clamp(state.row, state.col)
                    state.param.update(row=row, col=col)  # a selection may come from a bigger layer or the URL
                self.opened += 1
            self.layout.visible = True
            self.active = True
            self._show_numbers()

    # -- what the learner does ----------------------------------------------------------------------------
    def move_to(self, row: int, col: int) -> None:
        if self.slides:
            row, col = self.explained.layout.clamp(row, col)
            if (row, col) != (self.state.row, self.state.col):
                move_window(self.state, row, col, self._show_numbers_at)

    @redraws_once
    def _on_pointer(self, x: float | None = None, y: float | None = None) -> None:
        if self.slides and not self.pinned and not self.sweeping:
            position = self.explained.layout.position_at(x, y)
            if position is not None:
                self.move_to(*position)

    @redraws_once
    def _on_tap(self, x: float | None = None, y: float | None = None) -> None:
        """A tap pins the window where it lands; a tap on the pinned cell lets it follow the pointer again."""
        if not self.slides or x is None or y is None:
            return
        position = self.explained.layout.position_at(x, y)
        self.pinned = not (self.pinned and position == (self.state.row, self.state.col))
        self.move_to(*position)

    def on_action(self, message: dict) -> None:
        """The dialog's keys and buttons while this view is on screen (formula.js sends them)."""
        action = message.get("action")
        if action == "move":
            self.move_to(self.state.row + int(message.get("rows", 0)), self.state.col + int(message.get("cols", 0)))
        elif action == "pick":
            index = int(message.get("index", -1))
            if self.explained.kind == "softmax":
                if 0 <= index < self.state.network.infos[-1].shape[0]:
                    self.state.select(self.state.layer, index, level="formula")
            else:
                self.picked = index

    def _choose_rate(self, event: param.parameterized.Event) -> None:
        self.learning.learning_rate = event.new

    def _follow_rate(self, *_events) -> None:
        self.rate.value = nearest_rate(self.learning.learning_rate)
        self._show_numbers()
