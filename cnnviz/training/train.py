"""`cnnviz train`: train the Tiny VGG with Keras, export it for the NumPy engine, and write its model card.

The architecture is exactly CNN Explainer's; only the training recipe differs (augmentation, AdamW with a
warm-up + cosine schedule, label smoothing, more epochs). Model selection sees a holdout split of the training
images only; the 500 validation images are the test set, scored once at the end by the NumPy engine.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import keras
import numpy as np

from cnnviz.data import PreparedData, load_prepared
from cnnviz.datasets.folder import COLOUR_CHOICES, INPUT_SIZES, write_gallery
from cnnviz.engine import INPUT_NAME, Network
from cnnviz.errors import CnnvizError
from cnnviz.evaluate import evaluate_network, evaluate_predictions, pixels_to_input
from cnnviz.training.architecture import Architecture
from cnnviz.training.export import export_keras

DEFAULT_WEIGHTS_DIR = Path("weights")
DEFAULT_PLOT = Path("docs") / "training_curves.png"
WEIGHTS_NAME = "tiny_vgg.npz"
CARD_NAME = "tiny_vgg.json"
CHECKPOINT_DIR_NAME = "checkpoints"
NORMALISATION = "pixel / 255"
IMAGE_SHAPE = (64, 64, 3)


@dataclass(frozen=True)
class TrainingSettings:
    """The recipe; every field is also a `cnnviz train --option`, and all of them go into the model card."""

    seed: int = field(default=0, metadata={"help": "seeds the holdout split, initialisation and augmentation"})
    epochs: int = field(default=120, metadata={"help": "passes over the training images"})
    batch_size: int = field(default=64, metadata={"help": "images per gradient step"})
    learning_rate: float = field(default=3e-3, metadata={"help": "AdamW peak learning rate"})
    warmup_epochs: int = field(default=3, metadata={"help": "linear warm-up before the cosine decay to 0"})
    weight_decay: float = field(default=5e-3, metadata={"help": "AdamW decoupled weight decay (kernels only)"})
    label_smoothing: float = field(default=0.1, metadata={"help": "share of the target spread over all classes"})
    holdout_fraction: float = field(default=0.1, metadata={"help": "share of each class held out for selection"})
    crop_padding: int = field(default=6, metadata={"help": "reflect-pad by this many pixels, then crop 64×64"})
    colour_jitter: float = field(
        default=0.2, metadata={"help": "max relative change of brightness/contrast/saturation"}
    )

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.warmup_epochs < 0 or self.crop_padding < 0:
            raise CnnvizError("epochs and batch size must be at least 1; warm-up and crop padding at least 0.")
        if not 0 < self.holdout_fraction < 1:
            raise CnnvizError("the holdout fraction must be between 0 and 1: model selection needs a holdout.")


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
class Target:
    """What is trained on which images, and the file names it is written under (`<name>.npz`, `<name>.json`)."""

    name: str = "tiny_vgg"
    model: str = "Tiny VGG (CNN Explainer architecture)"
    test_data: str = "validation images of the 10 classes"
    architecture: Architecture = field(default_factory=Architecture)

    @property
    def weights_name(self) -> str:
        return f"{self.name}.npz"

    @property
    def card_name(self) -> str:
        return f"{self.name}.json"


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


# Recipes per image source; any `--option` given on the command line overrides its field.
SHAPES_RECIPE = TrainingSettings(epochs=8, warmup_epochs=1, crop_padding=0, colour_jitter=0.0)
FOLDER_RECIPE = TrainingSettings(epochs=40, warmup_epochs=2, crop_padding=4)
SHAPES_TRAIN_IMAGES, SHAPES_TEST_IMAGES = 4000, 1000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--data", type=Path, default=None, help="train on your own images: a folder with one sub-folder per class"
    )
    source.add_argument("--shapes", action="store_true", help="train on shapes cnnviz draws itself (no download)")
    source.add_argument(
        "--data-dir", type=Path, default=None, help="prepared Tiny ImageNet data (default: `cnnviz data`'s)"
    )
    parser.add_argument(
        "--weights-dir",
        "--out",
        dest="weights_dir",
        type=Path,
        default=None,
        help="where the weights, card, checkpoints and gallery go (default: weights/, weights/shapes/ for --shapes, "
        "<folder>-model/ for --data)",
    )
    parser.add_argument("--input-size", type=int, default=None, help="input pixels per side, 32–128 (default: 64)")
    parser.add_argument(
        "--colour", choices=COLOUR_CHOICES, default="auto", help="grey (1 channel) or colour (3); auto: as the images"
    )
    parser.add_argument("--test-fraction", type=float, default=0.2, help="share of each class kept for the test")
    parser.add_argument("--plot", type=Path, default=None, help="PNG of the training curves (needs matplotlib)")
    parser.add_argument("--no-plot", action="store_true", help="skip the PNG (no matplotlib needed)")
    parser.add_argument(
        "--replot", action="store_true", help="only redraw --plot from the card in --weights-dir, without training"
    )
    architecture = parser.add_argument_group("architecture (default: Tiny VGG)")
    for option in fields(Architecture):
        architecture.add_argument(
            f"--{option.name.replace('_', '-')}",
            type=type(option.default),
            default=option.default,
            choices=option.metadata.get("choices"),
            help=f"{option.metadata['help']} (default: {option.default})",
        )
    recipe = parser.add_argument_group("training recipe (defaults: Tiny ImageNet's; shorter for --shapes and --data)")
    for setting in fields(TrainingSettings):
        recipe.add_argument(
            f"--{setting.name.replace('_', '-')}",
            type=type(setting.default),
            default=None,
            help=f"{setting.metadata['help']} (default: {setting.default})",
        )


@dataclass(frozen=True, eq=False)
class Job:
    """One `cnnviz train` run: the images, the recipe, what is built and where it goes."""

    data: PreparedData | None  # None: only --replot
    settings: TrainingSettings
    target: Target
    out: Path
    plot: Path
    gallery: bool  # write the test images' gallery beside the weights (own data and shapes)


def plan(args: argparse.Namespace) -> Job:
    """Read the options into a Job; bad folders and options fail here, before TensorFlow does any work."""
    architecture = Architecture(**{option.name: getattr(args, option.name) for option in fields(Architecture)})
    given = {s.name: getattr(args, s.name) for s in fields(TrainingSettings) if getattr(args, s.name) is not None}
    if args.shapes:
        from cnnviz.datasets.shapes import DEFAULT_SIZE, shapes_dataset

        size = args.input_size or DEFAULT_SIZE
        out = args.weights_dir or DEFAULT_WEIGHTS_DIR / "shapes"
        settings = replace(SHAPES_RECIPE, **given)
        target = Target("shapes", f"cnnviz CNN ({architecture.describe()})", "generated shapes", architecture)
        data = None
        if not args.replot:
            _check_size(size, architecture)
            grey = args.colour == "grey"
            data = shapes_dataset(SHAPES_TRAIN_IMAGES, SHAPES_TEST_IMAGES, size, settings.seed, grey)
        return Job(data, settings, target, out, args.plot or out / "training_curves.png", gallery=True)
    if args.data:
        from cnnviz.datasets.folder import load_folder

        size = args.input_size or IMAGE_SHAPE[0]
        out = args.weights_dir or Path(f"{args.data.resolve().name}-model")
        settings = replace(FOLDER_RECIPE, **given)
        target = Target("model", f"cnnviz CNN ({architecture.describe()})", f"test images of {args.data}", architecture)
        data = None
        if not args.replot:
            _check_size(size, architecture)
            data = load_folder(args.data, size, args.colour, args.test_fraction, settings.seed, progress=_tqdm)
        return Job(data, settings, target, out, args.plot or out / "training_curves.png", gallery=True)
    if args.input_size not in (None, IMAGE_SHAPE[0]) or architecture != Architecture():
        raise CnnvizError("Tiny ImageNet trains the Tiny VGG at 64 px; use --data or --shapes for other models.")
    out, settings = args.weights_dir or DEFAULT_WEIGHTS_DIR, replace(TrainingSettings(), **given)
    data = None if args.replot else load_prepared(args.data_dir)
    return Job(data, settings, Target(), out, args.plot or DEFAULT_PLOT, gallery=False)


def _check_size(size: int, architecture: Architecture) -> None:
    """Refuse an input size out of range, or one the architecture shrinks to nothing, before reading images."""
    if not INPUT_SIZES[0] <= size <= INPUT_SIZES[1]:
        raise CnnvizError(f"--input-size must be between {INPUT_SIZES[0]} and {INPUT_SIZES[1]} pixels, not {size}.")
    architecture.final_size(size)


def _tqdm(items: Iterable[Any], total: int, label: str) -> Iterator[Any]:
    from tqdm.auto import tqdm

    return iter(tqdm(items, total=total, desc=label, unit="image", disable=None))


def run(args: argparse.Namespace) -> int:
    job = plan(args)
    card_path = job.out / job.target.card_name
    if job.data is None:
        if not card_path.is_file():
            raise CnnvizError(f"No model card at {card_path}: train first, or point --weights-dir to one.")
        card = json.loads(card_path.read_text(encoding="utf-8"))
    else:
        card = train_and_export(job.data, job.settings, job.out, target=job.target).card
        if job.gallery:
            write_gallery(job.data.val, job.data.class_names, job.out)
        test = card["test"]
        print(
            f"test top-1 {test['top1']:.1%} on {test['images']} images (NumPy engine); "
            f"Keras and engine agree on {test['keras_engine_same_argmax']}/{test['images']}; "
            f"selected epoch {card['training']['selected_epoch']}; {card['training']['wall_time_seconds']:.0f} s; "
            f"wrote {job.out / job.target.weights_name} and {card_path}"
        )
        if job.gallery:
            print(f"explain it: cnnviz serve --weights {job.out / job.target.weights_name}")
    if not args.no_plot:
        from cnnviz.training.report import plot_training_curves  # matplotlib only when a plot is wanted

        print(f"wrote {plot_training_curves(card, job.plot)}")
    return 0
