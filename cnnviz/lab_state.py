"""What the Lab adds to a session, with no Panel import: the training checkpoints and 'what if?' experiments as text.

The model card (weights/tiny_vgg.json) records the training curves and the checkpoints saved on the way; the
checkpoints load lazily, once per process, and are shared read-only like the final weights. An experiment travels
as one line of text, so it can live in the URL and an instructor can share "look at this".
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

from cnnviz.engine import Network, ReLU
from cnnviz.engine.experiments import WhatIf, activation_slopes, pooling_modes, without_no_ops
from cnnviz.errors import CnnvizError
from cnnviz.resources import default_weights_path, within_time_limit

POOLING_MODES = ("max", "average", "min")
LEAKY_SLOPE = 0.1
ACTIVATIONS = {"ReLU": 0.0, "leaky ReLU": LEAKY_SLOPE, "identity": 1.0}  # the What-if activation switch's
AS_TRAINED = "as trained"  # a switch's value for the network's own setting (a button needs a value)
# Edited kernel weights stay finite and of a size whose products cannot overflow float32 (trained ones are < 1).
KERNEL_WEIGHT_LIMIT = 1000.0


@dataclass(frozen=True)
class Checkpoint:
    """The weights saved after one epoch of training, and how well they did on the test images."""

    epoch: int
    path: Path
    test_top1: float


@dataclass(frozen=True)
class TrainingHistory:
    """The model card's record of training: checkpoints to scrub through and per-epoch curves to show beside them."""

    checkpoints: tuple[Checkpoint, ...] = ()
    curves: dict[str, tuple[float, ...]] = field(default_factory=dict)
    total_epochs: int = 0
    final_epoch: int | None = None  # the epoch the final weights were selected from
    final_top1: float | None = None

    @property
    def epochs(self) -> tuple[int, ...]:
        return tuple(checkpoint.epoch for checkpoint in self.checkpoints)

    def checkpoint(self, epoch: int) -> Checkpoint:
        for checkpoint in self.checkpoints:
            if checkpoint.epoch == epoch:
                return checkpoint
        raise ValueError(f"there is no checkpoint of epoch {epoch}; saved epochs: {list(self.epochs)}")

    def test_top1(self, epoch: int | None) -> float | None:
        """Test accuracy of a checkpoint, or of the final network for `None`, as the model card states it."""
        return self.final_top1 if epoch is None else self.checkpoint(epoch).test_top1

    def network(self, epoch: int, like: Network) -> Network:
        """The checkpoint's network; it must have `like`'s architecture, since every view was drawn for that."""
        network = load_checkpoint(self.checkpoint(epoch).path)
        if network.infos != like.infos:
            raise ValueError(f"the checkpoint of epoch {epoch} does not have the architecture of the network shown")
        return network


class ModelCardError(CnnvizError, ValueError):
    """The model card beside the weights is damaged; the message says which file and how to fix it."""


def read_history(card: Path) -> TrainingHistory:
    """The training record of a model card; an empty history when there is no card (no timeline then)."""
    if not card.is_file():
        return TrainingHistory()
    try:
        data = json.loads(card.read_text(encoding="utf-8"))
        checkpoints = tuple(
            Checkpoint(int(entry["epoch"]), card.parent / entry["file"], float(entry["test_top1"]))
            for entry in data.get("checkpoints", [])
        )
        curves = {name: tuple(float(value) for value in values) for name, values in data.get("curves", {}).items()}
        training, test = data.get("training", {}), data.get("test", {})
        selected, top1 = training.get("selected_epoch"), test.get("top1")
        return TrainingHistory(
            checkpoints,
            curves,
            int(training.get("epochs", 0)),
            None if selected is None else int(selected),
            None if top1 is None else float(top1),
        )
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as error:
        raise ModelCardError(
            f"The model card {card} is damaged ({type(error).__name__}: {error}); export the weights again with "
            "`cnnviz train`, or remove the card to run without the training timeline."
        ) from None


def model_card_path(weights: Path) -> Path:
    return weights.with_suffix(".json")


@cache
def shared_history() -> TrainingHistory:
    """The training record beside the shared weights, read once per process (raises ModelCardError)."""
    card = model_card_path(default_weights_path())
    return within_time_limit(read_history, card, what=f"the model card {card}")


@cache
def load_checkpoint(path: Path) -> Network:
    """A checkpoint's network, read once per process on first use and shared read-only by every session."""
    return within_time_limit(Network.load, path, what=f"the checkpoint {path}")


