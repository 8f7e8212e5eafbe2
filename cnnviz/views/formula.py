"""Interactive formula views: the arithmetic of one convolution window, ReLU cell, pooling window or softmax term.

Built on HoloViews in Python. The maps plot overlays two DynamicMaps: the opened explanation's maps (they follow
`opened`) and the window's outline, which follows `state.row` / `state.col` through a `streams.Params`. Pointing
at either map (`streams.PointerXY`; HoloViews drops the moves that arrive while one is processed) or tapping it
(`streams.Tap`, which pins the window) sends the numbers (an HTML pane) and then writes the position to the
state (`component.move_window`), so the outline and any other pane linked to `state.row` / `state.col` follow.
The sweep steps the same position from a per-session periodic callback; a state watcher rewrites the numbers.

`FormulaDialog` is the browser-side frame around these panes: modal focus, keys, fading, and the history rule
that lets Back leave the view in one step. It holds no model knowledge.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import holoviews as hv
import panel as pn
import param
from panel.custom import Child, JSComponent
from panel.viewable import Viewer

from cnnviz.article import section_for
from cnnviz.colors import color_ranges
from cnnviz.mathml import tex_to_mathml
from cnnviz.plots import picture_only
from cnnviz.plots.formula import (
    ASPECT,
    BLANK,
    FORMULA_KINDS,
    MAP_KINDS,
    PLOT_RANGE,
    Explained,
    MapsLayout,
    captions_html,
    explain,
    maps_element,
    numbers_html,
    window_marks,
)
from cnnviz.state import ExplainerState
from cnnviz.views.component import NumbersPane, ParentComponent, move_window, redraws_once

HERE = Path(__file__).parent
CSS = (HERE / "formula.css").read_text()
SPEEDS = (1, 2, 4, 8)
"""Windows per second the sweep can step; the default lets a learner read each window's numbers."""
DEFAULT_SPEED = 2
MAPS_MAX_WIDTH = 640
PLOT_OPTIONS = dict(  # the height follows the width, so the maps keep square cells on a phone too
    xaxis=None, yaxis=None, toolbar=None, default_tools=[], xlim=PLOT_RANGE["x"], ylim=PLOT_RANGE["y"],
    responsive="width", aspect=ASPECT, show_frame=False, border=0, bgcolor="#ffffff", hooks=[picture_only],
)  # fmt: skip
HINTS = {
    "map": "Point at either map to move the window, tap to pin it; the arrow keys move it too, space plays or "
    "pauses, Esc closes.",
    "softmax": "Hover over a class or a term of the sum and both light up; Esc closes.",
}


class FormulaDialog(ParentComponent):
    """The modal frame around the formula view's panes; reports what the person asks for as messages."""

    body = Child(doc="The view's panes: formula, maps, numbers.")
    heading = param.String(default="", doc="The dialog's title.")
    kind = param.String(default="", doc="Layer kind explained (a hook for styles and tests).")
    open = param.Boolean(default=False, doc="Whether the dialog is shown.")
    playable = param.Boolean(default=False, doc="Whether the view has a window to sweep.")
    playing = param.Boolean(default=False, doc="Whether the sweep is running (shown on the play button).")
    speed = param.Selector(default=DEFAULT_SPEED, objects=list(SPEEDS), doc="Windows per second while playing.")
    speeds = param.List(default=list(SPEEDS), doc="The speed menu.")
    section = param.String(default="", doc="Article anchor the info button scrolls to.")

    _esm = "formula.js"
    _stylesheets: ClassVar[list[str]] = [CSS]

    def __init__(self, on_action=None, **params) -> None:
        super().__init__(**params)
        self._on_action = on_action

    def _handle_msg(self, message: Any) -> None:
        if self._on_action is not None and isinstance(message, dict):
            self._on_action(message)


