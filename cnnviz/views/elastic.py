"""Elastic explanation views: how one neuron is computed from the previous layer, with the network as context.

A browser-side component draws the views over the Overview (its child), so every transition starts from what
the learner was looking at. The server sends each view's numbers once per (image, layer, neuron); the
transition, the sliding-kernel sweep, hover highlights and readouts run in the browser.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import panel as pn
import param
from panel.custom import Child, JSComponent
from panel.viewable import Viewer

from cnnviz.colors import color_ranges
from cnnviz.plots.elastic import context_thumbnails, elastic_geometries, palettes, view_data
from cnnviz.plots.overview import BAR_SHARE, NAME_SHARE
from cnnviz.state import ExplainerState
from cnnviz.views import DEEP_QUERY_JS
from cnnviz.views.overview import Overview

HERE = Path(__file__).parent
# Which selections the view explains: the elastic level of these layer kinds, and the formula level of those
# whose formula explains one step of an elastic view (the view stays open beneath the formula).
OPEN_AT = {"elastic": ("conv2d", "dense", "softmax"), "formula": ("conv2d", "softmax")}


class ElasticCanvas(JSComponent):
    """Canvas + accessible hit targets over the Overview; talks back only for navigation."""

    overview = Child(doc="The Overview, drawn underneath; transitions grow out of it and shrink back into it.")
    layout = param.Dict(doc="OverviewLayout.to_json(): the coordinates every view is drawn in.")
    bar_geometry = param.Dict(doc="Where the overview draws class names and bars, to fade them out in place.")
    geometries = param.Dict(doc="Layout of each elastic view by the layer that opens it (sent once).")
    palettes = param.Dict(doc="Palette name -> hex colours the uint8 indices refer to.")
    context = param.Dict(doc="Downsampled maps of every column and the probabilities, per image.")
    view = param.Dict(default={}, doc="The open view's numbers (plots.elastic.view_data); empty when closed.")
    level = param.String(default="overview", doc="The session's level: Esc goes back only from 'elastic'.")
    back = param.List(default=[], doc="[nonce] set by the browser on Esc, the back button or an empty click.")
    explain = param.List(default=[], doc="[input channel, row, col, nonce]: open the formula of one step.")
    softmax = param.List(default=[], doc="[nonce]: open softmax mode from the flatten view.")

    _esm = DEEP_QUERY_JS + (HERE / "elastic.js").read_text()
    _priority_changes: ClassVar[list[str]] = ["back", "explain", "softmax"]  # clicks and keys: no 50 ms debounce
    _stylesheets: ClassVar[list[str]] = [(HERE / "elastic.css").read_text()]


class ElasticView(Viewer):
    """Shows the elastic view of the session's selection over the Overview and follows image changes."""

    def __init__(self, state: ExplainerState, overview: Overview, **params) -> None:
        super().__init__(**params)
        self.state = state
        self._layout = overview.layout
        self._shown: tuple | None = None  # (trace, layer, neuron, colour mode) of the view on screen
        self._canvas = ElasticCanvas(
            overview=overview,
            layout=self._layout.to_json(),
            bar_geometry={"name_share": NAME_SHARE, "bar_share": BAR_SHARE},
            geometries=elastic_geometries(state.network, self._layout),
            palettes=palettes(),
            context=self._context(),
            level=state.level,
            sizing_mode="stretch_width",
        )
        self._canvas.param.watch(self._on_back, "back")
        self._canvas.param.watch(self._on_explain, "explain")
        self._canvas.param.watch(self._on_softmax, "softmax")
        state.param.watch(self._follow, ["trace", "color_mode", "layer", "neuron", "level"])
        self._follow()

    def __panel__(self) -> JSComponent:
        return self._canvas

    @property
    def is_open(self) -> bool:
        state = self.state
        return bool(state.layer) and state.network.info(state.layer).kind in OPEN_AT.get(state.level, ())

    def _context(self) -> dict:
        trace = self.state.trace
        return context_thumbnails(trace, self._layout, color_ranges(trace, self.state.color_mode))

    def _follow(self, *events: param.parameterized.Event) -> None:
        state = self.state
        changed = {event.name for event in events}
        with pn.io.hold():
            if changed & {"trace", "color_mode"}:
                self._canvas.context = self._context()
            if not self.is_open:
                self._shown = None
                self._canvas.param.update(view={}, level=state.level)
                return
            shown = (state.trace, state.layer, state.neuron, state.color_mode)
            updates = {"level": state.level}
            if shown != self._shown:
                ranges = color_ranges(state.trace, state.color_mode)
                updates["view"] = view_data(state.trace, state.layer, state.neuron, ranges)
                self._shown = shown
            self._canvas.param.update(**updates)

    def _on_back(self, event: param.parameterized.Event) -> None:
        if event.new and self.is_open:
            self.state.back()

    def _on_explain(self, event: param.parameterized.Event) -> None:
        if not event.new:
            return
        channel, row, col, _nonce = event.new
        state = self.state
        state.param.update(input_channel=int(channel), row=int(row), col=int(col))
        state.select(state.layer, state.neuron, level="formula")

    def _on_softmax(self, event: param.parameterized.Event) -> None:
        if event.new:
            self.state.select(self.state.network.infos[-1].name, self.state.neuron, level="elastic")
