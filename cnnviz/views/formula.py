"""Interactive formula views: the arithmetic of one convolution window, ReLU cell, pooling window or softmax term.

The server sends the engine's numbers for every position of the explained map once (`plots.formula`); the
browser component indexes them on hover, on the arrow keys and during the sweep, so none of that waits for the
server. Only where the window rests travels back (debounced), to keep `state.row` / `state.col` and the URL
current.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import panel as pn
import param
from panel.custom import Child, JSComponent
from panel.viewable import Viewer

from cnnviz.article import LAYER_KIND_SECTIONS, SECTION_ANCHORS
from cnnviz.colors import color_ranges
from cnnviz.mathml import tex_to_mathml
from cnnviz.plots.formula import FORMULA_KINDS, PALETTES, formula_data
from cnnviz.state import ExplainerState
from cnnviz.views.article import SCROLL_TO_SECTION_JS

HERE = Path(__file__).parent


class FormulaPanel(JSComponent):
    """Browser-side dialog: draws a `FormulaData` payload and moves the window with no round trip."""

    formula = Child(doc="The layer's formula as MathML, which the browser typesets by itself.")
    payload = param.Bytes(default=b"", doc="FormulaData.pack(): the engine's numbers for every position.")
    palettes = param.Dict(default=PALETTES, doc="Palette name -> hex colours that the payload's colours index.")
    open = param.Boolean(default=False, doc="Whether the dialog is shown.")
    position = param.List(default=[0, 0], doc="[row, col] of the explained output cell; the browser reports moves.")
    section = param.String(default="", doc="Article anchor the info button scrolls to.")
    closed = param.List(default=[], doc="[nonce] set by the browser on close, Esc or a click outside.")
    picked = param.List(default=[], doc="[class, nonce] set by the browser when a softmax class is clicked.")

    _esm = SCROLL_TO_SECTION_JS + (HERE / "formula.js").read_text()
    # clicks and keys skip Panel's 50 ms debounce; window moves (`position`) keep it, they come in bursts
    _priority_changes: ClassVar[list[str]] = ["closed", "picked"]
    _stylesheets: ClassVar[list[str]] = [(HERE / "formula.css").read_text()]


class FormulaView(Viewer):
    """Shows the formula view of the selected neuron while `state.level` is "formula"."""

    def __init__(self, state: ExplainerState, **params) -> None:
        super().__init__(**params)
        self.state = state
        self._shown: tuple | None = None  # what the payload currently explains, to skip needless rebuilds
        self._formula = pn.pane.HTML("", styles={"font-size": "1.15em"})
        self._panel = FormulaPanel(formula=self._formula, height=0, margin=0, sizing_mode="stretch_width")
        self._panel.param.watch(self._on_move, "position")
        self._panel.param.watch(self._on_close, "closed")
        self._panel.param.watch(self._on_pick, "picked")
        state.param.watch(self._refresh, ["level", "layer", "neuron", "input_channel", "trace", "color_mode"])
        state.param.watch(self._follow_state, ["row", "col"])
        self._refresh()

    def __panel__(self) -> JSComponent:
        return self._panel

    @property
    def showing(self) -> bool:
        state = self.state
        return state.level == "formula" and bool(state.layer) and state.network.info(state.layer).kind in FORMULA_KINDS

    def _position(self) -> list[int]:
        """state.row/col clamped into the explained map (a selection may come from a bigger layer or the URL)."""
        rows, cols = self.state.trace[self.state.layer].shape[:2]
        return [min(self.state.row, rows - 1), min(self.state.col, cols - 1)]

    def _refresh(self, *_events) -> None:
        if not self.showing:
            self._panel.open = False
            return
        state = self.state
        kind = state.network.info(state.layer).kind
        shown = (state.trace, state.layer, state.neuron, state.input_channel, state.color_mode)
        with pn.io.hold():
            if shown != self._shown:
                ranges = color_ranges(state.trace, state.color_mode)
                data = formula_data(state.trace, state.layer, state.neuron, state.input_channel, ranges)
                self._formula.object = tex_to_mathml(state.trace.network.layer(state.layer).formula, display=True)
                self._panel.param.update(
                    payload=data.pack(),
                    section=SECTION_ANCHORS[LAYER_KIND_SECTIONS[kind]],
                    position=[0, 0] if kind == "softmax" else self._position(),
                )
                self._shown = shown
            self._panel.open = True

    def _follow_state(self, *_events) -> None:
        if self.showing and self.state.network.info(self.state.layer).kind != "softmax":
            self._panel.position = self._position()

    def _on_move(self, event: param.parameterized.Event) -> None:
        if self.showing and self.state.network.info(self.state.layer).kind != "softmax":
            row, col = event.new
            self.state.param.update(row=int(row), col=int(col))

    def _on_close(self, event: param.parameterized.Event) -> None:
        if event.new and self.state.level == "formula":
            self.state.back()

    def _on_pick(self, event: param.parameterized.Event) -> None:
        if event.new:
            self.state.select(self.state.layer, int(event.new[0]), level="formula")
