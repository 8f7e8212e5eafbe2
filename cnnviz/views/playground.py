"""The hyperparameter playground: four sliders, a kernel sliding over a padded input, and the output filling in."""

from __future__ import annotations

import holoviews as hv
import panel as pn
import param
from panel.viewable import Viewer

from cnnviz.playground import PlaygroundState
from cnnviz.plots.playground import kernel_grid, output_grid, padded_input_grid

PLAYGROUND_HEIGHT = 640  # fixed, so the article can reserve the space before the playground loads
SETTINGS = ("input_size", "padding", "kernel_size", "stride")
_STYLESHEET = """
:host { font-size: 14px; line-height: 1.45; }
.operator { font-size: 28px; color: #555; text-align: center; }
.formula { font-size: 17px; margin: 4px 0 8px 0; }
.result, .output-shape { color: #e8710a; }
.fits, .misfit { padding: 8px 10px; border-radius: 4px; line-height: 1.4; }
.fits { background: #eef6ee; border-left: 4px solid #3a8f3a; }
.misfit { background: #fdeeee; border-left: 4px solid #c23b3b; }
"""


class Playground(Viewer):
    """Try padding, kernel size and stride on a small input and watch the output size follow the formula."""

    state = param.ClassSelector(class_=PlaygroundState, doc="The hyperparameters and the window shown.")

    def __init__(self, **params) -> None:
        params.setdefault("state", PlaygroundState())
        super().__init__(**params)
        state = self.state
        labels = {
            "input_size": "Input size n",
            "padding": "Padding p",
            "kernel_size": "Kernel size k",
            "stride": "Stride s",
        }
        sliders = [
            pn.widgets.IntSlider.from_param(state.param[name], name=labels[name], width=240) for name in SETTINGS
        ]
        self._player = pn.widgets.Player.from_param(
            state.param.step,
            name="Window",
            interval=900,
            loop_policy="loop",
            show_loop_controls=False,
            visible_buttons=["previous", "play", "pause", "next"],
            width=240,
        )
        self._formula = pn.pane.HTML(sizing_mode="stretch_width", stylesheets=[_STYLESHEET])
        self._explanation = pn.pane.HTML(sizing_mode="stretch_width", height=150, stylesheets=[_STYLESHEET])
        self._step_text = pn.pane.HTML(sizing_mode="stretch_width", stylesheets=[_STYLESHEET])
        streams = [hv.streams.Params(state, [*SETTINGS, "step"])]
        grids = pn.Row(
            pn.pane.HoloViews(hv.DynamicMap(self._input_grid, streams=streams), linked_axes=False),
            pn.pane.HTML("<div class='operator'>∗</div>", width=30, align="center", stylesheets=[_STYLESHEET]),
            pn.pane.HoloViews(hv.DynamicMap(self._kernel_grid, streams=streams), linked_axes=False),
            pn.pane.HTML("<div class='operator'>=</div>", width=30, align="center", stylesheets=[_STYLESHEET]),
            pn.pane.HoloViews(hv.DynamicMap(self._output_grid, streams=streams), linked_axes=False),
            height=300,
        )
        self._layout = pn.Column(
            pn.Row(
                pn.Column(*sliders, width=260),
                pn.Column(self._formula, self._explanation, sizing_mode="stretch_width"),
            ),
            grids,
            pn.Row(self._player, self._step_text),
            height=PLAYGROUND_HEIGHT,
            sizing_mode="stretch_width",
            css_classes=["playground"],
        )
        self._describe()

    def _input_grid(self, **_) -> hv.Overlay:
        state = self.state
        return padded_input_grid(state.padded, state.padding, state.window_origin, state.kernel_size, state.covered)

    def _kernel_grid(self, **_) -> hv.Overlay:
        return kernel_grid(self.state.kernel, extent=self.state.padded.shape[0])

    def _output_grid(self, **_) -> hv.Overlay:
        return output_grid(self.state.output, self.state.step, extent=self.state.padded.shape[0])

    @param.depends("state.input_size", "state.padding", "state.kernel_size", "state.stride", "state.step", watch=True)
    def _describe(self) -> None:
        """Fill the formula with the current numbers, explain the fit in words, and say what this window computes."""
        state = self.state
        n, p, k, s = state.input_size, state.padding, state.kernel_size, state.stride
        size = state.out_size
        ok, why = state.validity
        row, col = state.output_cell
        top, left = state.window_origin
        with pn.io.hold():
            self._formula.object = (
                "<div class='formula'>output size = ⌊(n + 2p − k) / s⌋ + 1 "
                f"= ⌊({n} + 2×{p} − {k}) / {s}⌋ + 1 = ⌊{n + 2 * p - k} / {s}⌋ + 1 = "
                f"<b class='result'>{size}</b></div>"
                f"<div>The {n}×{n} input, padded to {n + 2 * p}×{n + 2 * p}, gives a "
                f"<b class='output-shape'>{size}×{size}</b> output.</div>"
            )
            self._explanation.object = (
                f"<div class='{'fits' if ok else 'misfit'}'><b>{'It fits.' if ok else 'It does not fit evenly.'}</b> "
                f"{why}</div>"
            )
            self._step_text.object = (
                f"Window {state.step + 1} of {size * size}: rows {top}–{top + k - 1}, columns {left}–{left + k - 1} "
                f"of the padded input → output row {row}, column {col} = <b>{int(state.output[row, col])}</b>, "
                "the sum of the window's values times the kernel's weights."
            )

    def __panel__(self) -> pn.viewable.Viewable:
        return self._layout
