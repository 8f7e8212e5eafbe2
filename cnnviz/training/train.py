"""Training with Keras (`cnnviz train`, see command.py): export for the NumPy engine and write the model card.

By default the architecture is exactly CNN Explainer's Tiny VGG; only the training recipe differs (augmentation,
AdamW with a warm-up + cosine schedule, label smoothing, more epochs). Model selection sees a holdout split of the
training images only; the test images (Tiny ImageNet's 500 validation images) are scored once at the end by the
NumPy engine.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from cnnviz.data import PreparedData
from cnnviz.engine import INPUT_NAME, Network
from cnnviz.evaluate import evaluate_network, evaluate_predictions, pixels_to_input
from cnnviz.training.architecture import Architecture
from cnnviz.training.export import export_keras
from cnnviz.training.settings import (  # noqa: F401 — the file names are re-exported for callers of train_and_export
    CARD_NAME,
    CHECKPOINT_DIR_NAME,
    IMAGE_SHAPE,
    NORMALISATION,
    WEIGHTS_NAME,
    Target,
    TrainingSettings,
)


def checkpoint_epochs(epochs: int) -> list[int]:
    """0 (untrained), Fibonacci epochs (1, 2, 3, 5, 8, 13, …) and the last (≥ 1): dense early, where most changes."""
    chosen, previous, current = [0], 1, 1
    while current < epochs:
        chosen.append(current)
        previous, current = current, previous + current
    return [*chosen, epochs]


def holdout_split(labels: np.ndarray, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Indices (fit, holdout): the same share of every class is held out, so holdout accuracy is balanced."""
    fit, holdout = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        count = min(max(1, round(fraction * len(members))), len(members) - 1)
        holdout.append(members[:count])
        fit.append(members[count:])
    return np.sort(np.concatenate(fit)), np.sort(np.concatenate(holdout))


def augment(padded: np.ndarray, rng: np.random.Generator, jitter: float, size: int = IMAGE_SHAPE[0]) -> np.ndarray:
    """Random size×size crop of reflect-padded uint8 images, random left-right flip and colour jitter → model input."""
    count = len(padded)
    span = padded.shape[1] - size + 1
    rows, cols = rng.integers(0, span, count), rng.integers(0, span, count)
    flips = rng.random(count) < 0.5
    crops = np.stack(
        [
            image[row : row + size, col : col + size, :][:, ::-1] if flip else image[row : row + size, col : col + size]
            for image, row, col, flip in zip(padded, rows, cols, flips, strict=True)
        ]
    )
    x = pixels_to_input(crops)
    if jitter > 0:  # in place: these arrays are the whole training set
        saturation, contrast, brightness = rng.uniform(1 - jitter, 1 + jitter, (3, count, 1, 1, 1)).astype(np.float32)
        channels = x.shape[3]
        grey = x @ np.full((channels, 1), 1 / channels, np.float32)  # channel mean; x.mean(axis=3) is 5× slower
        x -= grey
        x *= saturation
        x += grey
        mean = x.mean(axis=(1, 2, 3), keepdims=True)
        x -= mean
        x *= contrast * brightness
        x += mean * brightness
        np.clip(x, 0.0, 1.0, out=x)
    return x


def tiny_vgg_keras(class_count: int) -> keras.Sequential:
    """CNN Explainer's Tiny VGG, layer for layer and name for name (19,920 parameters for 10 classes)."""
    return Architecture().keras_model(IMAGE_SHAPE, class_count)


def compile_model(model: keras.Model, settings: TrainingSettings, steps_per_epoch: int) -> None:
    """AdamW on a per-step schedule: warm-up avoids early blow-ups at the peak rate, cosine anneals to 0."""
    warmup_steps = settings.warmup_epochs * steps_per_epoch
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0,
        warmup_target=settings.learning_rate,
        warmup_steps=warmup_steps,
        decay_steps=max(settings.epochs * steps_per_epoch - warmup_steps, 1),
    )
    optimizer = keras.optimizers.AdamW(learning_rate=schedule, weight_decay=settings.weight_decay)
    optimizer.exclude_from_weight_decay(var_names=["bias"])
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=settings.label_smoothing),
        metrics=["accuracy"],
    )


