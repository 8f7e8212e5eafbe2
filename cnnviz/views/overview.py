"""The Overview: every neuron of every layer, hover for edges and values, click to select, keys to move."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import panel as pn
import param
from panel.custom import Child, JSComponent
from panel.viewable import Viewer

from cnnviz.colors import color_ranges
from cnnviz.plots.overview import legend_data, neuron_stats, overview_layout, overview_plot
from cnnviz.state import ExplainerState
from cnnviz.views.article import SCROLL_TO_SECTION_JS

HERE = Path(__file__).parent


class OverviewOverlay(JSComponent):
    """Browser-side layer over the Bokeh heatmaps: focusable neurons, edges and readout with no round trip."""

    plot = Child(doc="The Bokeh pane with the heatmaps; the overlay is drawn in its data coordinates.")
    layout = param.Dict(doc="OverviewLayout.to_json(): where every column and neuron is.")
    stats = param.Dict(doc="(min, max, mean) per neuron per column, for the readout and screen readers.")
    classes = param.List(doc="Class names of the output column.")
    details = param.Boolean(default=False)
    legends = param.List(doc="Colour legends, shown with details.")
    color_mode = param.String(default="unit", doc="Which layers share a colour range, for the hint under the maps.")
    sections = param.Dict(doc="Layer kind -> article anchor id, for the layer labels.")
    selected = param.List(default=[], doc="[layer, neuron] outlined as the selection.")
    picked = param.List(default=[], doc="[layer, neuron, nonce] set by the browser on click or Enter.")
    jumped = param.List(default=[], doc="[anchor, nonce] set by the browser when a layer label is used.")

    _esm = SCROLL_TO_SECTION_JS + (HERE / "overview.js").read_text()
    _priority_changes: ClassVar[list[str]] = ["picked", "jumped"]  # clicks: no 50 ms debounce
    _stylesheets: ClassVar[list[str]] = [(HERE / "overview.css").read_text()]


class Overview(Viewer):
    """Draws the session's trace; updates three data sources on an image switch, never rebuilds the plot."""

    def __init__(self, state: ExplainerState, sections: dict[str, str] | None = None, **params) -> None:
        super().__init__(**params)
        self.state = state
        self.layout = overview_layout(state.network)
        self._plot = overview_plot(state.trace, self.layout, color_ranges(state.trace, state.color_mode))
        self._overlay = OverviewOverlay(
            plot=pn.pane.Bokeh(self._plot.figure, sizing_mode="stretch_both"),
            layout=self.layout.to_json(),
            stats=neuron_stats(state.trace, self.layout),
            classes=list(state.network.class_names),
            details=state.show_details,
            legends=legend_data(state.trace, self.layout, state.color_mode),
            color_mode=state.color_mode,
            sections=sections or {},
            selected=self._selection(),
            sizing_mode="stretch_width",
        )
        self._overlay.param.watch(self._on_pick, "picked")
        state.param.watch(self._redraw, ["trace", "color_mode"])
        state.param.watch(self._show_details, "show_details")
        state.param.watch(self._show_selection, ["layer", "neuron"])

    def __panel__(self) -> JSComponent:
        return self._overlay

    def _selection(self) -> list:
        return [self.state.layer, self.state.neuron] if self.state.layer else []

    def _redraw(self, *_events) -> None:
        trace, mode = self.state.trace, self.state.color_mode
        ranges = color_ranges(trace, mode)
        with pn.io.hold():
            self._plot.update(trace, self.layout, ranges)
            self._overlay.param.update(
                stats=neuron_stats(trace, self.layout),
                legends=legend_data(trace, self.layout, mode, ranges),
                color_mode=mode,
            )

    def _show_details(self, event: param.parameterized.Event) -> None:
        self._overlay.details = event.new

    def _show_selection(self, *_events) -> None:
        self._overlay.selected = self._selection()

    def _on_pick(self, event: param.parameterized.Event) -> None:
        if event.new:
            layer, neuron, _nonce = event.new
            self.state.select(layer, int(neuron))