# -- experiments as text: "relu:0.1 pool:min off:conv_1_1.3,relu_2_1.0 kernel:conv_1_1.0.2=-1,0,1,-2,0,2,-1,0,1" --
def describe_experiment(what_if: WhatIf) -> str:
    """The experiment as one line of text for the URL ('' for no change); `parse_experiment` reads it back."""
    parts = []
    if what_if.activation_slope is not None:
        parts.append(f"relu:{what_if.activation_slope!r}")
    if what_if.pooling is not None:
        parts.append(f"pool:{what_if.pooling}")
    if what_if.silenced:
        parts.append("off:" + ",".join(f"{layer}.{channel}" for layer, channel in sorted(what_if.silenced)))
    for layer, neuron, channel, weights in what_if.kernels:
        parts.append(f"kernel:{layer}.{neuron}.{channel}=" + ",".join(repr(w) for w in weights))
    return " ".join(parts)


def changes_in_words(what_if: WhatIf, epoch: int | None) -> str:
    """What makes the network on screen differ from the trained one, for a learner ('' when nothing does)."""
    changes = [] if epoch is None else [f"the weights of training epoch {epoch}"]
    slope = what_if.activation_slope
    if slope is not None:
        changes.append({0.0: "ReLU", 1.0: "no activation function"}.get(slope, f"leaky ReLU (slope {slope:g})"))
    if what_if.pooling is not None:
        changes.append(f"{what_if.pooling} pooling")
    edits = [(len(what_if.silenced), "neuron", "switched off"), (len(what_if.kernels), "kernel", "edited")]
    for count, noun, verb in edits:
        if count:
            changes.append(f"{count} {noun}{'s' if count > 1 else ''} {verb}")
    return ", ".join(changes)


def pooling_choices(network: Network) -> dict[str, str]:
    """The What-if pooling switch: the network's own pooling first, "(as trained)", then every other mode.

    An average-pooled network offers "average (as trained)", "max" and "min"; a network that pools both ways
    "max + average (as trained)" and all three; one without pooling layers nothing.
    """
    return _switch(pooling_modes(network), {mode: mode for mode in POOLING_MODES}, str)


def activation_choices(network: Network) -> dict[str, str | float]:
    """The What-if activation switch: "ReLU (as trained)", "leaky ReLU", "identity" for a ReLU network, "leaky
    ReLU 0.2 (as trained)" and all three for a network trained with leaky ReLUs."""
    return _switch(activation_slopes(network), ACTIVATIONS, activation_name)


def activation_name(slope: float) -> str:
    return next((name for name, value in ACTIVATIONS.items() if value == slope), f"leaky ReLU {slope:g}")


def _switch(trained: tuple[Any, ...], choices: dict[str, Any], name: Callable[[Any], str]) -> dict[str, Any]:
    """The network's own setting(s) first, marked "(as trained)", then every choice that is not it."""
    if not trained:
        return {}
    others = {label: value for label, value in choices.items() if trained != (value,)}
    return {f"{' + '.join(map(name, trained))} (as trained)": AS_TRAINED, **others}


def parse_experiment(text: str, network: Network) -> WhatIf:
    """Read `describe_experiment`'s text, checked against `network`; raises ValueError saying what is wrong."""
    what_if = WhatIf()
    for part in text.split():
        key, _, value = part.partition(":")
        try:
            if key == "relu":
                what_if = replace(what_if, activation_slope=ReLU.check_slope(float(value), key))
            elif key == "pool" and value in POOLING_MODES:
                what_if = replace(what_if, pooling=value)
            elif key == "off":
                silenced = {_neuron(network, item) for item in value.split(",")}
                what_if = replace(what_if, silenced=frozenset(silenced))
            elif key == "kernel":
                where, _, weights = value.partition("=")
                layer, neuron, channel = where.split(".")
                what_if = what_if.with_kernel(layer, int(neuron), int(channel), _kernel(network, where, weights))
            else:
                raise ValueError
        except (ValueError, KeyError, IndexError, AttributeError):
            raise ValueError(f"The experiment {part!r} is not one this network can do; showing it unchanged.") from None
    return without_no_ops(what_if, network)


def _neuron(network: Network, item: str) -> tuple[str, int]:
    """'layer.channel' of an existing layer and channel."""
    layer, channel = item.rsplit(".", 1)
    if not 0 <= int(channel) < network.info(layer).shape[-1]:
        raise IndexError(item)
    return layer, int(channel)


def _kernel(network: Network, where: str, weights: str) -> list[float]:
    """Nine weights for 'layer.neuron.channel' of an existing 3×3 convolution kernel."""
    layer, neuron, channel = where.split(".")
    height, width, channels, neurons = network.layer(layer).kernel.shape
    values = [float(w) for w in weights.split(",")]
    if len(values) != height * width or not (0 <= int(neuron) < neurons and 0 <= int(channel) < channels):
        raise IndexError(where)
    if not all(abs(value) <= KERNEL_WEIGHT_LIMIT for value in values):  # also false for nan
        raise ValueError(f"kernel weights must be numbers between -{KERNEL_WEIGHT_LIMIT:g} and {KERNEL_WEIGHT_LIMIT:g}")
    return values
