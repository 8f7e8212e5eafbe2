"""The Lab: watch the network learn (a scrubber over the training checkpoints) and ask 'what if?'.

Everything here only writes `state.epoch`, `state.experiment` or the input image; the state retraces and every
view, the overview first, follows through `state.trace`. Panes are built once; only the visible tab is redrawn.
"""

from __future__ import annotations

import base64
import html
from dataclasses import replace
from pathlib import Path
from typing import ClassVar

import holoviews as hv
import numpy as np
import panel as pn
import param
from panel.custom import JSComponent
from panel.viewable import Viewer

from cnnviz.engine import Network
from cnnviz.engine.experiments import CLASSIC_KERNELS, WhatIf, activation_slopes, pooling_modes
from cnnviz.engine.gradients import saliency
from cnnviz.lab_state import (
    AS_TRAINED,
    LEAKY_SLOPE,
    activation_choices,
    activation_name,
    changes_in_words,
    pooling_choices,
)
from cnnviz.plots.lab import (
    epoch_marker,
    first_layer_kernels,
    input_picture,
    layer_changes,
    prediction_comparison,
    saliency_map,
    training_curves,
)
from cnnviz.state import ExplainerState
from cnnviz.views.controls import enlarged_png

HERE = Path(__file__).parent
KERNELS_WIDTH = 285
MAX_BUTTONS_IN_A_ROW = 3
FINAL_LABEL = "final"
CHOOSE_KERNEL = "classic kernel…"
CLASSIC_KERNEL_SIZE = np.shape(next(iter(CLASSIC_KERNELS.values())))
WHAT_TO_CHANGE_WIDTH = 330  # the What-if tab's first column: a phone's width
WEIGHT_GRID_WIDTH = 310  # the kernel editor's inputs share it, as many in a row as the kernel has columns
MAX_WEIGHT_WIDTH = 86
WEIGHT_CSS = ".bk-input { padding: 0 2px 0 5px !important; }"
# past three kernel columns the digits need the spin buttons' room; the keyboard's arrows still step
NO_SPIN_BUTTONS_CSS = ".bk-spin-btn { display: none !important; }"
ROOM_FOR_SPIN_BUTTONS = 3
COLOR_CHANNELS = ("red", "green", "blue")
TABS = ("Watch it learn", "What if?", "Why this class?")
LAB_CSS = """
.lab-readout { font: 14px/1.5 system-ui, sans-serif; margin: 4px 0; }
.lab-readout b { color: #b35806; }
.lab-note { color: #555; font-size: 13px; margin: 2px 0; }
.lab-changes { border-collapse: collapse; font: 13px system-ui, sans-serif; }
.lab-changes td, .lab-changes th { padding: 1px 8px 1px 0; text-align: left; white-space: nowrap; }
.lab-changes td.number { text-align: right; font-variant-numeric: tabular-nums; }
.lab-heading { font: 600 13px system-ui, sans-serif; margin: 6px 0 0 0; color: #333; }
"""
CANVAS_CSS = """
:host { display: block; }
.lab-canvas { width: 192px; height: 192px; image-rendering: pixelated; cursor: crosshair; touch-action: none;
  border: 1px solid #ccc; border-radius: 4px; display: block; }
.lab-paint-tools { display: flex; gap: 6px; margin-top: 4px; align-items: center; }
"""


def _switch_buttons(options: dict[str, object]) -> pn.widgets.RadioButtonGroup:
    """A What-if switch with "(as trained)" pressed; four buttons stack, side by side they overflow the column."""
    orientation = "vertical" if len(options) > MAX_BUTTONS_IN_A_ROW else "horizontal"
    return pn.widgets.RadioButtonGroup(
        options=options, value=AS_TRAINED, color="light", variant="outline", orientation=orientation
    )


def _rgb_bytes(image: np.ndarray) -> str:
    return base64.b64encode(np.round(np.asarray(image) * 255).astype(np.uint8).tobytes()).decode()


def kernels_caption(network: Network) -> str:
    """E.g. "conv_1_1's 10 kernels (3×3, RGB)", read off the first convolution."""
    layer = next(layer for layer in network.layers if layer.kind == "conv2d")
    rows, cols, channels, neurons = layer.kernel.shape
    colours = {1: "grey", 3: "RGB"}.get(channels, f"{channels} channels")
    return f"{layer.name}'s {neurons} kernels ({rows}×{cols}, {colours})"


