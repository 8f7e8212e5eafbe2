"""The flatten and softmax elastic views, built in Python on HoloViews DynamicMaps fed by Bokeh streams.

`FlattenElastic` explains one class score of the dense layer: the maps the Flatten layer unrolls, the vector,
the weight edges, ⊕ and the score. Pointing at a pixel or at the strip (`streams.PointerXY`; HoloViews drops
moves that arrive while one is processed) sets `inspected`; a DynamicMap of outlines and an HTML pane of the
engine's numbers follow it. A tap pins the element (or, on the score, opens softmax mode); the element slider and
the softmax button are the keyboard's way to the same.

`SoftmaxElastic` turns the logits into probabilities row by row; a tap on a row (`streams.Tap`) or a click or
Enter on the class's button opens the softmax formula over it.

Both follow the session's state by themselves and do nothing while another view is open; in backward mode
(the learning state's) they draw the backward pass in the same places. The container that shows them
(views/elastic.py) owns the back button, Esc and the transitions.
"""

from __future__ import annotations

from pathlib import Path

import holoviews as hv
import panel as pn
import param
from panel.viewable import Viewer

from cnnviz.colors import color_ranges
from cnnviz.engine.gradients import Backward
from cnnviz.learning_state import LearningState, backward_on_screen
from cnnviz.plots import picture_only
from cnnviz.plots.elastic_dense import (
    HIGHLIGHT,
    SOFTMAX_WIDTH,
    FlattenExplained,
    FlattenLayout,
    SoftmaxExplained,
    class_names,
    explain_flatten,
    explain_flatten_backward,
    explain_softmax,
    explain_softmax_backward,
    flatten_captions,
    flatten_edges,
    flatten_labels,
    flatten_legends,
    flatten_marks,
    flatten_numbers,
    flatten_picture,
    row_pitch,
    softmax_captions,
    softmax_elements,
    softmax_legends,
    softmax_marks,
    softmax_numbers,
)
from cnnviz.state import ExplainerState
from cnnviz.views.component import SHRINKS, redraws_once

CSS = (Path(__file__).parent / "elastic_dense.css").read_text()
MAX_WIDTH = 900
PLOT_WIDTH = 860  # the flatten picture's size: fixed, so texts drawn in it fit their boxes (narrow screens scroll)
MAX_PLOT_HEIGHT = 520
BUTTON_CHARACTER = 7.5  # px per character of a class name in the buttons' font, to size them to the longest
PLOT_OPTIONS = {
    "xaxis": None, "yaxis": None, "toolbar": None, "default_tools": [], "show_frame": False, "border": 0,
    "hooks": [picture_only],
}  # fmt: skip


def _html() -> pn.pane.HTML:
    return pn.pane.HTML("", sizing_mode="stretch_width", stylesheets=[CSS], margin=0)


def _view_column(*children) -> pn.Column:
    """A view's panes, hidden until its selection opens, never wider than its picture needs."""
    return pn.Column(
        *children, max_width=MAX_WIDTH, stylesheets=[SHRINKS], sizing_mode="stretch_width", margin=(4, 12),
        visible=False,
    )  # fmt: skip


def dense_layer(state: ExplainerState) -> str:
    """The dense layer whose classes the flatten view explains: the last one."""
    return next(info.name for info in reversed(state.network.infos) if info.kind == "dense")


