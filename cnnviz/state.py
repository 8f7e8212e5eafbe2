"""Everything one session knows, as Parameterized state with no Panel import.

The views watch these parameters and ask the engine for numbers; tests drive the same object with
`param.update` and no browser. One instance per session; the network and the examples are shared read-only.
"""

from __future__ import annotations

import numpy as np
import param

from cnnviz.colors import COLOR_MODES
from cnnviz.engine import Network, Trace
from cnnviz.engine.experiments import WhatIf, apply
from cnnviz.examples import ExampleCatalog
from cnnviz.images import ImageError, PreparedUpload, prepare_upload
from cnnviz.lab_state import TrainingHistory, describe_experiment, parse_experiment, shared_history
from cnnviz.offload import LatestOnly, Superseded, TooSlow

LEVELS = ("overview", "elastic", "formula")
# What a click on a neuron of each kind opens: a convolution or an output class explains itself in the elastic
# view; ReLU and pooling are one small formula each; the input has nothing below it.
LEVEL_OPENED_BY_KIND = {"conv2d": "elastic", "dense": "elastic", "relu": "formula", "maxpool2d": "formula"}


class ExplainerState(param.Parameterized):
    """The current image, the model's trace of it, and what the learner is looking at."""

    example = param.String(default="", doc="Key of the chosen example image; empty for an upload.")
    image = param.Array(default=None, doc="The network's 64×64×3 input, values in [0, 1].")
    image_title = param.String(default="", doc="What the current image is, for people.")
    original = param.Parameter(default=None, doc="The uploaded picture, preview-sized (PIL), or None.")
    trace = param.ClassSelector(class_=Trace, doc="Every layer's output for the current image.")
    layer = param.String(default="", doc="Selected layer; empty when nothing is selected.")
    neuron = param.Integer(default=0, bounds=(0, None), doc="Selected neuron (channel or class) of `layer`.")
    level = param.Selector(default="overview", objects=list(LEVELS), doc="Overview, elastic or formula view.")
    input_channel = param.Integer(
        default=0, bounds=(0, None), doc="Input channel of a convolution whose per-channel result is explained."
    )
    row = param.Integer(default=0, bounds=(0, None), doc="Output row of the window a formula view explains.")
    col = param.Integer(default=0, bounds=(0, None), doc="Output column of the window a formula view explains.")
    show_details = param.Boolean(default=False, doc="Show layer shapes and colour legends.")
    color_mode = param.Selector(default="unit", objects=list(COLOR_MODES), doc="Which layers share a colour range.")
    message = param.String(default="", doc="The latest problem to tell the user about (plain text).")
    epoch = param.Integer(
        default=None, allow_None=True, bounds=(0, None), doc="Training checkpoint whose weights are used; None: final."
    )
    experiment = param.String(default="", doc="The 'what if?' change in effect (lab_state.describe_experiment).")
    baseline_trace = param.ClassSelector(
        class_=Trace, doc="The same weights' trace without the experiment, to show side by side with `trace`."
    )

    def __init__(
        self, network: Network, catalog: ExampleCatalog, history: TrainingHistory | None = None, **params
    ) -> None:
        self.network = network  # the final network: the architecture every view is drawn for
        self.history = shared_history() if history is None else history
        self.catalog = catalog
        params.setdefault("example", catalog.default.key)
        super().__init__(**params)
        self._decoding = LatestOnly()  # this session's uploads: one decode at a time, the newest wins
        self._show_example()

    @param.depends("example", watch=True)
    def _show_example(self) -> None:
        if not self.example:  # an upload is on screen
            return
        if self.example not in self.catalog:
            self.message = f"There is no example called {self.example!r}; showing the first example instead."
            self.example = self.catalog.default.key
            return
        chosen = self.catalog[self.example]
        self.param.update(image=chosen.image, image_title=chosen.title, original=None)

    @param.depends("image", "epoch", "experiment", watch=True)
    def _retrace(self) -> None:
        try:
            trained = self.network if self.epoch is None else self.history.network(self.epoch, like=self.network)
            active = apply(trained, parse_experiment(self.experiment, self.network))
        except ValueError as error:  # e.g. a mistyped shared link: say so and show the trained network
            self.param.update(epoch=None, experiment="", message=str(error))
            return
        trace = active.trace(self.image)
        baseline = trace if active is trained else trained.trace(self.image)
        self.param.update(baseline_trace=baseline, trace=trace)

    @property
    def active_network(self) -> Network:
        """The network behind `trace`: the checkpoint of `epoch` with the experiment applied."""
        return self.trace.network

    @property
    def what_if(self) -> WhatIf:
        return parse_experiment(self.experiment, self.network)

    @what_if.setter
    def what_if(self, what_if: WhatIf) -> None:
        self.experiment = describe_experiment(what_if)

    def upload(self, content: bytes) -> bool:
        """Use an uploaded file as the input; on bad input keep the current image and say why."""
        try:
            prepared = prepare_upload(content)
        except ImageError as error:
            self.message = str(error)
            return False
        self._use_upload(prepared)
        return True

    async def upload_off_loop(self, content: bytes) -> bool:
        """`upload` for servers: decodes in a worker thread, within a time limit; a newer upload supersedes it."""
        try:
            prepared = await self._decoding.run(prepare_upload, content)
        except Superseded:
            return False
        except TooSlow:
            limit = self._decoding.time_limit
            self.message = f"Reading this image took over {limit:g} seconds, so cnnviz gave up; try a smaller one."
            return False
        except ImageError as error:
            self.message = str(error)
            return False
        self._use_upload(prepared)
        return True

    def _use_upload(self, prepared: PreparedUpload) -> None:
        self.param.update(
            example="", image=prepared.image, image_title="Your image", original=prepared.original, message=""
        )

    def use_array(self, image: np.ndarray, title: str = "Your array") -> None:
        """Use an array (64×64×3, values in [0, 1]) as the input, e.g. from a notebook."""
        image = np.asarray(image, np.float32)
        if image.shape != self.network.input_shape:
            raise ValueError(f"expected an array of shape {self.network.input_shape}, got {image.shape}")
        self.param.update(example="", image=np.clip(image, 0, 1), image_title=title, original=None, message="")

    def select(self, layer: str, neuron: int, level: str | None = None) -> None:
        """Select a neuron (or, for the output layer, a class) and open the view that explains it.

        Without `level`, the kind of layer decides (LEVEL_OPENED_BY_KIND). The formula view of a convolution
        explains one input channel (`input_channel`), and every formula view one window (`row`, `col`).
        Conventions for the output: level "elastic" on the dense layer is the flatten view, "elastic" on the
        softmax layer is softmax mode, "formula" on the softmax layer is the softmax formula.
        """
        info = self.network.info(layer)
        if not 0 <= neuron < info.shape[-1]:
            raise IndexError(f"{layer} has {info.shape[-1]} neurons, not {neuron + 1}")
        level = level or LEVEL_OPENED_BY_KIND.get(info.kind, "overview")
        if level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, not {level!r}")
        self.param.update(layer=layer, neuron=neuron, level=level)

    def back(self) -> None:
        """One level up: formula → elastic (where the layer has one) → overview (Esc, or a click on empty space)."""
        kind = self.network.info(self.layer).kind if self.layer else ""
        if self.level == "formula" and kind in ("conv2d", "softmax"):
            layer = self.layer if kind == "conv2d" else self.network.layer_names[-2]  # the dense layer
            self.param.update(layer=layer, level="elastic")
        elif self.level == "elastic" and kind == "softmax":
            self.param.update(layer=self.network.layer_names[-2], level="elastic")
        else:
            self.clear_selection()

    def clear_selection(self) -> None:
        self.param.update(layer="", neuron=0, level="overview")
