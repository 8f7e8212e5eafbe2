"""The Overview: every neuron of every layer on HoloViews, linked to the session's state by Bokeh streams.

The plot is ONE element (see `plots/overview.py`) from one DynamicMap on `streams.Params` of the trace, the
colour mode and backward mode: the input, the heatmaps (or the gradients) and the class bars in one picture. An
image switch updates its data in place, in one refresh, never the plot. A tap anywhere (`streams.Tap`) is mapped
back to (layer, neuron) and selects it.

`OverviewKeys` is the browser-side layer over the plot: focusable neuron buttons (arrow keys, Enter selects),
layer labels that jump to the article, the hover readout and edges, and the selection's outline. That outline
follows `state.layer` / `neuron` / `level` / `shown_window` (`OverviewKeys.outline`, which changes only when the
drawing would), so a formula view's window shows in the overview too, once the pointer rests; drawn by the
browser, it costs about 1 ms of Python where a HoloViews element of it cost ~50 ms (the whole overlay is
updated). Everything the layer shows arrives as data from here (boxes, texts, which tiles feed which); it holds
no model knowledge.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any, ClassVar

import holoviews as hv
import panel as pn
import param
from panel.custom import Child, JSComponent
from panel.viewable import Viewer

from cnnviz.colors import GRADIENT_STOPS, color_ranges
from cnnviz.engine import Network
from cnnviz.engine.gradients import Backward
from cnnviz.learning_state import backward_on_screen
from cnnviz.plots.overview import (
    MIN_UNIT_PIXELS,
    OUTPUT_KIND,
    TOP_MARGIN,
    OverviewLayout,
    connections,
    describe,
    gradient_element,
    input_channel_name,
    legend_data,
    mesh_lines,
    neuron_stats,
    number_text,
    overview_element,
    overview_layout,
    selection_boxes,
)
from cnnviz.state import ExplainerState
from cnnviz.views.component import ParentComponent

HERE = Path(__file__).parent
LABEL_ROOM = 0.55  # on each side of a column, in plot units: neighbouring labels keep a gap (COLUMN_GAP 1.3)
IDLE = "Hover over a neuron, or Tab into the network and use the arrow keys, to see its values."
ARIA = "Network overview: use the arrow keys to move between neurons and Enter to open one"


class OverviewKeys(ParentComponent):
    """Keyboard, focus, hover and labels over the overview plot; reports picks and nothing else as messages."""

    plot = Child(doc="The HoloViews pane; this layer is drawn in its data coordinates.")
    geometry = param.Dict(doc="Plot size, every neuron's box, the columns' neurons, each neuron's inputs, the mesh.")
    labels = param.List(doc="Layer labels: text, shape (with details), article anchor, box.")
    readouts = param.List(doc="What the readout and a screen reader say about each neuron.")
    values = param.List(doc="Text shown in each neuron's button (the class probabilities).")
    marked = param.Dict(doc="CSS class -> neuron indices (predicted class, all-zero maps).")
    outline = param.List(doc="Boxes of the selected neuron and, in a formula view, of its window.")
    legends = param.List(doc="Colour legends, shown with details.")
    details = param.Boolean(default=False)
    hint = param.String(default="", doc="The sentence under the network.")
    idle = param.String(default=IDLE)
    aria = param.String(default=ARIA)

    _esm = "overview.js"
    _stylesheets: ClassVar[list[str]] = [(HERE / "overview.css").read_text()]

    def __init__(self, on_pick=None, **params) -> None:
        super().__init__(**params)
        self._on_pick = on_pick

    def _handle_msg(self, message: Any) -> None:
        if self._on_pick is not None and isinstance(message, dict) and "pick" in message:
            self._on_pick(int(message["pick"]))


@cache
def _static_parts(network: Network) -> tuple[OverviewLayout, dict]:
    """What every session of one network shares and never changes: the layout and the browser's geometry."""
    layout = overview_layout(network)
    neurons, columns = [], []
    for column in layout.columns:
        columns.append([])
        for index in range(len(column.tops)):
            columns[-1].append(len(neurons))
            left, top, width, height = layout.neuron_box(column, index)
            output = column.kind == OUTPUT_KIND
            neurons.append({
                "layer": column.name,
                "index": index,
                "box": [left, top, width, height],
                "class": "ov-tile ov-class" if output else "ov-tile",
                "name": (network.class_names[index] if network.class_names else f"class {index + 1}") if output else "",
                "caption": input_channel_name(len(column.tops), index) if column.kind == "input" else "",
            })  # fmt: skip
    sources: list[list[int]] = [[] for _ in neurons]
    for c, pairs in enumerate(connections(layout)):
        for source, target in pairs:
            sources[columns[c][target]].append(columns[c - 1][source])
    geometry = {"width": layout.width, "height": layout.height, "neurons": neurons, "columns": columns,
                "sources": sources, "mesh": mesh_lines(layout),
                "min_width": round(layout.width * MIN_UNIT_PIXELS)}  # fmt: skip
    return layout, geometry


