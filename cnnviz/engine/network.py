"""A sequential network of engine layers, its weights file, and the trace of one forward pass."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import zipfile
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CnnvizError
from .layers import Layer, Shape, layer_from_config

FORMAT_VERSION = 1
INPUT_NAME = "input"
KERAS_SUFFIXES, ONNX_SUFFIXES = (".keras", ".h5", ".hdf5"), (".onnx",)  # model files `cnnviz import` reads


class WeightsError(CnnvizError, RuntimeError):
    """A weights file is missing, unreadable or does not describe a network; the message says which."""


@dataclass(frozen=True)
class LayerInfo:
    """What the views need to know about one column of the network."""

    name: str
    kind: str
    shape: Shape


class Network:
    """A trained sequential CNN: ordered layers, the input shape, and the class names of its outputs.

    The weights file is one `.npz`: every layer's arrays under ``"<layer>/<weight>"`` plus a JSON
    ``"architecture"`` entry (format version, input shape, class names, input normalisation, layer configs),
    so a file alone rebuilds the network, with no model code and no TensorFlow.
    """

    def __init__(
        self,
        layers: Sequence[Layer],
        input_shape: Shape,
        class_names: Sequence[str],
        metadata: dict[str, Any] | None = None,
        silenced: Mapping[str, Iterable[int]] | None = None,
    ) -> None:
        names = [layer.name for layer in layers]
        if len(set(names)) != len(names) or INPUT_NAME in names:
            raise ValueError(f"layer names must be unique and not {INPUT_NAME!r}: {names}")
        self.layers: tuple[Layer, ...] = tuple(layers)
        self.input_shape: Shape = tuple(int(n) for n in input_shape)
        self.class_names: tuple[str, ...] = tuple(class_names)
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.infos: tuple[LayerInfo, ...] = self._describe()
        # channels forced to zero after their layer, for "switch this neuron off" experiments
        self.silenced: dict[str, tuple[int, ...]] = {
            name: tuple(sorted(set(channels))) for name, channels in (silenced or {}).items() if channels
        }
        for name in self.silenced:
            self.layer(name)  # unknown names fail here, not silently
        for layer in self.layers:
            for array in layer.weights().values():
                array.flags.writeable = False  # shared by every session: nobody may change them in place
        outputs = self.infos[-1].shape
        if self.class_names and outputs != (len(self.class_names),):
            raise ValueError(f"{len(self.class_names)} class names for an output of shape {outputs}")
        self._recent_traces: OrderedDict[bytes, Trace] = OrderedDict()  # each operation on it is atomic
        self._recent_traces_kept = 0

    def _describe(self) -> tuple[LayerInfo, ...]:
        infos = [LayerInfo(INPUT_NAME, "input", self.input_shape)]
        for layer in self.layers:
            infos.append(LayerInfo(layer.name, layer.kind, tuple(layer.output_shape(infos[-1].shape))))
        return tuple(infos)

    def __repr__(self) -> str:
        columns = ", ".join(f"{info.name}{list(info.shape)}" for info in self.infos)
        return f"Network({columns})"

    @property
    def layer_names(self) -> tuple[str, ...]:
        return tuple(layer.name for layer in self.layers)

    @property
    def parameter_count(self) -> int:
        return sum(layer.parameter_count for layer in self.layers)

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"no layer {name!r}; layers are {', '.join(self.layer_names)}")

    def info(self, name: str) -> LayerInfo:
        for info in self.infos:
            if info.name == name:
                return info
        raise KeyError(f"no layer {name!r}")

    def _check_input(self, images: np.ndarray, dtype: type = np.float32) -> np.ndarray:
        images = np.asarray(images, dtype)
        if images.shape[1:] != self.input_shape:
            raise ValueError(f"expected images of shape {self.input_shape}, got {images.shape[1:]}")
        return images

    def forward(self, x: np.ndarray) -> Iterator[tuple[Layer, np.ndarray]]:
        """Each layer with its output, in order, for a batch `x` (kept in its dtype: float64 for gradients)."""
        for layer in self.layers:
            x = layer.forward(x)
            if layer.name in self.silenced:
                x = x.copy()
                x[..., list(self.silenced[layer.name])] = 0
            yield layer, x

    def keep_recent_traces(self, megabytes: float) -> None:
        """From now on, keep the traces of the images traced last, up to about `megabytes` of outputs.

        For a network every session shares: a class clicks through the same few example images, and each
        image's forward pass (about 11 ms for Tiny VGG) then runs once per process instead of once per student
        and click. Traces are read-only, so one trace serves every session."""
        trace_bytes = sum(int(np.prod(info.shape)) for info in self.infos) * np.dtype(np.float32).itemsize
        self._recent_traces_kept = max(1, int(megabytes * 2**20 // trace_bytes))

    def trace(self, image: np.ndarray) -> Trace:
        """Run one image (H, W, C, values as the model expects) and keep every layer's output."""
        x = self._check_input(np.asarray(image)[np.newaxis])
        key = hashlib.blake2b(x.tobytes(), digest_size=16).digest() if self._recent_traces_kept else b""
        kept = self._recent_traces.get(key)
        if kept is not None:
            with contextlib.suppress(KeyError):  # forgotten meanwhile by another thread (learning steps trace off
                self._recent_traces.move_to_end(key)  # the event loop): it is still the right trace
            return kept
        outputs = {INPUT_NAME: x[0]}
        outputs.update((layer.name, output[0]) for layer, output in self.forward(x))
        for array in outputs.values():
            array.flags.writeable = False
        trace = Trace(self, outputs)
        if self._recent_traces_kept:
            self._recent_traces[key] = trace
            while len(self._recent_traces) > self._recent_traces_kept:
                with contextlib.suppress(KeyError):  # another thread forgot it first
                    self._recent_traces.popitem(last=False)
        return trace

    def predict(self, images: np.ndarray, batch_size: int = 100) -> np.ndarray:
        """Final outputs (class probabilities) for a batch of images, in chunks to bound memory."""
        images = self._check_input(images)
        results = []
        for start in range(0, len(images), batch_size):
            *_, (_last, probabilities) = self.forward(images[start : start + batch_size])
            results.append(probabilities)
        return np.concatenate(results) if results else np.zeros((0, *self.infos[-1].shape), np.float32)

    # -- the weights file ---------------------------------------------------------------------------------
    def architecture(self) -> dict[str, Any]:
        """The JSON description stored beside the arrays."""
        return {
            "format": "cnnviz-network",
            "version": FORMAT_VERSION,
            "input_shape": list(self.input_shape),
            "class_names": list(self.class_names),
            "layers": [layer.config() for layer in self.layers],
            "metadata": self.metadata,
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write the self-contained `.npz` (compressed: the weights folder stays small)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {f"{layer.name}/{key}": value for layer in self.layers for key, value in layer.weights().items()}
        np.savez_compressed(path, architecture=np.array(json.dumps(self.architecture())), **arrays)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Network:
        """Read a file written by `save`; any problem becomes a `WeightsError` that says what is wrong."""
        path = Path(path)
        if not path.is_file():
            raise WeightsError(
                f"Weights file not found: {path}. Train with `cnnviz train` or point to an existing .npz file."
            )
        if path.suffix.lower() in KERAS_SUFFIXES + ONNX_SUFFIXES:
            raise WeightsError(
                f"Weights file {path} is a model file, not cnnviz weights: import it first (cnnviz import {path}), "
                "then use the .npz it writes."
            )
        if not zipfile.is_zipfile(path):  # numpy would try it as a pickle and say so, which helps nobody
            raise WeightsError(f"Weights file {path} is damaged or not a cnnviz .npz file (it is no zip archive).")
        try:
            with np.load(path, allow_pickle=False) as archive:
                arrays = {key: archive[key] for key in archive.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
            raise WeightsError(f"Weights file {path} is damaged or not a cnnviz .npz file ({error}).") from None
        try:
            spec = json.loads(str(arrays.pop("architecture")))
            if spec.get("format") != "cnnviz-network" or spec.get("version") != FORMAT_VERSION:
                raise ValueError("unknown format or version")
            return cls.from_architecture(spec, arrays)
        except (KeyError, ValueError, TypeError) as error:
            raise WeightsError(
                f"Weights file {path} does not describe a network this version can read: {error}"
            ) from None

    @classmethod
    def from_architecture(cls, spec: dict[str, Any], arrays: dict[str, np.ndarray]) -> Network:
        layers = []
        for config in spec["layers"]:
            prefix = f"{config['name']}/"
            weights = {key[len(prefix) :]: value for key, value in arrays.items() if key.startswith(prefix)}
            layers.append(layer_from_config(config, weights))
        return cls(layers, tuple(spec["input_shape"]), spec.get("class_names", ()), spec.get("metadata"))


@dataclass(frozen=True, eq=False)
class Trace:
    """Every layer's output for one image, in order, read-only, keyed by layer name ('input' first)."""

    network: Network
    outputs: dict[str, np.ndarray] = field(repr=False)

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self.outputs[name]
        except KeyError:
            raise KeyError(f"no layer {name!r}; layers are {', '.join(self.outputs)}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self.outputs)

    def __len__(self) -> int:
        return len(self.outputs)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.outputs)

    @property
    def layers(self) -> tuple[LayerInfo, ...]:
        return self.network.infos

    @property
    def image(self) -> np.ndarray:
        return self.outputs[INPUT_NAME]

    def input_of(self, name: str) -> np.ndarray:
        """What the named layer received: the previous column's output."""
        names = self.names
        index = names.index(name)
        if index == 0:
            raise KeyError(f"{name!r} is the input; it has no input of its own")
        return self.outputs[names[index - 1]]

    @property
    def probabilities(self) -> np.ndarray:
        return self.outputs[self.names[-1]]

    @property
    def logits(self) -> np.ndarray:
        """The scores before softmax: the output of the last layer that is not a softmax."""
        for info in reversed(self.layers):
            if info.kind not in ("softmax", "input"):
                return self.outputs[info.name]
        raise KeyError("this network has no layer before its softmax")

    @property
    def predicted_index(self) -> int:
        return int(np.argmax(self.probabilities))

    @property
    def predicted_class(self) -> str:
        names = self.network.class_names
        return names[self.predicted_index] if names else str(self.predicted_index)