class FormulaView(Viewer):
    """Shows the formula view of the selected neuron while `state.level` is "formula"."""

    opened = param.Integer(default=0, doc="Counts the explanations put on screen; the maps' DynamicMap follows it.")
    pinned = param.Boolean(default=False, doc="A tap pinned the window: pointing elsewhere leaves it in place.")

    def __init__(
        self, state: ExplainerState, backward: Viewer | None = None, quiz: Viewer | None = None, **params
    ) -> None:
        super().__init__(**params)
        self.state = state
        self.backward = backward  # backward mode's view (views/formula_backward.py) takes the dialog while active
        self.quiz = quiz
        self.explained: Explained | None = None
        self._key: tuple | None = None  # what `explained` explains, to skip needless rebuilds
        self._sweep: pn.io.callbacks.PeriodicCallback | None = None
        self._formula = pn.pane.HTML("", sizing_mode="stretch_width", stylesheets=[CSS], margin=(0, 0, 4, 0))
        self._hint = pn.pane.HTML("", sizing_mode="stretch_width", stylesheets=[CSS], margin=0)
        self._captions = pn.pane.HTML("", sizing_mode="stretch_width", stylesheets=[CSS], margin=0)
        self._numbers = NumbersPane(numbers_html, sizing_mode="stretch_width", stylesheets=[CSS], margin=(4, 0, 0, 0))
        maps = hv.DynamicMap(self._draw_maps, streams=[hv.streams.Params(self, ["opened"])])
        self.marks = hv.DynamicMap(
            self._draw_marks, streams=[hv.streams.Params(self, ["opened"]), hv.streams.Params(state, ["row", "col"])]
        )
        self.pointer = hv.streams.PointerXY(source=self.marks)
        self.tap = hv.streams.Tap(source=self.marks)
        self.pointer.add_subscriber(self._on_pointer)
        self.tap.add_subscriber(self._on_tap)
        plot = maps * self.marks  # no `.opts` on the overlay: it would be re-applied on every pointer move
        self._maps = pn.Column(
            self._captions,
            # its sizing follows the plot's options (`scale_width`): a sizing_mode given here would be undone by
            # HoloViews on the first redraw, a relayout of the dialog in the browser on the first pointer move
            pn.pane.HoloViews(plot, margin=0, linked_axes=False),
            max_width=MAPS_MAX_WIDTH,
            sizing_mode="stretch_width",
            align="center",
            margin=0,
        )
        self._forward = pn.Column(
            self._formula, self._hint, self._maps, self._numbers.pane, sizing_mode="stretch_width"
        )
        self.dialog = FormulaDialog(
            on_action=self._on_action,
            body=pn.Column(  # the quiz (views/learning.py), under either view, asks about the layer they explain
                self._forward,
                *(view for view in (backward, quiz) if view is not None),
                sizing_mode="stretch_width",
                margin=0,
            ),
            height=0,
            margin=0,
            sizing_mode="stretch_width",
        )
        self.dialog.param.watch(self._follow_speed, "speed")
        state.param.watch(self._refresh, ["level", "layer", "neuron", "input_channel", "trace", "color_mode"])
        state.param.watch(self._show_numbers, ["row", "col"])
        if backward is not None:
            backward.param.watch(self._refresh, "active")
            backward.param.watch(self._stop_sweep_when_pinned, "pinned")
        self._refresh()

    def __panel__(self) -> JSComponent:
        return self.dialog

    @property
    def showing(self) -> bool:
        state = self.state
        return state.level == "formula" and bool(state.layer) and state.network.info(state.layer).kind in FORMULA_KINDS

    @property
    def _backward_active(self) -> bool:
        return self.backward is not None and self.backward.active

    @property
    def _slides(self) -> bool:
        """Whether the open view has a window that moves (every kind but softmax)."""
        return self.showing and self.explained is not None and self.explained.kind in MAP_KINDS

    @property
    def _sliding_layout(self) -> MapsLayout | None:
        """The maps whose window Play sweeps: the backward view's while it is on screen, else this view's."""
        if self._backward_active:
            return self.backward.explained.layout if self.backward.slides else None
        return self.explained.layout if self._slides else None

    # -- drawing ------------------------------------------------------------------------------------------
    def _draw_maps(self, opened: int) -> hv.RGB:
        explained = self.explained or BLANK
        return maps_element(
            explained.layout, explained.input_map, explained.input_shade, explained.output_map, explained.output_shade
        ).opts(**PLOT_OPTIONS)  # the overlay takes its plot options from its layers

    def _draw_marks(self, opened: int, row: int, col: int) -> hv.Rectangles:
        layout = self.explained.layout if self.explained else MapsLayout((1, 1), (1, 1))
        return window_marks(layout, *layout.clamp(row, col))

    def _show_numbers(self, *_events) -> None:
        if self._slides:
            self._show_numbers_at(self.state.row, self.state.col)

    def _show_numbers_at(self, row: int, col: int) -> None:
        self._numbers.show(self.explained, row, col)

    def _refresh(self, *_events) -> None:
        state = self.state
        if self._backward_active:  # backward mode explains the backward step instead (views/formula_backward.py)
            self._stop_sweep()
            self._forward.visible, self._key, self.explained = False, None, None
            self.dialog.param.update(open=True, **self.backward.frame)
            return
        self._forward.visible = True
        if not self.showing:
            self._stop_sweep()
            self.pinned = False
            self.dialog.open = False
            return
        kind = state.network.info(state.layer).kind
        key = (state.trace, state.layer, state.neuron, state.input_channel if kind == "conv2d" else 0, state.color_mode)
        with pn.io.hold():
            if key != self._key:
                self._stop_sweep()
                self.pinned = False
                ranges = color_ranges(state.trace, state.color_mode)
                self.explained = explained = explain(
                    state.trace, state.layer, state.neuron, state.input_channel, ranges
                )
                self._key = key
                self._formula.object = tex_to_mathml(state.trace.network.layer(state.layer).formula, display=True)
                slides = kind in MAP_KINDS
                self._hint.object = f'<p class="fv-hint">{HINTS["map" if slides else "softmax"]}</p>'
                self._maps.visible = slides
                if slides:
                    self._captions.object = captions_html(explained)
                    row, col = explained.layout.clamp(state.row, state.col)
                    state.param.update(row=row, col=col)  # a selection may come from a bigger layer or the URL
                self.opened += 1
                self._show_numbers_at(state.row, state.col)
                self.dialog.param.update(
                    heading=explained.title,
                    kind=kind,
                    playable=slides,
                    section=section_for(kind, backward=False),
                )
            self.dialog.open = True

    # -- what the learner does ----------------------------------------------------------------------------
    def move_to(self, row: int, col: int) -> None:
        """Explain output (row, col) of the open map (clamped into it)."""
        if self._slides:
            row, col = self.explained.layout.clamp(row, col)
            if (row, col) != (self.state.row, self.state.col):
                move_window(self.state, row, col, self._show_numbers_at)

    @redraws_once
    def _on_pointer(self, x: float | None = None, y: float | None = None) -> None:
        if self._slides and not self.pinned and self._sweep is None:
            position = self.explained.layout.position_at(x, y)
            if position is not None:
                self.move_to(*position)

    @redraws_once
    def _on_tap(self, x: float | None = None, y: float | None = None) -> None:
        """A tap pins the window where it lands; a tap on the pinned cell lets it follow the pointer again."""
        if not self._slides or x is None or y is None:
            return
        position = self.explained.layout.position_at(x, y)
        self._stop_sweep()
        self.pinned = not (self.pinned and position == (self.state.row, self.state.col))
        self.move_to(*position)

    @redraws_once
    def _on_action(self, message: dict) -> None:
        action = message.get("action")
        if self._backward_active and action in ("move", "pick"):
            if action == "move":
                self._stop_sweep()
            self.backward.on_action(message)
        elif action == "close" and self.state.level == "formula":
            self.state.back()
        elif action == "play":
            self.toggle_sweep()
        elif action == "move" and self._slides:
            self._stop_sweep()
            self.move_to(self.state.row + int(message.get("rows", 0)), self.state.col + int(message.get("cols", 0)))
        elif action == "pick" and self.showing:
            index = int(message.get("index", -1))
            if 0 <= index < self.state.network.info(self.state.layer).shape[-1]:
                self.state.select(self.state.layer, index, level="formula")

    # -- the sweep ----------------------------------------------------------------------------------------
    def toggle_sweep(self) -> None:
        layout = self._sliding_layout
        if self._sweep is not None:
            self._stop_sweep()
        elif layout is not None:
            rows, cols = layout.output_size
            if (self.state.row, self.state.col) == (rows - 1, cols - 1):
                self.state.param.update(row=0, col=0)
            self.pinned = False
            if self.backward is not None:
                self.backward.param.update(pinned=False, sweeping=True)
            self._sweep = pn.state.add_periodic_callback(self.step, period=self._period)
            self.dialog.playing = True

    @property
    def _period(self) -> int:
        return round(1000 / self.dialog.speed)

    @redraws_once
    def step(self) -> None:
        """Move the window one place along the rows (the sweep's tick); stop at the end."""
        layout = self._sliding_layout
        if layout is None:
            self._stop_sweep()
            return
        rows, cols = layout.output_size
        row, col = self.state.row, self.state.col + 1
        if col == cols:
            row, col = row + 1, 0
        if row == rows:
            self._stop_sweep()
            return
        self.state.param.update(row=row, col=col)
        if (row, col) == (rows - 1, cols - 1):
            self._stop_sweep()

    def _stop_sweep(self) -> None:
        if self._sweep is not None:
            self._sweep.stop()
            self._sweep = None
        self.dialog.playing = False
        if self.backward is not None:
            self.backward.sweeping = False

    def _stop_sweep_when_pinned(self, event: param.parameterized.Event) -> None:
        """A tap on the backward view's maps pins the window there, as on the forward maps: the sweep ends."""
        if event.new:
            self._stop_sweep()

    def _follow_speed(self, *_events) -> None:
        if self._sweep is not None:
            self._sweep.period = self._period