class FlattenElastic(Viewer):
    """The flatten view of class `state.neuron` while the dense layer is selected at level "elastic"."""

    opened = param.Integer(default=0, doc="Counts the explanations put on screen; the picture follows it.")
    inspected = param.Integer(default=None, allow_None=True, doc="The flattened element pointed at, if any.")
    pinned = param.Boolean(default=False, doc="A tap or the slider pinned `inspected`: pointing leaves it.")

    def __init__(self, state: ExplainerState, learning: LearningState | None = None, **params) -> None:
        super().__init__(**params)
        self.state, self.learning = state, learning
        self.layer = dense_layer(state)
        self.layout = FlattenLayout.of(state.network, self.layer)
        self.explained: FlattenExplained | None = None
        self._key: tuple | None = None
        self._syncing = False  # the slider follows the pointer without pinning
        self._captions = _html()
        self._numbers = _html()
        self._legends = _html()
        picture = hv.DynamicMap(self._draw, streams=[hv.streams.Params(self, ["opened"])])
        self.marks = hv.DynamicMap(  # not on "opened": one redraw per open
            self._draw_marks, streams=[hv.streams.Params(self, ["inspected"])]
        ).opts(color=HIGHLIGHT, line_width=2.5, apply_ranges=False)
        self.pointer = hv.streams.PointerXY(source=self.marks)
        self.tap = hv.streams.Tap(source=self.marks)
        self.pointer.add_subscriber(self._on_pointer)
        self.tap.add_subscriber(self._on_tap)
        width, height = self.layout.width, self.layout.height
        scale = min(PLOT_WIDTH / width, MAX_PLOT_HEIGHT / height)  # pixels per map tile: square cells, fixed size
        plot = (picture * self.marks).opts(
            xlim=(0, width), ylim=(-height, 0), width=round(width * scale), height=round(height * scale),
            **PLOT_OPTIONS,
        )  # fmt: skip
        self._captions.param.update(sizing_mode=None, width=round(width * scale))  # over the picture, scrolled with it
        self.element = pn.widgets.IntSlider(
            label="Flatten element (arrow keys)", start=0, end=self.layout.count - 1, sizing_mode="stretch_width"
        )
        self.element.param.watch(self._on_slider, "value")
        self.softmax_button = pn.widgets.Button(label="Softmax →", color="primary", width=120, align="end")
        self.softmax_button.on_click(lambda _event: self.open_softmax())
        self.param.watch(self._show_numbers, "inspected")
        self._panel = _view_column(
            pn.Column(  # a narrow screen scrolls the picture sideways, the rest of the view stays in the window
                self._captions,
                pn.pane.HoloViews(plot, margin=0, linked_axes=False),
                scroll="x-auto",
                sizing_mode="stretch_width",
                stylesheets=[SHRINKS],
                margin=0,
            ),
            pn.Row(self.element, self.softmax_button, sizing_mode="stretch_width", margin=0),
            self._numbers,
            self._legends,
        )
        state.param.watch(self._follow, ["trace", "layer", "neuron", "level", "color_mode"])
        if learning is not None:
            learning.param.watch(self._follow, ["backward_mode", "backward"])
        self._follow()

    def __panel__(self) -> pn.Column:
        return self._panel

    @property
    def showing(self) -> bool:
        return self.state.level == "elastic" and self.state.layer == self.layer

    @property
    def backward(self) -> Backward | None:
        return backward_on_screen(self.learning)

    @property
    def heading(self) -> str:
        """The container's title for this view (read from the state: it is asked before this view follows)."""
        name = class_names(self.state.network)[self.state.neuron]  # numbered from 1 where the network names none
        if self.backward is not None:
            return f"Backward · class “{name}”: its gradient p − y, passed back"
        return f"Class score of “{name}”: flatten, weights, bias"

    def _draw(self, opened: int) -> hv.Overlay:
        if self.explained is None:
            return hv.RGB([]) * hv.Segments([]) * hv.Labels([])
        return flatten_picture(self.explained) * flatten_edges(self.explained) * flatten_labels(self.explained)

    def _draw_marks(self, inspected: int | None, **_picture_streams) -> hv.Segments:
        return flatten_marks(self.explained, inspected)

    def _follow(self, *_events) -> None:
        state = self.state
        if not self.showing:
            self._panel.visible = False
            return
        backward = self.backward
        key = (state.trace, state.neuron, state.color_mode, backward)
        with pn.io.hold():
            if key != self._key:
                self._key = key
                if backward is None:
                    ranges = color_ranges(state.trace, state.color_mode)
                    explained = explain_flatten(state.trace, self.layer, state.neuron, ranges)
                else:
                    explained = explain_flatten_backward(state.trace, backward, self.layer, state.neuron)
                self.explained = explained
                self.param.update(inspected=None, pinned=False)
                self._captions.object = flatten_captions(explained)
                self._legends.object = flatten_legends(explained)
                self._numbers.object = flatten_numbers(explained, None)
                self.opened += 1
            self._panel.visible = True

    def _show_numbers(self, *_events) -> None:
        if self.explained is not None:
            self._numbers.object = flatten_numbers(self.explained, self.inspected)

    # -- what the learner does ----------------------------------------------------------------------------
    def inspect(self, index: int | None, pin: bool = False) -> None:
        """Follow flattened element `index` (None: none) in both places; `pin` keeps it while the pointer moves."""
        self.pinned = pin
        if index != self.inspected:
            self.inspected = index
        if index is not None and self.element.value != index:
            self._syncing = True
            try:
                self.element.value = index
            finally:
                self._syncing = False

    def _on_slider(self, event: param.parameterized.Event) -> None:
        if self.showing and not self._syncing:
            self.inspect(event.new, pin=True)

    @redraws_once
    def _on_pointer(self, x: float | None = None, y: float | None = None) -> None:
        if not self.showing or self.pinned:
            return
        target = self.layout.element_at(x, y)
        if target != "score":
            self.inspect(target)

    @redraws_once
    def _on_tap(self, x: float | None = None, y: float | None = None) -> None:
        """A tap on the score opens softmax mode; on a value it pins it (a second tap there lets it go)."""
        if not self.showing:
            return
        target = self.layout.element_at(x, y)
        if target == "score":
            self.open_softmax()
        elif target is not None:
            self.inspect(target, pin=not (self.pinned and target == self.inspected))

    def open_softmax(self) -> None:
        if self.showing:
            state = self.state
            state.select(state.network.infos[-1].name, state.neuron, level="elastic")