def _kernels_png(network: Network) -> bytes:
    """The first layer's kernels enlarged with square pixels: a few cells each are too small to see otherwise."""
    mosaic = first_layer_kernels(network)
    return enlarged_png(mosaic, KERNELS_WIDTH // mosaic.shape[1])


class PaintCanvas(JSComponent):
    """The network's input as a canvas to paint on; the painted pixels reach the server on pointer-up."""

    image = param.String(doc="The current input: rows × cols × channels uint8 bytes, base64.")
    painted = param.String(doc="Set by the browser: the painted input, in the same layout as `image`.")
    size = param.List(default=[64, 64], doc="Rows and columns of the network's input.")
    channels = param.Integer(default=3, doc="Colour channels of the network's input (3: RGB, 1: grey).")
    label = param.String(default="", doc="What the canvas is, for screen readers.")

    _esm = HERE / "lab.js"
    _stylesheets: ClassVar[list[str]] = [CANVAS_CSS]


CHANGED_NETWORK_CSS = """
.changed-network { margin: 2px 0 6px; padding: 6px 10px; border-radius: 6px; background: #fff4e5;
  border: 1px solid #f5c27a; color: #5a3a00; }
"""


class ChangedNetworkNotice(Viewer):
    """A line above the network whenever it is not the trained one, so no prediction is taken for the real thing."""

    def __init__(self, state: ExplainerState, **params) -> None:
        super().__init__(**params)
        self.state = state
        self._pane = pn.pane.HTML(
            "", visible=False, sizing_mode="stretch_width", margin=(0, 10), stylesheets=[CHANGED_NETWORK_CSS]
        )
        state.param.watch(self._follow, ["experiment", "epoch"])
        self._follow()

    def __panel__(self) -> pn.pane.HTML:
        return self._pane

    def _follow(self, *_events) -> None:
        changes = changes_in_words(self.state.what_if, self.state.epoch)
        self._pane.visible = bool(changes)
        self._pane.object = (
            f"<p role='status' class='changed-network'><b>What if?</b> This network is changed: "
            f"{html.escape(changes)}. The Lab below shows the trained network beside it and undoes every change.</p>"
            if changes
            else ""
        )


class Lab(Viewer):
    """A collapsible card below the overview: training timeline, what-if experiments and the saliency map.

    Its widgets and plots cost a new session about 0.13 s of server time, and most visitors never open it, so
    the `Workbench` inside is built the first time the card opens (or a URL asks for an epoch or experiment).
    """

    def __init__(self, state: ExplainerState, **params) -> None:
        super().__init__(**params)
        self.state = state
        self.workbench: Workbench | None = None
        self.card = pn.Card(
            title="Lab: watch it learn · what if?", collapsed=True, sizing_mode="stretch_width", margin=(10, 5)
        )
        self.card.param.watch(self._build, "collapsed")
        state.param.watch(self._open_for_the_url, ["epoch", "experiment"])
        self._open_for_the_url()

    def __panel__(self) -> pn.viewable.Viewable:
        return self.card

    def _open_for_the_url(self, *_events) -> None:
        if self.state.epoch is not None or self.state.experiment:
            self.card.collapsed = False

    def _build(self, event: param.parameterized.Event) -> None:
        if not event.new and self.workbench is None:
            self.workbench = Workbench(self.state, self.card)
            self.card.objects = [self.workbench.tabs]


class Workbench:
    """The Lab's widgets and plots, wired to the session state (built by `Lab` on first open)."""

    def __init__(self, state: ExplainerState, card: pn.Card) -> None:
        self.state = state
        self.card = card
        history = state.history
        self._epochs = {f"{epoch} · untrained" if epoch == 0 else str(epoch): epoch for epoch in history.epochs}
        self._epochs[FINAL_LABEL] = None
        self._restore: dict | None = None  # the image before the learner painted on it

        # -- watch it learn
        self.player = pn.widgets.DiscretePlayer(
            label="Epoch",
            options=list(self._epochs),
            value=self._epoch_label(state.epoch),
            interval=1500,
            loop_policy="loop",
            show_loop_controls=False,
            show_value=True,
            sizing_mode="stretch_width",
        )
        self._marker = hv.streams.Stream.define("Checkpoint", epoch=param.Integer(default=None, allow_None=True))(
            epoch=state.epoch
        )
        marker = hv.DynamicMap(lambda epoch: epoch_marker(epoch, history), streams=[self._marker])
        self.curves = pn.pane.HoloViews(training_curves(history, marker), sizing_mode="stretch_width")
        self.kernels = pn.pane.PNG(_kernels_png(state.active_network), width=KERNELS_WIDTH)
        self.epoch_readout = pn.pane.HTML(sizing_mode="stretch_width", stylesheets=[LAB_CSS])

        # -- what if?
        self.activation = _switch_buttons(activation_choices(state.network))
        self.pooling = _switch_buttons(pooling_choices(state.network))
        self.silence = pn.widgets.Button(label="Switch off the selected neuron", disabled=True, width=300)
        self.silenced = pn.pane.HTML(stylesheets=[LAB_CSS], sizing_mode="stretch_width")
        self.kernel_target = pn.pane.HTML(stylesheets=[LAB_CSS], sizing_mode="stretch_width")
        self.kernel_channel = pn.widgets.Select(label="Input channel", options={"1": 0}, width=110)
        self.classic_kernel = pn.widgets.Select(
            label="Use a classic kernel", options=[CHOOSE_KERNEL, *CLASSIC_KERNELS], width=170
        )
        self.weights: list[pn.widgets.FloatInput] = []  # one per kernel weight, made for the selected layer's size
        self._weight_grid = pn.GridBox(ncols=1, width=WEIGHT_GRID_WIDTH)
        self.use_weights = pn.widgets.Button(color="primary", width=170)
        self.kernel_editor = pn.Column(
            pn.Row(self.kernel_channel, self.classic_kernel),
            self._weight_grid,
            self.use_weights,
            visible=False,
        )
        rows, cols, channels = state.network.input_shape
        self.canvas = PaintCanvas(
            image=_rgb_bytes(state.image), size=[rows, cols], channels=channels, width=200, height=230,
            label=f"The network's {rows}×{cols} input: drag to paint on it",
        )  # fmt: skip
        colours = COLOR_CHANNELS if channels == len(COLOR_CHANNELS) else ()  # a grey input has no colour to drop
        self.drop_channel = [pn.widgets.Button(label=f"no {color}", width=66, margin=2) for color in colours]
        self.restore_image = pn.widgets.Button(label="Restore the image", width=200, disabled=True)
        self.reset = pn.widgets.Button(label="Undo every change", color="warning", width=200)
        self.prediction = pn.pane.HTML(stylesheets=[LAB_CSS], sizing_mode="stretch_width")
        self.comparison = pn.pane.HoloViews(
            prediction_comparison(state.baseline_trace, state.trace), sizing_mode="stretch_width"
        )
        self.changes = pn.pane.HTML(stylesheets=[LAB_CSS], sizing_mode="stretch_width")

        # -- why this class?
        self.saliency_note = pn.pane.HTML(stylesheets=[LAB_CSS], sizing_mode="stretch_width")
        self.saliency_input = pn.pane.HoloViews(input_picture(state.image))
        self.saliency = pn.pane.HoloViews(saliency_map(state.image, np.zeros(state.image.shape[:2]), ""))

        self.tabs = pn.Tabs(
            (TABS[0], self._learn_tab(bool(history.checkpoints))),
            (TABS[1], self._what_if_tab()),
            (TABS[2], pn.Column(self.saliency_note, pn.Row(self.saliency_input, self.saliency))),
            dynamic=True,  # only the open tab travels to the browser
            sizing_mode="stretch_width",
        )
        self._follow_experiment()
        self._follow_selection()
        self._redraw()

        self.player.param.watch(self._choose_epoch, "value")
        for switch, setting in ((self.activation, "activation_slope"), (self.pooling, "pooling")):
            switch.param.watch(lambda event, setting=setting: self._switch(setting, event.new), "value")
        self.silence.on_click(self._toggle_silenced)
        self.kernel_channel.param.watch(self._choose_kernel_channel, "value")
        self.classic_kernel.param.watch(self._use_classic_kernel, "value")
        self.use_weights.on_click(self._use_typed_weights)
        self.canvas.param.watch(self._receive_painting, "painted")
        for channel, button in enumerate(self.drop_channel):
            button.on_click(lambda _event, channel=channel: self._drop_color_channel(channel))
        self.restore_image.on_click(self._restore_image)
        self.reset.on_click(self._reset)
        self.tabs.param.watch(self._redraw, "active")
        self.card.param.watch(self._redraw, "collapsed")
        state.param.watch(self._redraw, ["trace", "layer", "neuron", "level"])
        state.param.watch(self._follow_epoch, "epoch")
        state.param.watch(self._follow_experiment, "experiment")
        state.param.watch(self._follow_selection, ["layer", "neuron", "input_channel", "trace"])
        state.param.watch(self._follow_image, "image")

    # -- layout ----------------------------------------------------------------------------------------
    def _learn_tab(self, has_checkpoints: bool) -> pn.viewable.Viewable:
        if not has_checkpoints:
            return pn.pane.HTML("<p class='lab-note'>This model card lists no training checkpoints.</p>")
        note = (
            "<p class='lab-note'>Each step loads the weights saved after that epoch of training and runs them on "
            "the current image: every view above follows. Watch the prediction go from a uniform guess to a "
            "confident one, and the first layer's kernels turn into colour and edge detectors.</p>"
        )
        kernels = pn.Column(
            pn.pane.HTML(
                f"<p class='lab-heading'>{html.escape(kernels_caption(self.state.network))}</p>", stylesheets=[LAB_CSS]
            ),
            self.kernels,
            width=310,
        )
        return pn.Column(
            pn.pane.HTML(note, stylesheets=[LAB_CSS], sizing_mode="stretch_width"),
            self.player,
            self.epoch_readout,
            pn.Row(self.curves, kernels, sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )

    def _what_if_tab(self) -> pn.viewable.Viewable:
        def heading(text: str) -> pn.pane.HTML:
            return pn.pane.HTML(f"<p class='lab-heading'>{text}</p>", stylesheets=[LAB_CSS], margin=(0, 5))

        network = self.state.network
        modes, slopes = pooling_modes(network), [activation_name(slope) for slope in activation_slopes(network)]
        replace_by = f"Replace every activation by (leaky: slope {LEAKY_SLOPE})"
        switches = [  # each only where the network has such layers
            (slopes, f"Why {' and '.join(slopes)}? {replace_by}", self.activation),
            (modes, f"Why {' and '.join(modes)}? Pool with", self.pooling),
        ]
        change = pn.Column(
            *(shown for trained, text, switch in switches if trained for shown in (heading(text), switch)),
            heading("Switch off a neuron (click one in the overview)"),
            self.silence,
            self.silenced,
            heading("Edit a kernel (click a convolution neuron)"),
            self.kernel_target,
            self.kernel_editor,
            width=WHAT_TO_CHANGE_WIDTH,
        )
        paint = pn.Column(
            heading("Paint on the input"),
            self.canvas,
            pn.Row(*self.drop_channel),
            self.restore_image,
            self.reset,
            width=215,
        )
        result = pn.Column(
            self.prediction, self.comparison, self.changes, sizing_mode="stretch_width", min_width=300,
            styles={"flex": "1 1 300px"},  # beside the others while they fit, else below them
        )  # fmt: skip
        return pn.FlexBox(change, paint, result, flex_wrap="wrap", sizing_mode="stretch_width")

    # -- from the widgets to the state ------------------------------------------------------------------
    def _choose_epoch(self, event: param.parameterized.Event) -> None:
        self.state.epoch = self._epochs[event.new]

    def _change(self, **changes) -> None:
        self.state.what_if = replace(self.state.what_if, **changes)

    def _switch(self, setting: str, value: object) -> None:
        """A What-if switch pressed: its "(as trained)" button is None in the experiment. No button pressed (a
        linked slope the switch does not offer) changes nothing."""
        if value is not None:
            self._change(**{setting: None if value == AS_TRAINED else value})

    def _toggle_silenced(self, _event) -> None:
        neuron = (self.state.layer, self.state.neuron)
        silenced = self.state.what_if.silenced
        self._change(silenced=silenced - {neuron} if neuron in silenced else silenced | {neuron})

    def _kernel_target(self) -> tuple[str, int, int] | None:
        """The kernel slice the editor changes: the selected convolution neuron's, for the chosen input channel."""
        state = self.state
        if not state.layer or state.network.info(state.layer).kind != "conv2d":
            return None
        channels = state.network.layer(state.layer).kernel.shape[2]
        return state.layer, state.neuron, min(state.input_channel, channels - 1)

    def _set_kernel(self, weights) -> None:
        target = self._kernel_target()
        if target is not None:
            self.state.what_if = self.state.what_if.with_kernel(*target, np.asarray(weights, float))

    def _use_classic_kernel(self, event: param.parameterized.Event) -> None:
        if event.new in CLASSIC_KERNELS:
            self._set_kernel(CLASSIC_KERNELS[event.new])

    def _use_typed_weights(self, _event) -> None:
        self._set_kernel([widget.value or 0.0 for widget in self.weights])

    def _choose_kernel_channel(self, event: param.parameterized.Event) -> None:
        self.state.input_channel = event.new

    def _remember_image(self) -> None:
        if self._restore is None:
            state = self.state
            self._restore = {
                "example": state.example,
                "image": state.image,
                "image_title": state.image_title,
                "original": state.original,
            }

    def _receive_painting(self, event: param.parameterized.Event) -> None:
        pixels = np.frombuffer(base64.b64decode(event.new), np.uint8)
        self._remember_image()
        self.state.use_array(pixels.reshape(self.state.network.input_shape) / 255, "Your painting")

    def _drop_color_channel(self, channel: int) -> None:
        self._remember_image()
        image = self.state.image.copy()
        image[..., channel] = 0
        self.state.use_array(image, f"{self.state.image_title} without {COLOR_CHANNELS[channel]}")

    def _restore_image(self, _event=None) -> None:
        if self._restore is not None:
            restore, self._restore = self._restore, None
            self.state.param.update(**restore, message="")

    def _reset(self, _event) -> None:
        with pn.io.hold():
            self._restore_image()
            self.state.experiment = ""

    # -- from the state to the widgets -----------------------------------------------------------------
    def _epoch_label(self, epoch: int | None) -> str:
        return next(label for label, value in self._epochs.items() if value == epoch)

    def _follow_epoch(self, event: param.parameterized.Event) -> None:
        with pn.io.hold():
            self.player.value = self._epoch_label(event.new)
            self._marker.event(epoch=event.new)
            if event.new is not None:
                self.card.collapsed = False

    def _follow_experiment(self, *_events) -> None:
        what_if = self.state.what_if
        with pn.io.hold():
            for switch, value in ((self.activation, what_if.activation_slope), (self.pooling, what_if.pooling)):
                value = AS_TRAINED if value is None else value
                switch.value = value if value in switch.options.values() else None  # a linked slope it does not offer
            self.silenced.object = self._silenced_html(what_if)
            self._follow_selection()
            if not what_if.changes_nothing:
                self.card.collapsed = False

    def _follow_selection(self, *_events) -> None:
        state, target = self.state, self._kernel_target()
        with pn.io.hold():
            selected = bool(state.layer) and state.layer != state.network.infos[0].name
            self.silence.disabled = not selected
            off = (state.layer, state.neuron) in state.what_if.silenced
            self.silence.label = (
                f"Switch {state.layer} · neuron {state.neuron + 1} {'back on' if off else 'off'}"
                if selected
                else "Switch off the selected neuron"
            )
            self.kernel_editor.visible = target is not None
            if target is None:
                self.kernel_target.object = "<p class='lab-note'>No convolution neuron selected.</p>"
                return
            layer, neuron, channel = target
            kernel = state.active_network.layer(layer).kernel[:, :, channel, neuron]
            self._fit_editor(*kernel.shape)
            classic_rows, classic_cols = CLASSIC_KERNEL_SIZE
            classic = (
                ""
                if kernel.shape == CLASSIC_KERNEL_SIZE
                else f" (the classic kernels are {classic_rows}×{classic_cols})"
            )
            self.kernel_target.object = (
                f"<p class='lab-note'>Kernel of <b>{layer} · neuron {neuron + 1}</b> on input channel {channel + 1}; "
                f"its feature map in the overview follows{classic}.</p>"
            )
            # counted from 1 on screen, like every other view
            self.kernel_channel.options = {str(c + 1): c for c in range(state.network.layer(layer).kernel.shape[2])}
            self.kernel_channel.value = channel
            self.classic_kernel.value = CHOOSE_KERNEL
            for widget, weight in zip(self.weights, kernel.ravel(), strict=True):
                widget.value = round(float(weight), 4)

    def _fit_editor(self, rows: int, cols: int) -> None:
        """One input per weight of the selected layer's kernels, laid out as the kernel is; the classic kernels
        only where they fit. Made anew only when the kernel size changes."""
        if len(self.weights) == rows * cols and self._weight_grid.ncols == cols:
            return
        stylesheets = [WEIGHT_CSS] if cols <= ROOM_FOR_SPIN_BUTTONS else [WEIGHT_CSS, NO_SPIN_BUTTONS_CSS]
        width = min(MAX_WEIGHT_WIDTH, WEIGHT_GRID_WIDTH // cols - 4)  # 4: the margins
        self.weights = [
            pn.widgets.FloatInput(value=0.0, step=0.1, width=width, margin=2, stylesheets=stylesheets)
            for _ in range(rows * cols)
        ]
        self._weight_grid.param.update(objects=self.weights, ncols=cols)
        self.use_weights.label = f"Use these {rows * cols} weights"
        # disabled, not hidden or removed: either, inside the editor as it appears, raised an error in BokehJS
        self.classic_kernel.disabled = (rows, cols) != CLASSIC_KERNEL_SIZE

    def _follow_image(self, *_events) -> None:
        self.canvas.image = _rgb_bytes(self.state.image)
        self.restore_image.disabled = self._restore is None

    @staticmethod
    def _silenced_html(what_if: WhatIf) -> str:
        if not what_if.silenced:
            return ""
        names = ", ".join(f"{layer} · neuron {channel + 1}" for layer, channel in sorted(what_if.silenced))
        return f"<p class='lab-note'>Switched off: {html.escape(names)}</p>"

    # -- drawing (only what is visible) ----------------------------------------------------------------
    def _redraw(self, *_events) -> None:
        if self.card.collapsed:
            return
        with pn.io.hold():
            [self._draw_learning, self._draw_what_if, self._draw_saliency][self.tabs.active]()

    def _draw_learning(self) -> None:
        state = self.state
        history, trace = state.history, state.trace
        accuracy = history.test_top1(state.epoch)
        if state.epoch is None:
            when = f"Final weights (from epoch {history.final_epoch}, best on held-out images)"
        else:
            when = f"Weights after epoch {state.epoch} of {history.total_epochs}"
        shown = f"<b class='lab-accuracy'>{100 * accuracy:.1f} %</b>" if accuracy is not None else "unknown"
        self.epoch_readout.object = (
            f"<p class='lab-readout'>{when} · test accuracy {shown} · on this image: "
            f"<b class='lab-predicted'>{html.escape(trace.predicted_class)}</b> "
            f"{100 * trace.probabilities.max():.1f} %</p>"
        )
        self.kernels.object = _kernels_png(state.active_network)

    def _draw_what_if(self) -> None:
        baseline, trace = self.state.baseline_trace, self.state.trace
        self.prediction.object = (
            "<p class='lab-readout'>As trained: "
            f"<span class='lab-before'>{html.escape(baseline.predicted_class)} "
            f"{100 * baseline.probabilities.max():.1f} %</span><br>What if: "
            f"<b class='lab-after'>{html.escape(trace.predicted_class)} {100 * trace.probabilities.max():.1f} %</b></p>"
        )
        self.comparison.object = prediction_comparison(baseline, trace)
        changes = layer_changes(baseline, trace)
        if not changes:
            self.changes.object = "<p class='lab-note'>No change yet: every activation is as trained.</p>"
            return
        rows = "".join(
            f"<tr><td>{c.layer}</td><td class='number'>{c.changed_channels} of {c.channels}</td>"
            f"<td class='number'>{c.max_change:.3g}</td></tr>"
            for c in changes
        )
        self.changes.object = (
            f"<table class='lab-changes'><tr><th>changed layer</th><th>channels</th><th>max Δ</th></tr>{rows}</table>"
        )

    def _draw_saliency(self) -> None:
        state = self.state
        trace = state.trace
        output_layers = {info.name for info in state.network.infos if info.kind in ("dense", "softmax")}
        chosen = state.neuron if state.layer in output_layers else None
        result = saliency(state.active_network, state.image, chosen)
        name = trace.network.class_names[result.class_index]
        self.saliency_note.object = (
            f"<p class='lab-readout'>Gradient of the score of <b class='lab-saliency-class'>{html.escape(name)}</b>"
            f" ({'chosen' if chosen is not None else 'predicted'}) with respect to each input pixel.</p>"
            "<p class='lab-note'>Blue pixels raise the score when they get brighter, red ones lower it, as blue is "
            "positive and red negative everywhere in cnnviz. "
            "Click a class in the overview's output column to see its map.</p>"
        )
        self.saliency_input.object = input_picture(state.image)
        self.saliency.object = saliency_map(state.image, result.strength, name)
