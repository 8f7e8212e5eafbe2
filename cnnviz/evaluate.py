"""`cnnviz evaluate`: top-1, per-class accuracy and confusion matrix of a weights file, by the NumPy engine.

Our weights and the reference's TF.js weights go through this same code on the same 500 validation images, so
their scores compare fairly. No TensorFlow here: the engine's forward pass is what the app shows.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cnnviz.data import load_prepared
from cnnviz.engine import TINY_VGG_CLASSES, Network, load_tfjs_layers_model

DEFAULT_WEIGHTS = Path("weights") / "tiny_vgg.npz"
# The shared folder sits beside the repository; commands run from the repository root.
DEFAULT_REFERENCE_DIR = Path("..") / "shared" / "reference" / "cnn-explainer-tiny-vgg"


def pixels_to_input(images: np.ndarray) -> np.ndarray:
    """uint8 pixels → what Tiny VGG reads: pixel / 255, no mean or std (as the reference and `cnnviz.images`)."""
    return np.asarray(images, np.float32) / np.float32(255)


@dataclass(frozen=True, eq=False)
class Evaluation:
    """How a model did on labelled images; ``confusion[true, predicted]`` counts images."""

    class_names: tuple[str, ...]
    confusion: np.ndarray

    @property
    def count(self) -> int:
        return int(self.confusion.sum())

    @property
    def accuracy(self) -> float:
        return float(np.trace(self.confusion) / max(self.count, 1))

    @property
    def per_class_accuracy(self) -> np.ndarray:
        """Recall of each class (NaN for a class with no images)."""
        totals = self.confusion.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.diag(self.confusion) / totals

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary for the model card."""
        return {
            "images": self.count,
            "top1": round(self.accuracy, 4),
            "per_class": {
                name: round(float(value), 4)
                for name, value in zip(self.class_names, self.per_class_accuracy, strict=True)
            },
            "confusion_matrix": self.confusion.tolist(),
        }


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, class_count: int) -> np.ndarray:
    """Counts of (true label, predicted label) pairs, rows = truth."""
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    if labels.shape != predictions.shape:
        raise ValueError(f"{labels.shape} labels for {predictions.shape} predictions")
    matrix = np.zeros((class_count, class_count), np.int64)
    np.add.at(matrix, (labels, predictions), 1)
    return matrix


def evaluate_predictions(labels: np.ndarray, predictions: np.ndarray, class_names: Sequence[str]) -> Evaluation:
    return Evaluation(tuple(class_names), confusion_matrix(labels, predictions, len(class_names)))


def evaluate_network(network: Network, images: np.ndarray, labels: np.ndarray) -> Evaluation:
    """Score a network on uint8 images with integer labels in the network's class order."""
    predictions = network.predict(pixels_to_input(images)).argmax(axis=1)
    return evaluate_predictions(labels, predictions, network.class_names)


def format_evaluation(title: str, evaluation: Evaluation) -> str:
    """A plain-text report: top-1, per-class accuracy and the confusion matrix with short column heads."""
    names = evaluation.class_names
    width = max(len(name) for name in names)
    lines = [f"{title}: top-1 {evaluation.accuracy:.1%} on {evaluation.count} images", "", "per-class accuracy:"]
    lines += [
        f"  {name:<{width}}  {value:6.1%}" for name, value in zip(names, evaluation.per_class_accuracy, strict=True)
    ]
    heads = [name[:6].strip() for name in names]
    lines += ["", "confusion matrix (rows: true class, columns: predicted):"]
    lines.append(" " * (width + 2) + " ".join(f"{head:>6}" for head in heads))
    for name, row in zip(names, evaluation.confusion, strict=True):
        lines.append(f"  {name:<{width}}" + " ".join(f"{count:>6d}" for count in row))
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "weights",
        nargs="*",
        type=Path,
        help=f"cnnviz .npz weights files (default: {DEFAULT_WEIGHTS}, unless --reference is given alone)",
    )
    parser.add_argument(
        "--reference",
        nargs="?",
        const=DEFAULT_REFERENCE_DIR,
        type=Path,
        metavar="DIR",
        help=f"also evaluate CNN Explainer's TF.js weights (default folder: {DEFAULT_REFERENCE_DIR})",
    )
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="folder of the prepared data (default: as for `cnnviz data`)"
    )


def run(args: argparse.Namespace) -> int:
    weights_files = args.weights or ([] if args.reference else [DEFAULT_WEIGHTS])
    networks = {str(path): Network.load(path) for path in weights_files}
    if args.reference:
        networks[f"reference ({args.reference})"] = load_tfjs_layers_model(args.reference, TINY_VGG_CLASSES)
    validation = load_prepared(args.data_dir).val
    results = {
        title: evaluate_network(network, validation.images, validation.labels) for title, network in networks.items()
    }
    print("\n\n".join(format_evaluation(title, evaluation) for title, evaluation in results.items()))
    if len(results) > 1:
        print("\nsummary (top-1 on the same validation images):")
        for title, evaluation in results.items():
            print(f"  {evaluation.accuracy:6.1%}  {title}")
    return 0