class AugmentedImages(keras.utils.PyDataset):
    """The fit images, freshly shuffled and augmented at the start of every epoch (in the main thread: seeded)."""

    def __init__(
        self,
        padded: np.ndarray,
        targets: np.ndarray,
        batch_size: int,
        jitter: float,
        rng: np.random.Generator,
        size: int = IMAGE_SHAPE[0],
    ) -> None:
        super().__init__()
        self.padded, self.targets, self.batch_size, self.jitter, self.rng = padded, targets, batch_size, jitter, rng
        self.size = size
        self.on_epoch_begin()  # Keras reads a first batch to learn the shapes before it starts epoch 1

    def __len__(self) -> int:
        return -(-len(self.padded) // self.batch_size)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        batch = slice(index * self.batch_size, (index + 1) * self.batch_size)
        return self.images[batch], self.batch_targets[batch]

    def on_epoch_begin(self) -> None:
        order = self.rng.permutation(len(self.padded))
        self.images = augment(self.padded[order], self.rng, self.jitter, self.size)
        self.batch_targets = self.targets[order]


class EpochCheckpoints(keras.callbacks.Callback):
    """Saves the weights after the chosen epochs and remembers the epoch with the best holdout accuracy."""

    def __init__(self, save: Callable[[int], Path], epochs: Sequence[int]) -> None:
        super().__init__()
        self.save, self.epochs = save, set(epochs)
        self.saved: dict[int, Path] = {}
        self.best_accuracy, self.best_epoch, self.best_weights = -1.0, 0, None

    def on_train_begin(self, logs: dict[str, float] | None = None) -> None:
        self.saved[0] = self.save(0)

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        epoch += 1  # Keras counts from 0; our epoch n is the state after n passes
        accuracy = float((logs or {})["val_accuracy"])
        if accuracy >= self.best_accuracy:  # ties go to the later epoch: its learning rate is lower
            self.best_accuracy, self.best_epoch, self.best_weights = accuracy, epoch, self.model.get_weights()
        if epoch in self.epochs:
            self.saved[epoch] = self.save(epoch)


@dataclass(frozen=True)
class TrainingResult:
    """The trained Keras model (selected weights) and its model card, as written beside the weights."""

    model: keras.Model
    card: dict[str, Any]


def train_and_export(
    data: PreparedData,
    settings: TrainingSettings,
    weights_dir: Path,
    verbose: int | None = None,
    target: Target | None = None,
) -> TrainingResult:
    """Train, then write the selected weights, the epoch checkpoints and the model card into `weights_dir`."""
    target = target or Target()
    image_shape = tuple(int(n) for n in data.train.images.shape[1:])
    started = time.perf_counter()
    keras.utils.set_random_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    class_count = len(data.class_names)
    fit_indices, holdout_indices = holdout_split(data.train.labels, settings.holdout_fraction, rng)
    pad = settings.crop_padding
    padded = np.pad(data.train.images[fit_indices], ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")
    targets = keras.utils.to_categorical(data.train.labels, class_count)
    batches = AugmentedImages(
        padded, targets[fit_indices], settings.batch_size, settings.colour_jitter, rng, size=image_shape[0]
    )

    model = target.architecture.keras_model(image_shape, class_count)
    compile_model(model, settings, steps_per_epoch=len(batches))
    checkpoint_dir = weights_dir / CHECKPOINT_DIR_NAME
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    for stale in checkpoint_dir.glob("epoch_*.npz"):  # a previous run's checkpoints would mislead the scrubber
        stale.unlink()

    def save_checkpoint(epoch: int) -> Path:
        metadata = {"normalisation": NORMALISATION, "weights": f"cnnviz train, seed {settings.seed}, epoch {epoch}"}
        return export_keras(model, checkpoint_dir / f"epoch_{epoch:03d}.npz", data.class_names, metadata)

    checkpoints = EpochCheckpoints(save_checkpoint, checkpoint_epochs(settings.epochs))
    history = model.fit(
        batches,
        epochs=settings.epochs,
        validation_data=(pixels_to_input(data.train.images[holdout_indices]), targets[holdout_indices]),
        callbacks=[checkpoints],
        verbose=(1 if sys.stdout.isatty() else 2) if verbose is None else verbose,
    ).history
    train_seconds = time.perf_counter() - started
    curves = {
        name: [round(float(value), 4) for value in history[key]]
        for name, key in (
            ("loss", "loss"),
            ("accuracy", "accuracy"),
            ("holdout_loss", "val_loss"),
            ("holdout_accuracy", "val_accuracy"),
        )
    }
    model.set_weights(checkpoints.best_weights)
    metadata = {
        "normalisation": NORMALISATION,
        "weights": f"cnnviz train, seed {settings.seed}, epoch {checkpoints.best_epoch} of {settings.epochs}",
        "card": target.card_name,
    }
    network = Network.load(export_keras(model, weights_dir / target.weights_name, data.class_names, metadata))
    test = data.val
    test_inputs = pixels_to_input(test.images)
    engine_predictions = network.predict(test_inputs).argmax(axis=1)
    keras_predictions = model.predict(test_inputs, batch_size=256, verbose=0).argmax(axis=1)
    card = {
        "model": target.model,
        "weights": target.weights_name,
        "class_names": list(data.class_names),
        "input": {"shape": list(image_shape), "normalisation": NORMALISATION},
        "architecture": {"summary": target.architecture.describe(), **describe_architecture(network)},
        "training": {
            **asdict(settings),
            "optimizer": "AdamW, linear warm-up then cosine decay to 0, no weight decay on biases",
            "loss": "categorical cross-entropy with label smoothing",
            "augmentation": describe_augmentation(settings, image_shape[0]),
            "fit_images": len(fit_indices),
            "holdout_images": len(holdout_indices),
            "selected_epoch": checkpoints.best_epoch,
            "selection": "epoch with the best holdout accuracy (holdout = part of the training images)",
            "wall_time_seconds": round(train_seconds, 1),
        },
        "test": {
            "data": f"{len(test.labels)} {target.test_data}, never seen in training or selection",
            "evaluated_by": "cnnviz NumPy engine on the stored weights",
            **evaluate_predictions(test.labels, engine_predictions, network.class_names).to_dict(),
            "keras_engine_same_argmax": int((keras_predictions == engine_predictions).sum()),
        },
        "curves": {"epoch": list(range(1, settings.epochs + 1)), **curves},
        "checkpoints": [
            {
                "epoch": epoch,
                "file": path.relative_to(weights_dir).as_posix(),
                "test_top1": round(evaluate_network(Network.load(path), test.images, test.labels).accuracy, 4),
            }
            for epoch, path in checkpoints.saved.items()
        ],
    }
    (weights_dir / target.card_name).write_text(json.dumps(card, indent=1) + "\n", encoding="utf-8")
    return TrainingResult(model, card)


def describe_augmentation(settings: TrainingSettings, size: int) -> str:
    """The augmentation of this run in words, for the model card."""
    steps = [f"reflect-pad by {settings.crop_padding} + random {size}×{size} crop"] if settings.crop_padding else []
    steps.append("left-right flip")
    if settings.colour_jitter:
        steps.append("saturation/contrast/brightness jitter")
    return ", ".join(steps)


def describe_architecture(network: Network) -> dict[str, Any]:
    """Per layer: name, kind, output shape and parameter count, so the card alone shows what was trained."""
    layers = [{"name": INPUT_NAME, "kind": "input", "output_shape": list(network.input_shape), "parameters": 0}]
    layers += [
        {"name": info.name, "kind": info.kind, "output_shape": list(info.shape), "parameters": layer.parameter_count}
        for info, layer in zip(network.infos[1:], network.layers, strict=True)
    ]
    return {"parameters": network.parameter_count, "layers": layers}
