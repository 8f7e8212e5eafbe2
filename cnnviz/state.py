"""Everything one session knows, as Parameterized state with no Panel import.

The views watch these parameters and ask the engine for numbers; tests drive the same object with
`param.update` and no browser. One instance per session; the network and the examples are shared read-only.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import numpy as np
import param

from cnnviz.colors import COLOR_MODES
from cnnviz.engine import Network, Trace
from cnnviz.engine.experiments import WhatIf, apply, without_no_ops
from cnnviz.errors import CnnvizError
from cnnviz.examples import ExampleCatalog
from cnnviz.images import ImageError, PreparedUpload, prepare_upload
from cnnviz.lab_state import TrainingHistory, describe_experiment, parse_experiment, shared_history
from cnnviz.offload import Coalescer, LatestOnly, Superseded, TooSlow

LEVELS = ("overview", "elastic", "formula")
# What a click on a neuron of each kind opens: a convolution or an output class explains itself in the elastic
# view; ReLU and pooling are one small formula each; the input has nothing below it.
LEVEL_OPENED_BY_KIND = {"conv2d": "elastic", "dense": "elastic", "relu": "formula", "maxpool2d": "formula"}


class ExplainerState(param.Parameterized):
    """The current image, the model's trace of it, and what the learner is looking at.

    On a served page, what a click asks for (an example's image, a retrace after an image, checkpoint or
    what-if change, a selection, the URL) lands at the next flush of `requests`, a few ms later, newest only; elsewhere
    at once.
    """

    example = param.String(default="", doc="Key of the chosen example image; empty for an upload.")
    image = param.Array(default=None, doc="The network's input (its input shape), values in [0, 1].")
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
    shown_window = param.Tuple(
        default=(0, 0), length=2, doc="(row, col) as the panes behind a formula view show it (see `echo_later`)."
    )
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
    stepped = param.ClassSelector(
        class_=Network, default=None, allow_None=True, doc="This session's copy after training steps (LearningState)."
    )

    def __init__(
        self, network: Network, catalog: ExampleCatalog, history: TrainingHistory | None = None, **params
    ) -> None:
        self.network = network  # the final network: the architecture every view is drawn for
        self.history = shared_history() if history is None else history
        self.catalog = catalog
        params.setdefault("example", catalog.default.key)
        # What a click asks for, coalesced: a served page gives it a schedule (Explainer.page), so that of a burst of
        # image choices, selections or weight changes only the newest does its work; elsewhere all run at once.
        self.requests = Coalescer()
        self.echo_later: Callable[[Callable[[], None]], None] | None = None
        """Behind a formula view, the elastic view's marker and the overview's outline follow the window once the
        pointer rests (a served page sets a `when_resting` scheduler), not on each of its moves: a move then redraws
        only the formula view. Elsewhere, and in the other views, `shown_window` follows at once."""
        super().__init__(**params)
        self.shown_window = (self.row, self.col)
        self.param.watch(self._echo_window, ["row", "col", "level"])
        self._decoding = LatestOnly()  # this session's uploads: one decode at a time, the newest wins
        self._show_example_now()

    def _echo_window(self, *events: param.parameterized.Event) -> None:
        opening = any(event.name == "level" for event in events)
        if self.level == "formula" and self.echo_later is not None and not opening:
            self.echo_later(self._show_window)
        else:
            self._show_window()

    def _show_window(self) -> None:
        self.shown_window = (self.row, self.col)

    @param.depends("example", watch=True)
    def _show_example(self) -> None:
        self.requests.submit("image", self._show_example_now)

    def _show_example_now(self) -> None:
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
        self.requests.submit("trace", self._retrace_now)

    @param.depends("stepped", watch=True)
    def _retrace_after_step(self) -> None:
        """At once: a training step's watchers read the new trace (LearningState.apply_step), and steps are already
        computed newest-only, off the loop."""
        self._retrace_now()

    def _retrace_now(self) -> None:
        try:
            trained = self.network if self.epoch is None else self.history.network(self.epoch, like=self.network)
            active = apply(trained, parse_experiment(self.experiment, self.network))
            active = active if self.stepped is None else self.stepped
        except (ValueError, CnnvizError) as error:  # a mistyped link, a damaged checkpoint: say so, show trained
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
        self.experiment = describe_experiment(without_no_ops(what_if, self.network))

    def upload(self, content: bytes) -> bool:
        """Use an uploaded file as the input; on bad input keep the current image and say why."""
        try:
            prepared = prepare_upload(content, self.network.input_shape)
        except ImageError as error:
            self.message = str(error)
            return False
        self._use_upload(prepared)
        return True

    async def upload_off_loop(self, content: bytes) -> bool:
        """`upload` for servers: decodes in a worker thread, within a time limit; a newer upload supersedes it."""
        try:
            prepared = await self._decoding.run(prepare_upload, content, self.network.input_shape)
        except Superseded:
            return False
        except TooSlow:
            limit = self._decoding.time_limit
            self.message = (
                f"cnnviz could not read this image within {limit:g} seconds (the server may be busy); "
                "please try again, or use a smaller image."
            )
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
        """Use an array (the network's input shape, values in [0, 1]) as the input, e.g. from a notebook."""
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
        self.requests.submit("selection", lambda: self.param.update(layer=layer, neuron=neuron, level=level))

    def back(self) -> None:
        """One level up: formula → elastic (where the layer has one) → overview (Esc, or a click on empty space)."""
        self.requests.run_pending("selection")  # one level up from what was last selected
        kind = self.network.info(self.layer).kind if self.layer else ""
        if self.level == "formula" and kind in ("conv2d", "softmax"):  # back to the view beneath the formula
            self.level = "elastic"
        elif self.level == "elastic" and kind == "softmax":
            self.param.update(layer=self.network.layer_names[-2], level="elastic")
        else:
            self.clear_selection()

    def clear_selection(self) -> None:
        self.requests.submit("selection", lambda: self.param.update(layer="", neuron=0, level="overview"))


# -- shared links: the state as a URL query, every value checked before the state takes it ---------------------
# state parameter -> its name in a link
LINK_NAMES = {
    "example": "image",
    "layer": "layer",
    "neuron": "neuron",
    "level": "view",
    "input_channel": "channel",
    "row": "row",
    "col": "col",
    "show_details": "details",
    "color_mode": "colors",
    "epoch": "epoch",
    "experiment": "whatif",
}
# learning-state parameter (cnnviz.learning_state) -> its name in a link
LEARNING_LINK_NAMES = {"backward_mode": "mode", "true_class": "truth"}
MODES = ("forward", "backward")
MAX_LINK_TEXT = 2000  # characters of one value; longer ones are refused unread
WINDOW = ("row", "col")  # the formula view's window: it moves with the pointer, many times a second
_SELECTION = ("layer", "neuron", "level", "input_channel", "row", "col")


class LinkError(ValueError):
    """One sentence about one value of a link."""


class SharedLink(param.Parameterized):
    """The session as a URL query (`pn.state.location.sync(link)`), with every incoming value checked.

    A link can hold anything: text, numbers far out of range, nan, 400 digits, a layer that does not exist.
    Values arrive as the URL parser made them (str, int, float, bool, list or dict). Each is checked for type,
    range, finiteness and length against this session's network, examples and checkpoints; the good ones are
    applied together, each bad one gets a sentence naming it in `state.message`, and a bad part of the selection
    drops the whole selection, so the page never shows a neuron its layer does not have.
    """

    image = param.Parameter(default="")
    layer = param.Parameter(default="")
    neuron = param.Parameter(default="0")
    view = param.Parameter(default="overview")
    channel = param.Parameter(default="0")
    row = param.Parameter(default="0")
    col = param.Parameter(default="0")
    details = param.Parameter(default="false")
    colors = param.Parameter(default="unit")
    epoch = param.Parameter(default="")
    whatif = param.Parameter(default="")
    mode = param.Parameter(default="forward")
    truth = param.Parameter(default="")

    def __init__(self, state: ExplainerState, learning: param.Parameterized | None = None, **params) -> None:
        """`learning` (a `LearningState`, optional) adds backward mode and the true class to the link."""
        super().__init__(**params)
        self.state = state
        self.learning = learning
        self._writing = False
        # Schedules a write for when the window rests (the app sets it when served); None: write at once. Writing
        # the URL on every pointer move costs a browser round trip per move.
        self.defer_window_writes: Callable[[Callable[[], None]], None] | None = None
        self._write_from_state()
        self._state_watcher = state.param.watch(self._state_changed, list(LINK_NAMES))
        if learning is not None:
            self._learning_watcher = learning.param.watch(self._write_from_state, list(LEARNING_LINK_NAMES))
        self.param.watch(self._read_into_state, self.link_names)

    @property
    def link_names(self) -> list[str]:
        """The query keys this link reads and writes."""
        learned = list(LEARNING_LINK_NAMES.values()) if self.learning is not None else []
        return [*LINK_NAMES.values(), *learned]

    def sync_with(self, location: param.Parameterized) -> None:
        """Mirror this link in Panel's `pn.state.location`; a query Panel's own parser chokes on is dropped."""
        try:
            location.query_params  # noqa: B018 (parsing is the check: e.g. a number of over 4,300 digits fails)
        except ValueError:
            location.search = ""
            self.state.message = "This link could not be read (a value in it is far too long); showing the start."
        _keep_booleans_lowercase(location)
        location.sync(self, self.link_names)

    # -- state -> link ------------------------------------------------------------------------------------
    def _state_changed(self, *events: param.parameterized.Event) -> None:
        """A burst of clicks rewrites the URL once (state.requests), not once per click; a moving window, once it
        rests."""
        if self.defer_window_writes is not None and all(event.name in WINDOW for event in events):
            self.defer_window_writes(self._write_from_state)
        else:
            self.state.requests.submit("link", self._write_from_state)

    def _write_from_state(self, *_events: param.parameterized.Event) -> None:
        state = self.state
        values = {
            "image": state.example,
            "layer": state.layer,
            "neuron": str(state.neuron),
            "view": state.level,
            "channel": str(state.input_channel),
            "row": str(state.row),
            "col": str(state.col),
            "details": "true" if state.show_details else "false",
            "colors": state.color_mode,
            "epoch": "" if state.epoch is None else str(state.epoch),
            "whatif": state.experiment,
        }
        if self.learning is not None:
            values["mode"] = MODES[int(self.learning.backward_mode)]
            values["truth"] = str(self.learning.true_class)
        self._writing = True
        try:
            self.param.update(values)
        finally:
            self._writing = False

    # -- link -> state ------------------------------------------------------------------------------------
    def _read_into_state(self, *events: param.parameterized.Event) -> None:
        if self._writing:
            return
        self.apply({event.name: event.new for event in events})

    def apply(self, values: dict[str, object]) -> list[str]:
        """Check link values (by link name) and apply the good ones; returns the sentences about the bad ones."""
        state = self.state
        wanted: dict[str, object] = {}
        problems: list[str] = []
        link_name = {name: state_name for state_name, name in LINK_NAMES.items()}
        learning_name = {name: param_name for param_name, name in LEARNING_LINK_NAMES.items()} if self.learning else {}
        learned: dict[str, object] = {}
        selection_refused = False
        for name, raw in values.items():
            if name in learning_name:
                try:
                    learned[learning_name[name]] = self._check(name, raw)
                except LinkError as error:
                    problems.append(str(error))
                continue
            if name not in link_name:
                continue
            try:
                wanted[link_name[name]] = self._check(name, raw)
            except LinkError as error:
                problems.append(str(error))
                selection_refused = selection_refused or link_name[name] in _SELECTION
        if not selection_refused:
            try:
                self._check_selection({name: wanted.get(name, getattr(state, name)) for name in _SELECTION})
            except LinkError as error:
                problems.append(str(error))
                selection_refused = True
        if selection_refused:
            wanted.update(layer="", neuron=0, level="overview", input_channel=0, row=0, col=0)
        changes = {name: value for name, value in wanted.items() if value != getattr(state, name)}
        if problems:
            changes["message"] = " ".join(problems)
        learned = {name: value for name, value in learned.items() if value != getattr(self.learning, name)}
        if "backward_mode" in learned:  # first, so a formula view the link opens explains the step it asks for
            self.learning.backward_mode = learned.pop("backward_mode")
        if changes:
            state.param.update(changes)
        if learned:  # after the image: a new image measures the loss against its own label until the link says
            self.learning.param.update(learned)
        self._write_from_state()  # the URL shows what is on screen, not what was refused
        return problems

    def _check(self, name: str, raw: object) -> object:
        state = self.state
        if name == "image":
            key = _text(name, raw)
            if key and key not in state.catalog:
                raise LinkError(f"The link's {name}={_shown(key)} is not one of the examples here; it was left out.")
            return key or state.example
        if name == "layer":
            layer = _text(name, raw)
            if layer and layer not in state.network.layer_names:
                layers = ", ".join(state.network.layer_names)
                raise LinkError(f"The link's {name}={_shown(layer)} is not a layer of this network ({layers}).")
            return layer
        if name in ("neuron", "channel", "row", "col"):
            return _whole_number(name, raw)
        if name == "view":
            return _one_of(name, _text(name, raw), LEVELS)
        if name == "details":
            return _flag(name, raw)
        if name == "colors":
            return _one_of(name, _text(name, raw), tuple(COLOR_MODES))
        if name == "epoch":
            if raw in ("", None, "null"):  # "null": how links made before this check wrote "the final weights"
                return None
            epoch = _whole_number(name, raw)
            if epoch not in state.history.epochs:
                saved = ", ".join(map(str, state.history.epochs)) or "none"
                raise LinkError(f"The link's {name}={_shown(raw)} is not a saved checkpoint (saved epochs: {saved}).")
            return epoch
        if name == "mode":
            return _one_of(name, _text(name, raw), MODES) == "backward"
        if name == "truth":
            return self._true_class(raw)
        text = _text(name, raw)  # whatif
        try:
            parse_experiment(text, state.network)
        except ValueError:
            raise LinkError(
                f"The link's {name}={_shown(text)} is not a change this network can make; showing it unchanged."
            ) from None
        return text

    def _true_class(self, raw: object) -> int:
        """A class of this network, by number (from 0) or by name."""
        names = self.state.network.class_names
        count = self.state.network.infos[-1].shape[0]
        if isinstance(raw, str) and raw in names:
            return names.index(raw)
        if raw in ("", None):
            return self.learning.true_class
        index = _whole_number("truth", raw)
        if index >= count:
            raise LinkError(
                f"The link's truth={_shown(raw)} is not a class of this network (classes are numbered 0 to "
                f"{count - 1}); the loss is measured against the image's own class."
            )
        return index

    def _check_selection(self, selection: dict[str, object]) -> None:
        """A neuron, channel and window its layer has, and a view that needs a layer only with one."""
        layer, level = selection["layer"], selection["level"]
        if not layer:
            for name in ("neuron", "input_channel", "row", "col"):
                if selection[name]:
                    link = LINK_NAMES[name]
                    raise LinkError(f"The link's {link}={_shown(selection[name])} needs a layer; showing the overview.")
            if level != "overview":
                raise LinkError(f"The link's view={level} needs a layer; showing the overview.")
            return
        network = self.state.network
        index = network.layer_names.index(layer)
        shape = network.info(layer).shape
        below = network.input_shape if index == 0 else network.info(network.layer_names[index - 1]).shape
        spatial = shape[:-1] if len(shape) == 3 else (1, 1)
        limits = {
            "neuron": (shape[-1], f"{layer} has {shape[-1]} neurons"),
            "input_channel": (below[-1], f"{layer} reads {below[-1]} input channels"),
            "row": (spatial[0], f"{layer} has {spatial[0]} rows"),
            "col": (spatial[1], f"{layer} has {spatial[1]} columns"),
        }
        for name, (count, why) in limits.items():
            if not selection[name] < count:
                link = LINK_NAMES[name]
                raise LinkError(
                    f"The link's {link}={_shown(selection[name])} is out of range ({why}, numbered from 0); "
                    "showing the overview."
                )


def _shown(raw: object) -> str:
    """A value as the message quotes it: on one line (control characters escaped) and short, whatever its length."""
    text = "".join(char if char.isprintable() else repr(char)[1:-1] for char in str(raw))
    return text if len(text) <= 24 else f"{text[:20]}… ({len(text)} characters)"


def _text(name: str, raw: object) -> str:
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise LinkError(f"The link's {name} must be a single word or number, not {_shown(raw)}.")
    text = raw if isinstance(raw, str) else str(raw)
    if len(text) > MAX_LINK_TEXT:
        raise LinkError(f"The link's {name} is {len(text):,} characters long; the limit is {MAX_LINK_TEXT:,}.")
    return text


def _whole_number(name: str, raw: object) -> int:
    """A non-negative int from an int, an integral finite float, or digits (of a sensible length)."""
    if isinstance(raw, bool):
        raw = str(raw)
    if isinstance(raw, float) and np.isfinite(raw) and raw.is_integer():
        raw = int(raw)
    if isinstance(raw, str) and raw.strip().isdigit() and len(raw.strip()) <= 18:
        raw = int(raw.strip())
    if not isinstance(raw, int) or raw < 0:
        raise LinkError(f"The link's {name}={_shown(raw)} is not a whole number of 0 or more.")
    if raw >= 10**18:
        raise LinkError(f"The link's {name}={_shown(raw)} is far out of range.")
    return raw


def _one_of(name: str, value: str, options: tuple[str, ...]) -> str:
    if value not in options:
        raise LinkError(f"The link's {name}={_shown(value)} is not one of: {', '.join(options)}.")
    return value


def _flag(name: str, raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    if str(raw).lower() in ("true", "1", "yes", "on"):
        return True
    if str(raw).lower() in ("false", "0", "no", "off"):
        return False
    raise LinkError(f"The link's {name}={_shown(raw)} is not true or false.")


def _keep_booleans_lowercase(location: param.Parameterized) -> None:
    """Write `details=true` every time, not `true` first and `True` after the next change of another option.

    Panel's Location parses `true` in the query into a Python boolean and, when another value changes, writes
    the parsed values back with `str()` (`True`); this session's Location writes booleans back as JSON.
    """

    def update_query(**values: Any) -> None:
        query = {name: json.dumps(v) if isinstance(v, bool) else v for name, v in location.query_params.items()}
        query.update(values)
        location.search = "?" + urlencode(query)

    location.update_query = update_query
