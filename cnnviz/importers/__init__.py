"""Bring your own trained model: Keras (`.keras`, `.h5`) and ONNX files (PyTorch via `torch.onnx.export`).

Each importer rebuilds the model as an engine `Network` of the layers cnnviz can explain, says in plain
notes what it changed on the way (dropout dropped, batch normalisation folded, channels-first converted),
and refuses anything else by naming the layer. TensorFlow and onnx are imported only when a file of theirs
is read: the app's import path (and Pyodide) never sees them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnnviz.engine import Conv2D, Dense, Layer, Network, Softmax
from cnnviz.engine.network import KERAS_SUFFIXES, ONNX_SUFFIXES
from cnnviz.errors import CnnvizError

SUPPORTED = (
    "Conv2D / Conv (any stride, 'valid', 'same' or explicit zero padding, no dilation or groups) with a ReLU, "
    "leaky ReLU or no activation; ReLU; LeakyReLU; max and average pooling; Flatten; Dense / Gemm / MatMul; Softmax; "
    "Dropout (dropped); batch normalisation right after a convolution or dense layer (folded into it)"
)
NORMALISATION = "pixel / 255"


class ModelImportError(CnnvizError, ValueError):
    """A model file cnnviz cannot import; the message names the file or layer and what is supported."""


def unsupported(what: str) -> ModelImportError:
    return ModelImportError(f"{what} is not supported. cnnviz can import: {SUPPORTED}.")


@dataclass
class Imported:
    """The network, what was changed to build it, and which source output each engine layer reproduces."""

    network: Network
    notes: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)  # engine layer name -> source layer / tensor name


@dataclass
class LayerChain:
    """Engine layers collected one source layer at a time, with the notes and source names beside them."""

    layers: list[Layer] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)

    def add(self, layer: Layer, source: str | None = None) -> None:
        names = {existing.name for existing in self.layers}
        base, number = layer.name or layer.kind, 1
        while layer.name in names or layer.name in ("", "input"):
            number += 1
            layer.name = f"{base}_{number}"
        self.layers.append(layer)
        if source is not None:
            self.sources[layer.name] = source

    def fold_batch_norm(
        self, name: str, scale: np.ndarray, offset: np.ndarray, mean: np.ndarray, variance: np.ndarray, epsilon: float
    ) -> None:
        """y = scale·(x − mean)/√(variance + ε) + offset, folded into the convolution or dense layer just before."""
        previous = self.layers[-1] if self.layers else None
        if not isinstance(previous, Conv2D | Dense):
            after = f"after {previous.name}" if previous else "at the start"
            raise unsupported(f"Batch normalisation {name} {after} (only right after a convolution or dense layer)")
        factor = (np.asarray(scale, np.float64) / np.sqrt(np.asarray(variance, np.float64) + epsilon)).astype(
            np.float32
        )
        previous.kernel = previous.kernel * factor
        previous.bias = ((previous.bias - mean) * factor + offset).astype(np.float32)
        previous.__dict__.pop("_kernel_matrix", None)  # Conv2D caches its reordered kernel
        self.notes.append(f"batch normalisation {name} folded into {previous.name} (same outputs, one layer fewer)")

    def network(self, input_shape: tuple[int, ...], class_names: list[str] | tuple[str, ...], source: str) -> Imported:
        """The finished network: a softmax is added if the model ends in scores, class names default to numbers."""
        if not self.layers or not isinstance(self.layers[-1], Softmax | Dense):
            last = self.layers[-1].name if self.layers else "nothing"
            raise ModelImportError(f"The model ends in {last}; cnnviz explains models that end in a dense layer.")
        if isinstance(self.layers[-1], Dense):
            self.add(Softmax("softmax"))
            self.notes.append("the model ends in scores (logits): cnnviz added a softmax to show probabilities")
        if len(input_shape) != 3 or input_shape[2] not in (1, 3):
            raise ModelImportError(f"The model's input is {input_shape}; cnnviz explains images of 1 or 3 channels.")
        network = Network(self.layers, input_shape, (), {"normalisation": NORMALISATION, "weights": source})
        classes = network.infos[-1].shape[0]
        class_names = tuple(class_names) or tuple(f"class {index}" for index in range(classes))
        if len(class_names) != classes:
            raise ModelImportError(f"{len(class_names)} class names given for a model with {classes} outputs.")
        network = Network(self.layers, input_shape, class_names, network.metadata)
        return Imported(network, self.notes, self.sources)


def import_model(path: str | os.PathLike, class_names: tuple[str, ...] = (), input_size: int | None = None) -> Imported:
    """Read a Keras or ONNX file into an engine network (`ModelImportError` says why one cannot be read)."""
    path = Path(path)
    if not path.is_file():
        raise ModelImportError(f"There is no model file at {path}.")
    suffix = path.suffix.lower()
    if suffix in KERAS_SUFFIXES:
        from cnnviz.importers.keras_model import import_keras_file

        return import_keras_file(path, class_names)
    if suffix in ONNX_SUFFIXES:
        from cnnviz.importers.onnx_model import import_onnx_file

        return import_onnx_file(path, class_names, input_size)
    if suffix == ".npz":
        raise ModelImportError(f"{path.name} is a cnnviz weights file already: cnnviz serve --weights {path}")
    known = ", ".join((*KERAS_SUFFIXES, *ONNX_SUFFIXES))
    raise ModelImportError(f"{path.name} is not a model file cnnviz knows (accepted: {known}).")


def explained_model(model: Network | str | os.PathLike | Any, catalog: Any = None) -> tuple[Network, Any, Any]:
    """(network, examples, training history) for `Explainer(network=model, catalog=catalog)`.

    A weights file brings what lies beside it: the gallery `cnnviz train` wrote and the model card's checkpoints
    for the Lab. Other models get examples at their own size; the bundled network keeps its own training record
    (None: the session's default), and any other has none, so the Lab never offers another model's epochs.
    """
    from cnnviz.examples import catalog_for, gallery_folder
    from cnnviz.lab_state import TrainingHistory, model_card_path, read_history
    from cnnviz.resources import shared_network

    network = to_network(model)
    is_file = isinstance(model, str | os.PathLike)
    catalog = catalog or catalog_for(network, gallery_folder(None, model) if is_file else None)
    if is_file:
        return network, catalog, read_history(model_card_path(Path(model)))
    return network, catalog, None if network is shared_network() else TrainingHistory()


def to_network(model: Network | str | os.PathLike | Any, class_names: tuple[str, ...] = ()) -> Network:
    """A Network as is; a cnnviz `.npz`, Keras or ONNX path, or a Keras model object, imported."""
    if isinstance(model, Network):
        return model
    if isinstance(model, str | os.PathLike):
        if Path(model).suffix.lower() == ".npz":
            return Network.load(model)
        return import_model(model, class_names).network
    if hasattr(model, "layers") and hasattr(model, "get_config"):
        from cnnviz.importers.keras_model import import_keras_model

        return import_keras_model(model, class_names).network
    raise TypeError(f"expected a Network, a path or a Keras model, not {type(model).__name__}")
