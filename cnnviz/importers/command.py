"""`cnnviz import MODEL`: a Keras or ONNX file → a cnnviz `.npz` (and a small model card) the app can explain."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cnnviz.importers import KERAS_SUFFIXES, ONNX_SUFFIXES, SUPPORTED, import_model

CLASSES_HELP = "class names, comma-separated, or a text file with one per line (default: class 0, class 1, …)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        f"Import a trained model ({', '.join(KERAS_SUFFIXES + ONNX_SUFFIXES)}). Supported: {SUPPORTED}."
    )
    parser.add_argument("model", type=Path, help="the model file")
    parser.add_argument("--out", type=Path, default=None, help="the .npz to write (default: MODEL's name, .npz)")
    parser.add_argument("--classes", default="", help=CLASSES_HELP)
    parser.add_argument("--input-size", type=int, default=None, help="pixels per side, if the model leaves it open")


def class_names(option: str) -> tuple[str, ...]:
    """--classes as a list or as a file of names (one per line)."""
    if option and Path(option).is_file():
        return tuple(line.strip() for line in Path(option).read_text(encoding="utf-8").splitlines() if line.strip())
    return tuple(name.strip() for name in option.split(",") if name.strip())


def run(args: argparse.Namespace) -> int:
    imported = import_model(args.model, class_names(args.classes), args.input_size)
    out = args.out or Path(args.model.with_suffix(".npz").name)
    network = imported.network
    network.save(out)
    card = {
        "model": f"imported from {args.model.name}",
        "weights": out.name,
        "class_names": list(network.class_names),
        "input": {"shape": list(network.input_shape), "normalisation": network.metadata["normalisation"]},
        "import_notes": imported.notes,
    }
    out.with_suffix(".json").write_text(json.dumps(card, indent=1) + "\n", encoding="utf-8")
    print(f"{network!r}: {network.parameter_count:,} weights")
    for note in imported.notes:
        print(f"  - {note}")
    print(f"wrote {out}; the app feeds it pixel / 255 images of {network.input_shape}")
    print(f"explain it: cnnviz serve --weights {out}")
    return 0
