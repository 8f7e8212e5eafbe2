"""Keras models (objects, `.keras` and `.h5` files) → engine networks. Imports Keras only when called."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from cnnviz.engine import layers_from_keras
from cnnviz.engine.keras_format import UnsupportedKerasLayer
from cnnviz.importers import Imported, LayerChain, ModelImportError, unsupported

PIXEL_SCALE = 1 / 255
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def import_keras_file(path: str | os.PathLike, class_names: tuple[str, ...] = ()) -> Imported:
    """Load a `.keras` / `.h5` file with Keras (no training state needed) and import it."""
    path = Path(path)
    container = _container_problem(path)
    if container:
        raise ModelImportError(f"{path.name} is not a readable Keras model: {container}.")
    try:
        import keras
    except ImportError:
        raise ModelImportError(
            "Reading Keras files needs TensorFlow: pip install 'cnnviz[train]' (or tensorflow), then try again."
        ) from None
    try:
        model = keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception as error:  # Keras raises many types for a bad file; all mean "cannot read it"
        reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        raise ModelImportError(f"{path.name} is not a readable Keras model ({reason}).") from None
    return import_keras_model(model, class_names, source=f"imported from {path.name}")


def _container_problem(path: Path) -> str:
    """Why the file cannot be a Keras model at all, or "": Keras itself says "File not found" for these."""
    if path.suffix.lower() == ".keras" and not zipfile.is_zipfile(path):
        return "a .keras file is a zip archive, and this one is not"
    if path.suffix.lower() != ".keras" and not _is_hdf5(path):
        return f"a {path.suffix} file is an HDF5 file, and this one is not"
    return ""


def _is_hdf5(path: Path) -> bool:
    """HDF5's signature sits at byte 0, or after a user block of 512, 1024, 2048, … bytes."""
    size = path.stat().st_size
    with path.open("rb") as file:
        for offset in (0, *(512 << doubling for doubling in range(size.bit_length()))):
            if offset >= size:
                break
            file.seek(offset)
            if file.read(len(HDF5_SIGNATURE)) == HDF5_SIGNATURE:
                return True
    return False


def import_keras_model(model: Any, class_names: tuple[str, ...] = (), source: str = "") -> Imported:
    """Rebuild a built, sequential Keras model layer by layer; batch normalisation is folded, dropout dropped."""
    chain = LayerChain()
    input_shape = tuple(model.input_shape[1:]) if hasattr(model, "input_shape") else ()
    if any(size is None for size in input_shape):
        raise ModelImportError(f"The model's input shape {input_shape} has open sizes; build it for a fixed size.")
    for position, layer in enumerate(model.layers):
        kind, config = type(layer).__name__, layer.get_config()
        if config.get("data_format", "channels_last") != "channels_last":
            raise unsupported(f"Layer {layer.name} ({kind}) in channels_first format")
        if kind == "BatchNormalization":
            _fold(chain, layer, config)
        elif kind == "Rescaling" and position == 0:
            _pixel_scaling(layer, config, chain)
        elif kind in ("Sequential", "Functional", "Model"):
            raise unsupported(f"Layer {layer.name} (a nested model)")
        else:
            try:
                built = layers_from_keras(kind, config, layer.get_weights())
            except UnsupportedKerasLayer as error:
                raise unsupported(error.what) from None
            for engine_layer in built:
                chain.add(engine_layer)
            if built:
                chain.sources[chain.layers[-1].name] = layer.name
            elif kind.endswith("Dropout"):
                chain.notes.append(f"{kind} {layer.name} dropped (it only acts during training)")
    return chain.network(input_shape, class_names, source or f"Keras model {model.name}")


def _fold(chain: LayerChain, layer: Any, config: dict[str, Any]) -> None:
    axis = config.get("axis", -1)
    axis = axis[0] if isinstance(axis, list | tuple) and len(axis) == 1 else axis
    if axis not in (-1, len(layer.output.shape) - 1):  # only over the channels (the last axis)
        raise unsupported(f"Batch normalisation {layer.name} over axis {axis}")
    weights = list(layer.get_weights())
    channels = weights[-1].shape[0]
    scale = weights.pop(0) if config.get("scale", True) else np.ones(channels, np.float32)
    offset = weights.pop(0) if config.get("center", True) else np.zeros(channels, np.float32)
    mean, variance = weights
    chain.fold_batch_norm(layer.name, scale, offset, mean, variance, float(config.get("epsilon", 1e-3)))
    chain.sources[chain.layers[-1].name] = layer.name


def _pixel_scaling(layer: Any, config: dict[str, Any], chain: LayerChain) -> None:
    """A leading Rescaling(1/255) does what cnnviz does to pixels already; any other scaling cannot be shown."""
    scale, offset = config.get("scale", 1.0), config.get("offset", 0.0)
    if not (np.isclose(scale, PIXEL_SCALE) and offset == 0):
        raise unsupported(f"Layer {layer.name} (Rescaling by {scale} + {offset}; cnnviz feeds pixel / 255)")
    chain.notes.append(f"Rescaling {layer.name} (pixel / 255) dropped: cnnviz feeds the network pixel / 255")