def _label_box(column, width: float) -> list[float]:
    """(left, top, width, height) of a layer's label: above its column, with a little room on each side."""
    left, right = max(0.0, column.x - LABEL_ROOM), min(width, column.x + column.width + LABEL_ROOM)
    return [left, 0.0, right - left, TOP_MARGIN - 0.1]


def _legend_box(legend: dict, height: float) -> dict:
    """A colour legend with its (left, top, width, height) under the columns it describes."""
    return {**legend, "box": [legend["x0"], height - 0.85, legend["x1"] - legend["x0"], 0.8]}


class Overview(Viewer):
    """Draws the session's trace (or, in backward mode, its gradients); selects what is tapped or entered."""

    def __init__(
        self, state: ExplainerState, sections: dict[str, str] | None = None, learning: Any = None, **params
    ) -> None:
        super().__init__(**params)
        self.state = state
        self.learning = learning
        self.sections = sections or {}
        self.layout, self._geometry = _static_parts(state.network)
        map_streams = [hv.streams.Params(state, ["trace"]), hv.streams.Params(state, ["color_mode"])]
        if learning is not None:
            map_streams.append(hv.streams.Params(learning, ["backward"]))
        # no `.opts` on it: it would be re-applied to every frame
        self.picture = hv.DynamicMap(self._draw, streams=map_streams)
        self.tap = hv.streams.Tap(source=self.picture)  # anywhere on the plot: the picture's frame spans it
        self.tap.add_subscriber(self._on_tap)
        self._keys = OverviewKeys(
            on_pick=self._on_pick,
            # never linked to another pane's axes (the formula view's maps share the dimension names x and y)
            plot=pn.pane.HoloViews(self.picture, sizing_mode="stretch_both", margin=0, linked_axes=False),
            geometry=self._geometry,
            details=state.show_details,
            sizing_mode="stretch_width",
            **self._labels(state.show_details),
            **self._texts(),
        )
        self._follow_selection()
        state.param.watch(self._follow_selection, ["layer", "neuron", "level", "shown_window"])
        state.param.watch(self._refresh_texts, ["trace", "color_mode"])
        state.param.watch(self._show_details, "show_details")
        if learning is not None:
            learning.param.watch(self._refresh_texts, ["backward"])

    def __panel__(self) -> JSComponent:
        return self._keys

    @property
    def backward(self) -> Backward | None:
        return backward_on_screen(self.learning)

    # -- drawing ------------------------------------------------------------------------------------------
    def _draw(self, trace, color_mode, backward=None) -> hv.Image:
        """The input, the heatmaps (or in backward mode the gradients) and the class bars: one picture."""
        if self.backward is not None:
            return gradient_element(self.layout, trace, self.backward.gradients)
        return overview_element(self.layout, trace, color_ranges(trace, color_mode))

    def _follow_selection(self, *_events) -> None:
        """The outline follows the window only in a formula view: elsewhere a pointer move redraws nothing here."""
        state = self.state
        cell = state.shown_window if state.level == "formula" else None
        boxes = selection_boxes(self.layout, state.network, state.layer, state.neuron, cell)
        if self._keys.outline != boxes:
            self._keys.outline = boxes

    # -- texts for the keyboard layer ---------------------------------------------------------------------
    def _labels(self, details: bool) -> dict[str, Any]:
        labels = []
        for column in self.layout.columns:
            shape = "×".join(map(str, column.shape))
            labels.append({
                "text": column.name,
                "shape": shape if details else "",
                "anchor": self.sections.get(column.kind, ""),
                "box": _label_box(column, self.layout.width),
                "title": f"Read about the {column.name} layer in the article",
                "aria": f"{column.name} layer, shape {shape}: read about it in the article",
            })  # fmt: skip
        return {"labels": labels}

    def _texts(self) -> dict[str, Any]:
        trace, layout = self.state.trace, self.layout
        stats = neuron_stats(trace, layout)
        names = trace.network.class_names
        backward = self.backward
        readouts, values, dead, predicted = [], [], [], []
        for column in layout.columns:
            for index in range(len(column.tops)):
                low, high, _mean = numbers = stats[column.name][index]
                readouts.append(describe(column, index, numbers, names))
                output = column.kind == OUTPUT_KIND
                values.append(f"{100 * high:.1f}%" if output else "")
                if output and backward is not None:  # the gradient of the loss with respect to the class's score
                    slope = number_text(float(backward.probabilities[index] - backward.target[index]), 3)
                    values[-1] = slope  # as short as a percentage: it sits beside the bar, never over it
                    readouts[-1] += f"; gradient of the loss with respect to its score, p − y: {slope}"
                if output and index == trace.predicted_index:
                    predicted.append(len(values) - 1)
                if column.kind not in ("input", OUTPUT_KIND) and low == 0 and high == 0:
                    dead.append(len(values) - 1)
        legends = legend_data(trace, layout, self.state.color_mode)
        if backward is not None:
            legends = [legends[0], self._gradient_legend()]
        return {
            "readouts": readouts,
            "values": values,
            "marked": {"ov-predicted": predicted, "ov-dead": dead},
            "legends": [_legend_box(legend, layout.height) for legend in legends],
            "hint": self._hint(bool(dead), backward),
        }

    def _gradient_legend(self) -> dict[str, Any]:
        first = next(column for column in self.layout.columns if column.kind not in ("input", OUTPUT_KIND))
        last = [column for column in self.layout.columns if column.kind != OUTPUT_KIND][-1]
        return {
            "x0": first.x, "x1": last.x + last.width, "colors": list(GRADIENT_STOPS), "low": "−", "middle": "0",
            "high": "+", "title": "gradient of the loss with respect to each layer's output, each in its own range",
            "always": True,  # with or without details: backward mode needs its key to its colours
        }  # fmt: skip

    def _hint(self, dead: bool, backward) -> str:
        hatched = "Hatched maps are all zero for this image. " if dead else ""
        if backward is not None:
            return (
                f"Backward mode: the loss is {number_text(backward.loss, 3)}. Beside each class: p − y, the gradient "
                "at its score (the bars still show the probabilities). Each map shows how the loss changes "
                "with that layer's output (purple: the loss falls as the value grows, green: it rises); the "
                "gradient flows from the classes on the right back to the input."
            )
        if self.state.color_mode == "layer":
            return hatched + "Each layer has its own colour range."
        return (
            hatched + "Pale maps hold values that are small next to the largest one in their colour range: "
            "choose Layer to give each layer its own range."
        )

    def _refresh_texts(self, *_events) -> None:
        self._keys.param.update(**self._texts())

    def _show_details(self, event: param.parameterized.Event) -> None:
        self._keys.param.update(details=event.new, **self._labels(event.new))

    # -- what the learner does ----------------------------------------------------------------------------
    def _on_pick(self, index: int) -> None:
        neurons = self._geometry["neurons"]
        if 0 <= index < len(neurons):
            self.state.select(neurons[index]["layer"], neurons[index]["index"])

    def _on_tap(self, x: float | None = None, y: float | None = None) -> None:
        if x is None or y is None:
            return
        hit = self.layout.neuron_at(x, self.layout.height - y)
        if hit is not None:
            column, neuron = hit
            self.state.select(column.name, neuron)
