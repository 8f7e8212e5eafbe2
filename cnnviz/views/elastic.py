"""Elastic explanation views: how one neuron is computed from the previous layer, with the network as context.

`ElasticView` is the container: it shows the Overview at rest and, when the session's selection opens an elastic
view (OPEN_AT), the pane registered for the layer's kind (PANES), built on first use. Opening and leaving fade
and scale in CSS (declared here); `ElasticBar` adds the Back button, the heading that takes the focus, and Esc.

`ConvElastic` is built on HoloViews in Python, as the formula view is: one DynamicMap draws the opened neuron's
picture (it follows `opened`), another the marker of the explained position (it follows `state.row` /
`state.col` through a `streams.Params`, so the formula view and anything else linked to the window move it too).
Pointing at the maps (`streams.PointerXY`) moves the position; tapping an intermediate result (`streams.Tap`)
opens its formula view. The sweep steps the same position from a per-session periodic callback.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

import holoviews as hv
import holoviews.plotting.bokeh
import panel as pn
import param
from panel.custom import JSComponent
from panel.viewable import Viewer

from cnnviz.article import section_for
from cnnviz.colors import color_ranges
from cnnviz.engine.gradients import Backward
from cnnviz.engine.network import INPUT_NAME
from cnnviz.learning_state import LearningState, backward_on_screen
from cnnviz.plots import picture_only
from cnnviz.plots.elastic import (
    VIEW_HEIGHT,
    VIEW_WIDTH,
    ConvExplained,
    channel_names_of,
    conv_backward_summary,
    conv_labels,
    conv_mark_boxes,
    conv_picture,
    conv_summary,
    explain_conv,
    explain_conv_backward,
    intermediate_targets,
    readout_html,
)
from cnnviz.state import ExplainerState
from cnnviz.views.component import SHRINKS, redraws_once
from cnnviz.views.elastic_dense import FlattenElastic, SoftmaxElastic
from cnnviz.views.learning import Quiz
from cnnviz.views.overview import Overview

HERE = Path(__file__).parent
HINTS = {
    False: "Point at a map to see where a value comes from; click an intermediate result (or use the buttons "
    "below) to open its formula.",
    True: "The gradient flows right to left. Point at the arriving gradient to see the window it flows back into; "
    "click a map passed back (or use the buttons below) to open its formula.",
}
"""The hint over the conv view, forward (False) and backward (True)."""
CSS = (HERE / "elastic.css").read_text()
# Which selections the view explains: the elastic level of these layer kinds, and the formula level of those
# whose formula explains one step of an elastic view (the view stays open beneath the formula).
OPEN_AT = {"elastic": ("conv2d", "dense", "softmax"), "formula": ("conv2d", "softmax")}
MIN_PICTURE_WIDTH = 720
"""Narrower, the picture's titles and legends would run into each other: a phone scrolls it sideways instead."""
SWEEP_SECONDS = {"slow": 30, "normal": 15, "fast": 6}
"""How long one sweep over the whole output map lasts, whatever its size."""
TICKS_PER_SECOND = 3  # each tick moves the window: a redraw of the picture's overlay on the server


STYLES = {
    "labels": (lambda: hv.Labels([], ["x", "y"], "text"),
               {"text_font_size": "9pt", "text_color": "#2f3e4e", "text_baseline": "middle"}),
    "targets": (lambda: hv.Rectangles([], vdims=["hint"]),
                {"tools": ["hover"], "hover_tooltips": [("", "@hint")], "fill_alpha": 0, "line_alpha": 0,
                 "hover_fill_alpha": 0.08, "hover_fill_color": "#f59e0b", "hover_line_color": "#f59e0b",
                 "hover_line_alpha": 1, "hover_line_width": 3}),
    "marks": (lambda: hv.Rectangles([]),
              {"fill_alpha": 0, "line_color": "#111111", "line_width": 2, "apply_ranges": False,
               # and the whole plot's: an overlay takes its plot options from its layers
               "xaxis": None, "yaxis": None, "toolbar": None, "default_tools": [], "xlim": (0, VIEW_WIDTH),
               "ylim": (-VIEW_HEIGHT, 0), "responsive": "width", "aspect": VIEW_WIDTH / VIEW_HEIGHT,
               "min_width": MIN_PICTURE_WIDTH, "show_frame": False, "bgcolor": "#ffffff",
               # no border: the picture fills its canvas edge to edge (plot coordinates map straight to pixels).
               # An option, not a hook: HoloViews sets `border` on every redraw, and a hook undoing it made every
               # pointer move send four layout changes (a relayout of the figure in the browser)
               "border": 0, "hooks": [picture_only]}),
}  # fmt: skip
"""The texts, the click targets and the marker over the picture: every drawing clones a styled empty element."""


