"""Pure functions for the Lab: training history, side-by-side predictions and saliency, as HoloViews elements."""

from __future__ import annotations

from dataclasses import dataclass

import holoviews as hv
import holoviews.plotting.bokeh  # registers the Bokeh backend the options below are for
import numpy as np

from cnnviz.colors import DIVERGING
from cnnviz.engine import Network, Trace
from cnnviz.engine.experiments import compare
from cnnviz.lab_state import TrainingHistory

CURVE_HEIGHT = 220
PREDICTION_HEIGHT = 250
SALIENCY_SIZE = 210
SERIES_COLORS = {"training images": "#9aa5b1", "held-out images": "#2f3e4e", "test images": "#e8710a"}
MARKER_COLOR = "#c23b3b"
EDGE_MARGIN = 0.02  # of each axis' span, beyond the data, so that dots on the edge are not cut in half
FEW_EPOCHS = 10  # up to here every epoch gets a tick; Bokeh's own ticks would fall between them


def training_curves(history: TrainingHistory, marker: hv.DynamicMap) -> hv.DynamicMap:
    """Accuracy per epoch on the training and held-out images, each checkpoint's test accuracy as a dot, and
    `marker` (the epoch shown), which alone redraws when the epoch changes."""
    curves = history.curves
    epochs = curves.get("epoch", ())
    elements = [
        hv.Curve((epochs, 100 * np.asarray(curves[key])), "epoch", ("accuracy", "accuracy (%)"), label=label).opts(
            color=SERIES_COLORS[label], line_width=2
        )
        for key, label in (("accuracy", "training images"), ("holdout_accuracy", "held-out images"))
        if key in curves
    ]
    tested = [(c.epoch, 100 * c.test_top1) for c in history.checkpoints]
    elements.append(
        hv.Scatter(tested, "epoch", ("accuracy", "accuracy (%)"), label="test images").opts(
            color=SERIES_COLORS["test images"], size=7, tools=["hover"]
        )
    )
    total = max(history.total_epochs, 1)
    margin = max(total * EDGE_MARGIN, 0.25)  # a dot at epoch 0 or at 100 % shows whole; no tick beyond the data
    return (hv.Overlay(elements) * marker).opts(
        height=CURVE_HEIGHT,
        responsive=True,
        ylim=(0, 100 + 100 * EDGE_MARGIN),
        yticks=[(percent, str(percent)) for percent in range(0, 101, 20)],
        xlim=(-margin, total + margin),
        xticks=list(range(total + 1)) if total <= FEW_EPOCHS else None,  # whole epochs, never 0.5
        legend_position="bottom_right",
        toolbar=None,
        show_grid=True,
    )


def first_layer_kernels(network: Network, gap: int = 1) -> np.ndarray:
    """The first convolution's kernels as one RGB mosaic in [0, 1], two rows, each kernel scaled to its own range.

    Their three input channels are red, green and blue, so after training they show colour blobs and edges.
    """
    kernel = next(layer.kernel for layer in network.layers if layer.kind == "conv2d")  # (3, 3, 3, neurons)
    height, width, _, neurons = kernel.shape
    columns = (neurons + 1) // 2
    mosaic = np.ones((2 * (height + gap) - gap, columns * (width + gap) - gap, 3))
    for neuron in range(neurons):
        tile = kernel[..., neuron]
        low, high = tile.min(), tile.max()
        row, col = divmod(neuron, columns)
        top, left = row * (height + gap), col * (width + gap)
        mosaic[top : top + height, left : left + width] = (tile - low) / (high - low or 1.0)
    return mosaic


def epoch_marker(epoch: int | None, history: TrainingHistory) -> hv.VLine:
    """Where the weights shown come from on the curves: a checkpoint, or the epoch the final weights were chosen."""
    position = history.final_epoch if epoch is None else epoch
    return hv.VLine(position if position is not None else np.nan).opts(color=MARKER_COLOR, line_width=2)


def prediction_comparison(baseline: Trace, trace: Trace) -> hv.Overlay:
    """Class probabilities with the experiment as bars, and as trained as a dark tick on each bar."""
    names = list(trace.network.class_names) or [str(i) for i in range(trace.probabilities.size)]
    kdims, vdims = ["class"], [("probability", "probability (%)")]
    changed = hv.Bars((names, 100 * trace.probabilities), kdims, vdims).opts(
        color=SERIES_COLORS["test images"], invert_axes=True, tools=["hover"]
    )
    trained = hv.Scatter((names, 100 * baseline.probabilities), kdims, vdims).opts(
        color=SERIES_COLORS["held-out images"], marker="dash", size=14, line_width=3, invert_axes=True
    )
    return (changed * trained).opts(
        height=PREDICTION_HEIGHT, responsive=True, ylim=(0, 100), toolbar=None, xlabel="", show_legend=False
    )


@dataclass(frozen=True)
class LayerChange:
    """How much one layer's output moved under an experiment, in words a learner can read off a table."""

    layer: str
    changed_channels: int
    channels: int
    max_change: float


def layer_changes(baseline: Trace, trace: Trace) -> list[LayerChange]:
    """Every layer whose output an experiment changed, in network order (empty when nothing changed)."""
    return [
        LayerChange(d.layer, len(d.changed_channels), trace[d.layer].shape[-1], d.max_change)
        for d in compare(baseline, trace)
        if d.changed_channels
    ]


def _square(image: hv.Element, title: str) -> hv.Element:
    return image.opts(
        title=title,
        frame_width=SALIENCY_SIZE,
        frame_height=SALIENCY_SIZE,
        xaxis=None,
        yaxis=None,
        toolbar=None,
        fontsize={"title": 11},
    )


def input_picture(image: np.ndarray) -> hv.Element:
    """The input as the network sees it: in colour, or grey for a one-channel network."""
    height, width, channels = image.shape
    bounds = (0, 0, width, height)
    if channels == 1:
        return _square(hv.Image(np.asarray(image)[:, :, 0], bounds=bounds).opts(cmap="gray", clim=(0, 1)), "input")
    return _square(hv.RGB(np.asarray(image), bounds=bounds), "input")


def saliency_map(image: np.ndarray, strength: np.ndarray, class_name: str) -> hv.Overlay:
    """The saliency for one class over the greyed input, in the app's one convention (`colors.DIVERGING`):
    blue pixels raise the class's score when they get brighter, red ones lower it."""
    height, width = strength.shape
    bounds = (0, 0, width, height)
    grey = hv.Image(np.asarray(image).mean(axis=-1), bounds=bounds).opts(cmap="gray", alpha=0.45)
    limit = float(np.percentile(np.abs(strength), 99)) or 1.0  # a few extreme pixels would wash out the rest
    gradient = hv.Image(strength, bounds=bounds, vdims=["d score / d pixel"]).opts(
        cmap=DIVERGING, clim=(-limit, limit), alpha=0.85, tools=["hover"]
    )
    return _square(grey * gradient, f"saliency · {class_name}")