class SoftmaxElastic(Viewer):
    """Softmax mode: from every class score to its probability, while the softmax layer is selected at level
    "elastic", and beneath its formula (level "formula")."""

    opened = param.Integer(default=0, doc="Counts the explanations put on screen; the circles follow it.")
    selected = param.Integer(default=0, doc="The class on screen (state.neuron while this view shows).")
    hovered = param.Integer(default=None, allow_None=True, doc="The class row pointed at, if any.")

    def __init__(self, state: ExplainerState, learning: LearningState | None = None, **params) -> None:
        super().__init__(**params)
        self.state, self.learning = state, learning
        network = state.network
        self.layer = network.infos[-1].name
        self.has_softmax = network.infos[-1].kind == "softmax"  # a network ending in logits has no softmax mode
        names = class_names(network)
        self.pitch = row_pitch(len(names))
        self.explained: SoftmaxExplained | None = None
        self._key: tuple | None = None
        self._captions = _html()
        self._numbers = _html()
        self._legends = _html()
        circles = hv.DynamicMap(self._draw, streams=[hv.streams.Params(self, ["opened"])])
        self.marks = hv.DynamicMap(self._draw_marks, streams=[hv.streams.Params(self, ["selected", "hovered"])]).opts(
            fill_alpha=0, line_color="#b35806", line_width=2, apply_ranges=False
        )
        self.pointer = hv.streams.PointerXY(source=self.marks)
        self.tap = hv.streams.Tap(source=self.marks)
        self.pointer.add_subscriber(self._on_pointer)
        self.tap.add_subscriber(self._on_tap)
        height = self.pitch * len(names)
        plot = (circles * self.marks).opts(
            xlim=(0, SOFTMAX_WIDTH), ylim=(-len(names), 0), responsive=True, height=height, min_width=240,
            **PLOT_OPTIONS,
        )  # fmt: skip
        width = int(min(220, 24 + BUTTON_CHARACTER * max(len(name) for name in names)))
        self.buttons = []
        for index, name in enumerate(names):
            button = pn.widgets.Button(
                label=name, color="light", width=width, height=self.pitch - 4, margin=(2, 0), stylesheets=[CSS]
            )
            button.on_click(lambda _event, index=index: self.open_formula(index))
            self.buttons.append(button)
        self.param.watch(self._show_numbers, ["selected", "hovered"])
        self._panel = _view_column(
            pn.Row(pn.Spacer(width=width, margin=0), self._captions, sizing_mode="stretch_width", margin=0),
            pn.Row(
                pn.Column(*self.buttons, width=width, margin=0),
                pn.pane.HoloViews(plot, sizing_mode="stretch_width", margin=0, linked_axes=False),
                sizing_mode="stretch_width",
                margin=0,
            ),
            self._numbers,
            self._legends,
        )
        state.param.watch(self._follow, ["trace", "layer", "neuron", "level"])
        if learning is not None:
            learning.param.watch(self._follow, ["backward_mode", "backward"])
        self._follow()

    def __panel__(self) -> pn.Column:
        return self._panel

    @property
    def showing(self) -> bool:
        state = self.state
        return state.level in ("elastic", "formula") and state.layer == self.layer and self.has_softmax

    @property
    def backward(self) -> Backward | None:
        return backward_on_screen(self.learning)

    @property
    def heading(self) -> str:
        classes = self.state.network.infos[-1].shape[0]
        if self.backward is not None:
            return f"Backward · the loss's gradient p − y at each of the {classes} class scores"
        return f"Softmax: from {classes} class scores to probabilities"

    def _draw(self, opened: int) -> hv.Overlay:
        if self.explained is None:
            return hv.Points([]) * hv.Segments([]) * hv.Labels([]) * hv.Labels([])
        return softmax_elements(self.explained)

    def _draw_marks(self, selected: int, hovered: int | None, **_picture_streams) -> hv.Rectangles:
        return softmax_marks(self.explained, selected, hovered)

    def _follow(self, *_events) -> None:
        state = self.state
        if not self.showing:
            self._panel.visible = False
            return
        with pn.io.hold():
            updates = {"selected": state.neuron} if self.selected != state.neuron else {}
            backward = self.backward
            if (state.trace, backward) != self._key:
                self._key = (state.trace, backward)
                if backward is None:
                    explained = explain_softmax(state.trace)
                else:
                    explained = explain_softmax_backward(state.trace, backward)
                self.explained = explained
                self._captions.object = softmax_captions(explained)
                self._legends.object = softmax_legends(explained)
                updates["opened"] = self.opened + 1
            self.param.update(updates)  # one event: the plot redraws once
            self._show_numbers()
            self._panel.visible = True

    def _show_numbers(self, *_events) -> None:
        if self.explained is not None:
            index = self.selected if self.hovered is None else self.hovered
            self._numbers.object = softmax_numbers(self.explained, index)

    # -- what the learner does ----------------------------------------------------------------------------
    @redraws_once
    def _on_pointer(self, x: float | None = None, y: float | None = None) -> None:
        if self.showing and self.explained is not None:
            row = self.explained.row_at(y)
            if row != self.hovered:
                self.hovered = row

    @redraws_once
    def _on_tap(self, x: float | None = None, y: float | None = None) -> None:
        if self.showing and self.explained is not None:
            row = self.explained.row_at(y)
            if row is not None:
                self.open_formula(row)

    def open_formula(self, index: int) -> None:
        """Open the softmax formula of class `index` over this view (as the formula view's own class picker does)."""
        if self.showing:
            self.state.select(self.layer, index, level="formula")