@cache
def _styled(kind: str) -> hv.Element:
    """Clones share the options of what they clone: a redraw then runs no `.opts`, which costs as much as the rest
    of the element."""
    blank, style = STYLES[kind]
    return blank().opts(**style)


class ElasticBar(JSComponent):
    """The open view's heading and Back button; Esc steps back. Knows nothing of the network."""

    heading = param.String(default="", doc="What the open view explains.")
    active = param.Boolean(default=False, doc="Whether the elastic level is the top one (Esc steps back then).")
    section = param.String(default="", doc="Article anchor the info button scrolls to.")

    _esm = "elastic.js"
    _stylesheets: ClassVar[list[str]] = [CSS]

    def __init__(self, on_back=None, **params) -> None:
        super().__init__(**params)
        self._on_back = on_back

    def _handle_msg(self, message: Any) -> None:
        if self._on_back is not None and isinstance(message, dict) and message.get("action") == "back":
            self._on_back()


class ConvElastic(Viewer):
    """The conv elastic view of the selected neuron, following the session's state."""

    opened = param.Integer(default=0, doc="Counts the pictures put on screen; the picture's DynamicMap follows it.")
    laid_out = param.Integer(default=0, doc="Counts the layouts put on screen; texts, targets and marker follow it.")
    playing = param.Boolean(default=False, doc="Whether the sliding-kernel sweep is running.")
    speed = param.Selector(
        default="normal", objects=list(SWEEP_SECONDS), doc="How fast the sweep goes (read at every tick)."
    )

    def __init__(self, state: ExplainerState, learning: LearningState | None = None, **params) -> None:
        super().__init__(**params)
        self.state = state
        self.learning = learning  # in its backward mode, the view shows the backward pass
        self.explained: ConvExplained | None = None
        self.names: list[str] = []
        self._key: tuple | None = None  # (trace, layer, neuron, colour mode, backward pass) drawn
        self._selection: tuple | None = None  # (layer, neuron) on screen, to restart the sweep for a new one
        self._buttons_for = ""  # the layer whose input channels the formula buttons open
        self._channel_buttons: list[pn.widgets.Button] = []  # kept across layers, relabelled: new ones cost a third
        self._sweep: pn.io.callbacks.PeriodicCallback | None = None
        # An image switch redraws the picture and its texts only: the click targets and the marker stay where the
        # layout puts them. A new neuron redraws all three in ONE refresh of the plot (`_refresh` triggers both
        # streams together; each watching its own parameter would refresh the plot twice).
        self._new_picture = hv.streams.Params(self, ["opened"], watch=False)
        self._new_layout = hv.streams.Params(self, ["laid_out"], watch=False)
        picture = hv.DynamicMap(self._draw_picture, streams=[self._new_picture])
        targets = hv.DynamicMap(self._draw_targets, streams=[self._new_layout])
        window = hv.streams.Params(state, ["shown_window"])
        self.marks = hv.DynamicMap(self._draw_marks, streams=[self._new_layout, window])
        self.pointer = hv.streams.PointerXY(source=self.marks)
        self.tap = hv.streams.Tap(source=self.marks)
        self.pointer.add_subscriber(self._on_pointer)
        self.tap.add_subscriber(self._on_tap)
        # no `.opts` on the overlay: HoloViews would re-apply it to every frame (a quarter of a pointer move's work);
        # the plot's options ride on the marker, whose every drawing clones them
        self._plot = pn.pane.HoloViews(picture * targets * self.marks, margin=0, linked_axes=False)
        self._hint = pn.pane.HTML(
            f'<p class="el-hint">{HINTS[False]}</p>', stylesheets=[CSS], sizing_mode="stretch_width", margin=(0, 4)
        )
        self._readout = pn.pane.HTML("", stylesheets=[CSS], sizing_mode="stretch_width", margin=(0, 4))
        self._summary = pn.pane.HTML("", stylesheets=[CSS], sizing_mode="stretch_width", margin=(4, 4))
        self._play = pn.widgets.Button(label="Play", color="primary", width=90, margin=(0, 4))
        self._replay = pn.widgets.Button(label="Replay", width=90, margin=(0, 4))
        self._speed = pn.widgets.RadioButtonGroup.from_param(self.param.speed, name="Speed", margin=(0, 4))
        self._play.on_click(lambda _event: self.toggle_sweep())
        self._replay.on_click(lambda _event: self.replay())
        self._explain = pn.FlexBox(sizing_mode="stretch_width", margin=(2, 0), css_classes=["el-explain"])
        self._layout = pn.Column(
            self._hint,
            pn.FlexBox(self._play, self._replay, pn.pane.HTML("<span class='el-speed'>Sweep speed</span>",
                       stylesheets=[CSS], margin=(6, 4)), self._speed, margin=(0, 0, 4, 0), gap="0",
                       sizing_mode="stretch_width"),  # wraps on a phone
            pn.Column(self._plot, scroll=False, sizing_mode="stretch_width", css_classes=["el-scroll"],
                      stylesheets=[CSS], margin=0),
            self._readout,
            self._explain,
            self._summary,
            sizing_mode="stretch_width",
            margin=0,
            stylesheets=[SHRINKS],  # not as wide as the picture, which scrolls sideways on a phone
        )  # fmt: skip
        self.param.watch(self._show_playing, "playing")
        state.param.watch(self._refresh, ["level", "layer", "neuron", "trace", "color_mode"])
        state.param.watch(self._show_readout, ["shown_window"])
        if learning is not None:
            learning.param.watch(self._refresh, ["backward_mode", "backward"])
        self._refresh()

    def __panel__(self) -> pn.viewable.Viewable:
        return self._layout

    @property
    def showing(self) -> bool:
        state = self.state
        return (
            state.level in ("elastic", "formula")
            and bool(state.layer)
            and state.network.info(state.layer).kind == "conv2d"
        )

    @property
    def backward(self) -> Backward | None:
        return backward_on_screen(self.learning)

    @property
    def heading(self) -> str:
        state = self.state
        source = state.network.infos[state.network.layer_names.index(state.layer)].name  # the layer before
        if self.backward is not None:
            return f"Backward · {state.layer}, neuron {state.neuron + 1}, passing the gradient back to {source}"
        return f"Convolution · {state.layer}, neuron {state.neuron + 1}, computed from {source}"

    # -- drawing ------------------------------------------------------------------------------------------
    def _draw_picture(self, opened: int) -> hv.Overlay:
        """The maps, and the texts naming them with their colour ranges (which follow the image)."""
        explained = self.explained
        if explained is None:  # a DynamicMap must always draw something of the same kinds
            empty = hv.RGB((range(2), range(2), *[[[255, 255]] * 2] * 3), bounds=(0, -VIEW_HEIGHT, VIEW_WIDTH, 0))
            return empty * _styled("labels")
        state = self.state
        ranges = color_ranges(state.trace, state.color_mode)
        return conv_picture(explained, state.trace, ranges) * _styled("labels").clone(conv_labels(explained).data)

    def _draw_targets(self, laid_out: int) -> hv.Rectangles:
        """The intermediate results' click targets, with their hints."""
        if self.explained is None:
            return _styled("targets")
        targets = intermediate_targets(self.explained.layout, [f"{n}: click to open its formula" for n in self.names])
        return _styled("targets").clone(targets.data)

    def _draw_marks(self, laid_out: int, shown_window: tuple[int, int]) -> hv.Rectangles:
        if self.explained is None:
            return _styled("marks")
        return _styled("marks").clone(conv_mark_boxes(self.explained.layout, *shown_window))

    def _show_readout(self, *_events) -> None:
        if self.explained is not None and self.showing:
            self._readout.object = readout_html(self.explained, *self.state.shown_window, self.names)

    def _refresh(self, *_events) -> None:
        state = self.state
        if not self.showing:
            self.stop_sweep()
            self._selection = None
            return
        backward = self.backward
        key = (state.trace, state.layer, state.neuron, state.color_mode, backward)
        if key == self._key:
            return
        ranges = color_ranges(state.trace, state.color_mode)
        new_selection = (state.layer, state.neuron) != self._selection
        previous_layout = None if self.explained is None else self.explained.layout
        with pn.io.hold():
            if backward is None:
                self.explained = explain_conv(state.trace, state.layer, state.neuron, ranges)
                summary = conv_summary(state.trace, state.layer, state.neuron)
            else:
                self.explained = explain_conv_backward(state.trace, backward, state.layer, state.neuron, ranges)
                summary = conv_backward_summary(self.explained, state.network)
            self.names = channel_names_of(self.explained.layout)
            self._key = key
            self._summary.object = f'<p class="el-summary">{summary}</p>'
            self._hint.object = f'<p class="el-hint">{HINTS[backward is not None]}</p>'
            if new_selection:
                self._selection = (state.layer, state.neuron)
                if self._buttons_for != state.layer:  # a layer's neurons share their input channels, so the buttons
                    self._build_explain_buttons()
                self.stop_sweep()  # an image or colour change keeps a running sweep going; a new neuron does not
                row, col = self.explained.layout.clamp(state.row, state.col)  # the row/col may be another layer's
                if (row, col) != (state.row, state.col):
                    state.param.update(row=row, col=col)
            self.opened += 1
            redrawn = [self._new_picture]
            if self.explained.layout != previous_layout:  # another layer (or the first): new click targets
                self.laid_out += 1
                redrawn.append(self._new_layout)
            hv.streams.Stream.trigger(redrawn)
            self._show_readout()

    def _build_explain_buttons(self) -> None:
        """One button per input channel: the keyboard's way to what a click on an intermediate result opens.

        Buttons are made only for channels no earlier layer had (of a click on a neuron of another layer, making
        them anew was a third of the work); the others are relabelled, and those beyond this layer's hidden.
        """
        short = self.explained.layout.source == INPUT_NAME  # "red channel"; else "channel 3" (the layer is said)
        made = len(self._channel_buttons)
        for channel in range(made, len(self.names)):
            button = pn.widgets.Button(color="light", margin=(2, 3), css_classes=["el-explain-button"])
            button.on_click(lambda _event, channel=channel: self.open_formula(channel))
            self._channel_buttons.append(button)
        for channel, button in enumerate(self._channel_buttons):
            if channel < len(self.names):
                name = self.names[channel]
                label = name if short else f"channel {channel + 1}"
                button.param.update(label=label, description=f"Open the formula of {name}", visible=True)
            else:
                button.visible = False
        if len(self._channel_buttons) > made:
            lead = pn.pane.HTML('<span class="el-speed">Open the formula of:</span>', stylesheets=[CSS], margin=(8, 4))
            self._explain.objects = [lead, *self._channel_buttons]
        self._buttons_for = self.explained.layout.layer

    # -- what the learner does ----------------------------------------------------------------------------
    def move_to(self, row: int, col: int) -> None:
        if self.explained is not None:
            row, col = self.explained.layout.clamp(row, col)
            if (row, col) != (self.state.row, self.state.col):
                self.state.param.update(row=row, col=col)

    def open_formula(self, channel: int, row: int | None = None, col: int | None = None) -> None:
        """The formula view of one input channel's part, at (row, col) (default: where the marker is)."""
        state = self.state
        if not self.showing:
            return
        self.stop_sweep()
        state.param.update(
            input_channel=channel, row=state.row if row is None else row, col=state.col if col is None else col
        )
        state.select(state.layer, state.neuron, level="formula")

    @redraws_once
    def _on_pointer(self, x: float | None = None, y: float | None = None) -> None:
        if self.explained is None or self.playing or self.state.level != "elastic":
            return
        part = self.explained.layout.part_at(x, y)
        if part is not None and part[2] >= 0:
            self.move_to(part[2], part[3])

    @redraws_once
    def _on_tap(self, x: float | None = None, y: float | None = None) -> None:
        """An intermediate result opens its formula; another map moves the marker there; empty space steps back."""
        if self.explained is None or x is None or y is None or self.state.level != "elastic":
            return
        part = self.explained.layout.part_at(x, y)
        if part is None:
            self.stop_sweep()
            self.state.back()
        elif part[0] == "intermediate":
            self.open_formula(part[1], part[2], part[3])
        elif part[2] >= 0:
            self.stop_sweep()
            self.move_to(part[2], part[3])

    # -- the sweep ----------------------------------------------------------------------------------------
    @property
    def positions_per_tick(self) -> int:
        rows, cols = self.explained.layout.output_size
        return max(1, math.ceil(rows * cols / (SWEEP_SECONDS[self.speed] * TICKS_PER_SECOND)))

    def start_sweep(self) -> None:
        if not self.playing and self.explained is not None and self.showing:
            self.playing = True
            self._schedule_tick()

    def _schedule_tick(self) -> None:
        """The next tick, a full period after this one ended: clicks and pointer moves get their turn between
        ticks even when a busy server takes long over each one."""
        self._sweep = pn.state.add_periodic_callback(self._tick, period=1000 // TICKS_PER_SECOND, count=1)

    @redraws_once
    def _tick(self) -> None:
        self._sweep = None
        if self.playing:
            self.step()
        if self.playing:
            self._schedule_tick()

    def stop_sweep(self) -> None:
        if self._sweep is not None:
            self._sweep.stop()
            self._sweep = None
        self.playing = False

    def toggle_sweep(self) -> None:
        if self.playing:
            self.stop_sweep()
            return
        rows, cols = self.explained.layout.output_size if self.explained else (1, 1)
        if (self.state.row, self.state.col) == (rows - 1, cols - 1):
            self.state.param.update(row=0, col=0)
        self.start_sweep()

    def replay(self) -> None:
        self.stop_sweep()
        self.state.param.update(row=0, col=0)
        self.start_sweep()

    def step(self) -> None:
        """Move the window `positions_per_tick` places along the rows (the sweep's tick); stop at the end."""
        if self.explained is None or not self.showing:
            self.stop_sweep()
            return
        rows, cols = self.explained.layout.output_size
        index = min(self.state.row * cols + self.state.col + self.positions_per_tick, rows * cols - 1)
        self.state.param.update(row=index // cols, col=index % cols)
        if index == rows * cols - 1:
            self.stop_sweep()

    def _show_playing(self, *_events) -> None:
        self._play.label = "Pause" if self.playing else "Play"


PANES: dict[str, Callable[[ExplainerState, LearningState | None], Viewer]] = {
    "conv2d": ConvElastic,
    "dense": FlattenElastic,
    "softmax": SoftmaxElastic,
}
"""The elastic pane of each layer kind, built with the session's state and learning state (whose backward mode
it draws) the first time one opens."""


class ElasticView(Viewer):
    """The Overview at rest; the elastic view of the session's selection when one is open."""

    def __init__(self, state: ExplainerState, overview: Overview, **params) -> None:
        super().__init__(**params)
        self.state = state
        self.learning = overview.learning
        self.layout = overview.layout
        self.panes: dict[str, Viewer] = {}
        self._shown_kind = ""  # the kind whose pane is in the slot
        self.bar = ElasticBar(on_back=self._on_back, sizing_mode="stretch_width", margin=0)
        self._slot = pn.Column(sizing_mode="stretch_width", margin=0, stylesheets=[SHRINKS])
        self.quiz: Quiz | None = None
        self._quiz = pn.Column(sizing_mode="stretch_width", margin=(4, 12))  # the quiz joins at the first view
        self._open = pn.Column(
            self.bar, self._slot, self._quiz, visible=False, sizing_mode="stretch_width", margin=0,
            css_classes=["el-view"], stylesheets=[CSS, SHRINKS],
        )  # fmt: skip
        self._rest = pn.Column(overview, sizing_mode="stretch_width", margin=0, css_classes=["el-rest"],
                               stylesheets=[CSS])  # fmt: skip
        self._container = pn.Column(
            self._open, self._rest, sizing_mode="stretch_width", margin=0, stylesheets=[SHRINKS]
        )
        state.param.watch(self._follow, ["layer", "neuron", "level"])
        if self.learning is not None:
            self.learning.param.watch(self._follow, ["backward_mode", "backward"])  # the heading says which pass
        self._follow()

    def __panel__(self) -> pn.viewable.Viewable:
        return self._container

    @property
    def is_open(self) -> bool:
        state = self.state
        return bool(state.layer) and state.network.info(state.layer).kind in OPEN_AT.get(state.level, ())

    @property
    def pane(self) -> Viewer | None:
        """The pane on screen (None at rest, or for a kind with no pane registered)."""
        kind = self.state.network.info(self.state.layer).kind if self.is_open else ""
        return self.panes.get(kind)

    def _follow(self, *_events) -> None:
        state = self.state
        kind = state.network.info(state.layer).kind if state.layer else ""
        shown = self.is_open and kind in PANES
        with pn.io.hold():
            if shown:
                if kind not in self.panes:
                    self.panes[kind] = PANES[kind](state, self.learning)
                pane = self.panes[kind]
                if self._shown_kind != kind:
                    self._slot.objects = [pane]
                    self._shown_kind = kind
                if self.learning is not None and self.quiz is None:
                    self.quiz = Quiz(self.learning, here=True)  # asks about the layer on screen
                    self._quiz.objects = [self.quiz]
                self.bar.param.update(
                    heading=getattr(pane, "heading", ""),
                    section=section_for(kind, backward_on_screen(self.learning) is not None),
                )
            if shown != self._open.visible:
                # from now on, coming back animates; while away the overview keeps its layout (see elastic.css)
                self._rest.css_classes = ["el-rest", "el-away"] if shown else ["el-rest", "el-returning"]
                self._open.visible = shown
            self.bar.active = shown and state.level == "elastic"

    def _on_back(self) -> None:
        if self.is_open and self.state.level == "elastic":
            self.state.back()
